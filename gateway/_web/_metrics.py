"""The daemon's Prometheus metrics, served at ``/metrics``.

Three sources, one registry per daemon (never the client's global one: a test process makes
many daemons):

- what happens, counted as it happens: :class:`Metrics` is the engine's
  :class:`~gateway._engine._observer.Observer` (deliveries, peer answers, job durations);
- what this process holds, read at each scrape on the event loop (breakers, budgets);
- what the store says, read at each scrape in the engine's store thread
  (:class:`~gateway._web._store_figures.StoreFigures`). Several daemons sharing a store show the
  same figures there; the counters are each process's own.

The names are in ``_metric_names.py`` (``METRIC_NAMES``, exported here too).

Labels are instance names, delivery kinds, outcomes, HTTP methods and codes, job names and
agency codes: never a record's content, a reference, a person or a URL.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder

from gateway import __version__
from gateway._adapter import Hub
from gateway._engine._delivery import HANDLERS
from gateway._engine._observer import OUTCOMES, Observer
from gateway._store import Side
from gateway._store._deadlines import DeadlineCounter
from gateway._web._metric_names import (
    BREAKER_OPEN,
    BUDGET_RATE,
    BUILD_INFO,
    DEADLINE_METRICS,
    DELIVERIES,
    JOB_DURATION,
    METRIC_LABELS,
    METRIC_NAMES,
    PEER_RATE_LIMITED,
    PEER_REQUESTS,
)
from gateway._web._store_figures import DUE_SOON_WITHIN, StoreFigures

if TYPE_CHECKING:
    from gateway._engine import Engine
    from gateway._web._context import WebContext

# METRIC_NAMES is the daemon's contract with its dashboards and alerts: importable from here.
__all__ = ["DEADLINE_METRICS", "METRIC_NAMES", "DeadlineCounter", "Metrics", "add_metrics_routes"]

#: The series :meth:`Metrics.own_figures` reads: this process's counters only. A registry restricted
#: to them never calls the store's collector (which would query the store in the caller's thread).
OWN_SERIES = (DELIVERIES, PEER_REQUESTS, PEER_RATE_LIMITED, JOB_DURATION + "_sum", JOB_DURATION + "_count")

# No lapor_gateway_*_created series beside each counter and histogram: Prometheus does not need
# them, and they doubled every scrape. (A switch of the client library, for the whole process.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # the client leaves it unannotated

#: A job runs from a fraction of a second (nothing due) to many minutes (a first backfill-sized intake).
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, math.inf)

#: Seconds a scrape waits for the store's figures (the store thread may be busy with a job's call).
SCRAPE_TIMEOUT = 10.0


class Metrics(Observer):
    """The metrics of one daemon, in a registry of their own. Counts what the engine tells
    (:class:`~gateway._engine._observer.Observer`); :meth:`watch` adds what the engine holds and
    what its store says; :meth:`exposition` renders a scrape."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.engine: Engine | None = None
        r = self.registry
        self.deliveries = Counter(
            DELIVERIES,
            "Delivery attempts by target instance, outbox kind and how they ended",
            list(METRIC_LABELS[DELIVERIES]),
            registry=r,
        )
        self.peer_requests = Counter(
            PEER_REQUESTS,
            'HTTP requests to a peer (retries included) by method and answer: the status code, or "error" '
            "when none came",
            list(METRIC_LABELS[PEER_REQUESTS]),
            registry=r,
        )
        self.rate_limited = Counter(
            PEER_RATE_LIMITED,
            "Answers HTTP 429 (too many requests)",
            list(METRIC_LABELS[PEER_RATE_LIMITED]),
            registry=r,
        )
        self.breaker_open = Gauge(
            BREAKER_OPEN,
            "1 while this process leaves the peer alone (breaker open or half-open), else 0",
            list(METRIC_LABELS[BREAKER_OPEN]),
            registry=r,
        )
        self.budget_rate = Gauge(
            BUDGET_RATE,
            "Requests per second this process may send the peer now (after 429s and its share of the "
            "daemons on the store); +Inf without a limit",
            list(METRIC_LABELS[BUDGET_RATE]),
            registry=r,
        )
        self.job_duration = Histogram(
            JOB_DURATION,
            "How long a job's run took, failed runs included",
            list(METRIC_LABELS[JOB_DURATION]),
            buckets=JOB_BUCKETS,
            registry=r,
        )
        Gauge(BUILD_INFO, "The running gateway's version", ["version"], registry=r).labels(__version__).set(1)
        # Each job's last run, for the dashboard: a histogram keeps no last value, and a gauge of it
        # would repeat the histogram to Prometheus. Written on the event loop; read as a copy.
        self._last_run: dict[tuple[str, str], float] = {}

    # -- the engine's events (on the event loop) ---------------------------------------------

    def delivery_ended(self, instance: str, kind: str, outcome: str) -> None:
        self.deliveries.labels(instance, kind, outcome).inc()

    def peer_answered(self, instance: str, method: str, code: str) -> None:
        self.peer_requests.labels(instance, method, code).inc()
        if code == "429":
            self.rate_limited.labels(instance).inc()

    def job_ran(self, instance: str, job: str, seconds: float) -> None:
        self.job_duration.labels(instance, job).observe(seconds)
        self._last_run[instance, job] = seconds

    # -- what this process counted, for the dashboard -----------------------------------------

    def own_figures(self) -> dict[str, dict[str, Any]]:
        """Per instance, what this process counted since it started: deliveries by outcome (over
        every kind), requests by answer (over every method), 429s, and each job's runs with their
        mean and last duration. Read from the registry (the figures /metrics serves), in any thread."""
        found: dict[str, dict[str, Any]] = {}
        runs: dict[tuple[str, str], dict[str, float]] = {}
        for family in self.registry.restricted_registry(OWN_SERIES).collect():
            for sample in family.samples:
                labels, value = sample.labels, sample.value
                figures = found.setdefault(labels["adapter"], _no_figures())
                if sample.name == DELIVERIES:
                    figures["deliveries"][labels["outcome"]] += int(value)
                elif sample.name == PEER_REQUESTS:
                    figures["requests"][labels["code"]] = figures["requests"].get(labels["code"], 0) + int(value)
                elif sample.name == PEER_RATE_LIMITED:
                    figures["rate_limited"] = int(value)
                else:  # the duration histogram's _sum and _count
                    runs.setdefault((labels["adapter"], labels["task"]), {})[sample.name.rsplit("_", 1)[1]] = value
        last_run = dict(self._last_run)
        for (instance, job), of_job in sorted(runs.items()):
            count, total = int(of_job.get("count", 0)), of_job.get("sum", 0.0)
            found[instance]["jobs"].append(
                {
                    "job": job,
                    "runs": count,
                    "mean_seconds": total / count if count else None,
                    "last_seconds": last_run.get((instance, job)),
                }
            )
        for figures in found.values():
            figures["requests"] = [{"code": code, "count": n} for code, n in sorted(figures["requests"].items())]
        return found

    # -- set-up ------------------------------------------------------------------------------

    def watch(
        self,
        engine: Engine,
        *,
        jobs: Iterable[tuple[str, str]] = (),
        deadline_counts: DeadlineCounter | None = None,
        due_within: timedelta = DUE_SOON_WITHIN,
    ) -> None:
        """Count ``engine``'s events (it becomes the engine's observer), and serve what it
        holds and what its store says. ``jobs``: the daemon's (instance, job) pairs, shown
        from the start. ``deadline_counts``: the deadline figures' source; without it
        lapor_gateway_complaints_due_soon and _overdue are not served."""
        self.engine = engine
        engine.observer = self
        roles = {name: "hub" if isinstance(adapter, Hub) else "local_app" for name, adapter in engine.adapters.items()}
        self.registry.register(
            StoreFigures(
                engine.store,
                roles,
                deadline_counts=deadline_counts,
                due_within=due_within,
                agencies={
                    name: instance.spec.agencies
                    for name, instance in engine.config.instances.items()
                    if roles.get(name) == "local_app"
                },
            )
        )
        # Every series that can be known now starts at 0: a rate over a series that appears only
        # with its first event misses that event, and a panel of it stays empty until then.
        for name, role in roles.items():
            side = Side.HUB if role == "hub" else Side.LOCAL
            for kind, handler in HANDLERS.items():
                if handler.to is side:
                    for outcome in OUTCOMES:
                        self.deliveries.labels(name, kind.value, outcome)
            self.rate_limited.labels(name)
        for instance, job in jobs:
            self.job_duration.labels(instance, job)

    def read_live(self) -> None:
        """Breakers and budgets as this process holds them now. On the event loop: a budget's
        rate is brought up to date as it is read."""
        if self.engine is None:
            return
        for name, adapter in self.engine.adapters.items():
            breaker = adapter.http.breaker
            self.breaker_open.labels(name).set(0 if breaker.state == breaker.CLOSED else 1)
            budget = adapter.http.budget
            rate = budget.current_rps if budget is not None else None
            self.budget_rate.labels(name).set(math.inf if rate is None else rate)

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """A scrape: the body and its content type (the text format, or OpenMetrics when
        ``accept`` asks for it). The store's figures are read in the engine's store thread."""
        self.read_live()
        encode, content_type = choose_encoder(accept or "")
        if self.engine is None:
            return encode(self.registry), content_type
        return await self.engine.db.call(encode, self.registry), content_type


def _no_figures() -> dict[str, Any]:
    return {"deliveries": dict.fromkeys(OUTCOMES, 0), "requests": {}, "rate_limited": 0, "jobs": []}


def add_metrics_routes(app: web.Application, context: WebContext) -> None:
    async def metrics(request: web.Request) -> web.Response:
        try:
            body, content_type = await asyncio.wait_for(
                context.metrics.exposition(request.headers.get("Accept")), SCRAPE_TIMEOUT
            )
        except TimeoutError:
            return web.Response(status=503, text=f"the store did not answer within {SCRAPE_TIMEOUT:g} s\n")
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/metrics", metrics)
