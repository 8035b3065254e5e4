"""One simulator in a process of its own, for the benchmarks: like ``gateway simulate``,
plus its own counts on demand.

    python bench/_simserver.py NAME [--options JSON] [--faults JSON] [--seed N]

Prints ``url: <base url>``, ``env: <JSON of its credentials>``, then ``ready: NAME <url>``.
Then it reads commands on standard input, one a line, and answers each with one line:

- ``counts``: ``counts: <JSON of simulator.counts()>`` (not a request: nothing is counted);
- ``faults <JSON>``: configure faults, answers ``faults: <JSON snapshot>``;
- ``preload N [AT]`` (``sp4n``): N complaints at the hub as if the gateway had created them
  (``tags_raw`` ``#lapor_gateway #lg_bench_000000``...: the hashtag of the gateway reference
  ``lg-bench-000000``, as the ``sp4n`` adapter writes it; at the ISO time AT, or now), answers
  ``preload: {"ids": [...], "first_logs": [...]}`` (their ids, and the id of each one's
  first status log entry);
- ``rate R`` (``sp4n``): ``set_change_rate(R)`` (``none`` turns it off), answers ``rate: R``;
- ``tick AT``: move the clock on to the ISO time AT (never back) and let the simulated
  people act once, answers ``tick: {"changes": <changes so far>}``;
- ``changes SINCE`` (``sp4n``): ``changes(SINCE)`` with times in ISO, answers ``changes: [...]``;
- ``exit`` (or the end of input): stops.

The clock stands still (``SimClock(speed=0)``, from the same origin as every other
``SimClock``) and the simulated people act only on ``tick``, so without it the world
served is exactly the one seeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway._registry import load_simulator_factory
from gateway.simulation import SimClock, SimulatorServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--options", default="{}", help="keyword arguments of create_simulator, as JSON")
    parser.add_argument("--faults", default="{}", help="fault settings, as JSON")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    factory = load_simulator_factory(args.name)
    clock = SimClock(speed=0)
    sim = factory(seed=args.seed, clock=clock, faults=json.loads(args.faults), **json.loads(args.options))
    with SimulatorServer(sim) as server:
        print(f"url: {server.base_url}", flush=True)
        print(f"env: {json.dumps(sim.demo_environment())}", flush=True)
        print(f"ready: {args.name} {server.base_url} (started in {time.monotonic() - started:.1f} s)", flush=True)
        for line in sys.stdin:
            command, _, rest = line.strip().partition(" ")
            if command == "counts":
                print("counts: " + json.dumps(sim.counts()), flush=True)
            elif command == "faults":
                sim.faults.configure(**json.loads(rest or "{}"))
                print("faults: " + json.dumps(sim.faults.snapshot(), default=str), flush=True)
            elif command == "preload":
                count, _, at = rest.partition(" ")
                ids = sim.preload(
                    [f"#lapor_gateway #lg_bench_{i:06d}" for i in range(int(count))],
                    at=datetime.fromisoformat(at) if at else None,
                )
                with sim.lock:
                    first_logs = [str(sim.world.get(i).logs[0]["id"]) for i in ids]
                print("preload: " + json.dumps({"ids": ids, "first_logs": first_logs}), flush=True)
            elif command == "rate":
                sim.set_change_rate(None if rest.strip() == "none" else float(rest))
                print(f"rate: {rest.strip()}", flush=True)
            elif command == "tick":
                ahead = (datetime.fromisoformat(rest.strip()) - clock.now()).total_seconds()
                if ahead > 0:
                    clock.advance(ahead)
                sim.tick()
                print("tick: " + json.dumps({"changes": sim.counts().get("changes")}), flush=True)
            elif command == "changes":
                changes = [{**c, "at": c["at"].isoformat()} for c in sim.changes(int(rest or 0))]
                print("changes: " + json.dumps(changes), flush=True)
            elif command == "exit":
                break
            else:
                print(f"error: unknown command {command!r}", flush=True)


if __name__ == "__main__":
    main()
