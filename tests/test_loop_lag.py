"""The store does not block the event loop (issue 10 item 1).

Another connection holds the store's write lock for a few seconds (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: the tables the jobs write, locked ``IN EXCLUSIVE MODE``) while the engine's jobs
run against simulators that answer after 200 ms, with a 1 s timeout and no retries. The jobs
wait for the store in its threads; the loop goes on: every HTTP call in flight gets its answer,
no timeout fires, and the loop's lag (how late a 10 ms sleep wakes up) stays small. The same
run with the store called inline, as before, freezes the loop for the whole lock: that is what
the test would catch.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from gateway._engine import Engine
from gateway._engine._async_store import AsyncStore
from gateway._store import Store

HUB, LOCAL = "sp4n", "lapor-hendi-semarang"
LATENCY_MS = 200
# A frozen loop holds every call for the whole lock, so any timeout well under HOLD catches it.
# 2 s, not 1: on a loaded CI machine one probe in a full run once took over 1 s with the loop
# lag at 30 ms (the simulators' own thread shares the GIL with the store's and the loop's).
TIMEOUT = 2.0  # seconds
HOLD = 4.0  # seconds the other connection holds the lock
LAG_BOUND = 0.5  # seconds: generous; measured well under 0.1 (docs/architecture.md)
TABLES = (
    "job_run",
    "cursor",
    "complaint",
    "reporter",
    "attachment",
    "link",
    "event",
    "outbox",
    "audit",
    "quarantine",
    "peer_health",
    "daemon",
    "reference_item",
)


class LockHolder(threading.Thread):
    """Another process's transaction, holding the store's write lock for ``HOLD`` seconds."""

    def __init__(self, store_url: str):
        super().__init__(name="lock-holder", daemon=True)
        self.store_url = store_url
        self.held = threading.Event()
        self.released_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            url = make_url(self.store_url)
            if url.get_backend_name() == "sqlite":
                conn = sqlite3.connect(url.database, isolation_level=None, timeout=10)
                conn.execute("BEGIN IMMEDIATE")  # the one writer SQLite allows: every other write waits
                self.held.set()
                time.sleep(HOLD)
                conn.execute("COMMIT")
                conn.close()
            else:
                engine = create_engine(self.store_url)
                with engine.begin() as conn:
                    tables = ", ".join(f'"{t}"' for t in TABLES)
                    conn.exec_driver_sql(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")  # reads go on, writes wait
                    self.held.set()
                    time.sleep(HOLD)
                engine.dispose()
            self.released_at = time.monotonic()
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.held.set()


async def _max_lag(stop: asyncio.Event) -> float:
    """How late, at most, a 10 ms sleep woke up while ``stop`` was not set."""
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - started - 0.01)
    return worst


async def _probe(base_url: str, stop: asyncio.Event) -> tuple[int, int]:
    """HTTP calls that need no store at all, one after the other: (answered, timed out)."""
    answered = timed_out = 0
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        while not stop.is_set():
            try:
                await client.get(f"{base_url}/__health")
                answered += 1
            except httpx.TimeoutException:
                timed_out += 1
    return answered, timed_out


async def _run_with_lock_held(world, tmp_path: Path, store_url: str, *, inline: bool) -> dict:
    config = world.config(tmp_path, store_url)
    for name in (HUB, LOCAL):
        config.instances[name].spec.timeout_seconds = TIMEOUT
        config.instances[name].spec.http_retries.attempts = 1  # a timeout is a failure, not retried away
    store = Store(store_url)
    engine = Engine(config, store, seed=7)
    assert engine.db.workers == 1  # the default: the store off the loop, in one thread
    try:
        await engine.run_pass()  # complaints taken in, created at the hub, read back: the jobs have work
        world.step()  # citizens and officers act: new follow-ups and statuses on both sides
        if inline:  # the store called on the loop, as before issue 10
            engine.db.close()
            engine.db = AsyncStore(store, workers=0)
        for sim in (world.local, world.hub):
            sim.faults.configure(latency_ms=LATENCY_MS)

        stop = asyncio.Event()
        lag = asyncio.create_task(_max_lag(stop))
        probe = asyncio.create_task(_probe(world.hub_server.base_url, stop))
        # The jobs the daemon runs side by side; the lock is taken while their HTTP calls are in flight.
        jobs = asyncio.gather(engine.intake(LOCAL), engine.poll_hub(HUB), engine.deliver(HUB), engine.deliver(LOCAL))
        await asyncio.sleep(0.3)
        holder = LockHolder(store_url)
        started = time.monotonic()
        holder.start()
        while not holder.held.is_set():  # not a blocking wait: the loop must keep running
            await asyncio.sleep(0.005)
        intake, poll, to_hub, to_local = await jobs
        finished = time.monotonic()
        await asyncio.to_thread(holder.join)
        stop.set()
        answered, timed_out = await probe
        figures = {
            "lag": await lag,
            "answered": answered,
            "timed_out": timed_out,
            "intake": intake,
            "poll": poll,
            "to_hub": to_hub,
            "to_local": to_local,
            "jobs_waited": finished >= holder.released_at,
            "seconds": finished - started,
            "error": holder.error,
        }
        with store.engine.connect() as conn:
            figures["job_errors"] = [
                tuple(row)
                for row in conn.exec_driver_sql(
                    "SELECT instance, job, last_error FROM job_run WHERE failures > 0"
                ).all()
            ]
        return figures
    finally:
        await engine.aclose()
        store.close()


@pytest.mark.e2e
@pytest.mark.anyio
async def test_a_held_store_lock_does_not_stall_http_calls(world, tmp_path, store_url):
    figures = await _run_with_lock_held(world, tmp_path, store_url, inline=False)
    backend = store_url.split(":")[0].split("+")[0]
    print(
        f"\nLOOP-LAG {backend}: lock held {HOLD} s, peers answering after {LATENCY_MS} ms with a {TIMEOUT} s "
        f"timeout: max event-loop lag {figures['lag'] * 1000:.0f} ms; {figures['answered']} probe calls "
        f"answered, {figures['timed_out']} timed out; jobs done in {figures['seconds']:.1f} s"
    )
    assert figures["error"] is None
    assert figures["jobs_waited"], "the jobs never met the lock: the test proves nothing"
    assert figures["timed_out"] == 0 and figures["answered"] >= HOLD / (LATENCY_MS / 1000) / 2
    assert figures["job_errors"] == []
    assert None not in (figures["intake"], figures["poll"], figures["to_hub"], figures["to_local"])
    assert figures["poll"].failures == 0 and figures["poll"].polled > 0
    assert figures["to_hub"].retrying == figures["to_hub"].parked == 0
    assert figures["to_local"].retrying == figures["to_local"].parked == 0
    assert figures["lag"] < LAG_BOUND


@pytest.mark.e2e
@pytest.mark.anyio
async def test_the_store_called_inline_would_stall_the_loop(world, tmp_path):
    """The same run with the store on the loop (the code before issue 10): the test above can fail."""
    figures = await _run_with_lock_held(world, tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}", inline=True)
    print(
        f"\nLOOP-LAG sqlite, store called inline: max event-loop lag {figures['lag'] * 1000:.0f} ms, "
        f"{figures['timed_out']} probe calls timed out"
    )
    assert figures["lag"] > HOLD / 2
