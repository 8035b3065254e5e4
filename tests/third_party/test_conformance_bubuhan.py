"""The conformance kit against a third party's adapter written from the docs alone
(bubuhan_adapter.py) and a fake of its app (bubuhan_sim.py): a dialect unlike Lapor Hendi's
(epoch milliseconds, WITA wall-clock times, page tokens, nested reporter, embedded follow-ups
and status history)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from bubuhan_adapter import BubuhanApp
from bubuhan_sim import PASSWORD, USERNAME, WITA, BubuhanDriver, create_simulator

from gateway import InstanceContext, LocalApp, RawStatus, RetryPolicy
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import LocalAppConformance, ServedPeer

pytestmark = pytest.mark.e2e


def build(cls: type[BubuhanApp], base_url: str, client: httpx.AsyncClient | None = None) -> BubuhanApp:
    context = InstanceContext(
        name="bubuhan-kit",
        base_url=base_url,
        timezone=WITA,
        secrets={"username": USERNAME, "password": PASSWORD},
        settings=cls.Settings(page_size=2),
        retry=RetryPolicy(attempts=1),
    )
    return cls(context, client=client)


class BubuhanKit(LocalAppConformance):
    status_to_write = RawStatus("PRS")
    adapter_class: type[BubuhanApp] = BubuhanApp

    @contextmanager
    def serve_peer(self) -> Iterator[ServedPeer]:
        sim = create_simulator(seed=1, clock=SimClock())
        with SimulatorServer(sim, port=0) as server:
            yield ServedPeer(server.base_url, BubuhanDriver(sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        return build(self.adapter_class, base_url, client)


class TestBubuhanConformance(BubuhanKit):
    pass
