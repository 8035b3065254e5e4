"""The store's side of reading the hub: which complaints are due for a read, what
the gateway already knows of one, and the outcome of one read written in a single
transaction (new timeline events, what they owe, the status, the next read).

One read costs two short transactions whatever the complaint's history, which is
what keeps polling thousands of complaints cheap on PostgreSQL.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway._deadlines import DeadlineRules
from gateway._logging import scrub_text
from gateway._model import AttachmentRef, Status
from gateway._store._deadlines import open_deadlines, settle_deadlines
from gateway._store._store import HUB_FOLLOW_UP, MAX_REASON, OWED_STATES, OutboxState, Store, bounded, new_ref
from gateway._store._tables import AttachmentRow, ComplaintRow, EventRow, LinkRow, OutboxRow, existing_row
from gateway._timezones import ensure_utc


@dataclass(frozen=True)
class HubView:
    """What the gateway knows of one complaint before reading it at the hub."""

    complaint_id: int
    local_instance: str
    hub_status_code: str | None
    closed_at: datetime | None
    filed_at: datetime  # when the citizen filed it at the local app (its deadlines count from it)
    last_change_at: datetime  # the hub's last change seen, or when the gateway took the complaint in
    known: frozenset[tuple[str, str]]  # (event kind, hub id) of what the timeline holds already
    # Follow-ups the gateway may have sent to the hub whose hub id it does not know:
    # (event id, content), oldest first. A hub follow-up with the same text is one of them.
    unmatched_sent: tuple[tuple[int, str], ...]
    # The hub status the timeline holds last (code, name), and how many hub statuses it holds:
    # when the hub's current status differs, the history did not show the change.
    last_status: tuple[str | None, str | None] | None = None
    last_status_at: datetime | None = None  # when the hub says ``last_status`` was set (the hub's clock)
    statuses_seen: int = 0
    # When the hub says the newest hub event the timeline holds happened (the hub's clock).
    last_hub_time: datetime | None = None
    # The due time of its current deadline (the earliest tier not met), if any.
    deadlines: tuple[datetime, ...] = ()


@dataclass
class HubEvent:
    """A status change or follow-up read at the hub and not yet in the timeline."""

    kind: str  # "status_change" or "follow_up"
    hub_ref: str
    occurred_at: datetime
    content: str | None = None
    author: str | None = None
    raw_status: tuple[str, str | None] | None = None
    status: Status | None = None
    is_secret: bool = False
    attachments: tuple[AttachmentRef, ...] = ()
    reason: str | None = None
    deliver: tuple[str, str] | None = None  # (delivery kind, target)
    park_reason: str | None = None
    event_id: int | None = field(default=None, init=False)  # set once recorded


@dataclass(frozen=True)
class HubStatus:
    code: str
    name: str | None
    status: Status | None
    may_close: bool  # False after a read that was not whole: closing would stop the reads


@dataclass(frozen=True)
class DueRead:
    """A complaint due for a read at the hub."""

    complaint_id: int
    hub_ref: str
    # When the read the store holds was written (None: never read), as the complaint was picked:
    # apply_hub_read writes a read only over that one (see ``last_read`` there).
    last_read: datetime | None


class _Unchecked(enum.Enum):
    UNCHECKED = "unchecked"


#: ``apply_hub_read(last_read=UNCHECKED)``: written whatever read the store holds (tests, tools).
UNCHECKED = _Unchecked.UNCHECKED
#: What ``apply_hub_read`` compares with the read the store holds: its ``hub_polled_at`` when the
#: complaint was picked (None: never read), or UNCHECKED.
LastRead = datetime | Literal[_Unchecked.UNCHECKED] | None


def complaints_due(store: Store, hub: str, local_instances: list[str], limit: int) -> list[DueRead]:
    """Complaints due for a read, most overdue first: never read ones, then by when they were
    due. Closed complaints are due only through the reopen window (their next read is unset once
    it is over)."""
    now = store.clock()
    with store.session() as s:
        next_poll_at = col(ComplaintRow.next_poll_at)
        rows = s.exec(
            select(col(ComplaintRow.id), LinkRow.external_ref, col(ComplaintRow.hub_polled_at))
            .join(LinkRow, (col(LinkRow.complaint_id) == col(ComplaintRow.id)) & (col(LinkRow.instance) == hub))
            .where(
                col(ComplaintRow.local_instance).in_(local_instances),
                col(ComplaintRow.erased_at).is_(None),  # erased on request: never read again
                or_(next_poll_at <= now, next_poll_at.is_(None) & col(ComplaintRow.closed_at).is_(None)),
            )
            .order_by(next_poll_at.is_not(None), next_poll_at, col(ComplaintRow.id))
            .limit(limit)
        ).all()
        # (a stored row's id is never None)
        return [DueRead(cid, ref, ensure_utc(last)) for cid, ref, last in rows if cid is not None]


def poll_backlog(store: Store, hub: str) -> tuple[int, datetime | None]:
    """How many complaints are due for a read now, and since when the oldest one is (one never
    read yet: since it was linked at the hub)."""
    now = store.clock()
    with store.session() as s:
        next_poll_at = col(ComplaintRow.next_poll_at)
        due = (
            (col(ComplaintRow.hub_instance) == hub)
            & col(ComplaintRow.erased_at).is_(None)
            & or_(next_poll_at <= now, next_poll_at.is_(None) & col(ComplaintRow.closed_at).is_(None))
        )
        linked = col(LinkRow.complaint_id) == col(ComplaintRow.id)
        count, oldest = s.exec(
            select(func.count(), func.min(func.coalesce(next_poll_at, col(LinkRow.linked_at))))
            .join(LinkRow, linked & (col(LinkRow.instance) == hub))
            .where(due)
        ).one()
        return count, ensure_utc(oldest)


def hub_view(store: Store, complaint_id: int, hub: str) -> HubView:
    """What the gateway knows of ``complaint_id`` before its read at the hub (see HubView)."""
    with store.session() as s:
        row = existing_row(s, ComplaintRow, complaint_id)
        # The hub ids the timeline holds and the follow-ups sent without one come from ONE
        # statement, so from one snapshot. Read apart, another daemon's delivery could record
        # its follow-up's hub id between the two (PostgreSQL's READ COMMITTED and SQLite's
        # reads outside a transaction each see the latest commit): that follow-up was then in
        # neither, and the poll passed the gateway's own copy back to the local app as the
        # hub's (seen in the three-daemon chaos run).
        sent = (
            select(OutboxRow.id)
            .where(
                col(OutboxRow.event_id) == col(EventRow.id),
                OutboxRow.kind == HUB_FOLLOW_UP,
                # done, or may have been: a call under way or with its answer lost, on a row
                # still owed (parked after its last lost answer included: its copy may be there)
                # or dropped by an operator since
                or_(
                    col(OutboxRow.state) == OutboxState.DONE,
                    col(OutboxRow.state).in_((*OWED_STATES, OutboxState.DROPPED))
                    & (col(OutboxRow.outcome_unknown) | col(OutboxRow.sending_at).is_not(None)),
                ),
            )
            .exists()
        )
        timeline = s.exec(
            select(EventRow.id, EventRow.kind, EventRow.hub_ref, EventRow.content)
            .where(
                EventRow.complaint_id == complaint_id,
                or_(col(EventRow.hub_ref).is_not(None), (col(EventRow.kind) == "follow_up") & sent),
            )
            .order_by(col(EventRow.id))
        ).all()
        statuses = s.exec(
            select(EventRow.raw_status_code, EventRow.raw_status_name, EventRow.occurred_at)
            .where(EventRow.complaint_id == complaint_id, EventRow.origin == hub, EventRow.kind == "status_change")
            .order_by(col(EventRow.occurred_at), col(EventRow.id))
        ).all()
        last_hub_time = s.exec(
            select(func.max(EventRow.occurred_at)).where(EventRow.complaint_id == complaint_id, EventRow.origin == hub)
        ).one()
        return HubView(
            deadlines=open_deadlines(s, complaint_id),
            last_status=(statuses[-1][0], statuses[-1][1]) if statuses else None,
            last_status_at=ensure_utc(statuses[-1][2]) if statuses else None,
            statuses_seen=len(statuses),
            last_hub_time=ensure_utc(last_hub_time),
            complaint_id=complaint_id,
            local_instance=row.local_instance,
            hub_status_code=row.hub_status_code,
            closed_at=ensure_utc(row.closed_at),
            filed_at=ensure_utc(row.local_created_at),
            last_change_at=ensure_utc(row.hub_changed_at or row.first_seen_at),
            known=frozenset((kind, ref) for _, kind, ref, _ in timeline if ref is not None),
            # (a stored row's id is never None)
            unmatched_sent=tuple(
                (eid, content or "") for eid, _, ref, content in timeline if ref is None and eid is not None
            ),
        )


def apply_hub_read(
    store: Store,
    complaint_id: int,
    hub: str,
    *,
    events: list[HubEvent],
    echoes: list[tuple[int, str]],
    status: HubStatus,
    next_read: Callable[[datetime, datetime, datetime | None, tuple[datetime, ...]], datetime | None],
    deadlines: DeadlineRules | None = None,
    statuses_seen: int | None = None,
    last_read: LastRead = UNCHECKED,
) -> bool:
    """Write one read's outcome at once: the new events (and what each owes, in the order
    given), the hub ids of the gateway's own follow-ups (``echoes``: event id, hub id),
    the complaint's hub status, its deadlines met or missed by what the read showed (by the
    route's ``deadlines`` rules), and when to read it next: ``next_read(now, last change,
    closed at, the due time of its current deadline)``, None for never again. Raises IntegrityError when
    another daemon recorded one of the events meanwhile (the caller reads the view again), and
    also when the hub statuses recorded for the complaint are no longer the ``statuses_seen``
    of the view the read was worked out from: another daemon recorded a status in between, and a
    status taken from the complaint's current status would repeat it under another ref.

    ``last_read``: the read the store held when the complaint was picked for this one (its
    ``hub_polled_at``, ``DueRead.last_read``). When another read was written since (another
    daemon read the complaint meanwhile, possibly later than this read), nothing of this one is
    written and False is returned: written, its current status, perhaps older than the stored
    one, came back as a change of its own (the local app told the complaint went back, a closed
    complaint opened again). Compared as written, not by clocks: daemons' clocks differ, and a
    host ahead would have every other daemon's reads refused. False too for an erased complaint."""
    now = store.clock()
    with store.session() as s:
        # Locked (the row on PostgreSQL, the database on SQLite: _engine.py): two daemons
        # applying reads of one complaint take turns, so the count below is the one this write
        # lands on.
        row = s.exec(select(ComplaintRow).where(ComplaintRow.id == complaint_id).with_for_update()).first()
        if row is None:
            row = existing_row(s, ComplaintRow, complaint_id)
        if last_read is not UNCHECKED and ensure_utc(row.hub_polled_at) != last_read:
            return False  # another read was written since this one was picked
        if statuses_seen is not None:
            recorded = s.exec(
                select(func.count(col(EventRow.id))).where(
                    EventRow.complaint_id == complaint_id, EventRow.origin == hub, EventRow.kind == "status_change"
                )
            ).one()
            if recorded != statuses_seen:
                raise IntegrityError(
                    "apply_hub_read", None, Exception("another daemon recorded a hub status of this complaint")
                )
        if row.erased_at is not None:  # erased on request while this read was under way: keep nothing of it
            return False
        for item in events:
            ev = EventRow(
                complaint_id=complaint_id,
                kind=item.kind,
                origin=hub,
                origin_ref=item.hub_ref,
                hub_ref=item.hub_ref,
                gateway_ref=new_ref("lg-ev"),
                content=item.content,
                author=item.author,
                is_secret=item.is_secret,
                reason=item.reason,
                raw_status_code=item.raw_status[0] if item.raw_status else None,
                raw_status_name=item.raw_status[1] if item.raw_status else None,
                status=item.status.value if item.status else None,
                occurred_at=item.occurred_at,
                recorded_at=now,
            )
            s.add(ev)
            s.flush()
            item.event_id = ev.id
            for a in item.attachments:
                s.add(
                    AttachmentRow(
                        complaint_id=complaint_id,
                        event_id=ev.id,
                        local_ref=a.ref,
                        filename=a.filename,
                        content_type=a.content_type,
                        size=a.size,
                    )
                )
            if item.deliver is not None:
                out = OutboxRow(
                    complaint_id=complaint_id,
                    event_id=ev.id,
                    kind=item.deliver[0],
                    target=item.deliver[1],
                    next_attempt_at=now,
                    created_at=now,
                )
                if item.park_reason:
                    # The reason quotes the hub's status name: a hub's text, which may hold anything.
                    out.state, out.last_error = "parked", bounded(scrub_text(item.park_reason), MAX_REASON)
                    out.first_error_at = out.last_error_at = now
                s.add(out)
        for event_id, hub_ref in echoes:
            existing_row(s, EventRow, event_id).hub_ref = hub_ref
        name = status.name
        if name is None and row.hub_status_code == status.code:
            name = row.hub_status_name  # a read that lacked the name does not erase it
        row.hub_status_code, row.hub_status_name = status.code, name
        row.hub_status = status.status.value if status.status else None
        row.hub_polled_at = now
        if events:
            row.hub_changed_at = now
        if status.status is not None and status.status.is_closed and row.closed_at is None and status.may_close:
            row.closed_at = now
        elif status.status is not None and not status.status.is_closed:
            row.closed_at = None
        if deadlines is not None:
            s.flush()  # the new events, for the timeline the deadlines are settled from
            settle_deadlines(s, row, deadlines, now)
            s.flush()
        row.next_poll_at = next_read(
            now,
            ensure_utc(row.hub_changed_at or row.first_seen_at),
            ensure_utc(row.closed_at),
            open_deadlines(s, complaint_id),
        )
        return True


def recognise_sent_follow_up(
    store: Store,
    event_id: int,
    listed: Sequence[tuple[str, str | None]],
    same_text: Callable[[str | None, str | None], bool],
) -> bool:
    """After a lost answer: whether the gateway's follow-up ``event_id`` is at the hub already,
    decided in ONE transaction. It is when its hub id is known (the hub poll recognised it), or
    when one of the hub's ``listed`` follow-ups (hub id, text) has its text and belongs to no
    other event: that one's id is kept. As separate calls, the hub poll's write could land between
    "our hub id is unknown" and "that hub id is another event's": it was ours, recognised meanwhile,
    and the follow-up was sent a second time (found by the chaos suite with the store in a thread)."""
    with store.session() as s:
        event = s.exec(select(EventRow).where(EventRow.id == event_id).with_for_update()).one()
        if event.hub_ref is not None:
            return True
        known = set(
            s.exec(
                select(EventRow.hub_ref).where(
                    EventRow.complaint_id == event.complaint_id, col(EventRow.hub_ref).is_not(None)
                )
            ).all()
        )
        for ref, content in listed:
            if ref not in known and same_text(content, event.content):
                event.hub_ref = ref
                return True
        return False


def poll_soon(store: Store, complaint_id: int, at: datetime) -> None:
    """Bring a complaint's next read forward to ``at`` (never push it back): something
    was just sent to the hub for it, and its answer is worth seeing soon."""
    with store.session() as s:
        row = existing_row(s, ComplaintRow, complaint_id)
        current = ensure_utc(row.next_poll_at)
        if row.closed_at is None and current is not None and current > at:  # None: due already
            row.next_poll_at = at
