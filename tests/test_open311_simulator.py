"""The Open311 GeoReport v2 simulator (Kota Makassar) over real HTTP on loopback: the
spec's resources, fields, times with offsets, error lists, tokens of batch services,
the 90-day window and the 1000-request limit, the officers, and faults.

Deterministic: seeded simulators, a clock that only moves when told, no sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.open311.simulator import FIELDS, Open311Simulator, create_simulator

pytestmark = pytest.mark.e2e


@pytest.fixture
def served() -> Iterator[tuple[Open311Simulator, httpx.Client]]:
    sim = create_simulator(seed=7, clock=SimClock(), initial_requests=6)
    sim.officers_active = False
    with SimulatorServer(sim) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield sim, client


def post(sim: Open311Simulator, client: httpx.Client, **form: str) -> httpx.Response:
    return client.post("/requests.json", data={"api_key": sim.api_key, **form})


def assert_errors(answer: httpx.Response, status: int, fragment: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert isinstance(body, list) and body and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status and fragment in body[0]["description"], body


def test_services_and_a_service_definition(served) -> None:
    _, client = served
    services = client.get("/services.json").json()
    assert {s["service_code"] for s in services} >= {"JLN-01", "PHN-01"}
    assert set(services[0]) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert {s["type"] for s in services} == {"realtime", "batch"}
    definition = client.get("/services/JLN-01.json").json()
    assert definition["service_code"] == "JLN-01"
    assert definition["attributes"][0]["code"] == "TINGKAT" and definition["attributes"][0]["required"] is True
    assert client.get("/services/SMP-01.json").json() == {"service_code": "SMP-01", "attributes": []}
    assert_errors(client.get("/services/NOPE.json"), 404, "NOPE")


def test_listed_requests_have_the_spec_fields_times_with_offsets_and_no_personal_data(served) -> None:
    sim, client = served
    listed = client.get("/requests.json").json()
    assert len(listed) == 6
    assert all(list(r) == list(FIELDS) for r in listed)
    assert all(r["requested_datetime"].endswith("+08:00") for r in listed)
    assert datetime.fromisoformat(listed[-1]["requested_datetime"]) == sim.clock.now() - timedelta(minutes=10)
    text = json.dumps(listed)
    for r in listed:
        for value in sim.submitter(r["service_request_id"]).values():
            assert value not in text
    photo = next(r["media_url"] for r in listed if r["media_url"])
    got = client.get(photo)
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")


def test_post_a_request_and_read_it_back(served) -> None:
    sim, client = served
    answer = post(
        sim,
        client,
        service_code="JLN-01",
        lat="-5.1401",
        long="119.4220",
        description="Lubang besar",
        email="warga@example.id",
        **{"attribute[TINGKAT]": "berat"},
    )
    assert answer.status_code == 200, answer.text
    [created] = answer.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    [shown] = client.get(f"/requests/{created['service_request_id']}.json").json()
    assert (shown["status"], shown["lat"], shown["description"]) == ("open", -5.1401, "Lubang besar")
    assert "warga@example.id" not in json.dumps(shown)
    assert sim.submitter(created["service_request_id"])["email"] == "warga@example.id"


@pytest.mark.parametrize(
    ("form", "status", "fragment"),
    [
        ({}, 400, "service_code was not provided"),
        ({"service_code": "NOPE", "address_string": "x"}, 404, "NOPE"),
        ({"service_code": "SMP-01"}, 400, "location is required"),
        ({"service_code": "SMP-01", "lat": "-5.1"}, 400, "together"),
        ({"service_code": "JLN-01", "address_string": "x"}, 400, "attribute[TINGKAT] is required"),
        ({"service_code": "JLN-01", "address_string": "x", "attribute[TINGKAT]": "parah"}, 400, "must be one of"),
        ({"service_code": "SMP-01", "address_string": "x", "description": "a" * 4001}, 400, "4000"),
    ],
)
def test_a_bad_post_is_refused_with_the_spec_error_list(served, form, status, fragment) -> None:
    sim, client = served
    assert_errors(post(sim, client, **form), status, fragment)
    assert sim.counts()["requests"] == 6


def test_without_the_api_key_a_post_is_403(served) -> None:
    _, client = served
    assert_errors(client.post("/requests.json", data={"service_code": "SMP-01"}), 403, "api_key")
    assert_errors(client.post("/requests.json", data={"api_key": "x", "service_code": "SMP-01"}), 403, "api_key")


def test_a_batch_service_answers_a_token_that_gives_the_id_after_the_batch_run(served) -> None:
    sim, client = served
    [answer] = post(sim, client, service_code="PHN-01", address_string="Jl. Penghibur").json()
    assert "service_request_id" not in answer and answer["token"]
    token = answer["token"]
    assert client.get(f"/tokens/{token}.json").json() == [{"service_request_id": None, "token": token}]
    sim.tick()  # the batch run happens even while the officers rest
    [resolved] = client.get(f"/tokens/{token}.json").json()
    assert resolved["service_request_id"] and client.get(f"/requests/{resolved['service_request_id']}.json").is_success
    assert_errors(client.get("/tokens/nope.json"), 404, "nope")


def test_the_window_filters_requested_datetime_inclusively(served) -> None:
    sim, client = served
    listed = client.get("/requests.json").json()
    third = listed[2]["requested_datetime"]
    got = client.get("/requests.json", params={"start_date": third}).json()
    assert [r["service_request_id"] for r in got] == [r["service_request_id"] for r in listed[2:]]
    utc = datetime.fromisoformat(third).astimezone().isoformat()  # the same instant in another offset
    assert len(client.get("/requests.json", params={"end_date": utc}).json()) == 3
    assert_errors(client.get("/requests.json", params={"start_date": "2026-11-02T08:00:00"}), 400, "offset")
    assert_errors(client.get("/requests.json", params={"start_date": "kemarin"}), 400, "W3C")
    wide = {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-11-01T00:00:00+08:00"}
    assert_errors(client.get("/requests.json", params=wide), 400, "90 days")
    sim.clock.advance(91 * 86400)
    assert client.get("/requests.json").json() == []  # the default: the most recent 90 days


def test_status_code_and_id_filters(served) -> None:
    sim, client = served
    listed = client.get("/requests.json").json()
    first, second = listed[0]["service_request_id"], listed[1]["service_request_id"]
    sim.close(first, "Sudah diperbaiki.")
    closed = client.get("/requests.json", params={"status": "closed"}).json()
    assert [(r["service_request_id"], r["status_notes"]) for r in closed] == [(first, "Sudah diperbaiki.")]
    assert len(client.get("/requests.json", params={"status": "open,closed"}).json()) == 6
    assert_errors(client.get("/requests.json", params={"status": "pending"}), 400, "open or closed")
    code = listed[0]["service_code"]
    assert all(r["service_code"] == code for r in client.get("/requests.json", params={"service_code": code}).json())
    # service_request_id overrides every other argument, in the order asked, unknown ids left out
    got = client.get("/requests.json", params={"service_request_id": f"{second},999,{first}", "status": "open"})
    assert [r["service_request_id"] for r in got.json()] == [second, first]


def test_one_answer_lists_at_most_max_requests() -> None:
    sim = create_simulator(seed=1, clock=SimClock(), initial_requests=5, max_requests=3)
    with SimulatorServer(sim) as server:
        listed = httpx.get(f"{server.base_url}/requests.json").json()
        assert len(listed) == 3  # the first three by requested_datetime: the rest needs a later start_date
        rest = httpx.get(f"{server.base_url}/requests.json", params={"start_date": listed[-1]["requested_datetime"]})
        # start_date is inclusive: the walk goes on from the last one listed, which comes again
        assert [r["service_request_id"] for r in listed] == ["260001", "260002", "260003"]
        assert [r["service_request_id"] for r in rest.json()] == ["260003", "260004", "260005"]


def test_officers_note_then_close_on_the_clock_deterministically() -> None:
    def run() -> list[dict]:
        sim = create_simulator(seed=5, clock=SimClock(), initial_requests=4, requests_per_tick=0, close_probability=1)
        for _ in range(2):
            sim.clock.advance(3600)
            sim.tick()
        return sim.service_requests()

    first = run()
    assert first == run()
    assert {r["status"] for r in first} == {"closed"} and all(r["status_notes"] for r in first)
    assert all(r["updated_datetime"] - r["requested_datetime"] >= timedelta(hours=2) for r in first)


def test_wrong_format_unknown_path_and_other_jurisdiction(served) -> None:
    _, client = served
    assert_errors(client.get("/requests.xml"), 400, "json")
    assert_errors(client.get("/nope"), 404, "not a resource")
    assert_errors(client.get("/requests.json", params={"jurisdiction_id": "sfgov.org"}), 404, "sfgov.org")
    assert client.get("/services.json", params={"jurisdiction_id": "makassarkota.go.id"}).is_success


def test_faults_answer_in_the_error_list_and_a_lost_answer_still_creates_the_request(served) -> None:
    sim, client = served
    sim.faults.configure(error_rate=1.0)
    answer = client.get("/services.json")
    assert answer.status_code in (500, 502, 503) and answer.json()[0]["code"] == answer.status_code
    sim.faults.configure(error_rate=0.0, lost_answer_rate=1.0)
    with pytest.raises(httpx.TransportError):
        post(sim, client, service_code="SMP-01", address_string="Jl. Somba Opu")
    assert sim.counts()["requests"] == 7  # committed: the spec has no idempotency, a resend makes an 8th
    assert client.get("/requests.json").is_success  # GETs are not commit-then-drop routes
    sim.faults.reset()
    sim.faults.configure(drift_rate=1.0)
    drifted = client.get("/requests.json").json()
    assert any(
        list(r) != list(FIELDS) or not str(r["requested_datetime"]).endswith("+08:00") or isinstance(r["lat"], str)
        for r in drifted
    )
    assert sim.faults.snapshot()["injected"]["drifted"] == 7


def test_unknown_status_codes_make_officers_set_a_status_outside_the_spec() -> None:
    sim = create_simulator(seed=2, clock=SimClock(), initial_requests=2, requests_per_tick=0, close_probability=1)
    sim.faults.configure(unknown_status_codes=True)
    sim.tick()
    assert {r["status"] for r in sim.service_requests()} == {"acknowledged"}
