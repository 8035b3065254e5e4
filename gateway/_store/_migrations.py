"""Schema migrations with Alembic. The revision scripts are frozen and ship in the package
(``gateway/_store/migrations/versions/``); this module runs them, with no alembic.ini or env.py.

Where a store can stand, and what opening it does (``Store.__init__`` calls :func:`migrate`):

- at the head revision: nothing; one read of ``alembic_version``, no lock;
- empty: revision ``0001`` creates the schema (what home-made version 6 was);
- made before Alembic (a ``schema_version`` table at home-made version 1 to 6, no
  ``alembic_version``): revision ``0001`` adopts it in place, running frozen copies of the old steps
  from its version to 6, and Alembic records ``0001``;
- at an older revision: the revisions after it, in order;
- at a revision this code does not know: refused with a :class:`StoreError`.

An upgrade runs in one transaction under a lock, so that two processes opening the same fresh
database at once do not both create it: on PostgreSQL a transaction-level advisory lock
(:data:`ADVISORY_LOCK_KEY`, one per database), on SQLite ``BEGIN IMMEDIATE`` (the database's write
lock). Whoever gets the lock second reads the revision again and finds nothing left to do.

To change the schema: change the models in ``_tables.py``, then add a revision file to
``migrations/versions/`` (see docs/architecture.md, "Schema migrations").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from gateway._errors import StoreError

if TYPE_CHECKING:  # Alembic is imported only when a store is behind: see HEAD_REVISION
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"

# The newest revision script's id. Every process opens a store, and nearly always finds it at this
# revision; knowing it without Alembic keeps Alembic's import (a quarter of the CLI's start-up) off
# that path. tests/test_migrations.py checks it against the scripts' own head.
HEAD_REVISION = "0005"

# pg_advisory_xact_lock key of a gateway schema upgrade ("lapor-gw" in ASCII): a fixed number, so
# every gateway process on the database contends for the same lock.
ADVISORY_LOCK_KEY = 0x6C61706F722D6777

# The last version the home-made migrations left in ``schema_version``. Revision 0001 writes 7 there, so
# that a gateway from before Alembic refuses the store rather than use a schema it does not know.
LAST_HOME_MADE_VERSION = 6


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands: an Alembic revision, a home-made version (a store from
    before Alembic), or neither (an empty database)."""

    revision: str | None = None
    home_made_version: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.revision is None and self.home_made_version is None

    def describe(self) -> str:
        if self.revision is not None:
            return f"revision {self.revision}"
        if self.home_made_version is not None:
            return f"version {self.home_made_version} (from before Alembic)"
        return "empty (no schema yet)"


def alembic_config() -> Config:
    """The Alembic configuration, built in code: the revision scripts are in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


@cache
def script_directory() -> ScriptDirectory:
    """The revision scripts, read once a process (they do not change while it runs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return HEAD_REVISION


def read_state(conn: Connection) -> SchemaState:
    """The store's schema as it stands, read on ``conn`` (nothing written)."""
    tables = inspect(conn)
    if tables.has_table("alembic_version"):
        # What Alembic's MigrationContext.get_current_revision reads, without importing Alembic.
        revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(revisions) > 1:
            raise StoreError(
                f"the store's alembic_version table holds {len(revisions)} revisions, where this gateway "
                f"keeps one; restore the store from a backup"
            )
        if revisions:
            return SchemaState(revision=revisions[0])
    if tables.has_table("schema_version"):
        version = conn.execute(text("SELECT version FROM schema_version WHERE id = 1")).scalar()
        return SchemaState(home_made_version=version if version is not None else 0)  # 0: its row is missing
    return SchemaState()


def current_state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return read_state(conn)


def is_at_head(state: SchemaState) -> bool:
    return state.revision == head_revision()


def check_known(state: SchemaState, script: ScriptDirectory | None = None) -> None:
    """Raise :class:`StoreError` for a store this code cannot upgrade: made by a newer gateway."""
    if state.revision is not None:
        if state.revision == HEAD_REVISION:
            return
        from alembic.util import CommandError

        try:
            (script or script_directory()).get_revision(state.revision)
        except CommandError:
            raise StoreError(
                f"this store was made by a newer gateway: revision {state.revision}, which this "
                f"gateway does not know (its newest is {head_revision()}); upgrade the "
                f"gateway"
            ) from None
    elif state.home_made_version == 0:
        raise StoreError(
            "the store has a schema_version table without its row, so the version of its schema "
            "is unknown; restore the store from a backup"
        )
    elif state.home_made_version is not None and not 1 <= state.home_made_version <= LAST_HOME_MADE_VERSION:
        raise StoreError(
            f"this store was made by a newer gateway: schema_version {state.home_made_version} "
            f"and no Alembic revision; upgrade the gateway"
        )


def migrate(engine: Engine) -> SchemaState:
    """Bring the store to the head revision; return where it stood before.

    A store at head costs one read and takes no lock. Otherwise the upgrade runs in one
    transaction under the lock, and the state is read again once the lock is held (another
    process may have done the upgrade meanwhile)."""
    before = current_state(engine)
    if before.revision == HEAD_REVISION:
        return before
    script = script_directory()
    check_known(before, script)
    with _upgrade_lock(engine) as conn:
        locked = read_state(conn)
        check_known(locked, script)
        if locked.revision != HEAD_REVISION:
            _run_upgrade(conn, script)
    return before


def _run_upgrade(conn: Connection, script: ScriptDirectory) -> None:
    """The revisions from the store's own to head, on ``conn`` inside its transaction."""

    def steps(revision, _context):  # type: ignore[no-untyped-def]
        return script._upgrade_revs("head", revision)

    from alembic.runtime.environment import EnvironmentContext

    with EnvironmentContext(alembic_config(), script, fn=steps, destination_rev="head") as env:
        env.configure(connection=conn)
        env.run_migrations()


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the store's upgrade lock; committed on leaving
    (which releases the lock), rolled back on an error."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                # Released with the transaction: no path can leave it held on a pooled connection.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                yield conn
        elif conn.dialect.name == "sqlite":
            yield from _sqlite_write_locked(conn)
        else:  # another database: its own transactional DDL, without a lock of ours
            with conn.begin():
                yield conn


def _sqlite_write_locked(conn: Connection) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` on ``conn``: SQLite's write lock, held until the commit, and the DDL in
    the same transaction. Python's sqlite3 would otherwise begin (deferred) on its own and commit
    DDL as it goes; its own transaction handling is off for this connection only, and restored
    before it goes back to the pool."""
    dbapi = conn.connection.driver_connection
    if dbapi is None:  # only on a connection closed or invalidated: not one just taken from the pool
        raise StoreError("the SQLite connection for the schema upgrade has no driver connection (it was closed)")
    saved = dbapi.isolation_level
    conn.commit()  # end SQLAlchemy's implicit transaction before the driver's handling changes
    dbapi.isolation_level = None
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        dbapi.isolation_level = saved
