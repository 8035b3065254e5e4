"""The store: complaints, links, the timeline, the outbox, cursors, job runs,
quarantine and audit, on SQLite (the embedded default) or any SQLAlchemy URL.

Write transactions are short (SQLite has one writer at a time): each method
below is one transaction, and no network call ever happens inside one.

Error texts (a delivery's, a job's, a peer's, a quarantined record's reason) are stored masked
as the log masks them (``scrub_text``): they are shown to operators, on the dashboard and in the
CLI, and may quote a peer's value (an unmapped agency field someone typed a phone number into).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlmodel import Session, col, select

from gateway._errors import GatewayError, StoreRefusedError, StoreUnavailableError
from gateway._logging import scrub_text
from gateway._model import Complaint, Location, Status
from gateway._personal_data import ReporterKeeping
from gateway._store._engine import create_store_engine
from gateway._store._migrations import SchemaState, migrate
from gateway._store._tables import (
    AttachmentRow,
    AuditRow,
    ComplaintRow,
    CursorRow,
    EventRow,
    JobRunRow,
    LinkImportRow,
    LinkRow,
    OutboxRow,
    PeerHealthRow,
    PrivacyRequestRow,
    QuarantineRow,
    ReporterRow,
    existing_id,
    existing_row,
    table_of,
)
from gateway._timezones import ensure_utc, utcnow


class OutboxState(StrEnum):
    """Where an outbox row is. StrEnum: the database keeps the same strings as before."""

    PENDING = "pending"  # owed; claimed and sent when due (``sending_at`` set while its call is under way)
    PARKED = "parked"  # failed for good (or too often): an operator retries, resends, links or drops it
    NEEDS_CONFIRMATION = "needs_confirmation"  # may have been done, the peer cannot tell: an operator decides
    DONE = "done"  # delivered, or found already there, or linked by an operator
    SKIPPED = "skipped"  # not to be delivered (the route keeps it off that side), with the reason why
    DROPPED = "dropped"  # given up by an operator


# States of an outbox row that still hold back the later deliveries of their complaint.
OWED_STATES = (OutboxState.PENDING, OutboxState.PARKED, OutboxState.NEEDS_CONFIRMATION)


class DeliveryKind(StrEnum):
    """Outbox kinds: what is owed, and to which side (the handlers: ``_engine/_delivery.py``)."""

    CREATE_COMPLAINT = "create_complaint"  # a local complaint, created at the hub
    FORWARD_COMPLAINT = "forward_complaint"  # to the agency (OPD) the local app assigned after the create
    HUB_FOLLOW_UP = "hub_follow_up"  # a local follow-up, added at the hub
    LOCAL_FOLLOW_UP = "local_follow_up"  # a hub follow-up, written to the local app
    LOCAL_STATUS = "local_status"  # a hub status change, written to the local app
    LOCAL_HUB_REF = "local_hub_ref"  # the hub's tracking id, written back to the local app after the create


# The kinds by their old names (adapters' tests and other modules import them).
CREATE_COMPLAINT = DeliveryKind.CREATE_COMPLAINT
HUB_FOLLOW_UP = DeliveryKind.HUB_FOLLOW_UP
LOCAL_FOLLOW_UP = DeliveryKind.LOCAL_FOLLOW_UP
LOCAL_STATUS = DeliveryKind.LOCAL_STATUS
FORWARD_COMPLAINT = DeliveryKind.FORWARD_COMPLAINT
LOCAL_HUB_REF = DeliveryKind.LOCAL_HUB_REF


class EventKind(StrEnum):
    """What a timeline event is."""

    STATUS_CHANGE = "status_change"
    FOLLOW_UP = "follow_up"
    AGENCY_ASSIGNED = "agency_assigned"


class Side(StrEnum):
    """Which side of a route an id or a write belongs to."""

    LOCAL = "local"
    HUB = "hub"


def set_ref(event: EventRow, side: str, ref: str) -> None:
    """Keep ``ref`` as the event's id on ``side`` (refusing a side that is neither)."""
    if Side(side) is Side.LOCAL:
        event.local_ref = ref
    else:
        event.hub_ref = ref


# The note of a done local_status delivery whose status was not written but whose note went as a
# follow-up (a hold with its reason, while the local app shows "in progress" already).
STATUS_AS_FOLLOW_UP = "status not written; its note went as a follow-up"


# Errors a store raises for a statement's values rather than for being down or broken: sqlite3
# raises OverflowError itself (not wrapped by SQLAlchemy) for an integer beyond 64 bits; a
# StoreRefusedError is one of these filed in the gateway's tree (as_store_error).
STORE_REFUSALS = (StoreRefusedError, StatementError, OverflowError)

# Errors that come from the database (through SQLAlchemy, or from sqlite3 itself), whatever
# their cause: what a caller that must not show a driver's text (it may quote a statement's
# values) reports by class alone.
DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error)


def refused_for_its_data(exc: BaseException) -> bool:
    """Whether the database refused a statement for the values in it (a text it cannot hold, a
    number out of range, a value too long for an index), rather than being unreachable or
    broken: then the record at fault can be set aside and the rest stored."""
    if isinstance(exc, (OverflowError, StoreRefusedError)):
        return True
    if not isinstance(exc, StatementError):
        return False
    # PostgreSQL's program_limit_exceeded (54000): a value above what a btree index entry can
    # hold (about 2.7 kB). psycopg files it under OperationalError, yet it is the value's fault.
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "54000":
        return True
    if isinstance(exc, (OperationalError, InterfaceError, IntegrityError)):
        return False
    return isinstance(exc, DataError) or not isinstance(
        exc, DBAPIError
    )  # not a DBAPI error: a value SQLAlchemy could not bind


def as_store_error(exc: BaseException, operation: str) -> BaseException:
    """``exc`` raised by a store call, filed in the gateway's exception tree: a refusal of the
    values (:func:`refused_for_its_data`) is a :class:`StoreRefusedError`, any other database
    failure a :class:`StoreUnavailableError`. An IntegrityError stays as it is (another daemon
    wrote the same row at the same moment: each caller resolves that on the spot), and so does
    anything that is not the database's (a GatewayError, a bug). The caller raises the result
    ``from exc``, so the database's own error stays in the traceback (never in a message)."""
    if isinstance(exc, GatewayError):
        return exc
    if refused_for_its_data(exc):
        return StoreRefusedError(operation, exc)
    if isinstance(exc, IntegrityError):
        return exc
    if isinstance(exc, DATABASE_ERRORS):
        return StoreUnavailableError(operation, exc)
    return exc


# A quarantined record's ref and reason are kept to these lengths (both are in a unique index,
# which PostgreSQL limits to about 2.7 kB): a peer's 3000-character id is itself the fault.
MAX_REF, MAX_REASON = 200, 1000


def bounded(text: str, limit: int) -> str:
    """``text``, or for a longer one its start and a digest of the whole: the same text always
    gives the same result, so a record seen bad again is recognised."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[: limit - 40]}... ({len(text)} characters, sha256 {digest})"


def _stored_id(row_id: int | None) -> int:
    """An id column read from the store, as :func:`existing_id` for a whole row: typed
    ``int | None`` (None until a row is inserted), but a stored row always has one."""
    if row_id is None:
        raise LookupError("the store returned a row without an id")
    return row_id


def new_ref(prefix: str) -> str:
    """``prefix`` and 20 random hex digits (80 bits; a uuid4 cost twice as much per record)."""
    return f"{prefix}-{secrets.token_hex(10)}"


# Statements of the intake's path (a page of records at a time), built once with bound
# parameters: building a statement costs SQLAlchemy more than SQLite takes to run it (a
# select with an IN list, about 0.4 ms), and the compiled form is cached by SQLAlchemy.
LINKED_IDS = sa_select(col(LinkRow.external_ref), col(LinkRow.complaint_id)).where(
    col(LinkRow.instance) == bindparam("instance"), col(LinkRow.external_ref).in_(bindparam("refs", expanding=True))
)
# The local ids among ``refs`` that a data subject asked to erase (or withdrew consent for), also
# before the gateway read them (``_privacy.py``): such a complaint is never taken in, nor its records.
ERASURE_REQUESTED = sa_select(col(PrivacyRequestRow.local_ref)).where(
    col(PrivacyRequestRow.instance) == bindparam("instance"),
    col(PrivacyRequestRow.local_ref).in_(bindparam("refs", expanding=True)),
)
# Locked (the rows on PostgreSQL, in id order; the database on SQLite: _engine.py) for the intake's
# read-compare-write of known complaints: unlocked, two daemons that read one complaint at different
# moments could each find their version newer than the stored one, and the one that read earlier,
# writing later, put the older version back over the newer (its local status too). NO KEY: inserting
# a complaint's events (their foreign key) is not held up meanwhile.
_COMPLAINTS_BY_ID = (
    select(ComplaintRow)
    .where(col(ComplaintRow.id).in_(bindparam("ids", expanding=True)))
    .order_by(col(ComplaintRow.id))
    .with_for_update(key_share=True)
)
_IMPORTED_PAIRS = sa_select(col(LinkImportRow.local_ref), col(LinkImportRow.hub_ref)).where(
    col(LinkImportRow.instance) == bindparam("instance"),
    col(LinkImportRow.local_ref).in_(bindparam("refs", expanding=True)),
    col(LinkImportRow.applied_at).is_(None),
)
_COMPLAINT_IDS = sa_select(col(ComplaintRow.gateway_ref), col(ComplaintRow.id)).where(
    col(ComplaintRow.gateway_ref).in_(bindparam("refs", expanding=True))
)
_INSERTS = {table: insert(table_of(table)) for table in (ComplaintRow, ReporterRow, AttachmentRow, LinkRow, OutboxRow)}
_INSERT_CURSOR = insert(table_of(CursorRow))
_CURSOR = sa_select(col(CursorRow.value)).where(
    col(CursorRow.instance) == bindparam("instance"), col(CursorRow.stream) == bindparam("stream")
)
# (An UPDATE's own parameters may not be named after its columns.)
_MOVE_CURSOR = (
    update(CursorRow)
    .where(col(CursorRow.instance) == bindparam("of_instance"), col(CursorRow.stream) == bindparam("of_stream"))
    .values(
        value=bindparam("new_value", type_=table_of(CursorRow).c.value.type),
        updated_at=bindparam("now", type_=table_of(CursorRow).c.updated_at.type),
    )
)
_RESOLVE_QUARANTINED = (
    update(QuarantineRow)
    .where(
        col(QuarantineRow.instance) == bindparam("of_instance"),
        col(QuarantineRow.stream) == bindparam("of_stream"),
        col(QuarantineRow.record_ref).in_(bindparam("refs", expanding=True)),
        col(QuarantineRow.resolved_at).is_(None),
    )
    .values(resolved_at=bindparam("now", type_=table_of(QuarantineRow).c.resolved_at.type))
)


class Store:
    def __init__(self, url: str, *, clock: Callable[[], datetime] = utcnow, leases_by_database: bool | None = None):
        """``leases_by_database``: measure claims' leases on the database's clock (default: on
        PostgreSQL, unless a test hands in a clock of its own); see :meth:`lease_now`.

        Opening upgrades the schema to the head revision when it is behind (see ``_migrations.py``);
        ``upgraded_from`` says where it stood before."""
        self.url = url
        self.clock = clock
        self._leases_by_database = leases_by_database
        self.engine: Engine = create_store_engine(url)
        try:
            self.upgraded_from: SchemaState = migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # -- intake ---------------------------------------------------------------------------

    def complaint_id_for(self, instance: str, external_ref: str) -> int | None:
        with self.session() as s:
            return s.exec(
                select(LinkRow.complaint_id).where(LinkRow.instance == instance, LinkRow.external_ref == external_ref)
            ).first()

    def take_in_complaint(
        self,
        local_instance: str,
        hub_instance: str,
        complaint: Complaint,
        local_status: Status | None,
        *,
        reporters: ReporterKeeping | None = None,
    ) -> tuple[int, bool] | None:
        """Store a complaint read from a local app. A new one is owed to the hub in the
        same transaction. Returns (gateway id, whether it was new), or None for a complaint
        erased on request (or asked to be, before it was read): not taken in."""
        return self.take_in_complaints(local_instance, hub_instance, [(complaint, local_status)], reporters=reporters)[
            0
        ]

    def take_in_complaints(
        self,
        local_instance: str,
        hub_instance: str,
        batch: list[tuple[Complaint, Status | None]],
        *,
        forward_agencies: bool = False,
        not_at_hub: dict[str, str] | None = None,
        write_back_hub_ref: bool = False,
        reporters: ReporterKeeping | None = None,
    ) -> list[tuple[int, bool] | None]:
        """:meth:`take_in_complaint` for many at once, in one transaction (a page of a
        backfill costs one commit, not one per complaint). With ``forward_agencies``, a
        known complaint whose agency (OPD) changed is owed a forward at the hub.
        ``not_at_hub`` maps the local id of a complaint that the route does not create at
        the hub to why: its create is kept as ``skipped`` with that reason, and owed again
        when a later version of it is inside the rule. A complaint whose pair of ids was
        imported (``gateway links import``) is linked to the hub, not created there (and, with
        ``write_back_hub_ref``, the hub's id is owed to the local app). A new complaint's
        reporter is kept only as ``reporters`` says (the app's configured purpose), sealed; by
        default not at all."""
        not_at_hub = not_at_hub or {}
        try:
            return self._take_in_complaints(
                local_instance, hub_instance, batch, forward_agencies, not_at_hub, write_back_hub_ref, reporters
            )
        except IntegrityError:  # another daemon took one in at the same moment: one by one
            return [
                self._take_in_complaints(
                    local_instance, hub_instance, [item], forward_agencies, not_at_hub, write_back_hub_ref, reporters
                )[0]
                for item in batch
            ]

    def _take_in_complaints(
        self,
        local_instance: str,
        hub_instance: str,
        batch: list[tuple[Complaint, Status | None]],
        forward_agencies: bool,
        not_at_hub: dict[str, str],
        write_back_hub_ref: bool,
        reporters: ReporterKeeping | None,
    ) -> list[tuple[int, bool] | None]:
        now = self.clock()
        with self.session() as s:
            conn = s.connection()
            refs = list({c.ref for c, _ in batch})
            known: dict[str, int] = dict(conn.execute(LINKED_IDS, {"instance": local_instance, "refs": refs}).all())
            rows = {r.id: r for r in s.exec(_COMPLAINTS_BY_ID, params={"ids": list(known.values())})} if known else {}
            # Erased on request, or asked to be before the gateway read it: processed no further (_privacy.py).
            unread = [ref for ref in refs if ref not in known]
            erased = {ref for ref, complaint_id in known.items() if rows[complaint_id].erased_at is not None} | (
                set(conn.execute(ERASURE_REQUESTED, {"instance": local_instance, "refs": unread}).scalars())
                if unread
                else set()
            )
            new: dict[str, tuple[Complaint, Status | None]] = {}
            for complaint, local_status in batch:
                if complaint.ref in erased:
                    continue
                if complaint.ref in known:
                    complaint_id = known[complaint.ref]
                    row = rows[complaint_id]
                    newer = complaint.updated_at > ensure_utc(row.local_updated_at)
                    if newer and complaint.agency and complaint.agency != row.agency:
                        _agency_assigned(
                            s, complaint_id, complaint, local_instance, hub_instance, now, deliver=forward_agencies
                        )
                    if newer or (row.local_status is None and local_status is not None):  # read right at last
                        row.local_updated_at = complaint.updated_at
                        row.local_status_code = complaint.status.code
                        row.local_status = local_status.value if local_status else None
                        row.agency = complaint.agency
                        if complaint.ref not in not_at_hub:
                            _owe_create_again(s, complaint_id, hub_instance, now)
                elif complaint.ref not in new or complaint.updated_at >= new[complaint.ref][0].updated_at:
                    # Read twice in one batch: the newer version counts, as for a known complaint
                    # (a page out of order must not put the older one in its place).
                    new[complaint.ref] = (complaint, local_status)
            imported = (
                dict(conn.execute(_IMPORTED_PAIRS, {"instance": local_instance, "refs": list(new)}).all())
                if new
                else {}
            )
            ids = (
                _insert_complaints(
                    s,
                    local_instance,
                    hub_instance,
                    list(new.values()),
                    now,
                    not_at_hub=not_at_hub,
                    imported=imported,
                    write_back_hub_ref=write_back_hub_ref,
                    reporters=reporters,
                )
                | known
            )
            taken: list[tuple[int, bool] | None] = []
            for c, _ in batch:  # a complaint read twice is new once, then updated
                taken.append(None if c.ref in erased else (ids[c.ref], c.ref in new))
                new.pop(c.ref, None)
            return taken

    def record_event(
        self,
        complaint_id: int,
        *,
        kind: str,
        origin: str,
        origin_ref: str,
        occurred_at: datetime,
        content: str | None = None,
        author: str | None = None,
        raw_status: tuple[str, str | None] | None = None,
        status: Status | None = None,
        side: str,
        deliver: tuple[str, str] | None = None,
        park_reason: str | None = None,
    ) -> int | None:
        """Add an event to a complaint's timeline, and owe it to ``deliver`` = (kind, target)
        in the same transaction. ``side`` ("local" or "hub") says which of its ids
        ``origin_ref`` is. Returns the event id, or None when it was already recorded."""
        try:
            return self._record_event(
                complaint_id,
                kind=kind,
                origin=origin,
                origin_ref=origin_ref,
                occurred_at=occurred_at,
                content=content,
                author=author,
                raw_status=raw_status,
                status=status,
                side=side,
                deliver=deliver,
                park_reason=park_reason,
            )
        except IntegrityError:  # another daemon recorded it at the same moment
            return None

    def _record_event(
        self,
        complaint_id: int,
        *,
        kind: str,
        origin: str,
        origin_ref: str,
        occurred_at: datetime,
        content: str | None,
        author: str | None,
        raw_status: tuple[str, str | None] | None,
        status: Status | None,
        side: str,
        deliver: tuple[str, str] | None,
        park_reason: str | None,
    ) -> int | None:
        now = self.clock()
        with self.session() as s:
            exists = s.exec(
                select(EventRow.id).where(
                    EventRow.complaint_id == complaint_id, EventRow.origin == origin, EventRow.origin_ref == origin_ref
                )
            ).first()
            if exists is not None or existing_row(s, ComplaintRow, complaint_id).erased_at is not None:
                return None  # recorded already, or erased on request (processed no further)
            ev = EventRow(
                complaint_id=complaint_id,
                kind=kind,
                origin=origin,
                origin_ref=origin_ref,
                gateway_ref=new_ref("lg-ev"),
                content=content,
                author=author,
                raw_status_code=raw_status[0] if raw_status else None,
                raw_status_name=raw_status[1] if raw_status else None,
                status=status.value if status else None,
                occurred_at=occurred_at,
                recorded_at=now,
            )
            set_ref(ev, side, origin_ref)
            s.add(ev)
            s.flush()
            if deliver is not None:
                out = OutboxRow(
                    complaint_id=complaint_id,
                    event_id=ev.id,
                    kind=deliver[0],
                    target=deliver[1],
                    next_attempt_at=now,
                    created_at=now,
                )
                if park_reason:
                    out.state, out.last_error, out.first_error_at, out.last_error_at = (
                        OutboxState.PARKED,
                        park_reason,
                        now,
                        now,
                    )
                s.add(out)
            return ev.id

    def set_event_ref(self, event_id: int, side: str, ref: str) -> None:
        with self.session() as s:
            set_ref(existing_row(s, EventRow, event_id), side, ref)

    def complaint(self, complaint_id: int) -> ComplaintRow:
        with self.session() as s:
            return existing_row(s, ComplaintRow, complaint_id)

    def attachments(self, complaint_id: int, *, event_id: int | None = None) -> list[AttachmentRow]:
        """The files of a complaint (``event_id`` None) or of one of its follow-ups."""
        with self.session() as s:
            of = col(AttachmentRow.event_id).is_(None) if event_id is None else col(AttachmentRow.event_id) == event_id
            return list(
                s.exec(
                    select(AttachmentRow)
                    .where(AttachmentRow.complaint_id == complaint_id, of)
                    .order_by(col(AttachmentRow.id))
                ).all()
            )

    def create_skipped(self, complaint_id: int, hub_instance: str) -> str | None:
        """Why the complaint is not created at the hub (its create kept as skipped), or None."""
        with self.session() as s:
            row = s.exec(
                select(OutboxRow).where(
                    OutboxRow.complaint_id == complaint_id,
                    OutboxRow.kind == CREATE_COMPLAINT,
                    OutboxRow.target == hub_instance,
                    OutboxRow.state == OutboxState.SKIPPED,
                )
            ).first()
            return (row.last_error or "kept off the hub") if row is not None else None

    def set_attachment_doc(self, attachment_id: int, doc_id: str) -> None:
        with self.session() as s:
            existing_row(s, AttachmentRow, attachment_id).hub_doc_id = doc_id

    def external_ref(self, complaint_id: int, instance: str) -> str | None:
        with self.session() as s:
            return s.exec(
                select(LinkRow.external_ref).where(LinkRow.complaint_id == complaint_id, LinkRow.instance == instance)
            ).first()

    def event(self, event_id: int) -> EventRow:
        with self.session() as s:
            return existing_row(s, EventRow, event_id)

    def set_local_status(self, complaint_id: int, code: str, status: Status | None) -> None:
        with self.session() as s:
            row = existing_row(s, ComplaintRow, complaint_id)
            row.local_status_code, row.local_status = code, status.value if status else None

    # -- outbox ---------------------------------------------------------------------------

    def lease_now(self, s: Session) -> datetime:
        """The time leases are measured in: the database's clock on PostgreSQL, where daemons on
        several hosts share the store and their own clocks may disagree (a host five minutes
        ahead would take over live claims); the store's clock otherwise (SQLite is one host; a
        test's clock is the store's)."""
        by_database = self._leases_by_database
        if by_database is None:
            by_database = self.clock is utcnow and self.engine.dialect.name == "postgresql"
        if by_database and self.engine.dialect.name == "postgresql":
            found: datetime = s.execute(text("SELECT now()")).scalar_one()
            return ensure_utc(found)
        return self.clock()

    def claim_due(
        self, target: str, owner: str, lease: timedelta, *, limit: int = 100, in_flight: timedelta = timedelta()
    ) -> list[OutboxRow]:
        """Claim pending deliveries to ``target`` that are due, each the first one still
        owed for its complaint and target (so order per complaint holds), for ``lease``.

        Rows are locked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite the database's
        write lock, ``_engine.py``), so several daemons sharing one store never claim the same
        row; a dead daemon's claims expire with their lease (on the database's clock). Each claim gets a fresh
        ``claim_token``: whoever holds the row must show it to send, extend, finish or fail it.
        A row whose call started less than ``in_flight`` ago is not taken over even when its
        lease ran out: that call may still land.
        """
        with self.session() as s:
            now = self.lease_now(s)
            first_owed = (
                select(func.min(col(OutboxRow.id)))
                .where(OutboxRow.target == target, col(OutboxRow.state).in_(OWED_STATES))
                .group_by(col(OutboxRow.complaint_id))
            )
            rows = list(
                s.exec(
                    select(OutboxRow)
                    .where(
                        col(OutboxRow.id).in_(first_owed),
                        OutboxRow.state == OutboxState.PENDING,
                        OutboxRow.next_attempt_at <= now,
                        or_(col(OutboxRow.claimed_by).is_(None), col(OutboxRow.claim_expires_at) < now),
                        or_(col(OutboxRow.sending_at).is_(None), col(OutboxRow.sending_at) < now - in_flight),
                    )
                    .order_by(col(OutboxRow.id))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).all()
            )
            for row in rows:
                row.claimed_by, row.claim_expires_at, row.claim_token = owner, now + lease, uuid.uuid4().hex
            return rows

    def _held(self, s: Session, outbox_id: int, token: str | None, *, live: bool = False) -> OutboxRow | None:
        """The row, locked, if ``token`` still holds its claim (and, with ``live``, the lease has
        not run out); None when another daemon (or an operator) has it now."""
        row = s.exec(select(OutboxRow).where(OutboxRow.id == outbox_id).with_for_update()).first()
        if row is None or token is None or row.claim_token != token:
            return None
        if live and (row.claim_expires_at is None or ensure_utc(row.claim_expires_at) <= self.lease_now(s)):
            return None
        return row

    def extend_claim(self, outbox_id: int, token: str | None, lease: timedelta) -> bool:
        """Push the lease of a claim that is still held (a slow call is under way)."""
        return outbox_id in self.extend_claims({outbox_id: token}, lease)

    def extend_claims(self, claims: dict[int, str | None], lease: timedelta) -> set[int]:
        """:meth:`extend_claim` for many rows in one transaction (a round's claims, extended
        together so that the lease keeper stays cheap however many rows wait); returns the ids
        whose claim is still held."""
        held: set[int] = set()
        if not claims:
            return held
        with self.session() as s:
            now = self.lease_now(s)
            rows = s.exec(
                select(OutboxRow)
                .where(col(OutboxRow.id).in_(sorted(claims)))
                .order_by(col(OutboxRow.id))
                .with_for_update()
            ).all()
            for row in rows:
                row_id = existing_id(row)
                token = claims.get(row_id)
                if (
                    token is not None
                    and row.claim_token == token
                    and row.claim_expires_at is not None
                    and ensure_utc(row.claim_expires_at) > now
                ):
                    row.claim_expires_at = now + lease
                    held.add(row_id)
        return held

    def mark_sending(self, outbox_id: int, token: str | None = None) -> bool:
        """Written just before the call: found later on a claimable row, it says the daemon
        died during the call. False (and nothing written) when the claim is no longer this
        daemon's, or its lease ran out: the call must not be made."""
        with self.session() as s:
            row = self._held(s, outbox_id, token, live=True)
            if row is None:
                return False
            row.sending_at = self.lease_now(s)  # compared with the leases' clock (claim_due)
            return True

    def finish_delivery(
        self,
        outbox_id: int,
        *,
        state: OutboxState = OutboxState.DONE,
        link: tuple[int, str, str] | None = None,
        owe: tuple[str, str] | None = None,
        note: str | None = None,
        token: str | None = None,
    ) -> bool:
        """Mark a delivery done (or skipped, ``note`` saying why), and in the same transaction
        record the link it produced (complaint id, instance, external id) and what it makes
        owed next for its complaint (``owe``: kind, target). False, with nothing written, when
        ``token`` no longer holds the claim (another daemon took the row over)."""
        now = self.clock()
        with self.session() as s:
            row = self._held(s, outbox_id, token)
            if row is None:
                return False
            row.state, row.done_at, row.claimed_by, row.claim_expires_at = state, now, None, None
            row.sending_at, row.outcome_unknown, row.claim_token = None, False, None
            if note is not None:
                row.last_error = note
            if link is not None:
                s.add(LinkRow(complaint_id=link[0], instance=link[1], external_ref=link[2], linked_at=now))
            if owe is not None:
                s.add(
                    OutboxRow(
                        complaint_id=row.complaint_id, kind=owe[0], target=owe[1], next_attempt_at=now, created_at=now
                    )
                )
            return True

    def fail_delivery(
        self,
        outbox_id: int,
        error: str,
        *,
        retry_at: datetime | None,
        state: OutboxState = OutboxState.PARKED,
        outcome_unknown: bool = False,
        count: bool = True,
        token: str | None = None,
    ) -> bool:
        """Record a failed attempt: retried at ``retry_at``, or put in ``state`` (parked,
        needs_confirmation) when it is None. ``outcome_unknown``: the call may have been
        done; ``count=False``: no call was made (the breaker was open). False, with nothing
        written, when ``token`` no longer holds the claim."""
        now = self.clock()
        with self.session() as s:
            row = self._held(s, outbox_id, token)
            if row is None:
                return False
            row.attempts += 1 if count else 0
            row.last_error, row.last_error_at = scrub_text(error), now
            row.first_error_at = row.first_error_at or now
            row.claimed_by, row.claim_expires_at, row.sending_at, row.claim_token = None, None, None, None
            row.outcome_unknown = row.outcome_unknown or outcome_unknown
            if retry_at is None:
                row.state = state
            else:
                row.next_attempt_at = retry_at
            return True

    def delivery(self, outbox_id: int) -> OutboxRow:
        with self.session() as s:
            return existing_row(s, OutboxRow, outbox_id)

    # -- cursors, job runs, quarantine, audit ------------------------------------------------

    def cursor(self, instance: str, stream: str) -> datetime | None:
        with self.engine.begin() as conn:
            value = conn.execute(_CURSOR, {"instance": instance, "stream": stream}).scalar()
            return ensure_utc(value)

    def set_cursor(self, instance: str, stream: str, value: datetime) -> None:
        """Saved after every batch of an intake: one UPDATE, an INSERT the first time."""
        now = self.clock()
        with self.engine.begin() as conn:
            moved = conn.execute(
                _MOVE_CURSOR, {"of_instance": instance, "of_stream": stream, "new_value": value, "now": now}
            )
            if moved.rowcount == 0:
                conn.execute(
                    _INSERT_CURSOR, {"instance": instance, "stream": stream, "value": value, "updated_at": now}
                )

    def _job_run(self, instance: str, job: str, change: Callable[[JobRunRow], None]) -> None:
        """Apply ``change`` to the job's row, made on first use. Two daemons (or two engines of
        one process) may make it at the same moment: the one whose insert clashes applies its
        change to the row the other made."""
        for attempt in (1, 2):
            try:
                with self.session() as s:
                    row = s.get(JobRunRow, (instance, job)) or JobRunRow(instance=instance, job=job)
                    change(row)
                    s.add(row)
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def job_started(self, instance: str, job: str) -> None:
        now = self.clock()

        def started(row: JobRunRow) -> None:
            row.runs += 1
            row.last_started_at = now

        self._job_run(instance, job, started)

    def job_finished(self, instance: str, job: str, error: str | None = None) -> None:
        now = self.clock()

        def finished(row: JobRunRow) -> None:
            if error is None:
                row.last_success_at = now
            else:
                row.failures += 1
                row.last_error, row.last_error_at = scrub_text(error), now

        self._job_run(instance, job, finished)

    def quarantine(self, instance: str, stream: str, record_ref: str | None, reason: str) -> int:
        """Keep a record that could not be taken in, with why; return how often it has
        been seen bad (1 the first time)."""
        ref, reason = bounded(record_ref or "?", MAX_REF), bounded(scrub_text(reason), MAX_REASON)
        try:
            return self._quarantine(instance, stream, ref, reason)
        except IntegrityError:  # another daemon quarantined the same record at the same moment
            return self._quarantine(instance, stream, ref, reason)

    def _quarantine(self, instance: str, stream: str, ref: str, reason: str) -> int:
        with self.session() as s:
            row = s.exec(
                select(QuarantineRow).where(
                    QuarantineRow.instance == instance,
                    QuarantineRow.stream == stream,
                    QuarantineRow.record_ref == ref,
                    QuarantineRow.reason == reason,
                )
            ).first()
            if row is None:
                s.add(
                    QuarantineRow(instance=instance, stream=stream, record_ref=ref, reason=reason, seen_at=self.clock())
                )
                return 1
            row.sightings += 1
            row.resolved_at = None
            return row.sightings

    def quarantined(self, instance: str, stream: str, record_ref: str) -> int:
        """How often an unresolved quarantined record was seen bad (0: it is not quarantined)."""
        with self.session() as s:
            rows = s.exec(
                select(QuarantineRow.sightings).where(
                    QuarantineRow.instance == instance,
                    QuarantineRow.stream == stream,
                    QuarantineRow.record_ref == bounded(record_ref, MAX_REF),
                    col(QuarantineRow.resolved_at).is_(None),
                )
            ).all()
            return max(rows, default=0)

    def quarantined_refs(self, instance: str) -> set[tuple[str, str]]:
        """(stream, record ref) of the instance's unresolved quarantined records."""
        with self.session() as s:
            return set(
                s.exec(
                    select(QuarantineRow.stream, QuarantineRow.record_ref).where(
                        QuarantineRow.instance == instance, col(QuarantineRow.resolved_at).is_(None)
                    )
                ).all()
            )

    def resolve_quarantine_many(self, instance: str, stream: str, record_refs: set[str]) -> None:
        """Records once quarantined have now been read fine (one statement for a batch)."""
        with self.engine.begin() as conn:
            conn.execute(
                _RESOLVE_QUARANTINED,
                {
                    "of_instance": instance,
                    "of_stream": stream,
                    "now": self.clock(),
                    "refs": sorted(bounded(r, MAX_REF) for r in record_refs),
                },
            )

    def resolve_quarantine(self, instance: str, stream: str, record_ref: str) -> None:
        """A record once quarantined has now been read fine."""
        with self.session() as s:
            s.execute(
                update(QuarantineRow)
                .where(
                    col(QuarantineRow.instance) == instance,
                    col(QuarantineRow.stream) == stream,
                    col(QuarantineRow.record_ref) == bounded(record_ref, MAX_REF),
                    col(QuarantineRow.resolved_at).is_(None),
                )
                .values(resolved_at=self.clock())
            )

    def set_peer_health(
        self, instance: str, state: str, failures: int, last_error: str | None, *, owner: str | None = None
    ) -> None:
        with self.session() as s:
            now = self.lease_now(s)
            row = s.get(PeerHealthRow, instance) or PeerHealthRow(instance=instance, state=state, changed_at=now)
            last_error = scrub_text(last_error) if last_error is not None else None
            row.state, row.failures, row.last_error, row.changed_at = state, failures, last_error, now
            row.owner = owner
            s.add(row)

    def set_attachment_refused(self, attachment_id: int, reason: str) -> None:
        with self.session() as s:
            existing_row(s, AttachmentRow, attachment_id).refused_reason = reason

    def last_local_status_change(self, complaint_id: int, local_instance: str) -> EventRow | None:
        """The latest status change made in the local app itself (not by the gateway)."""
        with self.session() as s:
            return s.exec(
                select(EventRow)
                .where(
                    EventRow.complaint_id == complaint_id,
                    EventRow.origin == local_instance,
                    EventRow.kind == EventKind.STATUS_CHANGE,
                )
                .order_by(col(EventRow.occurred_at).desc(), col(EventRow.id).desc())
            ).first()

    def newer_hub_status_delivered(self, complaint_id: int, event: EventRow) -> bool:
        """Whether a hub status newer than ``event`` has already been delivered."""
        with self.session() as s:
            return (
                s.exec(
                    select(EventRow.id)
                    .join(OutboxRow, col(OutboxRow.event_id) == col(EventRow.id))
                    .where(
                        EventRow.complaint_id == complaint_id,
                        EventRow.origin == event.origin,
                        EventRow.kind == EventKind.STATUS_CHANGE,
                        EventRow.occurred_at > event.occurred_at,
                        OutboxRow.kind == LOCAL_STATUS,
                        OutboxRow.state == OutboxState.DONE,
                    )
                ).first()
                is not None
            )

    def audit(
        self, action: str, *, complaint_id: int | None = None, detail: str | None = None, actor: str = "gateway"
    ) -> None:
        with self.session() as s:
            s.add(AuditRow(at=self.clock(), actor=actor, action=action, complaint_id=complaint_id, detail=detail))


def _owe_create_again(s: Session, complaint_id: int, hub_instance: str, now: datetime) -> None:
    """A complaint kept out of the hub by the route's rule is inside it now (it was reopened,
    say): its create is owed after all."""
    s.execute(
        update(OutboxRow)
        .where(
            col(OutboxRow.complaint_id) == complaint_id,
            col(OutboxRow.kind) == CREATE_COMPLAINT,
            col(OutboxRow.state) == OutboxState.SKIPPED,
            col(OutboxRow.target) == hub_instance,
        )
        .values(state=OutboxState.PENDING, next_attempt_at=now, done_at=None, last_error=None)
    )


def _insert_complaints(
    s: Session,
    local_instance: str,
    hub_instance: str,
    new: list[tuple[Complaint, Status | None]],
    now: datetime,
    *,
    not_at_hub: dict[str, str] | None = None,
    imported: dict[str, str] | None = None,
    write_back_hub_ref: bool = False,
    reporters: ReporterKeeping | None = None,
) -> dict[str, int]:
    """New complaints with their attachments, link and the create owed at the hub, and the
    reporter's fields that ``reporters`` keeps (personal data: sealed, in a table apart;
    by default none): one multi-row INSERT per table (a page of a backfill built as ORM
    objects cost more than reading it). Returns local ref -> gateway id.
    A complaint in ``imported`` (local ref -> hub id) is linked at the hub and its create
    is done; one in ``not_at_hub`` (local ref -> why) has its create kept as skipped."""
    not_at_hub, imported = not_at_hub or {}, imported or {}
    if not new:
        return {}
    rows: list[dict[str, Any]] = [
        {
            "gateway_ref": new_ref("lg"),
            "local_instance": local_instance,
            "hub_instance": hub_instance,
            "title": c.title,
            "body": c.body,
            "category": c.category,
            "classification": c.classification.value,
            "channel": c.channel,
            "location_json": _location_json(c.location) if c.location else None,
            "incident_at": c.incident_at,
            "is_anonymous": c.is_anonymous,
            "is_secret": c.is_secret,
            "agency": c.agency,
            "local_status_code": c.status.code,
            "local_status": status.value if status else None,
            "local_created_at": c.created_at,
            "local_updated_at": c.updated_at,
            "first_seen_at": now,
        }
        for c, status in new
    ]
    conn = s.connection()
    conn.execute(_INSERTS[ComplaintRow], rows)
    by_ref = {
        ref: _stored_id(cid)
        for ref, cid in conn.execute(_COMPLAINT_IDS, {"refs": [r["gateway_ref"] for r in rows]}).all()
    }
    kept: list[dict[str, Any]] = []  # the reporters' sealed fields
    attachments, links, creates = [], [], []
    for (c, _), row in zip(new, rows, strict=True):  # rows is built from new, one for one
        cid = by_ref[row["gateway_ref"]]
        if reporters is not None and c.reporter is not None and not c.is_anonymous:
            sealed = reporters.sealed(c.reporter)
            if sealed is not None:
                kept.append({"complaint_id": cid, **sealed})
        attachments += [
            {
                "complaint_id": cid,
                "local_ref": a.ref,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in c.attachments
        ]
        links.append({"complaint_id": cid, "instance": local_instance, "external_ref": c.ref, "linked_at": now})
        create = {
            "complaint_id": cid,
            "kind": CREATE_COMPLAINT,
            "target": hub_instance,
            "next_attempt_at": now,
            "created_at": now,
            "state": OutboxState.PENDING,
            "done_at": None,
            "last_error": None,
        }
        if c.ref in imported:
            links.append(
                {"complaint_id": cid, "instance": hub_instance, "external_ref": imported[c.ref], "linked_at": now}
            )
            create.update(
                state=OutboxState.DONE, done_at=now, last_error="linked to the hub by an imported pair of ids"
            )
        elif c.ref in not_at_hub:
            create.update(state=OutboxState.SKIPPED, done_at=now, last_error=not_at_hub[c.ref])
        creates.append(create)
        if c.ref in imported and write_back_hub_ref:
            creates.append(
                {
                    **create,
                    "kind": LOCAL_HUB_REF,
                    "target": local_instance,
                    "state": OutboxState.PENDING,
                    "done_at": None,
                    "last_error": None,
                }
            )
    for table, values in (
        (ReporterRow, kept),
        (AttachmentRow, attachments),
        (LinkRow, links),
        (OutboxRow, creates),
    ):
        if values:
            conn.execute(_INSERTS[table], values)
    if imported:
        s.execute(
            update(LinkImportRow)
            .where(col(LinkImportRow.instance) == local_instance, col(LinkImportRow.local_ref).in_(list(imported)))
            .values(applied_at=now)
        )
    return {c.ref: by_ref[row["gateway_ref"]] for (c, _), row in zip(new, rows, strict=True)}


_LOCATION_FIELDS = tuple(f.name for f in fields(Location))


def _location_json(location: Location) -> str:
    """As ``json.dumps(asdict(location))``: its fields are plain values, so the deep copy
    ``asdict`` makes of them (a tenth of a page's insert) is not needed."""
    return json.dumps({name: getattr(location, name) for name in _LOCATION_FIELDS})


def _agency_assigned(
    s: Session,
    complaint_id: int,
    complaint: Complaint,
    local_instance: str,
    hub_instance: str,
    now: datetime,
    *,
    deliver: bool,
) -> None:
    """The local app gave a known complaint to another agency: a timeline event, owed to
    the hub as a forward. (A new complaint's agency goes with its create.)"""
    ev = EventRow(
        complaint_id=complaint_id,
        kind=EventKind.AGENCY_ASSIGNED,
        origin=local_instance,
        origin_ref=f"agency:{complaint.agency}@{complaint.updated_at.isoformat()}",
        gateway_ref=new_ref("lg-ev"),
        content=complaint.agency,
        occurred_at=complaint.updated_at,
        recorded_at=now,
    )
    s.add(ev)
    if deliver:
        s.flush()
        s.add(
            OutboxRow(
                complaint_id=complaint_id,
                event_id=ev.id,
                kind=FORWARD_COMPLAINT,
                target=hub_instance,
                next_attempt_at=now,
                created_at=now,
            )
        )
