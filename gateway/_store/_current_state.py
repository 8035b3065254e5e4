"""Status changes of a local app that keeps only each complaint's current status
(no ``Capability.STATUS_HISTORY``): seen by comparing a complaint read with the local
status the gateway last knew for it (``complaint.local_status_code``).

A status the gateway wrote itself is set there by the delivery (``Store.set_local_status``)
right after the write, so reading it back shows no change: it is not recorded as the app's.
Between the write and that note the delivery's outbox row is marked as sending: a complaint
read meanwhile shows no change either (an officer's change at that very moment is missed;
taking the gateway's own write for the officer's would be worse: the conflict rule would
then keep it against the hub). Each change gets a ref built from the
complaint's id, the status and the modification time, so that a complaint read again (the
cursor is inclusive) is recognised as known, not recorded twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import col

from gateway._model import Complaint, Status
from gateway._store._local_reads import LocalEvent
from gateway._store._store import LINKED_IDS, DeliveryKind, EventKind, OutboxState, Store
from gateway._store._tables import ComplaintRow, OutboxRow
from gateway._timezones import ensure_utc

_STATUS_BEING_WRITTEN = (
    sa_select(col(OutboxRow.id))
    .where(
        col(OutboxRow.complaint_id) == col(ComplaintRow.id),
        col(OutboxRow.kind) == DeliveryKind.LOCAL_STATUS.value,
        col(OutboxRow.state) == OutboxState.PENDING.value,
        col(OutboxRow.sending_at).is_not(None),
    )
    .exists()
)

# The status the gateway knows and whether a write of it is under way, from ONE statement, so from
# one snapshot. Read apart, a delivery could note its write (set_local_status) and finish its row
# between the two: the old status was read, no write was under way any more, and the gateway's own
# write was taken for the officer's change.
_LOCAL_STATUSES = sa_select(
    col(ComplaintRow.id), col(ComplaintRow.local_status_code), col(ComplaintRow.local_updated_at), _STATUS_BEING_WRITTEN
).where(col(ComplaintRow.id).in_(bindparam("ids", expanding=True)))


def derived_ref(complaint_ref: str, code: str, updated_at: datetime) -> str:
    """The change's id: the same for every read of the same version of the complaint."""
    return f"state:{complaint_ref}:{code}:{ensure_utc(updated_at).isoformat()}"


def status_changes_seen(store: Store, instance: str, batch: list[tuple[Complaint, Status | None]]) -> list[LocalEvent]:
    """The status changes a batch of complaints read shows, in the order read. A complaint the
    gateway does not know yet shows none (the status it was filed in is no change), nor does a
    version no newer than the one the gateway has, nor one whose status the gateway is writing."""
    refs = list({complaint.ref for complaint, _ in batch})
    with store.engine.begin() as conn:
        ids: dict[str, int] = dict(conn.execute(LINKED_IDS, {"instance": instance, "refs": refs}).all())
        found = conn.execute(_LOCAL_STATUSES, {"ids": list(ids.values())}).all() if ids else []
    rows = {row[0]: (row[1], ensure_utc(row[2])) for row in found}
    being_written = {row[0] for row in found if row[3]}
    known = {
        ref: rows[complaint_id]
        for ref, complaint_id in ids.items()
        if complaint_id in rows and complaint_id not in being_written
    }
    events: list[LocalEvent] = []
    for complaint, status in batch:
        before = known.get(complaint.ref)
        if before is None:
            continue
        code, updated_at = before
        if updated_at is not None and complaint.updated_at <= updated_at:
            continue
        known[complaint.ref] = (complaint.status.code, complaint.updated_at)
        if code is None or code == complaint.status.code:
            continue
        events.append(
            LocalEvent(
                kind=EventKind.STATUS_CHANGE,
                ref=derived_ref(complaint.ref, complaint.status.code, complaint.updated_at),
                complaint_ref=complaint.ref,
                occurred_at=complaint.updated_at,
                raw_status=(complaint.status.code, complaint.status.name),
                status=status,
            )
        )
    return events
