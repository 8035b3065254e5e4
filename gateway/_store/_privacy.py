"""Personal data kept only as long as it has a purpose (UU PDP 27/2022): the retention purge and
erasure on request. See docs/privacy-retention.md.

What a purge or an erasure removes from a complaint: its title and body (kept as empty texts, the
columns are NOT NULL), its location, its reporter row, its events' texts, authors and reasons, its
files' names, and the errors its finished deliveries left (a peer's answer may quote the complaint).
What stays, because the sync needs it to stay correct: the ids on each side (links, events' refs,
files' ids at the peers), states and raw status codes, times, the outbox rows' kinds and states,
the deadline rows. Reporter rows are deleted by complaint id only: how they are written is not
this module's business.

A purge is for complaints closed longer than their local app's ``privacy.retention.closed_days``;
it waits for a complaint with deliveries still owed (their content would be needed) and for one
whose hub copy of a sent follow-up is still to be recognised by its text. It runs in chunks, one
transaction each, so that a big store is never locked for long, and does nothing twice.

An erasure happens now, whatever the complaint's state, and also stops its processing: its owed
deliveries are dropped, its hub reads stop, and the intake ignores later records of it
(``erased_at``, checked in ``_store.py``, ``_local_reads.py`` and ``_hub_reads.py``); its deadlines
are open no more (``_deadlines.py`` leaves erased complaints out of every open deadline).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from gateway._errors import GatewayError
from gateway._store._store import HUB_FOLLOW_UP, OWED_STATES, OutboxState, Store
from gateway._store._tables import (
    AttachmentRow,
    AuditRow,
    ComplaintRow,
    EventRow,
    LinkRow,
    OutboxRow,
    PrivacyRequestRow,
    ReporterRow,
    existing_id,
)
from gateway._timezones import ensure_utc

PURGE_CHUNK = 1000  # complaints per transaction: a big store is never locked for long
ERASED_ON_REQUEST = "erased on request"
REQUEST_KINDS = ("erase", "withdraw")


class PrivacyError(GatewayError):
    """A privacy command cannot be carried out as asked."""


@dataclass
class PurgeCounts:
    """What a purge removed (or, dry, would remove) for one local app."""

    instance: str
    complaints: int = 0  # whose texts were purged
    events: int = 0  # follow-ups and status notes whose texts were purged
    attachments: int = 0  # files whose names were purged
    reporters: int = 0  # reporter rows deleted
    held_back: int = 0  # past the window, but still needed: deliveries owed, or a sent follow-up unrecognised

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Erasure:
    """The outcome of an erasure (or withdrawal) request, as recorded in ``privacy_request``."""

    request_id: int
    kind: str
    instance: str
    local_ref: str
    complaint_id: int | None
    outcome: str  # erased | already_erased (by an earlier request) | nothing_stored
    requested_at: datetime
    completed_at: datetime
    erased_at: datetime | None = None  # the complaint's erasure: the first request's, kept when one is repeated
    events: int = 0
    attachments: int = 0
    reporters: int = 0
    dropped: int = 0  # owed deliveries dropped
    remains: list[str] = field(default_factory=list)  # what the gateway cannot erase: where, by id


def _owed(complaint: Any) -> ColumnElement[bool]:
    return exists().where(col(OutboxRow.complaint_id) == complaint, col(OutboxRow.state).in_(OWED_STATES))


def _unrecognised_follow_up(complaint: Any) -> ColumnElement[bool]:
    """A follow-up the gateway sent to the hub whose hub copy is not known yet: the hub poll
    recognises it by its text (``hub_view``'s unmatched_sent) while the complaint is still read."""
    return exists().where(
        col(EventRow.complaint_id) == complaint,
        col(EventRow.hub_ref).is_(None),
        col(EventRow.content).is_not(None),
        exists().where(col(OutboxRow.event_id) == col(EventRow.id), col(OutboxRow.kind) == HUB_FOLLOW_UP),
    )


def _texts_left(complaint: Any, purged_at: Any) -> ColumnElement[bool]:
    """Something to purge: never purged, or events recorded since (it reopened, or the hub added one)."""
    return or_(
        purged_at.is_(None),
        exists().where(col(EventRow.complaint_id) == complaint, col(EventRow.recorded_at) > purged_at),
    )


def purge_closed(
    store: Store,
    instance: str,
    closed_days: int,
    *,
    dry_run: bool = False,
    actor: str = "gateway",
    chunk: int = PURGE_CHUNK,
) -> PurgeCounts:
    """Purge the texts of ``instance``'s complaints closed more than ``closed_days`` ago (0: all
    closed ones). ``dry_run``: count only, change nothing. Audited with ``actor`` and the counts."""
    now = store.clock()
    cutoff = now - timedelta(days=closed_days)
    counts = PurgeCounts(instance)
    cid, purged_at = col(ComplaintRow.id), col(ComplaintRow.purged_at)
    due = (
        (col(ComplaintRow.local_instance) == instance)
        & col(ComplaintRow.erased_at).is_(None)
        & col(ComplaintRow.closed_at).is_not(None)
        & (col(ComplaintRow.closed_at) <= cutoff)
        & _texts_left(cid, purged_at)
    )
    held = _owed(cid) | (col(ComplaintRow.next_poll_at).is_not(None) & _unrecognised_follow_up(cid))
    with store.session() as s:
        counts.held_back = s.exec(select(func.count()).select_from(ComplaintRow).where(due & held)).one()
    after = 0
    while True:
        with store.session() as s:
            ids = list(s.exec(select(cid).where(due & ~held & (cid > after)).order_by(cid).limit(chunk)).all())
            if not ids:
                break
            after = max(i for i in ids if i is not None)
            if not dry_run:
                # Locked (as a hub read locks its complaint, apply_hub_read, and the intake before it
                # records events, record_local_events), then picked again: a follow-up recorded after
                # the pick, owed to one side, could otherwise have its text purged before delivery.
                s.exec(select(cid).where(cid.in_(ids)).order_by(cid).with_for_update()).all()
                ids = list(s.exec(select(cid).where(cid.in_(ids) & due & ~held).order_by(cid)).all())
            found = _clear_texts(s, [i for i in ids if i is not None], now, dry_run=dry_run)
            counts.complaints += len(ids)
            counts.events += found[0]
            counts.attachments += found[1]
            counts.reporters += found[2]
    if not dry_run:
        store.audit(
            "privacy_purge",
            actor=actor,
            detail=(
                f"{instance}: closed over {closed_days} days: {counts.complaints} complaints, {counts.events} events, "
                f"{counts.attachments} attachments, {counts.reporters} reporters purged; {counts.held_back} held back"
            ),
        )
    return counts


def _clear_texts(s: Session, ids: list[int], now: datetime, *, dry_run: bool = False) -> tuple[int, int, int]:
    """Remove the texts of complaints ``ids`` (see the module's doc). Returns how many events,
    attachments and reporter rows held something to remove (counted the same when ``dry_run``)."""
    of_complaints = col(EventRow.complaint_id).in_(ids)
    with_text = or_(
        col(EventRow.content).is_not(None), col(EventRow.author).is_not(None), col(EventRow.reason).is_not(None)
    )
    named = col(AttachmentRow.complaint_id).in_(ids) & (col(AttachmentRow.filename) != "")
    reporters = col(ReporterRow.complaint_id).in_(ids)
    found = (
        s.exec(select(func.count()).select_from(EventRow).where(of_complaints & with_text)).one(),
        s.exec(select(func.count()).select_from(AttachmentRow).where(named)).one(),
        s.exec(select(func.count()).select_from(ReporterRow).where(reporters)).one(),
    )
    if dry_run:
        return found
    s.execute(
        update(ComplaintRow)
        .where(col(ComplaintRow.id).in_(ids))
        .values(title="", body="", location_json=None, purged_at=now)
    )
    s.execute(update(EventRow).where(of_complaints & with_text).values(content=None, author=None, reason=None))
    s.execute(update(AttachmentRow).where(named).values(filename=""))
    s.execute(delete(ReporterRow).where(reporters))
    # A finished delivery's error may quote what a peer answered about the complaint; an owed one's
    # is what an operator still needs (an erasure drops those, and writes its own reason).
    s.execute(
        update(OutboxRow)
        .where(col(OutboxRow.complaint_id).in_(ids), col(OutboxRow.state).not_in(OWED_STATES))
        .values(last_error=None)
    )
    return found


def erase_complaint(
    store: Store,
    instance: str,
    local_ref: str,
    *,
    kind: str = "erase",
    reason: str | None = None,
    actor: str = "operator",
) -> Erasure:
    """Carry out a data subject's request for the complaint ``local_ref`` of local app
    ``instance`` now, whatever its state: its texts and reporter are removed, its owed
    deliveries dropped, and it is processed no further. The request is recorded (also when
    nothing of it is stored: evidence that it was asked and answered), with what remains
    elsewhere, which the operator passes on."""
    if kind not in REQUEST_KINDS:
        raise PrivacyError(f"unknown request kind {kind!r}; expected {' or '.join(REQUEST_KINDS)}")
    requested_at = store.clock()
    local_line = (
        f"the local app {instance} holds report {local_ref}: erase it there (the gateway never deletes at a peer)"
    )
    with store.session() as s:
        complaint = s.exec(
            select(ComplaintRow)
            .join(LinkRow, col(LinkRow.complaint_id) == col(ComplaintRow.id))
            .where(LinkRow.instance == instance, LinkRow.external_ref == local_ref)
            .with_for_update()
        ).first()
        now = store.clock()
        if complaint is None:
            request = _request(s, kind, instance, local_ref, None, requested_at, now, actor, "nothing_stored", reason)
            request.what_remains = local_line
            s.flush()
            erasure = Erasure(
                existing_id(request), kind, instance, local_ref, None, "nothing_stored", requested_at, now
            )
            erasure.remains = [local_line]
            _audit_request(s, erasure, actor, now)
            return erasure
        cid = existing_id(complaint)
        events, attachments, reporters = _clear_texts(s, [cid], now)
        owed = (col(OutboxRow.complaint_id) == cid) & col(OutboxRow.state).in_(OWED_STATES)
        dropped = s.exec(select(func.count()).select_from(OutboxRow).where(owed)).one()
        s.execute(
            update(OutboxRow)
            .where(owed)
            .values(
                state=OutboxState.DROPPED,
                done_at=now,
                last_error=ERASED_ON_REQUEST,
                claimed_by=None,
                claim_expires_at=None,
                claim_token=None,
                sending_at=None,
            )
        )
        # A repeated request is recorded as its own, but the complaint was erased at the first.
        outcome = "erased" if complaint.erased_at is None else "already_erased"
        if complaint.erased_at is None:
            complaint.erased_at = now
        complaint.next_poll_at = None
        remains = _what_remains(s, complaint) + [local_line]
        request = _request(s, kind, instance, local_ref, cid, requested_at, now, actor, outcome, reason)
        request.what_remains = "\n".join(remains)
        s.flush()
        erasure = Erasure(
            existing_id(request),
            kind,
            instance,
            local_ref,
            cid,
            outcome,
            requested_at,
            now,
            erased_at=ensure_utc(complaint.erased_at),
            events=events,
            attachments=attachments,
            reporters=reporters,
            dropped=dropped,
            remains=remains,
        )
        _audit_request(s, erasure, actor, now)
        return erasure


def _request(
    s: Session,
    kind: str,
    instance: str,
    local_ref: str,
    complaint_id: int | None,
    requested_at: datetime,
    completed_at: datetime,
    actor: str,
    outcome: str,
    reason: str | None,
) -> PrivacyRequestRow:
    row = PrivacyRequestRow(
        kind=kind,
        instance=instance,
        local_ref=local_ref,
        complaint_id=complaint_id,
        requested_at=requested_at,
        completed_at=completed_at,
        operator=actor,
        outcome=outcome,
        reason=reason.strip() if reason and reason.strip() else None,
    )
    s.add(row)
    return row


def _what_remains(s: Session, complaint: ComplaintRow) -> list[str]:
    """Where the complaint lives on outside the store, by id, for the operator to pass the
    request on: the hub's copy (or a create whose outcome is unknown)."""
    hub = complaint.hub_instance
    link = s.exec(select(LinkRow).where(LinkRow.complaint_id == complaint.id, LinkRow.instance == hub)).first()
    if link is not None:
        return [
            f"the hub {hub} holds complaint #{link.external_ref} (created {ensure_utc(link.linked_at):%Y-%m-%d}) "
            f"with the follow-ups sent to it: ask the hub's administrators to erase it"
        ]
    unknown = s.exec(
        select(OutboxRow.id).where(
            OutboxRow.complaint_id == complaint.id,
            OutboxRow.target == hub,
            or_(col(OutboxRow.outcome_unknown), col(OutboxRow.sending_at).is_not(None)),
        )
    ).first()
    if unknown is not None:
        return [
            f"the hub {hub} may hold it (a create was under way, its outcome unknown; gateway ref "
            f"{complaint.gateway_ref}): ask the hub's administrators to look for it and erase it"
        ]
    return []


def _audit_request(s: Session, erasure: Erasure, actor: str, now: datetime) -> None:
    s.add(
        AuditRow(
            at=now,
            actor=actor,
            action=f"privacy_{erasure.kind}",
            complaint_id=erasure.complaint_id,
            detail=(
                f"request {erasure.request_id} ({erasure.instance} report {erasure.local_ref}): {erasure.outcome}; "
                f"{erasure.events} events, {erasure.attachments} attachments, {erasure.reporters} reporters erased, "
                f"{erasure.dropped} deliveries dropped"
            ),
        )
    )


def privacy_requests(store: Store, *, limit: int = 500) -> list[dict[str, Any]]:
    """The requests, newest first: ids, times and outcome (no personal data is kept in them)."""
    with store.session() as s:
        rows = s.exec(select(PrivacyRequestRow).order_by(col(PrivacyRequestRow.id).desc()).limit(limit)).all()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "instance": r.instance,
                "local_ref": r.local_ref,
                "complaint_id": r.complaint_id,
                "requested_at": ensure_utc(r.requested_at).isoformat(),
                "completed_at": r.completed_at and ensure_utc(r.completed_at).isoformat(),
                "operator": r.operator,
                "outcome": r.outcome,
                "what_remains": r.what_remains.splitlines() if r.what_remains else [],
            }
            for r in rows
        ]
