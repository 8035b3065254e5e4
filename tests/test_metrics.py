"""/metrics after a known sync: the real engine against both simulators over loopback, a real
store (SQLite file; PostgreSQL too when configured), the daemon's HTTP server on a free port,
scraped over real HTTP and read with the official client's parser.

Every metric of METRIC_NAMES is there (the deadline ones only with a deadline counter), the
figures agree with what the store says (``gateway status``'s report) and with what the
simulators saw, and no planted personal data appears in the scrape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_no_personal_data import TRACE, Markers

from gateway import __version__
from gateway._config._schema import Breaker
from gateway._engine import Engine
from gateway._engine._observer import OUTCOMES
from gateway._errors import TransientPeerError
from gateway._store import Store
from gateway._store._report import status_report
from gateway._web._context import WebContext
from gateway._web._metric_names import (
    BREAKER_OPEN,
    BUDGET_RATE,
    BUILD_INFO,
    DEADLINE_METRICS,
    DELIVERIES,
    DUE_SOON,
    JOB_DURATION,
    JOB_LAST_SUCCESS,
    METRIC_LABELS,
    OLDEST_DUE_READ,
    OLDEST_OWED,
    OUTBOX,
    OVERDUE,
    PEER_RATE_LIMITED,
    PEER_REQUESTS,
)
from gateway._web._metrics import METRIC_NAMES, Metrics
from gateway._web._server import WebServer, build_app

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"


class Clock:
    """The store's clock: still, moved by the test (ages are then exact)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Scrape:
    """One scrape, parsed: each sample by its name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in self.families:
            for sample in family.samples:
                self.samples[sample.name, frozenset(sample.labels.items())] = sample.value

    def names(self) -> set[str]:
        """Every metric's name, with or without samples (the parser's family name of a counter drops _total)."""
        return {f.name + ("_total" if f.type == "counter" else "") for f in self.families}

    def label_names(self) -> dict[str, set[str]]:
        """Each metric's label names over its samples (the histogram's ``le`` left out)."""
        found: dict[str, set[str]] = {}
        for family in self.families:
            name = family.name + ("_total" if family.type == "counter" else "")
            for sample in family.samples:
                found.setdefault(name, set()).update(k for k in sample.labels if k != "le")
        return found

    def value(self, name: str, **labels: str) -> float:
        return self.samples[name, frozenset(labels.items())]

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (n, labels), value in self.samples.items() if n == name}


async def _scrape(engine: Engine, config: Any, metrics: Metrics) -> Scrape:
    """/metrics over loopback, from the daemon's own server on a free port."""
    context = WebContext(engine, config, metrics, lambda: True)
    server = WebServer(build_app(context), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url + "metrics")
    finally:
        await server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_a_scrape_after_a_known_sync_shows_every_metric_as_the_store_and_the_peers_saw_it(
    world, tmp_path: Path, store_url: str
):
    mark = Markers()
    for n in range(3):  # personal data in every field that has it, and a complaint that cannot be mapped
        world.local.submit_complaint(
            pelapor={
                "nama": f"Budi {mark('NAMA', f'complaint {n}')}",
                "nik": mark("NIK", f"complaint {n}"),
                "telepon": mark("TELEPON", f"complaint {n}"),
                "email": f"{mark('EMAIL', f'complaint {n}')} di example",
                "alamat": f"Jl. Pemuda {mark('ALAMAT', f'complaint {n}')}",
            },
            judul=f"Jalan berlubang {mark('JUDUL', f'complaint {n}')}",
            isi=f"Lubang di depan rumah {mark('ISI', f'complaint {n}')}",
            kategori=f"Kategori {mark('KATEGORI', 'an unmapped category')}" if n == 0 else "Jalan Rusak",
            lampiran=0,
        )
    for _ in range(2):
        world.step()
    config = world.config(tmp_path, store_url)
    clock = Clock()
    store = Store(store_url, clock=clock)
    metrics = Metrics()
    passes = 3
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine)
            for _ in range(passes):
                await engine.run_pass()
                clock.advance(hours=1)
            engine.adapters[HUB].http.breaker.trip(0.0, "down")  # as another daemon found it
            scrape = await _scrape(engine, config, metrics)
            budgets = {name: a.http.budget.current_rps for name, a in engine.adapters.items()}
        roles = {n: i.role for n, i in config.instances.items() if i.spec.enabled}
        report = {row["name"]: row for row in status_report(store, roles)["instances"]}
    finally:
        store.close()

    # Every metric, the deadline ones only when a deadline counter is given.
    assert set(METRIC_NAMES) - set(DEADLINE_METRICS) <= scrape.names()
    # After a sync every other metric has samples, with the labels of METRIC_LABELS and no others.
    assert scrape.label_names() == {
        name: set(labels) for name, labels in METRIC_LABELS.items() if name not in DEADLINE_METRICS
    }
    assert not set(DEADLINE_METRICS) & scrape.names()
    assert not TRACE.search(scrape.text), mark.hits(scrape.text)

    # Deliveries as they ended, against the store and the hub: each complaint created once.
    hub = report[HUB]
    created = scrape.value(DELIVERIES, adapter=HUB, kind="create_complaint", outcome="delivered")
    assert created == hub["complaints_created"] == len(world.hub.complaints()) == len(world.local.complaints()) - 1
    assert scrape.value(DELIVERIES, adapter=HUB, kind="create_complaint", outcome="refused") == 1  # the unmapped one
    assert scrape.value(OUTBOX, adapter=HUB, state="parked") == hub["deliveries_parked"] == 1
    # Each instance's series start at 0 for its kinds, whatever happened.
    assert scrape.value(DELIVERIES, adapter=LOCAL, kind="local_status", outcome="needs_confirmation") == 0
    outcomes = {dict(labels)["outcome"] for labels in scrape.series(DELIVERIES)}
    assert outcomes == set(OUTCOMES)
    assert scrape.value(DELIVERIES, adapter=LOCAL, kind="local_hub_ref", outcome="delivered") == created

    # The outbox now, as `gateway status` counts it.
    for name, row in report.items():
        assert scrape.value(OUTBOX, adapter=name, state="owed") == row["deliveries_owed"]
        assert scrape.value(OUTBOX, adapter=name, state="failing") == row["deliveries_failing"]
        assert scrape.value(OUTBOX, adapter=name, state="needs_confirmation") == row["deliveries_needing_confirmation"]
        for job, info in row["jobs"].items():
            assert scrape.value(JOB_LAST_SUCCESS, adapter=name, task=job) == _timestamp(info["last_success"])
    assert scrape.value(OLDEST_OWED, adapter=HUB) == 0 == hub["deliveries_owed"]

    # Requests by answer: every create was a POST answered 200 (an upload or a create); codes are codes.
    requests = scrape.series(PEER_REQUESTS)
    assert all(dict(labels)["code"].isdigit() or dict(labels)["code"] == "error" for labels in requests)
    assert scrape.value(PEER_REQUESTS, adapter=HUB, method="POST", code="200") >= created
    assert scrape.value(PEER_RATE_LIMITED, adapter=HUB) == 0

    # Job runs: one of each per pass.
    assert scrape.value(JOB_DURATION + "_count", adapter=HUB, task="hub_poll") == passes
    assert scrape.value(JOB_DURATION + "_count", adapter=LOCAL, task="intake") == passes

    # What this process holds: the breaker tripped above, budgets without a limit in the tests' config.
    assert scrape.value(BREAKER_OPEN, adapter=HUB) == 1 and scrape.value(BREAKER_OPEN, adapter=LOCAL) == 0
    assert budgets == {HUB: None, LOCAL: None}
    assert scrape.value(BUDGET_RATE, adapter=HUB) == math.inf
    assert scrape.value(BUILD_INFO, version=__version__) == 1


async def test_ages_of_the_oldest_owed_delivery_and_of_the_oldest_due_hub_read(world, tmp_path: Path, store_url: str):
    world.step()
    config = world.config(tmp_path, store_url)
    clock = Clock()
    store = Store(store_url, clock=clock)
    metrics = Metrics()
    roles = {n: i.role for n, i in config.instances.items() if i.spec.enabled}
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine)
            await engine.intake(LOCAL)  # every complaint owed to the hub from now
            clock.advance(minutes=90)
            owed = await _scrape(engine, config, metrics)
            await engine.deliver(HUB)  # at the hub now: each due for a read
            clock.advance(hours=2)
            behind = await _scrape(engine, config, metrics)
            report = {row["name"]: row for row in status_report(store, roles)["instances"]}
    finally:
        store.close()
    complaints = len(world.local.complaints())
    delivered = {
        kind: behind.value(DELIVERIES, adapter=HUB, kind=kind, outcome="delivered")
        for kind in ("create_complaint", "hub_follow_up")
    }
    assert delivered["create_complaint"] == complaints
    assert owed.value(OUTBOX, adapter=HUB, state="owed") == sum(delivered.values())  # the creates and follow-ups
    assert owed.value(OLDEST_OWED, adapter=HUB) == 90 * 60
    assert owed.value(OLDEST_OWED, adapter=LOCAL) == 0
    assert owed.value(OLDEST_DUE_READ, adapter=HUB) == 0  # nothing at the hub yet

    assert behind.value(OUTBOX, adapter=HUB, state="owed") == 0
    due = report[HUB]["polls_due"]
    assert due["complaints"] == complaints
    # Never read yet: due since each was created at the hub, two hours ago.
    assert due["oldest_due_since"] == (clock.now - timedelta(hours=2)).isoformat()
    assert behind.value(OLDEST_DUE_READ, adapter=HUB) == 2 * 3600


async def test_creates_whose_answers_are_lost_are_retried_then_wait_for_confirmation_as_the_outbox_says(
    world, tmp_path: Path, store_url: str
):
    world.step()
    config = world.config(tmp_path, store_url)
    config.instances[HUB].spec.breaker = Breaker(failure_threshold=1000)  # every create is tried, none held back
    clock = Clock()
    store = Store(store_url, clock=clock)
    metrics = Metrics()
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine)
            await engine.intake(LOCAL)
            # The hub creates each complaint and the answer never comes: the outcome is unknown, and
            # LAPOR! has no search by reference. First a retry; the retry finds it unknown: an operator.
            world.hub.faults.configure(lost_answer_rate=1.0)
            await engine.deliver(HUB)
            first = await _scrape(engine, config, metrics)
            clock.advance(hours=2)  # past the backoff
            await engine.deliver(HUB)
            second = await _scrape(engine, config, metrics)
    finally:
        store.close()
    complaints = len(world.local.complaints())
    assert world.hub.faults.injected["lost_answers"] > 0
    assert first.value(DELIVERIES, adapter=HUB, kind="create_complaint", outcome="retried") == complaints
    assert first.value(OUTBOX, adapter=HUB, state="failing") == complaints
    assert second.value(DELIVERIES, adapter=HUB, kind="create_complaint", outcome="needs_confirmation") == complaints
    assert second.value(DELIVERIES, adapter=HUB, kind="create_complaint", outcome="delivered") == 0
    assert second.value(OUTBOX, adapter=HUB, state="needs_confirmation") == complaints
    # Each create's one attempt ended without an answer (lost after the hub committed it, or the
    # connection dropped first): a request without a code; none was sent again.
    assert second.value(PEER_REQUESTS, adapter=HUB, method="POST", code="error") == complaints


@dataclass(frozen=True)
class DeadlineCount:  # the deadlines branch's row, as deadline_counts returns it
    instance: str
    agency: str
    tier: str
    due_soon: int
    overdue: int


async def test_deadline_gauges_come_from_the_injected_counter_summed_over_tiers_by_agency(
    world, tmp_path: Path, store_url: str
):
    config = world.config(tmp_path, store_url)
    clock = Clock()
    store = Store(store_url, clock=clock)
    asked: list[tuple[Any, datetime, timedelta]] = []

    def deadline_counts(store_: Store, now: datetime, due_within: timedelta) -> list[DeadlineCount]:
        asked.append((store_, now, due_within))
        return [
            DeadlineCount(LOCAL, "DPU", "answer", due_soon=2, overdue=1),
            DeadlineCount(LOCAL, "DPU", "close", due_soon=1, overdue=0),
            DeadlineCount(LOCAL, "DINKES", "verify", due_soon=0, overdue=4),
            # The app's own text, not among the route's agencies: no label of its own.
            DeadlineCount(LOCAL, "Pak Joko 081277770099", "verify", due_soon=1, overdue=0),
            DeadlineCount(LOCAL, "BAPPEDA", "verify", due_soon=0, overdue=2),
            DeadlineCount(LOCAL, "(none)", "verify", due_soon=0, overdue=1),
        ]

    metrics = Metrics()
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine, deadline_counts=deadline_counts, due_within=timedelta(hours=36))
            scrape = await _scrape(engine, config, metrics)
    finally:
        store.close()
    assert set(METRIC_NAMES) <= scrape.names()
    # The labels dashboards and alerts are written against (deploy/grafana-dashboard.json, docs).
    assert scrape.label_names() == {name: set(METRIC_LABELS[name]) for name in scrape.label_names()}
    assert asked == [(store, clock.now, timedelta(hours=36))]
    assert scrape.series(DUE_SOON) == {
        frozenset({("adapter", LOCAL), ("agency", "DPU")}): 3,
        frozenset({("adapter", LOCAL), ("agency", "DINKES")}): 0,
        frozenset({("adapter", LOCAL), ("agency", "other")}): 1,
        frozenset({("adapter", LOCAL), ("agency", "(none)")}): 0,
    }
    assert scrape.value(OVERDUE, adapter=LOCAL, agency="DPU") == 1
    assert scrape.value(OVERDUE, adapter=LOCAL, agency="DINKES") == 4
    assert scrape.value(OVERDUE, adapter=LOCAL, agency="other") == 2
    assert "081277770099" not in scrape.text and "Joko" not in scrape.text


def test_an_agency_label_is_a_mapped_code_or_else_other():
    from gateway._web._store_figures import agency_label

    mapped = frozenset({"DPU", "DINKES"})
    assert [agency_label(a, mapped) for a in ("DPU", "dpu", "BAPPEDA", "(none)")] == ["DPU", "other", "other", "(none)"]
    # A route that maps no agencies: short codes are labels, anything else (or personal-looking) is not.
    unmapped = frozenset[str]()
    assert [agency_label(a, unmapped) for a in ("BAPPEDA", "DINAS-PU", "Dinas Pekerjaan Umum")] == [
        "BAPPEDA",
        "DINAS-PU",
        "other",
    ]
    assert agency_label("a" + "0812" * 3, unmapped) == "other"  # a phone number in a code's shape
    assert agency_label("X" * 41, unmapped) == "other"  # one series per value, kept forever: short ones


async def test_429s_are_counted_per_peer_beside_the_requests_they_answered(world, tmp_path: Path):
    config = world.config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}")
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    metrics = Metrics()
    try:
        async with Engine(config, store, seed=1) as engine:
            metrics.watch(engine)
            world.hub.faults.configure(throttle_rate=1.0, retry_after_seconds=0)
            with pytest.raises(TransientPeerError):
                await engine.adapters[HUB].http.request("GET", "/complaints/1")
            scrape = await _scrape(engine, config, metrics)
    finally:
        store.close()
    throttled = world.hub.faults.injected["throttled"]
    assert throttled == config.instances[HUB].spec.http_retries.attempts  # each attempt answered 429
    assert scrape.value(PEER_RATE_LIMITED, adapter=HUB) == throttled
    assert scrape.value(PEER_REQUESTS, adapter=HUB, method="GET", code="429") == throttled
    assert scrape.value(PEER_RATE_LIMITED, adapter=LOCAL) == 0
