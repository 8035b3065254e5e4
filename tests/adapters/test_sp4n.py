"""The sp4n hub adapter: its translation against a respx-mocked hub, and one real
round trip against the simulator over loopback HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest
import respx

import gateway
from adapters.sp4n import Sp4nHub
from adapters.sp4n.simulator import Sp4nSimulator, create_simulator
from gateway import (
    AttachmentContent,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    InstanceContext,
    Location,
    PermanentPeerError,
    RawStatus,
    RecordError,
    Reporter,
    RetryPolicy,
)
from gateway.simulation import SimClock, SimulatorServer

BASE = "http://hub.test"
SECRETS = {"authorization": "test-bearer-key", "token": "0b7c6d1e-aaaa-bbbb-cccc-1234567890ab"}
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01)

NAME, NIK, PHONE, EMAIL, ADDRESS = ("Siti Rahmawati", "3374012345670001", "081234567890",
                                    "siti.r@example.id", "Jl. Pandanaran 12 RT 03/RW 04")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_hub(base_url: str = BASE, secrets: dict[str, str] | None = None) -> Sp4nHub:
    context = InstanceContext(name="sp4n", base_url=base_url, timezone=gateway.WIB,
                              secrets=dict(secrets or SECRETS), retry=FAST_RETRY,
                              settings=Sp4nHub.Settings(user_id="9001", institution_id="100234"))
    return Sp4nHub(context, client=httpx.AsyncClient())


def make_draft(*, attachment_ids: tuple[str, ...] = (), anonymous: bool = False) -> HubComplaintDraft:
    created = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
    complaint = Complaint(
        ref="LH-2026-0042", title="Jalan berlubang di Jl. Kaligawe",
        body="Ada lubang besar di tengah jalan, berbahaya bagi pengendara motor.",
        created_at=created, updated_at=created, status=RawStatus("belum terverifikasi"),
        category="Jalan", location=Location(description="depan pasar", subdistrict="Kaligawe", district="Gayamsari"),
        channel="android", incident_at=datetime(2026, 11, 26, 18, 30, tzinfo=timezone.utc),  # 27-11 01:30 WIB
        is_anonymous=anonymous, reporter=None if anonymous else Reporter(
            name=NAME, nik=NIK, phone=PHONE, email=EMAIL, address=ADDRESS))
    return HubComplaintDraft(complaint=complaint, gateway_ref="gw-7f3a9c", category_id="41",
                             classification_id="1", channel_id="6", attachment_ids=attachment_ids,
                             route_fields={"disposition_id": "100234", "location_id": "3374"})


def ok(results: dict, **extra) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "message": "OK", "results": results, **extra})


@pytest.fixture
def hub_mock():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def hub():
    adapter = make_hub()
    yield adapter
    await adapter.aclose()


# -- translation against a mocked hub ------------------------------------------------------------

@pytest.mark.anyio
async def test_both_auth_headers_are_sent(hub_mock, hub):
    route = hub_mock.get("/complaints/4000001/followups").mock(return_value=ok({"data": []}))
    assert await hub.follow_ups("4000001") == []
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {SECRETS['authorization']}"
    assert request.headers["token"] == SECRETS["token"]


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [
    {"results": {"complaint_id": 4000123}},
    {"results": {"data": {"complaint_id": 4000123}}},
    {"results": {"data": {"id": 4000123}}},
    {"results": {}, "data": {"complaint_id": "4000123"}},
    {"results": {}, "complaint_id": 4000123},
], ids=["results.complaint_id", "results.data.complaint_id", "results.data.id", "data.complaint_id",
        "complaint_id"])
async def test_complaint_id_is_found_at_each_path(hub_mock, hub, answer):
    hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json={"success": True, **answer}))
    assert await hub.create_complaint(make_draft()) == "4000123"


@pytest.mark.anyio
async def test_create_without_complaint_id_is_permanent(hub_mock, hub):
    hub_mock.post("/complaints/complaint").mock(return_value=ok({"note": "secret-ish body text"}))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.create_complaint(make_draft())
    assert "no complaint id" in str(caught.value)
    assert "secret-ish" not in str(caught.value)


@pytest.mark.anyio
async def test_create_body_has_no_personal_data_and_the_mapped_fields(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(return_value=ok({"complaint_id": 4000001}))
    await hub.create_complaint(make_draft())
    raw = route.calls.last.request.content.decode()
    for value in (NAME, NIK, PHONE, EMAIL, ADDRESS, "Siti", "Pandanaran"):
        assert value not in raw
    body = json.loads(raw)
    assert body == {
        "title": "Jalan berlubang di Jl. Kaligawe",
        "content": "Ada lubang besar di tengah jalan, berbahaya bagi pengendara motor.\n\n"
                   "Lokasi: depan pasar, Kel. Kaligawe, Kec. Gayamsari",
        "channel": "6", "user_id": "9001", "classification_id": "1", "disposition_id": "100234",
        "category_id": "41", "location_id": "3374", "date_of_incident": "2026-11-27",
        "tags_raw": "lapor-gateway,gw-7f3a9c", "is_anonymous": 0, "is_secret": 0, "attachments": "[]",
    }


@pytest.mark.anyio
async def test_attachments_are_uploaded_then_sent_as_an_id_string(hub_mock, hub):
    upload = hub_mock.post("/complaints/complaint/file").mock(
        return_value=ok({"docs": [{"id": 12, "filename": "a.jpg"}, {"id": 13, "filename": "b.pdf"}]}))
    create = hub_mock.post("/complaints/complaint").mock(return_value=ok({"complaint_id": 4000001}))
    files = [AttachmentContent("a.jpg", "image/jpeg", b"\xff\xd8jpeg"),
             AttachmentContent("b.pdf", "application/pdf", b"%PDF-1.4")]
    ids = await hub.upload_attachments(files)
    assert ids == ["12", "13"]
    sent = upload.calls.last.request
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.content.count(b'name="attachments[]"') == 2
    await hub.create_complaint(make_draft(attachment_ids=tuple(ids)))
    assert json.loads(create.calls.last.request.content)["attachments"] == "[12,13]"


@pytest.mark.anyio
async def test_no_upload_call_without_files(hub_mock, hub):
    upload = hub_mock.post("/complaints/complaint/file")
    assert await hub.upload_attachments([]) == []
    assert upload.call_count == 0


@pytest.mark.anyio
async def test_follow_up_times_are_read_as_wib(hub_mock, hub):
    hub_mock.get("/complaints/4000001/followups").mock(return_value=ok({"data": [
        {"id": 7000001, "complaint_id": 4000001, "institution_from_id": 200101,
         "institution_from_name": "Dinas Pekerjaan Umum", "institution_to_id": 100234,
         "content": "Sudah kami tambal.", "created_at": "27-11-2026 14:05:00", "is_secret": 0},
    ]}))
    [follow_up] = await hub.follow_ups("4000001")
    assert isinstance(follow_up, FollowUp)
    assert follow_up.created_at == datetime(2026, 11, 27, 7, 5, tzinfo=timezone.utc)
    assert (follow_up.ref, follow_up.complaint_ref, follow_up.author) == ("7000001", "4000001",
                                                                         "Dinas Pekerjaan Umum")


@pytest.mark.anyio
async def test_a_malformed_follow_up_is_a_record_error_and_the_others_parse(hub_mock, hub):
    hub_mock.get("/complaints/4000001/followups").mock(return_value=ok({"data": [
        {"id": 1, "content": "Pertama", "created_at": "27-11-2026 08:00:00", "institution_from_name": "DPU"},
        {"id": 2, "content": "Rahasia isi laporan", "created_at": "2026/11/27 9am"},
        {"id": 3, "created_at": "27-11-2026 10:00:00"},
        {"content": "tanpa id", "created_at": "27-11-2026 11:00:00"},
        {"id": 5, "content": "Terakhir", "created_at": "27-11-2026 12:00:00"},
    ]}))
    result = await hub.follow_ups("4000001")
    assert [type(r).__name__ for r in result] == ["FollowUp", "RecordError", "RecordError", "RecordError",
                                                  "FollowUp"]
    bad_time, no_content, no_id = result[1], result[2], result[3]
    assert isinstance(bad_time, RecordError) and bad_time.record_ref == "2" and "created_at" in bad_time.reason
    assert "Rahasia" not in str(bad_time) and "9am" not in str(bad_time)
    assert isinstance(no_content, RecordError) and no_content.record_ref == "3" and "content" in no_content.reason
    assert isinstance(no_id, RecordError) and no_id.record_ref is None and "'id'" in no_id.reason
    assert bad_time.operation == "GET /complaints/{id}/followups"
    assert [r.ref for r in result if isinstance(r, FollowUp)] == ["1", "5"]


@pytest.mark.anyio
async def test_read_complaint_status_and_history(hub_mock, hub):
    hub_mock.get("/complaints/4000001/complaint").mock(return_value=ok({
        "data": {"status_code": "disposition", "status_name": "Didisposisi", "disposition_id": 200101,
                 "disposition_name": "Dinas Pekerjaan Umum"},
        "data_logs": [
            {"id": 6000001, "status_old": None, "status_new": "wait", "status_new_name": "Belum Terverifikasi",
             "content": "x", "created_at": "27-11-2026 08:00:00"},
            {"id": 6000002, "status_old": "wait", "status_new": "verification", "status_new_name": "Terverifikasi",
             "created_at": "27-11-2026 09:00:00"},
            {"id": 6000003, "content": "catatan tanpa status", "created_at": "27-11-2026 09:30:00"},
            {"id": 6000004, "status_old": "verification", "status_new": "disposition",
             "status_new_name": "Didisposisi", "created_at": "27-11-2026 10:00:00"},
        ]}))
    state = await hub.read_complaint("4000001")
    assert state.status == RawStatus("disposition", "Didisposisi")
    assert (state.disposition_id, state.disposition_name) == ("200101", "Dinas Pekerjaan Umum")
    assert [c.ref for c in state.status_changes] == ["6000001", "6000002", "6000004"]
    first, second = state.status_changes[:2]
    assert first.previous is None and second.previous == RawStatus("wait")
    assert second.status == RawStatus("verification", "Terverifikasi")
    assert second.changed_at == datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)
    assert second.complaint_ref == "4000001"


@pytest.mark.anyio
async def test_add_follow_up_is_multipart_from_our_institution(hub_mock, hub):
    route = hub_mock.post("/complaints/followup/add").mock(return_value=ok({"data": {"id": 7000009}}))
    assert await hub.add_follow_up("4000001", "Sudah ditangani.", gateway_ref="gw-1") == "7000009"
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("multipart/form-data")
    for name, value in [("complaint_id", b"4000001"), ("institution_from_id", b"100234"),
                        ("institution_to_id", b"100234"), ("content", b"Sudah ditangani."),
                        ("is_secret", b"0"), ("rating", b"0")]:
        assert f'name="{name}"\r\n\r\n'.encode() + value in request.content
    assert b'name="template_code"\r\n\r\n\r\n' in request.content


@pytest.mark.anyio
async def test_success_false_on_200_is_permanent_without_the_message(hub_mock, hub):
    hub_mock.post("/complaints/followup/add").mock(return_value=httpx.Response(
        200, json={"success": False, "message": "Konten mengandung data pribadi 081234567890"}))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.add_follow_up("4000001", "x", gateway_ref="gw-1")
    assert "success=false" in str(caught.value)
    assert "081234567890" not in str(caught.value)


@pytest.mark.anyio
async def test_a_get_is_retried_after_503(hub_mock, hub):
    route = hub_mock.get("/complaints/4000001/followups").mock(side_effect=[
        httpx.Response(503, text="upstream down"), ok({"data": []})])
    assert await hub.follow_ups("4000001") == []
    assert route.call_count == 2


@pytest.mark.anyio
async def test_422_on_create_is_permanent_and_names_no_body(hub_mock, hub):
    hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(422, json={
        "success": False, "message": "The given data was invalid.",
        "errors": {"category_id": ["The selected category id is invalid."]}}))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.create_complaint(make_draft())
    text = str(caught.value)
    assert caught.value.status_code == 422
    assert text == "sp4n: POST /complaints/complaint: answered HTTP 422"
    for leaked in ("invalid", "category", "Kaligawe", "gw-7f3a9c", SECRETS["token"]):
        assert leaked not in text


@pytest.mark.anyio
async def test_a_create_is_not_repeated_after_a_500(hub_mock, hub):
    """A 500 may come after the hub committed: the outcome is unknown, never retried blindly."""
    route = hub_mock.post("/complaints/complaint").mock(side_effect=[
        httpx.Response(500), ok({"complaint_id": 4000001})])
    with pytest.raises(gateway.AmbiguousOutcomeError):
        await hub.create_complaint(make_draft())
    assert route.call_count == 1


@pytest.mark.anyio
async def test_a_create_answered_503_was_not_processed_and_is_retried(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(side_effect=[
        httpx.Response(503), ok({"complaint_id": 4000001})])
    assert await hub.create_complaint(make_draft()) == "4000001"
    assert route.call_count == 2


@pytest.mark.anyio
async def test_errors_carry_the_path_template_not_the_id(hub_mock, hub):
    hub_mock.get("/complaints/4000777/complaint").mock(return_value=httpx.Response(404))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.read_complaint("4000777")
    assert "4000777" not in str(caught.value)
    assert "GET /complaints/{id}/complaint" in str(caught.value)


# -- a real round trip through the simulator -----------------------------------------------------

@pytest.fixture
def simulator():
    sim = create_simulator(seed=7, clock=SimClock())
    with SimulatorServer(sim, port=0) as server:
        yield sim, server


@pytest.mark.anyio
async def test_round_trip_through_the_simulator(simulator):
    sim, server = simulator
    assert isinstance(sim, Sp4nSimulator)
    env = sim.demo_environment()
    hub = make_hub(server.base_url, {"authorization": env["SP4N_AUTHORIZATION"], "token": env["SP4N_TOKEN"]})
    try:
        ids = await hub.upload_attachments([AttachmentContent("lubang.jpg", "image/jpeg", b"\xff\xd8data")])
        assert len(ids) == 1
        refs = [await hub.create_complaint(make_draft(attachment_ids=tuple(ids))) for _ in range(5)]
        assert refs == [str(4_000_001 + i) for i in range(5)]  # found whatever path each answer used
        stored = sim.complaints()[0]
        assert stored["tags_raw"] == "lapor-gateway,gw-7f3a9c" and stored["attachments"] == [int(ids[0])]
        assert stored["user_id"] == "9001" and NIK not in stored["content"]

        state = await hub.read_complaint(refs[0])
        assert state.status == RawStatus("wait", "Belum Terverifikasi")
        assert [c.status.code for c in state.status_changes] == ["wait"]

        for _ in range(25):
            sim.clock.advance(2 * 3600)
            sim.tick()
        state = await hub.read_complaint(refs[0])
        codes = [c.status.code for c in state.status_changes]
        assert len(codes) > 1 and codes[0] == "wait" and state.status.code == codes[-1]

        mine = await hub.add_follow_up(refs[0], "Tim kelurahan sudah meninjau lokasi.", gateway_ref="gw-fu-1")
        assert mine is not None
        follow_ups = await hub.follow_ups(refs[0])
        assert all(isinstance(f, FollowUp) for f in follow_ups)
        assert mine in [f.ref for f in follow_ups]
        assert [f.created_at for f in follow_ups] == sorted(f.created_at for f in follow_ups)
        counts = sim.counts()
        assert counts["complaints"] == 5 and counts["follow_ups_from_gateway"] == 1
        assert counts["follow_ups_by_officers"] >= 1 and counts["status_changes"] >= 1
        assert counts["unauthorized"] == 0
    finally:
        await hub.aclose()


@pytest.mark.anyio
async def test_simulator_refuses_a_wrong_token(simulator):
    sim, server = simulator
    hub = make_hub(server.base_url, {"authorization": sim.authorization, "token": "not-the-token"})
    try:
        with pytest.raises(PermanentPeerError) as caught:
            await hub.read_complaint("4000001")
        assert caught.value.status_code == 401
        assert "not-the-token" not in str(caught.value)
    finally:
        await hub.aclose()
    assert sim.counts()["unauthorized"] == 1


def test_simulator_api_rules(simulator):
    sim, server = simulator
    env = sim.demo_environment()
    headers = {"Authorization": f"Bearer {env['SP4N_AUTHORIZATION']}", "token": env["SP4N_TOKEN"]}
    valid = {"title": "Sampah menumpuk", "content": "Di pojok pasar.", "user_id": "9001", "category_id": "43",
             "classification_id": "1", "channel": "6", "attachments": "[]", "is_anonymous": 0, "is_secret": 1}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        assert client.get("/masters/templates").json()["results"]["data"]
        institutions = client.get("/masters/institutions/external", params={"page_size": 1000}).json()
        assert {"id": 100234, "name": "Pemerintah Kota Semarang", "code": "3374-PEMKOT",
                "parent_id": None} in institutions["results"]["data"]

        for broken in ({"category_id": "99"}, {"attachments": "[999]"}, {"attachments": "12,13"}, {"title": ""}):
            answer = client.post("/complaints/complaint", json={**valid, **broken})
            assert answer.status_code == 422 and answer.json()["success"] is False
        assert sim.counts()["complaints"] == 0

        created = client.post("/complaints/complaint", json=valid).json()
        assert created["success"] is True
        forwarded = client.post("/complaints/process/4000001/reject",
                                data={"not_authority": "1", "institution_id": "200106"})
        data = forwarded.json()["results"]["data"]
        assert (data["status_code"], data["disposition_id"]) == ("disposition", 200106)
        assert [entry["status_new"] for entry in sim.logs(4000001)] == ["wait", "disposition"]
        assert client.get("/complaints/4999999/complaint").status_code == 404
        assert client.get("/complaints/4000001/followups").json()["results"]["data"] == []
        assert client.get("/complaints/4000001/complaint", headers={"token": "x"}).status_code == 401
    assert sim.complaints()[0]["is_secret"] == 1


def test_officers_close_most_complaints_and_can_be_quiesced():
    clock = SimClock()
    sim = create_simulator(seed=3, clock=clock)
    with sim.lock:
        for i in range(40):
            sim.world.create({"title": "t", "content": "c", "user_id": "9001", "category_id": str(41 + i % 9),
                              "classification_id": "1"}, clock.now())
    for _ in range(20):
        clock.advance(90 * 60)
        sim.tick()
    closed = [c for c in sim.complaints() if c["status_code"] in ("done", "reject", "archive")]
    assert len(closed) >= 30
    done = next(c for c in closed if c["status_code"] == "done")
    officer_notes = sim.follow_ups(done["id"])
    assert officer_notes and all(f["source"] == "officer" and f["institution_from_id"].startswith("2001")
                                 for f in officer_notes)
    sim.quiesce()
    before = sim.counts()
    clock.advance(48 * 3600)
    sim.tick()
    assert sim.counts() == before
