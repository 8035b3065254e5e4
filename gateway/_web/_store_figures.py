"""The gauges of ``/metrics`` that the store holds, read at each scrape: the outbox, the oldest owed
delivery and due hub read, each job's last success, and the complaints due soon and overdue when a
deadline counter is given. Several daemons sharing a store show the same figures. The queries are
``gateway status``'s (``_store/_report.py``, ``_store/_hub_reads.py``): one concept, one place.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime, timedelta

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway._errors import safe_text
from gateway._logging import scrub_text
from gateway._store import Store
from gateway._store._deadlines import NO_AGENCY, DeadlineCounter
from gateway._store._hub_reads import poll_backlog
from gateway._store._report import job_runs, outbox_figures
from gateway._timezones import ensure_utc
from gateway._web._metric_names import (
    DUE_SOON,
    JOB_LAST_SUCCESS,
    METRIC_LABELS,
    OLDEST_DUE_READ,
    OLDEST_OWED,
    OUTBOX,
    OUTBOX_STATES,
    OVERDUE,
)

log = structlog.get_logger("gateway.metrics")

#: How far ahead a deadline counts as due soon, unless :meth:`Metrics.watch` is told otherwise.
DUE_SOON_WITHIN = timedelta(days=2)


class StoreFigures(Collector):
    """The gauges read from the store at each scrape (in the thread that calls ``collect``)."""

    def __init__(
        self,
        store: Store,
        roles: Mapping[str, str],
        *,
        deadline_counts: DeadlineCounter | None = None,
        due_within: timedelta = DUE_SOON_WITHIN,
        agencies: Mapping[str, Collection[str]] | None = None,
    ):
        """``agencies``: per local app, the agency codes its route maps (``agencies:`` in its
        YAML): the only agency label values besides ``other`` and ``(none)``."""
        self.store = store
        self.roles = dict(roles)
        self.agencies = {name: frozenset(codes) for name, codes in (agencies or {}).items()}
        self.deadline_counts = deadline_counts
        self.due_within = due_within

    def _families(self) -> dict[str, GaugeMetricFamily]:
        families = {
            OUTBOX: GaugeMetricFamily(
                OUTBOX,
                "Deliveries owed to an instance now, by state (failing: owed after a failed attempt; parked and "
                "needs_confirmation wait for an operator)",
                labels=list(METRIC_LABELS[OUTBOX]),
            ),
            OLDEST_OWED: GaugeMetricFamily(
                OLDEST_OWED,
                "Seconds since the oldest delivery still owed to an instance became owed (0: none)",
                labels=list(METRIC_LABELS[OLDEST_OWED]),
            ),
            OLDEST_DUE_READ: GaugeMetricFamily(
                OLDEST_DUE_READ,
                "Seconds since the oldest complaint due for a read at a hub became due (0: none): how far behind "
                "polling is",
                labels=list(METRIC_LABELS[OLDEST_DUE_READ]),
            ),
            JOB_LAST_SUCCESS: GaugeMetricFamily(
                JOB_LAST_SUCCESS,
                "When a job last succeeded (Unix time), by any daemon of the store",
                labels=list(METRIC_LABELS[JOB_LAST_SUCCESS]),
            ),
        }
        if self.deadline_counts is not None:
            families[DUE_SOON] = GaugeMetricFamily(
                DUE_SOON,
                f"Open complaints whose next deadline falls within {_hours(self.due_within)} hours, by agency",
                labels=list(METRIC_LABELS[DUE_SOON]),
            )
            families[OVERDUE] = GaugeMetricFamily(
                OVERDUE, "Open complaints past a deadline, by agency", labels=list(METRIC_LABELS[OVERDUE])
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
                label = agency_label(row.agency, self.agencies.get(row.instance, frozenset()))
                due_soon[row.instance, label] += row.due_soon
                overdue[row.instance, label] += row.overdue
            for key, count in sorted(due_soon.items()):
                families[DUE_SOON].add_metric(list(key), count)
            for key, count in sorted(overdue.items()):
                families[OVERDUE].add_metric(list(key), count)


#: An agency code a label may carry when the route maps none: letters, digits and ``_.-``, short.
AGENCY_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")
#: Six digits in a row: part of a phone number or a NIK, not of an agency's code.
LONG_NUMBER = re.compile(r"\d{6}")
#: The label of an agency that is not a known code: the local app's agency field is its own text,
#: and a label value is kept forever by Prometheus (one series per value, no personal data).
OTHER_AGENCY = "other"


def agency_label(agency: str, known: frozenset[str]) -> str:
    """The ``agency`` label of a complaint's agency: itself when the route maps it (or, with no
    map, when it is a short code with nothing that looks like personal data), else ``other``."""
    if agency == NO_AGENCY:
        return agency
    if known:
        return agency if agency in known else OTHER_AGENCY
    looks_personal = scrub_text(agency) != agency or LONG_NUMBER.search(agency) is not None
    return agency if AGENCY_CODE.fullmatch(agency) and not looks_personal else OTHER_AGENCY


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (ensure_utc(now) - ensure_utc(since)).total_seconds())


def _hours(window: timedelta) -> str:
    return f"{window.total_seconds() / 3600:g}"
