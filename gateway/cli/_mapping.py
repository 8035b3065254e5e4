"""``gateway mapping check``: values seen that the YAML does not map."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.table import Table

mapping_app = typer.Typer(
    help="Check the mappings of categories, channels, agencies and statuses.", no_args_is_help=True
)


@mapping_app.command("check")
def check_command(
    refresh: Annotated[
        bool, typer.Option("--refresh", help="read the hubs' institutions and templates again first (calls each hub)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List the values the gateway has seen that the YAML does not map, with the file to
    fix and how many complaints carried each; and agencies mapped to institutions the
    hub does not list (from its reference data, cached daily). Exits 1 when there is any."""
    from gateway._engine import Engine
    from gateway._engine._mapping_check import mapping_check, reference_age
    from gateway.cli._context import _load, _open_store, err, out
    from gateway.cli._render import plain

    config = _load(check_secrets=refresh)
    store = _open_store(config)
    try:
        if refresh:

            async def read() -> None:
                async with Engine(config, store) as engine:
                    for hub in engine.hubs():
                        if await engine.refresh_reference(hub) is None:
                            err.print(
                                f"[red]{hub}: reference data could not be read (see the log line "
                                "above); checking against the cached copy[/red]",
                                highlight=False,
                            )

            asyncio.run(read())
        findings = mapping_check(config, store)
        ages = reference_age(config, store)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(
            json.dumps({"findings": [f.as_dict() for f in findings], "reference_read_at": ages}, indent=2) + "\n"
        )
    else:
        for hub, at in ages.items():
            out.print(
                f"{hub}: institutions read {at or 'never (run with --refresh, or let the daemon run)'}", highlight=False
            )
        if not findings:
            out.print("[green]ok[/green]: every value seen has a mapping")
        else:
            table = Table("file", "table", "value", "seen", "problem", title="values to map")
            for f in findings:
                table.add_row(f.file, f.table, plain(f.value), str(f.seen), f.problem)
            out.print(table)
    if findings:
        raise typer.Exit(1)
