"""Reading the hub. It has no change feed, so each open complaint is read: its
status history and its follow-ups become timeline events, owed to the local app
in the order they happened at the hub.

Which complaints are read when is the :class:`PollPolicy`'s: a complaint that just
changed is read again soon, a quiet one rarely, every open one at least once per
sweep bound, a closed one through the reopen window and then never. The request
budget of the hub's client bounds how many reads a run makes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError

from gateway._adapter import Hub
from gateway._config._schema import Polling
from gateway._engine._async_store import AsyncStore
from gateway._engine._mapping import Route, same_text
from gateway._errors import (
    GatewayError,
    MappingError,
    PeerError,
    PeerUnavailableError,
    PermanentPeerError,
    RecordError,
    StoreUnavailableError,
    safe_text,
)
from gateway._model import FollowUp, HubComplaintState, Status, StatusChange
from gateway._sanitize import cleaned
from gateway._store import STORE_REFUSALS, DeliveryKind, EventKind, Store, refused_for_its_data
from gateway._store._hub_reads import (
    DueRead,
    HubEvent,
    HubStatus,
    HubView,
    LastRead,
    apply_hub_read,
    complaints_due,
    hub_view,
    poll_backlog,
)

log = structlog.get_logger("gateway.hub_poll")

# Complaints read at once when the hub's client sets no concurrency of its own.
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """When a complaint is read at the hub next.

    The interval after a read is a share (``quiet_factor``) of how long the complaint
    has been quiet, between ``min_interval`` and ``sweep_bound``: a complaint that
    changed an hour ago is read again in half an hour, one quiet for a week once per
    sweep. Within ``deadline_soon`` of the complaint's current deadline, it is read at a
    rate: after ``deadline_share`` of the time left (never sooner than ``min_interval``), and
    once just after the deadline (``after_deadline``), to see whether it was met: about
    eight reads in the last day, where reading every ``min_interval`` took 144 (and as many
    again the day after). A closed complaint is read once per sweep through
    ``reopen_window``, then never. Intervals are shortened by up to 10% at random so that
    reads spread out (a read just after a deadline is never moved before it).
    """

    min_interval: timedelta = timedelta(minutes=10)
    sweep_bound: timedelta = timedelta(hours=6)
    quiet_factor: float = 0.5
    reopen_window: timedelta = timedelta(days=14)
    deadline_soon: timedelta = timedelta(hours=24)
    deadline_share: float = 0.5
    after_deadline: timedelta = timedelta(minutes=1)

    def next_read(
        self,
        now: datetime,
        last_change: datetime,
        closed_at: datetime | None,
        *,
        deadlines: Sequence[datetime] = (),
        rng: random.Random | None = None,
    ) -> datetime | None:
        """``deadlines``: the due time of the complaint's current deadline (its earliest tier not
        met); any that are not in the future are passed over."""
        if closed_at is not None:
            if now - closed_at >= self.reopen_window:
                return None
            return now + self.sweep_bound
        interval = min(max((now - last_change) * self.quiet_factor, self.min_interval), self.sweep_bound)
        if rng is not None:
            interval *= 1 - 0.1 * rng.random()
        deadline = min((d for d in deadlines if d > now), default=None)
        if deadline is not None:
            left = deadline - now
            if left <= self.deadline_soon:
                interval = min(interval, max(left * self.deadline_share, self.min_interval))
            # A read that would pass the deadline, or land closer to it than min_interval, is made
            # just after it instead: that one tells whether it was met.
            if left - interval < self.min_interval:
                interval = left + self.after_deadline
        return now + interval


def poll_policy(settings: Polling) -> PollPolicy:
    """The policy of a hub instance's ``polling:`` block."""
    return PollPolicy(
        min_interval=timedelta(minutes=settings.min_interval_minutes),
        sweep_bound=timedelta(hours=settings.sweep_bound_hours),
        quiet_factor=settings.quiet_factor,
        reopen_window=timedelta(days=settings.reopen_window_days),
        deadline_soon=timedelta(hours=settings.deadline_soon_hours),
        deadline_share=settings.deadline_share,
    )


@dataclass
class PollResult:
    polled: int = 0
    status_changes: int = 0
    follow_ups: int = 0
    echoes: int = 0
    failures: int = 0
    quarantined: int = 0


class HubPoll:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        routes: dict[str, Route],
        *,
        policy: PollPolicy = PollPolicy(),
        batch: int = 500,
        rng: random.Random | None = None,
        db: AsyncStore | None = None,
    ):
        self.store = store
        self.db = db or AsyncStore(store, workers=0)  # the store off the event loop (inline without an engine)
        self.hub = hub
        self.routes = routes  # by local instance name
        self.policy = policy
        self.batch = batch
        self.rng = rng or random.Random()
        self._quarantined: set[tuple[str, str]] = set()

    async def run(self) -> PollResult:
        result = PollResult()
        budget = getattr(self.hub.http, "budget", None)
        concurrency = getattr(getattr(budget, "policy", None), "concurrency", None) or CONCURRENCY
        semaphore = asyncio.Semaphore(concurrency)
        paused = asyncio.Event()  # set when the hub's breaker opens: the rest waits for the next run

        async def one(due: DueRead) -> None:
            complaint_id, hub_ref = due.complaint_id, due.hub_ref
            async with semaphore:
                if paused.is_set():
                    return
                with structlog.contextvars.bound_contextvars(complaint_id=complaint_id):
                    try:
                        await self._poll_one(complaint_id, hub_ref, result, last_read=due.last_read)
                    except PeerUnavailableError as exc:
                        if not paused.is_set():
                            log.warning("hub poll paused: circuit open", error=str(exc))
                        paused.set()
                    except PeerError as exc:
                        result.failures += 1
                        log.warning("hub poll failed", error=str(exc))
                    except STORE_REFUSALS as exc:
                        if not refused_for_its_data(exc):
                            raise  # the store itself failed: the run fails
                        # What this complaint's read brought cannot be stored: it waits, the others go on.
                        result.failures += 1
                        result.quarantined += 1
                        await self.db.quarantine(
                            self.hub.name,
                            "complaints",
                            hub_ref,
                            f"the store refused what its read brought ({_cause(exc)})",
                        )
                        log.error("hub read could not be stored; quarantined", error=safe_text(exc))
                    except StoreUnavailableError:
                        raise  # the store itself failed: the run fails (and runs again later)
                    except Exception:  # a bug, or a record the adapter built wrong: this complaint only
                        result.failures += 1
                        log.exception("hub read failed with an internal error")

        self._quarantined = await self.db.quarantined_refs(self.hub.name)
        due = await self.db.call(complaints_due, self.store, self.hub.name, list(self.routes), self.batch)
        if len(due) == self.batch:  # more may be due than one run reads: is polling falling behind?
            waiting, oldest = await self.db.call(poll_backlog, self.store, self.hub.name)
            if oldest is not None and self.store.clock() - oldest > self.policy.sweep_bound:
                log.warning(
                    "hub reads are behind the sweep bound; raise the hub's budget or the bound",
                    due=waiting,
                    behind_minutes=round((self.store.clock() - oldest).total_seconds() / 60),
                )
        await asyncio.gather(*(one(d) for d in due))
        if due and result.failures and not result.polled:
            raise GatewayError(f"{self.hub.name}: every complaint read failed ({result.failures})")
        return result

    async def _poll_one(
        self, complaint_id: int, hub_ref: str, result: PollResult, *, last_read: datetime | None
    ) -> None:
        """Read one complaint at the hub and record what is new. ``last_read``: the read the store
        held when the complaint was picked; another written since wins (apply_hub_read)."""
        state = cleaned(await self.hub.read_complaint(hub_ref))  # texts the store can hold
        whole_list = f"list:{hub_ref}"  # the quarantine key of a follow-up list that cannot be read
        try:
            listed = await self.hub.follow_ups(hub_ref)
        except PermanentPeerError as exc:
            # The status was read, and goes on: an unreadable list of follow-ups held it back at every
            # read. The list is quarantined, and the read is not whole (the complaint is not closed).
            listed = [RecordError(self.hub.name, exc.operation, exc.reason, record_ref=whole_list)]
            log.warning("hub follow-ups could not be read; the status goes on", error=str(exc))
        else:
            await self._read_fine("follow_ups", whole_list)
        follow_ups = [item if isinstance(item, RecordError) else cleaned(item) for item in listed]
        result.polled += 1
        for item in follow_ups:
            if isinstance(item, RecordError):
                result.quarantined += 1
                await self.db.quarantine(self.hub.name, "follow_ups", item.record_ref, item.reason)
            else:
                await self._read_fine("follow_ups", item.ref)
        try:
            events, echoes = await self.db.call(self._record, complaint_id, state, follow_ups, result, last_read)
        except IntegrityError:  # another daemon recorded part of this read meanwhile: see what is left
            events, echoes = await self.db.call(self._record, complaint_id, state, follow_ups, result, last_read)
        await self._read_fine("complaints", hub_ref)  # a read that could not be stored before went in now
        for event in events:
            if event.kind == EventKind.FOLLOW_UP:
                result.follow_ups += 1
                log.info("hub follow-up owed to local app", event_id=event.event_id)
            else:
                result.status_changes += 1
                log.info(
                    "hub status change owed to local app",
                    event_id=event.event_id,
                    status=str(event.status),
                    hub_status=(event.raw_status[1] or event.raw_status[0]) if event.raw_status else None,
                )
                if event.park_reason:
                    log.error(
                        "hub status has no mapping; parked",
                        event_id=event.event_id,
                        hub_status=(event.raw_status[1] or event.raw_status[0]) if event.raw_status else None,
                    )
        result.echoes += len(echoes)

    async def _read_fine(self, stream: str, ref: str) -> None:
        """``ref`` of ``stream`` was read (or stored) fine: if it was quarantined, it is no longer."""
        if (stream, ref) in self._quarantined:
            await self.db.resolve_quarantine(self.hub.name, stream, ref)
            self._quarantined.discard((stream, ref))

    def _record(
        self,
        complaint_id: int,
        state: HubComplaintState,
        follow_ups: list[FollowUp | RecordError],
        result: PollResult,
        last_read: LastRead,
    ) -> tuple[list[HubEvent], list[tuple[int, str]]]:
        """What the gateway knows, read after the hub was, and the read applied to it, in ONE store
        call: a delivery of this process that finishes meanwhile (recording a follow-up of ours
        under its hub id) cannot slip between the two, so our own follow-up is recognised, not
        echoed back as the hub's. (Store calls of one process run one after the other.)"""
        view = hub_view(self.store, complaint_id, self.hub.name)
        return self._apply(view, self.routes[view.local_instance], state, follow_ups, result, last_read)

    def _apply(
        self,
        view: HubView,
        route: Route,
        state: HubComplaintState,
        follow_ups: list[FollowUp | RecordError],
        result: PollResult,
        last_read: LastRead,
    ) -> tuple[list[HubEvent], list[tuple[int, str]]]:
        """Work out what this read adds to the timeline, and write it in one transaction (in a
        store thread: see _poll_one)."""
        known = set(view.known)
        unmatched = list(view.unmatched_sent)
        events: list[HubEvent] = []
        echoes: list[tuple[int, str]] = []
        items: list[StatusChange | FollowUp] = [
            *state.status_changes,
            *state.notes,
            *(f for f in follow_ups if not isinstance(f, RecordError)),
        ]
        # Owed to the local app in the order they happened at the hub.
        items.sort(key=lambda e: e.changed_at if isinstance(e, StatusChange) else e.created_at)
        for item in items:
            if isinstance(item, StatusChange):
                if (EventKind.STATUS_CHANGE, item.ref) in known:
                    continue
                known.add((EventKind.STATUS_CHANGE, item.ref))
                # Only the first entry of the complaint's history is the status the hub received
                # it in. A later one without a previous status (its log left status_old out, or
                # null) is a change all the same: taken as "received", it was never passed on.
                first = (
                    item.previous is None
                    and view.statuses_seen == 0
                    and not any(e.kind == EventKind.STATUS_CHANGE for e in events)
                )
                events.append(self._status_change(route, item, first=first))
            else:
                if (EventKind.FOLLOW_UP, item.ref) in known:
                    continue
                known.add((EventKind.FOLLOW_UP, item.ref))
                own = next((u for u in unmatched if same_text(u[1], item.content)), None)
                if own is not None:
                    # The gateway's own copy of a local follow-up: remember its hub id, never echo it back.
                    unmatched.remove(own)
                    echoes.append((own[0], item.ref))
                    continue
                events.append(
                    HubEvent(
                        kind=EventKind.FOLLOW_UP,
                        hub_ref=item.ref,
                        occurred_at=item.created_at,
                        content=item.content,
                        author=item.author,
                        is_secret=item.is_secret,
                        attachments=item.attachments,
                        deliver=(DeliveryKind.LOCAL_FOLLOW_UP, route.local.name),
                    )
                )
        current = self._current_status(view, route, state, events)
        if current is not None:
            events.append(current)
        # A closed complaint is not read again: close it here only after a read in which
        # every follow-up and every history entry could be read (its closing follow-up, or the
        # log with the reason of a rejection, may be the unreadable one).
        whole = state.history_complete and not any(isinstance(item, RecordError) for item in follow_ups)
        status = HubStatus(
            state.status.code, state.status.name, route.hub_status(state.status.code, state.status.name), whole
        )

        def next_read(
            now: datetime, last_change: datetime, closed_at: datetime | None, deadlines: tuple[datetime, ...]
        ) -> datetime | None:
            return self.policy.next_read(now, last_change, closed_at, deadlines=deadlines, rng=self.rng)

        applied = apply_hub_read(
            self.store,
            view.complaint_id,
            self.hub.name,
            events=events,
            echoes=echoes,
            status=status,
            next_read=next_read,
            deadlines=route.deadlines,
            statuses_seen=view.statuses_seen,
            last_read=last_read,
        )
        if not applied:  # another daemon's read was written since this one was picked, or erased
            return [], []
        return events, echoes

    def _status_change(self, route: Route, change: StatusChange, *, first: bool | None = None) -> HubEvent:
        status = route.hub_status(change.status.code, change.status.name)
        park = (
            None
            if status is not None
            else str(MappingError(self.hub.name, "statuses", change.status.name or change.status.code))
        )
        # The first entry of the hub's history is the status it received the complaint in, not
        # a change: it is kept in the timeline but would only set the local app back.
        first = change.previous is None if first is None else first
        deliver = None if first else (DeliveryKind.LOCAL_STATUS, route.local.name)
        return HubEvent(
            kind=EventKind.STATUS_CHANGE,
            hub_ref=change.ref,
            occurred_at=change.changed_at,
            content=change.note,
            reason=change.reason,
            raw_status=(change.status.code, change.status.name),
            status=status,
            deliver=deliver,
            park_reason=park if deliver else None,
        )

    def _current_status(
        self, view: HubView, route: Route, state: HubComplaintState, events: list[HubEvent]
    ) -> HubEvent | None:
        """The hub's current status as a change of its own, when the history read so far does
        not end in it (its logs could not be read, or do not show the change): the current
        status alone must still reach the local app. Known by the number of statuses before it,
        so a later return to the same status is a change again."""
        new = [e for e in events if e.kind == EventKind.STATUS_CHANGE]
        last = new[-1].raw_status if new else view.last_status
        if new and view.last_status_at is not None and new[-1].occurred_at < view.last_status_at:
            # The read brought only entries older than the newest status the timeline holds (a log
            # unreadable before, readable now): that one is still the last. Compared with the
            # older entry, the current status was taken as a change again and written twice.
            last = view.last_status
        current = state.status
        if last is not None:
            last_code, last_name = last
            mapped = route.hub_status(last_code, last_name)
            if mapped is not None and mapped == route.hub_status(current.code, current.name):
                return None
            if _same_status(last_name or last_code, current.name or current.code):
                return None
            if current.name is None and _same_status(last_code, current.code):
                return None  # a read without the status's name: the same code is the same status
        seen = view.statuses_seen + len(new)
        # Its time is the newest the hub has given for this complaint (or its filing): on the
        # hub's clock, not the gateway's. The hub's next change comes later than anything it
        # has shown, so it counts as newer than this one and reaches the local app; stamped
        # with the gateway's clock, which may run ahead of the hub's, it would not (it would
        # be skipped as older than a status already delivered).
        hub_times = [e.occurred_at for e in events]
        if view.last_hub_time is not None:
            hub_times.append(view.last_hub_time)
        change = StatusChange(
            ref=f"current-{seen}-{current.name or current.code}",
            complaint_ref=state.ref,
            status=current,
            changed_at=max(hub_times, default=view.filed_at),
            note=self.hub.status_note(current),
        )
        log.info(
            "hub status taken from the complaint's current status (its history does not show it)",
            hub_status=current.name or current.code,
            history_complete=state.history_complete,
        )
        # With no hub status seen before, the current one is the status the hub received the
        # complaint in (kept, not delivered: it would only set the local app back) unless it is
        # past that: a complaint is received unverified, so any other status came after. (A create
        # linked late by an operator is first read already done at the hub; taken as its first
        # status, "done" never reached the local app, and the closed complaint was not read again.)
        received = seen == 0 and route.hub_status(current.code, current.name) in (None, Status.UNVERIFIED)
        return self._status_change(route, change, first=received)


def _cause(exc: BaseException) -> str:
    """The class of the database's own refusal (a DataError, say), also when it was filed as a
    StoreRefusedError: what an operator looks up."""
    return getattr(exc, "cause_name", None) or type(exc).__name__


def _same_status(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
