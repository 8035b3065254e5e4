"""``gateway privacy ...``: personal data under UU PDP. This module holds the retention purge and
erasure on request (``purge``, ``erase``, ``requests``; docs/privacy-retention.md); other modules
register their own commands on :data:`privacy_app`.

Outputs name complaints by their ids only, never a text or a reporter's data."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from gateway._config import GatewayConfig
    from gateway._store._privacy import Erasure

privacy_app = typer.Typer(
    help="Personal data (UU PDP): purge texts past their retention, erase a complaint on request, "
    "the reporter data a purpose keeps and its keys.",
    no_args_is_help=True,
)


@privacy_app.command("purge")
def purge_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be purged; change nothing")] = False,
    app_name: Annotated[
        str | None, typer.Option("--app", help="only this local app (default: every local app)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Purge the texts of complaints closed longer than each local app's privacy.retention.closed_days.

    Removes titles, bodies, locations, follow-ups' texts, file names and reporters; keeps ids,
    states and times (the sync stays correct). The daemon does this daily; see
    docs/privacy-retention.md."""
    from gateway._store._privacy import purge_closed
    from gateway.cli._context import _load, _open_store, operator_name, out

    config = _load(check_secrets=False)
    apps = [app_name] if app_name else [i.name for i in config.instances.values() if i.role == "local_app"]
    if app_name:
        _local_app(config, app_name)
    store = _open_store(config)
    try:
        results = []
        for name in apps:
            retention = config.instances[name].spec.privacy.retention
            if not retention.enabled:
                continue
            counts = purge_closed(store, name, retention.closed_days, dry_run=dry_run, actor=operator_name())
            results.append((retention.closed_days, counts))
    finally:
        store.close()
    if as_json:
        rows = [{**c.as_dict(), "closed_days": days, "dry_run": dry_run} for days, c in results]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title="Would be purged (dry run: nothing changed)" if dry_run else "Purged")
    for column in ("local app", "closed over", "complaints", "events", "attachments", "reporters", "held back"):
        table.add_column(column, justify="left" if column == "local app" else "right")
    for days, c in results:
        table.add_row(
            c.instance,
            f"{days} days",
            str(c.complaints),
            str(c.events),
            str(c.attachments),
            str(c.reporters),
            str(c.held_back),
        )
    out.print(table if results else "no local app keeps a retention window", highlight=False)
    if any(c.held_back for _, c in results):
        out.print(
            "held back: still owed a delivery, or a sent follow-up not yet recognised at the hub; "
            "purged once that is settled (`gateway deliveries list`)",
            highlight=False,
        )


@privacy_app.command("erase")
def erase_command(
    app_name: Annotated[str, typer.Option("--app", help="the local app the complaint was filed in")],
    ref: Annotated[str, typer.Option("--ref", help="the complaint's id at that local app")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="the request's reference (a letter's number, say); no personal data"),
    ] = None,
    withdraw: Annotated[
        bool,
        typer.Option("--withdraw", help="a withdrawal of consent (UU PDP: stop within 3x24 hours): recorded as such"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
) -> None:
    """Erase a complaint's personal data and texts now, and stop processing it.

    Whatever its state: its texts and reporter are removed, its owed deliveries dropped, the
    hub poll stops reading it and later records of it at the local app are ignored. The request
    is recorded with its completion time (`gateway privacy requests`), also when nothing of it is
    stored. Prints what the gateway cannot erase (the hub's copy, the local app's own record) so
    that the request can be passed on."""
    from gateway._store._privacy import erase_complaint
    from gateway.cli._context import _load, _open_store, operator_name

    ref = ref.strip()
    if not ref:
        _fail("--ref: give the complaint's id at the local app")
    config = _load(check_secrets=False)
    _local_app(config, app_name)
    store = _open_store(config)
    try:
        erasure = erase_complaint(
            store, app_name, ref, kind="withdraw" if withdraw else "erase", reason=reason, actor=operator_name()
        )
    finally:
        store.close()
    _print_erasure(erasure, as_json)


def _print_erasure(erasure: Erasure, as_json: bool) -> None:
    from gateway.cli._context import out

    if as_json:
        view = asdict(erasure)
        view["requested_at"] = erasure.requested_at.isoformat()
        view["completed_at"] = erasure.completed_at.isoformat()
        view["erased_at"] = erasure.erased_at and erasure.erased_at.isoformat()
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
        return
    what = "withdrawal of consent" if erasure.kind == "withdraw" else "erasure"
    if erasure.complaint_id is None:
        out.print(
            f"no complaint with local id {erasure.local_ref} at {erasure.instance}: nothing stored; "
            f"the {what} request is recorded (request {erasure.request_id}) and the gateway will never "
            "take in this complaint, its follow-ups or its status changes",
            highlight=False,
        )
    elif erasure.outcome == "already_erased" and erasure.erased_at is not None:
        out.print(
            f"{what} request {erasure.request_id}: complaint {erasure.complaint_id} was already erased at "
            f"{erasure.erased_at:%Y-%m-%d %H:%M} UTC by an earlier request; this one is recorded too "
            f"({erasure.events} events, {erasure.attachments} attachments, {erasure.reporters} reporters; "
            f"{erasure.dropped} deliveries dropped)",
            highlight=False,
        )
    else:
        out.print(
            f"{what} request {erasure.request_id}: complaint {erasure.complaint_id} erased at "
            f"{erasure.completed_at:%Y-%m-%d %H:%M} UTC ({erasure.events} events, {erasure.attachments} attachments, "
            f"{erasure.reporters} reporters; {erasure.dropped} deliveries dropped); it is processed no further",
            highlight=False,
        )
    out.print("What the gateway cannot erase (pass the request on):", highlight=False)
    for line in erasure.remains:
        out.print(f"  - {line}", highlight=False)


@privacy_app.command("requests")
def requests_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Erasure and withdrawal requests, newest first: when asked, when done, by whom (ids only)."""
    from gateway._store._privacy import privacy_requests
    from gateway.cli._render import show_rows, time_cell

    show_rows(
        privacy_requests,
        as_json,
        "no privacy request recorded",
        ("id", "kind", "local app", "local ref", "requested (UTC)", "completed (UTC)", "operator", "outcome"),
        lambda r: (
            str(r["id"]),
            r["kind"],
            r["instance"],
            r["local_ref"],
            time_cell(r["requested_at"]),
            time_cell(r["completed_at"]),
            r["operator"],
            r["outcome"],
        ),
    )


def _local_app(config: GatewayConfig, name: str) -> None:
    instance = config.instances.get(name)
    if instance is None or instance.role != "local_app":
        known = ", ".join(sorted(n for n, i in config.instances.items() if i.role == "local_app")) or "none"
        _fail(f"--app: no local app named {name!r} in {config.path} (local apps: {known})")


def _fail(message: str) -> None:
    from gateway.cli._context import err

    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(2)


from gateway.cli._privacy_keys import (  # noqa: E402  (registered here, on the one privacy group)
    minimise_command,
    new_key_command,
    reporter_command,
    rotate_keys_command,
)

privacy_app.command("new-key")(new_key_command)
privacy_app.command("rotate-keys")(rotate_keys_command)
privacy_app.command("minimise")(minimise_command)
privacy_app.command("reporter")(reporter_command)
