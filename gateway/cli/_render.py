"""How the CLI shows things to an operator: tables on a terminal, plain JSON for scripts."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from gateway._config import GatewayConfig
from gateway._errors import ConfigError
from gateway._logging import printable

if TYPE_CHECKING:
    from gateway._store import Store

LOCAL_COLUMNS = [
    ("complaints_seen", "complaints seen"),
    ("complaints_created_at_hub", "created at hub"),
    ("follow_ups_to_hub", "follow-ups → hub"),
    ("follow_ups_from_hub", "follow-ups ← hub"),
    ("status_changes_from_hub", "statuses ← hub"),
    ("status_notes_from_hub", "status notes ← hub"),
]
HUB_COLUMNS = [
    ("complaints_created", "complaints created"),
    ("complaints_open", "open"),
    ("follow_ups_delivered", "follow-ups delivered"),
    ("follow_ups_received", "follow-ups read"),
    ("status_changes_received", "status changes read"),
]
COMMON = [
    ("deliveries_owed", "owed"),
    ("deliveries_failing", "failing"),
    ("deliveries_parked", "parked"),
    ("deliveries_needing_confirmation", "needs confirmation"),
    ("records_quarantined", "quarantined"),
]


def disabled_instances(config: GatewayConfig) -> list[str]:
    """The instances `gateway status` only names: a column each (examples shipped for other regions)
    would only squeeze the tables; --json has them all."""
    return [name for name, inst in config.instances.items() if not inst.spec.enabled]


def status_view(
    report: dict[str, Any], disabled: list[str], previous: dict[str, Any] | None = None, *, store_line: bool = True
) -> list[RenderableType]:
    """What `gateway status` prints (and each refresh of `--watch` shows): the store line, the
    tables of the enabled instances, the disabled ones named, the failing jobs in red."""
    shown = {**report, "instances": [r for r in report["instances"] if r["name"] not in disabled]}
    view: list[RenderableType] = []
    if store_line:
        view.append(Text(f"store: {report['store']} (schema revision {report['schema_revision']})"))
    view.extend(status_tables(shown, previous))
    if disabled:
        view.append(Text(f"disabled (not shown): {', '.join(disabled)}"))
    view.extend(Text(line, style="red") for line in job_errors(report))
    return view


def status_tables(report: dict[str, Any], previous: dict[str, Any] | None = None) -> list[Table]:
    """One table per role, a column per instance: narrow enough for any terminal.

    With ``previous`` (the report of the last refresh of `status --watch`), a count that moved
    since shows by how much, "12 (+3)", highlighted."""
    before = {r["name"]: r for r in previous["instances"]} if previous else {}
    tables = []
    for role, columns, title in (("local_app", LOCAL_COLUMNS, "Local apps"), ("hub", HUB_COLUMNS, "Hubs")):
        rows = [r for r in report["instances"] if r["role"] == role]
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column("")
        for r in rows:
            table.add_column(r["name"], justify="right")
        for key, label in columns + COMMON:
            table.add_row(label, *[_cell(r[key], key, _moved(before, r, key)) for r in rows])
        if role == "hub":
            table.add_row(
                "reads due now (oldest due since, UTC)",
                *[
                    _count(r["polls_due"]["complaints"], _moved(before, r, "polls_due"))
                    + (
                        f" ({r['polls_due']['oldest_due_since'][:19].replace('T', ' ')})"
                        if r["polls_due"]["oldest_due_since"]
                        else ""
                    )
                    for r in rows
                ],
            )
        table.add_row("circuit breaker", *[_breaker(r["breaker"]) for r in rows])
        table.add_row(
            "last successful pass (UTC)",
            *[
                r["last_successful_pass"][:19].replace("T", " ")
                if r["last_successful_pass"]
                else "[yellow]never[/yellow]"
                for r in rows
            ],
        )
        tables.append(table)
    return tables


def _breaker(breaker: dict[str, Any]) -> str:
    if breaker["state"] == "closed":
        return "closed"
    return f"[red]{breaker['state']}[/red] since {(breaker['since'] or '')[11:19]}"


def _moved(before: dict[str, dict[str, Any]], row: dict[str, Any], key: str) -> int:
    """How much a count of ``row`` moved since the previous report (0 without one)."""
    old = before.get(row["name"])
    if old is None:
        return 0
    if key == "polls_due":
        return int(row[key]["complaints"]) - int(old[key]["complaints"])
    return int(row[key]) - int(old[key])


def _count(value: int, moved: int) -> str:
    return f"[bold yellow]{value} ({moved:+d})[/bold yellow]" if moved else str(value)


def _cell(value: int, key: str, moved: int = 0) -> str:
    if value and key in (
        "deliveries_failing",
        "deliveries_parked",
        "deliveries_needing_confirmation",
        "records_quarantined",
    ):
        return f"[red]{value}[/red]" + (f" [bold red]({moved:+d})[/bold red]" if moved else "")
    return _count(value, moved)


def job_errors(report: dict[str, Any]) -> list[str]:
    lines = []
    for r in report["instances"]:
        for job, info in r["jobs"].items():
            if info["last_error"] and (not info["last_success"] or info["last_error_at"] > info["last_success"]):
                lines.append(f"{r['name']} {job}: failing since {info['last_error_at'][:19]}: {info['last_error']}")
    return lines


def print_config_error(console: Console, error: ConfigError) -> None:
    console.print(f"[red]configuration has {len(error.issues)} problem(s):[/red]")
    for issue in error.issues:
        console.print(f"  {issue}", markup=False, highlight=False, soft_wrap=True)


def time_cell(iso: str | None) -> str:
    """A stored ISO time as a table cell: to the second, without the T."""
    return (iso or "")[:19].replace("T", " ")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: str) -> Text:
    """A table cell of data: a peer's value, or a reason quoting one. Shown as written, never read
    as markup (a status '[/]' stopped the command with a MarkupError) nor passed to the terminal
    as control codes (an escape sequence would restyle or rewrite the operator's screen)."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", printable(value)))


def show_rows(
    fetch: Callable[[Store], list[dict[str, Any]]],
    as_json: bool,
    empty: str,
    columns: tuple[str, ...],
    cells: Callable[[dict[str, Any]], tuple[str, ...]],
) -> None:
    """Read rows from the store, then print them as JSON or as a table."""
    from gateway.cli._context import _load, _open_store, out

    store = _open_store(_load(check_secrets=False))
    try:
        rows = fetch(store)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print(empty)
        return
    table = Table()
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(*(plain(cell) for cell in cells(r)))
    out.print(table)
