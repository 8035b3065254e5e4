"""Decisions the store makes from what it reads, with another daemon (or an operator's command)
committing between two of its statements: the technique of ``test_hub_read_race.py``, a
SQLAlchemy ``after_cursor_execute`` hook on the store's engine that commits the other writer's
change right after one statement, deterministically. Each decision must come out as if the other
write landed wholly before it or wholly after it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event
from sqlmodel import col, select
from test_deadlines import MONDAY, RULES, deadlines_of, hub_read, status_event
from test_deadlines import take_in as take_in_deadlines
from test_delivery_guarantees import _quiet, _started, harness
from test_store import HUB, LEASE, LOCAL, T0, FakeClock, make_complaint

from gateway._deadlines import Tier
from gateway._engine._hub_poll import HubPoll, PollResult
from gateway._model import RawStatus, Status
from gateway._store import HUB_FOLLOW_UP, LOCAL_FOLLOW_UP, LOCAL_STATUS, Store
from gateway._store._current_state import status_changes_seen
from gateway._store._deadlines import refresh_deadlines
from gateway._store._hub_reads import HubEvent, HubStatus, apply_hub_read
from gateway._store._links import import_links
from gateway._store._local_reads import LocalEvent, record_local_events
from gateway._store._privacy import erase_complaint, purge_closed
from gateway._store._store import OWED_STATES
from gateway._store._tables import EventRow, OutboxRow
from gateway._timezones import ensure_utc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(store_url, clock=clock)
    yield s
    s.close()


@pytest.fixture
def daemon_a(store_url: str, clock: FakeClock) -> Iterator[Store]:
    """Another daemon on the same store."""
    s = Store(store_url, clock=clock)
    yield s
    s.close()


@contextmanager
def between(store: Store, after: Callable[[str], bool], write: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``write`` (another daemon's commit) once, right after the first statement of
    ``store`` for which ``after(statement)`` holds. Yields the statements it ran after, so that
    a test can check the race was run at all.

    The write runs in a thread: where the fix is a lock held by the statement, the write waits
    for it (up to a second here, then on after the store's transaction ends) instead of blocking
    this thread, which holds that lock."""
    hit: list[str] = []
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            write()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    def hook(_conn, _cursor, statement: str, *_args) -> None:
        if not hit and after(statement):
            hit.append(statement)
            thread = threading.Thread(target=run)
            thread.start()
            thread.join(timeout=1.0)  # done at once, unless the statement's lock holds it back
            threads.append(thread)

    sa_event.listen(store.engine, "after_cursor_execute", hook)
    try:
        yield hit
    finally:
        sa_event.remove(store.engine, "after_cursor_execute", hook)
        for thread in threads:
            thread.join(timeout=30)
    if failures:
        raise failures[0]


# -- a local app without status history: the gateway's own status write is no change of the app's --------


def test_a_status_the_gateway_writes_while_the_intake_compares_is_not_taken_for_the_apps(
    store: Store, daemon_a: Store, clock: FakeClock
):
    """Daemon A writes the hub's status "selesai" to the local app: its outbox row is marked as
    sending, the app takes the write, then A notes the status (set_local_status) and finishes the
    row. Daemon B's intake read the complaint after the write (it shows "selesai") and compares it
    with the status the gateway knew. If B reads the known status before A's note and "is a write
    under way" after A's finish, the gateway's own write looks like the officer's change, and the
    conflict rule would then keep it against the hub."""
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-1", status="dalam proses"), None)
    with store.session() as s:  # A's local_status delivery, its call under way
        row = OutboxRow(complaint_id=complaint_id, kind=LOCAL_STATUS, target=LOCAL, next_attempt_at=T0, created_at=T0)
        s.add(row)
    claimed = daemon_a.claim_due(LOCAL, "daemon-a", LEASE)
    assert [r.complaint_id for r in claimed] == [complaint_id]
    assert daemon_a.mark_sending(claimed[0].id, claimed[0].claim_token)
    read = replace(
        make_complaint("LH-1", status="selesai", updated_at=T0 + timedelta(minutes=5)),
        status=RawStatus("selesai", "Selesai"),
    )

    def a_notes_and_finishes() -> None:
        daemon_a.set_local_status(complaint_id, "selesai", Status.DONE)
        assert daemon_a.finish_delivery(claimed[0].id, token=claimed[0].claim_token)

    with between(store, lambda st: "local_status_code" in st and "FROM complaint" in st, a_notes_and_finishes) as hit:
        seen = status_changes_seen(store, LOCAL, [(read, Status.DONE)])
    assert hit, "the hook never ran: the test did not race anything"
    assert seen == [], "the gateway's own status write was taken for a change made in the local app"


# -- intake: a known complaint read by two daemons ------------------------------------------------------


def _local_status_code(store: Store, complaint_id: int) -> str | None:
    return store.complaint(complaint_id).local_status_code


def test_an_older_version_of_a_complaint_never_overwrites_a_newer_one_another_daemon_took_in(
    store: Store, daemon_a: Store
):
    """Daemons A and B read one complaint of the local app at different moments: B read version 1
    ("dalam proses"), A later version 2 ("selesai"). B compares its version with the stored one
    (version 0) and writes it as newer; if A's version 2 commits between B's read and B's write,
    B put version 1 back over it, and the gateway took the local status to be the older one (the
    forward_only rule then lets a hub status move it back)."""
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-1"), Status.UNVERIFIED)
    v1 = make_complaint("LH-1", status="dalam proses", updated_at=T0 + timedelta(minutes=5))
    v2 = make_complaint("LH-1", status="selesai", updated_at=T0 + timedelta(minutes=10))

    def a_takes_in_version_2() -> None:
        daemon_a.take_in_complaint(LOCAL, HUB, v2, Status.DONE)

    with between(
        store, lambda st: st.lstrip().startswith("SELECT complaint.id,") and "title" in st, a_takes_in_version_2
    ) as hit:
        store.take_in_complaint(LOCAL, HUB, v1, Status.IN_PROGRESS)
    assert hit, "the hook never ran: the test did not race anything"
    assert _local_status_code(store, complaint_id) == "selesai"


# -- erasure on request while the intake records a follow-up --------------------------------------------


@pytest.mark.parametrize("at", [1, 2], ids=["after-the-first-check", "after-the-check-under-lock"])
def test_a_follow_up_read_while_its_complaint_is_erased_is_not_kept_nor_sent(store: Store, daemon_a: Store, at: int):
    """An operator erases a complaint on request (its texts removed, its owed deliveries dropped)
    while a daemon's intake records a new follow-up of it. If the erasure commits after the intake
    found the complaint not erased and before it wrote, the follow-up's text was kept in the store
    and owed to the hub: personal data processed after the erasure (UU PDP), and sent on."""
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-1"), Status.UNVERIFIED)
    event = LocalEvent(
        kind="follow_up",
        ref="tl-1",
        complaint_ref="LH-1",
        occurred_at=T0,
        content="Nomor HP saya 081234567890, tolong hubungi.",
        deliver=(HUB_FOLLOW_UP, HUB),
    )

    def operator_erases() -> None:
        erase_complaint(daemon_a, LOCAL, "LH-1", actor="operator:test")

    checks: list[str] = []

    def erased_checked(statement: str) -> bool:
        # (the statement that locks shows no FOR clause on SQLite: counted, not matched)
        if "erased_at" in statement and "FROM complaint" in statement:
            checks.append(statement)
        return len(checks) == at

    with between(store, erased_checked, operator_erases) as hit:
        record_local_events(store, LOCAL, [event])
    assert hit, "the hook never ran: the test did not race anything"
    with store.session() as s:
        texts = s.exec(select(EventRow.content).where(EventRow.complaint_id == complaint_id)).all()
        owed = s.exec(
            select(OutboxRow.kind).where(OutboxRow.complaint_id == complaint_id, col(OutboxRow.state).in_(OWED_STATES))
        ).all()
    assert [t for t in texts if t] == [], "a follow-up's text was kept after its complaint was erased"
    assert owed == [], "a follow-up of an erased complaint is owed to the hub"


# -- deadlines computed again (new rules) while a hub read settles them ---------------------------------


def test_a_deadline_a_hub_read_met_stays_met_when_another_daemon_computes_it_again(store: Store, daemon_a: Store):
    """Daemon B computes a complaint's deadlines again under new rules (a daemon restarted with an
    edited config) while daemon A's hub read finds the complaint verified and meets its verify
    deadline. If A's read commits after B read the timeline and before B wrote, B wrote the
    deadlines of the timeline without the verification: met no more, the complaint was counted
    overdue until its next read."""
    complaint_id = take_in_deadlines(store, "LH-1")
    assert refresh_deadlines(store, LOCAL, RULES) == 1
    stricter = replace(RULES, tiers={Tier.VERIFY: 2, Tier.ANSWER: 4, Tier.CLOSE: 8})

    def a_reads_it_verified() -> None:
        hub_read(
            daemon_a,
            complaint_id,
            status_event("s1", Status.VERIFIED, MONDAY + timedelta(hours=1)),
            status=Status.VERIFIED,
            rules=stricter,
        )

    with between(store, lambda st: "FROM event JOIN complaint" in st, a_reads_it_verified) as hit:
        refresh_deadlines(store, LOCAL, stricter)
    assert hit, "the hook never ran: the test did not race anything"
    verify = deadlines_of(store, complaint_id)["verify"]
    assert verify.met_at is not None and verify.outcome == "met"
    written = {tier: (r.starts_at, r.due_at, r.met_at) for tier, r in deadlines_of(store, complaint_id).items()}
    hub_read(daemon_a, complaint_id, status=Status.VERIFIED, rules=stricter)  # settled again from the timeline
    settled = {tier: (r.starts_at, r.due_at, r.met_at) for tier, r in deadlines_of(store, complaint_id).items()}
    assert written == settled, "the later deadlines were not counted from the verification"


# -- an operator's imported pair of ids while a daemon starts the create --------------------------------


def test_an_imported_pair_and_a_create_starting_at_the_same_moment_never_both_go_ahead(
    store: Store, daemon_a: Store, tmp_path: Path
):
    """An operator imports the hub id of a complaint typed over by hand (``gateway links import``)
    while daemon A, holding the complaint's create, marks its call as started. The import checks
    that no create is under way and marks the create done; if A's mark commits between that check
    and the import's write, A goes on to create the complaint at the hub a second time."""
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-1"), Status.UNVERIFIED)
    claimed = daemon_a.claim_due(HUB, "daemon-a", LEASE)
    assert [r.complaint_id for r in claimed] == [complaint_id]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("local_id,hub_id\nLH-1,7000001\n", encoding="utf-8")
    sending: list[bool] = []

    def a_starts_the_create() -> None:
        sending.append(daemon_a.mark_sending(claimed[0].id, claimed[0].claim_token))

    with between(store, lambda st: "FROM outbox" in st, a_starts_the_create) as hit:
        report = import_links(store, pairs, LOCAL, HUB, write_back_hub_ref=False)
    assert hit, "the hook never ran: the test did not race anything"
    assert sending in ([True], [False])
    linked = store.external_ref(complaint_id, HUB) == "7000001"
    assert linked == (report.linked == 1)
    assert not (linked and sending[0]), "linked by the import, and created at the hub by the daemon too"


# -- the retention purge while a hub read brings a follow-up of a closed complaint ----------------------


def _closed_without_anything_owed(store: Store) -> int:
    complaint_id, _ = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-1"), Status.UNVERIFIED)
    with store.session() as s:  # created at the hub long ago
        for row in s.exec(select(OutboxRow).where(OutboxRow.complaint_id == complaint_id)).all():
            row.state = "done"
    _hub_read(store, complaint_id, status=Status.DONE)  # closed now (T0)
    return complaint_id


def _hub_read(store: Store, complaint_id: int, *events: HubEvent, status: Status) -> None:
    apply_hub_read(
        store,
        complaint_id,
        HUB,
        events=list(events),
        echoes=[],
        status=HubStatus("x", status.value, status, True),
        next_read=lambda now, *_: now + timedelta(hours=6),
    )


PICK, RECHECK = 1, 3  # the purge's statements on complaints: its pick, its lock, its pick again


@pytest.mark.parametrize("at", [PICK, RECHECK], ids=["after-the-pick", "after-the-pick-under-lock"])
@pytest.mark.parametrize("writer", ["hub-read", "intake"])
def test_a_follow_up_recorded_while_the_purge_runs_keeps_its_text_until_delivered(
    store: Store, daemon_a: Store, clock: FakeClock, writer: str, at: int
):
    """The retention purge (closed_days 0: every closed complaint) picks a closed complaint that
    owes nothing, while daemon A records a new follow-up of it, owed to one side: an agency's
    answer after the closure read at the hub, or an officer's follow-up read at the local app. If
    A's write commits after the purge picked the complaint and before it cleared the texts, the
    new follow-up's text was purged with the others, and an empty follow-up was delivered."""
    complaint_id = _closed_without_anything_owed(store)
    clock.advance(hours=1)
    text = "Perbaikan jalan sudah dijadwalkan minggu depan."

    def a_records_a_follow_up() -> None:
        if writer == "hub-read":
            answer = HubEvent(
                kind="follow_up",
                hub_ref="7000200",
                occurred_at=T0 + timedelta(minutes=30),
                content=text,
                deliver=(LOCAL_FOLLOW_UP, LOCAL),
            )
            _hub_read(daemon_a, complaint_id, answer, status=Status.DONE)
        else:
            officer = LocalEvent(
                kind="follow_up",
                ref="tl-7",
                complaint_ref="LH-1",
                occurred_at=T0 + timedelta(minutes=30),
                content=text,
                deliver=(HUB_FOLLOW_UP, HUB),
            )
            record_local_events(daemon_a, LOCAL, [officer])
            assert officer.outcome == "recorded"

    picks: list[str] = []

    def purge_statement(statement: str) -> bool:
        if "FROM complaint" in statement and "count(" not in statement:
            picks.append(statement)
        return len(picks) == at

    with between(store, purge_statement, a_records_a_follow_up) as hit:
        purge_closed(store, LOCAL, 0)
    assert hit, "the hook never ran: the test did not race anything"
    with store.session() as s:
        owed = s.exec(
            select(EventRow.content)
            .join(OutboxRow, col(OutboxRow.event_id) == col(EventRow.id))
            .where(OutboxRow.complaint_id == complaint_id, col(OutboxRow.state).in_(OWED_STATES))
        ).all()
    assert owed == [text], "a follow-up owed to one side lost its text to the purge"


# -- two daemons read one complaint at the hub, the later read is written first ---------------------------


@pytest.mark.anyio
@pytest.mark.e2e
async def test_a_hub_read_older_than_the_one_stored_is_not_written_over_it(world, tmp_path: Path, store_url: str):
    """Daemon B reads a complaint at the hub (status "Belum Terverifikasi"); the hub's officer then
    verifies it, and daemon A reads it and writes its read first. B's read, older news, then met a
    store whose last hub status is "Terverifikasi" while the hub's current status in its read was
    not: B took that for a change the history did not show, recorded the old status as a change of
    its own (owed to the local app: the complaint went back) and set the hub status back."""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.complaints()[0]["id_aduan"]
        hub_ref, complaint_id = h.hub_id(local_id), h.complaint_id(local_id)
        assert hub_ref is not None
        hub = h.engine.adapters[HUB]
        poll_b = HubPoll(h.store, hub, {LOCAL: h.engine.routes[LOCAL]}, batch=10, rng=h.engine.rng)
        picked = ensure_utc(h.store.complaint(complaint_id).hub_polled_at)  # the read held as B picked it
        real_read = hub.read_complaint
        raced: list[str] = []

        async def read_then_a_reads_later_and_writes_first(ref: str):
            state = await real_read(ref)  # B's read
            if not raced:
                raced.append(ref)
                h.later()  # the complaint is due for A's read
                h.hub_officer_sets_status(ref, "Terverifikasi")
                await h.engine.poll_hub(HUB)  # A reads (through the real read: raced) and writes
            return state

        hub.read_complaint = read_then_a_reads_later_and_writes_first  # type: ignore[method-assign]
        try:
            await poll_b._poll_one(complaint_id, hub_ref, PollResult(), last_read=picked)
        finally:
            hub.read_complaint = real_read  # type: ignore[method-assign]
        assert raced, "A's read never ran: the test did not race anything"
        assert h.store.complaint(complaint_id).hub_status_name == "Terverifikasi"
        with h.store.session() as s:
            refs = s.exec(
                select(EventRow.origin_ref).where(EventRow.complaint_id == complaint_id, EventRow.origin == HUB)
            ).all()
        assert not [r for r in refs if r.startswith("current-")], "B's older status was recorded as a new change"
