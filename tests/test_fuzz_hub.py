"""What the hub sends back, read by the sp4n adapter and the hub poll: one minimal case per defect
the hub-answer review found (tests/test_fuzz_hub.py grows into the fuzzer that found them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from structlog.testing import capture_logs
from test_fuzz_intake import FakeHub, linked_complaints, make_config, reset_polling

import gateway
from gateway import (
    InstanceContext,
    RecordError,
    RetryPolicy,
)
from gateway._engine import Engine
from gateway._store import Store
from gateway._store._tables import ComplaintRow, EventRow, OutboxRow, QuarantineRow
from lapor_gateway_adapters.sp4n import Sp4nHub

HUB_NAME = "sp4n"
BASE = "http://sp4n.fuzz"
SECRETS = {"authorization": "fuzz-authorization-value", "token": "fuzz-token-value"}
NAME, NIK, PHONE, EMAIL = "Siti Rahmawati", "3374012345670001", "081234567890", "siti.r@example.id"
PII = (NAME, NIK, PHONE, EMAIL)
# What the log's last line of defence masks (a name it cannot know): a rendered line must not hold these.
MASKED = (NIK, PHONE, EMAIL)
PII_TEXT = f"Pelapor {NAME}, NIK {NIK}, HP {PHONE}, {EMAIL}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def no_personal_data(text: str | None, where: str, values: tuple[str, ...] = PII) -> None:
    if not text:
        return
    for value in (*values, *SECRETS.values()):
        assert value not in text, f"{where} holds {value!r}: {text[:300]!r}"


def make_hub(handler: Any, **settings: Any) -> Sp4nHub:
    context = InstanceContext(
        name=HUB_NAME,
        base_url=BASE,
        timezone=gateway.WIB,
        secrets=dict(SECRETS),
        retry=RetryPolicy(attempts=1),
        settings=Sp4nHub.Settings(user_id=9001, institution_id=100234, follow_up_template_code="reply_gw", **settings),
    )
    return Sp4nHub(context, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def _poll(config: Any, store: Store, hub: FakeHub) -> Any:
    clients = {HUB_NAME: httpx.AsyncClient(transport=httpx.MockTransport(hub.handler))}
    async with Engine(config, store, clients=clients, seed=1) as engine:
        return await engine.poll_hub(HUB_NAME)


def poll_once(config: Any, store: Store, answers: dict[str, tuple[Any, Any]]) -> None:
    reset_polling(store)
    hub = FakeHub()
    for ref, (read, listed) in answers.items():
        hub.reads[ref], hub.follow_ups[ref] = read, {"success": True, "results": {"data": listed}}
    asyncio.run(_poll(config, store, hub))


def read_answer(name: str, logs: list[Any]) -> dict[str, Any]:
    return {"success": True, "results": {"data": {"status_code": 2, "status_name": name}, "data_logs": logs}}


def status_log(ident: Any, when: str, old: str, new: str) -> dict[str, Any]:
    return {
        "id": ident,
        "created_at": when,
        "content": "Status {{status_old}} menjadi {{status_new}}",
        "data": json.dumps({"status_old": {"name": old}, "status_new": {"name": new}}),
    }


def follow_up_record(ident: Any, content: str = "Sudah diperbaiki petugas.", when: str = "03-11-2026 09:00:00") -> Any:
    return {"id": ident, "content": content, "created_at": when}


def hub_events(store: Store, complaint_id: int, kind: str) -> list[EventRow]:
    with store.session() as s:
        return list(
            s.exec(
                select(EventRow)
                .where(EventRow.complaint_id == complaint_id, EventRow.origin == HUB_NAME, EventRow.kind == kind)
                .order_by(col(EventRow.id))
            ).all()
        )


@pytest.fixture
def linked(store_url: str, tmp_path: Path) -> Any:
    """A config and a store with a complaint created at the hub: (config, store, [(id, hub id)])."""
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    yield config, store, linked_complaints(config, store, 1)
    store.close()


@pytest.mark.anyio
async def test_an_id_written_7_7point0_or_quoted_is_one_id() -> None:
    listed = [follow_up_record(7), follow_up_record("7"), follow_up_record(7.0), follow_up_record(True)]
    hub = make_hub(lambda request: httpx.Response(200, json={"results": {"data": listed}}))
    read = await hub.follow_ups("4000001")
    assert [getattr(f, "ref", None) or f.record_ref for f in read[:3]] == ["7", "7", "7"]
    assert isinstance(read[3], RecordError)  # a boolean is no id
    logs = [status_log(503.0, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi")]
    hub = make_hub(lambda request: httpx.Response(200, json=read_answer("Terverifikasi", logs)))
    state = await hub.read_complaint("4000001")
    assert [c.ref for c in state.status_changes] == ["503"]
    await hub.aclose()


def test_a_follow_up_read_as_7_then_as_7point0_reaches_the_local_app_once(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    poll_once(config, store, {ref: (read_answer("Terverifikasi", []), [follow_up_record(7)])})
    poll_once(config, store, {ref: (read_answer("Terverifikasi", []), [follow_up_record(7.0)])})
    assert [e.hub_ref for e in hub_events(store, cid, "follow_up")] == ["7"]


@pytest.mark.anyio
async def test_one_follow_up_id_listed_twice_with_other_texts_is_set_aside_not_dropped() -> None:
    listed = [follow_up_record(7, "Pertama."), follow_up_record(7, "Kedua."), follow_up_record(8), follow_up_record(8)]
    hub = make_hub(lambda request: httpx.Response(200, json={"results": {"data": listed}}))
    read = await hub.follow_ups("4000001")
    await hub.aclose()
    assert [type(f).__name__ for f in read] == ["FollowUp", "RecordError", "FollowUp", "FollowUp"]
    error = read[1]
    assert isinstance(error, RecordError) and error.record_ref and error.record_ref.startswith("7~")
    assert "listed twice" in error.reason


def test_a_follow_up_id_listed_twice_is_quarantined_and_keeps_the_complaint_open(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    listed = [follow_up_record(7, "Pertama."), follow_up_record(7, "Kedua.")]
    poll_once(config, store, {ref: (read_answer("Selesai", []), listed)})
    assert [e.content for e in hub_events(store, cid, "follow_up")] == ["Pertama."]
    with store.session() as s:
        quarantined = s.exec(select(QuarantineRow).where(QuarantineRow.stream == "follow_ups")).all()
        assert [q.record_ref.split("~")[0] for q in quarantined] == ["7"]
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.closed_at is None


@pytest.mark.anyio
async def test_one_log_id_listed_twice_with_other_statuses_leaves_the_history_incomplete() -> None:
    logs = [
        status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi"),
        status_log(501, "02-11-2026 11:00:00", "Terverifikasi", "Ditolak"),
    ]
    hub = make_hub(lambda request: httpx.Response(200, json=read_answer("Ditolak", logs)))
    state = await hub.read_complaint("4000001")
    await hub.aclose()
    assert [c.status.name for c in state.status_changes] == ["Terverifikasi"] and not state.history_complete


@pytest.mark.anyio
@pytest.mark.parametrize("repeat", [True, False], ids=["page-ignored", "total-lies"])
async def test_a_reference_list_whose_paging_lies_ends(repeat: bool) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        calls.append(page)
        if len(calls) > 1000:
            return httpx.Response(599)
        first = 1 if repeat else (page - 1) * 1000 + 1
        rows: list[Any] = [{"id": i, "name": f"Dinas {i}"} for i in range(first, first + 999)]
        rows.append({"id": None, "name": PII_TEXT})  # no id: cannot be mapped to, and said so
        return httpx.Response(200, json={"results": {"data": rows, "total": 10**12}})

    hub = make_hub(handler)
    with capture_logs() as logs:
        items = await hub.institutions()
    await hub.aclose()
    if repeat:
        assert len(calls) == 2 and len(items) == 999
    else:
        assert len(calls) == 100 and len({i.ref for i in items}) == len(items) == 99_900
    passed_over = [e for e in logs if e["event"] == "institutions without id or name passed over"]
    assert [e["count"] for e in passed_over] == [1] * len(calls)
    assert any("ended early" in e["event"] for e in logs)


def test_a_parked_reason_quoting_the_hubs_status_masks_personal_data(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    logs = [status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", PII_TEXT)]
    poll_once(config, store, {ref: (read_answer(PII_TEXT, logs), [])})
    with store.session() as s:
        parked = s.exec(select(OutboxRow).where(OutboxRow.complaint_id == cid, OutboxRow.state == "parked")).all()
    assert parked, "the unmapped status is parked"
    for row in parked:
        assert row.last_error and "no mapping for statuses" in row.last_error and "<nik>" in row.last_error
        no_personal_data(row.last_error, "outbox.last_error", MASKED)


def test_a_complaint_is_not_closed_on_a_read_whose_history_was_not_whole(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    good = status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Selesai")
    unreadable = {**status_log(502, "02-11-2026 11:00:00", "Selesai", "Ditolak"), "data": "{not json"}
    poll_once(config, store, {ref: (read_answer("Selesai", [good, unreadable]), [])})
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.hub_status == "done" and row.closed_at is None
    poll_once(config, store, {ref: (read_answer("Selesai", [good]), [])})  # readable again: closed now
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.closed_at is not None


def test_a_log_readable_only_at_a_later_read_does_not_write_the_current_status_again(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    verified = status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi")
    in_progress = status_log(502, "02-11-2026 11:00:00", "Terverifikasi", "Dalam Proses")
    poll_once(config, store, {ref: (read_answer("Dalam Proses", [{**verified, "data": "{not json"}, in_progress]), [])})
    poll_once(config, store, {ref: (read_answer("Dalam Proses", [verified, in_progress]), [])})
    assert [e.hub_ref for e in hub_events(store, cid, "status_change")] == ["502", "501"]
