"""The sp4n hub adapter: its translation details against a respx-mocked hub, and round trips
against the simulator over loopback HTTP.

The wire contract itself (method, path, headers, body keys and JSON types of every call of
the LAPOR! v3 reference, the seen answer shapes and their odd cases) is pinned by
``tests/contract/``; this file keeps what the recordings do not say: settings, times, paging,
retries, malformed records, notes, what the create's text is made of.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

import gateway
from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    AttachmentRef,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    InstanceContext,
    Location,
    PermanentPeerError,
    RawStatus,
    RecordError,
    ReferenceItem,
    Reporter,
    RetryPolicy,
    TransientPeerError,
)
from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.sp4n import Sp4nHub
from lapor_gateway_adapters.sp4n.simulator import Sp4nSimulator, create_simulator

PREFIX = "/lapor/3.0.0"
BASE = "https://splp.test" + PREFIX
SECRETS = {"authorization": "splp-ak-test-value", "token": "0b7c6d1e-aaaa-bbbb-cccc-1234567890ab"}
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.01)
UTC = UTC

NAME, NIK, PHONE, EMAIL, ADDRESS = (
    "Siti Rahmawati",
    "3374012345670001",
    "081234567890",
    "siti.r@example.id",
    "Jl. Pandanaran 12 RT 03/RW 04",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(**extra: Any) -> Sp4nHub.Settings:
    return Sp4nHub.Settings(user_id=9001, institution_id=100234, follow_up_template_code="reply_gateway", **extra)


def make_hub(base_url: str = BASE, secrets: dict[str, str] | None = None, **extra: Any) -> Sp4nHub:
    context = InstanceContext(
        name="sp4n",
        base_url=base_url,
        timezone=gateway.WIB,
        secrets=dict(secrets or SECRETS),
        retry=FAST_RETRY,
        settings=settings(**extra),
    )
    return Sp4nHub(context, client=httpx.AsyncClient())


def make_draft(
    *,
    attachment_ids: tuple[str, ...] = (),
    anonymous: bool = False,
    gateway_ref: str = "gw-7f3a9c",
    route_fields: dict[str, Any] | None = None,
    disposition_id: str | None = None,
    incident_at: datetime | None = datetime(2026, 11, 26, 18, 30, tzinfo=UTC),
) -> HubComplaintDraft:
    created = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    complaint = Complaint(
        ref="LH-2026-0042",
        title="Jalan berlubang di Jl. Kaligawe",
        body="Ada lubang besar di tengah jalan, berbahaya bagi pengendara motor.",
        created_at=created,
        updated_at=created,
        status=RawStatus("belum terverifikasi"),
        category="Jalan",
        location=Location(description="depan pasar", subdistrict="Kaligawe", district="Gayamsari"),
        channel="android",
        incident_at=incident_at,
        is_anonymous=anonymous,
        reporter=None if anonymous else Reporter(name=NAME, nik=NIK, phone=PHONE, email=EMAIL, address=ADDRESS),
    )
    return HubComplaintDraft(
        complaint=complaint,
        gateway_ref=gateway_ref,
        category_id="41",
        classification_id="1",
        channel_id="2",
        attachment_ids=attachment_ids,
        route_fields={"location_id": 11, "disposition_id": 100234} if route_fields is None else route_fields,
        disposition_id=disposition_id,
    )


def ok(results: dict[str, Any], **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "message": "OK", "results": results, **extra})


def log(
    created_at: str,
    data: Any = None,
    *,
    content: str = "Status diubah dari {{status_old}} menjadi {{status_new}}",
    source: str = "Kementerian PANRB",
    target: str = "Pemerintah Kota Semarang",
    **extra: Any,
) -> dict[str, Any]:
    entry = {
        "content": content,
        "institution_from_name": source,
        "institution_to_name": target,
        "created_at": created_at,
        **extra,
    }
    if data is not None:
        entry["data"] = data if isinstance(data, str) else json.dumps(data)
    return entry


def change(old: str | None, new: str, **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"status_new": {"name": new}, **more}
    if old is not None:
        data["status_old"] = {"name": old}
    return data


def read_answer(logs: list[dict[str, Any]] | None, **data: Any) -> httpx.Response:
    results: dict[str, Any] = {"data": {"id": 4127781, "status_code": "process", "status_name": "Dalam Proses", **data}}
    if logs is not None:
        results["data_logs"] = logs
    return ok(results)


@pytest.fixture
def hub_mock():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def hub():
    adapter = make_hub()
    yield adapter
    await adapter.aclose()


# -- settings -----------------------------------------------------------------------------------


def test_settings_need_the_account_the_institution_and_the_issued_template_code():
    with pytest.raises(ValidationError) as caught:
        Sp4nHub.Settings(user_id=9001, institution_id=100234)
    assert "follow_up_template_code" in str(caught.value)
    with pytest.raises(ValidationError):
        settings(bearer_prefix=True)  # unknown keys are refused (a typo in the YAML is caught)
    with pytest.raises(ValidationError):
        settings(create_path="complaints/complaint")  # a path, appended to the base URL's prefix
    assert settings().auth_header == "Authorization" and settings().create_path == "/complaints/complaint"
    assert Sp4nHub.secret_names == ("authorization", "token")


def test_route_fields_may_not_set_what_the_adapter_sets_itself():
    assert {
        "title",
        "content",
        "user_id",
        "tags_raw",
        "attachments",
        "is_anonymous",
        "is_secret",
    } <= Sp4nHub.route_fields_reserved
    assert not {"location_id", "disposition_id", "priority_program_id"} & Sp4nHub.route_fields_reserved


# -- the create ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anonymous", [False, True], ids=["named", "anonymous"])
async def test_create_text_has_the_place_and_never_the_reporter(hub_mock, hub, anonymous):
    route = hub_mock.post("/complaints/complaint").mock(
        return_value=httpx.Response(200, json={"complaint_id": 4127781})
    )
    assert await hub.create_complaint(make_draft(anonymous=anonymous)) == "4127781"
    raw = route.calls.last.request.content.decode()
    for value in (NAME, NIK, PHONE, EMAIL, ADDRESS, "Siti", "Pandanaran", "LH-2026-0042"):
        assert value not in raw
    body = json.loads(raw)
    assert body["content"] == (
        "Ada lubang besar di tengah jalan, berbahaya bagi pengendara motor.\n\n"
        "Lokasi: depan pasar, Kel. Kaligawe, Kec. Gayamsari"
    )
    assert body["is_anonymous"] is anonymous and body["is_secret"] is False


@pytest.mark.anyio
async def test_create_tags_carry_the_gateway_reference_as_a_hashtag(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json={"complaint_id": 1}))
    await hub.create_complaint(make_draft(gateway_ref="gw-7f3a/9c"))
    assert json.loads(route.calls.last.request.content)["tags_raw"] == "#lapor_gateway #gw_7f3a_9c"
    assert hub.describe_ref("gw-7f3a/9c") == "the hashtag #gw_7f3a_9c in tags_raw"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "incident_at, fmt, expected",
    [
        (datetime(2026, 11, 26, 18, 30, tzinfo=UTC), None, "2026-11-27"),  # 27-11 01:30 WIB
        (datetime(2026, 11, 26, 16, 0, tzinfo=UTC), "%d-%m-%Y", "26-11-2026"),
        (None, None, None),
    ],
)
async def test_date_of_incident_is_the_wib_date_in_the_configured_format(hub_mock, incident_at, fmt, expected):
    hub = make_hub(**({"incident_date_format": fmt} if fmt else {}))
    route = hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json={"complaint_id": 1}))
    try:
        await hub.create_complaint(make_draft(incident_at=incident_at))
    finally:
        await hub.aclose()
    assert json.loads(route.calls.last.request.content)["date_of_incident"] == expected


@pytest.mark.anyio
async def test_route_fields_do_not_override_the_adapters_own_keys_and_digits_become_ids(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json={"complaint_id": 1}))
    await hub.create_complaint(
        make_draft(
            route_fields={"location_id": "34", "disposition_id": 151345, "user_id": 1, "tags_raw": "#x", "content": "x"}
        )
    )
    body = json.loads(route.calls.last.request.content)
    assert (body["location_id"], body["disposition_id"], body["user_id"]) == (34, 151345, 9001)
    assert body["tags_raw"].startswith("#lapor_gateway") and body["content"].startswith("Ada lubang")


@pytest.mark.anyio
async def test_the_agency_the_local_app_assigned_wins_over_the_routes_disposition(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json={"complaint_id": 1}))
    await hub.create_complaint(make_draft(disposition_id="200104"))
    assert json.loads(route.calls.last.request.content)["disposition_id"] == 200104


@pytest.mark.anyio
async def test_a_create_is_not_repeated_after_a_500(hub_mock, hub):
    """A 500 may come after the hub committed: the outcome is unknown, never retried blindly."""
    route = hub_mock.post("/complaints/complaint").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json={"complaint_id": 4127781})]
    )
    with pytest.raises(AmbiguousOutcomeError):
        await hub.create_complaint(make_draft())
    assert route.call_count == 1


@pytest.mark.anyio
async def test_a_create_answered_503_was_not_processed_and_is_retried(hub_mock, hub):
    route = hub_mock.post("/complaints/complaint").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"complaint_id": 4127781})]
    )
    assert await hub.create_complaint(make_draft()) == "4127781"
    assert route.call_count == 2


@pytest.mark.anyio
async def test_a_create_answered_json_that_is_not_an_object_may_have_been_done(hub_mock, hub):
    hub_mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, json=[4127781]))
    with pytest.raises(AmbiguousOutcomeError):
        await hub.create_complaint(make_draft())


# -- uploads ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_upload_call_without_files(hub_mock, hub):
    upload = hub_mock.post("/complaints/complaint/file")
    assert await hub.upload_attachments([]) == []
    assert upload.call_count == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "docs",
    [[{"id": 12}], [{"id": 12}, {"name": "b.pdf"}], [{"id": 12}, {"id": 0}]],
    ids=["fewer ids than files", "a document without id", "a zero id"],
)
async def test_an_upload_answer_that_does_not_give_one_id_per_file_is_an_error(hub_mock, hub, docs):
    hub_mock.post("/complaints/complaint/file").mock(return_value=ok({"docs": docs}))
    files = [
        AttachmentContent("a.jpg", "image/jpeg", b"\xff\xd8a"),
        AttachmentContent("b.pdf", "application/pdf", b"%PDF"),
    ]
    with pytest.raises(TransientPeerError):
        await hub.upload_attachments(files)


# -- reads: the complaint and its history -------------------------------------------------------


@pytest.mark.anyio
async def test_log_times_are_read_as_wib_and_changes_come_oldest_first(hub_mock, hub):
    hub_mock.get("/complaints/4127781/complaint").mock(
        return_value=read_answer(
            [
                log("29-11-2026 08:30:00", change("Terverifikasi", "Dalam Proses"), id=3),
                log("28-11-2026 09:15:00", change("Belum Terverifikasi", "Terverifikasi"), id=2),
                log("27-11-2026 10:00:00", change(None, "Belum Terverifikasi"), id=1),
            ]
        )
    )
    state = await hub.read_complaint("4127781")
    assert [c.ref for c in state.status_changes] == ["1", "2", "3"]
    assert [c.changed_at for c in state.status_changes] == [
        datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 2, 15, tzinfo=UTC),
        datetime(2026, 11, 29, 1, 30, tzinfo=UTC),
    ]
    first, second, _ = state.status_changes
    assert first.previous is None and second.previous == RawStatus("Belum Terverifikasi", "Belum Terverifikasi")
    assert second.status == RawStatus("Terverifikasi", "Terverifikasi")
    assert state.history_complete


@pytest.mark.anyio
async def test_a_status_change_carries_the_hubs_reason_as_its_note(hub_mock, hub):
    hub_mock.get("/complaints/4127781/complaint").mock(
        return_value=read_answer(
            [
                log(
                    "28-11-2026 09:15:00",
                    change("Terverifikasi", "Ditunda", reason_description="Mohon lengkapi foto lokasi"),
                    content='Laporan {{status_new}} oleh <a href="/i/1">{{institution_from_link}}</a>',
                    id=7,
                ),
            ],
            status_code="hold",
            status_name="Ditunda",
        )
    )
    [hold] = (await hub.read_complaint("4127781")).status_changes
    assert hold.note == (
        "Status di LAPOR!: Ditunda\nLaporan Ditunda oleh Kementerian PANRB\nAlasan: Mohon lengkapi foto lokasi"
    )


@pytest.mark.anyio
async def test_a_forward_log_names_the_new_institution_and_not_its_id_as_a_reason(hub_mock, hub):
    hub_mock.get("/complaints/4127781/complaint").mock(
        return_value=read_answer(
            [
                log(
                    "28-11-2026 10:00:00",
                    {**change("Terverifikasi", "Didisposisi"), "reason": "200101", "keterangan": "Kewenangan DPU"},
                    content="Diteruskan dari {{institution_from}} kepada {{institution_to}}",
                    source="Pemerintah Kota Semarang",
                    target="Dinas Pekerjaan Umum",
                    id=9,
                ),
                # Not a status change (a note, or a disposition alone): not passed on.
                log(
                    "28-11-2026 10:05:00",
                    {"note": "x"},
                    content="Dibaca {{institution_to}}",
                    source="Pemerintah Kota Semarang",
                    target="Dinas Pekerjaan Umum",
                    id=10,
                ),
            ]
        )
    )
    state = await hub.read_complaint("4127781")
    assert state.history_complete and state.notes == ()
    [forwarded] = state.status_changes
    assert forwarded.note == (
        "Status di LAPOR!: Didisposisi\n"
        "Diteruskan dari Pemerintah Kota Semarang kepada Dinas Pekerjaan Umum\n"
        "Alasan: Kewenangan DPU"
    )


@pytest.mark.anyio
async def test_a_log_without_an_id_is_known_by_its_content(hub_mock, hub):
    entries = [log("28-11-2026 09:15:00", change("Belum Terverifikasi", "Terverifikasi"))]
    hub_mock.get("/complaints/4127781/complaint").mock(side_effect=[read_answer(entries), read_answer(entries)])
    first = (await hub.read_complaint("4127781")).status_changes[0].ref
    assert first.startswith("h-") and first == (await hub.read_complaint("4127781")).status_changes[0].ref


@pytest.mark.anyio
@pytest.mark.parametrize(
    "broken",
    [
        None,
        [log("28-11-2026 09:15", change(None, "Terverifikasi"))],
        [log("", change(None, "Terverifikasi"))],
        ["not an object"],
    ],
    ids=["no data_logs", "time in another format", "no time", "entry not an object"],
)
async def test_an_unreadable_history_still_gives_the_current_status(hub_mock, hub, broken):
    hub_mock.get("/complaints/4127781/complaint").mock(return_value=read_answer(broken))
    state = await hub.read_complaint("4127781")
    assert state.status == RawStatus("process", "Dalam Proses")
    assert not state.history_complete and state.status_changes == ()


@pytest.mark.anyio
async def test_a_complaint_without_any_status_is_refused(hub_mock, hub):
    hub_mock.get("/complaints/4127781/complaint").mock(return_value=ok({"data": {"id": 4127781}, "data_logs": []}))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.read_complaint("4127781")
    assert "status_code" in str(caught.value) and "4127781" not in str(caught.value)


@pytest.mark.anyio
async def test_errors_carry_the_path_template_not_the_id(hub_mock, hub):
    hub_mock.get("/complaints/4000777/complaint").mock(return_value=httpx.Response(404, json={"message": "Not Found"}))
    with pytest.raises(PermanentPeerError) as caught:
        await hub.read_complaint("4000777")
    assert "4000777" not in str(caught.value)
    assert "GET /complaints/{id}/complaint" in str(caught.value) and caught.value.status_code == 404


@pytest.mark.anyio
async def test_a_get_is_retried_after_503(hub_mock, hub):
    route = hub_mock.get("/complaints/4127781/followups").mock(
        side_effect=[httpx.Response(503, text="upstream down"), ok({"data": []})]
    )
    assert await hub.follow_ups("4127781") == []
    assert route.call_count == 2


def test_the_status_note_names_the_hub_status():
    hub = make_hub(status_note="LAPOR!: {status}")
    assert hub.status_note(RawStatus("done", "Selesai")) == "LAPOR!: Selesai"
    assert hub.status_note(RawStatus("7")) == "LAPOR!: 7"


# -- reads: follow-ups --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_follow_up_times_are_read_as_wib(hub_mock, hub):
    hub_mock.get("/complaints/4127781/followups").mock(
        return_value=ok(
            {
                "data": [
                    {
                        "id": 551201,
                        "complaint_id": 4127781,
                        "institution_from_name": "Dinas Pekerjaan Umum",
                        "content": "Sudah kami tambal.",
                        "created_at": "27-11-2026 14:05:00",
                        "is_secret": 0,
                    },
                ]
            }
        )
    )
    [follow_up] = await hub.follow_ups("4127781")
    assert isinstance(follow_up, FollowUp)
    assert follow_up.created_at == datetime(2026, 11, 27, 7, 5, tzinfo=UTC)
    assert (follow_up.ref, follow_up.complaint_ref, follow_up.author) == ("551201", "4127781", "Dinas Pekerjaan Umum")
    assert follow_up.is_secret is False and follow_up.attachments == ()


@pytest.mark.anyio
async def test_a_follow_ups_confidentiality_and_files_are_read(hub_mock, hub):
    hub_mock.get("/complaints/4127781/followups").mock(
        return_value=ok(
            {
                "data": [
                    {
                        "id": 1,
                        "content": "Rahasia",
                        "created_at": "27-11-2026 14:05:00",
                        "is_secret": "1",
                        "attachments": [{"id": 31, "filename": "bukti.jpg", "mime": "image/jpeg", "size": 2048}, 32],
                    },
                ]
            }
        )
    )
    [follow_up] = await hub.follow_ups("4127781")
    assert follow_up.is_secret is True
    assert follow_up.attachments == (
        AttachmentRef("31", "bukti.jpg", "image/jpeg", 2048),
        AttachmentRef("32", "lampiran-32"),
    )


@pytest.mark.anyio
async def test_a_malformed_follow_up_is_a_record_error_and_the_others_parse(hub_mock, hub):
    hub_mock.get("/complaints/4127781/followups").mock(
        return_value=ok(
            {
                "data": [
                    {"id": 5, "content": "Terakhir", "created_at": "27-11-2026 12:00:00"},
                    {"id": 2, "content": "Rahasia isi laporan", "created_at": "2026/11/27 9am"},
                    {"id": 3, "created_at": "27-11-2026 10:00:00"},
                    {"id": 4, "content": "Isi", "created_at": "27-11-2026 10:30:00", "is_secret": "mungkin"},
                    {"id": 6, "content": "Isi", "created_at": "27-11-2026 10:40:00", "attachments": "[31,32"},
                    {
                        "id": 7,
                        "content": "Isi",
                        "created_at": "27-11-2026 10:50:00",
                        "attachments": [{"filename": "x.jpg"}],
                    },
                    "not an object",
                    {
                        "id": 1,
                        "content": "Pertama",
                        "created_at": "27-11-2026 08:00:00",
                        "institution_from_name": "DPU",
                    },
                ]
            }
        )
    )
    result = await hub.follow_ups("4127781")
    kinds = [type(r).__name__ for r in result]
    assert kinds == ["FollowUp"] + ["RecordError"] * 6 + ["FollowUp"]
    assert [r.ref for r in result if isinstance(r, FollowUp)] == ["1", "5"]  # oldest first, errors keep their place
    errors = [r for r in result if isinstance(r, RecordError)]
    assert [e.record_ref for e in errors] == ["2", "3", "4", "6", "7", None]
    for error, field in zip(errors, ["created_at", "content", "is_secret", "attachments", "attachments[0]", "object"]):
        assert field in error.reason
        assert error.operation == "GET /complaints/{id}/followups"
        for value in ("Rahasia", "9am", "mungkin", "[31,32", "x.jpg", "4127781"):
            assert value not in str(error)


@pytest.mark.anyio
async def test_a_follow_up_without_an_id_is_known_by_its_time_author_and_text(hub_mock):
    # Only for a hub that gives no ids (follow_up_id_key: null): where it gives them, one read
    # without the id must not make a second copy under another ref (see the next test).
    hub = make_hub(follow_up_id_key=None)
    record = {"content": "tanpa id", "created_at": "27-11-2026 11:00:00", "institution_from_name": "DPU"}
    hub_mock.get("/complaints/4127781/followups").mock(
        side_effect=[ok({"data": [record]}), ok({"data": [record]}), ok({"data": [{**record, "content": "lain"}]})]
    )
    first, again, other = [(await hub.follow_ups("4127781"))[0] for _ in range(3)]
    assert first.ref.startswith("h-") and first.ref == again.ref and other.ref != first.ref
    await hub.aclose()


@pytest.mark.anyio
async def test_a_follow_up_read_once_without_its_id_is_quarantined_not_copied_twice(hub_mock, hub):
    record = {"content": "tanpa id", "created_at": "27-11-2026 11:00:00", "institution_from_name": "DPU"}
    hub_mock.get("/complaints/4127781/followups").mock(return_value=ok({"data": [record]}))
    [bad] = await hub.follow_ups("4127781")
    assert isinstance(bad, RecordError) and "'id'" in bad.reason


@pytest.mark.anyio
async def test_a_follow_ups_file_is_fetched_from_the_configured_path(hub_mock, hub):
    route = hub_mock.get("/complaints/file/31").mock(
        return_value=httpx.Response(
            200, content=b"\xff\xd8jpeg", headers={"Content-Type": "image/jpeg; charset=binary"}
        )
    )
    content = await hub.fetch_attachment(AttachmentRef("31", "bukti.jpg"))
    assert (content.filename, content.content_type, content.data) == ("bukti.jpg", "image/jpeg", b"\xff\xd8jpeg")
    assert route.calls.last.request.headers["token"] == SECRETS["token"]
    assert hub.supports(gateway.Capability.FETCH_ATTACHMENT)
    # attachment_path: null switches the capability off for this instance; the engine asks first.
    without = make_hub(attachment_path=None)
    assert not without.supports(gateway.Capability.FETCH_ATTACHMENT)
    assert without.supports(gateway.Capability.FORWARD)
    await without.aclose()


# -- writes: follow-ups and forwards ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_follow_up_goes_to_the_configured_institution(hub_mock):
    hub = make_hub(follow_up_institution_to_id=200101)
    route = hub_mock.post("/complaints/followup/add").mock(return_value=ok({"data": {"id": 551230}}))
    try:
        assert await hub.add_follow_up("4127781", "Sudah ditangani.", gateway_ref="gw-1") == "551230"
    finally:
        await hub.aclose()
    content = route.calls.last.request.content
    assert b'name="institution_from_id"\r\n\r\n100234\r\n' in content
    assert b'name="institution_to_id"\r\n\r\n200101\r\n' in content


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer, expected",
    [
        ({"success": True, "message": "Berhasil"}, None),
        ({"status": "success"}, None),
        ({"success": True, "data": {"id": 551230}}, "551230"),
        ({"id": "551230"}, "551230"),
    ],
)
async def test_a_follow_up_answer_proves_it_by_an_id_or_an_explicit_ok(hub_mock, hub, answer, expected):
    hub_mock.post("/complaints/followup/add").mock(return_value=httpx.Response(200, json=answer))
    assert await hub.add_follow_up("4127781", "x", gateway_ref="gw-1") == expected


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [{}, {"message": "Diproses"}, {"results": {"data": {"id": 0}}}])
async def test_a_follow_up_answer_that_proves_nothing_may_have_been_added(hub_mock, hub, answer):
    hub_mock.post("/complaints/followup/add").mock(return_value=httpx.Response(200, json=answer))
    with pytest.raises(AmbiguousOutcomeError):
        await hub.add_follow_up("4127781", "x", gateway_ref="gw-1")


@pytest.mark.anyio
async def test_a_forward_without_a_note_still_gives_a_reason(hub_mock, hub):
    route = hub_mock.post("/complaints/process/4127781/reject").mock(return_value=ok({}))
    await hub.forward("4127781", "200101")
    body = json.loads(route.calls.last.request.content)
    assert body["reason"] == 200101 and body["reason_description"].strip()


# -- reference data -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_institutions_are_read_page_by_page(hub_mock, hub):
    first = [{"id": 200000 + i, "name": f"Instansi {i}"} for i in range(1000)]
    second = [{"id": 300000 + i, "name": f"Instansi lain {i}"} for i in range(499)] + [{"id": 9}, {"name": "x"}]
    route = hub_mock.get("/masters/institutions/external").mock(
        side_effect=[ok({"data": first, "total": 1501}), ok({"data": second, "total": 1501})]
    )
    items = await hub.institutions()
    assert len(items) == 1499 and items[0] == ReferenceItem("200000", "Instansi 0")
    assert [dict(call.request.url.params) for call in route.calls] == [
        {"page_size": "1000", "page": "1"},
        {"page_size": "1000", "page": "2"},
    ]


@pytest.mark.anyio
async def test_institutions_keep_code_and_parent_when_given(hub_mock, hub):
    hub_mock.get("/masters/institutions/external").mock(
        return_value=ok(
            {"data": [{"id": 200101, "name": "Dinas Pekerjaan Umum", "code": "3374-DPU", "parent_id": 100234}]}
        )
    )
    assert await hub.institutions() == [ReferenceItem("200101", "Dinas Pekerjaan Umum", "3374-DPU", "100234")]


@pytest.mark.anyio
async def test_templates_are_known_by_their_code_or_else_their_id(hub_mock, hub):
    hub_mock.get("/masters/templates").mock(
        return_value=ok(
            {
                "data": [
                    {"id": 7, "code": "reply_lmw", "name": "Balasan"},
                    {"id": 8, "name": "Tanpa kode"},
                    {"id": 9},
                    {"name": "x"},
                ]
            }
        )
    )
    assert await hub.templates() == [
        ReferenceItem("reply_lmw", "Balasan", "reply_lmw"),
        ReferenceItem("8", "Tanpa kode", "8"),
        ReferenceItem("9", "9", "9"),
    ]


# -- round trips through the simulator ----------------------------------------------------------


@pytest.fixture
def simulator():
    sim = create_simulator(seed=7, clock=SimClock(), user_id="9001", path_prefix=PREFIX)
    with SimulatorServer(sim, port=0) as server:
        yield sim, server


def sim_hub(sim: Sp4nSimulator, server: SimulatorServer, **extra: Any) -> Sp4nHub:
    return make_hub(server.base_url + PREFIX, {"authorization": sim.authorization, "token": sim.token}, **extra)


@pytest.mark.anyio
async def test_round_trip_through_the_simulator(simulator):
    sim, server = simulator
    hub = sim_hub(sim, server)
    try:
        ids = await hub.upload_attachments(
            [
                AttachmentContent("lubang.jpg", "image/jpeg", b"\xff\xd8data"),
                AttachmentContent("surat.pdf", "application/pdf", b"%PDF-1.4"),
            ]
        )
        assert len(ids) == 2
        refs = [await hub.create_complaint(make_draft(attachment_ids=tuple(ids) if i == 0 else ())) for i in range(5)]
        assert len(set(refs)) == 5  # found whatever path each answer used
        stored = next(c for c in sim.complaints() if str(c["id"]) == refs[0])
        assert NIK not in json.dumps(stored, default=str) and NAME not in json.dumps(stored, default=str)

        state = await hub.read_complaint(refs[0])
        assert state.status.name == "Belum Terverifikasi" and state.history_complete

        sim.act(refs[0], "Terverifikasi")
        state = await hub.read_complaint(refs[0])
        assert [c.status.name for c in state.status_changes][-1] == "Terverifikasi"
        assert state.status.name == "Terverifikasi"

        mine = await hub.add_follow_up(
            refs[0],
            "Tim kelurahan sudah meninjau lokasi.",
            gateway_ref="gw-fu-1",
            attachments=[AttachmentContent("bukti.jpg", "image/jpeg", b"\xff\xd8x")],
        )
        sim.officer_follow_up(refs[0], "Akan kami tindak lanjuti.")
        follow_ups = await hub.follow_ups(refs[0])
        assert all(isinstance(f, FollowUp) for f in follow_ups) and len(follow_ups) == 2
        if mine is not None:
            assert mine in [f.ref for f in follow_ups]
        assert [f.created_at for f in follow_ups] == sorted(f.created_at for f in follow_ups)

        await hub.forward(refs[1], "200101", note="Kewenangan DPU")
        forwarded = await hub.read_complaint(refs[1])
        assert forwarded.disposition_id == "200101"

        assert any(i.ref == "100234" for i in await hub.institutions())
        templates = await hub.templates()
        assert templates and all(t.code for t in templates)
        counts = sim.counts()
        assert counts["complaints"] == 5 and counts["follow_ups_from_gateway"] == 1
        assert counts["unauthorized"] == 0 and counts["missing_accept"] == 0
    finally:
        await hub.aclose()


@pytest.mark.anyio
async def test_the_auth_header_name_is_a_setting_on_both_sides():
    sim = create_simulator(
        seed=3, clock=SimClock(), user_id="9001", auth_header="auth", authorization="Bearer as-pasted"
    )
    with SimulatorServer(sim, port=0) as server:
        hub = make_hub(server.base_url, {"authorization": "Bearer as-pasted", "token": sim.token}, auth_header="auth")
        wrong = make_hub(server.base_url, {"authorization": "Bearer as-pasted", "token": sim.token})
        try:
            assert await hub.templates()
            with pytest.raises(PermanentPeerError) as caught:
                await wrong.templates()  # the value in Authorization: not where this hub reads it
            assert caught.value.status_code == 401
            assert "as-pasted" not in str(caught.value) and sim.token not in str(caught.value)
        finally:
            await hub.aclose()
            await wrong.aclose()
    assert sim.counts()["unauthorized"] == 1
