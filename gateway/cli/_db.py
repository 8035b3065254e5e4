"""``gateway db upgrade|current|history``: the store's schema revisions (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.engine import Engine

db_app = typer.Typer(
    help="The store's schema: which revision it is at, the known revisions, and the upgrade.\n\n"
    "Every command that opens the store upgrades it by itself; these are for looking first, "
    "or for upgrading at a time of your choosing (for example before starting several daemons).",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Upgrade the store's schema to the newest revision this gateway knows, and say from what to what.

    A store made before Alembic (a schema_version table, versions 1 to 6) is adopted in place, its
    data kept. The upgrade runs in one transaction under a lock (PostgreSQL: an advisory lock;
    SQLite: the write lock), so it is safe while other gateway processes open the store. A store
    made by a newer gateway is refused (exit 2)."""
    from gateway._store._migrations import SchemaState, head_revision, migrate
    from gateway.cli._context import out

    with _store_engine() as engine:
        before: SchemaState = migrate(engine)
    head = head_revision()
    if before.revision == head:
        out.print(f"the store is at revision {head} (head) already: nothing to do", highlight=False)
    else:
        out.print(f"upgraded the store from {before.describe()} to revision {head} (head)", highlight=False)


@db_app.command("current")
def current_command() -> None:
    """Print the store's schema revision and whether it is the newest (head); change nothing.

    Exits 0 at head, 1 when an upgrade is due (`gateway db upgrade`, or any command that opens the
    store, does it), 2 when the store cannot be read or was made by a newer gateway."""
    from gateway._store._migrations import check_known, current_state, head_revision
    from gateway.cli._context import out

    with _store_engine() as engine:
        state = current_state(engine)
        check_known(state)
    head = head_revision()
    if state.revision == head:
        out.print(f"revision {head} (head)", highlight=False)
        return
    out.print(f"{state.describe()}; the head is revision {head}: run `gateway db upgrade`", highlight=False)
    raise typer.Exit(1)


@db_app.command("history")
def history_command() -> None:
    """List the schema revisions this gateway knows, oldest first, each with what it changes.

    Needs no store."""
    from gateway._store._migrations import script_directory
    from gateway.cli._context import out

    script = script_directory()
    head = script.get_current_head()
    for revision in reversed(list(script.walk_revisions())):
        marker = " (head)" if revision.revision == head else ""
        summary = (revision.doc or "").strip().splitlines()[0] if revision.doc else ""
        out.print(f"{revision.revision}{marker}  {summary}", highlight=False, markup=False, soft_wrap=True)


@contextmanager
def _store_engine() -> Iterator[Engine]:
    """The engine of the configured store (nothing upgraded on opening), with the errors of
    ``gateway``'s other commands: a clear line and exit 2, never a driver's traceback."""
    from gateway._errors import GatewayError
    from gateway._store._engine import create_store_engine
    from gateway.cli._context import _load, err, store_url_source

    config = _load(check_secrets=False)
    engine = None
    try:
        engine = create_store_engine(config.settings.store.url)
        yield engine
    except GatewayError as exc:
        err.print(f"[red]store: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a driver error: name it without its text (the URL may hold a password)
        err.print(
            f"[red]cannot open the store ({type(exc).__name__}); check {store_url_source(config)}[/red]",
            highlight=False,
        )
        raise typer.Exit(2) from None
    finally:
        if engine is not None:
            engine.dispose()
