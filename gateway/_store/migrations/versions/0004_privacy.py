"""complaints' texts purged after retention or erased on request; data subjects' requests (privacy_request)

Frozen: literal column types, never the live table classes of ``_tables.py``. Never edit it; add a
revision instead. Both complaint columns are nullable and empty: no complaint is purged or erased
before the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("complaint", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("complaint", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("local_ref", sa.String(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("what_remains", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("privacy_request")
    # SQLite drops a column only by copying the table (batch mode); PostgreSQL drops it in place.
    with op.batch_alter_table("complaint") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("purged_at")
