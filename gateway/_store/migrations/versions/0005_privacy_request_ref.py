"""erasure requests indexed by local app and id (privacy_request), for the intake's lookup

The intake looks up each batch's unread local ids there, so that a complaint asked to be erased
before it was read is never taken in.

Frozen: literal names, never the live table classes of ``_tables.py``. Never edit it; add a
revision instead.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_privacy_request_ref", "privacy_request", ["instance", "local_ref"])


def downgrade() -> None:
    op.drop_index("ix_privacy_request_ref", table_name="privacy_request")
