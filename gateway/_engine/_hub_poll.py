"""Reading the hub. It has no change feed, so each open complaint is read: its
status history and its follow-ups become timeline events, owed to the local app
in the order they happened at the hub."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from gateway._adapter import Hub
from gateway._engine._mapping import Route, same_text
from gateway._errors import GatewayError, MappingError, PeerError, PeerUnavailableError, RecordError
from gateway._model import FollowUp, StatusChange
from gateway._store import LOCAL_FOLLOW_UP, LOCAL_STATUS, Store

log = structlog.get_logger("gateway.hub_poll")

# Complaints read at once. The request budget per peer (a later issue) will bound this.
CONCURRENCY = 8


@dataclass
class PollResult:
    polled: int = 0
    status_changes: int = 0
    follow_ups: int = 0
    echoes: int = 0
    failures: int = 0
    quarantined: int = 0


class HubPoll:
    def __init__(self, store: Store, hub: Hub, routes: dict[str, Route], *, batch: int = 500):
        self.store = store
        self.hub = hub
        self.routes = routes  # by local instance name
        self.batch = batch
        self._quarantined: set[tuple[str, str]] = set()

    async def run(self) -> PollResult:
        result = PollResult()
        semaphore = asyncio.Semaphore(CONCURRENCY)
        paused = asyncio.Event()  # set when the hub's breaker opens: the rest waits for the next run

        async def one(complaint_id: int, hub_ref: str) -> None:
            async with semaphore:
                if paused.is_set():
                    return
                with structlog.contextvars.bound_contextvars(complaint_id=complaint_id):
                    try:
                        await self._poll_one(complaint_id, hub_ref, result)
                    except PeerUnavailableError as exc:
                        if not paused.is_set():
                            log.warning("hub poll paused: circuit open", error=str(exc))
                        paused.set()
                    except PeerError as exc:
                        result.failures += 1
                        log.warning("hub poll failed", error=str(exc))

        self._quarantined = self.store.quarantined_refs(self.hub.name)
        due = self.store.complaints_to_poll(self.hub.name, list(self.routes), self.batch)
        await asyncio.gather(*(one(cid, ref) for cid, ref in due))
        if due and result.failures and not result.polled:
            raise GatewayError(f"{self.hub.name}: every complaint read failed ({result.failures})")
        return result

    async def _poll_one(self, complaint_id: int, hub_ref: str, result: PollResult) -> None:
        complaint = self.store.complaint(complaint_id)
        route = self.routes[complaint.local_instance]
        state = await self.hub.read_complaint(hub_ref)
        follow_ups = await self.hub.follow_ups(hub_ref)
        result.polled += 1
        events: list[StatusChange | FollowUp] = list(state.status_changes)
        for item in follow_ups:
            if isinstance(item, RecordError):
                result.quarantined += 1
                self.store.quarantine(self.hub.name, "follow_ups", item.record_ref, item.reason)
            else:
                if ("follow_ups", item.ref) in self._quarantined:
                    self.store.resolve_quarantine(self.hub.name, "follow_ups", item.ref)
                events.append(item)
        # Owed to the local app in the order they happened at the hub.
        events.sort(key=lambda e: e.changed_at if isinstance(e, StatusChange) else e.created_at)
        for item in events:
            if isinstance(item, StatusChange):
                self._status_change(complaint_id, route, item, result)
            else:
                self._follow_up(complaint_id, route, item, result)
        # A closed complaint is not read again: close it here only after a read in which
        # every follow-up could be read (its closing follow-up may be the unreadable one).
        whole = not any(isinstance(item, RecordError) for item in follow_ups)
        self.store.update_hub_status(complaint_id, state.status.code, state.status.name,
                                     route.hub_status(state.status.code), may_close=whole)

    def _status_change(self, complaint_id: int, route: Route, change: StatusChange, result: PollResult) -> None:
        status = route.hub_status(change.status.code)
        park = None if status is not None else str(MappingError(self.hub.name, "statuses", change.status.code))
        # The first entry of the hub's history is the status it received the complaint in, not
        # a change: it is kept in the timeline but would only set the local app back.
        deliver = (LOCAL_STATUS, route.local.name) if change.previous is not None else None
        event_id = self.store.record_event(
            complaint_id, kind="status_change", origin=self.hub.name, origin_ref=change.ref, side="hub",
            occurred_at=change.changed_at, raw_status=(change.status.code, change.status.name), status=status,
            deliver=deliver, park_reason=park if deliver else None)
        if event_id is not None:
            result.status_changes += 1
            log.info("hub status change owed to local app", event_id=event_id, status=str(status),
                     hub_status=change.status.code)
            if park:
                log.error("hub status has no mapping; parked", event_id=event_id, hub_status=change.status.code)

    def _follow_up(self, complaint_id: int, route: Route, follow_up: FollowUp, result: PollResult) -> None:
        if self.store.event_known_by_ref(complaint_id, "hub", follow_up.ref):
            return
        own = next((e for e in self.store.sent_follow_ups_without_hub_ref(complaint_id)
                    if same_text(e.content, follow_up.content)), None)
        if own is not None:
            # The gateway's own copy of a local follow-up: remember its hub id, never echo it back.
            self.store.set_event_ref(own.id, "hub", follow_up.ref)
            result.echoes += 1
            return
        event_id = self.store.record_event(
            complaint_id, kind="follow_up", origin=self.hub.name, origin_ref=follow_up.ref, side="hub",
            occurred_at=follow_up.created_at, content=follow_up.content, author=follow_up.author,
            deliver=(LOCAL_FOLLOW_UP, route.local.name))
        if event_id is not None:
            result.follow_ups += 1
            log.info("hub follow-up owed to local app", event_id=event_id)
