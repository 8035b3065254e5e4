"""The store (see ``_store.py``); tables in ``_tables.py``, schema migrations (Alembic) in ``_migrations.py``."""

from gateway._store._migrations import SchemaState, head_revision
from gateway._store._store import (
    CREATE_COMPLAINT,
    DATABASE_ERRORS,
    FORWARD_COMPLAINT,
    HUB_FOLLOW_UP,
    LOCAL_FOLLOW_UP,
    LOCAL_HUB_REF,
    LOCAL_STATUS,
    STORE_REFUSALS,
    DeliveryKind,
    EventKind,
    OutboxState,
    Side,
    Store,
    as_store_error,
    refused_for_its_data,
)

__all__ = [
    "CREATE_COMPLAINT",
    "DATABASE_ERRORS",
    "FORWARD_COMPLAINT",
    "HUB_FOLLOW_UP",
    "LOCAL_FOLLOW_UP",
    "LOCAL_HUB_REF",
    "LOCAL_STATUS",
    "STORE_REFUSALS",
    "DeliveryKind",
    "EventKind",
    "OutboxState",
    "SchemaState",
    "Side",
    "Store",
    "as_store_error",
    "head_revision",
    "refused_for_its_data",
]
