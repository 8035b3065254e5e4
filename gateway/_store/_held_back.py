"""Files held back from the hub because they look like an identity document on an anonymous or
confidential complaint (gateway/_engine/_identity_documents.py): listed for the operator, who
checks them at the local app and sends one by hand only if the reporter agreed.

A listed file is named by its id at the local app and its complaint's references, never by its
file name (a file name often carries the reporter's name)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from gateway._store._store import Store
from gateway._store._tables import AttachmentRow, ComplaintRow, LinkRow

#: How every held-back file's ``refused_reason`` begins (the engine writes it, the store finds it).
HELD_BACK = "held back: "


def list_held_back(store: Store, *, limit: int = 200) -> list[dict[str, Any]]:
    """Held-back files, oldest first: where to find each (instance, complaint, file id) and why."""
    with store.session() as s:
        rows = s.exec(
            select(AttachmentRow, ComplaintRow, LinkRow.external_ref)
            .join(ComplaintRow, col(ComplaintRow.id) == AttachmentRow.complaint_id)
            .join(
                LinkRow,
                (col(LinkRow.complaint_id) == ComplaintRow.id) & (col(LinkRow.instance) == ComplaintRow.local_instance),
                isouter=True,
            )
            .where(col(AttachmentRow.refused_reason).startswith(HELD_BACK))
            .order_by(col(AttachmentRow.id))
            .limit(limit)
        ).all()
        return [
            {
                "attachment_id": att.id,
                "instance": complaint.local_instance,
                "complaint_id": complaint.id,
                "gateway_ref": complaint.gateway_ref,
                "local_ref": local_ref,
                "file_ref": att.local_ref,
                "content_type": att.content_type,
                "reason": att.refused_reason,
            }
            for att, complaint, local_ref in rows
        ]
