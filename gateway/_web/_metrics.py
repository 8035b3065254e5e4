"""The daemon's Prometheus metrics, served at ``/metrics``.

Three sources, one registry per daemon (never the client's global one: a test process makes
many daemons):

- what happens, counted as it happens: :class:`Metrics` is the engine's
  :class:`~gateway._engine._observer.Observer` (deliveries, peer answers, job durations);
- what this process holds, read at each scrape on the event loop (breakers, budgets);
- what the store says, read at each scrape in the engine's store thread (:class:`StoreFigures`):
  the outbox, the oldest owed delivery and due hub read, each job's last success, and the
  complaints due soon and overdue when a deadline counter is given. Several daemons sharing a
  store show the same figures there; the counters are each process's own.

Labels are instance names, delivery kinds, outcomes, HTTP methods and codes, job names and
agency codes: never a record's content, a reference, a person or a URL.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from gateway import __version__
from gateway._adapter import Hub
from gateway._engine._delivery import HANDLERS
from gateway._engine._observer import OUTCOMES, Observer
from gateway._errors import safe_text
from gateway._store import Side, Store
from gateway._store._hub_reads import poll_backlog
from gateway._store._report import job_runs, outbox_figures
from gateway._timezones import ensure_utc

if TYPE_CHECKING:
    from gateway._engine import Engine
    from gateway._web._context import WebContext

log = structlog.get_logger("gateway.metrics")

# No lapor_gateway_*_created series beside each counter and histogram: Prometheus does not need
# them, and they doubled every scrape. (A switch of the client library, for the whole process.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # the client leaves it unannotated

PREFIX = "lapor_gateway_"
DELIVERIES = PREFIX + "deliveries_total"
PEER_REQUESTS = PREFIX + "peer_requests_total"
PEER_RATE_LIMITED = PREFIX + "peer_rate_limited_total"
BREAKER_OPEN = PREFIX + "breaker_open"
BUDGET_RATE = PREFIX + "budget_requests_per_second"
OUTBOX = PREFIX + "outbox_deliveries"
OLDEST_OWED = PREFIX + "oldest_owed_delivery_age_seconds"
OLDEST_DUE_READ = PREFIX + "oldest_due_hub_read_age_seconds"
DUE_SOON = PREFIX + "complaints_due_soon"
OVERDUE = PREFIX + "complaints_overdue"
JOB_DURATION = PREFIX + "job_duration_seconds"
JOB_LAST_SUCCESS = PREFIX + "job_last_success_timestamp_seconds"
BUILD_INFO = PREFIX + "build_info"

#: Every metric the daemon serves, by its base name (docs/architecture.md has the table).
METRIC_NAMES: tuple[str, ...] = (
    DELIVERIES,
    PEER_REQUESTS,
    PEER_RATE_LIMITED,
    BREAKER_OPEN,
    BUDGET_RATE,
    OUTBOX,
    OLDEST_OWED,
    OLDEST_DUE_READ,
    DUE_SOON,
    OVERDUE,
    JOB_DURATION,
    JOB_LAST_SUCCESS,
    BUILD_INFO,
)
#: Served only when a deadline counter is given (:meth:`Metrics.watch`).
DEADLINE_METRICS = (DUE_SOON, OVERDUE)

#: The outbox states of lapor_gateway_outbox_deliveries, as ``gateway status`` counts them.
OUTBOX_STATES = ("owed", "failing", "parked", "needs_confirmation")

#: A job runs from a fraction of a second (nothing due) to many minutes (a first backfill-sized intake).
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, math.inf)

#: Seconds a scrape waits for the store's figures (the store thread may be busy with a job's call).
SCRAPE_TIMEOUT = 10.0

#: How far ahead a deadline counts as due soon, unless :meth:`Metrics.watch` is told otherwise.
DUE_SOON_WITHIN = timedelta(days=2)


class DeadlineFigure(Protocol):
    """One row of the deadlines branch's ``deadline_counts`` (``DeadlineCount``)."""

    @property
    def instance(self) -> str: ...
    @property
    def agency(self) -> str: ...
    @property
    def due_soon(self) -> int: ...
    @property
    def overdue(self) -> int: ...


#: ``deadline_counts(store, now, due_within)`` of ``gateway._store._deadlines``.
DeadlineCounter = Callable[[Store, datetime, timedelta], Sequence[DeadlineFigure]]


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
            ["instance", "kind", "outcome"],
            registry=r,
        )
        self.peer_requests = Counter(
            PEER_REQUESTS,
            'HTTP requests to a peer (retries included) by method and answer: the status code, or "error" '
            "when none came",
            ["instance", "method", "code"],
            registry=r,
        )
        self.rate_limited = Counter(PEER_RATE_LIMITED, "Answers HTTP 429 (too many requests)", ["instance"], registry=r)
        self.breaker_open = Gauge(
            BREAKER_OPEN,
            "1 while this process leaves the peer alone (breaker open or half-open), else 0",
            ["instance"],
            registry=r,
        )
        self.budget_rate = Gauge(
            BUDGET_RATE,
            "Requests per second this process may send the peer now (after 429s and its share of the "
            "daemons on the store); +Inf without a limit",
            ["instance"],
            registry=r,
        )
        self.job_duration = Histogram(
            JOB_DURATION,
            "How long a job's run took, failed runs included",
            ["instance", "job"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        Gauge(BUILD_INFO, "The running gateway's version", ["version"], registry=r).labels(__version__).set(1)

    # -- the engine's events (on the event loop) ---------------------------------------------

    def delivery_ended(self, instance: str, kind: str, outcome: str) -> None:
        self.deliveries.labels(instance, kind, outcome).inc()

    def peer_answered(self, instance: str, method: str, code: str) -> None:
        self.peer_requests.labels(instance, method, code).inc()
        if code == "429":
            self.rate_limited.labels(instance).inc()

    def job_ran(self, instance: str, job: str, seconds: float) -> None:
        self.job_duration.labels(instance, job).observe(seconds)

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
            StoreFigures(engine.store, roles, deadline_counts=deadline_counts, due_within=due_within)
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


class StoreFigures(Collector):
    """The gauges read from the store at each scrape (in the thread that calls ``collect``)."""

    def __init__(
        self,
        store: Store,
        roles: Mapping[str, str],
        *,
        deadline_counts: DeadlineCounter | None = None,
        due_within: timedelta = DUE_SOON_WITHIN,
    ):
        self.store = store
        self.roles = dict(roles)
        self.deadline_counts = deadline_counts
        self.due_within = due_within

    def _families(self) -> dict[str, GaugeMetricFamily]:
        families = {
            OUTBOX: GaugeMetricFamily(
                OUTBOX,
                "Deliveries owed to an instance now, by state (failing: owed after a failed attempt; parked and "
                "needs_confirmation wait for an operator)",
                labels=["instance", "state"],
            ),
            OLDEST_OWED: GaugeMetricFamily(
                OLDEST_OWED,
                "Seconds since the oldest delivery still owed to an instance became owed (0: none)",
                labels=["instance"],
            ),
            OLDEST_DUE_READ: GaugeMetricFamily(
                OLDEST_DUE_READ,
                "Seconds since the oldest complaint due for a read at a hub became due (0: none): how far behind "
                "polling is",
                labels=["instance"],
            ),
            JOB_LAST_SUCCESS: GaugeMetricFamily(
                JOB_LAST_SUCCESS,
                "When a job last succeeded (Unix time), by any daemon of the store",
                labels=["instance", "job"],
            ),
        }
        if self.deadline_counts is not None:
            families[DUE_SOON] = GaugeMetricFamily(
                DUE_SOON,
                f"Open complaints whose next deadline falls within {_hours(self.due_within)} hours, by agency",
                labels=["instance", "agency"],
            )
            families[OVERDUE] = GaugeMetricFamily(
                OVERDUE, "Open complaints past a deadline, by agency", labels=["instance", "agency"]
            )
        return families

    def describe(self) -> Iterable[Metric]:
        # The names without a query: registering the collector must not read the store.
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        try:
            self._read(families)
        except Exception as exc:  # the store is down: the scrape still serves the process's own counts
            log.warning("metrics: the store could not be read", error=safe_text(exc), error_type=type(exc).__name__)
            families = self._families()  # none half-filled
        yield from families.values()

    def _read(self, families: dict[str, GaugeMetricFamily]) -> None:
        store = self.store
        now = store.clock()
        with store.session() as s:
            for name in sorted(self.roles):
                owed = outbox_figures(s, name)
                counts = (owed.owed, owed.failing, owed.parked, owed.needs_confirmation)
                for state, count in zip(OUTBOX_STATES, counts, strict=True):
                    families[OUTBOX].add_metric([name, state], count)
                families[OLDEST_OWED].add_metric([name], _age(now, owed.oldest_owed_at))
                for run in job_runs(s, name):
                    if run.last_success_at is not None:
                        families[JOB_LAST_SUCCESS].add_metric(
                            [name, run.job], ensure_utc(run.last_success_at).timestamp()
                        )
        for name, role in sorted(self.roles.items()):
            if role == "hub":
                _, oldest = poll_backlog(store, name)
                families[OLDEST_DUE_READ].add_metric([name], _age(now, oldest))
        if self.deadline_counts is not None:
            due_soon: dict[tuple[str, str], int] = defaultdict(int)
            overdue: dict[tuple[str, str], int] = defaultdict(int)
            for row in self.deadline_counts(store, now, self.due_within):  # by tier too: summed per agency
                due_soon[row.instance, row.agency] += row.due_soon
                overdue[row.instance, row.agency] += row.overdue
            for key, count in sorted(due_soon.items()):
                families[DUE_SOON].add_metric(list(key), count)
            for key, count in sorted(overdue.items()):
                families[OVERDUE].add_metric(list(key), count)


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (ensure_utc(now) - ensure_utc(since)).total_seconds())


def _hours(window: timedelta) -> str:
    return f"{window.total_seconds() / 3600:g}"
