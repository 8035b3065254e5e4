"""The retention purge and erasure on request, in the store, on both backends: a purge removes the
texts of complaints closed longer than the window and nothing of the others, holds back what is
still owed, runs in chunks and does nothing twice; a dry run counts the same and changes nothing;
an erasure removes a complaint's texts now, drops what is owed, stops its processing (intake, the
hub poll) and is recorded with what remains elsewhere; planted markers are gone from the raw
database afterwards, and the audit names the operator and no marker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import SQLModel, col, select
from test_store import HUB, LOCAL, REPORTER, T0, FakeClock

from gateway import AttachmentRef, Classification, Complaint, Location, RawStatus, Reporter, Status
from gateway._personal_data import PersonalDataKeys, ReporterKeeping, new_key
from gateway._store import HUB_FOLLOW_UP, Store
from gateway._store._hub_reads import complaints_due
from gateway._store._local_reads import LocalEvent, record_local_events
from gateway._store._privacy import ERASED_ON_REQUEST, erase_complaint, privacy_requests, purge_closed
from gateway._store._tables import (
    AttachmentRow,
    AuditRow,
    ComplaintRow,
    EventRow,
    LinkRow,
    OutboxRow,
    ReporterRow,
)

#: A purpose keeping the reporter's name and address, so that the purge and an erasure have a
#: reporter row to delete (by default none is stored).
KEEPING = ReporterKeeping(("name", "address"), PersonalDataKeys.from_text(new_key()))
MARK = "ZQXMARK"  # every planted text carries it, with where it was planted


def marked(where: str) -> str:
    return f"{MARK}-{where.replace(' ', '_')}"


def planted_complaint(ref: str, *, updated_at=T0) -> Complaint:
    return Complaint(
        ref=ref,
        title=f"Jalan berlubang {marked('title ' + ref)}",
        body=f"Lubang besar {marked('body ' + ref)}",
        created_at=T0,
        updated_at=updated_at,
        status=RawStatus("selesai", "Selesai"),
        category="Jalan Rusak",
        classification=Classification.COMPLAINT,
        location=Location(description=f"Jl. Pandanaran {marked('location ' + ref)}", district="Semarang Selatan"),
        channel="web",
        attachments=(AttachmentRef(f"lamp-{ref}", f"{marked('file ' + ref)}.jpg", "image/jpeg", 2048),),
        reporter=Reporter(
            name=marked("name " + ref),
            nik=REPORTER.nik,
            phone=REPORTER.phone,
            email=f"{marked('email ' + ref)}@example.co.id",
            address=marked("address " + ref),
        ),
    )


def settled_complaint(store: Store, ref: str, *, closed_at=None, hub_ref: str | None = None) -> int:
    """A complaint with its reporter kept (encrypted: a purpose keeps it), a local follow-up (text,
    author, a file), its deliveries done, linked at the hub, and closed at ``closed_at`` (None: open)."""
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, planted_complaint(ref), Status.DONE, reporters=KEEPING)
    record_local_events(
        store,
        LOCAL,
        [
            LocalEvent(
                kind="follow_up",
                ref=f"tl-{ref}",
                complaint_ref=ref,
                occurred_at=T0,
                content=f"Sudah ditambal {marked('follow-up ' + ref)}",
                author=marked("author " + ref),
                attachments=(AttachmentRef(f"lamp-tl-{ref}", f"{marked('tl-file ' + ref)}.png", "image/png", 10),),
                deliver=(HUB_FOLLOW_UP, HUB),
            )
        ],
    )
    with store.session() as s:
        s.execute(
            update(OutboxRow)
            .where(col(OutboxRow.complaint_id) == complaint_id)
            .values(state="done", done_at=T0, last_error=f"hub said {marked('error ' + ref)}")
        )
        s.add(LinkRow(complaint_id=complaint_id, instance=HUB, external_ref=hub_ref or f"9{ref[3:]}", linked_at=T0))
        row = s.get(ComplaintRow, complaint_id)
        assert row is not None
        row.closed_at = closed_at
    return complaint_id


def texts_of(store: Store, complaint_id: int) -> str:
    """Every text the store holds of one complaint, joined."""
    with store.session() as s:
        c = s.get(ComplaintRow, complaint_id)
        assert c is not None
        parts = [c.title, c.body, c.location_json or ""]
        parts += [
            f"{e.content} {e.author} {e.reason}"
            for e in s.exec(select(EventRow).where(EventRow.complaint_id == complaint_id))
        ]
        parts += [a.filename for a in s.exec(select(AttachmentRow).where(AttachmentRow.complaint_id == complaint_id))]
        parts += [str(r) for r in s.exec(select(ReporterRow).where(ReporterRow.complaint_id == complaint_id))]
        parts += [o.last_error or "" for o in s.exec(select(OutboxRow).where(OutboxRow.complaint_id == complaint_id))]
        return " ".join(parts)


def kept_of(store: Store, complaint_id: int) -> tuple:
    """What a purge keeps: ids on each side, states, times, deliveries' kinds and states."""
    with store.session() as s:
        c = s.get(ComplaintRow, complaint_id)
        assert c is not None
        return (
            c.gateway_ref,
            c.local_status_code,
            c.hub_status_code,
            c.closed_at,
            c.local_created_at,
            sorted(
                (link.instance, link.external_ref)
                for link in s.exec(select(LinkRow).where(LinkRow.complaint_id == complaint_id))
            ),
            sorted(
                (e.kind, e.local_ref or "", e.hub_ref or "", e.gateway_ref)
                for e in s.exec(select(EventRow).where(EventRow.complaint_id == complaint_id))
            ),
            sorted(
                (a.local_ref, a.content_type or "", a.size or 0)
                for a in s.exec(select(AttachmentRow).where(AttachmentRow.complaint_id == complaint_id))
            ),
            sorted((o.kind, o.state) for o in s.exec(select(OutboxRow).where(OutboxRow.complaint_id == complaint_id))),
        )


def every_row(store: Store) -> list[tuple]:
    """Every row of every table of the store, as plain tuples (a database's contents)."""
    rows = []
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows += [(table.name, *row) for row in conn.execute(table.select())]
    return rows


def raw_database(store: Store) -> bytes:
    """What the raw database holds: on SQLite its file's bytes (with the journal's) after a VACUUM
    (freed pages and the journal are where a deleted text lingers); on PostgreSQL every table's
    rows as text."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = Path(store.engine.url.database or "")
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    return "\n".join(str(row) for row in every_row(store)).encode()


def markers_in_database(store: Store) -> list[str]:
    """The planted texts the raw database still holds (:func:`raw_database`)."""
    raw = raw_database(store)
    return sorted({chunk.split(b"\x00")[0][:60].decode(errors="replace") for chunk in raw.split(MARK.encode())[1:]})


@pytest.fixture
def later(store_url: str):
    """A store and its clock two days after the complaints were filed (and closed, where they are)."""
    clock = FakeClock(T0 + timedelta(days=2))
    store = Store(store_url, clock=clock)
    yield store, clock
    store.close()


# -- the purge -------------------------------------------------------------------------------------


def test_a_purge_removes_the_texts_of_complaints_closed_past_the_window_and_nothing_else(store_url: str):
    clock = FakeClock(T0 + timedelta(days=400))
    store = Store(store_url, clock=clock)
    try:
        old = settled_complaint(store, "LH-1", closed_at=T0)  # closed 400 days ago
        recent = settled_complaint(store, "LH-2", closed_at=clock.now - timedelta(days=10))
        still_open = settled_complaint(store, "LH-3")
        owed = settled_complaint(store, "LH-4", closed_at=T0)
        with store.session() as s:  # a delivery still owed: its content is needed
            s.execute(update(OutboxRow).where(col(OutboxRow.complaint_id) == owed).values(state="parked"))
        kept = {cid: kept_of(store, cid) for cid in (old, recent, still_open, owed)}
        untouched = {cid: texts_of(store, cid) for cid in (recent, still_open, owed)}

        counts = purge_closed(store, LOCAL, 365, actor="operator:siti")

        assert (counts.complaints, counts.events, counts.attachments, counts.reporters, counts.held_back) == (
            1,
            1,
            2,
            1,
            1,
        )
        assert MARK not in texts_of(store, old)
        assert {cid: kept_of(store, cid) for cid in kept} == kept  # links, states, times, kinds: all there
        assert {cid: texts_of(store, cid) for cid in untouched} == untouched
        assert store.complaint(old).purged_at == clock.now
        assert store.complaint_id_for(LOCAL, "LH-1") == old  # the local id still finds it
    finally:
        store.close()


def test_a_dry_run_counts_what_a_purge_removes_and_changes_nothing(later):
    store, _clock = later
    for n in range(1, 4):
        settled_complaint(store, f"LH-{n}", closed_at=T0)
    before = every_row(store)

    dry = purge_closed(store, LOCAL, 0, dry_run=True, actor="operator:siti")

    assert every_row(store) == before  # not even an audit row
    real = purge_closed(store, LOCAL, 0, actor="operator:siti")
    assert dry.as_dict() == real.as_dict() and real.complaints == 3
    again = purge_closed(store, LOCAL, 0, actor="operator:siti")  # idempotent
    assert (again.complaints, again.events, again.attachments, again.reporters) == (0, 0, 0, 0)


def test_a_purge_goes_in_chunks_and_leaves_other_apps_alone(later):
    store, _clock = later
    ids = [settled_complaint(store, f"LH-{n}", closed_at=T0) for n in range(1, 6)]
    counts = purge_closed(store, LOCAL, 0, chunk=2)
    assert counts.complaints == 5 and all(MARK not in texts_of(store, cid) for cid in ids)
    assert purge_closed(store, "another-app", 0).complaints == 0


def test_a_purged_complaint_that_gets_new_events_is_purged_again_once_closed_past_the_window(later):
    """A purged complaint may reopen at the hub: what comes after the purge is read fresh from the
    peers and kept while needed, and purged again by a later run."""
    store, clock = later
    cid = settled_complaint(store, "LH-1", closed_at=T0)
    purge_closed(store, LOCAL, 0)
    clock.advance(days=1)
    store.record_event(
        cid, kind="follow_up", origin=HUB, origin_ref="h-9", occurred_at=clock.now,
        content=marked("after purge"), side="hub",
    )  # fmt: skip
    assert MARK in texts_of(store, cid)
    clock.advance(days=1)
    assert purge_closed(store, LOCAL, 0).complaints == 1
    assert MARK not in texts_of(store, cid)


def test_a_purge_waits_for_a_sent_follow_up_the_hub_poll_still_recognises_by_its_text(later):
    """A follow-up sent to the hub whose hub copy is not known yet is recognised by its text while
    the complaint is still read: purged only once the reads are over."""
    store, clock = later
    cid = settled_complaint(store, "LH-1", closed_at=T0)
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None
        row.next_poll_at = clock.now + timedelta(hours=6)  # still inside the reopen window
    assert purge_closed(store, LOCAL, 0).held_back == 1
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None
        row.next_poll_at = None  # the window is over: never read again
    assert purge_closed(store, LOCAL, 0).complaints == 1


# -- erasure ---------------------------------------------------------------------------------------


def test_an_erasure_removes_the_texts_now_drops_what_is_owed_and_stops_the_processing(store_url: str):
    clock = FakeClock(T0 + timedelta(hours=1))
    store = Store(store_url, clock=clock)
    try:
        cid = settled_complaint(store, "LH-1", hub_ref="4711")  # open, at the hub
        other = settled_complaint(store, "LH-2")
        store.record_event(
            cid, kind="follow_up", origin=HUB, origin_ref="h-1", occurred_at=T0, content=marked("hub answer"),
            side="hub", deliver=("local_follow_up", LOCAL),
        )  # fmt: skip
        other_texts = texts_of(store, other)

        erasure = erase_complaint(store, LOCAL, "LH-1", reason="surat 12/2026", actor="operator:siti")

        assert erasure.complaint_id == cid and erasure.outcome == "erased" and erasure.dropped == 1
        assert MARK not in texts_of(store, cid)
        assert texts_of(store, other) == other_texts
        with store.session() as s:
            dropped = s.exec(
                select(OutboxRow).where(OutboxRow.complaint_id == cid, OutboxRow.kind == "local_follow_up")
            ).one()
        assert (dropped.state, dropped.last_error) == ("dropped", ERASED_ON_REQUEST)
        assert erasure.remains == [
            "the hub sp4n holds complaint #4711 (created 2026-11-02) with the follow-ups sent to it: "
            "ask the hub's administrators to erase it",
            "the local app lapor-hendi-semarang holds report LH-1: erase it there (the gateway never deletes at a peer)",
        ]
        [request] = privacy_requests(store)
        assert request["completed_at"] == clock.now.isoformat() and request["operator"] == "operator:siti"
        assert request["what_remains"] == erasure.remains and request["kind"] == "erase"

        # Processed no further: a newer version and a new follow-up at the local app are not taken
        # in, the hub poll does not read it.
        clock.advance(hours=1)
        store.take_in_complaint(LOCAL, HUB, planted_complaint("LH-1", updated_at=clock.now), Status.IN_PROGRESS)
        later = LocalEvent(
            kind="follow_up", ref="tl-late", complaint_ref="LH-1", occurred_at=clock.now,
            content=marked("late follow-up"), deliver=(HUB_FOLLOW_UP, HUB),
        )  # fmt: skip
        record_local_events(store, LOCAL, [later])
        assert later.outcome == "erased"
        assert (
            store.record_event(cid, kind="follow_up", origin=HUB, origin_ref="h-2", occurred_at=clock.now, side="hub")
            is None
        )
        assert MARK not in texts_of(store, cid)
        assert store.complaint(cid).local_status_code == "selesai"
        with store.session() as s:
            owed = s.exec(
                select(OutboxRow).where(OutboxRow.complaint_id == cid, col(OutboxRow.state) == "pending")
            ).all()
        assert owed == []
        with store.session() as s:
            s.execute(update(ComplaintRow).values(next_poll_at=None, closed_at=None))
        assert [d.complaint_id for d in complaints_due(store, HUB, [LOCAL], 10)] == [other]
    finally:
        store.close()


def test_an_erasure_of_a_reference_nothing_is_stored_for_is_recorded_anyway(store_url: str):
    store = Store(store_url, clock=FakeClock())
    try:
        erasure = erase_complaint(store, LOCAL, "LH-404", kind="withdraw", actor="operator:siti")
        assert (erasure.complaint_id, erasure.outcome) == (None, "nothing_stored")
        [request] = privacy_requests(store)
        assert (request["kind"], request["local_ref"], request["outcome"]) == ("withdraw", "LH-404", "nothing_stored")
        assert request["completed_at"] is not None
    finally:
        store.close()


def test_a_reference_asked_to_be_erased_before_it_was_read_is_never_taken_in(store_url: str):
    """The request stops the processing also of what the gateway has not read yet: the complaint,
    its follow-ups and its status changes are ignored when they come (and the app's others are not)."""
    clock = FakeClock()
    store = Store(store_url, clock=clock)
    try:
        erase_complaint(store, LOCAL, "LH-9", kind="withdraw", actor="operator:siti")
        clock.advance(hours=1)

        taken = store.take_in_complaints(
            LOCAL, HUB, [(planted_complaint("LH-9"), Status.DONE), (planted_complaint("LH-10"), Status.DONE)]
        )

        assert taken[0] is None and taken[1] is not None and taken[1][1]  # only LH-10 is new
        assert store.take_in_complaint(LOCAL, HUB, planted_complaint("LH-9"), Status.DONE) is None
        assert store.complaint_id_for(LOCAL, "LH-9") is None
        follow_up = LocalEvent(
            kind="follow_up", ref="tl-9", complaint_ref="LH-9", occurred_at=clock.now,
            content=marked("follow-up LH-9"), deliver=(HUB_FOLLOW_UP, HUB),
        )  # fmt: skip
        status = LocalEvent(
            kind="status_change", ref="st-9", complaint_ref="LH-9", occurred_at=clock.now,
            raw_status=("selesai", "Selesai"), status=Status.DONE,
        )  # fmt: skip
        unknown = LocalEvent(kind="follow_up", ref="tl-11", complaint_ref="LH-11", occurred_at=clock.now)
        record_local_events(store, LOCAL, [follow_up, status, unknown])
        assert (follow_up.outcome, status.outcome, unknown.outcome) == ("erased", "erased", "no_complaint")
        # Another app's complaint with the same local id is not concerned.
        assert store.take_in_complaint("suara-arek", HUB, planted_complaint("LH-9"), Status.DONE) is not None
        with store.session() as s:
            assert s.exec(select(ComplaintRow.id).where(ComplaintRow.local_instance == LOCAL)).all() == [taken[1][0]]
            assert s.exec(select(EventRow.id).where(col(EventRow.local_ref).in_(["tl-9", "st-9"]))).all() == []
    finally:
        store.close()


def test_a_repeated_erasure_keeps_the_first_time_and_is_recorded_as_its_own_request(store_url: str):
    clock = FakeClock(T0 + timedelta(hours=1))
    store = Store(store_url, clock=clock)
    try:
        cid = settled_complaint(store, "LH-1", hub_ref="4711")
        first = erase_complaint(store, LOCAL, "LH-1", actor="operator:siti")
        erased_at = store.complaint(cid).erased_at
        clock.advance(days=2)

        second = erase_complaint(store, LOCAL, "LH-1", kind="withdraw", actor="operator:budi")

        assert (first.outcome, second.outcome) == ("erased", "already_erased")
        assert store.complaint(cid).erased_at == erased_at == first.completed_at == second.erased_at
        assert second.completed_at == clock.now and second.request_id != first.request_id
        assert [(r["id"], r["outcome"], r["operator"]) for r in privacy_requests(store)] == [
            (second.request_id, "already_erased", "operator:budi"),
            (first.request_id, "erased", "operator:siti"),
        ]
    finally:
        store.close()


def test_planted_markers_are_gone_from_the_raw_database_after_a_purge_and_an_erasure(later):
    store, _clock = later
    settled_complaint(store, "LH-1", closed_at=T0)
    settled_complaint(store, "LH-2", closed_at=T0)
    settled_complaint(store, "LH-3")  # open: erased on request
    assert markers_in_database(store)  # the check sees them while they are there

    purge_closed(store, LOCAL, 0, actor="operator:siti")
    erase_complaint(store, LOCAL, "LH-3", actor="operator:siti")

    assert markers_in_database(store) == []
    with store.session() as s:
        audit = s.exec(select(AuditRow).where(col(AuditRow.action).startswith("privacy_"))).all()
    assert [(a.action, a.actor) for a in audit] == [
        ("privacy_purge", "operator:siti"),
        ("privacy_erase", "operator:siti"),
    ]
    assert all(MARK not in (a.detail or "") for a in audit)


def test_an_imported_pair_of_ids_leaves_an_erased_complaint_alone(store_url: str, tmp_path: Path):
    """Found by the operator review: `gateway links import` linked a complaint erased on request
    to a hub id and owed the local app a write of that id, which the next pass made: the erased
    report was processed again. Its line is a problem now, and nothing changes."""
    from gateway._store._links import import_links

    store = Store(store_url, clock=FakeClock(T0 + timedelta(hours=1)))
    try:
        # Its create waits for an operator (the hub's answer was lost) when the request comes.
        cid, _ = store.take_in_complaint(LOCAL, HUB, planted_complaint("LH-1"), Status.UNVERIFIED)
        with store.session() as s:
            s.execute(update(OutboxRow).where(col(OutboxRow.complaint_id) == cid).values(state="needs_confirmation"))
        erase_complaint(store, LOCAL, "LH-1", actor="operator:siti")
        pairs = tmp_path / "pairs.csv"
        pairs.write_text("local_id,hub_id\nLH-1,4000999\n")

        report = import_links(store, pairs, LOCAL, HUB, write_back_hub_ref=True, actor="operator:sari")

        assert report.linked == 0 and report.problems == [
            f"{pairs}:2: complaint {cid} was erased on request (gateway privacy requests); nothing changed"
        ]
        with store.session() as s:
            assert s.exec(select(LinkRow).where(LinkRow.complaint_id == cid, LinkRow.instance == HUB)).first() is None
            owed = s.exec(
                select(OutboxRow).where(OutboxRow.complaint_id == cid, col(OutboxRow.state) == "pending")
            ).all()
        assert owed == []
    finally:
        store.close()
