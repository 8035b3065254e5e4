"""``gateway deliveries`` and ``gateway quarantine``: what could not be delivered or
read on its own, and the operator's decisions about it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway._store._operator import (
    STUCK_STATES,
    OperatorError,
    drop_delivery,
    link_delivery,
    list_deliveries,
    list_quarantine,
    resend_delivery,
    retry_delivery,
    show_delivery,
)
from gateway.cli._render import show_rows, time_cell

if TYPE_CHECKING:
    from gateway._store import Store

deliveries_app = typer.Typer(
    help="Deliveries that need an operator: parked ones (a permanent error, or too many failures) and "
    "ones whose outcome is unknown (needs confirmation).",
    no_args_is_help=True,
)

# Ids are positive 64-bit integers in the store: a larger number would reach the database driver
# and end in an OverflowError traceback instead of a usage error.
MAX_ID = 2**63 - 1
IdArgument = Annotated[
    int, typer.Argument(min=1, max=MAX_ID, help="the delivery's id (from `gateway deliveries list`)")
]


def _store() -> Store:  # the CLI module owns config and store opening
    from gateway.cli._context import _load, _open_store

    return _open_store(_load(check_secrets=False))


def _run(action: Callable[..., None], *args: Any) -> None:
    from gateway.cli._context import err, operator_name, out

    store = _store()
    try:
        action(store, *args, actor=operator_name())
    except OperatorError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    out.print("done", highlight=False)


@deliveries_app.command("list")
def list_command(
    state: Annotated[
        list[str] | None,
        typer.Option(
            help="parked, needs_confirmation, pending, done, dropped (default: parked and needs_confirmation)"
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="only deliveries to this adapter instance")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List deliveries that need an operator, oldest first."""
    from gateway._store._store import OutboxState
    from gateway.cli._context import _load, err

    # A typo ('parkd', 'needs-confirmation') or an instance that does not exist matched no row
    # and said "nothing waits for an operator" with exit 0: the operator took it for all clear.
    known = [s.value for s in OutboxState]
    wrong = [s for s in state or () if s not in known]
    if wrong:
        err.print(f"--state: {', '.join(map(repr, wrong))} is not a state; use {', '.join(known)}", markup=False)
        raise typer.Exit(2)
    if target is not None:
        instances = sorted(_load(check_secrets=False).instances)
        if target not in instances:
            err.print(
                f"--target: no adapter instance named {target!r}; there are: {', '.join(instances)}", markup=False
            )
            raise typer.Exit(2)
    show_rows(
        lambda store: list_deliveries(store, states=tuple(state or STUCK_STATES), target=target),
        as_json,
        "nothing waits for an operator",
        ("id", "state", "kind", "to", "complaint", "attempts", "first error (UTC)", "last error"),
        lambda r: (
            str(r["id"]),
            r["state"],
            r["kind"],
            r["target"],
            f"{r['complaint_id']} ({r['local']['instance']} {r['local']['ref']})",
            str(r["attempts"]),
            time_cell(r["first_error_at"]),
            r["last_error"] or "",
        ),
    )


@deliveries_app.command("show")
def show_command(outbox_id: IdArgument) -> None:
    """Everything known about one delivery, with its complaint's audit trail."""
    from gateway.cli._context import err

    store = _store()
    try:
        view = show_delivery(store, outbox_id)
    except OperatorError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    sys.stdout.write(json.dumps(view, indent=2) + "\n")


@deliveries_app.command("retry")
def retry_command(
    outbox_ids: Annotated[list[int], typer.Argument(min=1, max=MAX_ID, help="ids of parked deliveries")],
) -> None:
    """Send parked deliveries again, in their old place (fix the cause first: a mapping, the peer).

    Each id is tried and said with its outcome; exit 1 if any of them could not be retried."""
    from gateway.cli._context import err, operator_name, out

    # Every id is tried: stopping at the first refused one left the later ids parked with
    # nothing said about them, and a bare "done" per id did not say which were requeued.
    actor, refused = operator_name(), False
    store = _store()
    try:
        for outbox_id in outbox_ids:
            try:
                retry_delivery(store, outbox_id, actor=actor)
            except OperatorError as exc:
                err.print(f"[red]{exc}[/red]", highlight=False)
                refused = True
            else:
                out.print(f"delivery {outbox_id}: requeued", highlight=False)
    finally:
        store.close()
    if refused:
        raise typer.Exit(1)


@deliveries_app.command("resend")
def resend_command(outbox_id: IdArgument) -> None:
    """You checked the peer and the delivery of unknown outcome is NOT there: send it again."""
    _run(resend_delivery, outbox_id)


@deliveries_app.command("link")
def link_command(
    outbox_id: IdArgument, external_id: Annotated[str, typer.Argument(help="the id it has at the peer")]
) -> None:
    """You found what the delivery of unknown outcome created at the peer: record its id, mark it done."""
    _run(link_delivery, outbox_id, external_id)


@deliveries_app.command("drop")
def drop_command(
    outbox_id: IdArgument, reason: Annotated[str, typer.Option("--reason", help="why (kept in the audit trail)")]
) -> None:
    """Give a delivery up on purpose; the later ones of its complaint go on."""
    _run(drop_delivery, outbox_id, reason)


def quarantine_command(
    include_resolved: Annotated[bool, typer.Option("--all", help="also records that were read fine later")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Records a peer returned that could not be taken in, and why."""
    show_rows(
        lambda store: list_quarantine(store, include_resolved=include_resolved),
        as_json,
        "no quarantined records",
        ("instance", "stream", "record", "reason", "seen (UTC)", "resolved"),
        lambda r: (
            r["instance"],
            r["stream"],
            r["record_ref"],
            r["reason"],
            time_cell(r["seen_at"]),
            "yes" if r["resolved_at"] else "",
        ),
    )
