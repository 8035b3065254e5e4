"""The store's tables. The store is the single source of truth for what is done
and what is owed; APScheduler holds nothing that matters.

Personal data lives only in ``reporter``, one row per complaint, so that it can
be erased on its own (UU PDP) without touching the timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, DateTime, Dialect, Index, Table, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, Session, SQLModel

_Table = TypeVar("_Table", bound=SQLModel)


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as UTC and read back aware (SQLite keeps no offset; a naive value is UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_column(**kwargs: Any) -> Column[datetime]:
    return Column(UtcDateTime(), **kwargs)


def table_of(model: type[SQLModel]) -> Table:
    """The table behind a table model, for Core statements (bulk inserts, migrations).
    SQLModel sets ``__table__`` on each ``table=True`` class; its type information does not declare it."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def existing_row(s: Session, table: type[_Table], key: Any) -> _Table:
    """The row of ``table`` at ``key`` where the store's own references guarantee one (the
    complaint of a delivery, the event a delivery carries). Its absence means a broken
    store, raised as such rather than as an AttributeError on None further on."""
    row = s.get(table, key)
    if row is None:
        raise LookupError(f"the store has no {table.__name__} {key!r} although another row refers to it")
    return row


def existing_id(row: Any) -> int:
    """The id of a row read from the store: the models declare it optional (None until the row
    is inserted), but a stored row always has one."""
    row_id = row.id
    if row_id is None:
        raise LookupError(f"a {type(row).__name__} without an id where a stored one was expected")
    return int(row_id)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int
    upgraded_at: datetime = Field(sa_column=_utc_column(nullable=False))


class ComplaintRow(SQLModel, table=True):
    """A complaint the gateway has taken in from a local app, and where it stands."""

    __tablename__ = "complaint"
    id: int | None = Field(default=None, primary_key=True)
    gateway_ref: str = Field(unique=True)  # the gateway's own reference, written into the hub record
    local_instance: str = Field(index=True)
    hub_instance: str = Field(index=True)
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    category: str | None = None  # the local app's raw category
    classification: str
    channel: str | None = None
    location_json: str | None = Field(default=None, sa_column=Column(Text))
    incident_at: datetime | None = Field(default=None, sa_column=_utc_column())
    is_anonymous: bool = False
    is_secret: bool = False
    agency: str | None = None
    local_status_code: str | None = None
    local_status: str | None = None  # canonical
    hub_status_code: str | None = None
    hub_status_name: str | None = None
    hub_status: str | None = None  # canonical
    local_created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    local_updated_at: datetime = Field(sa_column=_utc_column(nullable=False))
    first_seen_at: datetime = Field(sa_column=_utc_column(nullable=False))
    hub_polled_at: datetime | None = Field(default=None, sa_column=_utc_column())
    # When the hub is next read for this complaint (None: as soon as it is there), and
    # when a read last found something new: the poll's interval follows the complaint's quiet.
    next_poll_at: datetime | None = Field(default=None, sa_column=_utc_column(index=True))
    hub_changed_at: datetime | None = Field(default=None, sa_column=_utc_column())
    closed_at: datetime | None = Field(default=None, sa_column=_utc_column())
    # Revision 0004 (gateway/_store/_privacy.py): when its texts were purged after the retention
    # window (kept: ids, states, times), and when it was erased on request (then nothing of it is
    # read or sent any more).
    purged_at: datetime | None = Field(default=None, sa_column=_utc_column())
    erased_at: datetime | None = Field(default=None, sa_column=_utc_column())


class ReporterRow(SQLModel, table=True):
    __tablename__ = "reporter"
    complaint_id: int = Field(primary_key=True, foreign_key="complaint.id")
    name: str | None = None
    nik: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None


class AttachmentRow(SQLModel, table=True):
    """A file of a complaint (``event_id`` None: listed on the complaint at its local app) or of
    a follow-up (``event_id``: listed on that follow-up at the side it came from)."""

    __tablename__ = "attachment"
    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True)
    local_ref: str  # its id at the side it is listed on (the local app, or the hub for a hub follow-up)
    filename: str
    content_type: str | None = None
    size: int | None = None
    hub_doc_id: str | None = None
    refused_reason: str | None = Field(default=None, sa_column=Column(Text))  # not sent to the hub, and why


class LinkRow(SQLModel, table=True):
    """A complaint's id on one side (its local app, its hub)."""

    __tablename__ = "link"
    __table_args__ = (UniqueConstraint("instance", "external_ref"), UniqueConstraint("complaint_id", "instance"))
    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id", index=True)
    instance: str
    external_ref: str
    linked_at: datetime = Field(sa_column=_utc_column(nullable=False))


class EventRow(SQLModel, table=True):
    """One entry of a complaint's timeline: a follow-up or a status change, with
    where it came from and its id on each side."""

    __tablename__ = "event"
    __table_args__ = (UniqueConstraint("complaint_id", "origin", "origin_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id", index=True)
    kind: str  # follow_up | status_change
    origin: str  # the instance it was read from
    origin_ref: str  # its id there
    gateway_ref: str = Field(unique=True)  # written with the copy, so the copy is recognised
    local_ref: str | None = None
    hub_ref: str | None = None
    # A follow-up's text; for a status change, the note its side gave with it (a reason).
    content: str | None = Field(default=None, sa_column=Column(Text))
    author: str | None = None
    is_secret: bool = False  # a follow-up's own confidentiality (rahasia)
    reason: str | None = Field(default=None, sa_column=Column(Text))  # a status change's reason, verbatim
    raw_status_code: str | None = None
    raw_status_name: str | None = None
    status: str | None = None  # canonical; None when the raw status has no mapping
    occurred_at: datetime = Field(sa_column=_utc_column(nullable=False))
    recorded_at: datetime = Field(sa_column=_utc_column(nullable=False))


class OutboxRow(SQLModel, table=True):
    """A delivery the gateway owes. Written before anything is sent, in the same
    transaction as what made it owed; delivered in id order per complaint and target."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "target", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True)
    kind: str  # see the outbox kinds in _store.py
    target: str  # the instance to deliver to
    # pending | done | skipped (nothing to write) | parked (an operator must act) |
    # needs_confirmation (may have been done; an operator links or resends) | dropped (by an operator)
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_utc_column(nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    first_error_at: datetime | None = Field(default=None, sa_column=_utc_column())
    last_error_at: datetime | None = Field(default=None, sa_column=_utc_column())
    claimed_by: str | None = None
    claim_expires_at: datetime | None = Field(default=None, sa_column=_utc_column())
    # A fresh value per claim: finishing, failing, extending or sending a row checks it, so a
    # daemon whose lease ran out can neither overwrite the result of the one that took the row
    # over nor send it again (a fencing token).
    claim_token: str | None = None
    # Set just before the call, cleared after: found set on a claimable row, the daemon
    # died mid-call and the outcome is unknown.
    sending_at: datetime | None = Field(default=None, sa_column=_utc_column())
    outcome_unknown: bool = False
    created_at: datetime = Field(sa_column=_utc_column(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=_utc_column())


class CursorRow(SQLModel, table=True):
    """How far a stream of an instance has been read."""

    __tablename__ = "cursor"
    instance: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    value: datetime = Field(sa_column=_utc_column(nullable=False))
    updated_at: datetime = Field(sa_column=_utc_column(nullable=False))


class PeerPositionRow(SQLModel, table=True):
    """A peer's own place in a stream (an opaque cursor its adapter yielded), kept for the
    adapter beside the time cursor (revision 0002)."""

    __tablename__ = "peer_position"
    instance: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    position: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=_utc_column(nullable=False))


class JobRunRow(SQLModel, table=True):
    __tablename__ = "job_run"
    instance: str = Field(primary_key=True)
    job: str = Field(primary_key=True)
    runs: int = 0
    failures: int = 0
    last_started_at: datetime | None = Field(default=None, sa_column=_utc_column())
    last_success_at: datetime | None = Field(default=None, sa_column=_utc_column())
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_at: datetime | None = Field(default=None, sa_column=_utc_column())


class QuarantineRow(SQLModel, table=True):
    """A record a peer returned that could not be taken in, with why."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("instance", "stream", "record_ref", "reason"),)
    id: int | None = Field(default=None, primary_key=True)
    instance: str = Field(index=True)
    stream: str
    record_ref: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    seen_at: datetime = Field(sa_column=_utc_column(nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=_utc_column())  # read fine later
    sightings: int = 1  # how often it was read bad; the cursor waits for it a few times


class AuditRow(SQLModel, table=True):
    """What the gateway or an operator decided, and why. No personal data."""

    __tablename__ = "audit"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc_column(nullable=False))
    actor: str  # gateway | operator
    action: str
    complaint_id: int | None = Field(default=None, index=True)
    detail: str | None = Field(default=None, sa_column=Column(Text))


class PeerHealthRow(SQLModel, table=True):
    """The circuit breaker of each peer as a daemon last saw it (for ``gateway status``, and for
    the other daemons of the store: one that finds a peer down tells them)."""

    __tablename__ = "peer_health"
    instance: str = Field(primary_key=True)
    state: str  # closed | open | half_open
    failures: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    changed_at: datetime = Field(sa_column=_utc_column(nullable=False))
    owner: str | None = None  # the daemon that wrote it


class DaemonRow(SQLModel, table=True):
    """A live daemon (or a backfill, a one-off sync) of this store, by its heartbeat: each takes
    its share of every peer's request budget."""

    __tablename__ = "daemon"
    owner: str = Field(primary_key=True)
    started_at: datetime = Field(sa_column=_utc_column(nullable=False))
    heartbeat_at: datetime = Field(sa_column=_utc_column(nullable=False))


class ReferenceRow(SQLModel, table=True):
    """A hub's reference data (institutions, templates), cached from its master endpoints."""

    __tablename__ = "reference_item"
    instance: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)  # "institutions" or "templates"
    ref: str = Field(primary_key=True)
    name: str
    code: str | None = None
    parent_ref: str | None = None
    fetched_at: datetime = Field(sa_column=_utc_column(nullable=False))


class LinkImportRow(SQLModel, table=True):
    """A pair of ids imported by an operator (``gateway links import``): a local complaint that
    is already at the hub. Intake links it instead of creating it again."""

    __tablename__ = "link_import"
    instance: str = Field(primary_key=True)  # the local app
    local_ref: str = Field(primary_key=True)
    hub_ref: str
    imported_at: datetime = Field(sa_column=_utc_column(nullable=False))
    applied_at: datetime | None = Field(default=None, sa_column=_utc_column())


class ComplaintDeadlineRow(SQLModel, table=True):
    """One working-day deadline of a complaint (tier: verify, answer or close; see
    gateway/_deadlines), and whether it was met (revision 0003). ``rules`` is the fingerprint of
    the rules that set ``due_at``: a row of other rules is computed again."""

    __tablename__ = "complaint_deadline"
    __table_args__ = (
        UniqueConstraint("complaint_id", "tier"),
        Index("ix_complaint_deadline_open", "met_at", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(foreign_key="complaint.id")
    tier: str
    starts_at: datetime = Field(sa_column=_utc_column(nullable=False))  # what it counts from
    due_at: datetime = Field(sa_column=_utc_column(nullable=False))
    met_at: datetime | None = Field(default=None, sa_column=_utc_column())  # the hub's time of the answer
    outcome: str | None = None  # met | missed, once the answer came
    rules: str
    computed_at: datetime = Field(sa_column=_utc_column(nullable=False))


class PrivacyRequestRow(SQLModel, table=True):
    """A data subject's request (erase, or withdraw consent) and when it was carried out
    (revision 0004): evidence for the data protection officer. No personal data: the local id
    of the complaint, what remains elsewhere (by id), the operator's name."""

    __tablename__ = "privacy_request"
    # The intake looks up each batch's unread local ids here (revision 0005): ``ERASURE_REQUESTED``.
    __table_args__ = (Index("ix_privacy_request_ref", "instance", "local_ref"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str  # erase | withdraw
    instance: str  # the local app
    local_ref: str
    complaint_id: int | None = None  # None: nothing of it was stored
    requested_at: datetime = Field(sa_column=_utc_column(nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=_utc_column())
    operator: str
    outcome: str  # erased | already_erased (by an earlier request) | nothing_stored
    reason: str | None = Field(default=None, sa_column=Column(Text))  # the operator's note (no personal data)
    what_remains: str | None = Field(default=None, sa_column=Column(Text))  # one line per place, by id
