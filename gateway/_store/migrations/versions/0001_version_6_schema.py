"""the version 6 schema: create it, or bring a store from before Alembic (versions 1 to 6) to it

A database without tables gets the whole schema as of home-made version 6. A store made before
Alembic (it has the ``schema_version`` table, version 1 to 6) is brought to version 6 with frozen
copies of the old steps and kept in place. Either way ``schema_version`` ends at version 7: a
gateway from before Alembic reads that as "newer than I understand" and refuses the store instead
of using a schema it does not know.

Frozen: literal column types, never the live table classes of ``_tables.py``, so that this
revision does the same on every later release. Never edit it; add a revision instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The last home-made version (the steps below), and what schema_version says once Alembic keeps the store.
LAST_HOME_MADE = 6
MANAGED_BY_ALEMBIC = 7


def _utc(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    conn = op.get_bind()
    stamp = {"version": MANAGED_BY_ALEMBIC, "upgraded_at": datetime.now(UTC)}
    if sa.inspect(conn).has_table("schema_version"):
        found = conn.execute(sa.select(SCHEMA_VERSION.c.version).where(SCHEMA_VERSION.c.id == 1)).scalar()
        if found is None or not 1 <= found <= LAST_HOME_MADE:
            # The runner refuses such a store before it starts; checked here too so that no path skips it.
            raise RuntimeError(f"schema_version holds {found!r}, not a version from 1 to {LAST_HOME_MADE}")
        for version, step in ((2, _v2), (3, _v3), (4, _v4), (5, _v5), (6, _v6)):
            if version > found:
                step()
        op.execute(SCHEMA_VERSION.update().where(SCHEMA_VERSION.c.id == 1).values(**stamp))
    else:
        _create_version_6()
        op.execute(SCHEMA_VERSION.insert().values(id=1, **stamp))


def downgrade() -> None:
    raise NotImplementedError("the first revision has no way down: restore a backup of the store instead")


# The one row of the table the home-made versions kept (the SQLite DateTime type writes UTC without offset).
SCHEMA_VERSION = sa.table(
    "schema_version",
    sa.column("id", sa.Integer()),
    sa.column("version", sa.Integer()),
    sa.column("upgraded_at", sa.DateTime(timezone=True)),
)


# -- a fresh database: the schema of version 6, written out -------------------------------------------


def _create_version_6() -> None:
    op.create_table(
        "schema_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _utc("upgraded_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        _utc("at", nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_complaint_id", "audit", ["complaint_id"])
    op.create_table(
        "complaint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway_ref", sa.String(), nullable=False),
        sa.Column("local_instance", sa.String(), nullable=False),
        sa.Column("hub_instance", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("classification", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("location_json", sa.Text(), nullable=True),
        _utc("incident_at"),
        sa.Column("is_anonymous", sa.Boolean(), nullable=False),
        sa.Column("is_secret", sa.Boolean(), nullable=False),
        sa.Column("agency", sa.String(), nullable=True),
        sa.Column("local_status_code", sa.String(), nullable=True),
        sa.Column("local_status", sa.String(), nullable=True),
        sa.Column("hub_status_code", sa.String(), nullable=True),
        sa.Column("hub_status_name", sa.String(), nullable=True),
        sa.Column("hub_status", sa.String(), nullable=True),
        _utc("local_created_at", nullable=False),
        _utc("local_updated_at", nullable=False),
        _utc("first_seen_at", nullable=False),
        _utc("hub_polled_at"),
        _utc("next_poll_at"),
        _utc("hub_changed_at"),
        _utc("closed_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gateway_ref"),
    )
    op.create_index("ix_complaint_local_instance", "complaint", ["local_instance"])
    op.create_index("ix_complaint_hub_instance", "complaint", ["hub_instance"])
    op.create_index("ix_complaint_next_poll_at", "complaint", ["next_poll_at"])
    op.create_table(
        "cursor",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        _utc("value", nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("instance", "stream"),
    )
    op.create_table(
        "daemon",
        sa.Column("owner", sa.String(), nullable=False),
        _utc("started_at", nullable=False),
        _utc("heartbeat_at", nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_table(
        "job_run",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _utc("last_started_at"),
        _utc("last_success_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _utc("last_error_at"),
        sa.PrimaryKeyConstraint("instance", "job"),
    )
    op.create_table(
        "link_import",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("local_ref", sa.String(), nullable=False),
        sa.Column("hub_ref", sa.String(), nullable=False),
        _utc("imported_at", nullable=False),
        _utc("applied_at"),
        sa.PrimaryKeyConstraint("instance", "local_ref"),
    )
    op.create_table(
        "peer_health",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _utc("changed_at", nullable=False),
        sa.Column("owner", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("instance"),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("record_ref", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _utc("seen_at", nullable=False),
        _utc("resolved_at"),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance", "stream", "record_ref", "reason"),
    )
    op.create_index("ix_quarantine_instance", "quarantine", ["instance"])
    op.create_table(
        "reference_item",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=True),
        sa.Column("parent_ref", sa.String(), nullable=True),
        _utc("fetched_at", nullable=False),
        sa.PrimaryKeyConstraint("instance", "kind", "ref"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("origin_ref", sa.String(), nullable=False),
        sa.Column("gateway_ref", sa.String(), nullable=False),
        sa.Column("local_ref", sa.String(), nullable=True),
        sa.Column("hub_ref", sa.String(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("author", sa.String(), nullable=True),
        sa.Column("is_secret", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("raw_status_code", sa.String(), nullable=True),
        sa.Column("raw_status_name", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        _utc("occurred_at", nullable=False),
        _utc("recorded_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "origin", "origin_ref"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
        sa.UniqueConstraint("gateway_ref"),
    )
    op.create_index("ix_event_complaint_id", "event", ["complaint_id"])
    op.create_table(
        "link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("external_ref", sa.String(), nullable=False),
        _utc("linked_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance", "external_ref"),
        sa.UniqueConstraint("complaint_id", "instance"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
    )
    op.create_index("ix_link_complaint_id", "link", ["complaint_id"])
    op.create_table(
        "reporter",
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("nik", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("address", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("complaint_id"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
    )
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("local_ref", sa.String(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("hub_doc_id", sa.String(), nullable=True),
        sa.Column("refused_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
    )
    op.create_index("ix_attachment_complaint_id", "attachment", ["complaint_id"])
    op.create_index("ix_attachment_event_id", "attachment", ["event_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("next_attempt_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _utc("first_error_at"),
        _utc("last_error_at"),
        sa.Column("claimed_by", sa.String(), nullable=True),
        _utc("claim_expires_at"),
        sa.Column("claim_token", sa.String(), nullable=True),
        _utc("sending_at"),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        _utc("created_at", nullable=False),
        _utc("done_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
    )
    op.create_index("ix_outbox_complaint_id", "outbox", ["complaint_id"])
    op.create_index("ix_outbox_event_id", "outbox", ["event_id"])
    op.create_index("ix_outbox_due", "outbox", ["state", "target", "next_attempt_at"])


# -- a store from before Alembic: the home-made steps 2 to 6, frozen ------------------------------------
# Each skips what is there already, as the home-made steps did: on SQLite a step's DDL could be
# committed without its version stamp.


def _add_column(table: str, column: sa.Column[Any]) -> None:
    if column.name not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        op.add_column(table, column)


def _create_index(name: str, table: str, columns: list[str]) -> None:
    if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns)


def _has_table(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)


def _v2() -> None:
    """Ambiguous outcomes, refused attachments, resolved quarantine, peer health."""
    _add_column("outbox", _utc("sending_at"))
    _add_column("outbox", sa.Column("outcome_unknown", sa.Boolean(), server_default=sa.text("false")))
    _add_column("attachment", sa.Column("refused_reason", sa.Text()))
    _add_column("quarantine", _utc("resolved_at"))
    _add_column("quarantine", sa.Column("sightings", sa.Integer(), server_default=sa.text("1")))
    if not _has_table("peer_health"):  # as version 2 had it; version 6 adds its owner
        op.create_table(
            "peer_health",
            sa.Column("instance", sa.String(), nullable=False),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            _utc("changed_at", nullable=False),
            sa.PrimaryKeyConstraint("instance"),
        )


def _v3() -> None:
    """Adaptive polling (when each complaint is next read at the hub); the hub's reference data."""
    _add_column("complaint", _utc("next_poll_at"))
    _add_column("complaint", _utc("hub_changed_at"))
    _create_index("ix_complaint_next_poll_at", "complaint", ["next_poll_at"])
    if not _has_table("reference_item"):
        op.create_table(
            "reference_item",
            sa.Column("instance", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("ref", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("code", sa.String(), nullable=True),
            sa.Column("parent_ref", sa.String(), nullable=True),
            _utc("fetched_at", nullable=False),
            sa.PrimaryKeyConstraint("instance", "kind", "ref"),
        )


def _v4() -> None:
    """An index on outbox.event_id: reading one complaint at the hub joins it."""
    _create_index("ix_outbox_event_id", "outbox", ["event_id"])


def _v5() -> None:
    """Files and confidentiality of follow-ups; imported pairs of ids."""
    _add_column("attachment", sa.Column("event_id", sa.Integer()))
    _add_column("event", sa.Column("is_secret", sa.Boolean(), server_default=sa.text("false")))
    _add_column("event", sa.Column("reason", sa.Text()))
    _create_index("ix_attachment_event_id", "attachment", ["event_id"])
    if not _has_table("link_import"):
        op.create_table(
            "link_import",
            sa.Column("instance", sa.String(), nullable=False),
            sa.Column("local_ref", sa.String(), nullable=False),
            sa.Column("hub_ref", sa.String(), nullable=False),
            _utc("imported_at", nullable=False),
            _utc("applied_at"),
            sa.PrimaryKeyConstraint("instance", "local_ref"),
        )


def _v6() -> None:
    """Fenced claims; breaker owners; daemon heartbeats (a shared request budget)."""
    _add_column("outbox", sa.Column("claim_token", sa.String()))
    _add_column("peer_health", sa.Column("owner", sa.String()))
    if not _has_table("daemon"):
        op.create_table(
            "daemon",
            sa.Column("owner", sa.String(), nullable=False),
            _utc("started_at", nullable=False),
            _utc("heartbeat_at", nullable=False),
            sa.PrimaryKeyConstraint("owner"),
        )
