"""The conformance kit (gateway.testing) against Suara Arek described in YAML alone: the
declarative adapter built from config/adapters/suara-arek-malang.yaml, talking to the Suara
Arek simulator over loopback HTTP (OAuth2 tokens, the opaque-cursor feed, per-report
responses, current state only).

Deterministic: a seeded simulator whose clocks move only when the driver says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from gateway import InstanceContext, LocalApp, Reporter, RetryPolicy
from gateway._config._load import InstanceConfig, _load_instance
from gateway._config._yaml import load_yaml
from gateway._declarative import DeclarativeApp
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import LocalAppConformance, ServedPeer, Stream
from lapor_gateway_adapters.suara_arek.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SuaraArekSimulator,
    create_simulator,
)

pytestmark = pytest.mark.e2e

YAML = Path(__file__).resolve().parent.parent / "config" / "adapters" / "suara-arek-malang.yaml"
ENVIRON = {"SUARA_AREK_CLIENT_ID": DEFAULT_CLIENT_ID, "SUARA_AREK_CLIENT_SECRET": DEFAULT_CLIENT_SECRET}
NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.001, max_wait=0.001)


def instance() -> InstanceConfig:
    """The instance as `gateway config check` reads it (the file, its secrets from ENVIRON)."""
    issues: list = []
    found = _load_instance(load_yaml(YAML), ENVIRON, True, issues)
    assert found is not None and not issues, issues
    return found


def context(base_url: str, *, limit: int | None = None) -> InstanceContext:
    inst = instance()
    settings = inst.settings
    if limit is not None:  # small pages: a walk the kit can interrupt between requests
        assert isinstance(settings, DeclarativeApp.Settings)
        request = settings.complaints.request.model_copy(update={"params": {"limit": limit}})
        settings = settings.model_copy(
            update={"complaints": settings.complaints.model_copy(update={"request": request})}
        )
    return dataclasses.replace(inst.context(), base_url=base_url, settings=settings, retry=NO_RETRY)


class SuaraArekDriver:
    """The kit's PeerDriver for the Suara Arek simulator: citizens and officers act through the
    simulator's own methods; a bad record is a stored record spoiled in place. Suara Arek keeps
    the current state only, so there is no status change to make."""

    def __init__(self, sim: SuaraArekSimulator):
        self.sim = sim

    def now(self) -> datetime:
        return self.sim.clock.now()

    def advance(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def add_complaint(self, reporter: Reporter, **fields: object) -> str:
        identity = {"name": reporter.name, "nik": reporter.nik, "phone": reporter.phone, "email": reporter.email}
        return self.sim.submit_report(reporter=identity, **fields)

    def add_follow_up(self, complaint_ref: str) -> str:
        return str(self.sim.respond(complaint_ref, "Petugas sudah mengecek lokasi."))

    def change_status(self, complaint_ref: str) -> None:
        raise NotImplementedError("Suara Arek keeps the current state only: no status changes to list")

    def add_malformed_record(self, stream: Stream, reporter: Reporter) -> str:
        if stream == "complaints":
            return self.add_complaint(reporter, title=20261129)  # a number where the app sends a text
        if stream == "follow_ups":
            answer = self.sim.respond(self.add_complaint(reporter), "Akan kami tindak lanjuti.")
            with self.sim.lock:
                report = next(r for r in self.sim.world.all() if any(x["id"] == answer for x in self._of(r["id"])))
                next(x for x in self._of(report["id"]) if x["id"] == answer)["message"] = None
            return str(answer)
        raise NotImplementedError("no status changes in Suara Arek")

    def _of(self, report_id: str) -> list[dict]:
        return self.sim.world.responses(report_id)


class TestSuaraArekConformance(LocalAppConformance):
    status_to_write = None  # a current-state app has no status stream to read a written status back from

    @contextmanager
    def serve_peer(self) -> Iterator[ServedPeer]:
        sim = create_simulator(seed=41, clock=SimClock(), token_clock=SimClock())
        sim.officers_active = False  # only the driver acts
        with SimulatorServer(sim, port=0) as server:
            yield ServedPeer(server.base_url, SuaraArekDriver(sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        return DeclarativeApp(context(base_url, limit=2), client=client)

    @pytest.mark.xfail(
        strict=True,
        reason="Suara Arek keeps no field a gateway_ref could come back in (the Idempotency-Key is not shown on "
        "reads): the engine knows its own responses by the id the write returned",
    )
    def test_follow_up_echo(self) -> None:
        super().test_follow_up_echo()


def test_tokens_of_two_minutes_are_renewed_from_the_yaml_alone() -> None:
    """The description's oauth2_client_credentials: a token is fetched once and used while it
    lives, and renewed once (the call then repeated) when the app answers 401 for an expired or
    forgotten token, with no Python of the app's. (Renewal before expiry runs on the helper's own
    clock: tests/test_auth.py.)"""
    import asyncio

    tokens = SimClock()
    sim = create_simulator(seed=5, clock=SimClock(), token_clock=tokens)
    sim.officers_active = False
    sim.submit_report()

    async def read(app: DeclarativeApp) -> int:
        return len([c async for c in app.complaints_since(None)])

    async def run(base_url: str) -> list[int]:
        app = DeclarativeApp(context(base_url))
        try:
            counts = [await read(app)]
            counts.append(await read(app))  # the same token
            tokens.advance(130)  # the app's clock: expired there, a 401, one renewal
            counts.append(await read(app))
            with sim.lock:
                sim._tokens.clear()  # the app forgot every token: a 401, then one renewal
            counts.append(await read(app))
            return counts
        finally:
            await app.aclose()

    with SimulatorServer(sim, port=0) as server:
        found = asyncio.run(run(server.base_url))
    assert found[0] >= 1 and found == [found[0]] * 4
    counts = sim.counts()
    assert counts["tokens_issued"] == 3
    assert counts["unauthorized"] == 2
