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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from gateway._adapter import Hub, LocalApp
from gateway._capabilities import Capability, Write
from gateway._config._schema import Delivery
from gateway._engine._async_store import AsyncStore
from gateway._engine._identity_documents import hold_back_reason
from gateway._engine._image_metadata import UnreadableImage, strip_metadata
from gateway._engine._mapping import Route, same_text
from gateway._engine._observer import DELIVERED, NEEDS_CONFIRMATION, PARKED, REFUSED, RETRIED, Observer
from gateway._errors import (
    AmbiguousOutcomeError,
    GatewayError,
    MappingError,
    OutcomeUnknownError,
    PeerUnavailableError,
    PermanentPeerError,
    RecordError,
    StoreRefusedError,
    StoreUnavailableError,
    TooLargeError,
    TransientPeerError,
)
from gateway._model import (
    AttachmentContent,
    AttachmentRef,
    Classification,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    Location,
    RawStatus,
    Status,
)
from gateway._store import DeliveryKind, OutboxState, Side, Store
from gateway._store._held_back import HELD_BACK
from gateway._store._hub_reads import poll_soon, recognise_sent_follow_up
from gateway._store._reference import reference
from gateway._store._store import STATUS_AS_FOLLOW_UP
from gateway._store._tables import AttachmentRow, ComplaintRow, EventRow, OutboxRow, existing_id
from gateway._timezones import ensure_utc

log = structlog.get_logger("gateway.delivery")


class ClaimLost(GatewayError):
    """This daemon's claim on a delivery ran out and another daemon (or an operator) has the row
    now: nothing more is sent or written for it here."""


class NeedsConfirmation(OutcomeUnknownError):
    """A delivery may already have been done and the peer offers no way to find out:
    an operator decides (link what exists, or resend)."""


@dataclass
class DeliveryResult:
    delivered: int = 0
    skipped: int = 0
    retrying: int = 0
    parked: int = 0
    needs_confirmation: int = 0
    resolved_by_lookup: int = 0
    claims_lost: int = 0


def complaint_from_row(row: ComplaintRow, local_ref: str) -> Complaint:
    """The canonical complaint as stored (without the reporter: the hub never gets it)."""
    return Complaint(
        ref=local_ref,
        title=row.title,
        body=row.body,
        created_at=ensure_utc(row.local_created_at),
        updated_at=ensure_utc(row.local_updated_at),
        status=RawStatus(row.local_status_code or ""),
        category=row.category,
        classification=Classification(row.classification),
        location=Location(**json.loads(row.location_json)) if row.location_json else None,
        channel=row.channel,
        incident_at=ensure_utc(row.incident_at),
        is_anonymous=row.is_anonymous,
        is_secret=row.is_secret,
        agency=row.agency,
    )


class Deliveries:
    def __init__(
        self,
        store: Store,
        target: str,
        adapters: dict[str, LocalApp | Hub],
        routes: dict[str, Route],
        policy: Delivery,
        *,
        owner: str,
        rng: random.Random,
        concurrency: int = 8,
        read_back_after: timedelta | None = None,
        db: AsyncStore | None = None,
        observer: Observer | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ):
        self.store = store
        self.observer = observer or Observer()
        self.stopping = stopping  # true once the daemon stops: no new claim
        self.db = db or AsyncStore(store, workers=0)  # the store off the event loop (inline without an engine)
        # After a follow-up reaches the hub, its complaint is read again this soon (not at
        # its quiet pace): to learn the follow-up's hub id, and to see the agency's answer.
        self.read_back_after = read_back_after
        self.target = target
        self.adapters = adapters
        self.routes = routes
        self.policy = policy
        self.owner = owner
        self.rng = rng
        self.concurrency = concurrency
        # How long a call to the target can be under way, retries included: a row whose call
        # started less than this ago is not taken over, even if its daemon's lease ran out (a
        # slow daemon's call may still land; only after this is its outcome truly unknown).
        retry, timeout = adapters[target].context.retry, adapters[target].context.timeout_seconds
        self.in_flight = timedelta(seconds=retry.attempts * (timeout + retry.max_wait) + 30)  # + a wait for the budget

    async def run(self, *, max_claims: int = 400) -> DeliveryResult:
        """Deliver until nothing due is left (a complaint's follow-ups go right after its
        create, claimed as soon as the create is done), or ``max_claims`` rows were taken.

        Rows are claimed only as slots free up, never more than ``concurrency`` at once: a claim
        is a promise to send soon, and rows claimed only to wait would hold their complaints from
        other daemons (and their leases would need keeping) while this one works through the rest."""
        result = DeliveryResult()
        lease = timedelta(seconds=self.policy.lease_seconds)
        active: dict[int, OutboxRow] = {}  # claimed by this run, not yet finished
        tasks: set[asyncio.Task[None]] = set()
        claimed = 0

        async def attempt(row_id: int, row: OutboxRow) -> None:
            try:
                await self._attempt(row, result)
            finally:
                active.pop(row_id, None)

        keeper = asyncio.create_task(self._keep_claims(active, lease))
        try:
            while True:
                free = min(self.concurrency - len(tasks), max_claims - claimed)
                if free > 0 and not self.stopping():
                    rows = await self.db.claim_due(self.target, self.owner, lease, limit=free, in_flight=self.in_flight)
                    claimed += len(rows)
                    for row in rows:
                        row_id = existing_id(row)
                        active[row_id] = row
                        tasks.add(asyncio.create_task(attempt(row_id, row)))
                if not tasks:
                    break
                finished, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    task.result()  # an error the attempt did not handle fails the run, as before
        finally:
            keeper.cancel()
            for task in tasks:
                task.cancel()
        return result

    # -- the claim: every write to a row shows its token -----------------------------------

    async def _sending(self, row: OutboxRow) -> None:
        if not await self.db.mark_sending(row.id, token=row.claim_token):
            raise ClaimLost(f"delivery {row.id}: the claim ran out before the call; not sent")

    async def _finish(self, row: OutboxRow, **kwargs: Any) -> None:
        if not await self.db.finish_delivery(row.id, token=row.claim_token, **kwargs):
            done = kwargs.get("link")
            raise ClaimLost(
                f"delivery {row.id}: the claim ran out during the call, which succeeded"
                + (f" ({done[1]} id {done[2]})" if done else "")
                + "; the daemon that took it over treats it as of unknown outcome"
            )

    async def _fail(self, row: OutboxRow, error: str, **kwargs: Any) -> None:
        if not await self.db.fail_delivery(row.id, error, token=row.claim_token, **kwargs):
            raise ClaimLost(f"delivery {row.id}: the claim ran out during the call, which failed ({error})")

    async def _keep_claims(self, active: dict[int, OutboxRow], lease: timedelta) -> None:
        """Extend the leases of the rows under way, in one statement, so that a slow peer does
        not let another daemon take them over (a daemon that dies stops extending, and its claims
        run out). A claim found lost is left to its attempt: the next write to the row shows the
        token and is refused."""
        period = max(0.5, lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            try:
                await self.db.extend_claims({row_id: row.claim_token for row_id, row in active.items()}, lease)
            except StoreUnavailableError as exc:  # tried again next period; a lapsed claim is refused later
                log.warning("claims not extended: the store failed", error=str(exc))

    def _backoff(self, attempts: int) -> timedelta:
        base = min(self.policy.backoff_max_seconds, self.policy.backoff_initial_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=base * self.rng.uniform(0.5, 1.0))

    async def _attempt(self, row: OutboxRow, result: DeliveryResult) -> None:
        # A claimable row still marked as sending: a daemon died during its call.
        unknown = row.outcome_unknown or row.sending_at is not None
        with structlog.contextvars.bound_contextvars(
            complaint_id=row.complaint_id, delivery=row.kind, outbox_id=row.id
        ):
            # Any write to the row below may find the claim gone: then nothing more is done here.
            try:
                try:
                    state = await self._deliver(row, unknown, result)
                except NeedsConfirmation as exc:
                    await self._fail(
                        row,
                        str(exc),
                        retry_at=None,
                        state=OutboxState.NEEDS_CONFIRMATION,
                        outcome_unknown=True,
                        count=False,
                    )
                    await self.db.audit("delivery_needs_confirmation", complaint_id=row.complaint_id, detail=str(exc))
                    result.needs_confirmation += 1
                    self._ended(row, NEEDS_CONFIRMATION)
                    log.error("delivery needs an operator's confirmation", error=str(exc))
                except (MappingError, PermanentPeerError, StoreRefusedError) as exc:
                    # The store refusing what a call brought back (its id, the link) comes after
                    # the call: the peer did it, and a resend would do it twice.
                    maybe_done = unknown or (
                        isinstance(exc, StoreRefusedError) and (await self.db.delivery(row.id)).sending_at is not None
                    )
                    await self._fail(row, str(exc), retry_at=None, outcome_unknown=maybe_done)
                    await self.db.audit("delivery_parked", complaint_id=row.complaint_id, detail=str(exc))
                    result.parked += 1
                    self._ended(row, REFUSED)
                    log.error("delivery parked", error=str(exc))
                except PeerUnavailableError as exc:
                    # No call was made: not an attempt. Wait for the breaker's probe.
                    retry_at = self.store.clock() + timedelta(seconds=self.policy.backoff_initial_seconds)
                    await self._fail(row, str(exc), retry_at=retry_at, outcome_unknown=unknown, count=False)
                    result.retrying += 1
                    self._ended(row, RETRIED)
                except (TransientPeerError, AmbiguousOutcomeError) as exc:
                    # Ambiguous only if the call that changes the peer was under way: an upload
                    # before a create leaves at most an unused document behind.
                    ambiguous = unknown or (
                        isinstance(exc, AmbiguousOutcomeError)
                        and (await self.db.delivery(row.id)).sending_at is not None
                    )
                    attempts = row.attempts + 1
                    if attempts >= self.policy.max_attempts:
                        await self._fail(
                            row, f"gave up after {attempts} attempts: {exc}", retry_at=None, outcome_unknown=ambiguous
                        )
                        await self.db.audit("delivery_parked", complaint_id=row.complaint_id, detail=str(exc))
                        result.parked += 1
                        self._ended(row, PARKED)
                        log.error("delivery parked", error=str(exc), attempts=attempts)
                    else:
                        retry_at = self.store.clock() + self._backoff(attempts)
                        if exc.retry_after:
                            retry_at = max(retry_at, self.store.clock() + timedelta(seconds=exc.retry_after))
                        await self._fail(row, str(exc), retry_at=retry_at, outcome_unknown=ambiguous)
                        result.retrying += 1
                        self._ended(row, RETRIED)
                        log.warning(
                            "delivery failed; will retry",
                            error=str(exc),
                            attempts=attempts,
                            outcome_unknown=ambiguous,
                            retry_at=retry_at.isoformat(),
                        )
                except (ClaimLost, StoreUnavailableError):
                    # Not a failure of the delivery: another daemon has it now, or the store failed
                    # (then the job fails, this claim runs out and the row is tried again).
                    raise
                except Exception as exc:  # a bug, not the peer: park it with what it was, keep the run going
                    reason = f"internal error ({type(exc).__name__}); see the daemon's log"
                    await self._fail(row, reason, retry_at=None, outcome_unknown=unknown)
                    await self.db.audit("delivery_parked", complaint_id=row.complaint_id, detail=reason)
                    result.parked += 1
                    self._ended(row, PARKED)
                    log.exception("delivery parked after an internal error")
                else:
                    if state is OutboxState.SKIPPED:
                        result.skipped += 1
                    else:
                        result.delivered += 1
                    self._ended(row, DELIVERED)
            except ClaimLost as exc:
                result.claims_lost += 1
                await self.db.audit("claim_lost", complaint_id=row.complaint_id, detail=str(exc))
                log.warning("delivery claim lost to another daemon", error=str(exc))

    def _ended(self, row: OutboxRow, outcome: str) -> None:
        self.observer.delivery_ended(self.target, row.kind, outcome)

    async def _deliver(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        try:
            handler = HANDLERS[DeliveryKind(row.kind)]
        except ValueError:
            raise MappingError(self.target, "outbox kinds", row.kind) from None
        return await handler.deliver(self, row, unknown, result)

    async def _repeatable(self, row: OutboxRow, unknown: bool, write: Write, gateway_ref: str) -> None:
        """A write to a local app whose earlier call may have landed: sent again only when the app
        applies a repeated write of this kind once (by the gateway's reference); else an operator
        decides."""
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        if unknown and write not in local.idempotent_writes:
            raise NeedsConfirmation(
                f"{self.target} may have received delivery {row.id} already and does not apply a repeated "
                f"{write.value} write once; look for reference {gateway_ref} there, then "
                f"`gateway deliveries link {row.id} ID` or `gateway deliveries resend {row.id}`"
            )

    async def _create(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        """Create the complaint at the hub (its files uploaded first), or find it there after a
        lost answer."""
        complaint_row = await self.db.complaint(row.complaint_id)
        route = self.routes[complaint_row.local_instance]
        hub: Hub = self.adapters[self.target]  # type: ignore[assignment]
        local: LocalApp = self.adapters[route.local.name]  # type: ignore[assignment]
        if unknown and await self._created_already(row, complaint_row, hub, result):
            return OutboxState.DONE
        local_ref = await self.db.external_ref(row.complaint_id, route.local.name)
        complaint = complaint_from_row(complaint_row, local_ref or "")
        ids = route.hub_ids(complaint)  # before any upload: an unmapped value parks it at no cost
        doc_ids = await self._uploaded_files(row, route, local, hub)
        draft = HubComplaintDraft(
            complaint=complaint,
            gateway_ref=complaint_row.gateway_ref,
            category_id=ids["category_id"],
            classification_id=ids["classification_id"],
            channel_id=ids["channel_id"],
            attachment_ids=tuple(doc_ids),
            route_fields=dict(route.local.spec.route.fields) if route.local.spec.route else {},
            disposition_id=ids["disposition_id"],
        )
        await self._sending(row)
        hub_ref = await hub.create_complaint(draft)
        # The local app is told the hub's tracking id, where it can keep it (nobody retypes it).
        owe = (DeliveryKind.LOCAL_HUB_REF, route.local.name) if local.supports(Capability.WRITE_HUB_REF) else None
        await self._finish(row, link=(row.complaint_id, self.target, hub_ref), owe=owe)
        await self.db.audit("created_at_hub", complaint_id=row.complaint_id, detail=f"{self.target} id {hub_ref}")
        log.info("complaint created at hub", hub_ref=hub_ref, attachments=len(doc_ids))
        return OutboxState.DONE

    async def _created_already(
        self, row: OutboxRow, complaint_row: ComplaintRow, hub: Hub, result: DeliveryResult
    ) -> bool:
        """After a lost answer: whether the hub's search by the gateway's reference finds the
        complaint (then it is linked and the row done); a hub without that search: an operator."""
        if not hub.supports(Capability.FIND_COMPLAINT):
            raise NeedsConfirmation(
                f"the answer to creating complaint {row.complaint_id} at {self.target} was lost, and "
                f"{self.target} offers no search by reference: look for {hub.describe_ref(complaint_row.gateway_ref)} "
                f"there, then `gateway deliveries link {row.id} HUB_ID` or `gateway deliveries resend "
                f"{row.id}`"
            )
        found = await hub.find_complaint(complaint_row.gateway_ref)
        if found is None:
            return False
        await self._finish(row, link=(row.complaint_id, self.target, found))
        await self.db.audit(
            "created_at_hub",
            complaint_id=row.complaint_id,
            detail=f"{self.target} id {found}, found by reference after a lost answer",
        )
        result.resolved_by_lookup += 1
        return True

    async def _uploaded_files(self, row: OutboxRow, route: Route, local: LocalApp, hub: Hub) -> list[str]:
        """The hub's document ids of the complaint's files. Every file not yet at the hub goes up
        in one upload, as the hub's client sends them; the ids are kept, so a create retried later
        does not upload them again."""
        attachments = [a for a in await self.db.attachments(row.complaint_id) if not a.refused_reason]
        pending = [a for a in attachments if a.hub_doc_id is None]
        fetched = await self._fetch_files(local, route, row.complaint_id, pending, self.target)
        if fetched:
            doc_ids = await hub.upload_attachments([content for _, content in fetched])
            for (att, _), doc_id in zip(fetched, doc_ids, strict=True):  # one id per file (Hub.upload_attachments)
                att.hub_doc_id = doc_id
                await self.db.set_attachment_doc(att.id, doc_id)
        return [a.hub_doc_id for a in attachments if a.hub_doc_id is not None and not a.refused_reason]

    async def _forward(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        """Forward the complaint at the hub to the agency the local app assigned it to. The
        hub's disposition is read first, so a forward whose answer was lost is not sent
        again, and one the create already carried is skipped."""
        hub: Hub = self.adapters[self.target]  # type: ignore[assignment]
        hub_ref = await self.db.external_ref(row.complaint_id, self.target)
        if hub_ref is None:  # cannot happen while the create comes first; kept loud if it does
            raise PermanentPeerError(self.target, "forward", "the complaint is not linked at the hub")
        complaint = await self.db.complaint(row.complaint_id)
        route = self.routes[complaint.local_instance]
        event = await self.db.event(row.event_id)
        institution = route.hub_institution(event.content)
        if institution is None:  # forwarding was turned off since
            await self._finish(row, state=OutboxState.SKIPPED)
            return OutboxState.SKIPPED
        known = {item.ref for item in await self.db.call(reference, self.store, self.target, "institutions")}
        if known and institution not in known:
            raise MappingError(
                route.local.name,
                "agencies",
                event.content or "",
                problem=(f"maps to institution {institution}, which is not among {self.target}'s institutions"),
            )
        state = await hub.read_complaint(hub_ref)
        if state.disposition_id == institution:
            await self._finish(row, state=OutboxState.SKIPPED)
            return OutboxState.SKIPPED
        if not hub.supports(Capability.FORWARD):
            raise MappingError(
                route.local.name,
                "agencies",
                event.content or "",
                problem=(f"cannot be forwarded: the {self.target} adapter has no forwarding call"),
            )
        await self._sending(row)
        await hub.forward(hub_ref, institution, note=None)
        await self._finish(row)
        await self.db.audit(
            "forwarded_at_hub", complaint_id=row.complaint_id, detail=f"to institution {institution} ({event.content})"
        )
        log.info("complaint forwarded at hub", institution=institution)
        return OutboxState.DONE

    async def _fetch_files(
        self, source: LocalApp | Hub, route: Route, complaint_id: int, attachments: list[AttachmentRow], target: str
    ) -> list[tuple[AttachmentRow, AttachmentContent]]:
        """The bytes of ``attachments`` from ``source``, as they may leave the gateway: every file
        sent anywhere passes here. An identity document of an anonymous or confidential complaint
        is held back from the hub (by its name and type, before any download); an image loses its
        metadata (GPS position, device, time) after the download; what is left is checked against
        what ``target`` accepts (its ``attachments:`` policy), as listed and as it will be sent. A
        refused file is recorded with its reason (and quarantined for the operator); the rest goes on."""
        to_hub = target == route.hub.name
        policy = route.hub.spec.attachments if to_hub else route.local.spec.attachments
        cannot = (
            None if source.supports(Capability.FETCH_ATTACHMENT) else f"the {source.name} adapter cannot download files"
        )
        complaint = await self.db.complaint(complaint_id) if to_hub and attachments else None
        out = []
        for att in attachments:
            held = complaint is not None and hold_back_reason(
                route.local.spec.privacy.attachments,
                is_anonymous=complaint.is_anonymous,
                is_secret=complaint.is_secret,
                filename=att.filename,
                content_type=att.content_type,
            )
            refused = cannot or held or _refusal(policy, att.content_type, att.size)
            content = None
            if not refused:
                try:
                    content = await source.fetch_attachment(
                        AttachmentRef(att.local_ref, att.filename, att.content_type, att.size),
                        max_bytes=policy.max_bytes,
                    )
                    # Off the event loop: decoding a 10 MB photo takes a while.
                    content = await asyncio.to_thread(strip_metadata, content)
                except TooLargeError as exc:  # the size listed was wrong: stopped while reading
                    refused = f"{exc.reason} (the hub's limit)" if to_hub else exc.reason
                except UnreadableImage as exc:
                    refused = f"not sent with its metadata: {exc}"
                else:
                    refused = _refusal(policy, content.content_type, len(content.data))
            if refused or content is None:
                await self._refuse_attachment(
                    route, complaint_id, existing_id(att), att.local_ref, refused or "not fetched"
                )
                continue
            out.append((att, content))
        return out

    async def _hub_follow_up(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        hub: Hub = self.adapters[self.target]  # type: ignore[assignment]
        hub_ref = await self.db.external_ref(row.complaint_id, self.target)
        if hub_ref is None:
            reason = await self.db.create_skipped(row.complaint_id, self.target)
            if reason is not None:  # the route keeps this complaint off the hub: its follow-ups too
                await self._finish(row, state=OutboxState.SKIPPED, note=f"the complaint is not at the hub: {reason}")
                return OutboxState.SKIPPED
            # Cannot happen while the create comes first; kept loud if it does.
            raise PermanentPeerError(self.target, "add follow-up", "the complaint is not linked at the hub")
        event = await self.db.event(row.event_id)
        if event.hub_ref is not None:  # seen at the hub already (matched while polling)
            await self._finish(row)
            return OutboxState.DONE
        if unknown and await self._follow_up_there_already(row, event, hub, hub_ref, result):
            return OutboxState.DONE
        complaint = await self.db.complaint(row.complaint_id)
        route = self.routes[complaint.local_instance]
        local: LocalApp = self.adapters[route.local.name]  # type: ignore[assignment]
        files = await self._fetch_files(
            local, route, row.complaint_id, await self.db.attachments(row.complaint_id, event_id=event.id), self.target
        )
        await self._sending(row)
        follow_up_ref = await hub.add_follow_up(
            hub_ref,
            event.content or "",
            gateway_ref=event.gateway_ref,
            is_secret=event.is_secret,
            attachments=[content for _, content in files],
        )
        if follow_up_ref:
            await self.db.set_event_ref(event.id, Side.HUB, follow_up_ref)
        await self._finish(row)
        if self.read_back_after is not None:
            await self.db.call(poll_soon, self.store, row.complaint_id, self.store.clock() + self.read_back_after)
        log.info("follow-up delivered to hub", event_id=event.id)
        return OutboxState.DONE

    async def _follow_up_there_already(
        self, row: OutboxRow, event: EventRow, hub: Hub, hub_ref: str, result: DeliveryResult
    ) -> bool:
        """After a lost answer: whether the hub lists our follow-up already (then its id is kept
        and the row done). The hub lists a complaint's follow-ups: ours is looked for before
        sending again."""
        listed = await hub.follow_ups(hub_ref)
        if any(isinstance(item, RecordError) for item in listed):
            # "Not there" can only be concluded from a listing read whole.
            raise TransientPeerError(
                self.target,
                "GET follow-ups",
                "a follow-up could not be read; cannot tell whether the earlier send arrived",
            )
        candidates = [(item.ref, item.content) for item in listed if isinstance(item, FollowUp)]
        if await self.db.call(recognise_sent_follow_up, self.store, event.id, candidates, same_text):
            # Ours is there: recognised by the hub poll meanwhile, or matched here by its text.
            await self._finish(row)
            result.resolved_by_lookup += 1
            log.info("follow-up found at hub after a lost answer", event_id=event.id)
            return True
        return False

    async def _local_follow_up(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        route = self.routes[self.target]
        local_ref = await self.db.external_ref(row.complaint_id, self.target)
        event = await self.db.event(row.event_id)
        if event.is_secret and route.local.spec.route and route.local.spec.route.secret_follow_ups == "skip":
            reason = "confidential at the hub; route.secret_follow_ups is skip"
            await self.db.audit(
                "secret_follow_up_not_written",
                complaint_id=row.complaint_id,
                detail=f"hub follow-up {event.hub_ref}: {reason}",
            )
            await self._finish(row, state=OutboxState.SKIPPED, note=reason)
            return OutboxState.SKIPPED
        await self._repeatable(row, unknown, Write.FOLLOW_UP, event.gateway_ref)
        files: list[tuple[AttachmentRow, AttachmentContent]] = []
        listed = await self.db.attachments(row.complaint_id, event_id=event.id)
        hub = self.adapters.get(route.hub.name)
        if listed and isinstance(hub, Hub):
            if hub.supports(Capability.FETCH_ATTACHMENT):
                files = await self._fetch_files(
                    hub, route, row.complaint_id, [a for a in listed if not a.refused_reason], self.target
                )
            else:
                for att in listed:
                    await self._refuse_attachment(
                        route,
                        row.complaint_id,
                        att.id,
                        att.local_ref,
                        f"the {route.hub.name} adapter cannot download follow-up files",
                    )
        await self._sending(row)
        ref = await local.write_follow_up(
            local_ref,
            event.content or "",
            author=event.author,
            gateway_ref=event.gateway_ref,
            is_secret=event.is_secret,
            attachments=[content for _, content in files],
        )
        if ref:
            await self.db.set_event_ref(event.id, Side.LOCAL, ref)
        await self._finish(row)
        log.info("hub follow-up delivered to local app", event_id=event.id)
        return OutboxState.DONE

    async def _local_status(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        route = self.routes[self.target]
        event = await self.db.event(row.event_id)
        # Mapped again now: the admin may have added the missing row since it was read.
        status = (
            route.hub_status(event.raw_status_code, event.raw_status_name)
            if event.status is None
            else Status(event.status)
        )
        if status is None:
            raise MappingError(event.origin, "statuses", event.raw_status_name or event.raw_status_code or "")
        to_write = route.local_status_to_write(status)
        complaint = await self.db.complaint(row.complaint_id)
        if await self.db.newer_hub_status_delivered(row.complaint_id, event):
            await self.db.audit(
                "status_outdated",
                complaint_id=row.complaint_id,
                detail=f"hub status {event.raw_status_name or event.raw_status_code} not written: "
                "a newer one already was",
            )
            await self._finish(row, state=OutboxState.SKIPPED)
            return OutboxState.SKIPPED
        if complaint.local_status_code == to_write:
            # Several hub statuses can map to one local status (a hold and work in progress):
            # the status is not written, but what the hub said with it may still be news.
            return await self._status_as_follow_up(
                row, unknown, event, status, complaint, "the local app shows it already"
            )
        rule = route.local.spec.route.conflict if route.local.spec.route else "forward_only"
        if rule == "forward_only":
            now_rank, new_rank = route.status_rank(complaint.local_status_code), route.status_rank(to_write)
            if now_rank is not None and new_rank is not None and new_rank < now_rank:
                reason = (
                    f"hub status {event.raw_status_name or event.raw_status_code} ({to_write}) would move "
                    f"{complaint.local_status_code} back (route.conflict: forward_only)"
                )
                await self.db.audit("status_backwards", complaint_id=row.complaint_id, detail=reason)
                return await self._status_as_follow_up(row, unknown, event, status, complaint, reason)
        elif await self._local_side_wins(route, complaint, event, to_write):
            await self._finish(row, state=OutboxState.SKIPPED)
            return OutboxState.SKIPPED
        local_ref = await self.db.external_ref(row.complaint_id, self.target)
        # The hub adapter's words (the reason, a new agency); the engine adds none of its own.
        hub = self.adapters.get(route.hub.name)
        note = event.content or (
            hub.status_note(RawStatus(event.raw_status_code or "", event.raw_status_name))
            if isinstance(hub, Hub)
            else None
        )
        # Checked at the write itself: an earlier attempt may have taken the other path (the status
        # passed on as a follow-up), and only the write about to be sent again matters.
        await self._repeatable(row, unknown, Write.STATUS, event.gateway_ref)
        await self._sending(row)
        ref = await local.write_status(
            local_ref, RawStatus(to_write, to_write), note=note, gateway_ref=event.gateway_ref
        )
        if ref:
            await self.db.set_event_ref(event.id, Side.LOCAL, ref)
        await self.db.set_local_status(row.complaint_id, to_write, route.local_status(to_write))
        await self._finish(row)
        log.info("hub status delivered to local app", event_id=event.id, status=str(status))
        return OutboxState.DONE

    async def _status_as_follow_up(
        self, row: OutboxRow, unknown: bool, event: Any, status: Status, complaint: ComplaintRow, why: str
    ) -> OutboxState:
        """A hub status that is not written to the local app (it shows that status already, or
        it would move back): its note still reaches the citizen as a follow-up when it is news,
        that is when the hub gave a reason (a hold asking for more data) or the hub's status
        differs from the local one in meaning (on hold at the hub, in progress locally)."""
        news = bool(event.reason) or (complaint.local_status is not None and complaint.local_status != status.value)
        if not (news and event.content):
            await self._finish(row, state=OutboxState.SKIPPED, note=f"not written: {why}")
            return OutboxState.SKIPPED
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        local_ref = await self.db.external_ref(row.complaint_id, self.target)
        await self._repeatable(row, unknown, Write.FOLLOW_UP, event.gateway_ref)
        await self._sending(row)
        # The event's own mark: the follow-up read back is known as the gateway's, never sent up.
        ref = await local.write_follow_up(local_ref or "", event.content, author=None, gateway_ref=event.gateway_ref)
        if ref:
            await self.db.set_event_ref(event.id, Side.LOCAL, ref)
        await self._finish(row, note=f"{STATUS_AS_FOLLOW_UP} ({why})")
        log.info("hub status note delivered to local app as a follow-up", event_id=event.id)
        return OutboxState.DONE

    async def _local_hub_ref(self, row: OutboxRow, unknown: bool, result: DeliveryResult) -> OutboxState:
        """Write the hub's tracking id into the local app (an app that cannot keep it: skipped)."""
        local: LocalApp = self.adapters[self.target]  # type: ignore[assignment]
        complaint = await self.db.complaint(row.complaint_id)
        hub_ref = await self.db.external_ref(row.complaint_id, complaint.hub_instance)
        if hub_ref is None or not local.supports(Capability.WRITE_HUB_REF):
            await self._finish(row, state=OutboxState.SKIPPED)
            return OutboxState.SKIPPED
        local_ref = await self.db.external_ref(row.complaint_id, self.target)
        await self._repeatable(row, unknown, Write.HUB_REF, complaint.gateway_ref)
        await self._sending(row)
        await local.write_hub_ref(local_ref or "", hub_ref, gateway_ref=complaint.gateway_ref)
        await self._finish(row)
        log.info("hub tracking id written to local app", hub_ref=hub_ref)
        return OutboxState.DONE

    async def _local_side_wins(self, route: Route, complaint: ComplaintRow, event: Any, to_write: str) -> bool:
        """Both sides changed: the local app's status moved by itself (after the complaint
        was created) to something else than the hub's. The route's rule decides, and
        the conflict goes to the audit trail."""
        local_change = await self.db.last_local_status_change(complaint.id, route.local.name)
        if local_change is None or local_change.raw_status_code in (None, to_write):
            return False
        if ensure_utc(local_change.occurred_at) <= ensure_utc(complaint.local_created_at):
            return False  # the status it was created with, not a change
        if complaint.local_status_code != local_change.raw_status_code:
            return False  # the gateway has written over it since
        rule = route.local.spec.route.conflict if route.local.spec.route else "hub_wins"
        local_later = ensure_utc(local_change.occurred_at) > ensure_utc(event.occurred_at)
        keep_local = rule == "local_wins" or (rule == "latest_wins" and local_later)
        await self.db.audit(
            "status_conflict",
            complaint_id=complaint.id,
            detail=(
                f"hub {event.raw_status_name or event.raw_status_code} at "
                f"{ensure_utc(event.occurred_at).isoformat()}, local "
                f"{local_change.raw_status_code} at {ensure_utc(local_change.occurred_at).isoformat()}: {rule}, "
                + ("kept the local status" if keep_local else f"wrote {to_write}")
            ),
        )
        return keep_local

    async def _refuse_attachment(
        self, route: Route, complaint_id: int, attachment_id: int, local_ref: str, reason: str
    ) -> None:
        await self.db.set_attachment_refused(attachment_id, reason)
        await self.db.quarantine(route.local.name, "attachments", local_ref, reason)
        # A held-back identity document is a privacy decision of its own: counted apart in the audit.
        action = "attachment_held_back" if reason.startswith(HELD_BACK) else "attachment_refused"
        await self.db.audit(action, complaint_id=complaint_id, detail=f"attachment {local_ref}: {reason}")
        log.warning("attachment refused; the complaint goes on without it", attachment=local_ref, reason=reason)


@dataclass(frozen=True, slots=True)
class Handler:
    """How one kind of delivery is made: the side it goes to, and the method that makes it
    (it returns the row's final state, DONE or SKIPPED, or raises by the exception tree)."""

    to: Side
    deliver: Callable[[Deliveries, OutboxRow, bool, DeliveryResult], Awaitable[OutboxState]]


# Each outbox kind and its handler; docs/architecture.md's delivery table says what proves
# each one's success (tests/test_delivery_kinds.py keeps both complete).
HANDLERS: dict[DeliveryKind, Handler] = {
    DeliveryKind.CREATE_COMPLAINT: Handler(Side.HUB, Deliveries._create),
    DeliveryKind.FORWARD_COMPLAINT: Handler(Side.HUB, Deliveries._forward),
    DeliveryKind.HUB_FOLLOW_UP: Handler(Side.HUB, Deliveries._hub_follow_up),
    DeliveryKind.LOCAL_FOLLOW_UP: Handler(Side.LOCAL, Deliveries._local_follow_up),
    DeliveryKind.LOCAL_STATUS: Handler(Side.LOCAL, Deliveries._local_status),
    DeliveryKind.LOCAL_HUB_REF: Handler(Side.LOCAL, Deliveries._local_hub_ref),
}


def _refusal(policy: Any, content_type: str | None, size: int | None) -> str | None:
    """Why the hub would refuse an attachment, or None."""
    if size is not None and size > policy.max_bytes:
        return f"{size} bytes is over the hub's limit of {policy.max_bytes}"
    if content_type is not None and content_type.split(";")[0].strip().lower() not in {
        t.lower() for t in policy.allowed_types
    }:
        return f"type {content_type} is not accepted by the hub ({', '.join(policy.allowed_types)})"
    return None
