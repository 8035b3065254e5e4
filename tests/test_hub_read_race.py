"""Two daemons reading one complaint at the hub: each works out what its read adds from a view
of the store taken before its write. When another daemon recorded a hub status in between, the
write is refused (IntegrityError, on which the poll reads the view again) rather than landing a
status taken from the complaint's current status a second time under another ref (seen in the
three-daemon chaos run: the local app got the status note twice)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from test_deadlines import MONDAY, status_event, take_in
from test_store import HUB, FakeClock

from gateway._model import Status
from gateway._store import Store
from gateway._store._hub_reads import HubStatus, apply_hub_read, hub_view
from gateway._store._tables import EventRow


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
