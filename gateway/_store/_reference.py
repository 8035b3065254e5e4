"""A hub's reference data (institutions, templates), cached in the store: read from
the hub's master endpoints by a daily job, used to check mappings without a call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, func, select

from gateway._model import ReferenceItem
from gateway._store._store import Store
from gateway._store._tables import ReferenceRow
from gateway._timezones import ensure_utc


def replace_reference(store: Store, instance: str, kind: str, items: list[ReferenceItem]) -> None:
    """The hub's whole list of ``kind``, in place of the one cached (in one transaction)."""
    now = store.clock()
    with store.session() as s:
        s.exec(delete(ReferenceRow).where(col(ReferenceRow.instance) == instance, col(ReferenceRow.kind) == kind))
        seen: set[str] = set()
        for item in items:
            if item.ref in seen:  # a list served with a repeat keeps its first entry
                continue
            seen.add(item.ref)
            s.add(
                ReferenceRow(
                    instance=instance,
                    kind=kind,
                    ref=item.ref,
                    name=item.name,
                    code=item.code,
                    parent_ref=item.parent_ref,
                    fetched_at=now,
                )
            )


def reference(store: Store, instance: str, kind: str) -> list[ReferenceItem]:
    with store.session() as s:
        rows = s.exec(
            select(ReferenceRow)
            .where(ReferenceRow.instance == instance, ReferenceRow.kind == kind)
            .order_by(ReferenceRow.ref)
        ).all()
        return [ReferenceItem(ref=r.ref, name=r.name, code=r.code, parent_ref=r.parent_ref) for r in rows]


def reference_fetched_at(store: Store, instance: str, kind: str) -> datetime | None:
    with store.session() as s:
        return ensure_utc(
            s.exec(
                select(func.max(ReferenceRow.fetched_at)).where(
                    ReferenceRow.instance == instance, ReferenceRow.kind == kind
                )
            ).one()
        )
