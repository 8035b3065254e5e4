"""The daemon: APScheduler 3.x says when each job runs; the store holds all state
that matters, so the job store stays in memory and is rebuilt from config at
every start (two processes must never share an APScheduler job store).

Kept behind this one class so that a later move (APScheduler 4, or several
daemons sharing PostgreSQL) stays contained.

While it runs, the daemon serves HTTP (``web:`` in gateway.yaml): /metrics, /healthz, /readyz
and the dashboard (``gateway._web``), in the same event loop as the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from gateway._config import GatewayConfig
from gateway._engine import DELIVER, HUB_POLL, INTAKE, PRIVACY_PURGE, REFERENCE, Engine
from gateway._errors import safe_text
from gateway._store._daemons import HEARTBEAT_SECONDS
from gateway._store._deadlines import DeadlineCounter, deadline_counts
from gateway._web._context import WebContext
from gateway._web._metrics import Metrics
from gateway._web._server import ROUTES, AddRoutes, WebServer

log = structlog.get_logger("gateway.daemon")

# A job that waits this long after the start before its first run (the others run at once): the
# daily purge does not add its writes to a start-up's catch-up, and a daemon restarted in a loop
# does not purge at every start.
FIRST_RUN_DELAY = {PRIVACY_PURGE: timedelta(minutes=10)}


class Daemon:
    def __init__(
        self,
        engine: Engine,
        config: GatewayConfig,
        *,
        deadline_counts: DeadlineCounter | None = deadline_counts,
        due_within: timedelta | None = None,
        routes: Sequence[AddRoutes] = ROUTES,
        on_listening: Callable[[WebServer], None] | None = None,
        any_port_if_taken: bool = False,
    ):
        """``deadline_counts``: where the deadline figures of the metrics and the dashboard come
        from (the store's; none: not served), with ``due_within`` the window of "due soon"
        (default: ``deadlines.due_soon_hours`` of gateway.yaml);
        ``routes``: the HTTP server's route adders; ``on_listening``: called once the server
        listens (the CLI prints its address); ``any_port_if_taken``: a free port when the one
        configured is taken (the demo), else that is an error."""
        self.engine = engine
        self.config = config
        self.scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._live = 1
        self.metrics = Metrics()
        self.web: WebServer | None = None
        self._deadline_counts = deadline_counts
        self._due_within = due_within or timedelta(hours=config.settings.deadlines.due_soon_hours)
        self._routes = routes
        self._on_listening = on_listening
        self._any_port_if_taken = any_port_if_taken

    def _interval(self, instance: str, key: str) -> float:
        return self.config.schedule_seconds(instance, key)

    def jobs(self) -> list[tuple[str, str, float, Callable[[], Awaitable[Any]]]]:
        """(instance, job, seconds between runs, work) for every job of the configuration."""
        engine = self.engine
        jobs: list[tuple[str, str, float, Callable[[], Awaitable[Any]]]] = []
        for local in engine.local_apps():
            jobs.append(
                (local, INTAKE, self._interval(local, "intake_seconds"), functools.partial(engine.intake, local))
            )
            jobs.append(
                (local, DELIVER, self._interval(local, "deliver_seconds"), functools.partial(engine.deliver, local))
            )
            jobs.append(
                (
                    local,
                    PRIVACY_PURGE,
                    self._interval(local, "privacy_purge_seconds"),
                    functools.partial(engine.purge_texts, local),
                )
            )
        for hub in engine.hubs():
            jobs.append((hub, DELIVER, self._interval(hub, "deliver_seconds"), functools.partial(engine.deliver, hub)))
            jobs.append(
                (hub, HUB_POLL, self._interval(hub, "hub_poll_seconds"), functools.partial(engine.poll_hub, hub))
            )
            jobs.append(
                (
                    hub,
                    REFERENCE,
                    self._interval(hub, "reference_seconds"),
                    functools.partial(engine.refresh_reference, hub),
                )
            )
        return jobs

    async def _tracked(self, work: Callable[[], Awaitable[Any]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await work()
        finally:
            self._running.discard(task)

    def start(self) -> None:
        self.engine.stopping = False
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        grace = int(self.config.settings.schedule.misfire_grace_seconds)
        now = datetime.now(UTC)
        for instance, job, seconds, work in self.jobs():
            # max_instances=1: a run never overlaps the previous one; coalesce: runs missed
            # during a pause become one; a generous misfire grace, because APScheduler's
            # default of 1 s silently skips a run that starts late.
            self.scheduler.add_job(
                self._tracked,
                "interval",
                args=[work],
                seconds=seconds,
                id=f"{instance}:{job}",
                name=f"{instance}:{job}",
                next_run_time=now + FIRST_RUN_DELAY.get(job, timedelta(0)),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace,
            )
            log.info("job scheduled", adapter=instance, job=job, every_seconds=seconds)
        # Alive for the other daemons of the store: each takes its share of every peer's budget.
        self.scheduler.add_job(
            self._tracked,
            "interval",
            args=[self._heartbeat],
            seconds=HEARTBEAT_SECONDS,
            id="heartbeat",
            name="heartbeat",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
        )
        self.scheduler.start()

    def is_scheduling(self) -> bool:
        """Whether jobs are being started: false before :meth:`start`, and from :meth:`stop` on."""
        return self.scheduler is not None and self.scheduler.state == STATE_RUNNING

    async def start_web(self) -> None:
        """Serve HTTP as ``web:`` in gateway.yaml says (nothing when disabled). The metrics
        count the engine's events from here on."""
        settings = self.config.settings.web
        if not settings.enabled:
            return
        self.metrics.watch(
            self.engine,
            jobs=[(i, j) for i, j, _, _ in self.jobs()],
            deadline_counts=self._deadline_counts,
            due_within=self._due_within,
        )
        context = WebContext(
            self.engine,
            self.config,
            self.metrics,
            self.is_scheduling,
            deadline_counts=self._deadline_counts,
            due_within=self._due_within,
        )
        server = WebServer.for_settings(context, settings, routes=self._routes)
        await server.start(any_port_if_taken=self._any_port_if_taken)
        self.web = server
        if self._on_listening is not None:
            self._on_listening(server)

    async def stop_web(self) -> None:
        if self.web is not None:
            await self.web.stop()
            self.web = None

    async def _heartbeat(self) -> None:
        try:
            live = await self.engine.heartbeat()
        except Exception as exc:  # the store hiccupped: the next beat tries again
            log.warning("heartbeat failed", error=safe_text(exc))
            return
        if live != self._live:
            log.info("daemons sharing the store", live=live, budget_share=round(1 / live, 3))
            self._live = live

    async def stop(self, timeout: float = 30.0) -> None:
        """Start no new run, let running ones finish (up to ``timeout``), then shut down."""
        if self.scheduler is None:
            return
        self.engine.stopping = True  # running delivery runs finish their calls and claim no more
        self.scheduler.pause()
        if self._running:
            log.info("waiting for running jobs to finish", running=len(self._running))
            await asyncio.wait(set(self._running), timeout=timeout)
        self.scheduler.shutdown(wait=False)
        self.scheduler = None

    async def run_until_signalled(self, stop: asyncio.Event | None = None) -> None:
        """Run until SIGINT or SIGTERM (or ``stop`` is set), then stop cleanly."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        await self.start_web()  # first: an address in use stops the start-up before any job runs
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
        try:
            self.start()
            log.info("daemon started", jobs=len(self.jobs()))
            await stop.wait()
        finally:
            log.info("daemon stopping")
            try:
                await self.stop()  # /readyz answers 503 from here on, while running jobs finish
            finally:
                await self.stop_web()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            log.info("daemon stopped")
