"""each complaint's working-day deadlines by tier, met or missed (complaint_deadline)

Frozen: literal column types, never the live table classes of ``_tables.py``. Never edit it; add a
revision instead. The rows are computed by the engine (on its first intake after the upgrade), not
here: the rules live in the configuration, which a migration does not read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaint_deadline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("rules", sa.String(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "tier"),
    )
    op.create_index("ix_complaint_deadline_open", "complaint_deadline", ["met_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_complaint_deadline_open", table_name="complaint_deadline")
    op.drop_table("complaint_deadline")
