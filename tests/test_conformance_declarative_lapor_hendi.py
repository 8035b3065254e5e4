"""The conformance kit against Lapor Hendi described in YAML alone
(tests/declarative/lapor-hendi-semarang.yaml) and its simulator over loopback: the paths of the
declarative adapter Suara Arek does not take (page numbers over time filters with walk_by_time,
a list of follow-ups across complaints, a status history, gateway_ref echoed on reads, writes
refused inside a 2xx), under every check of the kit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from test_conformance_lapor_hendi import LaporHendiDriver

from gateway import LocalApp, PermanentPeerError, RawStatus, RetryPolicy
from gateway._declarative import DeclarativeApp
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import LocalAppConformance, ServedPeer, declarative_app
from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator

pytestmark = pytest.mark.e2e

YAML = Path(__file__).resolve().parent / "declarative" / "lapor-hendi-semarang.yaml"
KEY = "demo-lapor-hendi-key"


def build(base_url: str, client: httpx.AsyncClient | None = None) -> DeclarativeApp:
    environ = {"LAPOR_HENDI_API_KEY": KEY}
    return declarative_app(YAML, base_url, environ=environ, client=client, retry=RetryPolicy(attempts=1))


class TestDeclarativeLaporHendiConformance(LocalAppConformance):
    status_to_write = RawStatus("dalam proses", "dalam proses")

    @contextmanager
    def serve_peer(self) -> Iterator[ServedPeer]:
        sim = create_simulator(seed=29, clock=SimClock())
        sim.officers_active = False
        with SimulatorServer(sim, port=0) as server:
            yield ServedPeer(server.base_url, LaporHendiDriver(sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        return build(base_url, client)


@pytest.mark.anyio
async def test_a_write_to_an_unknown_complaint_is_refused() -> None:
    sim = create_simulator(seed=3, clock=SimClock())
    sim.officers_active = False
    with SimulatorServer(sim, port=0) as server:
        app = build(server.base_url)
        try:
            with pytest.raises(PermanentPeerError):
                await app.write_follow_up("999999", "x", author=None, gateway_ref="lg-1")
        finally:
            await app.aclose()
