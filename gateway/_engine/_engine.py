"""The sync engine: one object that owns the adapters of a configuration and runs
its jobs (intake per local app, polling per hub, delivery per target). The
daemon schedules these jobs; ``gateway sync --once`` runs them in one pass.

A job that fails is recorded with its reason and never stops the other jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import httpx
import structlog

from gateway._adapter import Adapter, Hub, LocalApp
from gateway._capabilities import Capability
from gateway._config import GatewayConfig
from gateway._engine._async_store import AsyncStore
from gateway._engine._backfill import BackfillResult, backfill
from gateway._engine._delivery import Deliveries, DeliveryResult
from gateway._engine._hub_poll import HubPoll, PollResult, poll_policy
from gateway._engine._intake import Intake, IntakeResult
from gateway._engine._mapping import Route
from gateway._engine._observer import Observer
from gateway._errors import GatewayError, StoreRefusedError, StoreUnavailableError, safe_text
from gateway._paging import WalkProgress
from gateway._sanitize import cleaned
from gateway._store import Store, as_store_error
from gateway._store._daemons import HEARTBEAT_SECONDS, heartbeat, leave, peer_down
from gateway._store._deadlines import refresh_deadlines
from gateway._store._privacy import PurgeCounts, purge_closed
from gateway._store._reference import reference_fetched_at, replace_reference

log = structlog.get_logger("gateway.engine")


@dataclass
class ReferenceResult:
    institutions: int = 0
    templates: int = 0


T = TypeVar("T")

INTAKE, HUB_POLL, DELIVER, BACKFILL, REFERENCE = "intake", "hub_poll", "deliver", "backfill", "reference"
PRIVACY_PURGE = "privacy_purge"


class Engine:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        *,
        clients: Mapping[str, httpx.AsyncClient] | None = None,
        owner: str | None = None,
        seed: int | None = None,
        store_workers: int | None = None,
        observer: Observer | None = None,
    ):
        self.config = config
        # Told of every delivery's end, every answer of a peer, every job's duration (the daemon's
        # metrics); the default ignores them.
        self.observer = observer or Observer()
        self.store = store
        # Every store call of the jobs goes through here, in the engine's store thread (off the
        # event loop: a store that waits for a lock must not stall HTTP calls in flight).
        # store_workers=0 makes the calls inline, on the loop (tests/test_loop_lag.py compares both).
        self.db = AsyncStore(store, workers=store_workers)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        # Set when the daemon stops (SIGTERM, Ctrl-C): a delivery run in progress finishes the
        # calls it started and claims no more. Else a busy outbox kept it creating complaints at
        # the hub until the stop's timeout cancelled it mid-call (a create of unknown outcome).
        self.stopping = False
        self.rng = random.Random(seed)
        clients = clients or {}
        self.adapters: dict[str, Adapter] = {
            name: inst.adapter_class(inst.context(), client=clients.get(name))
            for name, inst in config.instances.items()
            if inst.spec.enabled
        }
        for adapter in self.adapters.values():
            # The breaker lives in this process; its changes go to the store, where `gateway status`
            # and the other daemons of the store read them (_sync_breaker).
            adapter.http.breaker.on_change = lambda b: self.db.submit(
                self.store.set_peer_health, b.peer, b.state, b.failures, b.last_error, owner=self.owner
            )
            adapter.http.on_answer = self._peer_answered
        self._deadlines_fresh: set[str] = set()  # local apps whose deadlines follow today's rules
        self.routes: dict[str, Route] = {
            local.name: Route(
                local=local, hub=config.instances[local.spec.route.hub], deadline_defaults=config.settings.deadlines
            )
            for local in config.local_apps()
            if local.spec.route
        }

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
        with contextlib.suppress(Exception):  # the store is gone too: its heartbeat runs out by itself
            await self.db.call(leave, self.store, self.owner)
        await asyncio.to_thread(self.db.close)  # waits for a call under way, not on the loop

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- jobs -----------------------------------------------------------------------------

    async def heartbeat(self) -> int:
        """Tell the store this engine is alive and take this process's share of every peer's
        request budget: 1/N with N live daemons (and backfills) on the store. Returns N."""
        live = await self.db.call(heartbeat, self.store, self.owner)
        for adapter in self.adapters.values():
            budget = getattr(adapter.http, "budget", None)
            if budget is not None:
                budget.set_share(1.0 / live)
        return live

    async def _sync_breaker(self, instance: str) -> None:
        """Before a job calls a peer: if another daemon of the store found it down, leave it
        alone too, until that breaker's reset time."""
        adapter = self.adapters.get(instance)
        if adapter is None:
            return
        down = await self.db.call(peer_down, self.store, instance, besides=self.owner)
        breaker = adapter.http.breaker
        if down is not None and down.seconds_ago < breaker.policy.reset_seconds:
            if breaker.state == breaker.CLOSED:
                log.warning(
                    "peer found down by another daemon; not calling it until its breaker's reset time",
                    found_by=down.owner,
                    seconds_ago=round(down.seconds_ago, 1),
                )
            breaker.trip(down.seconds_ago, down.last_error)

    def _peer_answered(self, peer: str, method: str, code: str) -> None:
        self.observer.peer_answered(peer, method, code)  # looked up at each call: the daemon may set its own

    async def _job(self, instance: str, job: str, work: Callable[[], Awaitable[T]]) -> T | None:
        started = time.monotonic()
        try:
            return await self._run_job(instance, job, work)
        finally:
            self.observer.job_ran(instance, job, time.monotonic() - started)

    async def _run_job(self, instance: str, job: str, work: Callable[[], Awaitable[T]]) -> T | None:
        with structlog.contextvars.bound_contextvars(adapter=instance, job=job):
            await self._sync_breaker(instance)
            await self.db.job_started(instance, job)
            try:
                result = await work()
            except Exception as exc:
                filed = as_store_error(exc, job)
                if isinstance(filed, (StoreUnavailableError, StoreRefusedError)):
                    # The database failed (retriable: the next run tries again); its traceback says how.
                    await self.db.job_finished(instance, job, error=str(filed))
                    log.exception("job failed: the store failed", error=str(filed))
                    return None
                if isinstance(exc, (GatewayError, httpx.HTTPError, OSError)):
                    # Expected kinds of failure: recorded, logged, and the other jobs go on.
                    await self.db.job_finished(instance, job, error=safe_text(exc))
                    log.error("job failed", error=safe_text(exc), error_type=type(exc).__name__)
                    return None
                await self.db.job_finished(instance, job, error=f"internal error ({type(exc).__name__})")
                log.exception("job failed with an internal error")
                return None
            await self.db.job_finished(instance, job)
            if _worth_logging(result):
                log.info("job done", **_fields(result))
            return result

    async def intake(self, local: str) -> IntakeResult | None:
        adapter = self.adapters[local]
        assert isinstance(adapter, LocalApp)
        intake = Intake(self.store, self.routes[local], adapter, db=self.db)

        async def work() -> IntakeResult:
            await self._refresh_deadlines(local)
            return await intake.run()

        return await self._job(local, INTAKE, work)

    async def _refresh_deadlines(self, local: str) -> None:
        """Once per engine and local app, before its first intake: deadlines of complaints taken in
        before (by an older gateway, or under other rules) computed by today's rules."""
        if local in self._deadlines_fresh:
            return
        route = self.routes[local]
        changed = await self.db.call(refresh_deadlines, self.store, local, route.deadlines)
        if changed:
            log.info("deadlines computed by the current rules", adapter=local, complaints=changed)
        self._deadlines_fresh.add(local)

    async def backfill(self, local: str, since: datetime, *, progress: WalkProgress | None = None) -> BackfillResult:
        """Read a local app's history since ``since`` (``gateway backfill``). Unlike the
        scheduled jobs it raises on failure: the operator runs it again to resume."""
        adapter = self.adapters[local]
        assert isinstance(adapter, LocalApp)
        await self.db.job_started(local, BACKFILL)
        beating = asyncio.create_task(self._keep_beating())  # a backfill takes its share of the budget too
        try:
            result = await backfill(
                self.store, Intake(self.store, self.routes[local], adapter, db=self.db), since, progress=progress
            )
        except BaseException as exc:
            await self.db.job_finished(
                local, BACKFILL, error=str(exc) if isinstance(exc, GatewayError) else f"stopped ({type(exc).__name__})"
            )
            raise
        finally:
            beating.cancel()
        await self.db.job_finished(local, BACKFILL)
        return result

    async def _keep_beating(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception as exc:  # the store hiccupped: the next beat tries again
                log.warning("heartbeat failed", error=safe_text(exc))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def poll_hub(self, hub: str) -> PollResult | None:
        adapter = self.adapters[hub]
        assert isinstance(adapter, Hub)
        routes = {name: r for name, r in self.routes.items() if r.hub.name == hub}
        poll = HubPoll(
            self.store,
            adapter,
            routes,
            policy=poll_policy(self.config.instances[hub].spec.polling),
            batch=self.poll_batch(hub),
            rng=self.rng,
            db=self.db,
        )
        return await self._job(hub, HUB_POLL, poll.run)

    async def refresh_reference(self, hub: str) -> ReferenceResult | None:
        """Re-read the hub's institutions and templates into the store's cache. A hub
        adapter without reference data leaves the cache empty (mappings then go unchecked)."""
        adapter = self.adapters[hub]
        assert isinstance(adapter, Hub)

        async def work() -> ReferenceResult:
            result = ReferenceResult()
            for kind in (Capability.INSTITUTIONS, Capability.TEMPLATES):
                if not adapter.supports(kind):
                    continue
                # Texts the store can hold (a NUL, a lone surrogate in one name failed the whole refresh).
                items = [cleaned(item) for item in await getattr(adapter, kind.method)()]
                await self.db.call(replace_reference, self.store, hub, kind.value, items)
                setattr(result, kind.value, len(items))
            return result

        return await self._job(hub, REFERENCE, work)

    async def purge_texts(self, local: str, *, actor: str = "gateway") -> PurgeCounts | None:
        """Purge the texts of ``local``'s complaints closed longer than its retention window
        (``privacy.retention``; docs/privacy-retention.md), as its daily job."""
        retention = self.config.instances[local].spec.privacy.retention

        async def work() -> PurgeCounts:
            if not retention.enabled:
                return PurgeCounts(local)
            return await self.db.call(purge_closed, self.store, local, retention.closed_days, actor=actor)

        return await self._job(local, PRIVACY_PURGE, work)

    def poll_batch(self, hub: str) -> int:
        """Complaints read per poll run: what the hub's request budget allows in the time
        between runs (two requests per complaint). Deliveries do not wait for the run: the
        budget hands out its turns in order, so theirs come between the reads."""
        budget = getattr(self.adapters[hub].http, "budget", None)
        rps = getattr(getattr(budget, "policy", None), "requests_per_second", None)
        if not rps:
            return 500
        rps *= getattr(budget, "share", 1.0)  # this daemon's part of it
        seconds = self.config.schedule_seconds(hub, "hub_poll_seconds")
        return max(10, int(rps * seconds / 2))

    async def deliver(self, target: str) -> DeliveryResult | None:
        read_back = (
            poll_policy(self.config.instances[target].spec.polling).min_interval
            if isinstance(self.adapters[target], Hub)
            else None
        )
        deliveries = Deliveries(
            self.store,
            target,
            cast("dict[str, LocalApp | Hub]", self.adapters),  # every adapter built is one or the other
            self.routes,
            self.config.settings.delivery,
            owner=self.owner,
            rng=self.rng,
            read_back_after=read_back,
            db=self.db,
            observer=self.observer,
            stopping=lambda: self.stopping,
        )
        return await self._job(target, DELIVER, deliveries.run)

    async def run_pass(self) -> dict[str, Any]:
        """One full pass: take in from every local app, deliver to the hubs, read the
        hubs, deliver to the local apps."""
        await self.heartbeat()
        results: dict[str, Any] = {}
        for hub in self.hubs():  # reference data: read once, then by its daily job
            if await self.db.call(reference_fetched_at, self.store, hub, "institutions") is None:
                results[f"{hub}:{REFERENCE}"] = await self.refresh_reference(hub)
        for local in self.routes:
            results[f"{local}:{INTAKE}"] = await self.intake(local)
        for hub in self.hubs():
            results[f"{hub}:{DELIVER}"] = await self.deliver(hub)
        for hub in self.hubs():
            results[f"{hub}:{HUB_POLL}"] = await self.poll_hub(hub)
        for local in self.routes:
            results[f"{local}:{DELIVER}"] = await self.deliver(local)
        return results

    def hubs(self) -> list[str]:
        return [name for name, a in self.adapters.items() if isinstance(a, Hub)]

    def local_apps(self) -> list[str]:
        return list(self.routes)


def _fields(result: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(result).items() if isinstance(v, int) and v}


def _worth_logging(result: Any) -> bool:
    return result is not None and bool(_fields(result))
