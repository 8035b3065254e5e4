"""What ``gateway status`` shows: per adapter instance, what flowed, what is owed,
what fails, and when each job last succeeded. Counts only, no content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select  # five columns: sqlmodel's select takes at most four
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from gateway._store._hub_reads import poll_backlog
from gateway._store._migrations import current_state
from gateway._store._reference import reference_fetched_at
from gateway._store._store import (
    CREATE_COMPLAINT,
    HUB_FOLLOW_UP,
    LOCAL_FOLLOW_UP,
    LOCAL_STATUS,
    STATUS_AS_FOLLOW_UP,
    Store,
)
from gateway._store._tables import ComplaintRow, EventRow, JobRunRow, LinkRow, OutboxRow, PeerHealthRow, QuarantineRow
from gateway._timezones import ensure_utc

# The jobs of a pass; a backfill (once) and the daily reference read do not date a pass.
PASS_JOBS = ("intake", "hub_poll", "deliver")


def _iso(value: Any) -> str | None:
    return ensure_utc(value).isoformat() if value else None


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """What one target is owed, as ``gateway status`` and the metrics show it."""

    owed: int  # pending: to be delivered
    failing: int  # pending after a failed attempt
    parked: int  # an operator must act
    needs_confirmation: int  # may have been done: an operator links or resends
    oldest_owed_at: datetime | None  # when the oldest pending one became owed


def outbox_figures(s: Session, target: str) -> OutboxFigures:
    """The outbox of ``target`` in one query."""

    def how_many(*conditions: Any) -> Any:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    pending = col(OutboxRow.state) == "pending"
    owed, failing, parked, unconfirmed, oldest = (
        s.connection()
        .execute(
            sa_select(
                how_many(pending),
                how_many(pending, col(OutboxRow.attempts) > 0),
                how_many(col(OutboxRow.state) == "parked"),
                how_many(col(OutboxRow.state) == "needs_confirmation"),
                func.min(case((pending, col(OutboxRow.created_at)))),
            ).where(col(OutboxRow.target) == target)
        )
        .one()
    )
    return OutboxFigures(int(owed), int(failing), int(parked), int(unconfirmed), ensure_utc(oldest))


def job_runs(s: Session, instance: str) -> list[JobRunRow]:
    """The jobs of ``instance`` that ever ran, by name."""
    return list(s.exec(select(JobRunRow).where(JobRunRow.instance == instance).order_by(JobRunRow.job)).all())


def status_report(store: Store, instances: dict[str, str]) -> dict[str, Any]:
    """``instances`` maps each instance name to its role (local_app or hub)."""
    out: list[dict[str, Any]] = []
    with store.session() as s:

        def count(statement: SelectOfScalar[int]) -> int:
            return s.exec(statement).one() or 0

        def outbox(target: str, *conditions: Any) -> int:
            return count(select(func.count(col(OutboxRow.id))).where(OutboxRow.target == target, *conditions))

        for name, role in sorted(instances.items()):
            row: dict[str, Any] = {"name": name, "role": role}
            if role == "local_app":
                mine = ComplaintRow.local_instance == name
                row["complaints_seen"] = count(select(func.count(col(ComplaintRow.id))).where(mine))
                row["complaints_created_at_hub"] = count(
                    select(func.count(col(LinkRow.id)))
                    .join(
                        ComplaintRow,
                        and_(
                            col(LinkRow.complaint_id) == ComplaintRow.id,
                            col(LinkRow.instance) == ComplaintRow.hub_instance,
                        ),
                    )
                    .where(mine)
                )
                row["follow_ups_to_hub"] = count(
                    select(func.count(col(OutboxRow.id)))
                    .join(ComplaintRow, col(OutboxRow.complaint_id) == ComplaintRow.id)
                    .where(mine, OutboxRow.kind == HUB_FOLLOW_UP, OutboxRow.state == "done")
                )
                row["follow_ups_from_hub"] = outbox(name, OutboxRow.kind == LOCAL_FOLLOW_UP, OutboxRow.state == "done")
                written_as_note = col(OutboxRow.last_error).startswith(STATUS_AS_FOLLOW_UP)
                # A status written as it is has no note (last_error NULL): NOT (NULL LIKE ...) is
                # NULL in SQL, so `~written_as_note` alone counted none of them ("statuses ← hub" 0).
                written_as_status = or_(col(OutboxRow.last_error).is_(None), ~written_as_note)
                row["status_changes_from_hub"] = outbox(
                    name, OutboxRow.kind == LOCAL_STATUS, OutboxRow.state == "done", written_as_status
                )
                row["status_notes_from_hub"] = outbox(
                    name, OutboxRow.kind == LOCAL_STATUS, OutboxRow.state == "done", written_as_note
                )
                row["status_changes_from_hub_already_equal"] = outbox(
                    name, OutboxRow.kind == LOCAL_STATUS, OutboxRow.state == "skipped"
                )
                row["status_changes_local"] = count(
                    select(func.count(col(EventRow.id))).where(
                        EventRow.origin == name, EventRow.kind == "status_change"
                    )
                )
            else:
                row["complaints_created"] = outbox(name, OutboxRow.kind == CREATE_COMPLAINT, OutboxRow.state == "done")
                row["complaints_open"] = count(
                    select(func.count(col(ComplaintRow.id)))
                    .join(LinkRow, and_(col(LinkRow.complaint_id) == ComplaintRow.id, col(LinkRow.instance) == name))
                    .where(col(ComplaintRow.closed_at).is_(None))
                )
                row["follow_ups_received"] = count(
                    select(func.count(col(EventRow.id))).where(EventRow.origin == name, EventRow.kind == "follow_up")
                )
                row["status_changes_received"] = count(
                    select(func.count(col(EventRow.id))).where(
                        EventRow.origin == name, EventRow.kind == "status_change"
                    )
                )
                row["follow_ups_delivered"] = outbox(name, OutboxRow.kind == HUB_FOLLOW_UP, OutboxRow.state == "done")
                due, oldest = poll_backlog(store, name)
                # Complaints whose next read is due; the oldest due time says how far behind polling is.
                row["polls_due"] = {"complaints": due, "oldest_due_since": _iso(oldest)}
                row["reference_read_at"] = _iso(reference_fetched_at(store, name, "institutions"))
            owed = outbox_figures(s, name)
            row["deliveries_owed"] = owed.owed
            row["deliveries_failing"] = owed.failing
            row["deliveries_parked"] = owed.parked
            row["deliveries_needing_confirmation"] = owed.needs_confirmation
            row["records_quarantined"] = count(
                select(func.count(col(QuarantineRow.id))).where(
                    QuarantineRow.instance == name, col(QuarantineRow.resolved_at).is_(None)
                )
            )
            health = s.get(PeerHealthRow, name)
            row["breaker"] = {
                "state": health.state if health else "closed",
                "failures": health.failures if health else 0,
                "since": _iso(health.changed_at) if health else None,
                "last_error": health.last_error if health else None,
            }
            jobs = job_runs(s, name)
            row["jobs"] = {
                j.job: {
                    "runs": j.runs,
                    "failures": j.failures,
                    "last_success": _iso(j.last_success_at),
                    "last_error": j.last_error,
                    "last_error_at": _iso(j.last_error_at),
                }
                for j in jobs
            }
            pass_jobs = [j for j in jobs if j.job in PASS_JOBS]
            successes = [ensure_utc(j.last_success_at) for j in pass_jobs if j.last_success_at is not None]
            # A pass counts as successful when every job of the instance has succeeded since.
            row["last_successful_pass"] = (
                _iso(min(successes)) if successes and len(successes) == len(pass_jobs) else None
            )
            out.append(row)
    return {"store": _safe_url(store.url), "schema_revision": current_state(store.engine).revision, "instances": out}


#: Query parameters of a store URL whose value is a secret (libpq's ``password`` and
#: ``sslpassword``, and anything a driver names so); ``passfile``, ``sslkey`` are paths, shown.
SECRET_PARAMETER = ("password", "passwd", "secret", "token")


def _safe_url(url: str) -> str:
    """The store's URL for the terminal and the dashboard: every password masked, the one after
    the user name and the ones in the query string alike."""
    from sqlalchemy.engine.url import make_url

    parsed = make_url(url)
    query = {
        key: "***" if any(word in key.lower() for word in SECRET_PARAMETER) else value
        for key, value in parsed.query.items()
    }
    # Rendering quotes the mask as %2A%2A%2A; shown as the user-info one is.
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
