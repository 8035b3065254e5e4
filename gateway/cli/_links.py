"""``gateway links import``: pairs of ids of complaints already at the hub."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

links_app = typer.Typer(help="Complaints already at the hub before the gateway ran.", no_args_is_help=True)


@links_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV of two columns: the local app's id, the hub's id (an optional header row: local_id,hub_id)"
        ),
    ],
    app: Annotated[
        str | None, typer.Option("--app", help="the local app the ids belong to (default: the only one configured)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of lines")] = False,
) -> None:
    """Link complaints that are already at the hub to their hub id, so that they are not
    created there again.

    Run it before the first `gateway backfill` or `gateway run`. A complaint the gateway has
    taken in already is linked now (its create, if still owed, is marked done); one it has
    not taken in yet is linked when intake reads it. Where the local app can keep the hub's
    tracking id, the gateway writes it there. Lines that cannot be applied are listed with
    file and line, and change nothing. Exits 1 when there is any."""
    from gateway._adapter import LocalApp
    from gateway._capabilities import Capability
    from gateway._store._links import LinkImportError, import_links
    from gateway.cli._context import _load, _open_store, err, operator_name, out

    config = _load(check_secrets=False)
    apps = [inst for inst in config.local_apps() if inst.spec.route]
    if app is None and len(apps) != 1:
        err.print(
            f"[red]name the local app with --app (configured: {', '.join(i.name for i in apps) or 'none'})[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
    chosen = next((inst for inst in apps if inst.name == app), None) if app else apps[0]
    if chosen is None or chosen.spec.route is None:
        err.print(
            f"[red]{app!r} is not an enabled local app (configured: {', '.join(i.name for i in apps)})[/red]",
            highlight=False,
        )
        raise typer.Exit(2)
    adapter_class = chosen.adapter_class
    # What the class declares (the adapter is not built here: its secrets need not be set).
    write_back = issubclass(adapter_class, LocalApp) and Capability.WRITE_HUB_REF in adapter_class.capabilities
    store = _open_store(config)
    try:
        report = import_links(
            store, file, chosen.name, chosen.spec.route.hub, write_back_hub_ref=write_back, actor=operator_name()
        )
    except LinkImportError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(asdict(report), indent=2) + "\n")
    else:
        out.print(
            f"{chosen.name}: {report.linked} linked now, {report.waiting} linked when intake reads them, "
            f"{report.already} linked before"
            + (f"; the hub's id is written back to {chosen.name}" if write_back else ""),
            highlight=False,
        )
        for problem in report.problems:
            out.print(f"[red]{problem}[/red]", highlight=False)
    if report.problems:
        raise typer.Exit(1)
