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

from gateway import Complaint, InstanceContext, LocalApp, RawStatus, RetryPolicy
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import KIT_REPORTER, LocalAppConformance, ServedPeer

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


@pytest.mark.anyio
async def test_a_millisecond_holding_more_than_a_page_is_read_through_page_tokens() -> None:
    """walk_by_time pages by number only through a time holding more records than a page: the
    adapter then asks page n with the token page n-1 of the same boundary gave."""
    sim = create_simulator(seed=2, clock=SimClock())
    refs = [f"BPN-{sim.file_ticket(KIT_REPORTER):06d}" for _ in range(5)]  # the clock stands still: one time
    with SimulatorServer(sim, port=0) as server:
        app = build(BubuhanApp, server.base_url)
        try:
            read = [c async for c in app.complaints_since(None)]
        finally:
            await app.aclose()
    assert sorted(c.ref for c in read if isinstance(c, Complaint)) == refs
