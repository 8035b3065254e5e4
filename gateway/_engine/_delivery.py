"""Delivering what the outbox says is owed, in order per complaint and target.

Each delivery is claimed (a lease, so a dead daemon's claims expire) before its
call and marked done, with the ids it produced, in one transaction after it.
A transient failure is retried on a later pass with capped exponential backoff
and jitter; a permanent one, or one that keeps failing, is parked with its
reason for an operator. Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import timedelta

import structlog

from gateway._adapter import Hub, LocalApp
from gateway._config._schema import Delivery
from gateway._engine._mapping import Route
from gateway._errors import MappingError, PermanentPeerError, TransientPeerError
from gateway._model import (
    AttachmentRef,
    Classification,
    Complaint,
    HubComplaintDraft,
    Location,
    RawStatus,
    Status,
)
from gateway._store import CREATE_COMPLAINT, HUB_FOLLOW_UP, LOCAL_FOLLOW_UP, LOCAL_STATUS, Store
from gateway._store._tables import ComplaintRow, OutboxRow
from gateway._timezones import ensure_utc

log = structlog.get_logger("gateway.delivery")


@dataclass
class DeliveryResult:
    delivered: int = 0
    skipped: int = 0
    retrying: int = 0
    parked: int = 0


def complaint_from_row(row: ComplaintRow, local_ref: str) -> Complaint:
    """The canonical complaint as stored (without the reporter: the hub never gets it)."""
    return Complaint(
        ref=local_ref, title=row.title, body=row.body, created_at=ensure_utc(row.local_created_at),
        updated_at=ensure_utc(row.local_updated_at), status=RawStatus(row.local_status_code or ""),
        category=row.category, classification=Classification(row.classification),
        location=Location(**json.loads(row.location_json)) if row.location_json else None,
        channel=row.channel, incident_at=ensure_utc(row.incident_at), is_anonymous=row.is_anonymous,
        is_secret=row.is_secret, agency=row.agency)


class Deliveries:
    def __init__(self, store: Store, target: str, adapters: dict[str, LocalApp | Hub], routes: dict[str, Route],
                 policy: Delivery, *, owner: str, rng: random.Random, concurrency: int = 8):
        self.store = store
        self.target = target
        self.adapters = adapters
        self.routes = routes
        self.policy = policy
        self.owner = owner
        self.rng = rng
        self.concurrency = concurrency

    async def run(self, *, max_rounds: int = 50) -> DeliveryResult:
        """Deliver until nothing due is left (a complaint's follow-ups go right after
        its create), or ``max_rounds`` rounds."""
        result = DeliveryResult()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(row: OutboxRow) -> None:
            async with semaphore:
                await self._attempt(row, result)

        for _ in range(max_rounds):
            rows = self.store.due_deliveries(self.target, limit=200)
            if not rows:
                break
            await asyncio.gather(*(one(row) for row in rows))
        return result

    def _backoff(self, attempts: int) -> timedelta:
        base = min(self.policy.backoff_max_seconds, self.policy.backoff_initial_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=base * self.rng.uniform(0.5, 1.0))

    async def _attempt(self, row: OutboxRow, result: DeliveryResult) -> None:
        lease = timedelta(seconds=self.policy.lease_seconds)
        if not self.store.claim(row.id, self.owner, lease):
            return
        with structlog.contextvars.bound_contextvars(complaint_id=row.complaint_id, delivery=row.kind,
                                                     outbox_id=row.id):
            try:
                state = await self._deliver(row)
            except (MappingError, PermanentPeerError) as exc:
                self.store.fail_delivery(row.id, str(exc), retry_at=None)
                self.store.audit("delivery_parked", complaint_id=row.complaint_id, detail=str(exc))
                result.parked += 1
                log.error("delivery parked", error=str(exc))
            except TransientPeerError as exc:
                attempts = row.attempts + 1
                if attempts >= self.policy.max_attempts:
                    self.store.fail_delivery(row.id, f"gave up after {attempts} attempts: {exc}", retry_at=None)
                    self.store.audit("delivery_parked", complaint_id=row.complaint_id, detail=str(exc))
                    result.parked += 1
                    log.error("delivery parked", error=str(exc), attempts=attempts)
                else:
                    retry_at = self.store.clock() + self._backoff(attempts)
                    if exc.retry_after:
                        retry_at = max(retry_at, self.store.clock() + timedelta(seconds=exc.retry_after))
                    self.store.fail_delivery(row.id, str(exc), retry_at=retry_at)
                    result.retrying += 1
                    log.warning("delivery failed; will retry", error=str(exc), attempts=attempts,
                                retry_at=retry_at.isoformat())
            else:
                if state == "skipped":
                    result.skipped += 1
                else:
                    result.delivered += 1

    async def _deliver(self, row: OutboxRow) -> str:
        if row.kind == CREATE_COMPLAINT:
            return await self._create(row)
        if row.kind == HUB_FOLLOW_UP:
            return await self._hub_follow_up(row)
        if row.kind == LOCAL_FOLLOW_UP:
            return await self._local_follow_up(row)
        if row.kind == LOCAL_STATUS:
            return await self._local_status(row)
        raise MappingError(self.target, "outbox kinds", row.kind)

    async def _create(self, row: OutboxRow) -> str:
        complaint_row = self.store.complaint(row.complaint_id)
        route = self.routes[complaint_row.local_instance]
        hub: Hub = self.adapters[self.target]  # type: ignore[assignment]
        local: LocalApp = self.adapters[route.local.name]  # type: ignore[assignment]
        local_ref = self.store.external_ref(row.complaint_id, route.local.name)
        complaint = complaint_from_row(complaint_row, local_ref or "")
        ids = route.hub_ids(complaint)  # before any upload: an unmapped value parks it at no cost
        doc_ids = []
        for att in self.store.attachments(row.complaint_id):
            if att.hub_doc_id is None:
                content = await local.fetch_attachment(
                    AttachmentRef(att.local_ref, att.filename, att.content_type, att.size))
                (att.hub_doc_id,) = await hub.upload_attachments([content])
                self.store.set_attachment_doc(att.id, att.hub_doc_id)
            doc_ids.append(att.hub_doc_id)
        draft = HubComplaintDraft(complaint=complaint, gateway_ref=complaint_row.gateway_ref,
                                  category_id=ids["category_id"], classification_id=ids["classification_id"],
                                  channel_id=ids["channel_id"], attachment_ids=tuple(doc_ids),
                                  route_fields=dict(route.local.spec.route.fields) if route.local.spec.route else {})
        hub_ref = await hub.create_complaint(draft)
        self.store.finish_delivery(row.id, link=(row.complaint_id, self.target, hub_ref))
        self.store.audit("created_at_hub", complaint_id=row.complaint_id, detail=f"{self.target} id {hub_ref}")
        log.info("complaint created at hub", hub_ref=hub_ref, attachments=len(doc_ids))
        return "done"

    async def _hub_follow_up(self, row: OutboxRow) -> str:
        hub: Hub = self.adapters[self.target]  # type: ignore[assignment]
        hub_ref = self.store.external_ref(row.complaint_id, self.target)
        if hub_ref is None:  # cannot happen while the create comes first; kept loud if it does
            raise PermanentPeerError(self.target, "add follow-up", "the complaint is not linked at the hub")
        event = self.store.event(row.event_id)
        follow_up_ref = await hub.add_follow_up(hub_ref, event.content or "", gateway_ref=event.gateway_ref)
        if follow_up_ref:
            self.store.set_event_ref(event.id, "hub", follow_up_ref)
        self.store.finish_delivery(row.id)
        log.info("follow-up delivered to hub", event_id=event.id)
        return "done"

    async def _local_follow_up(self, row: OutboxRow) -> str:
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        local_ref = self.store.external_ref(row.complaint_id, self.target)
        event = self.store.event(row.event_id)
        ref = await local.write_follow_up(local_ref, event.content or "", author=event.author,
                                          gateway_ref=event.gateway_ref)
        if ref:
            self.store.set_event_ref(event.id, "local", ref)
        self.store.finish_delivery(row.id)
        log.info("hub follow-up delivered to local app", event_id=event.id)
        return "done"

    async def _local_status(self, row: OutboxRow) -> str:
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        route = self.routes[self.target]
        event = self.store.event(row.event_id)
        if event.status is None:
            raise MappingError(event.origin, "statuses", event.raw_status_code or "")
        status = Status(event.status)
        to_write = route.local_status_to_write(status)
        complaint = self.store.complaint(row.complaint_id)
        if complaint.local_status_code == to_write:
            # Several hub statuses can map to one local status: nothing to write.
            self.store.finish_delivery(row.id, state="skipped")
            return "skipped"
        local_ref = self.store.external_ref(row.complaint_id, self.target)
        note = f"Status di LAPOR!: {event.raw_status_name or event.raw_status_code}"
        ref = await local.write_status(local_ref, RawStatus(to_write, to_write), note=note,
                                       gateway_ref=event.gateway_ref)
        if ref:
            self.store.set_event_ref(event.id, "local", ref)
        self.store.set_local_status(row.complaint_id, to_write, status)
        self.store.finish_delivery(row.id)
        log.info("hub status delivered to local app", event_id=event.id, status=str(status))
        return "done"
