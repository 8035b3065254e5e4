"""``/healthz`` and ``/readyz``: for a supervisor (systemd, a load balancer, Kubernetes).

``/healthz`` answers 200 as long as the process and its event loop answer: its handler runs on
the loop, so a loop that is stuck does not answer at all. It tells the loop's lag too, measured
by a small periodic task (how late a sleep of one period wakes up).

``/readyz`` answers 200 only when the daemon does its work: the store answers, its schema is
the one this gateway is built for, and the scheduler runs. Else 503, with a JSON body naming
each check and what failed (never the store's URL, nor a library's text).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway._errors import safe_text
from gateway._store._migrations import SchemaState, current_state, head_revision, is_at_head
from gateway._web._context import WebContext

#: Seconds the readiness check waits for the store before calling it unreachable.
STORE_TIMEOUT = 5.0


class LoopWatch:
    """How late the event loop runs: every ``period`` seconds a sleep of ``period`` is timed."""

    def __init__(self, period: float = 1.0):
        self.period = period
        self.lag: float | None = None  # seconds, after the first period
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.period)
            self.lag = max(0.0, loop.time() - started - self.period)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


async def readiness(context: WebContext) -> dict[str, Check]:
    """Each check of ``/readyz`` by name: store, schema, scheduler."""
    checks: dict[str, Check] = {}
    state: SchemaState | None = None
    try:
        # In the store's thread, like every store call: a store waiting for a lock must not stall the loop.
        state = await asyncio.wait_for(context.db.call(current_state, context.store.engine), STORE_TIMEOUT)
    except TimeoutError:
        checks["store"] = Check(False, f"the store did not answer within {STORE_TIMEOUT:g} s")
    except Exception as exc:  # filed by the store's thread: its text names the operation and the error's class
        checks["store"] = Check(False, f"unreachable: {safe_text(exc)}")
    else:
        checks["store"] = Check(True, "answers")
    if state is None:
        checks["schema"] = Check(False, "not checked: the store did not answer")
    elif is_at_head(state):
        checks["schema"] = Check(True, state.describe())
    else:
        checks["schema"] = Check(
            False,
            f"the store's schema is {state.describe()}, this gateway's is revision {head_revision()} "
            "(`gateway db current` shows it; a store upgraded by a newer gateway needs this one upgraded too)",
        )
    running = context.scheduling()
    checks["scheduler"] = Check(running, "running" if running else "not running (the daemon is starting or stopping)")
    return checks


def add_health_routes(app: web.Application, context: WebContext) -> None:
    watch = LoopWatch()

    async def healthz(request: web.Request) -> web.Response:
        lag = watch.lag
        return web.json_response({"status": "ok", "loop_lag_seconds": None if lag is None else round(lag, 4)})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness(context)
        ready = all(check.ok for check in checks.values())
        body = {"ready": ready, "checks": {name: check.as_json() for name, check in checks.items()}}
        return web.json_response(body, status=200 if ready else 503)

    async def start_watch(app: web.Application) -> None:
        watch.start()

    async def stop_watch(app: web.Application) -> None:
        await watch.stop()

    app.on_startup.append(start_watch)
    app.on_cleanup.append(stop_watch)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
