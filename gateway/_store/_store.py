"""The store: complaints, links, the timeline, the outbox, cursors, job runs,
quarantine and audit, on SQLite (the embedded default) or any SQLAlchemy URL.

Write transactions are short (SQLite has one writer at a time): each method
below is one transaction, and no network call ever happens inside one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import event as sa_event
from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import make_url
from sqlmodel import Session, create_engine, select

from gateway._model import Complaint, Status
from gateway._store._migrations import migrate
from gateway._store._tables import (
    AttachmentRow,
    AuditRow,
    ComplaintRow,
    CursorRow,
    EventRow,
    JobRunRow,
    LinkRow,
    OutboxRow,
    QuarantineRow,
    ReporterRow,
)
from gateway._timezones import ensure_utc, utcnow

# Outbox kinds: what is owed, and to which side.
CREATE_COMPLAINT = "create_complaint"
HUB_FOLLOW_UP = "hub_follow_up"
LOCAL_FOLLOW_UP = "local_follow_up"
LOCAL_STATUS = "local_status"


def new_ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    def __init__(self, url: str, *, clock: Callable[[], datetime] = utcnow):
        self.url = url
        self.clock = clock
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 10})
            sa_event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self.upgraded_from = migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    # -- intake ---------------------------------------------------------------------------

    def complaint_id_for(self, instance: str, external_ref: str) -> int | None:
        with self.session() as s:
            return s.exec(select(LinkRow.complaint_id).where(
                LinkRow.instance == instance, LinkRow.external_ref == external_ref)).first()

    def take_in_complaint(self, local_instance: str, hub_instance: str, complaint: Complaint,
                          local_status: Status | None) -> tuple[int, bool]:
        """Store a complaint read from a local app. A new one is owed to the hub in the
        same transaction. Returns (gateway id, whether it was new)."""
        now = self.clock()
        with self.session() as s:
            known = s.exec(select(LinkRow.complaint_id).where(
                LinkRow.instance == local_instance, LinkRow.external_ref == complaint.ref)).first()
            if known is not None:
                row = s.get(ComplaintRow, known)
                if complaint.updated_at > ensure_utc(row.local_updated_at):
                    row.local_updated_at = complaint.updated_at
                    row.local_status_code = complaint.status.code
                    row.local_status = local_status.value if local_status else None
                    row.agency = complaint.agency
                return known, False
            row = ComplaintRow(
                gateway_ref=new_ref("lg"), local_instance=local_instance, hub_instance=hub_instance,
                title=complaint.title, body=complaint.body, category=complaint.category,
                classification=complaint.classification.value, channel=complaint.channel,
                location_json=json.dumps(asdict(complaint.location)) if complaint.location else None,
                incident_at=complaint.incident_at, is_anonymous=complaint.is_anonymous,
                is_secret=complaint.is_secret, agency=complaint.agency,
                local_status_code=complaint.status.code,
                local_status=local_status.value if local_status else None,
                local_created_at=complaint.created_at, local_updated_at=complaint.updated_at,
                first_seen_at=now)
            s.add(row)
            s.flush()
            if complaint.reporter is not None and not complaint.is_anonymous:
                r = complaint.reporter
                s.add(ReporterRow(complaint_id=row.id, name=r.name, nik=r.nik, phone=r.phone,
                                  email=r.email, address=r.address))
            for att in complaint.attachments:
                s.add(AttachmentRow(complaint_id=row.id, local_ref=att.ref, filename=att.filename,
                                    content_type=att.content_type, size=att.size))
            s.add(LinkRow(complaint_id=row.id, instance=local_instance, external_ref=complaint.ref, linked_at=now))
            s.add(OutboxRow(complaint_id=row.id, kind=CREATE_COMPLAINT, target=hub_instance,
                            next_attempt_at=now, created_at=now))
            return row.id, True

    def record_event(self, complaint_id: int, *, kind: str, origin: str, origin_ref: str,
                     occurred_at: datetime, content: str | None = None, author: str | None = None,
                     raw_status: tuple[str, str | None] | None = None, status: Status | None = None,
                     side: str, deliver: tuple[str, str] | None = None,
                     park_reason: str | None = None) -> int | None:
        """Add an event to a complaint's timeline, and owe it to ``deliver`` = (kind, target)
        in the same transaction. ``side`` ("local" or "hub") says which of its ids
        ``origin_ref`` is. Returns the event id, or None when it was already recorded."""
        now = self.clock()
        with self.session() as s:
            exists = s.exec(select(EventRow.id).where(
                EventRow.complaint_id == complaint_id, EventRow.origin == origin,
                EventRow.origin_ref == origin_ref)).first()
            if exists is not None:
                return None
            ev = EventRow(complaint_id=complaint_id, kind=kind, origin=origin, origin_ref=origin_ref,
                          gateway_ref=new_ref("lg-ev"), content=content, author=author,
                          raw_status_code=raw_status[0] if raw_status else None,
                          raw_status_name=raw_status[1] if raw_status else None,
                          status=status.value if status else None, occurred_at=occurred_at, recorded_at=now)
            setattr(ev, f"{side}_ref", origin_ref)
            s.add(ev)
            s.flush()
            if deliver is not None:
                out = OutboxRow(complaint_id=complaint_id, event_id=ev.id, kind=deliver[0], target=deliver[1],
                                next_attempt_at=now, created_at=now)
                if park_reason:
                    out.state, out.last_error, out.first_error_at, out.last_error_at = "parked", park_reason, now, now
                s.add(out)
            return ev.id

    def event_by_gateway_ref(self, gateway_ref: str) -> EventRow | None:
        with self.session() as s:
            return s.exec(select(EventRow).where(EventRow.gateway_ref == gateway_ref)).first()

    def event_known_by_ref(self, complaint_id: int, side: str, ref: str) -> bool:
        column = EventRow.local_ref if side == "local" else EventRow.hub_ref
        with self.session() as s:
            return s.exec(select(EventRow.id).where(EventRow.complaint_id == complaint_id, column == ref)).first() is not None

    def set_event_ref(self, event_id: int, side: str, ref: str) -> None:
        with self.session() as s:
            ev = s.get(EventRow, event_id)
            setattr(ev, f"{side}_ref", ref)

    def own_follow_up_without_hub_ref(self, complaint_id: int, content: str) -> int | None:
        """A follow-up the gateway sent to the hub whose hub id it never learned (the hub's
        answer carries none), matched by its text."""
        with self.session() as s:
            return s.exec(
                select(EventRow.id).join(OutboxRow, OutboxRow.event_id == EventRow.id).where(
                    EventRow.complaint_id == complaint_id, EventRow.kind == "follow_up",
                    EventRow.hub_ref.is_(None), EventRow.content == content,
                    # pending too: the answer may still be on its way while the hub is read
                    OutboxRow.kind == HUB_FOLLOW_UP, OutboxRow.state.in_(("done", "pending")),
                ).order_by(EventRow.id)).first()

    def update_hub_status(self, complaint_id: int, code: str, name: str | None, status: Status | None) -> None:
        now = self.clock()
        with self.session() as s:
            row = s.get(ComplaintRow, complaint_id)
            row.hub_status_code, row.hub_status_name = code, name
            row.hub_status = status.value if status else None
            row.hub_polled_at = now
            if status is not None and status.is_closed and row.closed_at is None:
                row.closed_at = now
            elif status is not None and not status.is_closed:
                row.closed_at = None

    def complaints_to_poll(self, hub_instance: str, limit: int = 500) -> list[tuple[int, str]]:
        """(gateway id, hub id) of complaints at the hub that are not closed, least recently polled first."""
        with self.session() as s:
            rows = s.exec(
                select(ComplaintRow.id, LinkRow.external_ref)
                .join(LinkRow, (LinkRow.complaint_id == ComplaintRow.id) & (LinkRow.instance == hub_instance))
                .where(ComplaintRow.closed_at.is_(None))
                .order_by(ComplaintRow.hub_polled_at.is_not(None), ComplaintRow.hub_polled_at, ComplaintRow.id)
                .limit(limit)).all()
            return [(cid, ref) for cid, ref in rows]

    def complaint(self, complaint_id: int) -> ComplaintRow:
        with self.session() as s:
            return s.get(ComplaintRow, complaint_id)

    def attachments(self, complaint_id: int) -> list[AttachmentRow]:
        with self.session() as s:
            return list(s.exec(select(AttachmentRow).where(AttachmentRow.complaint_id == complaint_id)
                               .order_by(AttachmentRow.id)).all())

    def set_attachment_doc(self, attachment_id: int, doc_id: str) -> None:
        with self.session() as s:
            s.get(AttachmentRow, attachment_id).hub_doc_id = doc_id

    def external_ref(self, complaint_id: int, instance: str) -> str | None:
        with self.session() as s:
            return s.exec(select(LinkRow.external_ref).where(
                LinkRow.complaint_id == complaint_id, LinkRow.instance == instance)).first()

    def event(self, event_id: int) -> EventRow:
        with self.session() as s:
            return s.get(EventRow, event_id)

    def set_local_status(self, complaint_id: int, code: str, status: Status | None) -> None:
        with self.session() as s:
            row = s.get(ComplaintRow, complaint_id)
            row.local_status_code, row.local_status = code, status.value if status else None

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, target: str, *, limit: int = 100) -> list[OutboxRow]:
        """Pending deliveries to ``target`` that are due and unclaimed, each the first one
        still owed for its complaint and target (so order per complaint holds)."""
        now = self.clock()
        with self.session() as s:
            earlier = select(func.min(OutboxRow.id)).where(
                OutboxRow.target == target, OutboxRow.state.in_(("pending", "parked"))
            ).group_by(OutboxRow.complaint_id)
            return list(s.exec(
                select(OutboxRow).where(
                    OutboxRow.id.in_(earlier), OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now,
                    or_(OutboxRow.claimed_by.is_(None), OutboxRow.claim_expires_at < now))
                .order_by(OutboxRow.id).limit(limit)).all())

    def claim(self, outbox_id: int, owner: str, lease: timedelta) -> bool:
        """Take a delivery for ``lease``; False when someone else holds it."""
        now = self.clock()
        with self.session() as s:
            result = s.execute(update(OutboxRow).where(
                OutboxRow.id == outbox_id, OutboxRow.state == "pending",
                or_(OutboxRow.claimed_by.is_(None), OutboxRow.claim_expires_at < now, OutboxRow.claimed_by == owner),
            ).values(claimed_by=owner, claim_expires_at=now + lease))
            return result.rowcount == 1

    def finish_delivery(self, outbox_id: int, *, state: str = "done",
                        link: tuple[int, str, str] | None = None) -> None:
        """Mark a delivery done (or skipped), and record the link it produced (complaint id,
        instance, external id) in the same transaction."""
        now = self.clock()
        with self.session() as s:
            row = s.get(OutboxRow, outbox_id)
            row.state, row.done_at, row.claimed_by, row.claim_expires_at = state, now, None, None
            if link is not None:
                s.add(LinkRow(complaint_id=link[0], instance=link[1], external_ref=link[2], linked_at=now))

    def fail_delivery(self, outbox_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failed attempt: retried at ``retry_at``, or parked when it is None."""
        now = self.clock()
        with self.session() as s:
            row = s.get(OutboxRow, outbox_id)
            row.attempts += 1
            row.last_error, row.last_error_at = error, now
            row.first_error_at = row.first_error_at or now
            row.claimed_by, row.claim_expires_at = None, None
            if retry_at is None:
                row.state = "parked"
            else:
                row.next_attempt_at = retry_at

    def delivery(self, outbox_id: int) -> OutboxRow:
        with self.session() as s:
            return s.get(OutboxRow, outbox_id)

    # -- cursors, job runs, quarantine, audit ------------------------------------------------

    def cursor(self, instance: str, stream: str) -> datetime | None:
        with self.session() as s:
            row = s.get(CursorRow, (instance, stream))
            return ensure_utc(row.value) if row else None

    def set_cursor(self, instance: str, stream: str, value: datetime) -> None:
        now = self.clock()
        with self.session() as s:
            row = s.get(CursorRow, (instance, stream))
            if row is None:
                s.add(CursorRow(instance=instance, stream=stream, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now

    def job_started(self, instance: str, job: str) -> None:
        now = self.clock()
        with self.session() as s:
            row = s.get(JobRunRow, (instance, job)) or JobRunRow(instance=instance, job=job)
            row.runs += 1
            row.last_started_at = now
            s.add(row)

    def job_finished(self, instance: str, job: str, error: str | None = None) -> None:
        now = self.clock()
        with self.session() as s:
            row = s.get(JobRunRow, (instance, job)) or JobRunRow(instance=instance, job=job)
            if error is None:
                row.last_success_at = now
            else:
                row.failures += 1
                row.last_error, row.last_error_at = error, now
            s.add(row)

    def quarantine(self, instance: str, stream: str, record_ref: str | None, reason: str) -> bool:
        """Keep a record that could not be taken in; False when it was already kept."""
        with self.session() as s:
            ref = record_ref or "?"
            exists = s.exec(select(QuarantineRow.id).where(
                QuarantineRow.instance == instance, QuarantineRow.stream == stream,
                QuarantineRow.record_ref == ref, QuarantineRow.reason == reason)).first()
            if exists is None:
                s.add(QuarantineRow(instance=instance, stream=stream, record_ref=ref, reason=reason,
                                    seen_at=self.clock()))
            return exists is None

    def audit(self, action: str, *, complaint_id: int | None = None, detail: str | None = None,
              actor: str = "gateway") -> None:
        with self.session() as s:
            s.add(AuditRow(at=self.clock(), actor=actor, action=action, complaint_id=complaint_id, detail=detail))
