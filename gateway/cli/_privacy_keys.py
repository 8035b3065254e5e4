"""``gateway privacy new-key | rotate-keys | minimise | reporter``: the reporter data a local
app keeps for its configured purpose (``privacy.reporter``), its keys, and showing it for
that purpose. See docs/privacy-reporter.md."""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated

import typer

from gateway._personal_data import KEYS_ENV, KeysError, PersonalDataKeys, ReporterKeeping, new_key

if TYPE_CHECKING:
    from gateway._config import GatewayConfig
    from gateway._store._reporters import Mode

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="count what would change; change nothing")]


def new_key_command() -> None:
    """Print a fresh encryption key for the kept reporter data.

    The key goes in front of the list in GATEWAY_PERSONAL_DATA_KEYS (or the variable an
    app's privacy.reporter.key_env names); the key printed is not stored anywhere."""
    from gateway.cli._context import err, out

    key = new_key()
    out.print(key, highlight=False, markup=False, soft_wrap=True)
    err.print(
        f"Put it in front of the keys in {KEYS_ENV} (the daemon's environment file), comma-separated:\n"
        f"  {KEYS_ENV}=<this key>,<the keys there now>\n"
        "The first key encrypts, every key decrypts. Restart the daemon, run `gateway privacy rotate-keys`,\n"
        "and only then remove the old keys (and restart again). Keep a copy where your secrets are kept:\n"
        "without its key, the kept data cannot be read by anyone.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def _keeping(config: GatewayConfig) -> dict[str, ReporterKeeping | None]:
    """What each local app (enabled or not: its rows stay in the store) keeps, with its keys
    from the environment; a kept field without usable keys stops the command (exit 2)."""
    from gateway.cli._context import err

    keeping: dict[str, ReporterKeeping | None] = {}
    for inst in config.instances.values():
        if inst.role != "local_app":
            continue
        reporter = inst.spec.privacy.reporter
        if not reporter.keep:
            keeping[inst.name] = None
            continue
        try:
            keys = PersonalDataKeys.from_environment(reporter.key_env, os.environ)
        except KeysError as exc:
            err.print(f"[red]{inst.name}: {exc}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        keeping[inst.name] = ReporterKeeping(tuple(reporter.keep), keys)
    return keeping


def _tidy(mode: Mode, dry_run: bool) -> None:
    from gateway._store._reporters import tidy_reporters
    from gateway.cli._backfill import WalkBar, bar_progress
    from gateway.cli._context import _load, _open_store, err, operator_name, out

    config = _load(check_secrets=False)  # the peers' secrets are not needed here; the keys are
    keeping = _keeping(config)
    store = _open_store(config)
    try:
        with bar_progress(out) if out.is_terminal else nullcontext() as progress:
            report = tidy_reporters(
                store,
                keeping,
                mode=mode,
                dry_run=dry_run,
                actor=operator_name(),
                progress=WalkBar(progress, "reporter data", streams=("rows",)),
            )
    finally:
        store.close()
    if not report.by_app:
        out.print("the store keeps no reporter data", highlight=False, soft_wrap=True)
    for app, counts in sorted(report.by_app.items()):
        purpose = "" if keeping.get(app) else " (no purpose configured)"
        out.print(f"{app}{purpose}: {counts.describe()}", highlight=False, markup=False, soft_wrap=True)
    if dry_run:
        out.print("dry run: nothing was changed", highlight=False, soft_wrap=True)
    for app, counts in sorted(report.by_app.items()):
        kept = keeping.get(app)
        if counts.unreadable and kept is not None:
            err.print(
                f"[red]the keys in {kept.keys.variable} do not open {counts.unreadable} values of {app}: was a key "
                "removed too soon? Put the old key back at the end of the list and run this again; those values "
                "were left as they were.[/red]",
                highlight=False,
                soft_wrap=True,
            )
    if report.unreadable:
        raise typer.Exit(1)


def rotate_keys_command(dry_run: DryRunOption = False) -> None:
    """Re-encrypt every kept reporter value with the first key.

    After `gateway privacy new-key` put a new key in front of the list (and the daemon was
    restarted with it), this encrypts every kept value with it, plain ones left by an older
    version too; then the old keys may be removed. Prints counts only. Exits 1 when a value
    opens with none of the keys (it is left as it was)."""
    _tidy("rotate", dry_run)


def minimise_command(dry_run: DryRunOption = False) -> None:
    """Delete the reporter data no configured purpose keeps; encrypt plain values.

    Rows of local apps whose privacy.reporter names no purpose are deleted, values of fields
    a purpose no longer keeps are removed, and values an older version stored in plain text
    are encrypted. Run it once after upgrading and after narrowing privacy.reporter.keep.
    Prints counts only."""
    _tidy("minimise", dry_run)


def reporter_command(
    app: Annotated[str, typer.Option("--app", help="the local app instance the complaint belongs to")],
    ref: Annotated[str, typer.Option("--ref", help="the complaint's id in that local app")],
) -> None:
    """Show the reporter data kept for a complaint, for its app's configured purpose.

    Only the fields privacy.reporter keeps, decrypted. Who asked and which fields were shown
    are written to the audit trail (never the values)."""
    from gateway._store._reporters import ReporterLookupError, show_reporter
    from gateway.cli._context import _load, _open_store, err, operator_name, out

    config = _load(check_secrets=False)
    inst = config.instances.get(app)
    if inst is None or inst.role != "local_app":
        apps = ", ".join(n for n, i in config.instances.items() if i.role == "local_app") or "none"
        err.print(
            f"[red]--app: no local app instance named {app!r}; there are: {apps}[/red]", highlight=False, soft_wrap=True
        )
        raise typer.Exit(2)
    reporter = inst.spec.privacy.reporter
    if not reporter.keep or reporter.purpose is None:
        err.print(
            f"[red]{app} keeps no reporter data: its privacy.reporter names no purpose and no fields to keep "
            f"({inst.path}; docs/privacy-reporter.md)[/red]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    keeping = _keeping(config)[app]
    assert keeping is not None  # it keeps fields: _keeping has its keys or stopped
    store = _open_store(config)
    try:
        kept = show_reporter(store, app, ref, keeping, actor=operator_name())
    except ReporterLookupError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    out.print(f"{app} complaint {ref} (kept for: {reporter.purpose}):", highlight=False, markup=False, soft_wrap=True)
    for name, value in kept.shown.items():
        out.print(f"  {name}: {value}", highlight=False, markup=False, soft_wrap=True)
    for name in kept.unreadable:
        out.print(f"  {name}: (not shown: no key opens it)", highlight=False, markup=False, soft_wrap=True)
    if kept.unreadable:
        err.print(
            f"[red]the keys in {keeping.keys.variable} do not open {len(kept.unreadable)} values of this reporter: "
            "was a key removed too soon?[/red]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
