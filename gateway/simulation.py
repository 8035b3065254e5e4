"""What every built-in simulator shares: a clock that the demo can speed up and
the tests can step, seeded faults on demand, a base class, and a host that
serves a simulator over real HTTP on loopback from a background thread.

A simulator keeps its world in memory behind one lock: HTTP handlers (on the
server thread) and :meth:`Simulator.tick` (on the caller's thread) both take it.

Faults (:class:`Faults`, settings in :class:`FaultSettings`) are switched on when
a simulator is made (``create_simulator(faults={...})``, ``gateway simulate
--fault NAME=VALUE``) or while it runs (:meth:`Faults.configure`, or the control
endpoints ``GET/POST /_sim/faults`` and ``POST /_sim/faults/reset`` that every
simulator serves, exempt from faults and auth). See ``docs/simulators.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import random
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web

__all__ = [
    "FAULT_KINDS",
    "FaultSettings",
    "Faults",
    "SimClock",
    "Simulator",
    "SimulatorServer",
    "parse_fault_assignments",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Builds a fault's HTTP answer in the simulated system's own envelope: (status, message, headers).
Responder = Callable[[int, str, "dict[str, str]"], web.StreamResponse]

CONTROL_PREFIX = "/_sim/"
ERROR_STATUSES = (500, 502, 503)

#: The kinds counted in :attr:`Faults.injected`.
FAULT_KINDS = (
    "errors",
    "timeouts",
    "resets",
    "throttled",
    "rate_limited",
    "lost_answers",
    "malformed",
    "drifted",
    "shifted_pages",
    "unknown_statuses",
)

_RATES = (
    "error_rate",
    "timeout_rate",
    "reset_rate",
    "throttle_rate",
    "lost_answer_rate",
    "malformed_json_rate",
    "drift_rate",
    "page_shift_rate",
)
_SECONDS = ("hold_seconds", "retry_after_seconds")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass
class FaultSettings:
    """What a simulator does wrong, and how often. Every rate is a share of requests
    (0 to 1); all default to off. Change them through :meth:`Faults.configure`
    (which validates) rather than by assigning fields."""

    error_rate: float = 0.0
    """Answered 500, 502 or 503 without being processed."""
    latency_ms: tuple[float, float] = (0.0, 0.0)
    """Added delay before every answer, uniform between the two bounds (milliseconds)."""
    timeout_rate: float = 0.0
    """Held ``hold_seconds`` without an answer (longer than a client waits), not processed, then 504."""
    hold_seconds: float = 30.0
    reset_rate: float = 0.0
    """The connection is reset (TCP RST) without an answer; not processed."""
    throttle_rate: float = 0.0
    """Answered 429 with ``Retry-After: retry_after_seconds`` (rounded up); not processed."""
    retry_after_seconds: float = 1.0
    rate_limit_rps: float | None = None
    """A token bucket over all requests (control endpoints excepted), this many per second, bursts
    of up to max(1, rate); over it: 429, Retry-After the whole seconds until a token is free."""
    lost_answer_rate: float = 0.0
    """On the simulator's "commit then drop" routes only: the request is processed and its effect
    committed, then the connection is closed without an answer (only when the answer was 2xx)."""
    malformed_json_rate: float = 0.0
    """A 200 JSON answer cut short in the middle of its body."""
    drift_rate: float = 0.0
    """Simulator-specific: records served with a field missing or malformed (transient)."""
    page_shift_rate: float = 0.0
    """Simulator-specific: a page of a paged list served with its window shifted by one record."""
    unknown_status_codes: bool = False
    """Simulator-specific: new status changes made by the simulated officers use a status code that
    the shipped config does not know (persistently, for parking tests)."""

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["latency_ms"] = list(self.latency_ms)
        return values


def _names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(FaultSettings))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"fault setting {name!r} must be a number, not a boolean")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"fault setting {name!r} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"fault setting {name!r} must be a finite number")
    return number


def coerce_fault_setting(name: str, value: Any) -> Any:
    """``value`` (from Python, JSON or a command line string) as the setting ``name`` wants
    it; ``ValueError`` naming the setting when it is unknown or the value does not fit."""
    if name not in _names():
        raise ValueError(f"unknown fault setting {name!r} (known: {', '.join(_names())})")
    if name in _RATES:
        rate = _number(name, value)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault setting {name!r} must be between 0 and 1, got {rate:g}")
        return rate
    if name in _SECONDS:
        seconds = _number(name, value)
        if seconds < 0:
            raise ValueError(f"fault setting {name!r} must not be negative")
        return seconds
    if name == "latency_ms":
        parts: Any = value
        if isinstance(value, str):
            parts = [p for p in value.replace(" ", "").split(",") if p != ""]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parts = [value]
        if not isinstance(parts, (list, tuple)) or len(parts) not in (1, 2):
            raise ValueError(f"fault setting 'latency_ms' must be 'LO,HI' or one number, got {value!r}")
        lo, hi = (_number(name, parts[0]), _number(name, parts[-1]))
        if lo < 0 or hi < lo:
            raise ValueError("fault setting 'latency_ms' must be 0 <= LO <= HI")
        return (lo, hi)
    if name == "rate_limit_rps":
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
            return None
        rps = _number(name, value)
        if rps <= 0:
            raise ValueError("fault setting 'rate_limit_rps' must be above 0 (or none to turn it off)")
        return rps
    if name == "unknown_status_codes":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"fault setting 'unknown_status_codes' must be true or false, got {value!r}")
    raise AssertionError(name)  # pragma: no cover


def parse_fault_assignments(assignments: Collection[str]) -> dict[str, Any]:
    """``["error_rate=0.2", "latency_ms=50,400"]`` as settings; ``ValueError`` on a bad one."""
    settings: dict[str, Any] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"a fault is NAME=VALUE, got {item!r}")
        settings[name.strip()] = coerce_fault_setting(name.strip(), value)
    return settings


@dataclass
class _Plan:
    """What the fault middleware does to one request, decided when it arrives."""

    delay: float = 0.0
    before: str | None = None  # a kind of FAULT_KINDS, or None: the request is handled
    status: int = 0
    retry_after: int = 0
    hold: float = 0.0
    after: str | None = None  # "lost_answers", "malformed" or None


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


def _drop(request: web.Request, *, reset: bool) -> None:
    """Close the request's connection with no answer; a TCP RST when ``reset``."""
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # a plain close is still a lost answer
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _plain_answer(status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
    return web.json_response({"error": message}, status=status, headers=headers)


def _route_of(request: web.Request) -> str | None:
    """The route template a request matched (``/api/v1/aduan/{id}/status``), or None."""
    route = getattr(request.match_info, "route", None)
    resource = getattr(route, "resource", None)
    return getattr(resource, "canonical", None)


class Faults:
    """Seeded faults on demand for one simulator.

    ``Faults(seed=..., **settings)``; :attr:`settings` holds the current
    :class:`FaultSettings`, :attr:`injected` counts what was injected by kind
    (:data:`FAULT_KINDS`). :meth:`middleware` makes the aiohttp middleware that
    applies the per-request faults; drift, page shifts and unknown status codes
    are applied by the simulators themselves through :meth:`roll`,
    :meth:`choice` and :meth:`count`. Thread-safe: settings may change from any
    thread while the server runs.

    The same seed, settings and sequence of requests give the same faults: each
    request draws the same three numbers from the request RNG whatever happens
    to it; the simulators' data faults draw from a second RNG of their own.
    """

    def __init__(self, seed: int | str = 0, **settings: Any):
        self.seed = seed
        self.settings = FaultSettings()
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._data_rng = random.Random(f"data-faults:{seed}")
        self._bucket: _Bucket | None = None
        self.configure(**settings)

    # -- settings -------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> FaultSettings:
        """Change some settings (all are checked before any is applied); returns a copy of
        the settings now in force. An unknown name or a bad value raises ``ValueError``."""
        values = {name: coerce_fault_setting(name, value) for name, value in settings.items()}
        with self._lock:
            for name, value in values.items():
                setattr(self.settings, name, value)
            if "rate_limit_rps" in values:
                self._bucket = self._new_bucket(self.settings.rate_limit_rps)
            return dataclasses.replace(self.settings)

    def reset(self) -> None:
        """Turn every fault off (the counts of what was injected stay)."""
        with self._lock:
            self.settings = FaultSettings()
            self._bucket = None

    @staticmethod
    def _new_bucket(rate: float | None) -> _Bucket | None:
        return None if rate is None else _Bucket(rate=rate, tokens=max(1.0, rate))

    def snapshot(self) -> dict[str, Any]:
        """The settings and the injected counts, as JSON-ready data."""
        with self._lock:
            return {"seed": self.seed, "settings": self.settings.as_dict(), "injected": dict(self.injected)}

    # -- helpers for the simulators' own (data) faults ---------------------------------------------

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``, from the data RNG (no draw when ``rate`` is 0)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._data_rng.random() < rate

    def choice(self, options: list[Any] | tuple[Any, ...]) -> Any:
        with self._lock:
            return self._data_rng.choice(options)

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + n

    # -- per-request faults --------------------------------------------------------------------

    def _take_token(self) -> int | None:
        """None when the rate limit lets the request through, else the Retry-After seconds."""
        bucket = self._bucket
        if bucket is None:
            return None
        now = time.monotonic()
        bucket.tokens = min(max(1.0, bucket.rate), bucket.tokens + (now - bucket.stamp) * bucket.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / bucket.rate))

    def plan(self, commit_then_drop: bool) -> _Plan:
        """Decide (and count) the faults of one arriving request."""
        with self._lock:
            s = self.settings
            delay_roll, before_roll, after_roll = self._rng.random(), self._rng.random(), self._rng.random()
            lo, hi = s.latency_ms
            plan = _Plan(delay=(lo + (hi - lo) * delay_roll) / 1000.0)
            limited = self._take_token()
            if limited is not None:
                plan.before, plan.retry_after = "rate_limited", limited
            else:
                edge = 0.0
                for kind, rate in (
                    ("resets", s.reset_rate),
                    ("timeouts", s.timeout_rate),
                    ("errors", s.error_rate),
                    ("throttled", s.throttle_rate),
                ):
                    if rate > 0 and edge <= before_roll < edge + rate:
                        plan.before = kind
                        if kind == "errors":
                            plan.status = ERROR_STATUSES[min(2, int((before_roll - edge) / rate * 3))]
                        break
                    edge += rate
                plan.retry_after = max(0, math.ceil(s.retry_after_seconds))
                plan.hold = s.hold_seconds
            if plan.before is not None:
                self.injected[plan.before] += 1
            else:
                lost = s.lost_answer_rate if commit_then_drop else 0.0
                if after_roll < lost:
                    plan.after = "lost_answers"
                elif lost <= after_roll < lost + s.malformed_json_rate:
                    plan.after = "malformed"
            return plan

    def middleware(
        self, *, commit_then_drop: Collection[tuple[str, str]] = (), respond: Responder | None = None
    ) -> Any:
        """The aiohttp middleware applying the per-request faults.

        ``commit_then_drop`` names the routes, as (method, route template) pairs such as
        ``("POST", "/complaints/complaint")``, whose answer may be lost after the
        effect is committed; ``respond(status, message, headers)`` builds a fault's
        answer in the simulated system's envelope."""
        routes = frozenset((m.upper(), r) for m, r in commit_then_drop)
        answer = respond or _plain_answer

        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            plan = self.plan((request.method, _route_of(request)) in routes)
            if plan.delay > 0:
                await asyncio.sleep(plan.delay)
            if plan.before == "rate_limited":
                return answer(429, "Too Many Requests (rate limit)", {"Retry-After": str(plan.retry_after)})
            if plan.before == "resets":
                _drop(request, reset=True)
                return web.Response(status=500)  # never written: the connection is gone
            if plan.before == "timeouts":
                await asyncio.sleep(plan.hold)
                return answer(504, "Gateway Timeout", {})
            if plan.before == "errors":
                return answer(plan.status, "Server Error (injected)", {})
            if plan.before == "throttled":
                return answer(429, "Too Many Requests", {"Retry-After": str(plan.retry_after)})
            response = await handler(request)
            if plan.after == "lost_answers" and 200 <= response.status < 300:
                self.count("lost_answers")
                _drop(request, reset=False)
                return response  # aiohttp cannot write it: the connection is closed
            if (
                plan.after == "malformed"
                and isinstance(response, web.Response)
                and response.status == 200
                and response.content_type == "application/json"
                and isinstance(response.body, bytes)
            ):
                self.count("malformed")
                body = response.body
                cut = web.Response(body=body[: max(1, len(body) // 2)], status=200, content_type="application/json")
                for name, value in response.headers.items():
                    if name.lower() not in ("content-type", "content-length"):
                        cut.headers[name] = value
                return cut
            return response

        return faults


class SimClock:
    """Simulated time: ``origin`` plus real elapsed time times ``speed``, plus
    whatever :meth:`advance` added. ``speed=0`` makes a clock that only moves
    when told (the tests' fake clock)."""

    def __init__(self, origin: datetime | None = None, speed: float = 0.0):
        self._origin = origin or datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 WIB
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
    """A peer's simulator. Subclasses build the aiohttp app (with :meth:`make_app`, which
    adds the fault middleware and the control endpoints) and, in :meth:`tick`, let the
    simulated people (citizens, officers) act once."""

    name: ClassVar[str]
    default_port: ClassVar[int]
    #: (method, route template) pairs whose effect is committed before a lost_answer fault
    #: drops the connection, e.g. ``("POST", "/complaints/complaint")``.
    commit_then_drop_routes: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(self, *, seed: int = 0, clock: SimClock | None = None, faults: Mapping[str, Any] | None = None):
        self.seed = seed
        self.clock = clock or SimClock()
        self.lock = threading.RLock()
        self.faults = Faults(seed=f"{self.name}:{seed}", **dict(faults or {}))

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

    # -- faults ---------------------------------------------------------------------------------

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        """A fault's HTTP answer; subclasses answer in their system's envelope."""
        return _plain_answer(status, message, headers)

    def make_app(
        self, *, outer: Collection[Any] = (), inner: Collection[Any] = (), **app_options: Any
    ) -> web.Application:
        """An aiohttp app with the fault middleware between the subclass's ``outer``
        middlewares (such as a request counter) and its ``inner`` ones (such as the
        auth check), and the control endpoints ``/_sim/faults``, which skip every
        middleware: no faults, no auth, not counted."""
        app = web.Application(
            middlewares=[
                self._control_bypass,
                *outer,
                self.faults.middleware(commit_then_drop=self.commit_then_drop_routes, respond=self.fault_answer),
                *inner,
            ],
            **app_options,
        )
        self.add_control_routes(app)
        return app

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get(f"{CONTROL_PREFIX}faults", self._get_faults)
        app.router.add_post(f"{CONTROL_PREFIX}faults", self._post_faults)
        app.router.add_post(f"{CONTROL_PREFIX}faults/reset", self._reset_faults)

    @web.middleware
    async def _control_bypass(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await request.match_info.handler(request)  # the route itself, past every middleware
        return await handler(request)

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.snapshot())

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response({"error": "the body must be a JSON object of fault settings"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object of fault settings"}, status=400)
        try:
            self.faults.configure(**body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.snapshot())

    async def _reset_faults(self, request: web.Request) -> web.Response:
        self.faults.reset()
        return web.json_response(self.faults.snapshot())


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

    @property
    def control_url(self) -> str:
        """The fault control endpoint (``GET`` to read, ``POST`` a JSON object to change)."""
        return f"{self.base_url}{CONTROL_PREFIX}faults"

    def start(self) -> SimulatorServer:
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
        assert self._runner is not None  # _start_site() set it before it returned
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            # Requests whose client went away (say, one held by a timeout fault) may still
            # be waiting: end them rather than let the loop close over pending tasks.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start_site(self) -> None:
        # A short shutdown: a request held by a timeout fault must not keep stop() waiting.
        self._runner = web.AppRunner(self.simulator.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
