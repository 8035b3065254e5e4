"""Schema versions. A fresh database gets the current schema and the latest
version; a live one is upgraded step by step, so users never have to delete it.

To change the schema: change the tables, then append a step here that brings a
database of the previous version to the new one (``ALTER TABLE ...``), and a
test that upgrades a copy of the previous version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Column, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from gateway._errors import StoreError
from gateway._store._tables import (
    AttachmentRow,
    ComplaintRow,
    DaemonRow,
    EventRow,
    LinkImportRow,
    OutboxRow,
    PeerHealthRow,
    QuarantineRow,
    ReferenceRow,
    SchemaVersion,
)


def add_column(conn: Connection, table: str, column: Column) -> None:
    """``ALTER TABLE ... ADD COLUMN`` in the dialect at hand, unless it is there already."""
    if column.name in {c["name"] for c in inspect(conn).get_columns(table)}:
        return
    ddl = f"ALTER TABLE {table} ADD COLUMN {column.name} {column.type.compile(dialect=conn.dialect)}"
    if column.server_default is not None:
        ddl += f" DEFAULT {column.server_default.arg}"
    conn.execute(text(ddl))


def _v2(conn: Connection) -> None:
    """Ambiguous outcomes, refused attachments, resolved quarantine, peer health."""
    add_column(conn, "outbox", Column("sending_at", OutboxRow.__table__.c.sending_at.type))
    add_column(conn, "outbox", Column("outcome_unknown", OutboxRow.__table__.c.outcome_unknown.type,
                                      server_default=text("false")))
    add_column(conn, "attachment", Column("refused_reason", AttachmentRow.__table__.c.refused_reason.type))
    add_column(conn, "quarantine", Column("resolved_at", QuarantineRow.__table__.c.resolved_at.type))
    add_column(conn, "quarantine", Column("sightings", QuarantineRow.__table__.c.sightings.type,
                                          server_default=text("1")))
    PeerHealthRow.__table__.create(conn, checkfirst=True)

def _v3(conn: Connection) -> None:
    """Adaptive polling (when each complaint is next read at the hub); the hub's reference data."""
    table = ComplaintRow.__table__
    add_column(conn, "complaint", Column("next_poll_at", table.c.next_poll_at.type))
    add_column(conn, "complaint", Column("hub_changed_at", table.c.hub_changed_at.type))
    for index in table.indexes:
        if "next_poll_at" in index.columns:
            index.create(conn, checkfirst=True)
    ReferenceRow.__table__.create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    """An index on outbox.event_id: reading one complaint at the hub joins it (15 ms a read
    without it at 100,000 complaints, 1 ms with it)."""
    for index in OutboxRow.__table__.indexes:
        if list(index.columns.keys()) == ["event_id"]:
            index.create(conn, checkfirst=True)


def _v5(conn: Connection) -> None:
    """Files and confidentiality of follow-ups; imported pairs of ids."""
    add_column(conn, "attachment", Column("event_id", AttachmentRow.__table__.c.event_id.type))
    add_column(conn, "event", Column("is_secret", EventRow.__table__.c.is_secret.type, server_default=text("false")))
    add_column(conn, "event", Column("reason", EventRow.__table__.c.reason.type))
    for index in AttachmentRow.__table__.indexes:
        if list(index.columns.keys()) == ["event_id"]:
            index.create(conn, checkfirst=True)
    LinkImportRow.__table__.create(conn, checkfirst=True)


def _v6(conn: Connection) -> None:
    """Fenced claims; breaker owners; daemon heartbeats (a shared request budget)."""
    add_column(conn, "outbox", Column("claim_token", OutboxRow.__table__.c.claim_token.type))
    add_column(conn, "peer_health", Column("owner", PeerHealthRow.__table__.c.owner.type))
    DaemonRow.__table__.create(conn, checkfirst=True)


# (version, what it changes, how). Version 1 is the first schema, created whole.
Step = tuple[int, str, Callable[[Connection], None]]
STEPS: list[Step] = [
    (1, "initial schema", lambda conn: SQLModel.metadata.create_all(conn)),
    (2, "ambiguous outcomes, refused attachments, peer health", _v2),
    (3, "adaptive polling, reference data", _v3),
    (4, "index of outbox by event", _v4),
    (5, "follow-up files and confidentiality, imported links", _v5),
    (6, "fenced claims, shared breakers and budgets", _v6),
]
LATEST = STEPS[-1][0]


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("schema_version"):
        return None
    row = conn.execute(select(SchemaVersion.version)).first()
    return row[0] if row else None


def migrate(engine: Engine) -> int:
    """Bring the database to :data:`LATEST`; return the version it was at (0 if new)."""
    with engine.begin() as conn:
        found = current_version(conn)
        if found is None:
            SQLModel.metadata.create_all(conn)
            _stamp(conn, LATEST, insert=True)
            return 0
        if found > LATEST:
            raise StoreError(f"the store has schema version {found}, newer than this gateway "
                             f"understands ({LATEST}); upgrade lapor-gateway")
        for version, _description, step in STEPS:
            if version > found:
                step(conn)
                _stamp(conn, version, insert=False)
        return found


def _stamp(conn: Connection, version: int, *, insert: bool) -> None:
    values = {"version": version, "upgraded_at": datetime.now(timezone.utc)}
    table = SchemaVersion.__table__
    if insert:
        conn.execute(table.insert().values(id=1, **values))
    else:
        conn.execute(table.update().where(table.c.id == 1).values(**values))
