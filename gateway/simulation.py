"""What every built-in simulator shares: a clock that the demo can speed up and
the tests can step, a base class, and a host that serves a simulator over real
HTTP on loopback from a background thread.

A simulator keeps its world in memory behind one lock: HTTP handlers (on the
server thread) and :meth:`Simulator.tick` (on the caller's thread) both take it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from aiohttp import web

__all__ = ["SimClock", "Simulator", "SimulatorServer"]


class SimClock:
    """Simulated time: ``origin`` plus real elapsed time times ``speed``, plus
    whatever :meth:`advance` added. ``speed=0`` makes a clock that only moves
    when told (the tests' fake clock)."""

    def __init__(self, origin: datetime | None = None, speed: float = 0.0):
        self._origin = origin or datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)  # Monday 08:00 WIB
        self._speed = speed
        self._started = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._started) * self._speed + self._offset
        return self._origin + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


class Simulator(ABC):
    """A peer's simulator. Subclasses build the aiohttp app and, in :meth:`tick`,
    let the simulated people (citizens, officers) act once."""

    name: ClassVar[str]
    default_port: ClassVar[int]

    def __init__(self, *, seed: int = 0, clock: SimClock | None = None):
        self.seed = seed
        self.clock = clock or SimClock()
        self.lock = threading.RLock()

    @abstractmethod
    def build_app(self) -> web.Application:
        """The HTTP face of the simulated system."""

    @abstractmethod
    def tick(self) -> None:
        """Let the simulated people act once, at the clock's current time."""

    def demo_environment(self) -> dict[str, str]:
        """Environment variables (secret references of the demo YAML) and their values."""
        return {}

    def counts(self) -> dict[str, Any]:
        """The simulator's own counts, for the demo, the tests and the benchmarks."""
        return {}


class SimulatorServer:
    """Serves a simulator on 127.0.0.1 from a thread of its own. ``port=0`` picks a free port."""

    def __init__(self, simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0):
        self.simulator = simulator
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "SimulatorServer":
        self._thread = threading.Thread(target=self._serve, name=f"sim-{self.simulator.name}", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError(f"simulator {self.simulator.name} did not start within 30 s")
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.simulator.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
