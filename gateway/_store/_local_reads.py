"""The store's side of reading a local app's follow-ups and status changes: a batch
of them (a page, say) recognised and recorded in one transaction, where one record
at a time cost four. The rules are those of the intake (``_engine/_intake.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, insert
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from gateway._model import AttachmentRef, Status
from gateway._store._store import ERASURE_REQUESTED, LINKED_IDS, Store, new_ref
from gateway._store._tables import AttachmentRow, ComplaintRow, EventRow, OutboxRow, table_of

Outcome = Literal["recorded", "echo", "known", "no_complaint", "erased"]

# Built once (see the statements in ``_store.py``): a page of events costs these (the lock only when it adds some).
_OWN_EVENTS = select(EventRow).where(col(EventRow.gateway_ref).in_(bindparam("marks", expanding=True)))
_KNOWN_EVENTS = sa_select(col(EventRow.complaint_id), col(EventRow.local_ref)).where(
    col(EventRow.complaint_id).in_(bindparam("ids", expanding=True)),
    col(EventRow.local_ref).in_(bindparam("refs", expanding=True)),
)
_ERASED = sa_select(col(ComplaintRow.id)).where(
    col(ComplaintRow.id).in_(bindparam("ids", expanding=True)), col(ComplaintRow.erased_at).is_not(None)
)
# The complaints that get new events, whether they were erased meanwhile, locked (key share on
# PostgreSQL, in id order; the database on SQLite: _engine.py) to the commit: an erasure (which locks
# its complaint) then lands wholly before this write, and is seen here, or after it, and removes what
# it wrote. Checked only before the first statement, an erasure committed between that check and the
# write left the follow-up's text in the store and owed to the hub.
_ERASED_LOCKED = (
    sa_select(col(ComplaintRow.id), col(ComplaintRow.erased_at).is_not(None))
    .where(col(ComplaintRow.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(ComplaintRow.id))
    .with_for_update(read=True, key_share=True)
)
_EVENT_IDS = sa_select(col(EventRow.gateway_ref), col(EventRow.id)).where(
    col(EventRow.gateway_ref).in_(bindparam("refs", expanding=True))
)
_INSERT_EVENTS = insert(table_of(EventRow))
_INSERT_ATTACHMENTS = insert(table_of(AttachmentRow))
_INSERT_OUTBOX = insert(table_of(OutboxRow))


@dataclass
class LocalEvent:
    """A follow-up or status change read at a local app."""

    kind: str  # "follow_up" or "status_change"
    ref: str
    complaint_ref: str
    occurred_at: datetime
    gateway_ref: str | None = None  # the gateway's mark, on what the gateway wrote itself
    content: str | None = None
    author: str | None = None
    raw_status: tuple[str, str | None] | None = None
    status: Status | None = None
    is_secret: bool = False
    attachments: tuple[AttachmentRef, ...] = ()
    deliver: tuple[str, str] | None = None  # (delivery kind, target)
    # Set by record_local_events:
    outcome: Outcome | None = None
    complaint_id: int | None = None
    event_id: int | None = None


def record_local_events(store: Store, instance: str, events: list[LocalEvent]) -> None:
    """Set each event's ``outcome``: ``recorded`` (new in the timeline, and owed where it
    says), ``echo`` (the gateway wrote it: it carries our mark), ``known`` (recorded
    before) ``no_complaint`` (its complaint is not taken in: the caller decides) or ``erased`` (its
    complaint was erased on request, or asked to be before it was read: ignored).
    Raises IntegrityError when another daemon recorded one meanwhile (the caller then
    goes one by one)."""
    now = store.clock()
    with store.session() as s:
        conn = s.connection()
        refs = list({e.complaint_ref for e in events})
        complaints = dict(conn.execute(LINKED_IDS, {"instance": instance, "refs": refs}).all())
        erased = set(conn.execute(_ERASED, {"ids": list(set(complaints.values()))}).scalars()) if complaints else set()
        unread = [ref for ref in refs if ref not in complaints]
        # A complaint asked to be erased before the gateway read it: it is never taken in, nor are its records.
        requested = (
            set(conn.execute(ERASURE_REQUESTED, {"instance": instance, "refs": unread}).scalars()) if unread else set()
        )
        marks = {e.gateway_ref for e in events if e.gateway_ref}
        own = {row.gateway_ref: row for row in s.exec(_OWN_EVENTS, params={"marks": list(marks)})} if marks else {}
        known: set[tuple[int, str | None]] = (
            {
                (complaint_id, local_ref)
                for complaint_id, local_ref in conn.execute(
                    _KNOWN_EVENTS, {"ids": list(set(complaints.values())), "refs": list({e.ref for e in events})}
                )
            }
            if complaints
            else set()
        )
        added: list[tuple[LocalEvent, dict[str, Any]]] = []
        for e in events:
            e.complaint_id = complaints.get(e.complaint_ref)
            if e.complaint_ref in requested:
                e.outcome = "erased"
                continue
            if e.complaint_id is None:
                e.outcome = "no_complaint"
                continue
            if e.complaint_id in erased:  # erased on request: taken in no more (_privacy.py)
                e.outcome = "erased"
                continue
            mine = own.get(e.gateway_ref) if e.gateway_ref else None
            if mine is not None:
                if mine.local_ref is None:
                    mine.local_ref = e.ref
                e.outcome = "echo"
                continue
            if (e.complaint_id, e.ref) in known:
                e.outcome = "known"
                continue
            known.add((e.complaint_id, e.ref))
            e.outcome = "recorded"
            added.append(
                (
                    e,
                    {
                        "complaint_id": e.complaint_id,
                        "kind": e.kind,
                        "origin": instance,
                        "origin_ref": e.ref,
                        "local_ref": e.ref,
                        "hub_ref": None,
                        "gateway_ref": new_ref("lg-ev"),
                        "content": e.content,
                        "author": e.author,
                        "is_secret": e.is_secret,
                        "raw_status_code": e.raw_status[0] if e.raw_status else None,
                        "raw_status_name": e.raw_status[1] if e.raw_status else None,
                        "status": e.status.value if e.status else None,
                        "occurred_at": e.occurred_at,
                        "recorded_at": now,
                    },
                )
            )
        if not added:
            return
        erased_since = {
            complaint_id
            for complaint_id, gone in conn.execute(
                _ERASED_LOCKED, {"ids": sorted({values["complaint_id"] for _, values in added})}
            )
            if gone
        }
        if erased_since:
            for e, _ in added:
                if e.complaint_id in erased_since:
                    e.outcome = "erased"
            added = [(e, values) for e, values in added if e.complaint_id not in erased_since]
            if not added:
                return
        # One multi-row INSERT per table: built as ORM objects, a page cost more than reading it.
        conn.execute(_INSERT_EVENTS, [values for _, values in added])
        ids = dict(conn.execute(_EVENT_IDS, {"refs": [values["gateway_ref"] for _, values in added]}).all())
        owed, files = [], []
        for e, values in added:
            e.event_id = ids[values["gateway_ref"]]
            files += [
                {
                    "complaint_id": e.complaint_id,
                    "event_id": e.event_id,
                    "local_ref": a.ref,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                }
                for a in e.attachments
            ]
            if e.deliver is not None:
                owed.append(
                    {
                        "complaint_id": e.complaint_id,
                        "event_id": e.event_id,
                        "kind": e.deliver[0],
                        "target": e.deliver[1],
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
        if files:
            conn.execute(_INSERT_ATTACHMENTS, files)
        if owed:  # in the order read: deliveries keep their order per complaint
            conn.execute(_INSERT_OUTBOX, owed)
