"""Polling benchmark: what reading the hub costs with many open complaints, and how
long a change at the hub takes to reach the local app, in simulated time.

For each size N (10,000 and 100,000 open complaints by default):

* Both simulators run in this process (``SimulatorServer``, loopback HTTP) on one
  ``SimClock(speed=0)``, which is also the store's clock. The engine is the real one
  (``Engine.poll_hub``, ``Engine.deliver``) on the shipped config, pointed at them.
* The hub's request budget runs on simulated time: its clock is the ``SimClock`` and
  its sleep moves the ``SimClock`` on instead of waiting. So ``--rps`` requests per
  *simulated* second is what limits the reads, and the run goes as fast as loopback
  and SQLite allow. The local app's budget is off (its writes are few; it is not
  what is measured).
* The store starts in a steady state, written directly (SQL) rather than by N
  creates: N complaints taken in from Lapor Hendi (its own ids and filing times),
  created at the hub (``preload``; the hub link and the hub's first status in the
  timeline, as a first read leaves them), each with its last change at the hub drawn
  from the change rate (exponential, mean 1/rate) and its last and next read laid out
  by the product's own ``PollPolicy`` from that change on. So the poll's cost is in
  its steady state from the first simulated hour, with no warm-up sweep.
* Then the hub's change model runs at ``--change-rate`` (1% of the open complaints
  per hour) and the daemon's jobs run on their schedules (``hub_poll_seconds``,
  ``deliver_seconds`` of the config) for ``sweep bound + --hours`` simulated hours.

Figures: hub requests per simulated hour (the simulator's own count) against the
budget and against the floor that the sweep bound alone needs (2 reads per open
complaint per bound); the reads by why they were scheduled (a change seen lately, the
sweep, a near deadline, a closed complaint in its reopen window); the delay from each
change at the hub to the local app (the outbox row's done time, on the simulated
clock), p50 / p95 / max, for the changes of the first ``--hours`` (each has had a
whole sweep bound to arrive); and the longest gap between two reads of one open
complaint against the sweep bound.

    .venv/bin/python bench/polling.py                    # 10,000 and 100,000 open, 5 requests/s
    .venv/bin/python bench/polling.py --quick            # 2,000 and 5,000, 1 h of changes
    .venv/bin/python bench/polling.py --open 100000 --sweep-bound 24
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, goal, percentile, print_machine, start_simulator, table

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"


def _time_hub_view(store: Any, n: int, calls: int = 200) -> float:
    """Real milliseconds per call of the store's ``hub_view`` (2 of the 3 store calls of a read)."""
    from gateway._store._hub_reads import hub_view

    ids = random.Random(0).sample(range(1, n + 1), min(calls, n))
    started = time.perf_counter()
    for cid in ids:
        hub_view(store, cid, HUB)
    return round(1000 * (time.perf_counter() - started) / len(ids), 2)


# -- simulated time for the hub's budget -------------------------------------------------------


class SimSeconds:
    """The ``SimClock`` as seconds (the budget's clock), and a sleep that moves it on."""

    def __init__(self, clock: Any):
        self.clock = clock
        self.origin = clock.now()
        self.slept = 0.0

    def __call__(self) -> float:
        return (self.clock.now() - self.origin).total_seconds()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.advance(seconds)
            self.slept += seconds
        await asyncio.sleep(0)


# -- why each read was scheduled ---------------------------------------------------------------


class CountingPolicy:
    """The product's PollPolicy, counting why each next read was set as it was."""

    def __init__(self, policy: Any, reasons: Counter[str]):
        self._policy = policy
        self.reasons = reasons

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def next_read(self, now: datetime, last_change: datetime, closed_at: datetime | None, **kwargs: Any) -> Any:
        result = self._policy.next_read(now, last_change, closed_at, **kwargs)
        p = self._policy
        if closed_at is not None:
            reason = "closed (reopen window)" if result is not None else "closed for good"
        else:
            plain = min(max((now - last_change) * p.quiet_factor, p.min_interval), p.sweep_bound)
            if result is not None and result - now < 0.9 * plain:  # shorter than jitter alone makes it
                reason = "deadline near"
            elif plain >= p.sweep_bound:
                reason = "sweep"
            else:
                reason = "after a change"
        self.reasons[reason] += 1
        return result


# -- the world ---------------------------------------------------------------------------------


def write_config(
    folder: Path,
    store_url: str,
    local_url: str,
    hub_url: str,
    *,
    rps: float,
    concurrency: int,
    sweep_bound_hours: float,
) -> Path:
    """The shipped config pointed at the simulators; the hub's budget and sweep bound of
    this run (the rest of its ``polling:`` as shipped or default); no budget for Lapor Hendi."""
    (folder / "adapters").mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "config" / "adapters").glob("*.yaml")):
        content = source.read_text()
        adapter = re.search(r"^adapter:\s*(\S+)", content, re.M).group(1)  # type: ignore[union-attr]
        content = re.sub(
            r"^base_url:.*$", f"base_url: {hub_url if adapter == 'sp4n' else local_url}", content, flags=re.M
        )
        content = re.sub(r"^budget:.*?(?=^\S|\Z)", "", content, flags=re.M | re.S)
        if adapter == "sp4n":
            content += f"budget:\n  requests_per_second: {rps:g}\n  concurrency: {concurrency}\n"
            polling = re.search(r"^polling:\n((?:  .*\n)*)", content, re.M)
            keys = polling.group(1) if polling else ""
            keys = re.sub(r"^  sweep_bound_hours:.*\n", "", keys, flags=re.M)
            content = re.sub(r"^polling:\n(?:  .*\n)*", "", content, flags=re.M)
            content += f"polling:\n{keys}  sweep_bound_hours: {sweep_bound_hours:g}\n"
        else:
            content += "budget:\n  requests_per_second: null\n"
        (folder / "adapters" / source.name).write_text(content)
    path = folder / "gateway.yaml"
    path.write_text(f"store:\n  url: {store_url}\nlog:\n  format: json\n  level: warning\n")
    return path


def seed_store(
    store: Any, local_sim: Any, hub: Any, policy: Any, *, rate: float, rng: random.Random, now: datetime
) -> dict[str, Any]:
    """The store as a daemon that has run a long time would have it (see the module's text)."""
    from sqlalchemy import insert

    from gateway._store._tables import ComplaintRow, EventRow, LinkRow, OutboxRow
    from lapor_gateway_adapters.sp4n._world import STATUS_CODES, WAIT

    started = time.perf_counter()
    # The hub's first status, as a read records it: its name, and the simulator's (opaque) code.
    wait_code = str(STATUS_CODES[WAIT])
    assert WAIT == "Belum Terverifikasi"
    records = local_sim.complaints()  # id_aduan, dibuat_pada (WIB text), ...
    n = len(records)
    refs = [f"lg-bench-{i:06d}" for i in range(n)]
    preloaded = hub.preload(n, at=now - timedelta(days=1))  # tagged #lapor_gateway #lg_bench_000000...
    hub_ids, first_logs = preloaded["ids"], preloaded["first_logs"]
    wib = timezone(timedelta(hours=7))
    complaints, links, events, outbox = [], [], [], []
    spread = Counter()
    for i, (record, hub_id, log) in enumerate(zip(records, hub_ids, first_logs)):
        filed = datetime.strptime(record["dibuat_pada"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=wib).astimezone(UTC)
        seen = filed + timedelta(minutes=1)
        # Its last change at the hub: the change model's memoryless clock run backwards.
        back = timedelta(hours=rng.expovariate(rate)) if rate > 0 else now - seen
        changed = now - back if now - back > seen else None
        last_read, next_read = _reads(policy, now, changed or seen, filed, rng)
        spread["changed lately" if changed and now - changed < policy.sweep_bound * 4 else "quiet"] += 1
        cid = i + 1
        complaints.append(
            dict(
                id=cid,
                gateway_ref=refs[i],
                local_instance=LOCAL,
                hub_instance=HUB,
                title=record["judul"],
                body=record["isi"],
                category=record.get("kategori"),
                classification="pengaduan",
                channel=record.get("kanal"),
                is_anonymous=False,
                is_secret=False,
                agency=record.get("opd"),
                local_status_code=record["status"],
                local_status="unverified",
                hub_status_code=wait_code,
                hub_status_name="Belum Terverifikasi",
                hub_status="unverified",
                local_created_at=filed,
                local_updated_at=filed,
                first_seen_at=seen,
                hub_polled_at=last_read,
                next_poll_at=next_read,
                hub_changed_at=changed,
                closed_at=None,
            )
        )
        links.append(dict(complaint_id=cid, instance=LOCAL, external_ref=str(record["id_aduan"]), linked_at=seen))
        links.append(dict(complaint_id=cid, instance=HUB, external_ref=str(hub_id), linked_at=seen))
        events.append(
            dict(
                complaint_id=cid,
                kind="status_change",
                origin=HUB,
                origin_ref=log,
                gateway_ref=f"lg-ev-bench-{i:06d}",
                hub_ref=log,
                raw_status_code=wait_code,
                raw_status_name="Belum Terverifikasi",
                status="unverified",
                occurred_at=seen,
                recorded_at=seen,
            )
        )
        outbox.append(
            dict(
                complaint_id=cid,
                kind="create_complaint",
                target=HUB,
                state="done",
                attempts=0,
                next_attempt_at=seen,
                created_at=seen,
                done_at=seen,
                outcome_unknown=False,
            )
        )
    with store.engine.begin() as conn:
        for table_, rows in ((ComplaintRow, complaints), (LinkRow, links), (EventRow, events), (OutboxRow, outbox)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table_.__table__), rows[start : start + 5000])
    last_reads = {str(h): c["hub_polled_at"] for h, c in zip(hub_ids, complaints)}
    return {"complaints": n, "seconds": time.perf_counter() - started, "spread": dict(spread), "last_reads": last_reads}


def _deadlines(filed: datetime) -> list[datetime]:
    """The due times of a complaint's tiers, none met yet, by LAPOR!'s rule in WIB (the poll's
    first read of each complaint stores them as the engine would have at intake)."""
    return sorted(due for _start, due in _lapor_rule().schedule("pengaduan", filed, {}).values())


@functools.cache
def _lapor_rule() -> Any:
    from gateway._deadlines import DeadlineRules, WorkingCalendar
    from gateway._timezones import WIB

    return DeadlineRules(calendar=WorkingCalendar(zone=WIB))


def _reads(
    policy: Any, now: datetime, last_change: datetime, filed: datetime, rng: random.Random
) -> tuple[datetime, datetime]:
    """(last read before ``now``, next read after it) of a complaint whose last change was
    seen at ``last_change``, following the policy's chain of reads from then on."""
    at = last_change
    sweep = policy.sweep_bound
    while True:
        nxt = policy.next_read(at, last_change, None, deadlines=_deadlines(filed), rng=rng)
        if nxt > now:
            return at, nxt
        if nxt - at >= 0.9 * sweep and now - nxt > 3 * timedelta(days=1):
            # Quiet and far from now: skip whole sweeps at once (keeping a random phase), and
            # follow the chain again over the last days, where a deadline may shorten it.
            skip = int((now - nxt - timedelta(days=3)) / (0.95 * sweep))
            nxt += skip * 0.95 * sweep
        at = nxt


def oldest_read_first(store: Any, hub: str, local_instances: list[str], limit: int) -> list[tuple[int, str]]:
    """What if (``--what-if-oldest-read-first``; not the product): the complaints due, as
    ``gateway._store._hub_reads.complaints_due`` selects them, taken least recently read
    first instead of most overdue first. When more is due than the budget reads, a quiet
    complaint then comes before one read minutes ago, so the sweep bound holds as long
    as the budget covers the sweep alone, and reads after changes take what is left."""
    from sqlalchemy import or_
    from sqlmodel import select

    from gateway._store._tables import ComplaintRow, LinkRow

    now = store.clock()
    with store.session() as s:
        rows = s.exec(
            select(ComplaintRow.id, LinkRow.external_ref)
            .join(LinkRow, (LinkRow.complaint_id == ComplaintRow.id) & (LinkRow.instance == hub))
            .where(
                ComplaintRow.local_instance.in_(local_instances),
                or_(
                    ComplaintRow.next_poll_at <= now,
                    ComplaintRow.next_poll_at.is_(None) & ComplaintRow.closed_at.is_(None),
                ),
            )
            .order_by(ComplaintRow.hub_polled_at.is_not(None), ComplaintRow.hub_polled_at, ComplaintRow.id)
            .limit(limit)
        ).all()
        return [(cid, ref) for cid, ref in rows]


# -- one size ----------------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    interval: float
    run: Any
    next_at: float = 0.0
    runs: int = 0
    wall: float = 0.0  # real seconds spent in its runs


async def one_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    from sqlmodel import select

    import gateway._engine._engine as engine_module
    from gateway._budget import BudgetPolicy, RequestBudget
    from gateway._config import load_config
    from gateway._engine import Engine
    from gateway._engine._hub_poll import poll_policy
    from gateway._store import Store
    from gateway._store._tables import ComplaintRow, EventRow, LinkRow, OutboxRow
    from gateway.simulation import SimClock, SimulatorServer
    from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator as local_simulator

    # Reading every open complaint once (2 requests each) at the whole budget takes need_h;
    # the bound is the shipped 6 h when that leaves 40% for reads after changes, else
    # need_h plus 40%, in whole hours (16 h for 100,000 at 5 requests/s).
    need_h = n * 2 / args.rps / 3600
    sweep_h = args.sweep_bound or (6.0 if need_h * 1.4 <= 6 else float(math.ceil(need_h * 1.4)))
    hours = args.hours
    total_h = sweep_h + hours
    if args.what_if_oldest_read_first:
        print("\n(what if: the due complaints are taken least recently read first; not the product's order)")
    print(
        f"\n== {n:,} open complaints; hub budget {args.rps:g} requests/s, concurrency {args.concurrency}; "
        f"sweep bound {sweep_h:g} h; {args.change_rate:.1%} of the open complaints change per hour; "
        f"{total_h:g} simulated hours (changes of the first {hours:g} h measured)",
        flush=True,
    )
    clock = SimClock(speed=0)
    rng = random.Random(args.seed)
    local = local_simulator(seed=args.seed, clock=clock, initial_complaints=n)
    local.officers_active = False  # nothing happens locally: the hub's changes are what is measured
    with (
        SimulatorServer(local) as local_server,
        start_simulator("sp4n", seed=args.seed) as hub,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = load_config(
            write_config(
                Path(tmp) / "config",
                f"sqlite:///{tmp}/gateway.db",
                local_server.base_url,
                hub.url,
                rps=args.rps,
                concurrency=args.concurrency,
                sweep_bound_hours=sweep_h,
            ),
            environ={**local.demo_environment(), **hub.environ},
        )
        store = Store(config.settings.store.url, clock=clock.now)
        policy = poll_policy(config.instances[HUB].spec.polling)
        t0 = clock.now()
        seeded = seed_store(store, local, hub, policy, rate=args.change_rate, rng=rng, now=t0)
        print(
            f"  store seeded in {seeded['seconds']:.1f} s: {seeded['complaints']:,} complaints, {seeded['spread']}",
            flush=True,
        )
        store_ms = {"hub_view": _time_hub_view(store, n)}  # one of a read's two store calls
        print(f"  store: hub_view takes {store_ms['hub_view']} ms a call", flush=True)

        # The store's query for the complaints due, timed on its own (real seconds).
        import gateway._engine._hub_poll as hub_poll_module

        due_query = hub_poll_module.complaints_due
        chosen_query = oldest_read_first if args.what_if_oldest_read_first else due_query
        due_wall = [0.0, 0]

        def timed_due(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return chosen_query(*a, **k)
            finally:
                due_wall[0] += time.perf_counter() - started
                due_wall[1] += 1

        hub_poll_module.complaints_due = timed_due  # type: ignore[assignment]

        reasons: Counter[str] = Counter()
        engine_module.poll_policy = lambda settings: CountingPolicy(poll_policy(settings), reasons)  # type: ignore
        sim_seconds = SimSeconds(clock)
        engine = Engine(config, store, seed=args.seed)
        hub_adapter = engine.adapters[HUB]
        budget_policy = hub_adapter.http.budget.policy if hub_adapter.http.budget else BudgetPolicy(args.rps)
        hub_adapter.http.budget = RequestBudget(HUB, budget_policy, clock=sim_seconds, sleep=sim_seconds.sleep)
        # Every read of a complaint, on the simulated clock: the gaps between two reads.
        last_read: dict[str, datetime] = dict(seeded["last_reads"])
        max_gap: dict[str, timedelta] = {}
        read_complaint = hub_adapter.read_complaint

        async def counted_read(ref: str) -> Any:
            now = clock.now()
            gap = now - last_read.get(ref, t0)
            if gap > max_gap.get(ref, timedelta(0)):
                max_gap[ref] = gap
            last_read[ref] = now
            return await read_complaint(ref)

        hub_adapter.read_complaint = counted_read  # type: ignore[method-assign]

        poll_batch = engine.poll_batch(HUB)
        jobs = [
            Job(f"{HUB}:deliver", config.schedule_seconds(HUB, "deliver_seconds"), lambda: engine.deliver(HUB)),
            Job(f"{HUB}:hub_poll", config.schedule_seconds(HUB, "hub_poll_seconds"), lambda: engine.poll_hub(HUB)),
            Job(f"{LOCAL}:deliver", config.schedule_seconds(LOCAL, "deliver_seconds"), lambda: engine.deliver(LOCAL)),
        ]
        hub.ask(f"rate {args.change_rate}")
        before = hub.counts()
        wall_started = time.perf_counter()
        polled = 0
        hourly: list[dict[str, Any]] = []
        hour_mark, hour_requests = 1, before["requests"]
        end = total_h * 3600
        async with engine:
            while True:
                now = sim_seconds()
                if now >= hour_mark * 3600 or now >= end:
                    counts = hub.counts()
                    hourly.append(
                        {
                            "hour": hour_mark,
                            "requests": counts["requests"] - hour_requests,
                            "open": counts["open_complaints"],
                            "changes": counts["changes"],
                            "wall_seconds": round(time.perf_counter() - wall_started, 1),
                        }
                    )
                    hour_requests = counts["requests"]
                    if args.verbose or hour_mark % max(1, int(total_h // 8)) == 0:
                        print(
                            f"  hour {hour_mark:>3}: {hourly[-1]['requests']:>6,} hub requests, "
                            f"{counts['open_complaints']:,} open, {counts['changes']:,} changes so far; "
                            f"{hourly[-1]['wall_seconds']:.0f} s real",
                            flush=True,
                        )
                    hour_mark += 1
                if now >= end:
                    break
                hub.ask(f"tick {clock.now().isoformat()}")
                due = [job for job in jobs if job.next_at <= now]
                if not due:
                    clock.advance(min(job.next_at for job in jobs) - now)
                    continue
                for job in due:
                    job_started = time.perf_counter()
                    result = await job.run()
                    job.wall += time.perf_counter() - job_started
                    job.runs += 1
                    if job.name.endswith("hub_poll") and result is not None:
                        polled += result.polled
                    # APScheduler: fire times on a fixed grid; those that fell during the run are skipped.
                    done = sim_seconds()
                    job.next_at += job.interval * max(1, math.ceil((done - job.next_at) / job.interval + 1e-9))
            wall = time.perf_counter() - wall_started
            after = hub.counts()
            budget = hub_adapter.http.budget.snapshot()

        # -- figures ------------------------------------------------------------------------
        changes = [{**c, "at": datetime.fromisoformat(c["at"])} for c in hub.ask("changes 0")]
        cohort_end = t0 + timedelta(hours=hours)
        with store.session() as s:
            rows = s.exec(
                select(EventRow.origin_ref, EventRow.kind, EventRow.recorded_at, OutboxRow.state, OutboxRow.done_at)
                .join(OutboxRow, OutboxRow.event_id == EventRow.id, isouter=True)
                .where(EventRow.origin == HUB, EventRow.recorded_at >= t0)
            ).all()
            backlog = s.exec(
                select(ComplaintRow.id).where(
                    ComplaintRow.closed_at.is_(None), ComplaintRow.next_poll_at <= clock.now()
                )
            ).all()
        by_ref = {ref: (kind, recorded, state, done) for ref, kind, recorded, state, done in rows}
        delays, seen_delays, missing, states = [], [], 0, Counter()
        for change in changes:
            if change["at"] >= cohort_end:
                continue
            found = by_ref.get(change["ref"])
            if found is None or found[3] is None:
                missing += 1
                states["not delivered" if found else "not read"] += 1
                continue
            _, recorded, state, done = found
            states[state] += 1
            delays.append((_utc(done) - change["at"]).total_seconds() / 3600)
            seen_delays.append((_utc(recorded) - change["at"]).total_seconds() / 3600)
        cohort = sum(1 for c in changes if c["at"] < cohort_end)
        end_time = clock.now()
        with store.session() as s:
            open_hub_refs = set(
                s.exec(
                    select(LinkRow.external_ref)
                    .join(ComplaintRow, ComplaintRow.id == LinkRow.complaint_id)
                    .where(LinkRow.instance == HUB, ComplaintRow.closed_at.is_(None))
                ).all()
            )
        gaps = []
        for hub_ref, last in last_read.items():
            gap = max(max_gap.get(hub_ref, timedelta(0)), end_time - last if hub_ref in open_hub_refs else timedelta(0))
            gaps.append(gap.total_seconds() / 3600)
        over_bound = sum(1 for g in gaps if g > sweep_h)
        # A complaint falls due at its bound at the latest; it is read by the next poll run
        # that reaches it (runs every hub_poll_seconds, poll_batch complaints each).
        slack_h = 2 * config.schedule_seconds(HUB, "hub_poll_seconds") / 3600
        over_slack = sum(1 for g in gaps if g > sweep_h + slack_h)
        requests = after["requests"] - before["requests"]
        by_route = {k: v - before["requests_by_route"].get(k, 0) for k, v in after["requests_by_route"].items()}
        steady = [h["requests"] for h in hourly if h["hour"] > 1]
        per_hour = requests / total_h
        floor = 2 * n / sweep_h
        result = {
            "open": n,
            "rps": args.rps,
            "concurrency": args.concurrency,
            "sweep_bound_hours": sweep_h,
            "change_rate_per_hour": args.change_rate,
            "simulated_hours": total_h,
            "measured_change_hours": hours,
            "wall_seconds": round(wall, 1),
            "poll_batch": poll_batch,
            "hub_requests": requests,
            "hub_requests_by_route": by_route,
            "hub_requests_per_hour": round(per_hour),
            "hub_requests_per_hour_min_max": [min(steady or [0]), max(steady or [0])],
            "budget_requests_per_hour": args.rps * 3600,
            "sweep_floor_requests_per_hour": round(floor),
            "reads_scheduled_by_reason": dict(reasons),
            "reads": polled,
            "changes": len(changes),
            "changes_measured": cohort,
            "changes_delivered": len(delays),
            "changes_not_delivered": missing,
            "delivery_states": dict(states),
            "delay_hours_p50": percentile(delays, 50),
            "delay_hours_p95": percentile(delays, 95),
            "delay_hours_max": max(delays) if delays else None,
            "seen_at_hub_hours_p95": percentile(seen_delays, 95),
            "max_gap_hours": max(gaps) if gaps else None,
            "complaints_past_sweep_bound": over_bound,
            "complaints_past_sweep_bound_plus_two_runs": over_slack,
            "two_runs_seconds": round(slack_h * 3600),
            "backlog_at_end": len(backlog),
            "open_at_end": after["open_complaints"],
            "budget": budget,
            "hourly": hourly,
            "jobs": {job.name: {"runs": job.runs, "real_seconds": round(job.wall, 1)} for job in jobs},
            "due_query_ms": round(1000 * due_wall[0] / max(1, due_wall[1]), 2),
            "store_ms": store_ms,
            "what_if_oldest_read_first": bool(args.what_if_oldest_read_first),
            "local_sim_counts": {k: v for k, v in local.counts().items() if k != "requests_by_route"}
            | {"requests_by_route": local.counts()["requests_by_route"]},
            "hub_sim_counts": {k: v for k, v in after.items() if k != "requests_by_route"},
        }
        store.close()
    engine_module.poll_policy = poll_policy  # type: ignore[assignment]
    hub_poll_module.complaints_due = due_query  # type: ignore[assignment]
    _print_size(result)
    return result


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _print_size(r: dict[str, Any]) -> None:
    def h(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} h"

    print(
        f"  {r['wall_seconds']:.0f} s real for {r['simulated_hours']:g} simulated hours; poll batch "
        f"{r['poll_batch']} complaints per run; {r['reads']:,} complaints read",
        flush=True,
    )
    print(
        f"  jobs run (real seconds): {r['jobs']}; the query for the complaints due took {r['due_query_ms']} ms a run",
        flush=True,
    )
    print(
        f"  hub requests: {r['hub_requests']:,} ({r['hub_requests_per_hour']:,}/h; hourly "
        f"{r['hub_requests_per_hour_min_max'][0]:,}..{r['hub_requests_per_hour_min_max'][1]:,}); budget "
        f"{r['budget_requests_per_hour']:,.0f}/h; the sweep bound alone needs {r['sweep_floor_requests_per_hour']:,}/h",
        flush=True,
    )
    print(f"  simulator's counts by route: {r['hub_requests_by_route']}", flush=True)
    print(f"  next reads scheduled, by why: {r['reads_scheduled_by_reason']}", flush=True)
    print(
        f"  changes of the first {r['measured_change_hours']:g} h: {r['changes_measured']:,}; delivered "
        f"{r['changes_delivered']:,} ({r['delivery_states']}); delay to the local app p50 "
        f"{h(r['delay_hours_p50'])}, p95 {h(r['delay_hours_p95'])}, max {h(r['delay_hours_max'])}",
        flush=True,
    )
    print(
        f"  longest gap between two reads of an open complaint: {h(r['max_gap_hours'])} (bound "
        f"{r['sweep_bound_hours']:g} h; {r['complaints_past_sweep_bound']:,} complaints past it, "
        f"{r['complaints_past_sweep_bound_plus_two_runs']:,} past it by more than two poll intervals "
        f"({r['two_runs_seconds']} s)); due and unread at the end: {r['backlog_at_end']:,}",
        flush=True,
    )
    print(
        f"  hub budget at the end: {r['budget']['current_rps']} requests/s, {r['budget']['throttled']} 429s", flush=True
    )
    print(f"  lapor hendi simulator's counts: {r['local_sim_counts']['requests_by_route']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--open", type=int, nargs="+", default=None, help="open complaints [default: 10000 100000; --quick: 2000 5000]"
    )
    parser.add_argument("--rps", type=float, default=5.0, help="the hub's request budget, per simulated second [5]")
    parser.add_argument("--concurrency", type=int, default=4, help="the hub budget's concurrency [4]")
    parser.add_argument(
        "--change-rate",
        type=float,
        default=0.01,
        help="share of the open complaints changing at the hub per hour [0.01]",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=None,
        help="simulated hours of changes measured; the run lasts this plus the sweep bound [2; --quick: 1]",
    )
    parser.add_argument(
        "--sweep-bound",
        type=float,
        default=None,
        help="polling.sweep_bound_hours [6, or what reading every open complaint once at the "
        "whole budget takes, plus 40%%]",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--what-if-oldest-read-first",
        action="store_true",
        help="not the product: take the due complaints least recently read first (see oldest_read_first)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="a line per simulated hour")
    parser.add_argument("--json-out", help="also write the figures to this file")
    args = parser.parse_args()
    args.hours = args.hours if args.hours is not None else (1.0 if args.quick else 2.0)
    sizes = args.open or ([2000, 5000] if args.quick else [10000, 100000])
    logging.getLogger().setLevel(logging.WARNING)
    from gateway._logging import configure_logging

    configure_logging("error", "json")  # the engine's per-event info lines would cost more than the reads
    machine = print_machine()
    results = [asyncio.run(one_size(n, args)) for n in sizes]
    print()
    rows = [
        [
            r["open"],
            r["sweep_bound_hours"],
            r["hub_requests_per_hour"],
            r["sweep_floor_requests_per_hour"],
            r["budget_requests_per_hour"],
            r["changes_measured"],
            r["delay_hours_p50"],
            r["delay_hours_p95"],
            r["delay_hours_max"],
            r["max_gap_hours"],
            r["complaints_past_sweep_bound"],
            r["complaints_past_sweep_bound_plus_two_runs"],
        ]
        for r in results
    ]
    print(
        table(
            [
                "open",
                "bound h",
                "req/h",
                "floor req/h",
                "budget/h",
                "changes",
                "p50 h",
                "p95 h",
                "max h",
                "max gap h",
                "past bound",
                "past +40 s",
            ],
            rows,
        )
    )
    within = all(
        r["complaints_past_sweep_bound_plus_two_runs"] == 0
        and r["changes_not_delivered"] == 0
        and (r["delay_hours_max"] or 0) <= r["sweep_bound_hours"] + r["two_runs_seconds"] / 3600
        for r in results
    )
    within_budget = all(r["hub_requests_per_hour"] <= r["budget_requests_per_hour"] for r in results)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        growth = large["hub_requests_per_hour"] / max(1, small["hub_requests_per_hour"])
        print(f"\nrequests/h grew {growth:.1f}x for {large['open'] / small['open']:.0f}x the open complaints")
    print(
        f"goal: within the budget: {goal(within_budget)}; no complaint past the sweep bound (+ two poll "
        f"intervals) and every measured change delivered within it: {goal(within)}"
    )
    emit(
        "polling",
        {
            "machine": machine,
            "results": results,
            "goals": {"within_budget": within_budget, "within_sweep_bound": within},
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
