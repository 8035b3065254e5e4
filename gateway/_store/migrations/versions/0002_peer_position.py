"""a peer's own cursor per stream (peer_position), kept for the adapter beside the time cursor

Frozen: literal column types, never the live table classes of ``_tables.py``. Never edit it; add a
revision instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_position",
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance", "stream"),
    )


def downgrade() -> None:
    op.drop_table("peer_position")
