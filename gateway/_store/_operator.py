"""What an operator does about deliveries that could not be made on their own:
list and show them, retry a parked one, resend or link one whose outcome is
unknown, drop one on purpose. Every decision is written to the audit trail.

A retried delivery keeps its id, and so its place in its complaint's order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway._errors import GatewayError
from gateway._store._store import CREATE_COMPLAINT, HUB_FOLLOW_UP, LOCAL_HUB_REF, OWED_STATES, Store
from gateway._store._tables import AuditRow, ComplaintRow, EventRow, LinkRow, OutboxRow, QuarantineRow, existing_row
from gateway._timezones import ensure_utc

STUCK_STATES = ("parked", "needs_confirmation")


class OperatorError(GatewayError):
    """An operator command cannot be carried out as asked."""


def _iso(value: datetime | None) -> str | None:
    return ensure_utc(value).isoformat() if value else None


def _view(row: OutboxRow, complaint: ComplaintRow, links: dict[str, str], event: EventRow | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "target": row.target,
        "state": row.state,
        "complaint_id": row.complaint_id,
        "gateway_ref": complaint.gateway_ref,
        "local": {"instance": complaint.local_instance, "ref": links.get(complaint.local_instance)},
        "hub": {"instance": complaint.hub_instance, "ref": links.get(complaint.hub_instance)},
        "event": (
            {
                "id": event.id,
                "origin": event.origin,
                "gateway_ref": event.gateway_ref,
                "local_ref": event.local_ref,
                "hub_ref": event.hub_ref,
                "status": event.status,
                "raw_status": event.raw_status_code,
                "occurred_at": _iso(event.occurred_at),
            }
            if event
            else None
        ),
        "attempts": row.attempts,
        "outcome_unknown": row.outcome_unknown,
        "last_error": row.last_error,
        "first_error_at": _iso(row.first_error_at),
        "last_error_at": _iso(row.last_error_at),
        "next_attempt_at": _iso(row.next_attempt_at),
        "created_at": _iso(row.created_at),
    }


def list_deliveries(
    store: Store, *, states: tuple[str, ...] = STUCK_STATES, target: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    with store.session() as s:
        query = select(OutboxRow).where(col(OutboxRow.state).in_(states))
        if target:
            query = query.where(OutboxRow.target == target)
        rows = s.exec(query.order_by(col(OutboxRow.id)).limit(limit)).all()
        return [_view_in(s, row) for row in rows]


def _view_in(s: Session, row: OutboxRow) -> dict[str, Any]:
    complaint = existing_row(s, ComplaintRow, row.complaint_id)
    links = dict(
        s.exec(select(LinkRow.instance, LinkRow.external_ref).where(LinkRow.complaint_id == row.complaint_id)).all()
    )
    event = s.get(EventRow, row.event_id) if row.event_id else None
    return _view(row, complaint, links, event)


def show_delivery(store: Store, outbox_id: int) -> dict[str, Any]:
    with store.session() as s:
        row = _get(s, outbox_id)
        view = _view_in(s, row)
        view["audit"] = [
            {"at": _iso(a.at), "actor": a.actor, "action": a.action, "detail": a.detail}
            for a in s.exec(
                select(AuditRow).where(AuditRow.complaint_id == row.complaint_id).order_by(col(AuditRow.id))
            ).all()
        ]
        return view


def _get(s: Session, outbox_id: int, *states: str) -> OutboxRow:
    row = s.get(OutboxRow, outbox_id)
    if row is None:
        raise OperatorError(f"no delivery {outbox_id}")
    if states and row.state not in states:
        raise OperatorError(f"delivery {outbox_id} is {row.state}; this command is for {' or '.join(states)} ones")
    return row


def _audit(s: Session, store: Store, row: OutboxRow, action: str, detail: str, actor: str) -> None:
    s.add(
        AuditRow(
            at=store.clock(),
            actor=actor,
            action=action,
            complaint_id=row.complaint_id,
            detail=f"delivery {row.id} ({row.kind} to {row.target}): {detail}",
        )
    )


def _requeue(store: Store, row: OutboxRow) -> None:
    row.state, row.attempts, row.next_attempt_at = "pending", 0, store.clock()
    row.claimed_by = row.claim_expires_at = row.sending_at = None


def retry_delivery(store: Store, outbox_id: int, *, actor: str = "operator") -> None:
    """Send a parked delivery again (after the cause is fixed), in its old place."""
    with store.session() as s:
        row = _get(s, outbox_id, "parked")
        if row.outcome_unknown:
            raise OperatorError(
                f"delivery {outbox_id} may already have been done; check the peer, then use "
                f"`resend` (it is not there) or `link` (it is)"
            )
        _requeue(store, row)
        _audit(s, store, row, "delivery_retried", "requeued by an operator", actor)


def resend_delivery(store: Store, outbox_id: int, *, actor: str = "operator") -> None:
    """The operator checked that a delivery of unknown outcome did not arrive: send it again."""
    with store.session() as s:
        row = _get(s, outbox_id, "needs_confirmation", "parked")
        _requeue(store, row)
        row.outcome_unknown = False
        _audit(s, store, row, "delivery_resent", "operator confirmed it had not arrived", actor)


def link_delivery(store: Store, outbox_id: int, external_ref: str, *, actor: str = "operator") -> None:
    """The operator found what a delivery of unknown outcome created: record its id, mark it done."""
    # An id pasted with a space or a line break around it would be linked as it is: the complaint
    # then reads as created at the hub while every read of that id fails. The dashboard's form
    # trims it and refuses a blank one; so does this, for the CLI.
    external_ref = external_ref.strip()
    if not external_ref:
        raise OperatorError("give the id the delivery has at the peer (it is blank)")
    with store.session() as s:
        row = _get(s, outbox_id, "needs_confirmation", "parked")
        now = store.clock()
        if row.kind == CREATE_COMPLAINT:
            taken = s.exec(
                select(LinkRow.complaint_id).where(LinkRow.instance == row.target, LinkRow.external_ref == external_ref)
            ).first()
            if taken is not None:
                raise OperatorError(f"{row.target} id {external_ref} is already linked to complaint {taken}")
            s.add(LinkRow(complaint_id=row.complaint_id, instance=row.target, external_ref=external_ref, linked_at=now))
            # The local app is told the hub's tracking id, as after any create (skipped where it cannot keep it).
            local = existing_row(s, ComplaintRow, row.complaint_id).local_instance
            s.add(
                OutboxRow(
                    complaint_id=row.complaint_id, kind=LOCAL_HUB_REF, target=local, next_attempt_at=now, created_at=now
                )
            )
        elif row.event_id is not None:
            event = existing_row(s, EventRow, row.event_id)
            if row.kind == HUB_FOLLOW_UP:
                event.hub_ref = external_ref
            else:
                event.local_ref = external_ref
        row.state, row.done_at, row.outcome_unknown = "done", now, False
        row.claimed_by = row.claim_expires_at = row.sending_at = None
        _audit(s, store, row, "delivery_linked", f"operator linked it to {row.target} id {external_ref}", actor)


def drop_delivery(store: Store, outbox_id: int, reason: str, *, actor: str = "operator") -> None:
    """Give a delivery up on purpose; the later ones of its complaint go on."""
    if not reason.strip():
        raise OperatorError("say why the delivery is dropped (--reason)")
    with store.session() as s:
        row = _get(s, outbox_id, *OWED_STATES)
        row.state, row.done_at = "dropped", store.clock()
        # A call under way when it was dropped may still land: kept as "may have been done", so
        # that what it made at the peer is recognised as the gateway's (hub_view), not echoed back.
        row.outcome_unknown = row.outcome_unknown or row.sending_at is not None
        row.claimed_by = row.claim_expires_at = row.sending_at = None
        _audit(s, store, row, "delivery_dropped", reason.strip(), actor)


def recent_operator_actions(store: Store, *, limit: int = 10) -> list[dict[str, Any]]:
    """The newest audit entries written by an operator (the CLI's or the dashboard's), newest first."""
    with store.session() as s:
        rows = s.exec(
            select(AuditRow)
            .where(col(AuditRow.actor).startswith("operator"))
            .order_by(col(AuditRow.id).desc())
            .limit(limit)
        ).all()
        return [
            {"at": _iso(a.at), "actor": a.actor, "action": a.action, "complaint_id": a.complaint_id, "detail": a.detail}
            for a in rows
        ]


def list_quarantine(store: Store, *, include_resolved: bool = False, limit: int = 500) -> list[dict[str, Any]]:
    with store.session() as s:
        query = select(QuarantineRow)
        if not include_resolved:
            query = query.where(col(QuarantineRow.resolved_at).is_(None))
        return [
            {
                "id": q.id,
                "instance": q.instance,
                "stream": q.stream,
                "record_ref": q.record_ref,
                "reason": q.reason,
                "seen_at": _iso(q.seen_at),
                "resolved_at": _iso(q.resolved_at),
            }
            for q in s.exec(query.order_by(col(QuarantineRow.id)).limit(limit)).all()
        ]
