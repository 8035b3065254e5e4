"""``gateway``: run the sync daemon, one pass, the status view, config checks,
the installed adapters, the simulators and the demo."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from gateway._config import GatewayConfig, load_config
from gateway._errors import ConfigError, GatewayError
from gateway._registry import installed_adapters
from gateway._store import DATABASE_ERRORS
from gateway._store._report import status_report
from gateway.cli._context import _load, _open_store, _setup_logging, err, note, options, out, store_failure_text
from gateway.cli._render import disabled_instances, print_config_error, status_view

app = typer.Typer(
    name="gateway",
    help="lapor-gateway: keeps local complaint apps (such as Lapor Hendi) and the national hub "
    "LAPOR!-SP4N in agreement.\n\nStart with `gateway demo` (built-in simulators, SQLite), then "
    "`gateway config check` on your own config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

#: ``status --watch --interval`` at most: a day between refreshes is no longer a live view, and a
#: far longer one overflows the sleep. At least: each refresh reads the whole status from the
#: store (a daemon's database), so a near-zero interval would be a busy loop against it.
LONGEST_INTERVAL = 86400.0
SHORTEST_INTERVAL = 0.5

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", help="gateway.yaml to use (default: config/gateway.yaml)"),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", envvar="GATEWAY_STORE_URL", help="store URL overriding gateway.yaml (e.g. sqlite:///data/demo.db)"
    ),
]


OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--operator",
        # GATEWAY_OPERATOR is read by operator_name, not here: a refused name must say which one it was.
        help="your name, written to the audit trail with what you do (else GATEWAY_OPERATOR, else the OS user)",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from gateway import __version__  # the one place the version is written; pyproject.toml reads it too

        out.print(f"lapor-gateway {__version__}", highlight=False)
        raise typer.Exit()


VersionOption = Annotated[
    bool | None, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
]


@app.callback()
def _global(
    config: ConfigOption = None,
    store: StoreOption = None,
    operator: OperatorOption = None,
    version: VersionOption = None,
) -> None:
    options.config_path = config
    options.store_url = store
    options.operator = operator
    options.json_logs = False  # until a command sets its logging up (one process may run several: tests)


@app.command()
def run(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="demo profile, for trying the gateway against `gateway simulate`: every job interval, "
            "hub polling interval and delivery backoff divided by 60 (a minute becomes a second, at least "
            "1 s), so that complaints cross within seconds. Never against real peers",
        ),
    ] = False,
) -> None:
    """Run the sync daemon until Ctrl-C or SIGTERM.

    Every adapter instance's jobs (intake, hub polling, deliveries) run on their
    schedules; on a stop, running jobs are let finish. With --demo the schedules
    run 60 times faster (intake every second instead of every minute)."""
    from gateway._daemon import Daemon
    from gateway._engine import Engine

    config = _load()
    _setup_logging(config)
    if demo:
        from gateway._config._demo import DEMO_SPEED, speed_up

        speed_up(config, DEMO_SPEED)
        schedule = config.settings.schedule
        note(
            f"demo profile: intervals divided by {DEMO_SPEED:g} (intake every {schedule.intake_seconds:g} s, "
            f"hub polling every {schedule.hub_poll_seconds:g} s, deliveries every {schedule.deliver_seconds:g} s)"
        )
    store = _open_store(config)

    async def main() -> None:
        async with Engine(config, store) as engine:
            daemon = Daemon(engine, config, on_listening=lambda web: note(web.announcement()))
            await daemon.run_until_signalled()

    try:
        asyncio.run(main())
    except ConfigError as exc:  # the HTTP server's address (in use, not of this machine)
        if options.json_logs:  # a journal read as JSON lines: each problem one JSON line
            for issue in exc.issues:
                note(f"configuration problem: {issue}", level="error")
        else:
            print_config_error(err, exc)
        raise typer.Exit(2) from None
    except Exception as exc:  # never a library's traceback on the terminal: it may quote record data
        _internal_error(exc)
    finally:
        store.close()


def _internal_error(exc: Exception) -> None:
    """An exception no job handled: where it happened, never a library's text; exit 1."""
    from gateway._errors import safe_text
    from gateway._logging import get_logger, safe_traceback

    if options.json_logs:
        get_logger("gateway.cli").error(f"error: {safe_text(exc)} (an internal error)", exception=safe_traceback(exc))
        raise typer.Exit(1) from None
    err.print(safe_traceback(exc), highlight=False, markup=False)
    err.print(
        f"[red]error:[/red] {escape(safe_text(exc))} (an internal error; the lines above say where)", highlight=False
    )
    raise typer.Exit(1) from None


@app.command()
def sync(once: Annotated[bool, typer.Option("--once", help="do one pass and exit")] = False) -> None:
    """Sync: with --once, one pass and exit.

    One pass takes in from every local app, delivers to the hubs, reads the hubs and
    delivers back; it exits with status 1 if any job failed. Without --once it is
    the same as `gateway run`."""
    if not once:
        run()
        return
    from gateway._engine import Engine

    config = _load()
    _setup_logging(config)
    store = _open_store(config)

    async def main() -> dict[str, Any]:
        async with Engine(config, store) as engine:
            return await engine.run_pass()

    try:
        results = asyncio.run(main())
    except Exception as exc:  # never a library's traceback on the terminal: it may quote record data
        _internal_error(exc)
    finally:
        store.close()
    failed = [job for job, result in results.items() if result is None]
    if failed:
        note(f"failed jobs: {', '.join(failed)} (see the log lines above and `gateway status`)", level="error")
        raise typer.Exit(1)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="a live view until Ctrl-C: the tables read again every --interval seconds, what moved "
            "since the last refresh highlighted (+N). Piped: a plain snapshot per interval; with --json: "
            "one JSON line per interval",
        ),
    ] = False,
    interval: Annotated[
        float | None, typer.Option(help="seconds between refreshes of --watch (default: 2)", show_default=False)
    ] = None,
    refreshes: Annotated[int | None, typer.Option(hidden=True, help="stop --watch after this many refreshes")] = None,
) -> None:
    """What flowed, what is owed, what fails, per adapter instance.

    With --watch, a live view that refreshes itself every --interval seconds (Ctrl-C to stop)."""
    if interval is not None and not watch:
        err.print("[red]--interval needs --watch[/red]", highlight=False)
        raise typer.Exit(2)
    if watch and interval is not None and not SHORTEST_INTERVAL <= interval <= LONGEST_INTERVAL:
        err.print(
            f"[red]--interval must be from {SHORTEST_INTERVAL:g} to {LONGEST_INTERVAL:g} seconds (a day)[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
    config = _load(check_secrets=False)
    store = _open_store(config)
    if watch:
        from gateway.cli._watch import watch_status

        try:
            watch_status(config, store, console=out, interval=interval or 2.0, as_json=as_json, refreshes=refreshes)
        finally:
            store.close()
        return
    try:
        report = status_report(store, {name: inst.role for name, inst in config.instances.items()})
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    for line in status_view(report, disabled_instances(config)):
        out.print(line)


@config_app.command("check")
def config_check() -> None:
    """Check gateway.yaml and every adapter instance's YAML.

    Prints each problem with its file, line, key and what is expected, and exits 1
    when there is any."""
    try:
        config = load_config(options.config_path)
    except ConfigError as exc:
        print_config_error(out, exc)
        raise typer.Exit(1) from None
    out.print(f"[green]ok[/green]: {escape(str(config.path))} and {len(config.instances)} adapter instance(s):")
    for inst in config.instances.values():
        route = f" → {inst.spec.route.hub}" if inst.spec.route else ""
        enabled = "" if inst.spec.enabled else " (disabled)"
        out.print(
            f"  {inst.name}: {inst.spec.adapter} ({inst.role}){route}{enabled}  [{inst.path}]",
            highlight=False,
            markup=False,
        )
        if kept := inst.spec.privacy.reporter.keep:  # what a data protection officer asks first
            variable = inst.spec.privacy.reporter.key_env
            out.print(
                f"    keeps the reporter's {', '.join(kept)}, encrypted with the keys in {variable}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    _note_years_without_cuti_bersama(config)


def _note_years_without_cuti_bersama(config: GatewayConfig) -> None:
    """A note, not a failure: deadlines falling in a year whose cuti bersama the installed
    ``holidays`` package does not know yet count those days as working days."""
    from datetime import date

    from gateway._deadlines import years_without_cuti_bersama

    added = [day.day for day in config.settings.deadlines.calendar.add]
    for year in years_without_cuti_bersama(date.today(), added):
        out.print(
            f"[yellow]note[/yellow]: the installed holidays package knows no cuti bersama of {year}; "
            f"deadlines in {year} count those days as working days. Add them under deadlines.calendar.add "
            "in gateway.yaml once decreed (docs/deadlines.md)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def adapters() -> None:
    """List the installed adapters, built-in and third-party.

    Adapters are found through the entry-point group lapor_gateway.adapters."""
    found = installed_adapters()
    if not found:
        out.print("no adapters installed")
        return
    for a in found:
        if a.load_error:
            out.print(f"[red]{a.name}[/red]  {a.target}  fails to load: {a.load_error}", highlight=False)
        else:
            out.print(
                f"{a.name}  ({a.role})  {a.description}  [{a.distribution}: {a.target}]", highlight=False, markup=False
            )


@app.command()
def simulate(
    names: Annotated[list[str] | None, typer.Argument(help="simulators to start (default: all installed)")] = None,
    port: Annotated[int | None, typer.Option(help="port of the first simulator (default: its own)")] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 600.0,
    seed: Annotated[int, typer.Option(help="seed of the simulated people")] = 1,
    tick: Annotated[float, typer.Option(help="real seconds between the simulated people's actions")] = 1.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME=VALUE",
            help="a fault for every started simulator, repeatable: e.g. --fault error_rate=0.2 "
            "--fault latency_ms=50,400 (knobs: docs/simulators.md)",
        ),
    ] = None,
    initial_complaints: Annotated[
        int | None, typer.Option(help="lapor_hendi: complaints filed before the start (default: 0)")
    ] = None,
    history_days: Annotated[
        float | None,
        typer.Option(
            help="lapor_hendi: spread the initial complaints over this many days before the start and take each "
            "through its life (most closed) (default: ten minutes apart, all new)"
        ),
    ] = None,
) -> None:
    """Serve the built-in simulators of the peers on loopback until Ctrl-C.

    Faults given with --fault apply from the start; change them while the simulators
    run through each one's control endpoint (/_sim/faults, printed at start). The
    last line printed at start begins with "ready:" once every simulator serves."""
    from gateway.cli._demo import run_simulators
    from gateway.simulation import parse_fault_assignments

    try:
        faults = parse_fault_assignments(fault or [])
    except ValueError as exc:
        err.print(f"[red]--fault: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    local: dict[str, object] = {}
    if initial_complaints is not None:
        if initial_complaints < 0:
            err.print("[red]--initial-complaints must not be negative[/red]", highlight=False)
            raise typer.Exit(2)
        local["initial_complaints"] = initial_complaints
    if history_days is not None:
        if not history_days > 0:
            err.print("[red]--history-days must be above 0[/red]", highlight=False)
            raise typer.Exit(2)
        local["history_days"] = history_days
    if local and names and "lapor_hendi" not in names:
        err.print(
            "[red]--initial-complaints and --history-days are lapor_hendi's: start it too (gateway "
            "simulate lapor_hendi ...)[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
    try:
        asyncio.run(
            run_simulators(
                names,
                port=port,
                speed=speed,
                seed=seed,
                tick=tick,
                console=out,
                faults=faults,
                options={"lapor_hendi": local} if local else None,
            )
        )
    except GatewayError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 720.0,
    seed: Annotated[int, typer.Option(help="seed of the simulated people")] = 1,
    seconds: Annotated[float | None, typer.Option(help="stop after this many seconds (default: Ctrl-C)")] = None,
) -> None:
    """Demo: both simulators and the daemon, showing what flows.

    Uses the config (secrets come from the simulators) with a fresh SQLite store in
    data/demo.db. Ctrl-C stops everything."""
    from gateway.cli._demo import run_demo

    try:
        asyncio.run(run_demo(options.config_path, speed=speed, seed=seed, seconds=seconds, console=out))
    except ConfigError as exc:
        print_config_error(err, exc)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


from gateway.cli._backfill import backfill_command  # noqa: E402
from gateway.cli._db import db_app  # noqa: E402
from gateway.cli._deadlines import deadlines_command  # noqa: E402
from gateway.cli._deliveries import deliveries_app, quarantine_command  # noqa: E402  (needs `app` above)
from gateway.cli._links import links_app  # noqa: E402
from gateway.cli._mapping import mapping_app  # noqa: E402
from gateway.cli._new_adapter import new_adapter_command  # noqa: E402
from gateway.cli._privacy import privacy_app  # noqa: E402

app.add_typer(deliveries_app, name="deliveries")
app.command("quarantine")(quarantine_command)
app.command("backfill")(backfill_command)
app.command("new-adapter")(new_adapter_command)
app.add_typer(mapping_app, name="mapping")
app.add_typer(links_app, name="links")
app.add_typer(db_app, name="db")
app.command("deadlines")(deadlines_command)
app.add_typer(privacy_app, name="privacy")


def main() -> None:
    try:
        app()
    except GatewayError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except DATABASE_ERRORS as exc:
        # The store opened but failed later (a SQLite file another process holds past the lock
        # wait, a database that went down): the operator's matter, not an internal error, so no
        # traceback; exit 2 as for a store that cannot be opened. Only the class: a driver's
        # text may quote the values of the statement.
        err.print(f"[red]store: {store_failure_text(exc)}[/red]", highlight=False)
        sys.exit(2)
    except Exception as exc:  # never a library's traceback on the terminal: it may quote record data
        try:
            _internal_error(exc)
        except typer.Exit:
            sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
