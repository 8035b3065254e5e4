"""Reading a local app: its complaints, status changes and follow-ups since the
stored cursors, into the store (and, for what the hub must get, the outbox).

Cursors are inclusive (the app's filter is ``>=``), so a record at the cursor's
second is read again and recognised as known: nothing between two passes is
skipped, and nothing is taken in twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog

from gateway._adapter import LocalApp
from gateway._engine._mapping import Route
from gateway._errors import RecordError
from gateway._model import FollowUp, StatusChange
from gateway._store import HUB_FOLLOW_UP, Store

log = structlog.get_logger("gateway.intake")


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


class Intake:
    def __init__(self, store: Store, route: Route, app: LocalApp):
        self.store = store
        self.route = route
        self.app = app
        self.name = route.local.name

    async def run(self) -> IntakeResult:
        result = IntakeResult()
        await self._complaints(result)
        await self._status_changes(result)
        await self._follow_ups(result)
        return result

    def _quarantine(self, stream: str, error: RecordError, result: IntakeResult) -> None:
        result.quarantined += 1
        if self.store.quarantine(self.name, stream, error.record_ref, error.reason):
            log.warning("record quarantined", stream=stream, record=error.record_ref, reason=error.reason)

    async def _complaints(self, result: IntakeResult) -> None:
        since = self.store.cursor(self.name, "complaints")
        newest = since
        async for record in self.app.complaints_since(since):
            if isinstance(record, RecordError):
                self._quarantine("complaints", record, result)
                continue
            status = self.route.local_status(record.status.code)
            if status is None:
                self.store.quarantine(self.name, "statuses", record.ref,
                                      f"status {record.status.code!r} has no mapping in 'statuses'")
            complaint_id, new = self.store.take_in_complaint(self.name, self.route.hub.name, record, status)
            if new:
                result.complaints_new += 1
                log.info("complaint taken in", complaint_id=complaint_id, local_ref=record.ref)
            else:
                result.complaints_updated += 1
            newest = max(newest, record.updated_at) if newest else record.updated_at
        if newest and newest != since:
            self.store.set_cursor(self.name, "complaints", newest)

    def _complaint_for(self, stream: str, record: FollowUp | StatusChange, when: datetime,
                       result: IntakeResult) -> int | None | bool:
        """The gateway id of the record's complaint; False when the record must wait
        (its complaint may be taken in by the next pass); None when quarantined."""
        complaint_id = self.store.complaint_id_for(self.name, record.complaint_ref)
        if complaint_id is not None:
            return complaint_id
        complaints_cursor = self.store.cursor(self.name, "complaints")
        if complaints_cursor is None or when >= complaints_cursor:
            result.deferred += 1
            return False
        self._quarantine(stream, RecordError(self.name, stream, f"complaint {record.complaint_ref} is not "
                                             "known to the gateway", record_ref=record.ref), result)
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
        if self.store.event_known_by_ref(complaint_id, "local", record.ref):
            return True
        return False

    async def _status_changes(self, result: IntakeResult) -> None:
        since = self.store.cursor(self.name, "status_changes")
        newest, hold = since, None
        async for record in self.app.status_changes_since(since):
            if isinstance(record, RecordError):
                self._quarantine("status_changes", record, result)
                continue
            complaint_id = self._complaint_for("status_changes", record, record.changed_at, result)
            if complaint_id is False:
                hold = min(hold, record.changed_at) if hold else record.changed_at
                continue
            if complaint_id is not None and not self._is_echo(record, complaint_id, result):
                # The hub has no call to set a status: a local change is kept in the
                # timeline (for the operator and for conflict rules), not delivered.
                if self.store.record_event(
                        complaint_id, kind="status_change", origin=self.name, origin_ref=record.ref, side="local",
                        occurred_at=record.changed_at, raw_status=(record.status.code, record.status.name),
                        status=self.route.local_status(record.status.code)) is not None:
                    result.status_changes += 1
            newest = max(newest, record.changed_at) if newest else record.changed_at
        self._advance("status_changes", since, newest, hold)

    async def _follow_ups(self, result: IntakeResult) -> None:
        since = self.store.cursor(self.name, "follow_ups")
        newest, hold = since, None
        async for record in self.app.follow_ups_since(since):
            if isinstance(record, RecordError):
                self._quarantine("follow_ups", record, result)
                continue
            complaint_id = self._complaint_for("follow_ups", record, record.created_at, result)
            if complaint_id is False:
                hold = min(hold, record.created_at) if hold else record.created_at
                continue
            if complaint_id is not None and not self._is_echo(record, complaint_id, result):
                event_id = self.store.record_event(
                    complaint_id, kind="follow_up", origin=self.name, origin_ref=record.ref, side="local",
                    occurred_at=record.created_at, content=record.content, author=record.author,
                    deliver=(HUB_FOLLOW_UP, self.route.hub.name))
                if event_id is not None:
                    result.follow_ups += 1
                    log.info("local follow-up owed to hub", complaint_id=complaint_id, event_id=event_id)
            newest = max(newest, record.created_at) if newest else record.created_at
        self._advance("follow_ups", since, newest, hold)

    def _advance(self, stream: str, since: datetime | None, newest: datetime | None, hold: datetime | None) -> None:
        target = min(newest, hold) if (newest and hold) else (hold or newest)
        if target and target != since:
            self.store.set_cursor(self.name, stream, target)
