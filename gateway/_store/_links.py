"""Pairs of ids an operator imports (``gateway links import``): complaints of a local app
that are already at the hub, typed over by hand before the gateway ran. Each is linked to
its hub id instead of being created there again; one the gateway has not taken in yet is
kept until intake reads it."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from gateway._errors import GatewayError
from gateway._store._store import CREATE_COMPLAINT, LOCAL_HUB_REF, OWED_STATES, Store
from gateway._store._tables import AuditRow, ComplaintRow, LinkImportRow, LinkRow, OutboxRow

MAX_REF = 100  # longer than any id a peer gives


class LinkImportError(GatewayError):
    """The file cannot be read as pairs of ids."""


@dataclass
class ImportReport:
    linked: int = 0  # complaints taken in already, now linked to their hub id
    waiting: int = 0  # not taken in yet: linked when intake reads them
    already: int = 0  # linked to that hub id before
    problems: list[str] = field(default_factory=list)  # "file:line: why", nothing changed for them


def read_pairs(path: Path) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(line, local id, hub id) from a CSV file of two columns; an optional header row names
    them (``local_id,hub_id``). Bad lines are returned as problems, with file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LinkImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise LinkImportError(f"{path}: cannot read: {exc.strerror}") from None
    pairs: list[tuple[int, str, str]] = []
    problems: list[str] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() in ("local_id", "local", "id_lokal", "local_ref"):
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            problems.append(f"{path}:{number}: expected two columns, local id and hub id")
            continue
        if len(cells[0]) > MAX_REF or len(cells[1]) > MAX_REF or not cells[1].replace("-", "").isalnum():
            problems.append(f"{path}:{number}: not an id (letters, digits and '-', at most {MAX_REF} characters)")
            continue
        pairs.append((number, cells[0], cells[1]))
    return pairs, problems


def import_links(
    store: Store,
    path: Path,
    local_instance: str,
    hub_instance: str,
    *,
    write_back_hub_ref: bool,
    actor: str = "operator",
) -> ImportReport:
    """Apply the pairs in ``path`` (see :func:`read_pairs`) in one transaction."""
    pairs, problems = read_pairs(path)
    report = ImportReport(problems=problems)
    now = store.clock()
    seen_local: dict[str, int] = {}
    seen_hub: dict[str, int] = {}
    with store.session() as s:
        for number, local_ref, hub_ref in pairs:
            where = f"{path}:{number}"
            if local_ref in seen_local or hub_ref in seen_hub:
                first = seen_local.get(local_ref) or seen_hub.get(hub_ref)
                report.problems.append(f"{where}: an id already paired on line {first}")
                continue
            seen_local[local_ref], seen_hub[hub_ref] = number, number
            holder = s.exec(
                select(LinkRow.complaint_id).where(LinkRow.instance == hub_instance, LinkRow.external_ref == hub_ref)
            ).first()
            complaint_id = s.exec(
                select(LinkRow.complaint_id).where(
                    LinkRow.instance == local_instance, LinkRow.external_ref == local_ref
                )
            ).first()
            if complaint_id is None:
                if holder is not None:
                    report.problems.append(f"{where}: hub id {hub_ref} is linked to complaint {holder} already")
                    continue
                row = s.get(LinkImportRow, (local_instance, local_ref))
                if row is None:
                    s.add(LinkImportRow(instance=local_instance, local_ref=local_ref, hub_ref=hub_ref, imported_at=now))
                else:
                    row.hub_ref, row.imported_at = hub_ref, now
                report.waiting += 1
                continue
            if s.exec(select(ComplaintRow.erased_at).where(ComplaintRow.id == complaint_id)).first() is not None:
                # Erased on a data subject's request: processed no further (UU PDP). A link would
                # owe the local app a write of the hub's id for a report the citizen had erased.
                report.problems.append(
                    f"{where}: complaint {complaint_id} was erased on request (gateway privacy requests); "
                    "nothing changed"
                )
                continue
            current = s.exec(
                select(LinkRow.external_ref).where(
                    LinkRow.complaint_id == complaint_id, LinkRow.instance == hub_instance
                )
            ).first()
            if current == hub_ref:
                report.already += 1
                continue
            if current is not None:
                report.problems.append(
                    f"{where}: complaint {complaint_id} is linked to hub id {current}, not {hub_ref}; nothing changed"
                )
                continue
            if holder is not None:
                report.problems.append(f"{where}: hub id {hub_ref} is linked to complaint {holder} already")
                continue
            # Locked (the row on PostgreSQL, the database on SQLite: _engine.py), as a delivery
            # locks it to mark its call started (Store.mark_sending): unlocked, a daemon's mark
            # could commit between "no create under way" and this write, and the daemon created
            # the complaint at the hub a second time. Marked done here, the row's claim is gone.
            create = s.exec(
                select(OutboxRow)
                .where(
                    OutboxRow.complaint_id == complaint_id,
                    OutboxRow.kind == CREATE_COMPLAINT,
                    OutboxRow.target == hub_instance,
                )
                .with_for_update()
            ).first()
            if create is not None and create.sending_at is not None and create.state == "pending":
                report.problems.append(
                    f"{where}: complaint {complaint_id} is being created at the hub right now; "
                    "import this line again in a minute"
                )
                continue
            s.add(LinkRow(complaint_id=complaint_id, instance=hub_instance, external_ref=hub_ref, linked_at=now))
            if create is not None and create.state in (*OWED_STATES, "skipped"):
                create.state, create.done_at, create.outcome_unknown = "done", now, False
                create.claimed_by = create.claim_expires_at = create.sending_at = None
                create.last_error = "linked to the hub by an imported pair of ids"
            if write_back_hub_ref:
                s.add(
                    OutboxRow(
                        complaint_id=complaint_id,
                        kind=LOCAL_HUB_REF,
                        target=local_instance,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
            s.add(
                AuditRow(
                    at=now,
                    actor=actor,
                    action="linked_by_import",
                    complaint_id=complaint_id,
                    detail=f"{hub_instance} id {hub_ref} (from {path.name} line {number})",
                )
            )
            report.linked += 1
    return report
