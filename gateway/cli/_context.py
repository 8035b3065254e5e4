"""What every command module of the CLI shares: the consoles, the global options
(--config, --store) and opening the config and the store with clear errors.

It lives apart from ``_commands`` so that there is one copy of it even when
``_commands`` runs as ``__main__`` (``python -m gateway.cli._commands``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.errors import MarkupError

from gateway._config import GatewayConfig, load_config
from gateway._errors import ConfigError, GatewayError
from gateway._logging import configure_logging
from gateway._store import Store
from gateway.cli._render import print_config_error

#: The styles the CLI's own messages use ("[red]...[/red]"), taken off a message printed as text.
_OWN_STYLES = re.compile(r"\[/?(?:bold red|bold|red|green|yellow|cyan)\]")


class _Console(Console):
    """A console whose messages may quote what an operator typed or a peer sent: one that is not
    valid markup then (an --app named '[/]', a file path with '[/x]') is printed as text, without
    the CLI's own styles, instead of ending the command in a rich.MarkupError traceback."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        try:
            super().print(*objects, **kwargs)
        except MarkupError:
            plain = [_OWN_STYLES.sub("", o) if isinstance(o, str) else o for o in objects]
            super().print(*plain, **{**kwargs, "markup": False})


out = _Console()
err = _Console(stderr=True)


class Options:
    config_path: Path | None = None
    store_url: str | None = None
    operator: str | None = None
    # Set by a command that logs (run, sync) when its lines are JSON: its notes are log lines then,
    # so that a journal read as JSON lines holds nothing else.
    json_logs: bool = False


def operator_name() -> str:
    """Who runs an operator command, for the audit trail: ``--operator``, else
    ``GATEWAY_OPERATOR``, else the OS user, each cleaned by the dashboard's rule
    (:func:`gateway._operator_name.clean_operator_name`). An empty or blank one counts as not
    given (an environment file often leaves the variable empty): the next source is asked. A
    name that breaks the rule (a line break, an escape code, over 64 characters) stops the
    command with exit 2 naming where it came from: the audit must not record a name other than
    the one given, and guessing another would be worse."""
    import getpass
    import os

    from gateway._operator_name import MAX_NAME_CHARS, clean_operator_name

    for source, raw in (("--operator", options.operator), ("GATEWAY_OPERATOR", os.environ.get("GATEWAY_OPERATOR"))):
        if raw is None or not raw.strip():
            continue
        name = clean_operator_name(raw)
        if name is None:
            err.print(
                f"[red]{source}: not a usable operator name: it must be printable text on one line of 1 to "
                f"{MAX_NAME_CHARS} characters (docs/operations.md)[/red]",
                highlight=False,
            )
            raise typer.Exit(2)
        return f"operator:{name}"
    try:
        user = getpass.getuser()
    except Exception:  # no user name (a container without one)
        user = ""
    return f"operator:{clean_operator_name(user) or 'unknown'}"


options = Options()


def _load(*, check_secrets: bool = True) -> GatewayConfig:
    try:
        config = load_config(options.config_path, check_secrets=check_secrets)
    except ConfigError as exc:
        print_config_error(err, exc)
        err.print("Fix these, then run `gateway config check`.")
        raise typer.Exit(2) from None
    if options.store_url:
        config.settings.store.url = options.store_url
    return config


def _open_store(config: GatewayConfig) -> Store:
    try:
        store = Store(config.settings.store.url)
    except GatewayError as exc:
        note(f"store: {exc}", level="error")  # a JSON line while the command logs JSON (run, sync)
        raise typer.Exit(2) from None
    except Exception as exc:  # a driver error: name it without a traceback (the URL may hold a password)
        problem = sqlite_folder_problem(config.settings.store.url)
        why = f": {problem}" if problem else ""
        note(f"cannot open the store ({type(exc).__name__}){why}; check {store_url_source(config)}", level="error")
        raise typer.Exit(2) from None
    _say_upgrade(store)
    return store


def store_url_source(config: GatewayConfig) -> str:
    """Where the store's URL came from, for an error about it: --store or GATEWAY_STORE_URL
    override gateway.yaml, and sending the operator to a file whose URL was not used misleads."""
    if options.store_url:
        return "the URL of --store (or GATEWAY_STORE_URL)"
    return f"store.url in {config.path}"


def sqlite_folder_problem(url: str) -> str | None:
    """For a SQLite store, what is wrong with its folder, if anything: SQLite writes the file
    and its -wal and -shm files there, so a folder this user cannot write (a read-only mount,
    another owner, systemd's ProtectSystem) fails as a bare OperationalError or PermissionError."""
    import os

    from sqlalchemy.engine.url import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    folder = Path(parsed.database).absolute().parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        return None
    return f"this user cannot write in {existing}, where SQLite keeps the store's file and its -wal and -shm files"


def store_failure_text(exc: BaseException) -> str:
    """A store that opened and then failed, by the error's class only (a driver's text may quote
    the statement's values)."""
    from sqlalchemy.exc import IntegrityError

    if isinstance(exc, IntegrityError):  # a race with another writer, not a store that is down
        return (
            "the database refused the change (IntegrityError): another process wrote the same row at "
            "the same moment; nothing of this step was written: look again (`gateway deliveries show`)"
        )
    return (
        f"the database failed ({type(exc).__name__}): another process may hold it (a SQLite file takes "
        "one writer at a time: a daemon, a backfill, a sqlite3 shell) or it is down; run the command "
        "again when it answers (`gateway db current` tells)"
    )


def _say_upgrade(store: Store) -> None:
    """One line on stderr when opening the store changed its schema (stdout stays the command's)."""
    from gateway._store import head_revision

    before = store.upgraded_from
    if before.revision == head_revision():
        return
    if before.is_empty:
        note(f"store: schema created at revision {head_revision()}")
    else:
        note(f"store: schema upgraded from {before.describe()} to revision {head_revision()}")


def _setup_logging(config: GatewayConfig) -> None:
    options.json_logs = configure_logging(config.settings.log.level, config.settings.log.format) == "json"


def note(text: str, *, level: str = "info") -> None:
    """A line for the operator on stderr: plain text, or a JSON log line while the command's
    log lines are JSON (:func:`_setup_logging`)."""
    if options.json_logs:
        from gateway._logging import get_logger

        getattr(get_logger("gateway.cli"), level)(text, logger="gateway.cli")  # as docs/deploy.md says
    else:
        err.print(text, highlight=False, markup=False, style="red" if level == "error" else None)
