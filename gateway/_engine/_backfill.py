"""The first connection of a local app with years of history: ``gateway backfill``.

A backfill is the intake's own walk (the same batches, quarantine and cursor
holds) over cursors of its own, named after its start date, so that it can run
beside the daemon and resume where it stopped. When it is done, the daemon's
intake cursors move up to where the backfill ended, so that the daemon does not
read the same history again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from gateway._engine._intake import Intake, IntakeResult
from gateway._paging import WalkProgress, walk_progress
from gateway._store import Store
from gateway._store._positions import peer_position, set_peer_position

log = structlog.get_logger("gateway.backfill")

STREAMS = ("complaints", "status_changes", "follow_ups")


def cursor_prefix(since: datetime) -> str:
    return f"backfill:{since.isoformat()}:"


@dataclass
class BackfillResult:
    intake: IntakeResult = field(default_factory=IntakeResult)
    seconds: float = 0.0
    resumed: bool = False

    @property
    def complaints_per_second(self) -> float:
        done = self.intake.complaints_new + self.intake.complaints_updated
        return done / self.seconds if self.seconds else 0.0


async def backfill(
    store: Store, intake: Intake, since: datetime, *, progress: WalkProgress | None = None
) -> BackfillResult:
    """Read everything the app changed since ``since`` into the store. A stream that fails
    raises (its cursor keeps what was read); running it again resumes."""
    prefix = cursor_prefix(since)
    db = intake.db  # off the event loop (see _async_store)
    result = BackfillResult(resumed=any([await db.cursor(intake.name, prefix + s) for s in STREAMS]))
    intake.cursor_prefix, intake.since = prefix, since
    started = time.perf_counter()
    token = walk_progress.set(progress)
    try:
        with structlog.contextvars.bound_contextvars(adapter=intake.name, job="backfill"):
            await intake.run(result.intake, stop_at_failure=True)
    finally:
        walk_progress.reset(token)
        result.seconds = time.perf_counter() - started
    for stream in STREAMS:  # hand over to the daemon's intake
        ended = await db.cursor(intake.name, prefix + stream)
        current = await db.cursor(intake.name, stream)
        position = await db.call(peer_position, db.store, intake.name, prefix + stream)
        # A peer's own position cannot be compared: the backfill's goes with its time cursor.
        if position is not None and (
            current is None
            or (ended is not None and current < ended)
            or await db.call(peer_position, db.store, intake.name, stream) is None
        ):
            await db.call(set_peer_position, db.store, intake.name, stream, position)
        if ended is not None and (current is None or current < ended):
            await db.set_cursor(intake.name, stream, ended)
    log.info(
        "backfill done",
        adapter=intake.name,
        complaints_new=result.intake.complaints_new,
        follow_ups=result.intake.follow_ups,
        status_changes=result.intake.status_changes,
        quarantined=result.intake.quarantined,
        seconds=round(result.seconds, 1),
    )
    return result
