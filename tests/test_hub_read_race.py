"""Two daemons reading one complaint at the hub: each works out what its read adds from a view
of the store taken before its write. When another daemon recorded a hub status in between, the
write is refused (IntegrityError, on which the poll reads the view again) rather than landing a
status taken from the complaint's current status a second time under another ref (seen in the
three-daemon chaos run: the local app got the status note twice)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from test_deadlines import MONDAY, status_event, take_in
from test_store import HUB, LOCAL, FakeClock

from gateway._model import Status
from gateway._store import HUB_FOLLOW_UP, Store
from gateway._store._hub_reads import HubStatus, apply_hub_read, hub_view
from gateway._store._operator import drop_delivery
from gateway._store._tables import EventRow, OutboxRow


@pytest.fixture
def store(store_url: str):
    s = Store(store_url, clock=FakeClock(MONDAY))
    yield s
    s.close()


def _apply(store: Store, complaint_id: int, *events, statuses_seen: int | None) -> None:
    apply_hub_read(
        store,
        complaint_id,
        HUB,
        events=list(events),
        echoes=[],
        status=HubStatus("x", Status.VERIFIED.value, Status.VERIFIED, True),
        next_read=lambda now, *_: now + timedelta(hours=1),
        statuses_seen=statuses_seen,
    )


def _statuses(store: Store, complaint_id: int) -> int:
    with store.session() as s:
        return s.exec(
            select(func.count(col(EventRow.id))).where(
                EventRow.complaint_id == complaint_id, EventRow.kind == "status_change"
            )
        ).one()


def test_a_read_worked_out_from_a_view_another_daemon_has_since_changed_is_refused(store: Store):
    complaint_id = take_in(store, "LH-RACE")
    stale = hub_view(store, complaint_id, HUB)  # daemon A reads the store, then the hub
    assert stale.statuses_seen == 0
    # Daemon B records the complaint's history meanwhile.
    _apply(store, complaint_id, status_event("s1", Status.VERIFIED, MONDAY), statuses_seen=0)
    # A's read found the history unreadable and took the current status as a change of its own.
    with pytest.raises(IntegrityError):
        _apply(store, complaint_id, status_event("current-0-x", Status.VERIFIED, MONDAY), statuses_seen=0)
    assert _statuses(store, complaint_id) == 1
    fresh = hub_view(store, complaint_id, HUB)  # what the poll does on IntegrityError
    assert fresh.statuses_seen == 1 and fresh.last_status == ("s1", Status.VERIFIED.value)
    _apply(store, complaint_id, statuses_seen=fresh.statuses_seen)  # nothing new: accepted
    assert _statuses(store, complaint_id) == 1


TEXT = "Sudah kami cek di lokasi."


def _local_follow_up(store: Store, complaint_id: int) -> int:
    """A local officer's follow-up, owed to the hub."""
    event_id = store.record_event(
        complaint_id,
        kind="follow_up",
        origin=LOCAL,
        origin_ref="tl-1",
        occurred_at=MONDAY,
        content=TEXT,
        author=None,
        side="local",
        deliver=(HUB_FOLLOW_UP, HUB),
    )
    assert event_id is not None
    return event_id


def test_a_follow_up_another_daemon_matches_while_the_view_is_read_is_in_it_once(store: Store, store_url: str):
    """Daemon A's call lands at the hub and A records the hub id of its follow-up while daemon B
    reads its view of the complaint. B's view must hold that follow-up either as known (by its
    hub id) or as sent without one: never in neither, or B's poll takes the gateway's own copy for
    the hub's and writes it back to the local app (the three-daemon chaos run saw it)."""
    complaint_id = take_in(store, "LH-ECHO")
    event_id = _local_follow_up(store, complaint_id)
    with store.session() as s:  # daemon A's call is under way
        row = s.exec(select(OutboxRow).where(OutboxRow.event_id == event_id)).one()
        row.sending_at = MONDAY
    daemon_a = Store(store_url, clock=FakeClock(MONDAY))
    landed: list[str] = []

    def a_records_the_hub_id(_conn, _cursor, statement: str, *_args) -> None:
        # After B's first statement on the timeline: A's answer arrives and A records it.
        if not landed and "hub_ref" in statement and "FROM event" in statement:
            daemon_a.set_event_ref(event_id, "hub", "7000113")
            landed.append(statement)

    sa_event.listen(store.engine, "after_cursor_execute", a_records_the_hub_id)
    try:
        view = hub_view(store, complaint_id, HUB)
    finally:
        sa_event.remove(store.engine, "after_cursor_execute", a_records_the_hub_id)
        daemon_a.close()
    assert landed, "the hook never ran: the test did not race anything"
    known = ("follow_up", "7000113") in view.known
    sent = [eid for eid, _ in view.unmatched_sent if eid == event_id]
    assert known or sent, "the gateway's own follow-up is in neither what the view knows nor what it sent"
    assert not (known and sent)


@pytest.mark.parametrize(
    ("state", "outcome_unknown", "sending", "may_be_there"),
    [
        ("pending", False, False, False),  # not sent yet
        ("pending", False, True, True),  # its call is under way
        ("pending", True, False, True),  # its answer was lost; to be tried again
        ("parked", True, False, True),  # parked after its last answer was lost
        ("needs_confirmation", True, False, True),
        ("parked", False, False, False),  # refused: never at the hub
        ("done", False, False, True),  # sent, the hub's answer carried no id
        ("skipped", False, False, False),
        ("dropped", True, False, True),  # dropped by an operator after its answer was lost
        ("dropped", False, False, False),  # dropped before any call
    ],
)
def test_a_follow_up_is_looked_for_at_the_hub_when_it_may_be_there(
    store: Store, state: str, outcome_unknown: bool, sending: bool, may_be_there: bool
):
    complaint_id = take_in(store, "LH-MAYBE")
    event_id = _local_follow_up(store, complaint_id)
    with store.session() as s:
        row = s.exec(select(OutboxRow).where(OutboxRow.event_id == event_id)).one()
        row.state, row.outcome_unknown, row.sending_at = state, outcome_unknown, MONDAY if sending else None
    view = hub_view(store, complaint_id, HUB)
    assert (view.unmatched_sent == ((event_id, TEXT),)) is may_be_there


def test_a_follow_up_dropped_while_its_call_was_under_way_is_still_recognised_at_the_hub(store: Store):
    """An operator drops a follow-up whose call is under way: the call may still land, and its copy
    at the hub must be known as the gateway's, not passed back to the local app as the hub's."""
    complaint_id = take_in(store, "LH-DROP")
    event_id = _local_follow_up(store, complaint_id)
    with store.session() as s:
        row = s.exec(select(OutboxRow).where(OutboxRow.event_id == event_id)).one()
        row.sending_at, outbox_id = MONDAY, row.id
    drop_delivery(store, outbox_id, "the citizen withdrew it")
    dropped = store.delivery(outbox_id)
    assert (dropped.state, dropped.outcome_unknown, dropped.sending_at) == ("dropped", True, None)
    assert hub_view(store, complaint_id, HUB).unmatched_sent == ((event_id, TEXT),)
