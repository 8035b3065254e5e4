"""Reading a local app: its complaints, status changes and follow-ups since the
stored cursors, into the store (and, for what the hub must get, the outbox).

Cursors are inclusive (the app's filter is ``>=``), so a record at the cursor's
second is read again and recognised as known: nothing between two passes is
skipped, and nothing is taken in twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog

from gateway._adapter import LocalApp
from gateway._engine._mapping import Route
from gateway._errors import PeerError, RecordError
from gateway._model import Complaint, FollowUp, Status, StatusChange
from gateway._store import HUB_FOLLOW_UP, Store

log = structlog.get_logger("gateway.intake")
T = TypeVar("T")


@dataclass
class IntakeResult:
    complaints_new: int = 0
    complaints_updated: int = 0
    follow_ups: int = 0
    status_changes: int = 0
    echoes: int = 0
    quarantined: int = 0
    deferred: int = 0
    notes: list[str] = field(default_factory=list)


# Passes a stream's cursor waits at a record that could not be read (it may read fine
# next time) before leaving it in quarantine for the operator and moving on.
HOLD_PASSES = 5

# Complaints taken in per transaction.
BATCH = 100


class _Cursor:
    """Where a stream's cursor may move after this pass: to the newest record read,
    but never past one that must be read again."""

    def __init__(self, since: datetime | None):
        self.since = since
        self.newest = since
        self.saved = since
        self.limit: datetime | None = None
        self.frozen = False  # a record with no usable time must be read again: stay put

    def seen(self, when: datetime) -> None:
        self.newest = max(self.newest, when) if self.newest else when

    def hold_at(self, when: datetime | None) -> None:
        if when is None:
            self.frozen = True
        else:
            self.limit = min(self.limit, when) if self.limit else when

    def target(self) -> datetime | None:
        if self.frozen:
            return None
        return min(self.newest, self.limit) if (self.newest and self.limit) else (self.limit or self.newest)


class Intake:
    """``cursor_prefix`` and ``since`` give a walk its own cursors, starting at ``since``:
    a backfill reads the app's history beside the daemon's intake, and resumes."""

    def __init__(self, store: Store, route: Route, app: LocalApp, *, cursor_prefix: str = "",
                 since: datetime | None = None):
        self.store = store
        self.route = route
        self.app = app
        self.name = route.local.name
        self.cursor_prefix = cursor_prefix
        self.since = since
        self._quarantined: set[tuple[str, str]] = set()

    async def run(self, result: IntakeResult | None = None, *, stop_at_failure: bool = False) -> IntakeResult:
        """Each stream on its own: one that fails (its cursor then stays) does not keep the
        others from moving, unless ``stop_at_failure``; the run reports the first failure."""
        result = result or IntakeResult()
        self._quarantined = self.store.quarantined_refs(self.name)  # read once: most passes have none
        failure: PeerError | None = None
        for stream in (self._complaints, self._status_changes, self._follow_ups):
            try:
                await stream(result)
            except PeerError as exc:
                if stop_at_failure:
                    raise
                log.warning("stream failed; its cursor stays", error=str(exc))
                failure = failure or exc
        if failure is not None:
            raise failure
        return result

    def _bad_record(self, stream: str, error: RecordError, cursor: _Cursor, result: IntakeResult) -> None:
        """Quarantine it; the cursor waits for it (at the last good record) for a few passes."""
        result.quarantined += 1
        sightings = self.store.quarantine(self.name, stream, error.record_ref, error.reason)
        self._quarantined.add((stream, error.record_ref or "?"))
        if sightings == 1:
            log.warning("record quarantined", stream=stream, record=error.record_ref, reason=error.reason)
        if sightings < HOLD_PASSES:
            cursor.hold_at(cursor.newest if cursor.newest != cursor.since else None)
        elif sightings == HOLD_PASSES:
            log.error("record left in quarantine for an operator", stream=stream, record=error.record_ref,
                      reason=error.reason)

    def _resolve(self, stream: str, ref: str) -> None:
        """A record read fine: if it was quarantined, it no longer is."""
        if (stream, ref) in self._quarantined:
            self.store.resolve_quarantine(self.name, stream, ref)
            self._quarantined.discard((stream, ref))

    def _cursor(self, stream: str) -> _Cursor:
        return _Cursor(self.store.cursor(self.name, self.cursor_prefix + stream) or self.since)

    def _save(self, stream: str, cursor: _Cursor) -> None:
        target = cursor.target()
        if target and target != cursor.saved:
            self.store.set_cursor(self.name, self.cursor_prefix + stream, target)
            cursor.saved = target

    async def _complaints(self, result: IntakeResult) -> None:
        """Complaints, taken in :data:`BATCH` per transaction; the cursor is saved after each
        batch, so a stopped walk resumes about where it was."""
        cursor = self._cursor("complaints")
        batch: list[tuple[Complaint, Status | None]] = []

        def flush() -> None:
            for (complaint_id, new), (record, _) in zip(
                    self.store.take_in_complaints(self.name, self.route.hub.name, batch,
                                                  forward_agencies=bool(self.route.local.spec.agencies)), batch):
                self._resolve("complaints", record.ref)
                if new:
                    result.complaints_new += 1
                    log.info("complaint taken in", complaint_id=complaint_id, local_ref=record.ref)
                else:
                    result.complaints_updated += 1
            batch.clear()
            self._save("complaints", cursor)

        async for record in self.app.complaints_since(cursor.since):
            if isinstance(record, RecordError):
                self._bad_record("complaints", record, cursor, result)
                continue
            status = self.route.local_status(record.status.code)
            if status is None:  # kept, and read again: it may be a passing glitch, or a mapping to add
                self._bad_record("statuses", RecordError(
                    self.name, "statuses", f"status {record.status.code!r} has no mapping in 'statuses'",
                    record_ref=record.ref), cursor, result)
            else:
                self._resolve("statuses", record.ref)
            batch.append((record, status))
            cursor.seen(record.updated_at)  # saved only with its batch
            if len(batch) >= BATCH:
                flush()
        flush()

    def _complaint_for(self, stream: str, record: FollowUp | StatusChange, when: datetime, cursor: _Cursor,
                       result: IntakeResult) -> int | None:
        """The gateway id of the record's complaint, or None when the record must wait (its
        complaint may be taken in by a later pass) or was quarantined."""
        complaint_id = self.store.complaint_id_for(self.name, record.complaint_ref)
        if complaint_id is not None:
            return complaint_id
        complaints_cursor = self.store.cursor(self.name, self.cursor_prefix + "complaints")
        held = self.store.quarantined(self.name, "complaints", record.complaint_ref)
        if complaints_cursor is None or when >= complaints_cursor or 0 < held < HOLD_PASSES:
            result.deferred += 1
            cursor.hold_at(when)
            return None
        reason = ("its complaint is in quarantine" if held else "its complaint is not known to the gateway")
        self._bad_record(stream, RecordError(self.name, stream, f"{reason} ({record.complaint_ref})",
                                             record_ref=record.ref), _Cursor(None), result)
        return None

    def _is_echo(self, record: FollowUp | StatusChange, complaint_id: int, result: IntakeResult) -> bool:
        """True for what the gateway itself wrote to the app (it carries our mark, or we
        already hold its id): never sent back to where it came from."""
        if record.gateway_ref:
            own = self.store.event_by_gateway_ref(record.gateway_ref)
            if own is not None:
                if own.local_ref is None:
                    self.store.set_event_ref(own.id, "local", record.ref)
                result.echoes += 1
                return True
        return self.store.event_known_by_ref(complaint_id, "local", record.ref)

    async def _status_changes(self, result: IntakeResult) -> None:
        cursor = self._cursor("status_changes")
        async for n, record in _counted(self.app.status_changes_since(cursor.since)):
            if n % BATCH == 0:
                self._save("status_changes", cursor)
            if isinstance(record, RecordError):
                self._bad_record("status_changes", record, cursor, result)
                continue
            self._resolve("status_changes", record.ref)
            complaint_id = self._complaint_for("status_changes", record, record.changed_at, cursor, result)
            if complaint_id is not None and not self._is_echo(record, complaint_id, result):
                # The hub has no call to set a status: a local change is kept in the
                # timeline (for the operator and for conflict rules), not delivered.
                if self.store.record_event(
                        complaint_id, kind="status_change", origin=self.name, origin_ref=record.ref, side="local",
                        occurred_at=record.changed_at, raw_status=(record.status.code, record.status.name),
                        status=self.route.local_status(record.status.code)) is not None:
                    result.status_changes += 1
            cursor.seen(record.changed_at)
        self._save("status_changes", cursor)

    async def _follow_ups(self, result: IntakeResult) -> None:
        cursor = self._cursor("follow_ups")
        async for n, record in _counted(self.app.follow_ups_since(cursor.since)):
            if n % BATCH == 0:
                self._save("follow_ups", cursor)
            if isinstance(record, RecordError):
                self._bad_record("follow_ups", record, cursor, result)
                continue
            self._resolve("follow_ups", record.ref)
            complaint_id = self._complaint_for("follow_ups", record, record.created_at, cursor, result)
            if complaint_id is not None and not self._is_echo(record, complaint_id, result):
                event_id = self.store.record_event(
                    complaint_id, kind="follow_up", origin=self.name, origin_ref=record.ref, side="local",
                    occurred_at=record.created_at, content=record.content, author=record.author,
                    deliver=(HUB_FOLLOW_UP, self.route.hub.name))
                if event_id is not None:
                    result.follow_ups += 1
                    log.info("local follow-up owed to hub", complaint_id=complaint_id, event_id=event_id)
            cursor.seen(record.created_at)
        self._save("follow_ups", cursor)


async def _counted(stream: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    n = 0
    async for item in stream:
        n += 1
        yield n, item
