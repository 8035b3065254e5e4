"""The names of the daemon's metrics: one place, for the code that serves them, the tests and the
docs (docs/architecture.md has their table)."""

from __future__ import annotations

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
#: Each metric's labels. ``adapter`` is the adapter instance's name and ``task`` the job's (intake,
#: deliver, hub_poll, reference; ``adapter`` and ``job`` in the logs): Prometheus sets ``instance``
#: and ``job`` to the scraped target and scrape job, so those names would be renamed exported_*.
METRIC_LABELS: dict[str, tuple[str, ...]] = {
    DELIVERIES: ("adapter", "kind", "outcome"),
    PEER_REQUESTS: ("adapter", "method", "code"),
    PEER_RATE_LIMITED: ("adapter",),
    BREAKER_OPEN: ("adapter",),
    BUDGET_RATE: ("adapter",),
    OUTBOX: ("adapter", "state"),
    OLDEST_OWED: ("adapter",),
    OLDEST_DUE_READ: ("adapter",),
    DUE_SOON: ("adapter", "agency"),
    OVERDUE: ("adapter", "agency"),
    JOB_DURATION: ("adapter", "task"),
    JOB_LAST_SUCCESS: ("adapter", "task"),
    BUILD_INFO: ("version",),
}
#: Served only when a deadline counter is given (``Metrics.watch``).
DEADLINE_METRICS = (DUE_SOON, OVERDUE)

#: The outbox states of lapor_gateway_outbox_deliveries, as ``gateway status`` counts them.
OUTBOX_STATES = ("owed", "failing", "parked", "needs_confirmation")
