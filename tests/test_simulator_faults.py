"""Faults on demand in both simulators, seen from a client over real HTTP on loopback.

Each test switches one behaviour on with a rate of 1.0 (or off with 0.0), so what
happens is certain; the seeded sequence of mixed faults is checked for determinism.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import gateway
from gateway import (
    AmbiguousOutcomeError,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    InstanceContext,
    RecordError,
    RetryPolicy,
)
from gateway.simulation import FAULT_KINDS, Faults, FaultSettings, SimClock, SimulatorServer, parse_fault_assignments
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp
from lapor_gateway_adapters.lapor_hendi.simulator import LaporHendiSimulator
from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator as lapor_hendi_simulator
from lapor_gateway_adapters.sp4n import Sp4nHub
from lapor_gateway_adapters.sp4n._world import STATUS_CODES, STATUS_NAMES
from lapor_gateway_adapters.sp4n.simulator import FOLLOW_UP_DRIFTS, READ_DRIFTS, Sp4nSimulator
from lapor_gateway_adapters.sp4n.simulator import create_simulator as sp4n_simulator

NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.001, max_wait=0.001)
TRANSPORT_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

VALID_COMPLAINT = {
    "title": "Sampah menumpuk",
    "content": "Di pojok pasar.",
    "channel": 6,
    "user_id": 9001,
    "classification_id": 1,
    "disposition_id": 200102,
    "category_id": 43,
    "location_id": 11,
    "is_anonymous": False,
    "is_secret": False,
    "attachments": "[]",
}
HUB_USER_ID = "9001"  # the integrator's account at the simulated hub, as make_hub's Settings say


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- helpers -----------------------------------------------------------------------------------


def serve(sim: Any) -> SimulatorServer:
    return SimulatorServer(sim, port=0).start()


@pytest.fixture
def hub() -> Iterator[tuple[Sp4nSimulator, SimulatorServer]]:
    sim = sp4n_simulator(seed=11, clock=SimClock(), user_id=HUB_USER_ID)
    sim.quiesce()
    server = serve(sim)
    yield sim, server
    server.stop()


@pytest.fixture
def local() -> Iterator[tuple[LaporHendiSimulator, SimulatorServer]]:
    sim = lapor_hendi_simulator(seed=11, clock=SimClock(), initial_complaints=10)
    sim.officers_active = False
    server = serve(sim)
    yield sim, server
    server.stop()


def hub_client(sim: Sp4nSimulator, server: SimulatorServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": sim.authorization, "token": sim.token, "Accept": "application/json"},
        **kwargs,
    )


def local_client(sim: LaporHendiSimulator, server: SimulatorServer, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-Api-Key": sim.api_key}, **kwargs)


def control(server: SimulatorServer, **settings: Any) -> dict[str, Any]:
    answer = httpx.post(server.control_url, json=settings)
    assert answer.status_code == 200, answer.text
    return answer.json()


def injected(sim: Any) -> dict[str, int]:
    return dict(sim.faults.injected)


def make_app(base_url: str, api_key: str, **settings: Any) -> LaporHendiApp:
    context = InstanceContext(
        name="lapor-hendi-semarang",
        base_url=base_url,
        timezone=gateway.WIB,
        secrets={"api_key": api_key},
        retry=NO_RETRY,
        settings=LaporHendiApp.Settings(**settings),
    )
    return LaporHendiApp(context, client=httpx.AsyncClient())


def make_hub(sim: Sp4nSimulator, server: SimulatorServer) -> Sp4nHub:
    context = InstanceContext(
        name="sp4n",
        base_url=server.base_url,
        timezone=gateway.WIB,
        secrets={"authorization": sim.authorization, "token": sim.token},
        retry=NO_RETRY,
        settings=Sp4nHub.Settings(user_id="9001", institution_id="100234", follow_up_template_code="reply_gateway"),
    )
    return Sp4nHub(context, client=httpx.AsyncClient())


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


# --- the Faults object -------------------------------------------------------------------------


def test_settings_default_to_off_and_configure_validates_names_and_values() -> None:
    faults = Faults(seed=1)
    assert faults.settings == FaultSettings()
    assert faults.settings.rate_limit_rps is None and faults.settings.latency_ms == (0.0, 0.0)
    assert set(faults.injected) == set(FAULT_KINDS) and not any(faults.injected.values())

    now = faults.configure(error_rate="0.25", latency_ms="50,400", rate_limit_rps=5, unknown_status_codes="yes")
    assert (now.error_rate, now.latency_ms, now.rate_limit_rps, now.unknown_status_codes) == (
        0.25,
        (50.0, 400.0),
        5.0,
        True,
    )
    with pytest.raises(ValueError, match="'eror_rate'"):
        faults.configure(eror_rate=0.1)
    for bad in (
        {"error_rate": 1.5},
        {"latency_ms": "400,50"},
        {"rate_limit_rps": 0},
        {"hold_seconds": -1},
        {"unknown_status_codes": "maybe"},
        {"drift_rate": True},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            faults.configure(**bad)
    with pytest.raises(ValueError):  # nothing of a refused call is applied
        faults.configure(throttle_rate=0.5, error_rate=7)
    assert faults.settings.throttle_rate == 0.0
    faults.reset()
    assert faults.settings == FaultSettings()

    assert parse_fault_assignments(["error_rate=0.2", "latency_ms=50,400", "rate_limit_rps=none"]) == {
        "error_rate": 0.2,
        "latency_ms": (50.0, 400.0),
        "rate_limit_rps": None,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_fault_assignments(["error_rate"])


def test_same_seed_same_fault_sequence() -> None:
    def sequence(seed: int) -> list[tuple[str | None, int, str | None]]:
        faults = Faults(
            seed=seed, error_rate=0.3, reset_rate=0.1, throttle_rate=0.1, lost_answer_rate=0.2, malformed_json_rate=0.2
        )
        plans = [faults.plan(commit_then_drop=True) for _ in range(200)]
        return [(p.before, p.status, p.after) for p in plans]

    first = sequence(5)
    assert first == sequence(5)
    assert first != sequence(6)
    kinds = {before for before, _, _ in first} | {after for _, _, after in first}
    assert {"errors", "resets", "throttled", "lost_answers", "malformed", None} <= kinds
    assert {status for before, status, _ in first if before == "errors"} == {500, 502, 503}


def test_same_seed_same_faults_over_http() -> None:
    def statuses(seed: int) -> list[int]:
        sim = sp4n_simulator(seed=seed, faults={"error_rate": 0.5})
        with SimulatorServer(sim, port=0) as server, hub_client(sim, server) as client:
            return [client.get("/masters/templates").status_code for _ in range(30)]

    first = statuses(3)
    assert first == statuses(3)
    assert first != statuses(4)
    assert set(first) - {200} <= {500, 502, 503} and 200 in first and len(set(first)) > 1


def test_create_simulator_takes_faults_and_both_serve_the_control_endpoints() -> None:
    for factory in (sp4n_simulator, lapor_hendi_simulator):
        sim = factory(seed=2, faults={"error_rate": 0.5, "latency_ms": [1, 2]})
        assert sim.faults.settings.error_rate == 0.5 and sim.faults.settings.latency_ms == (1.0, 2.0)
        with pytest.raises(ValueError, match="'nope'"):
            factory(faults={"nope": 1})
        with SimulatorServer(sim, port=0) as server:
            shown = httpx.get(server.control_url).json()
            assert shown["settings"]["error_rate"] == 0.5 and shown["settings"]["latency_ms"] == [1.0, 2.0]


# --- each fault, from the client's side -----------------------------------------------------------


def test_error_rate_answers_5xx_without_processing(hub) -> None:
    sim, server = hub
    control(server, error_rate=1.0)
    with hub_client(sim, server) as client:
        answers = [client.post("/complaints/complaint", json=VALID_COMPLAINT) for _ in range(6)]
    assert all(a.status_code in (500, 502, 503) and a.json()["success"] is False for a in answers)
    assert sim.counts()["complaints"] == 0
    assert injected(sim)["errors"] == 6


def test_latency_delays_every_answer(local) -> None:
    sim, server = local
    control(server, latency_ms=[150, 150])
    with local_client(sim, server) as client:
        started = time.monotonic()
        assert client.get("/api/v1/aduan").status_code == 200
        assert time.monotonic() - started >= 0.15
    control(server, latency_ms=0)
    assert sim.faults.settings.latency_ms == (0.0, 0.0)


def test_timeout_holds_the_request_then_504_without_processing(local) -> None:
    sim, server = local
    control(server, timeout_rate=1.0, hold_seconds=0.4)
    with local_client(sim, server, timeout=0.1) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/api/v1/aduan/1/tanggapan", json={"isi": "Sudah ditangani.", "ref_eksternal": "gw-1"})
    with local_client(sim, server, timeout=5) as client:
        answer = client.post("/api/v1/aduan/1/tanggapan", json={"isi": "Sudah ditangani.", "ref_eksternal": "gw-1"})
        assert answer.status_code == 504 and answer.json()["status"] == "gagal"
    assert sim.follow_ups(1) == []
    assert injected(sim)["timeouts"] == 2


def test_reset_closes_the_connection_without_processing(hub) -> None:
    sim, server = hub
    control(server, reset_rate=1.0)
    with hub_client(sim, server) as client:
        with pytest.raises(TRANSPORT_ERRORS):
            client.post("/complaints/complaint", json=VALID_COMPLAINT)
        with pytest.raises(TRANSPORT_ERRORS):
            client.get("/masters/templates")
    assert sim.counts()["complaints"] == 0
    assert injected(sim)["resets"] == 2


def test_throttle_answers_429_with_retry_after(local) -> None:
    sim, server = local
    control(server, throttle_rate=1.0, retry_after_seconds=2.5)
    with local_client(sim, server) as client:
        answer = client.post("/api/v1/aduan/1/status", json={"status": "selesai", "ref_eksternal": "gw-2"})
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert sim.complaints()[0]["status"] == "belum terverifikasi"
    assert injected(sim)["throttled"] == 1


def test_rate_limit_is_a_token_bucket_over_all_requests(hub) -> None:
    sim, server = hub
    control(server, rate_limit_rps=0.01)  # a burst of one, then a token every 100 s
    with hub_client(sim, server) as client:
        assert client.get("/masters/templates").status_code == 200
        limited = client.post("/complaints/complaint", json=VALID_COMPLAINT)
        assert limited.status_code == 429 and 90 <= int(limited.headers["Retry-After"]) <= 100
        assert client.get("/masters/templates").status_code == 429
    for _ in range(5):  # the control endpoints are not limited
        assert httpx.get(server.control_url).status_code == 200
    assert sim.counts()["complaints"] == 0
    assert injected(sim)["rate_limited"] == 2
    control(server, rate_limit_rps=None)
    with hub_client(sim, server) as client:
        assert client.get("/masters/templates").status_code == 200


def test_lost_answer_on_sp4n_create_commits_then_drops(hub) -> None:
    sim, server = hub
    control(server, lost_answer_rate=1.0)
    with hub_client(sim, server) as client:
        with pytest.raises(TRANSPORT_ERRORS):
            client.post("/complaints/complaint", json=VALID_COMPLAINT)
        assert sim.counts()["complaints"] == 1  # the hub committed it
        [created] = sim.complaints()
        with pytest.raises(TRANSPORT_ERRORS):
            client.post(
                "/complaints/followup/add",
                files={
                    "user_id": (None, HUB_USER_ID),
                    "institution_from_id": (None, "100234"),
                    "institution_to_id": (None, "200102"),
                    "complaint_id": (None, str(created["id"])),
                    "info_disposition": (None, ""),
                    "template_code": (None, "reply_gateway"),
                    "rating": (None, "0"),
                    "is_secret": (None, "0"),
                    "content": (None, "Sudah kami cek."),
                },
            )
        assert [f["content"] for f in sim.follow_ups(created["id"])] == ["Sudah kami cek."]
        # Only the commit-then-drop routes lose answers; a refused write is answered.
        assert client.get(f"/complaints/{created['id']}/complaint").status_code == 200
        assert client.post("/complaints/complaint", json={**VALID_COMPLAINT, "title": ""}).status_code == 422
        with pytest.raises(TRANSPORT_ERRORS):  # the integrator's variant of the create path
            client.post("/complaints/complaint-lmw", json=VALID_COMPLAINT)
        assert sim.counts()["complaints"] == 2
    assert injected(sim)["lost_answers"] == 3


@pytest.mark.anyio
async def test_the_hub_adapter_sees_a_lost_create_as_of_unknown_outcome(hub) -> None:
    sim, server = hub
    control(server, lost_answer_rate=1.0)
    created = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    gateway_ref = "lg-0123456789abcdef0123"
    draft = HubComplaintDraft(
        complaint=Complaint(
            ref="12",
            title="Jalan berlubang",
            body="Ada lubang besar.",
            created_at=created,
            updated_at=created,
            status=gateway.RawStatus("belum terverifikasi"),
        ),
        gateway_ref=gateway_ref,
        category_id="41",
        classification_id="1",
        channel_id="6",
        route_fields={"location_id": 11},
        disposition_id="200101",
    )  # a create the hub accepts
    adapter = make_hub(sim, server)
    try:
        with pytest.raises(AmbiguousOutcomeError):  # not a TransientPeerError: never resent blindly
            await adapter.create_complaint(draft)
        hashtag = "#lg_0123456789abcdef0123"
        assert hashtag in adapter.describe_ref(gateway_ref)  # what an operator is told to look for
    finally:
        await adapter.aclose()
    [stored] = sim.complaints()  # committed, and findable by the gateway's reference (its hashtag)
    assert hashtag in stored["tags_raw"].split()
    assert sim.counts()["complaints"] == 1 and injected(sim)["lost_answers"] == 1


def test_malformed_json_is_cut_short_with_status_200(local) -> None:
    sim, server = local
    control(server, malformed_json_rate=1.0)
    with local_client(sim, server) as client:
        answer = client.get("/api/v1/aduan")
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
        with pytest.raises(ValueError):
            json.loads(answer.content)
        lampiran = client.get("/api/v1/lampiran/999")  # not a 200 JSON answer: untouched
        assert lampiran.status_code == 404 and lampiran.json()["status"] == "gagal"
    assert injected(sim)["malformed"] == 1


# --- the control endpoints ------------------------------------------------------------------------


def test_control_endpoints_change_faults_at_run_time(local) -> None:
    sim, server = local
    with local_client(sim, server) as client:
        assert client.get("/api/v1/aduan").status_code == 200
        shown = control(server, error_rate=1.0)
        assert shown["settings"]["error_rate"] == 1.0 and shown["seed"] == "lapor_hendi:11"
        assert client.get("/api/v1/aduan").status_code in (500, 502, 503)
        shown = httpx.get(server.control_url).json()
        assert shown["injected"]["errors"] == 1

        refused = httpx.post(server.control_url, json={"error_rate": 0.1, "bogus": 1})
        assert refused.status_code == 400 and "'bogus'" in refused.json()["error"]
        assert httpx.post(server.control_url, json=[1]).status_code == 400
        assert httpx.post(server.control_url, content=b"{not json").status_code == 400
        assert httpx.post(server.control_url, json={"error_rate": 2}).status_code == 400
        assert sim.faults.settings.error_rate == 1.0

        # Exempt from faults and auth (no key sent), and not counted as requests.
        control(server, reset_rate=1.0)
        before = sim.counts()["requests"]
        for _ in range(3):
            assert httpx.get(server.control_url).status_code == 200
        assert sim.counts()["requests"] == before

        reset = httpx.post(f"{server.control_url}/reset")
        assert reset.status_code == 200 and reset.json()["settings"] == FaultSettings().as_dict()
        assert reset.json()["injected"]["errors"] == 1  # the counts stay
        assert client.get("/api/v1/aduan").status_code == 200


# --- Lapor Hendi: idempotent writes ---------------------------------------------------------------


def test_lapor_hendi_writes_are_idempotent_by_ref_eksternal(local) -> None:
    sim, server = local
    with local_client(sim, server) as client:
        first = client.post("/api/v1/aduan/2/status", json={"status": "dalam proses", "ref_eksternal": "gw-s-1"})
        again = client.post("/api/v1/aduan/2/status", json={"status": "selesai", "ref_eksternal": "gw-s-1"})
        assert first.status_code == again.status_code == 200
        assert again.json()["data"]["id_riwayat"] == first.json()["data"]["id_riwayat"]
        assert again.json()["data"]["sudah_ada"] is True and "sudah_ada" not in first.json()["data"]
        assert [h["status_baru"] for h in sim.status_history(2)] == ["belum terverifikasi", "dalam proses"]
        assert sim.complaints()[1]["status"] == "dalam proses"

        one = client.post("/api/v1/aduan/2/tanggapan", json={"isi": "Sedang dicek.", "ref_eksternal": "gw-t-1"})
        two = client.post("/api/v1/aduan/2/tanggapan", json={"isi": "Sedang dicek.", "ref_eksternal": "gw-t-1"})
        assert one.json()["data"]["id_tanggapan"] == two.json()["data"]["id_tanggapan"]
        # The same ref on another complaint, or an empty/missing ref, is a new write.
        other = client.post("/api/v1/aduan/3/tanggapan", json={"isi": "Sedang dicek.", "ref_eksternal": "gw-t-1"})
        assert other.json()["data"]["id_tanggapan"] != one.json()["data"]["id_tanggapan"]
        for _ in range(2):
            client.post("/api/v1/aduan/2/tanggapan", json={"isi": "Tanpa ref.", "ref_eksternal": ""})
            client.post("/api/v1/aduan/2/tanggapan", json={"isi": "Tanpa ref."})
        assert [t["isi"] for t in sim.follow_ups(2)] == ["Sedang dicek."] + ["Tanpa ref."] * 4
        assert (
            client.post("/api/v1/aduan/999/status", json={"status": "selesai", "ref_eksternal": "gw-s-1"}).status_code
            == 404
        )


@pytest.mark.anyio
async def test_a_lost_lapor_hendi_write_repeated_by_ref_lands_once(local) -> None:
    sim, server = local
    assert LaporHendiApp.idempotent_writes == {gateway.Write.STATUS, gateway.Write.FOLLOW_UP, gateway.Write.HUB_REF}
    app = make_app(server.base_url, sim.api_key)
    try:
        control(server, lost_answer_rate=1.0)
        with pytest.raises(AmbiguousOutcomeError):
            await app.write_follow_up("4", "Sudah diteruskan ke DPU.", author=None, gateway_ref="gw-fu-9")
        with pytest.raises(AmbiguousOutcomeError):
            await app.write_status("4", gateway.RawStatus("dalam proses"), note=None, gateway_ref="gw-st-9")
        assert injected(sim)["lost_answers"] == 2
        httpx.post(f"{server.control_url}/reset")
        follow_up_id = await app.write_follow_up("4", "Sudah diteruskan ke DPU.", author=None, gateway_ref="gw-fu-9")
        status_id = await app.write_status("4", gateway.RawStatus("dalam proses"), note=None, gateway_ref="gw-st-9")
    finally:
        await app.aclose()
    assert [t["id_tanggapan"] for t in sim.follow_ups(4)] == [int(follow_up_id)]
    assert [h["id_riwayat"] for h in sim.status_history(4) if h["sumber"] == "eksternal"] == [int(status_id)]


# --- data faults ----------------------------------------------------------------------------------


class Drifts:
    """The simulator's drift choice, made to go through ``order`` in turn (so that every way of
    drifting is served, whatever the seed)."""

    def __init__(self, order: tuple[str, ...]) -> None:
        self.order, self.n = order, 0

    def __call__(self, options):
        assert set(self.order) <= set(options)
        choice = self.order[self.n % len(self.order)]
        self.n += 1
        return choice


@pytest.mark.anyio
async def test_sp4n_drift_is_transient_and_the_adapter_copes(hub, monkeypatch) -> None:
    sim, server = hub
    with sim.lock:
        complaint = sim.world.create(dict(VALID_COMPLAINT), sim.clock.now())
        for n in range(6):
            sim.world.add_follow_up(
                complaint,
                institution_from="200101",
                institution_to="100234",
                content=f"Tindak lanjut {n}.",
                now=sim.clock.now() + timedelta(minutes=n),
                source="officer",
            )
    ref = str(complaint.id)
    adapter = make_hub(sim, server)
    try:
        control(server, drift_rate=1.0)
        # Follow-ups: content, created_at, id, attachments, content, created_at.
        monkeypatch.setattr(sim.faults, "choice", Drifts(FOLLOW_UP_DRIFTS))
        drifted = await adapter.follow_ups(ref)
        assert len(drifted) == 6
        errors = [item for item in drifted if isinstance(item, RecordError)]
        # A field missing or malformed: one record refused, named by the field, never by its value.
        assert sorted(str(e).split("field ")[-1].split()[0] for e in errors) == [
            "'attachments'",
            "'content'",
            "'content'",
            "'created_at'",
            "'created_at'",
            "'id'",
        ]
        assert all("Tindak lanjut" not in str(e) for e in errors)
        # A follow-up served without its id is quarantined (the hub gives ids: a derived ref would make
        # a second copy when it is read with its id again), not read under another ref.
        assert [item for item in drifted if isinstance(item, FollowUp)] == []

        # Reads: each way of drifting (one per read); the current status always comes through.
        monkeypatch.setattr(sim.faults, "choice", Drifts(READ_DRIFTS))
        code = str(STATUS_CODES["Belum Terverifikasi"])
        for how in READ_DRIFTS:
            state = await adapter.read_complaint(ref)
            if how == "no_status_name":  # only the hub's (opaque) code: kept as it is
                assert (state.status.code, state.status.name) == (code, None)
            else:
                assert state.status.name == "Belum Terverifikasi"
            history = [c.status.name for c in state.status_changes]
            if how in ("no_data_logs", "log_data_invalid"):  # not read whole, and said so
                assert history == [] and not state.history_complete, how
            elif how == "log_without_data":  # the entry is no status change without its data
                assert history == [], how
            else:
                assert history == ["Belum Terverifikasi"] and state.history_complete, how
        assert injected(sim)["drifted"] == 6 + len(READ_DRIFTS)

        control(server, drift_rate=0.0)
        healthy = await adapter.follow_ups(ref)
        assert all(isinstance(item, FollowUp) for item in healthy) and len(healthy) == 6
        assert [f.content for f in healthy] == [f"Tindak lanjut {n}." for n in range(6)]
        again = await adapter.read_complaint(ref)
        assert (again.status.name, again.history_complete) == ("Belum Terverifikasi", True)
        assert [c.status.name for c in again.status_changes] == ["Belum Terverifikasi"]
    finally:
        await adapter.aclose()


def test_sp4n_unknown_status_codes_are_persistent_until_switched_off(hub) -> None:
    sim, server = hub
    clock = sim.clock
    with sim.lock:
        ids = [sim.world.create(dict(VALID_COMPLAINT), clock.now()).id for _ in range(10)]
    sim.resume()
    control(server, unknown_status_codes=True)
    for _ in range(3):
        clock.advance(3 * 3600)
        sim.tick()
    changed = [i for i in ids if len(sim.logs(i)) > 1]
    assert changed and injected(sim)["unknown_statuses"] == len(changed)
    for i in changed:
        assert [entry["status_new"] for entry in sim.logs(i)] == ["Belum Terverifikasi", "Koordinasi"]
    with hub_client(sim, server) as client:
        data = client.get(f"/complaints/{changed[0]}/complaint").json()["results"]["data"]
    assert (data["status_code"], data["status_name"]) == (STATUS_CODES["Koordinasi"], "Koordinasi")
    assert data["status_code"] not in {STATUS_CODES[name] for name in STATUS_NAMES}  # a code of its own

    control(server, unknown_status_codes=False)
    for _ in range(10):
        clock.advance(3 * 3600)
        sim.tick()
    moved_on = {c["id"]: c["status_name"] for c in sim.complaints()}
    assert any(moved_on[i] != "Koordinasi" for i in changed)
    assert injected(sim)["unknown_statuses"] == len(changed)


@pytest.mark.anyio
async def test_lapor_hendi_drift_is_transient_and_read_as_record_errors(local) -> None:
    sim, server = local
    app = make_app(server.base_url, sim.api_key)
    try:
        control(server, drift_rate=1.0)
        items = await collect(app.complaints_since(None))
        assert len(items) == 10 and injected(sim)["drifted"] == 10
        bad_status = [c for c in items if isinstance(c, Complaint)]
        assert all(c.status.code == "menunggu" for c in bad_status)
        assert all("judul" in e.reason or "diperbarui_pada" in e.reason for e in items if isinstance(e, RecordError))
        assert all(isinstance(e, RecordError) for e in await collect(app.status_changes_since(None)))

        control(server, drift_rate=0.0)
        items = await collect(app.complaints_since(None))
        assert all(isinstance(c, Complaint) and c.status.code == "belum terverifikasi" for c in items)
    finally:
        await app.aclose()


@pytest.mark.anyio
async def test_shifted_pages_do_not_hide_records_from_the_walk(local) -> None:
    """Pages of one query served one record off (as when records change between two page
    reads): the walk by time asks again from the newest record read, and reads a second
    crowded with records through again, so every record is seen all the same."""
    sim, server = local
    for _ in range(13):  # 23 complaints, 13 of them in one second, 5 a page
        sim.submit_complaint()
    sim.clock.advance(60)
    for _ in range(5):
        sim.clock.advance(60)
        sim.submit_complaint()
    every = {str(c["id_aduan"]) for c in sim.complaints()}
    app = make_app(server.base_url, sim.api_key, page_size=5)
    try:
        control(server, page_shift_rate=0.5)
        seen = await collect(app.complaints_since(None))
        assert injected(sim)["shifted_pages"] > 0
        assert {c.ref for c in seen} == every
        assert len(seen) == len(every)  # and nothing twice
    finally:
        await app.aclose()


# --- gateway simulate --fault ---------------------------------------------------------------------


def test_simulate_refuses_a_bad_fault_before_starting() -> None:
    from gateway.cli._commands import app

    result = CliRunner().invoke(app, ["simulate", "sp4n", "--fault", "error_rat=0.2"])
    assert result.exit_code == 2
    assert "unknown fault setting 'error_rat'" in result.output


def test_simulator_faults_reach_every_started_simulator() -> None:
    from gateway.cli._demo import _start

    servers = _start(
        ["sp4n", "lapor_hendi"],
        seed=1,
        clock=SimClock(),
        port=None,
        options={},
        faults={"error_rate": 0.2, "latency_ms": (50.0, 400.0)},
    )
    try:
        for server in servers.values():
            shown = httpx.get(server.control_url).json()["settings"]
            assert shown["error_rate"] == 0.2 and shown["latency_ms"] == [50.0, 400.0]
    finally:
        for server in servers.values():
            server.stop()


def test_stop_does_not_wait_for_a_held_request() -> None:
    sim = sp4n_simulator(faults={"timeout_rate": 1.0, "hold_seconds": 60})
    server = serve(sim)
    with hub_client(sim, server, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/masters/templates")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < timedelta(seconds=5).total_seconds()
