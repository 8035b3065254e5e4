"""The reporter data a local app keeps for its configured purpose (``privacy.reporter``):
shown to an operator for that purpose, re-sealed under a new key, and minimised.

The intake keeps a reporter's fields only as the app's purpose says, sealed
(``_store.py``; :class:`gateway._personal_data.ReporterKeeping`). What an older version
stored in plain text, or what a purpose no longer keeps, is put right by
:func:`tidy_reporters`: rows of apps without a purpose deleted, fields no longer kept
removed, plain values sealed. The audit records who saw or changed what, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import func
from sqlmodel import col, select

from gateway._errors import GatewayError
from gateway._paging import WalkProgress
from gateway._personal_data import REPORTER_FIELDS, ReporterKeeping, UnreadableError, looks_sealed
from gateway._store._store import Store
from gateway._store._tables import AuditRow, ComplaintRow, LinkRow, ReporterRow

#: Reporter rows read and changed per transaction by :func:`tidy_reporters`.
BATCH = 500


class ReporterLookupError(GatewayError):
    """The complaint asked for is unknown, or nothing of its reporter is kept."""


@dataclass
class KeptReporter:
    complaint_id: int
    shown: dict[str, str]  # field -> its value, opened
    unreadable: list[str]  # kept fields whose value no key opens (never shown as stored)


def show_reporter(store: Store, instance: str, local_ref: str, keeping: ReporterKeeping, *, actor: str) -> KeptReporter:
    """The kept fields of the reporter of ``instance``'s complaint ``local_ref``, opened; the
    audit records who saw which fields (never the values)."""
    with store.session() as s:
        complaint_id = s.exec(
            select(LinkRow.complaint_id).where(LinkRow.instance == instance, LinkRow.external_ref == local_ref)
        ).first()
        if complaint_id is None:
            raise ReporterLookupError(f"{instance} has no complaint {local_ref!r} in the store")
        row = s.get(ReporterRow, complaint_id)
        kept = {name: value for name in keeping.fields if row is not None and (value := getattr(row, name))}
        if not kept:
            raise ReporterLookupError(
                f"nothing of the reporter of {instance} complaint {local_ref!r} is kept (anonymous, filed without "
                "those fields, or taken in before privacy.reporter kept them)"
            )
        shown: dict[str, str] = {}
        unreadable: list[str] = []
        for name, value in kept.items():
            try:
                shown[name] = keeping.keys.open(value)
            except UnreadableError:
                unreadable.append(name)
        # Each entry says only what it did: ``reporter_shown`` names the fields whose values were
        # printed, ``reporter_not_shown`` those the keys did not open. An attempt that showed
        # nothing is recorded too: who tried to read a reporter, with which keys failing, is what a
        # data protection officer asks after a key went missing or was tried by someone else.
        entries = [
            ("reporter_shown", shown, f"shown for the purpose of {instance}"),
            ("reporter_not_shown", unreadable, f"not shown: no key in {keeping.keys.variable} opens them"),
        ]
        for action, names, what in entries:
            if names:
                s.add(
                    AuditRow(
                        at=store.clock(),
                        actor=actor,
                        action=action,
                        complaint_id=complaint_id,
                        detail=f"the reporter's {', '.join(names)} {what}",
                    )
                )
        return KeptReporter(complaint_id, shown, unreadable)


@dataclass
class TidyCounts:
    """What :func:`tidy_reporters` did (or, dry, would do) to one app's reporter data: counts only."""

    rows: int = 0  # reporter rows of the app read
    sealed: int = 0  # values stored in plain text, now sealed
    resealed: int = 0  # values re-sealed under the first key (rotate)
    unchanged: int = 0  # values already as they should be
    removed: int = 0  # values of fields no purpose keeps, removed (minimise)
    deleted_rows: int = 0  # rows left with nothing kept, deleted (minimise)
    unreadable: int = 0  # sealed values no key opens: left as they are
    left: int = 0  # values no purpose keeps, left for `gateway privacy minimise` (rotate)

    def describe(self) -> str:
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.resealed, "values re-encrypted with the first key"),
                (self.sealed, "plain values encrypted"),
                (self.removed, "values no purpose keeps removed"),
                (self.deleted_rows, "rows deleted"),
                (self.unchanged, "values unchanged"),
                (self.unreadable, "values no key opens"),
                (self.left, "values no purpose keeps (run `gateway privacy minimise`)"),
            )
            if n
        ]
        return f"{self.rows} rows: " + (", ".join(parts) or "nothing to do")


@dataclass
class TidyReport:
    by_app: dict[str, TidyCounts] = field(default_factory=dict)

    @property
    def unreadable(self) -> int:
        return sum(c.unreadable for c in self.by_app.values())


Mode = Literal["minimise", "rotate"]


def tidy_reporters(
    store: Store,
    keeping: Mapping[str, ReporterKeeping | None],
    *,
    mode: Mode,
    dry_run: bool = False,
    actor: str,
    progress: WalkProgress | None = None,
) -> TidyReport:
    """Bring every reporter row in line with its app's purpose (``keeping``, by local app; an
    app not named keeps nothing). ``minimise``: rows of apps that keep nothing are deleted,
    values of fields not kept removed, plain values of kept fields sealed. ``rotate``: every
    kept value sealed under the first key (plain ones too), so that the older keys can then be
    removed; nothing is deleted. A sealed value no key opens is left as it is and counted.
    In batches of :data:`BATCH` rows, one transaction each: a run stopped half way is simply
    run again. With ``dry_run`` nothing is changed."""
    report = TidyReport()
    with store.session() as s:
        total = s.exec(select(func.count()).select_from(ReporterRow)).one()
    if progress is not None:
        progress.started(total)
    last = 0
    while True:
        with store.session() as s:
            batch = s.exec(
                select(ReporterRow, ComplaintRow.local_instance)
                .join(ComplaintRow, col(ComplaintRow.id) == col(ReporterRow.complaint_id))
                .where(col(ReporterRow.complaint_id) > last)
                .order_by(col(ReporterRow.complaint_id))
                .limit(BATCH)
            ).all()
            if not batch:
                break
            for row, instance in batch:
                counts = report.by_app.setdefault(instance, TidyCounts())
                counts.rows += 1
                changes = _tidy_row(row, keeping.get(instance), mode, counts)
                if dry_run or not changes:
                    continue
                if changes == "delete":
                    s.delete(row)
                else:
                    for name, value in changes.items():
                        setattr(row, name, value)
            last = batch[-1][0].complaint_id
        if progress is not None:
            progress.advanced(len(batch))
    if not dry_run and report.by_app:
        store.audit(
            "reporters_minimised" if mode == "minimise" else "reporter_keys_rotated",
            detail="; ".join(f"{app}: {c.describe()}" for app, c in sorted(report.by_app.items())),
            actor=actor,
        )
    return report


def _tidy_row(
    row: ReporterRow, keeping: ReporterKeeping | None, mode: Mode, counts: TidyCounts
) -> dict[str, str | None] | Literal["delete"]:
    """The changes one row needs (field -> new value), or "delete"; counted in ``counts``."""
    changes: dict[str, str | None] = {}
    kept_left = 0
    for name in REPORTER_FIELDS:
        value = getattr(row, name)
        if not value:
            continue
        if keeping is None or name not in keeping.fields:
            if mode == "minimise":
                counts.removed += 1
                changes[name] = None
            else:
                counts.left += 1
            continue
        kept_left += 1
        if not looks_sealed(value):  # stored in plain text by an older version
            counts.sealed += 1
            changes[name] = keeping.keys.seal(value)
            continue
        try:
            if mode == "rotate" and not keeping.keys.sealed_by_first(value):
                changes[name] = keeping.keys.reseal(value)
                counts.resealed += 1
                continue
            if mode == "minimise":
                keeping.keys.open(value)  # counted as unreadable if no key opens it
        except UnreadableError:
            counts.unreadable += 1
            continue
        counts.unchanged += 1
    if mode == "minimise" and kept_left == 0:
        counts.deleted_rows += 1
        return "delete"
    return changes
