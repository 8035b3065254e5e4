"""The store's Alembic revisions, oldest first by ``down_revision``. Never edit one that has shipped."""
