"""The conformance kit (gateway.testing) against Open311 GeoReport v2 described in YAML alone:
the declarative adapter built from config/adapters/open311-makassar.yaml, talking to the Open311
simulator (Kota Makassar) over loopback HTTP.

GeoReport v2 has no query of changes, no follow-ups, no history and no write after creation
(docs/open311-api.md): the file reads the whole default window at each intake and takes each
version's status_notes as a follow-up. The checks that cannot hold for it are marked xfail with
the reason; deterministic (a seeded simulator whose clock moves only when the driver says).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway import LocalApp, PermanentPeerError, Reporter, RetryPolicy, format_iso_time
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import LocalAppConformance, ServedPeer, Stream, declarative_app
from lapor_gateway_adapters.open311.simulator import Open311Simulator, create_simulator

pytestmark = pytest.mark.e2e

YAML = Path(__file__).resolve().parent.parent / "config" / "adapters" / "open311-makassar.yaml"
WITA = ZoneInfo("Asia/Makassar")


class Open311Driver:
    """The kit's PeerDriver for the Open311 simulator. An officer's status_notes is the only
    thing like a follow-up GeoReport v2 has; there are no status changes to list."""

    def __init__(self, sim: Open311Simulator):
        self.sim = sim

    def now(self) -> datetime:
        return self.sim.clock.now()

    def advance(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def add_complaint(self, reporter: Reporter) -> str:
        # The server keeps the citizen's identity apart and never serves it (the simulator makes one up).
        return self.sim.submit_request()

    def add_follow_up(self, complaint_ref: str, notes: object = "Petugas sudah meninjau lokasi.") -> str:
        self.sim.note(complaint_ref, "Petugas sudah meninjau lokasi.")
        with self.sim.lock:
            record = self.sim.world._requests[int(complaint_ref)]
            record["status_notes"] = notes  # a number: a follow-up the adapter cannot read
            return f"{complaint_ref}@{format_iso_time(record['updated_datetime'], WITA)}"

    def change_status(self, complaint_ref: str) -> None:
        raise NotImplementedError("GeoReport v2 keeps the current status only: no status changes to list")

    def add_malformed_record(self, stream: Stream, reporter: Reporter) -> str:
        ref = self.add_complaint(reporter)
        if stream == "complaints":
            with self.sim.lock:
                self.sim.world._requests[int(ref)]["status"] = 7  # a number where the spec has open/closed
            return ref
        if stream == "follow_ups":
            return self.add_follow_up(ref, notes=20261129)
        raise NotImplementedError("no status changes in GeoReport v2")


class TestOpen311Conformance(LocalAppConformance):
    status_to_write = None  # GeoReport v2 cannot change a request's status

    @contextmanager
    def serve_peer(self) -> Iterator[ServedPeer]:
        sim = create_simulator(seed=43, clock=SimClock())
        sim.officers_active = False
        with SimulatorServer(sim, port=0) as server:
            yield ServedPeer(server.base_url, Open311Driver(sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        return declarative_app(YAML, base_url, environ={}, client=client, retry=RetryPolicy(attempts=1))

    @pytest.mark.xfail(
        strict=True,
        raises=PermanentPeerError,
        reason="GeoReport v2 has no write after creation: the description has no writes, and a follow-up "
        "write is refused (its delivery is parked with that reason)",
    )
    def test_follow_up_echo(self) -> None:
        super().test_follow_up_echo()

    @pytest.mark.xfail(
        strict=True,
        reason="GeoReport v2 keeps a request's newest status_notes only: the kit's second note on a request "
        "replaces its first at the peer before any read, so that follow-up is gone (docs/open311-api.md)",
    )
    def test_follow_ups_complete(self) -> None:
        super().test_follow_ups_complete()

    @pytest.mark.xfail(
        strict=True,
        reason="GeoReport v2 never serves the submitter's personal data: complaints come without a reporter "
        "(nothing leaks either)",
    )
    def test_personal_data_kept_apart(self) -> None:
        super().test_personal_data_kept_apart()
