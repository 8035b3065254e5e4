"""The simulators on their own (``gateway simulate``) and the demo (``gateway demo``):
both simulators plus the daemon, on SQLite, in one process.

The simulators are found through the ``lapor_gateway.simulators`` entry points,
like adapters; the demo points each instance whose adapter has a simulator at it.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from gateway._config import load_config
from gateway._registry import load_simulator_factory, simulator_names
from gateway._store import Store
from gateway._store._report import status_report
from gateway._timezones import utcnow
from gateway.cli._render import status_tables
from gateway.simulation import SimClock, Simulator, SimulatorServer

DEMO_STORE = Path("data/demo.db")
#: How long before now the simulated world starts: about the 3 working days LAPOR! gives to verify,
#: so the complaints filed in the demo's first minutes have their first deadline near now (due soon,
#: or overdue when a weekend or holiday falls in between).
DEMO_WORLD_AGE = timedelta(days=4)
DEMO_SCHEDULE = {"intake_seconds": 3.0, "hub_poll_seconds": 4.0, "deliver_seconds": 2.0}


def _start(
    names: list[str],
    *,
    seed: int,
    clock: SimClock,
    port: int | None,
    options: dict[str, dict[str, Any]] | None = None,
    faults: dict[str, Any] | None = None,
    free_ports: bool | None = None,
) -> dict[str, SimulatorServer]:
    """Make and serve each named simulator: ``options[name]`` are passed to its factory as
    keyword arguments, ``faults`` to every one. Ports: from ``port`` on, one each; else
    free ones when ``free_ports`` (by default: when ``options`` is given, as the demo
    wants), else each simulator's own."""
    if free_ports is None:
        free_ports = options is not None
    servers: dict[str, SimulatorServer] = {}
    try:
        for index, name in enumerate(names):
            extra = dict((options or {}).get(name, {}))
            if faults:
                extra["faults"] = {**faults, **extra.get("faults", {})}
            sim: Simulator = load_simulator_factory(name)(seed=seed, clock=clock, **extra)
            chosen = (port + index) if port is not None else (0 if free_ports else sim.default_port)
            servers[name] = SimulatorServer(sim, port=chosen).start()
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


async def _tick(servers: dict[str, SimulatorServer], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for server in servers.values():
            await asyncio.to_thread(server.simulator.tick)


async def run_simulators(
    names: list[str] | None,
    *,
    port: int | None,
    speed: float,
    seed: int,
    tick: float,
    console: Console,
    faults: dict[str, Any] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Serve the named simulators (all installed by default) until cancelled. ``options``
    maps a simulator's name to keyword arguments of its factory (such as
    ``{"lapor_hendi": {"initial_complaints": 100000, "history_days": 1500}}``). Each
    simulator's URL is printed once it serves; the last line, ``ready: ...``, says that
    all of them do (a benchmark starting this in a subprocess waits for it)."""
    names = names or simulator_names()
    clock = SimClock(speed=speed)
    started = time.monotonic()
    servers = _start(names, seed=seed, clock=clock, port=port, faults=faults, options=options, free_ports=False)
    try:
        for name, server in servers.items():
            console.print(f"{name} simulator on {server.base_url}", highlight=False)
            chosen = (options or {}).get(name)
            if chosen:
                given = ", ".join(f"{k}={v}" for k, v in chosen.items())
                counts = server.simulator.counts()
                console.print(f"  {given}: {counts.get('complaints', 0)} complaints", highlight=False, soft_wrap=True)
            for variable, value in server.simulator.demo_environment().items():
                console.print(f"  export {variable}={value}", highlight=False)
            console.print(f"  faults: {server.control_url}  (POST .../reset turns them off)", highlight=False)
        if faults:
            shown = ", ".join(
                f"{k}={','.join(f'{x:g}' for x in v) if isinstance(v, tuple) else v}" for k, v in faults.items()
            )
            console.print(f"faults on from the start: {shown}", highlight=False)
        console.print(f"simulated time runs {speed:g}x; Ctrl-C stops")
        console.print(
            f"ready: {', '.join(f'{n} {s.base_url}' for n, s in servers.items())} "
            f"(started in {time.monotonic() - started:.1f} s)",
            highlight=False,
            soft_wrap=True,
        )
        await _tick(servers, tick)
    finally:
        for server in servers.values():
            server.stop()


async def run_demo(
    config_path: Path | None, *, speed: float, seed: int, seconds: float | None, console: Console
) -> None:
    from gateway._daemon import Daemon
    from gateway._engine import Engine
    from gateway._logging import configure_logging

    # Deadlines are counted against the gateway's real clock: a simulated world on a fixed date
    # made every complaint weeks overdue, or filed in the future, by the day the demo ran.
    clock = SimClock(origin=utcnow().replace(microsecond=0) - DEMO_WORLD_AGE, speed=speed)
    servers = _start(
        simulator_names(), seed=seed, clock=clock, port=None, options={"lapor_hendi": {"initial_complaints": 8}}
    )
    try:
        for server in servers.values():
            for variable, value in server.simulator.demo_environment().items():
                os.environ.setdefault(variable, value)
        config = load_config(config_path)
        for inst in config.instances.values():
            if inst.spec.adapter in servers:
                inst.spec.base_url = servers[inst.spec.adapter].base_url
            for key, every in DEMO_SCHEDULE.items():
                setattr(inst.spec.schedule, key, every)
            # The gateway's clock is real time; the simulated people's runs `speed` times faster,
            # and so does their work: a budget meant for real time would only hold the demo up.
            inst.spec.budget.requests_per_second = None
            polling = inst.spec.polling
            polling.min_interval_minutes /= speed
            polling.sweep_bound_hours /= speed
            polling.reopen_window_days /= speed
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_STORE}{suffix}").unlink(missing_ok=True)
        config.settings.store.url = f"sqlite:///{DEMO_STORE}"
        configure_logging(
            config.settings.log.level, "console" if config.settings.log.format == "auto" else config.settings.log.format
        )
        store = Store(config.settings.store.url)
        console.print(
            "[bold]lapor-gateway demo[/bold]: simulators at "
            + ", ".join(f"{n} {s.base_url}" for n, s in servers.items())
            + f"; store {DEMO_STORE}; simulated time {speed:g}x.\n"
            f"In another terminal: [cyan]gateway --store sqlite:///{DEMO_STORE} status[/cyan]. "
            "Ctrl-C stops.",
            highlight=False,
        )
        stop = asyncio.Event()
        ticker = asyncio.create_task(_tick(servers, 1.0))
        reporter = asyncio.create_task(_report_every(store, config, servers, console, 15.0))
        if seconds:
            asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            async with Engine(config, store) as engine:
                # Another program on the configured port must not stop a demo: it takes a free one.
                daemon = Daemon(
                    engine,
                    config,
                    any_port_if_taken=True,
                    on_listening=lambda web: console.print(f"[bold]{escape(web.announcement())}[/bold]"),
                )
                await daemon.run_until_signalled(stop)
        finally:
            ticker.cancel()
            reporter.cancel()
            _print_report(store, config, servers, console)
            store.close()
    finally:
        for server in servers.values():
            server.stop()


async def _report_every(
    store: Store, config: Any, servers: dict[str, SimulatorServer], console: Console, every: float
) -> None:
    while True:
        await asyncio.sleep(every)
        _print_report(store, config, servers, console)


def _print_report(store: Store, config: Any, servers: dict[str, SimulatorServer], console: Console) -> None:
    # The instances the demo runs; the disabled examples would only squeeze the tables.
    report = status_report(store, {name: inst.role for name, inst in config.instances.items() if inst.spec.enabled})
    for table in status_tables(report):
        console.print(table)
    for name, server in servers.items():
        counts = ", ".join(f"{k} {v}" for k, v in server.simulator.counts().items())
        console.print(f"{name} simulator: {counts}", highlight=False)
