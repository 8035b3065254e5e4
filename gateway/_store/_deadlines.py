"""The store's side of working-day deadlines: each complaint's deadline per tier
(``complaint_deadline``), computed from the route's :class:`~gateway._deadlines.DeadlineRules`,
computed again when the rules change (their fingerprint differs), and settled (met or missed)
from the complaint's hub timeline: what the hub showed, at the hub's time.

When a tier is met, from the timeline (origin: the hub):

- ``verify``: a status other than unverified (verified, forwarded, on hold, in progress, done,
  rejected, archived), or a follow-up from the hub;
- ``answer``: a follow-up from the hub (the agency's), or in progress, done, rejected, archived;
- ``close``: done, rejected or archived (a closed complaint owes nothing more).

A later step meets the earlier ones too (an answer shows the complaint was forwarded).

An erased or withdrawn complaint (``erased_at``) owes nothing more and has no open deadline: the hub
is not read again, so a tier not met then would stay open for good. Its rows keep what they held at
the erasure (a tier not met keeps no outcome) and are not computed again. Every query of open
deadlines leaves them out with :func:`_owed`, on the complaint's own marker rather than a mark on
the rows, so that it also holds for complaints erased by an earlier version of the gateway, and for
one erased while another daemon's refresh was writing its rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from gateway._deadlines import TIERS, DeadlineRules, Tier
from gateway._logging import scrub_text
from gateway._model import Status
from gateway._store._store import CREATE_COMPLAINT, OutboxState, Store
from gateway._store._tables import ComplaintDeadlineRow, ComplaintRow, EventRow, LinkRow, OutboxRow
from gateway._timezones import ensure_utc

MET, MISSED = "met", "missed"
#: What ``deadline_counts`` and ``gateway deadlines`` show for a complaint without an agency.
NO_AGENCY = "(none)"

_VERIFIED = frozenset(s.value for s in Status if s is not Status.UNVERIFIED)
_ANSWERED = frozenset(s.value for s in (Status.IN_PROGRESS, Status.DONE, Status.REJECTED, Status.ARCHIVED))
_CLOSED = frozenset(s.value for s in Status if s.is_closed)
# Complaints computed per transaction when the rules change (a store of 100,000 complaints is
# computed again in steps, not in one transaction that holds its rows for minutes).
CHUNK = 1000


@dataclass(frozen=True)
class DeadlineCount:
    """Open deadlines of one local app's agency and tier: due within the window, and overdue."""

    instance: str
    agency: str
    tier: str
    due_soon: int
    overdue: int


#: ``deadline_counts`` below, or a stand-in for it (the metrics and the dashboard take one).
DeadlineCounter = Callable[["Store", datetime, timedelta], Sequence[DeadlineCount]]


@dataclass(frozen=True)
class DeadlineItem:
    """One open (or, with ``--over``, overdue) deadline, without personal data."""

    gateway_ref: str
    local_ref: str | None
    instance: str
    agency: str
    tier: str
    due_at: datetime
    state: str  # overdue | due soon | open


def reached(timeline: Iterable[tuple[str, str | None, datetime]]) -> dict[Tier, datetime]:
    """When each tier was met, from a complaint's hub events (kind, canonical status, hub time)."""
    first: dict[Tier, datetime] = {}

    def meet(tier: Tier, at: datetime) -> None:
        if tier not in first or at < first[tier]:
            first[tier] = at

    for kind, status, at in timeline:
        at = ensure_utc(at)
        if kind == "follow_up":
            meet(Tier.ANSWER, at)
        elif status in _CLOSED:
            meet(Tier.CLOSE, at)
        elif status in _ANSWERED:
            meet(Tier.ANSWER, at)
        elif status in _VERIFIED:
            meet(Tier.VERIFY, at)
    # A later step meets the ones before it, at the latest then.
    for later, earlier in ((Tier.CLOSE, Tier.ANSWER), (Tier.ANSWER, Tier.VERIFY)):
        if later in first:
            meet(earlier, first[later])
    return first


def _settle(
    s: Session,
    complaint_id: int,
    classification: str,
    filed_at: datetime,
    rules: DeadlineRules,
    have: dict[Tier, ComplaintDeadlineRow],
    met: dict[Tier, datetime],
    now: datetime,
) -> None:
    """Write a complaint's three deadlines: due times by the rules (each tier from the one
    before), met times from its timeline, and each met one's outcome."""
    fingerprint = rules.fingerprint(classification)
    for tier, (start, due) in rules.schedule(classification, filed_at, met).items():
        row = have.get(tier)
        if row is None:
            row = ComplaintDeadlineRow(
                complaint_id=complaint_id,
                tier=tier.value,
                starts_at=start,
                due_at=due,
                rules=fingerprint,
                computed_at=now,
            )
        at = met.get(tier)
        unchanged = (
            row.id is not None
            and ensure_utc(row.due_at) == due
            and ensure_utc(row.starts_at) == start
            and ensure_utc(row.met_at) == at
            and row.rules == fingerprint
        )
        if unchanged:
            continue
        row.starts_at, row.due_at, row.met_at, row.rules, row.computed_at = start, due, at, fingerprint, now
        row.outcome = None if at is None else (MET if at <= due else MISSED)
        s.add(row)


def _rows_of(s: Session, ids: Sequence[int], *, fresh: bool = False) -> dict[int, dict[Tier, ComplaintDeadlineRow]]:
    """``fresh``: as the database holds them now, also for rows the session loaded before."""
    rows: dict[int, dict[Tier, ComplaintDeadlineRow]] = defaultdict(dict)
    query = _DEADLINES_OF.execution_options(populate_existing=True) if fresh else _DEADLINES_OF
    for row in s.exec(query, params={"ids": list(ids)}):
        rows[row.complaint_id][Tier(row.tier)] = row
    return rows


def _timelines(s: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, str | None, datetime]]]:
    """The hub events of these complaints (origin: the complaint's hub)."""
    out: dict[int, list[tuple[str, str | None, datetime]]] = defaultdict(list)
    found = s.exec(
        select(EventRow.complaint_id, EventRow.kind, EventRow.status, EventRow.occurred_at)
        .join(ComplaintRow, col(ComplaintRow.id) == col(EventRow.complaint_id))
        .where(col(EventRow.complaint_id).in_(ids), col(EventRow.origin) == col(ComplaintRow.hub_instance))
    ).all()
    for complaint_id, kind, status, at in found:
        out[complaint_id].append((kind, status, at))
    return out


def settle_deadlines(s: Session, complaint: ComplaintRow, rules: DeadlineRules, now: datetime) -> None:
    """Within a hub read's transaction (``apply_hub_read``), after its events were added: the
    complaint's deadlines brought up to its timeline (met or missed, and the tiers after a met one
    counted from it)."""
    complaint_id = complaint.id
    assert complaint_id is not None  # a stored row
    have = _rows_of(s, [complaint_id]).get(complaint_id, {})
    met = reached(_timelines(s, [complaint_id]).get(complaint_id, []))
    _settle(s, complaint_id, complaint.classification, ensure_utc(complaint.local_created_at), rules, have, met, now)


def _owed() -> Any:
    """The complaint still owes its deadlines: not erased or withdrawn (see the module's doc)."""
    return col(ComplaintRow.erased_at).is_(None)


def open_deadlines(s: Session, complaint_id: int) -> tuple[datetime, ...]:
    """The due time of the complaint's current tier (its earliest not met), or nothing when every
    tier is met or the complaint was erased: the poll reads it near that deadline. The later tiers'
    deadlines are provisional until it is met (see :func:`_current`)."""
    found = s.exec(
        select(ComplaintDeadlineRow.due_at)
        .join(ComplaintRow, col(ComplaintRow.id) == col(ComplaintDeadlineRow.complaint_id))
        .where(ComplaintDeadlineRow.complaint_id == complaint_id, col(ComplaintDeadlineRow.met_at).is_(None), _owed())
        .order_by(_tier_rank(col(ComplaintDeadlineRow.tier)))
        .limit(1)
    ).all()
    return tuple(ensure_utc(d) for d in found)


def refresh_deadlines(
    store: Store, local_instance: str, rules: DeadlineRules, complaint_ids: Sequence[int] | None = None
) -> int:
    """Compute the deadlines of a local app's complaints (or of ``complaint_ids`` only) that have
    none yet or were computed by other rules, and drop those of complaints kept off the hub;
    returns how many complaints changed.
    Each chunk is read and written in one transaction; a daemon that wrote the same rows meanwhile
    makes the chunk run once more (and find them)."""
    with store.session() as s:
        if complaint_ids is not None:  # after each batch of an intake: a statement built once
            found = s.connection().execute(_OF_INSTANCE, {"instance": local_instance, "ids": list(complaint_ids)})
            ids = [i for i in found.scalars() if i is not None]
        else:
            query = select(ComplaintRow.id).where(ComplaintRow.local_instance == local_instance)
            ids = [i for i in s.exec(query.order_by(col(ComplaintRow.id))).all() if i is not None]
    done = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        try:
            done += _refresh_chunk(store, chunk, rules)
        except IntegrityError:
            done += _refresh_chunk(store, chunk, rules)
    return done


def _off_the_hub(s: Session, ids: Sequence[int]) -> set[int]:
    """Complaints the route keeps off the hub (their create ``skipped``: closed ones a backfill read,
    say): the hub owes them nothing, so they have no deadlines (until one is reopened and created)."""
    # Kind and state are compared here, not in the query: with them in it, SQLite chose the index on
    # (state, ...) and read every skipped create of the store for each chunk (a backfill's cost then
    # grew with the square of its size), where the complaints' own few rows are all it needs.
    return {
        cid
        for cid, kind, state in s.connection().execute(_CREATES, {"ids": list(ids)})
        if kind == CREATE_COMPLAINT and state == OutboxState.SKIPPED
    }


_CREATES = sa.select(col(OutboxRow.complaint_id), col(OutboxRow.kind), col(OutboxRow.state)).where(
    col(OutboxRow.complaint_id).in_(sa.bindparam("ids", expanding=True))
)


def _refresh_chunk(store: Store, ids: Sequence[int], rules: DeadlineRules) -> int:
    now = store.clock()
    done = 0
    with store.session() as s:
        rows = _rows_of(s, ids)
        off = _off_the_hub(s, ids)
        for complaint_id in off & set(rows):
            for row in rows.pop(complaint_id).values():
                s.delete(row)
            done += 1
        # Only what the rules need, of only the complaints that can have deadlines: a backfill's
        # are mostly closed ones kept off the hub, and loading each as a whole row cost more than
        # the rest of the refresh.
        on = [i for i in ids if i not in off]
        complaints: list[tuple[int, str, datetime]] = (
            [(c, kind, filed) for c, kind, filed in s.connection().execute(_FOR_RULES, {"ids": on}) if c is not None]
            if on
            else []
        )
        stale = [
            (cid, classification, filed)
            for cid, classification, filed in complaints
            if len(have := rows.get(cid, {})) < len(TIERS)
            or any(r.rules != rules.fingerprint(classification) for r in have.values())
        ]
        if not stale:
            return 0
        # The complaints to compute, locked (as a hub read locks its complaint, apply_hub_read) and
        # their rows and timelines read again under the lock: read before it, a hub read that met a
        # tier could commit between this read and this write, which then counted the later tiers
        # as if it had not (the answer deadline days late until the complaint's next read).
        stale_ids = [cid for cid, _, _ in stale]
        s.connection().execute(_LOCKED, {"ids": stale_ids})
        rows = _rows_of(s, stale_ids, fresh=True)
        timelines = _timelines(s, stale_ids)
        for cid, classification, filed in stale:
            met = reached(timelines.get(cid, []))
            _settle(s, cid, classification, ensure_utc(filed), rules, rows.get(cid, {}), met, now)
            done += 1
    return done


# Built once: building a select with an IN list cost SQLAlchemy more than SQLite took to run it.
_OF_INSTANCE = (
    sa.select(col(ComplaintRow.id))
    .where(
        col(ComplaintRow.local_instance) == sa.bindparam("instance"),
        col(ComplaintRow.id).in_(sa.bindparam("ids", expanding=True)),
    )
    .order_by(col(ComplaintRow.id))
)
# (NO KEY: a complaint's events and outbox rows can still be inserted meanwhile.)
_LOCKED = (
    sa.select(col(ComplaintRow.id))
    .where(col(ComplaintRow.id).in_(sa.bindparam("ids", expanding=True)))
    .order_by(col(ComplaintRow.id))
    .with_for_update(key_share=True)
)
_DEADLINES_OF = select(ComplaintDeadlineRow).where(
    col(ComplaintDeadlineRow.complaint_id).in_(sa.bindparam("ids", expanding=True))
)
# Only complaints that still owe deadlines: an erased one's rows stay as they were at the erasure.
_FOR_RULES = sa.select(
    col(ComplaintRow.id), col(ComplaintRow.classification), col(ComplaintRow.local_created_at)
).where(col(ComplaintRow.id).in_(sa.bindparam("ids", expanding=True)), _owed())


def _tier_rank(tier: Any) -> Any:
    return sa.case(*((tier == t.value, rank) for rank, t in enumerate(TIERS)), else_=len(TIERS))


def _current() -> Any:
    """Only the tier a complaint is at counts as open: its earliest not met. The deadlines after it
    count from it and are provisional until it is met, so a complaint not verified yet is late at
    ``verify`` alone, not also at ``answer`` (its agency has not received it)."""
    earlier = aliased(ComplaintDeadlineRow)
    return ~sa.exists().where(
        col(earlier.complaint_id) == col(ComplaintDeadlineRow.complaint_id),
        col(earlier.met_at).is_(None),
        _tier_rank(col(earlier.tier)) < _tier_rank(col(ComplaintDeadlineRow.tier)),
    )


def _shown(agency: str | None) -> str:
    """A complaint's agency as the counts and lists give it (to the dashboard, the CLI, the
    metrics): the local app's own text, masked as the log masks it (a review found a name and
    phone number typed into it)."""
    return scrub_text(agency) if agency else NO_AGENCY


def deadline_counts(store: Store, now: datetime, due_within: timedelta) -> list[DeadlineCount]:
    """Open deadlines (each complaint's current tier; an erased one has none) per local app, agency
    and tier: ``due_soon`` (due from ``now`` to ``now + due_within``) and ``overdue`` (due before
    ``now``, not met). Groups with neither are left out."""
    soon_until = now + due_within
    due = col(ComplaintDeadlineRow.due_at)
    with store.session() as s:
        # (sqlalchemy's select: sqlmodel's is typed for up to four columns)
        found = s.execute(
            sa.select(
                col(ComplaintRow.local_instance),
                col(ComplaintRow.agency),
                col(ComplaintDeadlineRow.tier),
                func.count().filter((due >= now) & (due < soon_until)),
                func.count().filter(due < now),
            )
            .join(ComplaintRow, col(ComplaintRow.id) == col(ComplaintDeadlineRow.complaint_id))
            .where(col(ComplaintDeadlineRow.met_at).is_(None), due < soon_until, _owed(), _current())
            .group_by(col(ComplaintRow.local_instance), col(ComplaintRow.agency), col(ComplaintDeadlineRow.tier))
        ).all()
    counts = [
        DeadlineCount(instance, _shown(agency), tier, int(soon or 0), int(over or 0))
        for instance, agency, tier, soon, over in found
    ]
    order = {t.value: i for i, t in enumerate(TIERS)}
    return sorted(counts, key=lambda c: (c.instance, c.agency, order.get(c.tier, len(order))))


def list_deadlines(
    store: Store,
    now: datetime,
    *,
    due_within: timedelta | None = None,
    over: bool = False,
    soon: timedelta = timedelta(hours=48),
    limit: int = 1000,
) -> list[DeadlineItem]:
    """Open deadlines (each complaint's current tier), earliest due first: all of them, those due
    within ``due_within`` from ``now`` (not yet overdue), or (``over``) the overdue ones; each "due
    soon" within ``soon``. Gateway and local references only."""
    due = col(ComplaintDeadlineRow.due_at)
    local_link = (col(LinkRow.complaint_id) == col(ComplaintRow.id)) & (
        col(LinkRow.instance) == col(ComplaintRow.local_instance)
    )
    query = (
        sa.select(
            col(ComplaintRow.gateway_ref),
            col(LinkRow.external_ref),
            col(ComplaintRow.local_instance),
            col(ComplaintRow.agency),
            col(ComplaintDeadlineRow.tier),
            col(ComplaintDeadlineRow.due_at),
        )
        .join(ComplaintRow, col(ComplaintRow.id) == col(ComplaintDeadlineRow.complaint_id))
        .outerjoin(LinkRow, local_link)
        .where(col(ComplaintDeadlineRow.met_at).is_(None), _owed(), _current())
    )
    if over:
        query = query.where(due < now)
    elif due_within is not None:
        query = query.where(due >= now, due < now + due_within)
    soon_until = now + max(soon, due_within or timedelta(0))
    with store.session() as s:
        found = s.execute(query.order_by(due, col(ComplaintRow.id)).limit(limit)).all()
    items = []
    for gateway_ref, local_ref, instance, agency, tier, due_at in found:
        due_at = ensure_utc(due_at)
        state = "overdue" if due_at < now else "due soon" if due_at < soon_until else "open"
        items.append(DeadlineItem(gateway_ref, local_ref, instance, _shown(agency), tier, due_at, state))
    return items
