"""Backfill benchmark: ``gateway backfill`` of a city's history, against a plain
httpx loop doing the same requests under the same budget.

For each size N (10,000 and 100,000 by default):

1. The Lapor Hendi simulator with ``initial_complaints=N, history_days=1500`` in a
   process of its own (``bench/_simserver.py``: its memory and CPU are not the
   gateway's; time stands still, and its simulated people never act), fresh for each side.
2. **baseline**: a plain ``httpx.AsyncClient`` loop in this process walks the same
   three lists the backfill reads (``/api/v1/aduan``, ``/api/v1/riwayat-status``,
   ``/api/v1/tanggapan``) the same way (keyset by time: each page asked again from
   the newest time read, inclusive; page numbers only within a crowded second),
   parses the JSON and dedupes the records by (id, time), paced to the same
   requests per second and concurrency as the gateway's budget.
3. **gateway**: ``gateway --config <tmp> backfill --since <day before the history>``
   in a subprocess, on a fresh SQLite store, the shipped config pointed at the
   simulator with the budget and page size of this run; wall time, the command's own
   complaints/s figure, and its peak RSS (``VmHWM`` polled, and ``ru_maxrss`` from
   ``wait4``).

Figures: complaints per second end to end for both, their ratio (goal: at least 0.8),
the gateway's peak memory at each N (goal: flat in N, well under 300 MB), and the
simulator's request counts by route for each side.

    .venv/bin/python bench/backfill.py                  # 10,000 and 100,000 at 20 requests/s
    .venv/bin/python bench/backfill.py --quick          # 2,000 and 10,000
    .venv/bin/python bench/backfill.py --rps 0          # no rate limit: CPU-bound on both sides
    .venv/bin/python bench/backfill.py --postgres URL   # the store in PostgreSQL (that database is emptied)
    .venv/bin/python bench/backfill.py --profile 10000  # cProfile an in-process backfill, top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import re
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    REPO,
    emit,
    gateway_command,
    goal,
    print_machine,
    run_measured,
    start_simulator,
    table,
)

# The simulators' clock starts here (gateway.simulation.SimClock) and, at --speed 0, stays.
SIM_NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))
TIME_FMT = "%Y-%m-%d %H:%M:%S"
LISTS = (  # what a backfill walks, in its order: path, time filter, id key, time key
    ("/api/v1/aduan", "diperbarui_sejak", "id_aduan", "diperbarui_pada"),
    ("/api/v1/riwayat-status", "sejak", "id_riwayat", "dibuat_pada"),
    ("/api/v1/tanggapan", "sejak", "id_tanggapan", "dibuat_pada"),
)
HUB_CLOSED_PORT = "http://127.0.0.1:9"  # a backfill never calls the hub


# -- the baseline -----------------------------------------------------------------------------


class Pacer:
    """Evenly spaced sends at ``rps`` (None: no limit) and at most ``concurrency`` at once:
    what the gateway's budget does when the peer never answers 429."""

    def __init__(self, rps: float | None, concurrency: int):
        self.interval = 1.0 / rps if rps else 0.0
        self.next_at = 0.0
        self.slots = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> None:
        await self.slots.acquire()
        if self.interval:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
            if at > now:
                await asyncio.sleep(at - now)

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release()


async def baseline(
    base_url: str, api_key: str, since: datetime, *, rps: float | None, concurrency: int, page_size: int
) -> dict[str, Any]:
    """The three lists walked as the backfill walks them, with nothing but httpx and json."""
    pacer = Pacer(rps, concurrency)
    records: dict[str, int] = {}
    list_seconds: dict[str, float] = {}
    requests = 0
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"X-Api-Key": api_key}, timeout=30, limits=limits
    ) as client:
        for path, filter_name, id_key, time_key in LISTS:
            list_started = time.perf_counter()
            boundary = since.astimezone(WIB).strftime(TIME_FMT)  # WIB text sorts as time does
            seen: set[tuple[Any, str]] = set()  # read from the boundary's second on
            fresh = 0
            page_number = 1
            while True:
                params = {"halaman": page_number, "per_halaman": page_size, filter_name: boundary}
                async with pacer:
                    response = await client.get(path, params=params)
                requests += 1
                response.raise_for_status()
                body = json.loads(response.content)
                later, newest = False, boundary
                for item in body["data"]:
                    key = (item[id_key], item[time_key])
                    if key not in seen:
                        seen.add(key)
                        fresh += 1
                    if item[time_key] > boundary:
                        later = True
                        newest = max(newest, item[time_key])
                if page_number >= body["meta"]["total_halaman"]:
                    break
                if later:  # ask again from the newest second read (inclusive): keyset by time
                    boundary, page_number = newest, 1
                    seen = {k for k in seen if k[1] >= newest}
                else:  # a whole page within one second: page on through it
                    page_number += 1
            records[path] = fresh
            list_seconds[path] = round(time.perf_counter() - list_started, 2)
    return {
        "seconds": time.perf_counter() - started,
        "requests": requests,
        "records": records,
        "list_seconds": list_seconds,
    }


# -- the gateway ------------------------------------------------------------------------------


def write_config(
    folder: Path, *, local_url: str, store_url: str, rps: float | None, concurrency: int, page_size: int, log_level: str
) -> Path:
    """The shipped config/ pointed at the simulator, with this run's budget and page size."""
    (folder / "adapters").mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "config" / "adapters").glob("*.yaml")):
        content = source.read_text()
        adapter = re.search(r"^adapter:\s*(\S+)", content, re.M).group(1)  # type: ignore[union-attr]
        url = local_url if adapter == "lapor_hendi" else HUB_CLOSED_PORT
        content = re.sub(r"^base_url:.*$", f"base_url: {url}", content, flags=re.M)
        content = re.sub(r"^budget:.*?(?=^\S|\Z)", "", content, flags=re.M | re.S)
        content += (
            "budget:\n  requests_per_second: "
            + ("null" if not rps else f"{rps:g}")
            + f"\n  concurrency: {concurrency}\n"
        )
        if adapter == "lapor_hendi":
            content = re.sub(r"^(\s+)page_size:.*$", rf"\g<1>page_size: {page_size}", content, flags=re.M)
        (folder / "adapters" / source.name).write_text(content)
    path = folder / "gateway.yaml"
    path.write_text(f"store:\n  url: {store_url}\nlog:\n  format: json\n  level: {log_level}\n")
    return path


def empty_postgres(url: str) -> str:
    """Drop and recreate the ``public`` schema of the database at ``url`` (a fresh store for each
    run, as a new SQLite file is); returns the server's version."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        version = conn.execute(text("SHOW server_version")).scalar_one()
    engine.dispose()
    return str(version)


def store_size_mb(url: str, folder: Path) -> float:
    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in folder.glob("gateway.db*")) / 1024 / 1024
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return size / 1024 / 1024


def since_day(history_days: float) -> date:
    return (SIM_NOW.astimezone(WIB) - timedelta(days=history_days + 2)).date()


def run_gateway(config: Path, since: date, env: dict[str, str], log_path: Path) -> dict[str, Any]:
    command = [*gateway_command(), "--config", str(config), "backfill", "--since", since.isoformat()]
    code, wall, peak_mb, lines, cpu = run_measured(command, env=env, cwd=REPO, stderr_path=log_path)
    if code != 0:
        raise RuntimeError(f"gateway backfill exited {code}; its log: {log_path}")
    summary = next((line for _, line in lines if "complaints new" in line), "")
    # Each stream's progress starts with "<instance>: <stream>: N to read": its time of arrival.
    starts = [(t, line.split(": ")[1]) for t, line in lines if line.endswith(" to read")]
    ends = [t for t, _ in starts[1:]] + [next((t for t, line in lines if "complaints new" in line), wall)]
    streams = {name: round(end - t, 2) for (t, name), end in zip(starts, ends)}
    found = re.search(
        r"(\d+) complaints new, (\d+) known, (\d+) status changes, (\d+) follow-ups, "
        r"(\d+) quarantined in ([\d.]+) s \((\d+) complaints/s\)",
        summary,
    )
    if not found:
        raise RuntimeError(f"no summary line in the output of gateway backfill: {lines[-5:]}")
    new, known, changes, follow_ups, quarantined, seconds, own_rate = found.groups()
    with open(log_path) as f:
        log_lines = sum(1 for _ in f)
    return {
        "wall_seconds": wall,
        "cpu_seconds": round(cpu, 2),
        "command_seconds": float(seconds),
        "command_complaints_per_second": int(own_rate),
        "complaints_new": int(new),
        "complaints_known": int(known),
        "status_changes": int(changes),
        "follow_ups": int(follow_ups),
        "quarantined": int(quarantined),
        "peak_rss_mb": peak_mb,
        "log_lines": log_lines,
        "stream_seconds": streams,
        "summary": summary.strip(),
    }


# -- one size ---------------------------------------------------------------------------------


def one_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    rps = args.rps or None
    since = since_day(args.history_days)
    since_dt = datetime.combine(since, datetime.min.time(), WIB)
    result: dict[str, Any] = {
        "complaints": n,
        "rps": rps,
        "concurrency": args.concurrency,
        "page_size": args.page_size,
        "since": since.isoformat(),
        "store": "postgresql" if args.postgres else "sqlite",
    }
    sim_options = {"initial_complaints": n, "history_days": args.history_days}

    print(
        f"\n== {n:,} complaints over {args.history_days:g} days; budget "
        f"{'no limit' if rps is None else f'{rps:g} requests/s'}, concurrency {args.concurrency}, "
        f"page size {args.page_size}; store {result['store']}",
        flush=True,
    )

    with start_simulator("lapor_hendi", seed=args.seed, options=sim_options) as sim:
        print(f"  simulator ready in {sim.started_in:.1f} s at {sim.url}", flush=True)
        base = asyncio.run(
            baseline(
                sim.url,
                sim.environ["LAPOR_HENDI_API_KEY"],
                since_dt,
                rps=rps,
                concurrency=args.concurrency,
                page_size=args.page_size,
            )
        )
        base["sim_counts"] = sim.counts()
    base["complaints"] = base["records"]["/api/v1/aduan"]
    base["complaints_per_second"] = base["complaints"] / base["seconds"]
    result["baseline"] = base
    print(
        f"  baseline: {base['requests']:,} requests in {base['seconds']:.1f} s: "
        f"{base['complaints_per_second']:,.0f} complaints/s; records read {base['records']}; "
        f"seconds per list {base['list_seconds']}",
        flush=True,
    )
    print(f"  simulator's counts: {base['sim_counts']['requests_by_route']}", flush=True)

    with (
        start_simulator("lapor_hendi", seed=args.seed, options=sim_options) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"  simulator ready in {sim.started_in:.1f} s at {sim.url}", flush=True)
        store_url = args.postgres or f"sqlite:///{tmp}/gateway.db"
        if args.postgres:
            result["postgres_version"] = empty_postgres(args.postgres)
        config = write_config(
            Path(tmp) / "config",
            local_url=sim.url,
            store_url=store_url,
            rps=rps,
            concurrency=args.concurrency,
            page_size=args.page_size,
            log_level=args.log_level,
        )
        env = {
            **os.environ,
            **sim.environ,
            "SP4N_AUTHORIZATION": "unused",
            "SP4N_TOKEN": "unused",
            "COLUMNS": "400",
        }  # rich wraps the summary line at 80 columns otherwise
        gw = run_gateway(config, since, env, Path(tmp) / "gateway.log")
        gw["sim_counts"] = sim.counts()
        gw["store_mb"] = store_size_mb(store_url, Path(tmp))
    gw["complaints_per_second"] = gw["complaints_new"] / gw["wall_seconds"]
    result["gateway"] = gw
    result["ratio"] = gw["complaints_per_second"] / base["complaints_per_second"]
    print(f"  gateway: {gw['summary']}", flush=True)
    print(f"  gateway: seconds per stream (from its progress lines): {gw['stream_seconds']}", flush=True)
    print(f"  simulator's counts: {gw['sim_counts']['requests_by_route']}", flush=True)
    print(
        f"  gateway: wall {gw['wall_seconds']:.1f} s (start-up included): {gw['complaints_per_second']:,.0f} "
        f"complaints/s; peak RSS {gw['peak_rss_mb']:.0f} MB; ratio {result['ratio']:.2f}",
        flush=True,
    )
    return result


def profile(n: int, args: argparse.Namespace) -> None:
    """cProfile an in-process backfill of ``n`` complaints (simulator in a subprocess)."""
    from gateway._config import load_config
    from gateway._engine import Engine
    from gateway._logging import configure_logging
    from gateway._store import Store

    rps = args.rps or None
    since = since_day(args.history_days)
    sim_options = {"initial_complaints": n, "history_days": args.history_days}
    with (
        start_simulator("lapor_hendi", seed=args.seed, options=sim_options) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if args.postgres:
            empty_postgres(args.postgres)
        config_path = write_config(
            Path(tmp) / "config",
            local_url=sim.url,
            store_url=args.postgres or f"sqlite:///{tmp}/gateway.db",
            rps=rps,
            concurrency=args.concurrency,
            page_size=args.page_size,
            log_level=args.log_level,
        )
        environ = {**sim.environ, "SP4N_AUTHORIZATION": "unused", "SP4N_TOKEN": "unused"}
        config = load_config(config_path, environ=environ)
        log = open(Path(tmp) / "gateway.log", "w")
        configure_logging(args.log_level, "json", stream=log)
        store = Store(config.settings.store.url)

        async def main() -> Any:
            async with Engine(config, store) as engine:
                return await engine.backfill("lapor-hendi-semarang", datetime.combine(since, datetime.min.time(), WIB))

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        result = asyncio.run(main())
        profiler.disable()
        wall = time.perf_counter() - started
        store.close()
        log.close()
    r = result.intake
    print(
        f"profiled backfill: {r.complaints_new} complaints, {r.status_changes} status changes, "
        f"{r.follow_ups} follow-ups in {wall:.1f} s under the profiler",
        flush=True,
    )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--complaints",
        type=int,
        nargs="+",
        default=None,
        help="sizes to run [default: 10000 100000; --quick: 2000 10000]",
    )
    parser.add_argument(
        "--rps",
        type=float,
        default=20.0,
        help="requests per second of both sides (the gateway's budget); 0: no limit [20]",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once of both sides [4]")
    parser.add_argument("--page-size", type=int, default=100, help="per_halaman of every list (1-100) [100]")
    parser.add_argument("--history-days", type=float, default=1500, help="days the history spans [1500]")
    parser.add_argument("--log-level", default="info", help="the gateway's log level [info, as shipped]")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="the gateway's store: this PostgreSQL database (postgresql+psycopg://...), EMPTIED "
        "before each run (its public schema is dropped), instead of a fresh SQLite file",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a check in a minute")
    parser.add_argument("--profile", type=int, metavar="N", help="only cProfile an in-process backfill of N")
    parser.add_argument("--json-out", help="also write the figures to this file")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args)
        return
    sizes = args.complaints or ([2000, 10000] if args.quick else [10000, 100000])
    machine = print_machine()
    results = [one_size(n, args) for n in sizes]
    print()
    rows = [
        [
            r["complaints"],
            r["baseline"]["requests"],
            round(r["baseline"]["seconds"], 1),
            round(r["baseline"]["complaints_per_second"]),
            round(r["gateway"]["wall_seconds"], 1),
            round(r["gateway"]["complaints_per_second"]),
            r["gateway"]["command_complaints_per_second"],
            round(r["ratio"], 2),
            round(r["gateway"]["cpu_seconds"], 1),
            round(r["gateway"]["peak_rss_mb"]),
        ]
        for r in results
    ]
    print(
        table(
            [
                "complaints",
                "requests",
                "base s",
                "base c/s",
                "gw s",
                "gw c/s",
                "gw own c/s",
                "ratio",
                "gw cpu s",
                "peak MB",
            ],
            rows,
        )
    )
    ratio_ok = all(r["ratio"] >= 0.8 for r in results)
    peaks = [r["gateway"]["peak_rss_mb"] for r in results]
    flat = max(peaks) <= 1.25 * min(peaks) + 10
    print(
        f"\ngoal ratio >= 0.8: {goal(ratio_ok)}; goal peak memory flat in N and under 300 MB: "
        f"{goal(flat and max(peaks) < 300)} ({', '.join(f'{p:.0f}' for p in peaks)} MB)"
    )
    emit(
        "backfill",
        {
            "machine": machine,
            "results": results,
            "goals": {"ratio_at_least_0.8": ratio_ok, "memory_flat_under_300mb": flat and max(peaks) < 300},
        },
        args.json_out,
    )


if __name__ == "__main__":
    main()
