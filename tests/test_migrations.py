"""A live database of an older schema is upgraded in place, its data kept."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from gateway._store import SCHEMA_VERSION, Store


def _make_v1(url: str) -> None:
    """Turn a fresh database into what schema version 1 looked like."""
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE peer_health"))
        conn.execute(text("DROP TABLE reference_item"))
        conn.execute(text("DROP INDEX ix_complaint_next_poll_at"))
        conn.execute(text("DROP INDEX ix_outbox_event_id"))
        for table, column in (("outbox", "sending_at"), ("outbox", "outcome_unknown"),
                              ("attachment", "refused_reason"), ("quarantine", "resolved_at"),
                              ("quarantine", "sightings"), ("complaint", "next_poll_at"),
                              ("complaint", "hub_changed_at")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE schema_version SET version = 1"))
        conn.execute(text("INSERT INTO cursor (instance, stream, value, updated_at) "
                          "VALUES ('lh', 'complaints', '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    engine.dispose()


def test_a_version_1_store_is_upgraded_in_place(store_url: str):
    _make_v1(store_url)
    store = Store(store_url)
    try:
        assert store.upgraded_from == 1
        columns = {c["name"] for c in inspect(store.engine).get_columns("outbox")}
        assert {"sending_at", "outcome_unknown"} <= columns
        assert inspect(store.engine).has_table("peer_health") and inspect(store.engine).has_table("reference_item")
        assert {"next_poll_at", "hub_changed_at"} <= {c["name"] for c in inspect(store.engine).get_columns("complaint")}
        assert any(i["column_names"] == ["next_poll_at"] for i in inspect(store.engine).get_indexes("complaint"))
        assert any(i["column_names"] == ["event_id"] for i in inspect(store.engine).get_indexes("outbox"))
        assert store.cursor("lh", "complaints") is not None  # data kept
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    finally:
        store.close()
    assert Store(store_url).upgraded_from == SCHEMA_VERSION  # nothing more to do
