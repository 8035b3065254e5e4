"""Deadline reads: how many hub reads the poll policy makes over 48 hours of simulated time for
10,000 open complaints, before and after working-day deadlines (issue 12).

No simulator and no store: the product's own ``PollPolicy.next_read`` is followed, read after
read, on a fake clock, for each complaint (the engine does exactly this, one complaint at a
time; the store and HTTP only carry it out). Three policies over the same complaints:

* **before**: the policy up to revision 0002, frozen here: one deadline, 7 working days after
  filing (Monday to Friday in WIB, its hour kept, no holidays), and a read every
  ``min_interval`` from 24 h before it to 24 h after it;
* **before, tiers**: that rule (every ``min_interval`` within 24 h either side) applied to each
  complaint's current tier deadline of today (verify 3, answer 5, close 10 working days): what
  keeping the old policy with the new deadlines would cost;
* **after**: today's ``PollPolicy``: within 24 h of the current tier's deadline, a read after half
  the time left (never sooner than ``min_interval``), and one just after the deadline.

Complaints: filed at random over the last ``--days`` (default 21) days, quiet since a random time
after filing (a quiet complaint is read once per sweep bound: the reads that are not about
deadlines), each tier met after 20% to 130% of its time (so some late), the first one not met by
the start being the complaint's current tier. Reads are counted in the 48 h from a Monday 08:00 WIB.

    .venv/bin/python bench/deadline_reads.py                 # 10,000 open complaints, 48 h
    .venv/bin/python bench/deadline_reads.py --open 100000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gateway._deadlines import TIERS, DeadlineRules, Tier, WorkingCalendar
from gateway._engine._hub_poll import PollPolicy

WIB = ZoneInfo("Asia/Jakarta")
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB, no holiday that week or the last three
MIN_INTERVAL, SWEEP, SOON = timedelta(minutes=10), timedelta(hours=6), timedelta(hours=24)


def old_add_working_days(
    start: datetime, days: int, *, holidays: frozenset[date] = frozenset(), zone: tzinfo = WIB
) -> datetime:
    """gateway/_timezones.py ``add_working_days`` as it was before issue 12 (frozen copy)."""
    local = start.astimezone(zone)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(UTC)


def old_next_read(
    now: datetime, last_change: datetime, deadlines: list[datetime], rng: random.Random
) -> tuple[datetime, bool]:
    """The policy before issue 12 (frozen copy), for any deadlines: every min_interval within
    SOON of one. Returns (next read, whether a deadline set it)."""
    interval = min(max((now - last_change) * 0.5, MIN_INTERVAL), SWEEP)
    near = False
    if interval > MIN_INTERVAL and any(d - SOON <= now <= d + SOON for d in deadlines):
        interval, near = MIN_INTERVAL, True
    return now + interval * (1 - 0.1 * rng.random()), near


def current_deadline(rules: DeadlineRules, filed: datetime, rng: random.Random) -> list[datetime]:
    """The due time of a complaint's current tier at START (what the poll reads it near): each
    tier is met after 20% to 130% of its time (some late), counted on from the one before; the
    first not met by START is the current one. Empty when all three were met (it closed)."""
    met: dict[Tier, datetime] = {}
    for tier in TIERS:
        start, due = rules.schedule("pengaduan", filed, met)[tier]
        at = start + (due - start) * rng.uniform(0.2, 1.3)
        if at >= START:
            return [due]
        met[tier] = at
    return []


def count_reads(
    complaints: list[tuple[datetime, datetime, list[datetime]]],
    next_read: Callable[[datetime, datetime, list[datetime], random.Random], tuple[datetime, bool]],
    hours: float,
    seed: int,
) -> Counter[str]:
    """Reads within [START, START + hours), by why they were set: near a deadline, or not."""
    rng = random.Random(seed)
    end = START + timedelta(hours=hours)
    reads: Counter[str] = Counter()
    for _filed, last_change, deadlines in complaints:
        at = START - SWEEP * rng.random()  # the read before the window, at a random phase
        while True:
            at, near = next_read(at, last_change, deadlines, rng)
            if at >= end:
                break
            if at >= START:
                reads["near a deadline" if near else "sweep"] += 1
    return reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=10_000, help="open complaints")
    parser.add_argument("--hours", type=float, default=48, help="simulated hours counted")
    parser.add_argument("--days", type=float, default=21, help="complaints were filed over this many days")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    rules = DeadlineRules(calendar=WorkingCalendar(zone=WIB))
    policy = PollPolicy(min_interval=MIN_INTERVAL, sweep_bound=SWEEP, deadline_soon=SOON)
    old: list[tuple[datetime, datetime, list[datetime]]] = []
    tiers: list[tuple[datetime, datetime, list[datetime]]] = []
    for _ in range(args.open):
        filed = START - timedelta(days=args.days) * rng.random()
        quiet_since = filed + (START - filed) * rng.random() * 0.5
        old.append((filed, quiet_since, [old_add_working_days(filed, 7)]))
        tiers.append((filed, quiet_since, current_deadline(rules, filed, rng)))

    def after(now: datetime, last: datetime, deadlines: list[datetime], r: random.Random) -> tuple[datetime, bool]:
        plain = min(max((now - last) * policy.quiet_factor, policy.min_interval), policy.sweep_bound)
        nxt = policy.next_read(now, last, None, deadlines=deadlines, rng=r)
        assert nxt is not None
        return nxt, nxt - now < plain * 0.9  # shorter than jitter alone makes it: a deadline did

    started = time.perf_counter()
    results = {
        "before": count_reads(old, old_next_read, args.hours, args.seed),
        "before, tiers": count_reads(tiers, old_next_read, args.hours, args.seed),
        "after": count_reads(tiers, after, args.hours, args.seed),
    }
    floor = args.open * args.hours / SWEEP.total_seconds() * 3600
    print(f"{args.open:,} open complaints, {args.hours:g} h simulated ({time.perf_counter() - started:.1f} s)")
    print(f"{'policy':<16}{'hub reads':>12}{'near a deadline':>18}{'sweep':>10}{'per complaint':>15}")
    for name, reads in results.items():
        total = sum(reads.values())
        print(f"{name:<16}{total:>12,}{reads['near a deadline']:>18,}{reads['sweep']:>10,}{total / args.open:>15.1f}")
    print(f"sweep bound alone needs about {floor:,.0f} reads (one per complaint per {SWEEP})")
    figures = {name: dict(reads, total=sum(reads.values())) for name, reads in results.items()}
    print("BENCH " + json.dumps({"open": args.open, "hours": args.hours, "reads": figures}))


if __name__ == "__main__":
    main()
