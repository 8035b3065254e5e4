"""The store on both backends (its schema migrations: test_migrations.py): idempotent intake and timeline,
the outbox's order, due times, claims and parking, and cursors."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from gateway import AttachmentRef, Classification, Complaint, Location, RawStatus, Reporter, Status
from gateway._personal_data import PersonalDataKeys, ReporterKeeping, new_key
from gateway._store import CREATE_COMPLAINT, HUB_FOLLOW_UP, LOCAL_FOLLOW_UP, LOCAL_STATUS, Store
from gateway._store._tables import ComplaintRow, EventRow, JobRunRow, OutboxRow, QuarantineRow, ReporterRow
from gateway._timezones import WIB, ensure_utc, utcnow

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB
LOCAL = "lapor-hendi-semarang"
HUB = "sp4n"
LEASE = timedelta(minutes=5)
REPORTER = Reporter(
    name="Budi Santoso",
    nik="3374012345678901",
    phone="081234567890",
    email="budi@example.co.id",
    address="Jl. Pemuda No. 1",
)


class FakeClock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock):
    s = Store(store_url, clock=clock)
    yield s
    s.close()


def make_complaint(
    ref: str = "LH-1",
    *,
    anonymous: bool = False,
    reporter: Reporter | None = REPORTER,
    updated_at: datetime = T0,
    status: str = "belum terverifikasi",
) -> Complaint:
    return Complaint(
        ref=ref,
        title="Jalan berlubang di Jl. Pandanaran",
        body="Lubang besar di depan toko, bahaya malam hari.",
        created_at=T0,
        updated_at=updated_at,
        status=RawStatus(status, status.title()),
        category="Jalan Rusak",
        classification=Classification.COMPLAINT,
        location=Location(description="Jl. Pandanaran", district="Semarang Selatan"),
        channel="web",
        incident_at=T0 - timedelta(days=1),
        is_anonymous=anonymous,
        attachments=(AttachmentRef("lamp-1", "foto.jpg", "image/jpeg", 2048),),
        reporter=reporter,
    )


def take_in(store: Store, ref: str = "LH-1", **kwargs) -> int:
    complaint_id, _new = store.take_in_complaint(LOCAL, HUB, make_complaint(ref, **kwargs), Status.UNVERIFIED)
    return complaint_id


def follow_up(
    store: Store,
    complaint_id: int,
    ref: str,
    *,
    to: tuple[str, str] = (HUB_FOLLOW_UP, HUB),
    origin: str = LOCAL,
    side: str = "local",
) -> int | None:
    return store.record_event(
        complaint_id,
        kind="follow_up",
        origin=origin,
        origin_ref=ref,
        occurred_at=T0,
        content=f"tanggapan {ref}",
        author="Dinas PU",
        side=side,
        deliver=to,
    )


def outbox(store: Store) -> list[OutboxRow]:
    with store.session() as s:
        return list(s.exec(select(OutboxRow).order_by(OutboxRow.id)).all())


def ids(rows: list[OutboxRow]) -> list[int]:
    return [row.id for row in rows]


# -- intake ------------------------------------------------------------------------------------------


def test_take_in_is_idempotent_and_owes_one_create(store: Store):
    first_id, first_new = store.take_in_complaint(LOCAL, HUB, make_complaint(), Status.UNVERIFIED)
    again_id, again_new = store.take_in_complaint(LOCAL, HUB, make_complaint(), Status.UNVERIFIED)

    assert (first_new, again_new) == (True, False)
    assert again_id == first_id
    assert store.complaint_id_for(LOCAL, "LH-1") == first_id
    [owed] = outbox(store)
    assert (owed.complaint_id, owed.kind, owed.target, owed.state) == (first_id, CREATE_COMPLAINT, HUB, "pending")
    assert [a.local_ref for a in store.attachments(first_id)] == ["lamp-1"]


def test_take_in_again_with_a_newer_update_refreshes_the_status_but_owes_nothing_new(store: Store, clock):
    complaint_id = take_in(store)
    later = make_complaint(updated_at=T0 + timedelta(hours=3), status="dalam proses")

    again_id, new = store.take_in_complaint(LOCAL, HUB, later, Status.IN_PROGRESS)

    row = store.complaint(complaint_id)
    assert (again_id, new) == (complaint_id, False)
    assert (row.local_status_code, row.local_status) == ("dalam proses", "in_progress")
    assert ensure_utc(row.local_updated_at) == T0 + timedelta(hours=3)
    assert len(outbox(store)) == 1


def test_the_same_local_ref_of_another_instance_is_another_complaint(store: Store):
    first_id = take_in(store)
    other_id, new = store.take_in_complaint("wargaku-surabaya", HUB, make_complaint(), Status.UNVERIFIED)

    assert new and other_id != first_id
    assert len(outbox(store)) == 2


def test_reporter_of_an_anonymous_complaint_is_not_stored_even_where_a_purpose_keeps_reporters(store: Store):
    # (Without a purpose no reporter is kept at all: tests/test_privacy_reporter.py.)
    kept = ReporterKeeping(("name", "nik"), PersonalDataKeys.from_text(new_key()))
    anonymous_id, _ = store.take_in_complaint(
        LOCAL, HUB, make_complaint("LH-1", anonymous=True), Status.UNVERIFIED, reporters=kept
    )
    named_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-2"), Status.UNVERIFIED, reporters=kept)

    with store.session() as s:
        reporters = {row.complaint_id: row for row in s.exec(select(ReporterRow)).all()}
        complaint_texts = " ".join(f"{c.title} {c.body}" for c in s.exec(select(ComplaintRow)).all())
    assert anonymous_id not in reporters
    assert kept.keys.open(reporters[named_id].nik) == REPORTER.nik
    assert REPORTER.nik not in complaint_texts and REPORTER.name not in complaint_texts


# -- the timeline --------------------------------------------------------------------------------------


def test_record_event_is_idempotent_and_owes_one_delivery(store: Store):
    complaint_id = take_in(store)

    event_id = follow_up(store, complaint_id, "fu-1", to=(LOCAL_FOLLOW_UP, LOCAL), origin=HUB, side="hub")
    again = follow_up(store, complaint_id, "fu-1", to=(LOCAL_FOLLOW_UP, LOCAL), origin=HUB, side="hub")

    assert isinstance(event_id, int) and again is None
    owed = [row for row in outbox(store) if row.kind == LOCAL_FOLLOW_UP]
    assert [(row.event_id, row.target, row.state) for row in owed] == [(event_id, LOCAL, "pending")]
    event = store.event(event_id)
    assert (event.hub_ref, event.local_ref, event.content) == ("fu-1", None, "tanggapan fu-1")


def test_the_same_ref_from_another_origin_is_another_event(store: Store):
    complaint_id = take_in(store)

    from_local = follow_up(store, complaint_id, "77")
    from_hub = follow_up(store, complaint_id, "77", to=(LOCAL_FOLLOW_UP, LOCAL), origin=HUB, side="hub")

    assert from_local is not None and from_hub is not None and from_local != from_hub


def test_event_recorded_with_a_park_reason_is_owed_but_parked(store: Store):
    complaint_id = take_in(store)

    event_id = store.record_event(
        complaint_id,
        kind="status_change",
        origin=HUB,
        origin_ref="log-1",
        occurred_at=T0,
        raw_status=("weird", "Aneh"),
        status=None,
        side="hub",
        deliver=(LOCAL_STATUS, LOCAL),
        park_reason="no mapping for 'weird'",
    )

    [row] = [r for r in outbox(store) if r.event_id == event_id]
    assert (row.state, row.last_error) == ("parked", "no mapping for 'weird'")
    with store.session() as s:
        assert s.get(EventRow, event_id).raw_status_code == "weird"


# -- the outbox ------------------------------------------------------------------------------------------
# claim_due(target, owner, lease) hands out what is due and claims it in the same transaction.


def claim(store: Store, owner: str = "daemon-a", target: str = HUB) -> list[OutboxRow]:
    return store.claim_due(target, owner, LEASE)


def token(store: Store, outbox_id: int) -> str | None:
    return store.delivery(outbox_id).claim_token


def test_claim_due_hands_out_the_first_owed_per_complaint_and_target(store: Store):
    complaint_id = take_in(store)
    follow_up(store, complaint_id, "fu-1")
    follow_up(store, complaint_id, "fu-2")
    create, first, second = outbox(store)

    assert ids(claim(store)) == [create.id]  # the follow-ups wait for the create
    assert store.finish_delivery(create.id, link=(complaint_id, HUB, "4000001"), token=token(store, create.id))
    assert ids(claim(store)) == [first.id]
    store.finish_delivery(first.id, token=token(store, first.id))
    assert ids(claim(store)) == [second.id]
    store.finish_delivery(second.id, token=token(store, second.id))
    assert claim(store) == []
    assert store.external_ref(complaint_id, HUB) == "4000001"
    assert [row.state for row in outbox(store)] == ["done", "done", "done"]


def test_claim_due_of_other_complaints_and_targets_are_independent(store: Store):
    first = take_in(store, "LH-1")
    second = take_in(store, "LH-2")
    to_local = follow_up(store, first, "fu-hub", to=(LOCAL_FOLLOW_UP, LOCAL), origin=HUB, side="hub")

    due_hub = claim(store)
    due_local = claim(store, target=LOCAL)

    assert [(r.complaint_id, r.kind) for r in due_hub] == [(first, CREATE_COMPLAINT), (second, CREATE_COMPLAINT)]
    assert [(r.event_id, r.kind) for r in due_local] == [(to_local, LOCAL_FOLLOW_UP)]


@pytest.mark.parametrize("stuck", ["parked", "needs_confirmation"])
def test_a_stuck_delivery_blocks_the_later_ones_of_its_complaint(store: Store, stuck: str):
    blocked = take_in(store, "LH-1")
    follow_up(store, blocked, "fu-1")
    other = take_in(store, "LH-2")
    create_blocked = outbox(store)[0]
    claimed = claim(store)

    store.fail_delivery(
        create_blocked.id,
        "sp4n: POST /complaints/complaint: answered HTTP 422",
        retry_at=None,
        state=stuck,
        token=token(store, create_blocked.id),
    )
    for row in claimed:  # the other complaint's create goes back to being due, unclaimed
        if row.id != create_blocked.id:
            store.fail_delivery(row.id, "sp4n: circuit open", retry_at=T0, count=False, token=row.claim_token)

    assert store.delivery(create_blocked.id).state == stuck
    assert [r.complaint_id for r in claim(store)] == [other]


def test_claim_due_respects_next_attempt_at(store: Store, clock: FakeClock):
    complaint_id = take_in(store)
    follow_up(store, complaint_id, "fu-1")
    create = outbox(store)[0]
    assert ids(claim(store)) == [create.id]

    store.fail_delivery(
        create.id,
        "sp4n: POST /complaints/complaint: timed out",
        retry_at=T0 + timedelta(minutes=10),
        token=token(store, create.id),
    )

    assert claim(store) == []  # neither the create nor the follow-up behind it
    clock.advance(minutes=9, seconds=59)
    assert claim(store) == []
    clock.advance(seconds=1)
    [due] = claim(store)
    assert (due.id, due.attempts, due.last_error) == (create.id, 1, "sp4n: POST /complaints/complaint: timed out")


def test_a_claimed_delivery_is_not_handed_out_again_until_its_lease_expires(store: Store, clock: FakeClock):
    take_in(store)
    create = outbox(store)[0]

    assert ids(claim(store, "daemon-a")) == [create.id]
    row = store.delivery(create.id)
    assert (row.claimed_by, ensure_utc(row.claim_expires_at)) == ("daemon-a", T0 + LEASE)

    assert claim(store, "daemon-b") == []
    clock.advance(minutes=4)
    assert claim(store, "daemon-b") == []
    clock.advance(minutes=1, seconds=1)  # daemon-a died: its lease expired
    assert ids(claim(store, "daemon-b")) == [create.id]
    assert store.delivery(create.id).claimed_by == "daemon-b"
    assert claim(store, "daemon-a") == []


def test_a_finished_delivery_is_not_handed_out(store: Store, clock: FakeClock):
    take_in(store)
    create = outbox(store)[0]
    claim(store)
    store.finish_delivery(create.id, link=(create.complaint_id, HUB, "4000001"), token=token(store, create.id))
    clock.advance(hours=1)

    assert claim(store, "daemon-b") == []
    row = store.delivery(create.id)
    assert (row.state, row.claimed_by, ensure_utc(row.done_at)) == ("done", None, T0)


def test_fail_delivery_without_retry_at_parks_and_keeps_the_error(store: Store, clock: FakeClock):
    take_in(store)
    create = outbox(store)[0]
    claim(store)
    store.fail_delivery(
        create.id, "first: timed out", retry_at=T0 + timedelta(minutes=1), token=token(store, create.id)
    )
    clock.advance(minutes=2)
    claim(store)

    store.fail_delivery(
        create.id, "sp4n: POST /complaints/complaint: answered HTTP 422", retry_at=None, token=token(store, create.id)
    )

    row = store.delivery(create.id)
    assert row.state == "parked"
    assert row.attempts == 2
    assert row.last_error == "sp4n: POST /complaints/complaint: answered HTTP 422"
    assert ensure_utc(row.first_error_at) == T0
    assert ensure_utc(row.last_error_at) == T0 + timedelta(minutes=2)
    assert (row.claimed_by, row.claim_expires_at) == (None, None)
    clock.advance(days=1)
    assert claim(store) == []


def test_a_failure_without_a_call_does_not_count_as_an_attempt(store: Store):
    take_in(store)
    create = outbox(store)[0]
    claim(store)

    store.fail_delivery(create.id, "sp4n: circuit open", retry_at=T0, count=False, token=token(store, create.id))

    row = store.delivery(create.id)
    assert (row.attempts, row.state, row.last_error) == (0, "pending", "sp4n: circuit open")


# -- fenced claims: a daemon whose lease ran out cannot overwrite or send ------------------------------


def test_a_daemon_whose_lease_ran_out_cannot_overwrite_the_result_of_the_one_that_took_over(
    store: Store, clock: FakeClock
):
    take_in(store)
    create = outbox(store)[0]
    [a_row] = claim(store, "daemon-a")
    assert store.mark_sending(create.id, token=a_row.claim_token)
    clock.advance(minutes=5, seconds=1)  # daemon-a's call is slow; its lease runs out
    [b_row] = claim(store, "daemon-b")
    assert b_row.claim_token != a_row.claim_token
    assert store.finish_delivery(create.id, link=(create.complaint_id, HUB, "4000001"), token=b_row.claim_token)

    # daemon-a's late answers change nothing: not a failure over b's done, not a second link.
    assert not store.fail_delivery(create.id, "timed out", retry_at=None, token=a_row.claim_token)
    assert not store.finish_delivery(create.id, link=(create.complaint_id, HUB, "4000999"), token=a_row.claim_token)
    row = store.delivery(create.id)
    assert (row.state, row.last_error) == ("done", None)
    assert store.external_ref(create.complaint_id, HUB) == "4000001"


def test_a_claim_whose_lease_ran_out_may_not_send(store: Store, clock: FakeClock):
    take_in(store)
    create = outbox(store)[0]
    [row] = claim(store, "daemon-a")
    clock.advance(minutes=5, seconds=1)
    assert not store.mark_sending(create.id, token=row.claim_token)  # waited its turn too long: not sent
    assert store.delivery(create.id).sending_at is None
    assert not store.mark_sending(create.id, token=None)


def test_a_claim_checked_before_its_lease_ran_out_is_not_taken_over_before_its_call_is_marked(
    store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    """The race two daemons on one SQLite file ran into: daemon-a's mark_sending finds its claim
    live, daemon-b (whose clock is past the lease) claims the row before a's "sending" is written,
    and both send. Here b's claim runs at exactly that point (from inside a's check, through a's
    clock): the row must be locked to b (PostgreSQL skips it; SQLite's write lock makes b wait,
    and with a short wait give up), and once a's mark is in, b must not take a row in flight."""
    monkeypatch.setattr("gateway._store._engine.SQLITE_LOCK_WAIT_SECONDS", 0.2)  # b's wait, not a's
    late = FakeClock(T0 + LEASE + timedelta(seconds=1))
    a = Store(store_url, clock=clock)
    b = Store(store_url, clock=late)
    seen: list[object] = []

    def a_clock() -> datetime:
        if not seen:  # the first reading of the time inside a's mark_sending: b comes in now
            try:
                seen.append(b.claim_due(HUB, "daemon-b", LEASE, in_flight=timedelta(minutes=10)))
            except OperationalError as exc:  # SQLite: "database is locked", after b's short wait
                seen.append(exc)
        return clock()

    try:
        take_in(a)
        [row] = a.claim_due(HUB, "daemon-a", LEASE)
        a.clock = a_clock
        assert a.mark_sending(row.id, token=row.claim_token)
        assert seen and (seen[0] == [] or isinstance(seen[0], OperationalError)), (
            f"daemon-b took the row daemon-a was about to send: {seen[0]}"
        )
        assert b.claim_due(HUB, "daemon-b", LEASE, in_flight=timedelta(minutes=10)) == []  # a's call is in flight
        assert a.delivery(row.id).claim_token == row.claim_token
    finally:
        a.close()
        b.close()


def test_error_texts_are_stored_masked(store: Store):
    """Shown to operators (dashboard, CLI): a peer's value quoted in one is masked as in the log."""
    take_in(store)
    [row] = claim(store)
    quoted = "agencies has no 'Pak Joko 081277770099' (NIK 3374012345678901, joko@example.co.id)"
    assert store.fail_delivery(row.id, quoted, retry_at=None, token=row.claim_token)
    store.job_finished(LOCAL, "intake", error=quoted)
    store.quarantine(LOCAL, "complaints", "LH-9", quoted)
    stored = [store.delivery(row.id).last_error]
    with store.session() as s:
        stored += [r.last_error for r in s.exec(select(JobRunRow)).all()]
        stored += [r.reason for r in s.exec(select(QuarantineRow)).all()]
    assert len(stored) == 3
    for text in stored:
        assert text is not None and "<phone>" in text and "<nik>" in text and "<email>" in text
        assert "081277770099" not in text and "3374012345678901" not in text and "joko@" not in text


def test_a_lease_extended_while_a_call_is_slow_keeps_the_row(store: Store, clock: FakeClock):
    take_in(store)
    create = outbox(store)[0]
    [row] = claim(store, "daemon-a")
    for _ in range(4):
        clock.advance(minutes=4)
        assert store.extend_claim(create.id, row.claim_token, LEASE)
    assert claim(store, "daemon-b") == []  # 16 minutes on, the row is still daemon-a's
    assert store.mark_sending(create.id, token=row.claim_token)
    assert not store.extend_claim(create.id, "someone-else", LEASE)


def test_claims_are_extended_together_only_where_still_held(store: Store, clock: FakeClock):
    for ref in ("LH-1", "LH-2", "LH-3"):
        take_in(store, ref)
    rows = claim(store, "daemon-a")
    assert len(rows) == 3
    first, second, third = rows
    clock.advance(minutes=4)
    held = store.extend_claims(
        {first.id: first.claim_token, second.id: "someone-else", third.id: third.claim_token}, LEASE
    )
    assert held == {first.id, third.id}
    clock.advance(minutes=4)  # 8 minutes: the second's lease (5) ran out, the others' were pushed
    assert [r.id for r in claim(store, "daemon-b")] == [second.id]
    clock.advance(minutes=6)
    assert store.extend_claims({first.id: first.claim_token}, LEASE) == set()  # ran out: not revived


@pytest.mark.postgres
def test_leases_are_measured_on_the_databases_clock_not_a_hosts(tmp_path: Path):
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("GATEWAY_TEST_DATABASE_URL is not set")
    from conftest import reset_postgres

    url = reset_postgres(url)
    honest = Store(url, leases_by_database=True)
    ahead = Store(url, clock=lambda: utcnow() + timedelta(seconds=301), leases_by_database=True)  # a fast host
    try:
        honest.take_in_complaint(LOCAL, HUB, make_complaint(), Status.UNVERIFIED)
        [row] = honest.claim_due(HUB, "daemon-a", LEASE)
        assert ahead.claim_due(HUB, "daemon-fast", LEASE) == [], "a host 301 s ahead took a live claim"
        assert honest.mark_sending(row.id, token=row.claim_token)
    finally:
        honest.close()
        ahead.close()


@pytest.mark.postgres
def test_a_store_whose_connections_were_dropped_fails_one_statement_then_reconnects():
    """No pre-ping (a round trip per transaction): a connection the server dropped fails one
    statement, the pool is renewed, and the next statement works."""
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("GATEWAY_TEST_DATABASE_URL is not set")
    from conftest import reset_postgres
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    url = reset_postgres(url)
    store, admin = Store(url), Store(url)
    try:
        store.set_cursor(LOCAL, "complaints", datetime(2026, 11, 2, tzinfo=UTC))
        with store.engine.connect() as conn:  # the pool's connection: its server process
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        failures = 0
        for _ in range(3):
            try:
                assert store.cursor(LOCAL, "complaints") == datetime(2026, 11, 2, tzinfo=UTC)
            except OperationalError:
                failures += 1
        assert failures <= 1
    finally:
        store.close()
        admin.close()


# -- cursors --------------------------------------------------------------------------------------------


def test_cursors_round_trip_as_utc_aware_datetimes(store: Store):
    first = datetime(2026, 11, 2, 3, 4, 5, 678901, tzinfo=UTC)
    second = first + timedelta(hours=1)

    assert store.cursor(LOCAL, "complaints") is None
    store.set_cursor(LOCAL, "complaints", first)
    read = store.cursor(LOCAL, "complaints")
    assert read == first
    assert read.utcoffset() == timedelta(0)
    store.set_cursor(LOCAL, "complaints", second)
    assert store.cursor(LOCAL, "complaints") == second
    assert store.cursor(LOCAL, "follow_ups") is None  # per stream
    assert store.cursor(HUB, "complaints") is None  # per instance


def test_a_cursor_given_in_another_zone_keeps_its_instant(store: Store):
    in_wib = datetime(2026, 11, 2, 8, 0, tzinfo=WIB)

    store.set_cursor(LOCAL, "complaints", in_wib)

    assert store.cursor(LOCAL, "complaints") == in_wib  # the same instant, 01:00 UTC


def test_a_complaint_read_twice_in_one_batch_keeps_its_newer_version(store: Store):
    """Found by review-fuzz: a page listing a complaint's newer version before its older one (a
    peer out of order, or a duplicate id) stored the older one, and counted both as new."""
    newer = make_complaint("LH-7", updated_at=T0 + timedelta(minutes=5), status="dalam proses")
    older = make_complaint("LH-7", updated_at=T0, status="belum terverifikasi")

    taken = store.take_in_complaints(LOCAL, HUB, [(newer, Status.IN_PROGRESS), (older, Status.UNVERIFIED)])

    assert [t[1] for t in taken if t is not None] == [True, False]
    assert taken[0] is not None and taken[1] is not None and taken[0][0] == taken[1][0]
    with store.session() as s:
        (row,) = s.exec(select(ComplaintRow)).all()
    assert row.local_status == Status.IN_PROGRESS.value and row.local_status_code == "dalam proses"
    assert ensure_utc(row.local_updated_at) == T0 + timedelta(minutes=5)
