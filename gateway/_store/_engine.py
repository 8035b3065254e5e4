"""The SQLAlchemy engine of a store, set up as every use of it needs.

On SQLite a ``SELECT ... FOR UPDATE`` takes the database's write lock
(``BEGIN IMMEDIATE``) before it runs. SQLite has no row locks and its dialect drops
``FOR UPDATE`` from the statement, and Python's sqlite3 begins a transaction only
before the first write: without this, a read-then-write that PostgreSQL serialises
by the row lock (a delivery's claim checked, then its call marked as started) ran
as two steps another connection could come between. Two daemons on one SQLite file
then both took the same outbox row and the hub got the complaint twice. With it, a
store method that locks rows means the same on both backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.sql import Select
from sqlmodel import create_engine

#: How long a SQLite connection waits for the write lock before it gives up (seconds).
SQLITE_LOCK_WAIT_SECONDS = 10


def create_store_engine(url: str) -> Engine:
    """The engine of the store at ``url`` (nothing is created in the database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a database error's text then never quotes a record's values
        # (a reporter's name and address) into a log line or an error column.
        engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_WAIT_SECONDS}, hide_parameters=True)
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        sa_event.listen(engine, "before_execute", _sqlite_lock_for_update)
        return engine
    # No pre-ping: it cost a round trip on every transaction (a fifth of a busy daemon's time).
    # A connection found dead fails that one statement; SQLAlchemy then drops the whole pool
    # (a disconnect invalidates it) and the job's next run connects afresh. pool_recycle
    # renews connections a firewall or PgBouncer might silently drop while idle.
    return create_engine(url, pool_recycle=600, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_SECONDS * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_lock_for_update(conn: Connection, clauseelement: Any, *_args: Any) -> None:
    """Before a ``FOR UPDATE`` select, take the write lock unless the transaction holds it
    already (it wrote before: Python's sqlite3 then began it, and a writing transaction
    is the only one). The lock is held to the commit or rollback, like PostgreSQL's row
    locks; rows read under it are the latest committed ones."""
    if not isinstance(clauseelement, Select) or clauseelement._for_update_arg is None:
        return
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        # Through SQLAlchemy, so that a lock not had in time is its OperationalError like any other.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
