"""The Suara Arek simulator (Kota Malang) over real HTTP on loopback: OAuth2 client
credentials and token expiry, the opaque-cursor changes feed walked while reports
change (nothing skipped), the Idempotency-Key of responses, the naturally idempotent
state write, the officers, and faults.

Deterministic: seeded simulators, clocks that only move when told, no sleeps.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.suara_arek.simulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SuaraArekSimulator,
    create_simulator,
)

pytestmark = pytest.mark.e2e
CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
}


@pytest.fixture
def served() -> Iterator[tuple[SuaraArekSimulator, httpx.Client]]:
    sim = create_simulator(seed=11, clock=SimClock(), token_clock=SimClock(), initial_reports=7)
    sim.officers_active = False
    with SimulatorServer(sim) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {token(client)}"
        yield sim, client


def token(client: httpx.Client, **form: str) -> str:
    answer = client.post("/oauth/token", data={**CREDENTIALS, **form}, headers={"Authorization": ""})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 120)
    assert answer.headers["Cache-Control"] == "no-store"
    return str(body["access_token"])


def walk(client: httpx.Client, cursor: str | None = None, limit: int = 2, between: Any = None) -> tuple[list, str]:
    """Every page of the feed from ``cursor``; ``between(page_number)`` runs after each page."""
    seen: list[dict[str, Any]] = []
    page = 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v2/reports/changes", params=params).json()
        seen += body["data"]
        cursor = body["next_cursor"]
        page += 1
        if between is not None:
            between(page)
        if not body["has_more"]:
            return seen, cursor


def test_a_token_by_form_or_basic_and_the_oauth_errors(served) -> None:
    _, client = served
    basic = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    )
    assert basic.status_code == 200 and basic.json()["access_token"].startswith("sat_")
    wrong = client.post("/oauth/token", data={**CREDENTIALS, "client_secret": "salah"}, headers={"Authorization": ""})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert "salah" not in wrong.text
    grant = client.post("/oauth/token", data={**CREDENTIALS, "grant_type": "password"}, headers={"Authorization": ""})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")


def test_no_token_or_an_expired_one_is_401_and_a_new_token_works(served) -> None:
    sim, client = served
    bare = client.get("/v2/reports/changes", headers={"Authorization": ""})
    assert (bare.status_code, bare.json()["error"]) == (401, "invalid_token")
    assert bare.headers["WWW-Authenticate"].startswith('Bearer realm="suara-arek", error="invalid_token"')
    sim.token_clock.advance(119)
    assert client.get("/v2/reports/changes").status_code == 200
    sim.clock.advance(3600)  # the world's clock does not age tokens
    assert client.get("/v2/reports/changes").status_code == 200
    sim.token_clock.advance(1)
    expired = client.get("/v2/reports/changes")
    assert (expired.status_code, expired.json()["message"]) == (401, "the access token expired")
    client.headers["Authorization"] = f"Bearer {token(client)}"
    assert client.get("/v2/reports/changes").status_code == 200
    assert sim.counts()["unauthorized"] == 2


def test_the_feed_shows_reports_with_offsets_and_english_fields_with_indonesian_states(served) -> None:
    _, client = served
    seen, _ = walk(client, limit=200)
    assert [r["id"] for r in seen] == [f"sa-{n:06d}" for n in range(1, 8)]
    first = seen[0]
    assert first["state"] == "menunggu" and first["updated_at"].endswith("+07:00")
    assert datetime.fromisoformat(first["updated_at"]).utcoffset() == timedelta(hours=7)
    assert {"title", "description", "category", "location", "reporter", "attachments", "created_at"} <= set(first)
    reporter = next(r["reporter"] for r in seen if r["reporter"])
    assert set(reporter) == {"name", "nik", "phone", "email"} and len(reporter["nik"]) == 16


def test_a_walk_while_reports_change_skips_nothing_and_ends_on_each_reports_latest_version(served) -> None:
    sim, client = served

    def meanwhile(page: int) -> None:
        if page == 1:  # an officer answers a report already passed, and one not yet reached
            sim.clock.advance(60)
            sim.respond("sa-000001", "Sudah dicek.")
            sim.respond("sa-000006", "Dijadwalkan.")
        if page == 2:  # a client writes a state on a passed report
            sim.clock.advance(60)
            client.put("/v2/reports/sa-000002/state", json={"state": "diproses"}).raise_for_status()

    seen, cursor = walk(client, limit=2, between=meanwhile)
    latest = {r["id"]: r for r in seen}  # the last copy of each report the walk saw
    assert latest == {r["id"]: r for r in sim.reports()}
    assert [r["id"] for r in seen][-3:] == ["sa-000001", "sa-000006", "sa-000002"]  # moved to the end, in change order
    assert [r["id"] for r in seen].count("sa-000006") == 1  # changed before it was reached: listed once, latest
    # At the end: nothing new, the same cursor back; a later change comes after it.
    again = client.get("/v2/reports/changes", params={"cursor": cursor}).json()
    assert (again["data"], again["next_cursor"], again["has_more"]) == ([], cursor, False)
    sim.set_state("sa-000003", "selesai", "Sudah ditangani.")
    later = client.get("/v2/reports/changes", params={"cursor": cursor}).json()["data"]
    assert [(r["id"], r["state"]) for r in later] == [("sa-000003", "selesai")]


def test_bad_cursor_or_limit_is_400(served) -> None:
    _, client = served
    for params in ({"cursor": "bm90LW91cnM"}, {"cursor": "!!!"}, {"limit": 0}, {"limit": 201}, {"limit": "x"}):
        answer = client.get("/v2/reports/changes", params=params)
        assert answer.status_code == 400 and answer.json()["error"] in ("invalid_cursor", "invalid_parameter"), params
    forged = base64.urlsafe_b64encode(b"sa1:1").decode().rstrip("=")  # opaque, but one this API would issue
    assert client.get("/v2/reports/changes", params={"cursor": forged}).status_code == 200


def test_responses_per_report_with_the_idempotency_key(served) -> None:
    sim, client = served
    body = {"message": "Laporan diteruskan ke LAPOR!", "author_name": "LAPOR!-SP4N"}
    first = client.post("/v2/reports/sa-000004/responses", json=body, headers={"Idempotency-Key": "fu-1"})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = client.post("/v2/reports/sa-000004/responses", json=body, headers={"Idempotency-Key": "fu-1"})
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (201, first.json(), "true")
    other = client.post(
        "/v2/reports/sa-000004/responses", json={"message": "lain"}, headers={"Idempotency-Key": "fu-1"}
    )
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    for _ in range(2):  # without a key, each write is a new response
        assert client.post("/v2/reports/sa-000004/responses", json={"message": "tanpa kunci"}).status_code == 201
    listed = client.get("/v2/reports/sa-000004/responses").json()["data"]
    assert [r["message"] for r in listed] == [body["message"], "tanpa kunci", "tanpa kunci"]
    assert listed[0]["author"] == {"type": "client", "client_id": DEFAULT_CLIENT_ID, "name": "LAPOR!-SP4N"}
    assert client.get("/v2/reports/sa-000004").json()["response_count"] == 3
    assert sim.counts()["idempotent_replays"] == 1
    assert client.get("/v2/reports/nope/responses").status_code == 404
    assert client.post("/v2/reports/sa-000004/responses", json={"message": " "}).status_code == 422


def test_a_lost_answer_then_a_resend_with_the_same_key_writes_once(served) -> None:
    sim, client = served
    sim.faults.configure(lost_answer_rate=1.0)
    with pytest.raises(httpx.TransportError):
        client.post(
            "/v2/reports/sa-000005/responses", json={"message": "Tindak lanjut"}, headers={"Idempotency-Key": "k"}
        )
    sim.faults.reset()
    resent = client.post(
        "/v2/reports/sa-000005/responses", json={"message": "Tindak lanjut"}, headers={"Idempotency-Key": "k"}
    )
    assert resent.status_code == 201 and resent.headers["Idempotent-Replayed"] == "true"
    assert len(sim.responses("sa-000005")) == 1


def test_the_state_write_is_naturally_idempotent_and_only_the_current_state_is_kept(served) -> None:
    sim, client = served
    _, cursor = walk(client, limit=200)
    sim.clock.advance(60)
    done = client.put("/v2/reports/sa-000002/state", json={"state": "selesai", "note": "Beres."})
    assert done.status_code == 200 and done.json()["state"] == "selesai"
    assert done.json()["state_changed_by"] == {"type": "client", "client_id": DEFAULT_CLIENT_ID}
    _, cursor = walk(client, cursor, limit=200)
    sim.clock.advance(60)
    same = client.put("/v2/reports/sa-000002/state", json={"state": "selesai", "note": "Beres."})
    assert same.json() == done.json()  # nothing moved: not even updated_at
    assert client.get("/v2/reports/changes", params={"cursor": cursor}).json()["data"] == []
    bad = client.put("/v2/reports/sa-000002/state", json={"state": "closed"})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_state")
    assert "history" not in done.json() and "state_history" not in done.json()


def test_officers_act_deterministically_and_unknown_states_are_a_fault() -> None:
    def run(unknown: bool) -> list[dict[str, Any]]:
        sim = create_simulator(seed=4, clock=SimClock(), initial_reports=5, reports_per_tick=0, act_probability=1)
        sim.faults.configure(unknown_status_codes=unknown)
        for _ in range(3):
            sim.clock.advance(600)
            sim.tick()
        return sim.reports()

    first = run(False)
    assert first == run(False)
    assert {r["state"] for r in first} <= {"diproses", "selesai", "ditolak"} and len(
        {r["updated_at"] for r in first}
    ) > 1
    assert "dikembalikan" in {r["state"] for r in run(True)}


def test_faults_in_the_apps_envelope_page_shifts_repeat_never_skip(served) -> None:
    sim, client = served
    sim.faults.configure(error_rate=1.0)
    failed = client.get("/v2/reports/changes")
    assert failed.status_code in (500, 502, 503) and failed.json()["error"] == "server_error"
    sim.faults.reset()
    sim.faults.configure(page_shift_rate=1.0)
    seen, _ = walk(client, limit=3)
    ids = [r["id"] for r in seen]
    assert set(ids) == {f"sa-{n:06d}" for n in range(1, 8)} and len(ids) > 7
    sim.faults.reset()
    sim.faults.configure(drift_rate=1.0)
    drifted = client.get("/v2/reports/changes", params={"limit": 200}).json()["data"]
    assert all("state" not in r or isinstance(r["location"], str) or "+" not in r["updated_at"] for r in drifted)


def test_attachments_download_with_the_token(served) -> None:
    sim, client = served
    with_photo = next(r for r in sim.reports() if r["attachments"])
    item = with_photo["attachments"][0]
    got = client.get(f"/v2/attachments/{item['id']}")
    assert got.status_code == 200 and len(got.content) == item["size"] and got.content.startswith(b"\x89PNG")
    assert client.get(f"/v2/attachments/{item['id']}", headers={"Authorization": ""}).status_code == 401
    assert client.get("/v2/attachments/1").status_code == 404


def test_an_unknown_endpoint_answers_in_the_envelope(served) -> None:
    _, client = served
    answer = client.get("/v2/complaints")
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")
    assert client.delete("/v2/reports/sa-000001").json()["error"] == "not_found"  # 405, in the envelope too
