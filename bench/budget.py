"""Budget benchmark: against a hub that limits at R requests per second, what share of
R the gateway gets through, and how many 429s it collects, in real time.

For each limit R (5 and 20 by default):

* The SP4N simulator in a process of its own with ``rate_limit_rps=R`` (a token bucket
  over all requests, bursts up to R; over it, 429 with ``Retry-After`` in whole
  seconds), and ``--complaints`` complaints preloaded.
* The gateway's hub adapter (``sp4n``, built from the shipped config as the engine
  builds it: ``PeerClient`` with retries, breaker and ``RequestBudget``), its budget
  set well above the limit (``--over`` x R, default 3R) with concurrency 4, reading
  complaints (``read_complaint`` and ``follow_ups``, as hub polling does) from more
  workers than the concurrency for ``--seconds`` seconds. The engine is not needed:
  the budget lives in the adapter's client, which every job shares.
* Every request the client sends is recorded (send time, answer) through httpx's
  event hooks; the budget's adaptations through its own counters.

Figures: requests the hub accepted per second, over the whole run and over the time
after the first adaptation, as a share of R (goal: above 90%); 429s in all and for
requests sent after the first adaptation (goal: none); the budget's rate at the end;
the simulator's own counts (requests, rate_limited).

    .venv/bin/python bench/budget.py                   # R = 5 and 20, 20 s each
    .venv/bin/python bench/budget.py --limit 50 --seconds 30
    .venv/bin/python bench/budget.py --quick           # R = 20, 10 s
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, goal, print_machine, start_simulator, table

HUB = "sp4n"


def write_config(folder: Path, hub_url: str, *, rps: float, concurrency: int) -> Path:
    (folder / "adapters").mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "config" / "adapters").glob("*.yaml")):
        content = source.read_text()
        adapter = re.search(r"^adapter:\s*(\S+)", content, re.M).group(1)  # type: ignore[union-attr]
        url = hub_url if adapter == "sp4n" else "http://127.0.0.1:9"
        content = re.sub(r"^base_url:.*$", f"base_url: {url}", content, flags=re.M)
        if adapter == "sp4n":
            content = re.sub(r"^budget:.*?(?=^\S|\Z)", "", content, flags=re.M | re.S)
            content += f"budget:\n  requests_per_second: {rps:g}\n  concurrency: {concurrency}\n"
        (folder / "adapters" / source.name).write_text(content)
    path = folder / "gateway.yaml"
    path.write_text('store:\n  url: "sqlite:///:memory:"\nlog:\n  format: json\n  level: warning\n')
    return path


async def one_limit(limit: float, args: argparse.Namespace) -> dict[str, Any]:
    from gateway._config import load_config

    configured = args.over * limit
    print(
        f"\n== hub limit {limit:g} requests/s; gateway budget {configured:g} requests/s, concurrency "
        f"{args.concurrency}; {args.workers} readers for {args.seconds:g} s",
        flush=True,
    )
    with (
        start_simulator("sp4n", seed=args.seed, faults={"rate_limit_rps": limit}) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        ids = sim.preload(args.complaints)["ids"]
        config = load_config(
            write_config(Path(tmp), sim.url, rps=configured, concurrency=args.concurrency),
            environ={**sim.environ, "LAPOR_HENDI_API_KEY": "unused"},
        )
        sent: list[tuple[float, int]] = []  # (send time, HTTP status), on the budget's clock

        async def on_request(request: httpx.Request) -> None:
            request.extensions["bench_sent"] = time.monotonic()

        async def on_response(response: httpx.Response) -> None:
            sent.append((response.request.extensions["bench_sent"], response.status_code))

        client = httpx.AsyncClient(
            timeout=15,
            event_hooks={"request": [on_request], "response": [on_response]},
            limits=httpx.Limits(max_connections=args.concurrency * 2),
        )
        inst = config.instances[HUB]
        hub = inst.adapter_class(inst.context(), client=client)
        budget = hub.http.budget
        adapted_at: list[tuple[float, float]] = []  # (time, new rate) of each adaptation
        adapt = budget._adapt

        def recording_adapt(start: float, end: float) -> None:
            adapt(start, end)
            adapted_at.append((budget.last_adapted_at, budget.current_rps))

        budget._adapt = recording_adapt  # type: ignore[method-assign]

        failures: dict[str, int] = {}
        calls = 0
        started = time.monotonic()
        deadline = started + args.seconds
        rng = random.Random(args.seed)

        async def reader() -> None:
            nonlocal calls
            while time.monotonic() < deadline:
                ref = str(rng.choice(ids))
                try:
                    if rng.random() < 0.5:
                        await hub.read_complaint(ref)
                    else:
                        await hub.follow_ups(ref)
                    calls += 1
                except Exception as exc:  # a read that failed after its retries
                    name = type(exc).__name__
                    failures[name] = failures.get(name, 0) + 1

        await asyncio.gather(*(reader() for _ in range(args.workers)))
        ended = time.monotonic()
        await client.aclose()
        counts = sim.counts()
        injected = sim.faults()["injected"]

    first = adapted_at[0][0] if adapted_at else None
    accepted = [t for t, status in sent if status != 429]
    throttled = [t for t, status in sent if status == 429]
    span = ended - started
    # The steady state: from the first request sent after the first adaptation (the peer's
    # Retry-After holds sends back for a moment then) to the last one sent.
    after = sorted(t for t in accepted if first is not None and t >= first)
    after_span = after[-1] - after[0] if len(after) >= 2 else None
    late_429 = sum(1 for t in throttled if first is not None and t >= first)
    result = {
        "limit_rps": limit,
        "configured_rps": configured,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "seconds": round(span, 2),
        "requests": len(sent),
        "accepted": len(accepted),
        "throttled_429": len(throttled),
        "accepted_rps": len(accepted) / span,
        "share_of_limit": len(accepted) / span / limit,
        "first_adaptation_after_seconds": None if first is None else round(first - started, 2),
        "accepted_rps_after_first_adaptation": None if not after_span else (len(after) - 1) / after_span,
        "share_after_first_adaptation": None if not after_span else (len(after) - 1) / after_span / limit,
        "blocked_after_first_adaptation_seconds": None if not after else round(after[0] - first, 2),
        "throttled_after_first_adaptation": late_429 if first is not None else None,
        "adaptations": [(round(t - started, 2), round(r, 3)) for t, r in adapted_at],
        "final_rps": budget.current_rps,
        "budget": budget.snapshot(),
        "calls_done": calls,
        "calls_failed": failures,
        "sim_counts": {
            "requests": counts["requests"],
            "rate_limited": injected.get("rate_limited", 0),
            "requests_by_route": counts["requests_by_route"],
        },
    }
    share_after = result["share_after_first_adaptation"]
    print(
        f"  {len(sent):,} requests in {span:.1f} s: {len(accepted):,} accepted ({result['accepted_rps']:.2f}/s, "
        f"{result['share_of_limit']:.0%} of R), {len(throttled)} answered 429",
        flush=True,
    )
    print(
        f"  adaptations (second, new rate): {result['adaptations']}; final rate {budget.current_rps:.3g}/s", flush=True
    )
    if first is not None:
        print(
            f"  after the first adaptation ({result['first_adaptation_after_seconds']} s; first send "
            f"{result['blocked_after_first_adaptation_seconds']} s later): "
            f"{result['accepted_rps_after_first_adaptation']:.2f} accepted/s ({share_after:.1%} of R), "
            f"{late_429} answered 429",
            flush=True,
        )
    print(f"  reads done {calls:,}, failed after retries {failures or 0}", flush=True)
    print(f"  simulator's counts: {result['sim_counts']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--limit", type=float, nargs="+", default=None, help="the hub's limits R to run, requests/s [5 20; --quick: 20]"
    )
    parser.add_argument("--seconds", type=float, default=None, help="real seconds per limit [20; --quick: 10]")
    parser.add_argument("--over", type=float, default=3.0, help="the gateway's configured budget, times R [3]")
    parser.add_argument("--concurrency", type=int, default=4, help="the budget's concurrency [4]")
    parser.add_argument("--workers", type=int, default=8, help="readers at once (more than the concurrency) [8]")
    parser.add_argument("--complaints", type=int, default=1000, help="complaints preloaded at the hub [1000]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json-out", help="also write the figures to this file")
    args = parser.parse_args()
    limits = args.limit or ([20.0] if args.quick else [5.0, 20.0])
    args.seconds = args.seconds or (10.0 if args.quick else 20.0)
    from gateway._logging import configure_logging

    configure_logging("error", "json")
    logging.getLogger().setLevel(logging.ERROR)
    machine = print_machine()
    results = [asyncio.run(one_limit(limit, args)) for limit in limits]
    print()
    rows = [
        [
            r["limit_rps"],
            r["configured_rps"],
            r["requests"],
            round(r["accepted_rps"], 2),
            f"{r['share_of_limit']:.1%}",
            r["first_adaptation_after_seconds"],
            None if r["share_after_first_adaptation"] is None else f"{r['share_after_first_adaptation']:.1%}",
            r["throttled_429"],
            r["throttled_after_first_adaptation"],
            round(r["final_rps"], 2),
        ]
        for r in results
    ]
    print(
        table(
            [
                "R",
                "budget",
                "requests",
                "accepted/s",
                "share",
                "adapted at s",
                "share after",
                "429s",
                "429s after",
                "final rps",
            ],
            rows,
        )
    )
    share_ok = all((r["share_after_first_adaptation"] or 0) > 0.9 for r in results)
    none_after = all(r["throttled_after_first_adaptation"] == 0 for r in results)
    print(
        f"\ngoal above 90% of R (after the first adaptation): {goal(share_ok)}; goal no 429 after the first "
        f"adaptation: {goal(none_after)}"
    )
    emit(
        "budget",
        {
            "machine": machine,
            "results": results,
            "goals": {"share_above_90pct": share_ok, "no_429_after_first_adaptation": none_after},
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
