"""``gateway deadlines``: the working-day deadlines of open complaints, near, over, or counted
by agency. References only (the gateway's and the local app's), never a complaint's content or
its reporter; times in each local app's own zone."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhm])")
LIMIT = 1000  # deadlines listed at most (the earliest): a terminal shows no more usefully
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# No deadline is ten years away; a longer span would only overflow the date arithmetic.
LONGEST = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """``2d``, ``36h``, ``90m``, ``1d12h``: a span of time. Raises ValueError otherwise."""
    compact = text.strip().lower()
    if not compact or _DURATION.sub("", compact).strip():
        raise ValueError(f"{text!r} is not a duration; use days, hours or minutes such as 2d, 36h, 90m or 1d12h")
    try:
        span = sum((float(n) * _UNITS[unit] for n, unit in _DURATION.findall(compact)), timedelta(0))
    except OverflowError:
        span = timedelta.max
    if span > LONGEST:
        raise ValueError(f"{text!r} is longer than {LONGEST.days} days; use a shorter span")
    return span


def deadlines_command(
    due_within: Annotated[
        str | None,
        typer.Option("--due-within", help="only deadlines due within this span from now (e.g. 2d, 36h, 90m)"),
    ] = None,
    over: Annotated[bool, typer.Option("--over", help="only deadlines already passed and not met")] = False,
    by_agency: Annotated[
        bool, typer.Option("--by-agency", help="counts per local app, agency and tier instead of a list")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Working-day deadlines of open complaints (tiers: verify, answer, close).

    Lists every deadline not met yet, earliest first, with its state (overdue, due soon, open);
    --due-within and --over narrow the list, --by-agency counts instead. Times are shown in
    each local app's own time zone. See docs/deadlines.md."""
    from gateway._store._deadlines import deadline_counts, list_deadlines
    from gateway.cli._context import _load, _open_store, err, out
    from gateway.cli._render import plain

    if due_within is not None and over:
        err.print("[red]--due-within and --over exclude each other: choose one[/red]", highlight=False)
        raise typer.Exit(2)
    try:
        within = parse_duration(due_within) if due_within is not None else None
    except ValueError as exc:
        err.print(f"[red]--due-within: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    config = _load(check_secrets=False)
    soon = timedelta(hours=config.settings.deadlines.due_soon_hours)
    zones = {name: ZoneInfo(inst.spec.timezone) for name, inst in config.instances.items()}
    store = _open_store(config)
    try:
        now = store.clock()
        if by_agency:
            counts = deadline_counts(store, now, within or soon)
            if over:
                counts = [c for c in counts if c.overdue]
            elif within is not None:
                counts = [c for c in counts if c.due_soon]
        else:
            items = list_deadlines(store, now, due_within=within, over=over, soon=soon, limit=LIMIT)
    finally:
        store.close()

    def local(instance: str, at: datetime) -> datetime:
        return at.astimezone(zones.get(instance, ZoneInfo("Asia/Jakarta")))

    if by_agency:
        if as_json:
            sys.stdout.write(json.dumps([asdict(c) for c in counts], indent=2) + "\n")
            return
        table = Table(title=f"Open deadlines by agency (due soon: within {_span(within or soon)})")
        for column in ("local app", "agency", "tier", "due soon", "overdue"):
            table.add_column(column, justify="right" if column in ("due soon", "overdue") else "left")
        for c in counts:
            table.add_row(c.instance, plain(c.agency), c.tier, str(c.due_soon), _red(c.overdue))
        out.print(table if counts else "no open deadline in this view", highlight=False)
        return
    if as_json:
        rows: list[dict[str, Any]] = [
            {**asdict(item), "due_at": local(item.instance, item.due_at).isoformat(timespec="minutes")}
            for item in items
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    title = "Overdue deadlines" if over else f"Deadlines due within {_span(within)}" if within else "Open deadlines"
    table = Table(title=title)
    for column in ("gateway ref", "local ref", "local app", "agency", "tier", "due", "state"):
        # References are copied into other tools: folded onto two lines on a narrow terminal, never cut.
        table.add_column(column, overflow="fold")
    for item in items:
        due = local(item.instance, item.due_at)
        state = f"[red]{item.state}[/red]" if item.state == "overdue" else item.state
        table.add_row(
            item.gateway_ref,
            plain(item.local_ref or "-"),
            item.instance,
            plain(item.agency),
            item.tier,
            f"{due:%Y-%m-%d %H:%M} {due.tzname()}",  # (a cell wider than its words never splits a time)
            state,
        )
    out.print(table if items else "no open deadline in this view", highlight=False)
    if len(items) == LIMIT:
        out.print(f"the {LIMIT} earliest shown; narrow the view with --due-within or --over", highlight=False)


def _span(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{int(hours // 24)}d"
    return f"{hours:g}h"


def _red(count: int) -> str:
    return f"[red]{count}[/red]" if count else "0"
