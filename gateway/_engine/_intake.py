"""Reading a local app: its complaints, status changes and follow-ups since the
stored cursors, into the store (and, for what the hub must get, the outbox).

Cursors are inclusive (the app's filter is ``>=``), so a record at the cursor's
second is read again and recognised as known: nothing between two passes is
skipped, and nothing is taken in twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError

from gateway._adapter import LocalApp
from gateway._capabilities import Capability
from gateway._engine._async_store import AsyncStore
from gateway._engine._mapping import Route
from gateway._errors import PeerError, RecordError
from gateway._model import Complaint, FollowUp, Status, StatusChange
from gateway._position import PeerPosition, stored_positions
from gateway._record_values import value_problem
from gateway._sanitize import cleaned
from gateway._store import STORE_REFUSALS, DeliveryKind, EventKind, Store, refused_for_its_data
from gateway._store._current_state import status_changes_seen
from gateway._store._deadlines import refresh_deadlines
from gateway._store._local_reads import LocalEvent, record_local_events
from gateway._store._positions import peer_position, set_peer_position

# The per-record lines of a batch go through one logger bound for the batch (``log.bind()``, with
# the configuration of that moment, as each line's own would have). Called on ``log``, each line
# had structlog assemble a new logger first: 16 us, about as much as rendering and writing it.
log = structlog.get_logger("gateway.intake")

R = TypeVar("R")


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
# How far past the store's clock a record's time may lie and still move its stream's cursor.
FUTURE_TOLERANCE = timedelta(days=1)

# Complaints taken in per transaction.
BATCH = 100
# Status changes and follow-ups recorded per transaction. They are most of a history (three for
# every complaint), and each commit writes every index page its batch touched: at 100 the
# commits were among the largest costs of a backfill.
EVENT_BATCH = 500


class _Cursor:
    """Where a stream's cursor may move after this pass: to the newest record read,
    but never past one that must be read again."""

    def __init__(self, since: datetime | None, horizon: datetime | None = None):
        self.since = since
        self.newest = since
        self.saved = since
        self.limit: datetime | None = None
        self.frozen = False  # a record with no usable time must be read again: stay put
        # A record dated after the horizon (a typo of a year, a peer's clock far ahead) is taken
        # in, but the cursor does not follow it: else every record filed after it, today, would
        # lie behind the cursor and never be read.
        self.horizon = horizon
        self.ahead = 0

    def seen(self, when: datetime) -> None:
        if self.horizon is not None and when > self.horizon:
            self.ahead += 1
            return
        self.newest = max(self.newest, when) if self.newest else when

    def hold_at(self, when: datetime | None) -> None:
        if when is None:
            self.frozen = True
        else:
            self.limit = min(self.limit, when) if self.limit else when

    @property
    def holding(self) -> bool:
        """A record of this pass must be read again: nothing after it may be passed for good."""
        return self.frozen or self.limit is not None

    def target(self) -> datetime | None:
        if self.frozen:
            return None
        return min(self.newest, self.limit) if (self.newest and self.limit) else (self.limit or self.newest)


class Intake:
    """``cursor_prefix`` and ``since`` give a walk its own cursors, starting at ``since``:
    a backfill reads the app's history beside the daemon's intake, and resumes."""

    def __init__(
        self,
        store: Store,
        route: Route,
        app: LocalApp,
        *,
        cursor_prefix: str = "",
        since: datetime | None = None,
        db: AsyncStore | None = None,
    ):
        self.store = store
        # The store off the event loop: a batch's writes (flush) and a bad record's quarantine
        # run in the engine's store threads; without an engine, inline.
        self.db = db or AsyncStore(store, workers=0)
        self.route = route
        self.app = app
        self.name = route.local.name
        self.cursor_prefix = cursor_prefix
        self.since = since
        self._read_fine: dict[str, set[str]] = {}

    async def run(self, result: IntakeResult | None = None, *, stop_at_failure: bool = False) -> IntakeResult:
        """Each stream on its own: one that fails (its cursor then stays) does not keep the
        others from moving, unless ``stop_at_failure``; the run reports the first failure."""
        result = result or IntakeResult()
        self._read_fine = {}
        failure: PeerError | None = None
        streams = [self._complaints, self._status_changes, self._follow_ups]
        if not self.app.supports(Capability.STATUS_HISTORY):  # its changes are seen in the complaints stream
            streams.remove(self._status_changes)
        for stream in streams:
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

    # The synchronous methods below touch the store: the async ones call them through self.db.
    # They run in a store thread while the run's task waits, so nothing else uses the cursor,
    # the result or _read_fine meanwhile.

    def _bad_record(self, stream: str, error: RecordError, cursor: _Cursor, result: IntakeResult) -> None:
        """Quarantine it; the cursor waits for it (at the last good record) for a few passes."""
        result.quarantined += 1
        sightings = self.store.quarantine(self.name, stream, error.record_ref, error.reason)
        self._read_fine.get(stream, set()).discard(error.record_ref or "?")
        if sightings == 1:
            log.warning("record quarantined", stream=stream, record=error.record_ref, reason=error.reason)
        if sightings < HOLD_PASSES:
            cursor.hold_at(cursor.newest if cursor.newest != cursor.since else None)
        elif sightings == HOLD_PASSES:
            log.error(
                "record left in quarantine for an operator", stream=stream, record=error.record_ref, reason=error.reason
            )

    def _resolve(self, stream: str, ref: str) -> None:
        """A record read fine: if it was quarantined, by this daemon or by another one sharing the
        store, it no longer is (written with the batch, see :meth:`_resolve_read_fine`)."""
        self._read_fine.setdefault(stream, set()).add(ref)

    def _resolve_read_fine(self) -> None:
        """One statement per stream for the records of a batch that read fine. Not only those this
        daemon saw quarantined at the start of its run: another daemon may have quarantined one since."""
        for stream, refs in self._read_fine.items():
            if refs:
                self.store.resolve_quarantine_many(self.name, stream, refs)
        self._read_fine.clear()

    def _cursor(self, stream: str) -> _Cursor:
        return _Cursor(
            self.store.cursor(self.name, self.cursor_prefix + stream) or self.since,
            horizon=self.store.clock() + FUTURE_TOLERANCE,
        )

    def _save(self, stream: str, cursor: _Cursor) -> None:
        if cursor.ahead:
            log.warning(
                "records dated in the future: taken in, but the cursor does not follow them "
                "(they are read again at every pass until their time is near)",
                stream=stream,
                records=cursor.ahead,
                tolerance_hours=FUTURE_TOLERANCE.total_seconds() / 3600,
            )
            cursor.ahead = 0
        target = cursor.target()
        if target and target != cursor.saved:
            self.store.set_cursor(self.name, self.cursor_prefix + stream, target)
            cursor.saved = target

    @contextmanager
    def _positioned(self, stream: str, position: str | None) -> Iterator[None]:
        """While the stream is read, ``LocalApp.position(stream)`` answers its stored position."""
        known = dict(stored_positions.get() or {})
        if position is None:
            known.pop(stream, None)
        else:
            known[stream] = position
        token = stored_positions.set(known)
        try:
            yield
        finally:
            stored_positions.reset(token)

    def _position(self, stream: str) -> str | None:
        return peer_position(self.store, self.name, self.cursor_prefix + stream)

    def _save_position(self, stream: str, position: PeerPosition, cursor: _Cursor) -> None:
        """Called once the records before ``position`` are stored. Not while a record of this
        pass waits to be read again: the position is kept where it was, before that record."""
        if cursor.holding:
            return
        set_peer_position(self.store, self.name, self.cursor_prefix + stream, position.value)

    async def _complaints(self, result: IntakeResult) -> None:
        """Complaints, taken in :data:`BATCH` per transaction; the cursor is saved after each
        batch, so a stopped walk resumes about where it was."""
        cursor = await self.db.call(self._cursor, "complaints")
        batch: list[tuple[Complaint, Status | None]] = []

        def take_in(items: list[tuple[Complaint, Status | None]]) -> list[tuple[int, bool] | None]:
            if not self.app.supports(Capability.STATUS_HISTORY):
                # Recorded before the complaints' new status is: a pass stopped in between sees
                # the same change again (and knows it by its ref), rather than none.
                self._record_status_changes_seen(items, result)
            now = self.store.clock()
            not_at_hub = {
                record.ref: reason
                for record, status in items
                if (reason := self.route.create_at_hub(record, status, now)) is not None
            }
            taken = self.store.take_in_complaints(
                self.name,
                self.route.hub.name,
                items,
                forward_agencies=bool(self.route.local.spec.agencies),
                not_at_hub=not_at_hub,
                write_back_hub_ref=self.app.supports(Capability.WRITE_HUB_REF),
                reporters=self.route.local.reporter_keeping,  # by default None: no reporter is kept
            )
            # Their deadlines, computed once (a known complaint's only if its classification now
            # falls under other rules): a stop in between leaves them to the engine's next refresh.
            refresh_deadlines(self.store, self.name, self.route.deadlines, [t[0] for t in taken if t is not None])
            return taken

        def flush() -> None:
            batch_log = log.bind()  # see the note at ``log``
            for taken, (record, _) in self._stored("complaints", batch, take_in, cursor, result):
                self._resolve("complaints", record.ref)
                if taken is None:  # erased on request (or asked to be before it was read): not taken in
                    continue
                complaint_id, new = taken
                if new:
                    result.complaints_new += 1
                    batch_log.info("complaint taken in", complaint_id=complaint_id, local_ref=record.ref)
                else:
                    result.complaints_updated += 1
            batch.clear()
            self._resolve_read_fine()
            self._save("complaints", cursor)

        with self._positioned("complaints", await self.db.call(self._position, "complaints")):
            async for raw in self.app.complaints_since(cursor.since):
                if isinstance(raw, PeerPosition):
                    await self.db.call(flush)
                    await self.db.call(self._save_position, "complaints", raw, cursor)
                    continue
                await self._complaint(raw, batch, cursor, result, flush)
        await self.db.call(flush)

    async def _complaint(
        self,
        raw: Any,
        batch: list[tuple[Complaint, Status | None]],
        cursor: _Cursor,
        result: IntakeResult,
        flush: Callable[[], None],
    ) -> None:
        """One record of the complaints stream into the batch (flushed when full)."""
        record = await self._checked("complaints", raw, Complaint, cursor, result)
        if record is None:
            return
        status = self.route.local_status(record.status.code)
        if status is None:  # kept, and read again: it may be a passing glitch, or a mapping to add
            await self.db.call(
                self._bad_record,
                "statuses",
                RecordError(
                    self.name,
                    "statuses",
                    f"status {record.status.code!r} has no mapping in 'statuses'",
                    record_ref=record.ref,
                ),
                cursor,
                result,
            )
        else:
            self._resolve("statuses", record.ref)
        batch.append((record, status))
        cursor.seen(record.updated_at)  # saved only with its batch
        if len(batch) >= BATCH:
            await self.db.call(flush)

    def _record_status_changes_seen(self, items: list[tuple[Complaint, Status | None]], result: IntakeResult) -> None:
        """For an app without status history: a change of status the complaints show, kept in
        the timeline like one its status stream would have given (not delivered: see
        :meth:`_status_changes`)."""
        events = status_changes_seen(self.store, self.name, items)
        if not events:
            return
        self._record_events(events)
        batch_log = log.bind()  # see the note at ``log``
        for event in events:
            if event.outcome == "recorded":
                result.status_changes += 1
                batch_log.info("local status change seen", complaint_id=event.complaint_id, event_id=event.event_id)

    def _record_events(self, events: list[LocalEvent]) -> None:
        try:
            record_local_events(self.store, self.name, events)
        except IntegrityError:  # another daemon recorded one meanwhile: one by one
            for event in events:
                try:
                    record_local_events(self.store, self.name, [event])
                except IntegrityError:
                    event.outcome = "known"

    async def _checked(
        self, stream: str, record: Any, kind: type[R], cursor: _Cursor, result: IntakeResult
    ) -> R | None:
        """A record of the stream as it may be taken in: with texts the store can hold (see
        ``_sanitize``); None (quarantined with its reason) for a RecordError, anything else
        that is not a ``kind``, or one with a value its field cannot hold (``_record_values``)."""
        if isinstance(record, RecordError):
            error = record
        elif not isinstance(record, kind):
            error = RecordError(self.name, stream, f"the adapter gave a {type(record).__name__}, not a {kind.__name__}")
        elif (problem := value_problem(record)) is not None:  # a field holding what it cannot hold
            ref = record.ref if isinstance(record.ref, str) and record.ref.strip() else None  # type: ignore[attr-defined]
            error = RecordError(self.name, stream, problem, record_ref=ref)
        else:
            try:
                return cleaned(record)
            except Exception as exc:  # a record the adapter built wrong
                error = RecordError(
                    self.name, stream, f"cannot be read ({type(exc).__name__})", record_ref=getattr(record, "ref", None)
                )
        # This one waits (quarantined with its reason); the stream goes on.
        await self.db.call(self._bad_record, stream, error, cursor, result)
        return None

    def _stored(
        self,
        stream: str,
        batch: list[Any],
        store: Callable[[list[Any]], list[Any]],
        cursor: _Cursor,
        result: IntakeResult,
    ) -> list[tuple[Any, Any]]:
        """``store(batch)``, paired with the batch. When the store refuses the batch for its data
        (not for being down), each record is stored on its own and the ones it refuses are
        quarantined with the reason; only a failure of the store itself fails the run."""
        if not batch:
            return []
        try:
            return list(zip(store(batch), batch, strict=True))  # the store answers each item of the batch
        except STORE_REFUSALS as exc:
            if not refused_for_its_data(exc):
                raise
        out = []
        for item in batch:
            try:
                out.append((store([item])[0], item))
            except STORE_REFUSALS as exc:
                if not refused_for_its_data(exc):
                    raise
                record = item[0] if isinstance(item, tuple) else item
                self._bad_record(
                    stream,
                    RecordError(
                        self.name,
                        stream,
                        f"the store refused it ({type(exc).__name__})",
                        record_ref=getattr(record, "ref", None),
                    ),
                    cursor,
                    result,
                )
        return out

    def _complaint_for(
        self, stream: str, record: FollowUp | StatusChange, when: datetime, cursor: _Cursor, result: IntakeResult
    ) -> None:
        """For a record whose complaint is not taken in: wait for it (it may be taken in by
        a later pass; the cursor holds) or quarantine the record."""
        complaints_cursor = self.store.cursor(self.name, self.cursor_prefix + "complaints")
        held = self.store.quarantined(self.name, "complaints", record.complaint_ref)
        if complaints_cursor is None or when >= complaints_cursor or 0 < held < HOLD_PASSES:
            result.deferred += 1
            cursor.hold_at(when)
            return
        reason = "its complaint is in quarantine" if held else "its complaint is not known to the gateway"
        self._bad_record(
            stream,
            RecordError(self.name, stream, f"{reason} ({record.complaint_ref})", record_ref=record.ref),
            _Cursor(None),
            result,
        )

    async def _status_changes(self, result: IntakeResult) -> None:
        # The hub has no call to set a status: a local change is kept in the timeline
        # (for the operator and for conflict rules), not delivered.
        await self._events(
            "status_changes",
            self.app.status_changes_since,
            lambda r: LocalEvent(
                kind=EventKind.STATUS_CHANGE,
                ref=r.ref,
                complaint_ref=r.complaint_ref,
                occurred_at=r.changed_at,
                gateway_ref=r.gateway_ref,
                raw_status=(r.status.code, r.status.name),
                status=self.route.local_status(r.status.code),
            ),
            result,
        )

    async def _follow_ups(self, result: IntakeResult) -> None:
        await self._events(
            "follow_ups",
            self.app.follow_ups_since,
            lambda r: LocalEvent(
                kind=EventKind.FOLLOW_UP,
                ref=r.ref,
                complaint_ref=r.complaint_ref,
                occurred_at=r.created_at,
                gateway_ref=r.gateway_ref,
                content=r.content,
                author=r.author,
                is_secret=r.is_secret,
                attachments=r.attachments,
                deliver=(DeliveryKind.HUB_FOLLOW_UP, self.route.hub.name),
            ),
            result,
        )

    async def _events(
        self,
        stream: str,
        read: Callable[[datetime | None], AsyncIterator[Any]],
        translate: Callable[[Any], LocalEvent],
        result: IntakeResult,
    ) -> None:
        """Follow-ups or status changes since the stream's cursor, :data:`EVENT_BATCH` per
        transaction. What the gateway wrote itself (it carries our mark, or we hold its id)
        is recognised and never sent back where it came from."""
        cursor = await self.db.call(self._cursor, stream)
        batch: list[tuple[FollowUp | StatusChange, LocalEvent]] = []

        def store_events(items: list[tuple[FollowUp | StatusChange, LocalEvent]]) -> list[None]:
            self._record_events([event for _, event in items])
            return [None] * len(items)

        def flush() -> None:
            batch_log = log.bind()  # see the note at ``log``
            for _, (record, event) in self._stored(stream, batch, store_events, cursor, result):
                if event.outcome == "no_complaint":
                    self._complaint_for(stream, record, event.occurred_at, cursor, result)
                elif event.outcome == "echo":
                    result.echoes += 1
                elif event.outcome == "recorded" and event.kind == EventKind.FOLLOW_UP:
                    result.follow_ups += 1
                    batch_log.info(
                        "local follow-up owed to hub", complaint_id=event.complaint_id, event_id=event.event_id
                    )
                elif event.outcome == "recorded":
                    result.status_changes += 1
            batch.clear()
            self._resolve_read_fine()
            self._save(stream, cursor)

        kind: type[FollowUp | StatusChange] = FollowUp if stream == "follow_ups" else StatusChange
        with self._positioned(stream, await self.db.call(self._position, stream)):
            async for raw in read(cursor.since):
                if isinstance(raw, PeerPosition):
                    await self.db.call(flush)
                    await self.db.call(self._save_position, stream, raw, cursor)
                    continue
                record = await self._checked(stream, raw, kind, cursor, result)
                if record is None:
                    continue
                try:
                    event = translate(record)
                except Exception as exc:  # one record the engine cannot use: it waits, the stream goes on
                    await self.db.call(
                        self._bad_record,
                        stream,
                        RecordError(self.name, stream, f"cannot be read ({type(exc).__name__})", record_ref=record.ref),
                        cursor,
                        result,
                    )
                    continue
                self._resolve(stream, record.ref)
                batch.append((record, event))
                cursor.seen(event.occurred_at)  # saved only with its batch
                if len(batch) >= EVENT_BATCH:
                    await self.db.call(flush)
        await self.db.call(flush)
