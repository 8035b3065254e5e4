"""Schema migrations with Alembic, on both backends: a fresh store is created at head; a store of a
home-made version (from before Alembic) is adopted in place, its data kept; a store of a newer
gateway is refused; two processes opening a fresh database at once create it once; and
``gateway db upgrade|current|history``."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine.url import make_url
from sqlmodel import SQLModel
from test_store import HUB, LOCAL, make_complaint
from typer.testing import CliRunner

from gateway import StoreError
from gateway._model import Status
from gateway._store import Store, head_revision
from gateway._store._migrations import ADVISORY_LOCK_KEY
from gateway.cli import app

CURSOR_AT = datetime(2026, 11, 1, tzinfo=UTC)

# Tables the Alembic revisions after 0001 added, newest first (taken off for a store of 0001 or older).
ADDED_BY_REVISIONS = ["privacy_request", "complaint_deadline", "peer_position"]
# Columns revision 0004 added to complaint (taken off for a store of 0003 or older).
ADDED_BY_0004 = ("purged_at", "erased_at")


def undo_0004(op: Operations) -> None:
    """A store of today's schema turned into one of revision 0003 (its data kept)."""
    op.drop_table("privacy_request")
    # SQLite drops a column only by copying the table (batch mode).
    with op.batch_alter_table("complaint") as batch:
        for column in ADDED_BY_0004:
            batch.drop_column(column)


# What each home-made step added, undone newest first to turn a store of today's schema into one of
# an older version: (tables, indexes, columns) as (name, (table, name), (table, column)).
ADDED_BY = {
    6: (["daemon"], [], [("outbox", "claim_token"), ("peer_health", "owner")]),
    5: (
        ["link_import"],
        [("attachment", "ix_attachment_event_id")],
        [("attachment", "event_id"), ("event", "is_secret"), ("event", "reason")],
    ),
    4: ([], [("outbox", "ix_outbox_event_id")], []),
    3: (
        ["reference_item"],
        [("complaint", "ix_complaint_next_poll_at")],
        [("complaint", "next_poll_at"), ("complaint", "hub_changed_at")],
    ),
    2: (
        ["peer_health"],
        [],
        [
            ("outbox", "sending_at"),
            ("outbox", "outcome_unknown"),
            ("attachment", "refused_reason"),
            ("quarantine", "resolved_at"),
            ("quarantine", "sightings"),
        ],
    ),
}


def make_home_made_store(url: str, version: int) -> int:
    """A store as a gateway from before Alembic left it at ``version`` (1 to 6), holding a complaint
    (with its outbox row) and a cursor: today's schema with the later steps taken off again, no
    ``alembic_version`` and ``schema_version`` at ``version``. Returns the complaint's id."""
    store = Store(url)
    complaint_id, _new = store.take_in_complaint(LOCAL, HUB, make_complaint(), Status.UNVERIFIED)
    store.set_cursor(LOCAL, "complaints", CURSOR_AT)
    store.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.drop_table("alembic_version")
        undo_0004(op)
        for table in ADDED_BY_REVISIONS[1:]:
            op.drop_table(table)
        for step in range(6, version, -1):
            tables, indexes, columns = ADDED_BY[step]
            for table in tables:
                op.drop_table(table)
            for table, index in indexes:
                op.drop_index(index, table_name=table)
            for table, column in columns:
                # SQLite drops a column that has a foreign key only by copying the table (batch mode).
                with op.batch_alter_table(table) as batch:
                    batch.drop_column(column)
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": version})
    engine.dispose()
    return complaint_id


def store_with_a_complaint(url: str) -> int:
    """A store at head holding one complaint (closed again); returns its id."""
    store = Store(url)
    complaint_id, _new = store.take_in_complaint(LOCAL, HUB, make_complaint(), Status.UNVERIFIED)
    store.close()
    return complaint_id


def table_rows(store: Store, sql: str) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


# -- a fresh store -----------------------------------------------------------------------------------


def test_a_new_store_is_created_at_head_and_reopening_upgrades_nothing(store_url: str):
    first = Store(store_url)
    first.close()
    second = Store(store_url)
    try:
        assert first.upgraded_from.is_empty
        assert second.upgraded_from.revision == head_revision() == "0005"
        assert table_rows(second, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
        # A gateway from before Alembic reads 7 as "newer than I understand" and refuses the store.
        assert table_rows(second, "SELECT id, version FROM schema_version") == [(1, 7)]
    finally:
        second.close()


def test_a_store_at_revision_0001_is_upgraded_with_its_data(store_url: str):
    store = Store(store_url)
    store.set_cursor(LOCAL, "complaints", CURSOR_AT)
    store.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        undo_0004(op)
        for table in ADDED_BY_REVISIONS[1:]:
            op.drop_table(table)
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()

    store = Store(store_url)
    try:
        assert store.upgraded_from.revision == "0001"
        assert table_rows(store, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
        assert store.cursor(LOCAL, "complaints") == CURSOR_AT
        assert table_rows(store, "SELECT count(*) FROM peer_position") == [(0,)]
    finally:
        store.close()


def test_a_store_at_revision_0002_gets_the_deadline_table_and_keeps_its_complaints(store_url: str):
    """0003 adds complaint_deadline, empty: the engine computes the rows (the rules are config)."""
    complaint_id = store_with_a_complaint(store_url)
    engine = create_engine(store_url)
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        undo_0004(op)
        op.drop_table("complaint_deadline")
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    engine.dispose()

    store = Store(store_url)
    try:
        assert store.upgraded_from.revision == "0002"
        assert table_rows(store, "SELECT id FROM complaint") == [(complaint_id,)]
        assert table_rows(store, "SELECT count(*) FROM complaint_deadline") == [(0,)]
        assert "ix_complaint_deadline_open" in {
            i["name"] for i in inspect(store.engine).get_indexes("complaint_deadline")
        }
    finally:
        store.close()


def test_a_store_at_revision_0003_gets_the_privacy_columns_and_table_with_its_complaints(store_url: str):
    """0004 adds complaint.purged_at and erased_at (empty: nothing was purged or erased before) and
    privacy_request; the complaints stay, and the new store can erase one of them."""
    from gateway._store._privacy import erase_complaint

    complaint_id = store_with_a_complaint(store_url)
    engine = create_engine(store_url)
    with engine.begin() as conn:
        undo_0004(Operations(MigrationContext.configure(conn)))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    engine.dispose()

    store = Store(store_url)
    try:
        assert store.upgraded_from.revision == "0003"
        assert table_rows(store, "SELECT id, purged_at, erased_at FROM complaint") == [(complaint_id, None, None)]
        assert table_rows(store, "SELECT count(*) FROM privacy_request") == [(0,)]
        assert erase_complaint(store, LOCAL, make_complaint().ref).complaint_id == complaint_id
    finally:
        store.close()


def test_revision_0004_downgrades_to_0003_keeping_the_complaints(store_url: str):
    """The downgrade of 0004 takes its columns and table off again (batch mode on SQLite)."""
    from alembic.runtime.environment import EnvironmentContext

    from gateway._store._migrations import alembic_config, script_directory

    complaint_id = store_with_a_complaint(store_url)
    engine = create_engine(store_url)
    script = script_directory()
    with engine.begin() as conn:

        def steps(revision, _context):  # type: ignore[no-untyped-def]
            return script._downgrade_revs("0003", revision)

        with EnvironmentContext(alembic_config(), script, fn=steps, destination_rev="0003") as env:
            env.configure(connection=conn)
            env.run_migrations()
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("complaint")}
        assert not columns & set(ADDED_BY_0004)
        assert "privacy_request" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert list(conn.execute(text("SELECT id FROM complaint"))) == [(complaint_id,)]
    finally:
        engine.dispose()


def test_the_head_revision_creates_exactly_the_tables_of_the_models(store_url: str):
    """The frozen revisions and the live models agree: a model changed without a revision fails here."""
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        store.close()
    assert differences == []


def test_a_store_at_revision_0004_gets_the_index_of_privacy_requests_and_keeps_them(store_url: str):
    """0005 indexes privacy_request by app and local id: the intake looks up each batch's there."""
    from gateway._store._privacy import erase_complaint, privacy_requests

    store = Store(store_url)
    erase_complaint(store, LOCAL, "LH-404", kind="withdraw")
    store.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        Operations(MigrationContext.configure(conn)).drop_index("ix_privacy_request_ref", table_name="privacy_request")
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    engine.dispose()

    store = Store(store_url)
    try:
        assert store.upgraded_from.revision == "0004"
        assert "ix_privacy_request_ref" in {i["name"] for i in inspect(store.engine).get_indexes("privacy_request")}
        assert [r["local_ref"] for r in privacy_requests(store)] == ["LH-404"]
        assert store.take_in_complaint(LOCAL, HUB, make_complaint(ref="LH-404"), Status.UNVERIFIED) is None
    finally:
        store.close()


# -- stores from before Alembic ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6])
def test_a_home_made_store_is_adopted_in_place_with_its_data(store_url: str, version: int):
    complaint_id = make_home_made_store(store_url, version)

    store = Store(store_url)
    try:
        assert (store.upgraded_from.revision, store.upgraded_from.home_made_version) == (None, version)
        assert table_rows(store, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
        assert table_rows(store, "SELECT id, version FROM schema_version") == [(1, 7)]
        schema = inspect(store.engine)
        for tables, indexes, columns in ADDED_BY.values():
            assert all(schema.has_table(table) for table in tables)
            for table, index in indexes:
                assert index in {i["name"] for i in schema.get_indexes(table)}
            for table, column in columns:
                assert column in {c["name"] for c in schema.get_columns(table)}
        # The data kept, and the store usable with every column of today's models.
        assert store.complaint_id_for(LOCAL, "LH-1") == complaint_id
        assert store.cursor(LOCAL, "complaints") == CURSOR_AT
        assert len(table_rows(store, "SELECT id FROM outbox")) == 1
        second, new = store.take_in_complaint(LOCAL, HUB, make_complaint("LH-2"), Status.UNVERIFIED)
        assert new and second != complaint_id
        store.set_peer_health(HUB, "open", 3, "down", owner="daemon-a")
    finally:
        store.close()
    again = Store(store_url)
    again.close()
    assert again.upgraded_from.revision == head_revision()  # nothing more to do


def test_a_version_4_store_passes_through_alembic_with_the_cli(store_url: str, repo_config_dir):
    """`gateway db current` names what is due, `upgrade` does it and says from what to what."""
    make_home_made_store(store_url, 4)

    current = db(repo_config_dir, store_url, "current")
    assert current.exit_code == 1, current.output
    assert "version 4 (from before Alembic); the head is revision 0005" in flat(current.output)

    upgrade = db(repo_config_dir, store_url, "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    assert "upgraded the store from version 4 (from before Alembic) to revision 0005 (head)" in flat(upgrade.output)

    current = db(repo_config_dir, store_url, "current")
    assert current.exit_code == 0 and "revision 0005 (head)" in flat(current.output)
    again = db(repo_config_dir, store_url, "upgrade")
    assert again.exit_code == 0 and "already: nothing to do" in flat(again.output)


# -- a store of a newer gateway --------------------------------------------------------------------------


def test_a_store_of_a_newer_revision_is_refused_clearly(store_url: str, repo_config_dir):
    Store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()

    with pytest.raises(StoreError) as caught:
        Store(store_url)
    assert "made by a newer gateway: revision f00d" in str(caught.value)
    assert "upgrade the gateway" in str(caught.value)

    for command in ("current", "upgrade"):
        result = db(repo_config_dir, store_url, command)
        assert result.exit_code == 2, result.output
        assert "made by a newer gateway: revision f00d" in flat(result.output)
        assert "Traceback" not in result.output


def test_the_head_revision_the_code_knows_is_the_newest_script():
    """HEAD_REVISION lets a store at head open without Alembic; a new revision script must move it."""
    from gateway._store._migrations import HEAD_REVISION, script_directory

    assert script_directory().get_current_head() == HEAD_REVISION


def test_opening_a_store_at_head_does_not_import_alembic(store_url: str):
    """Alembic is a quarter of the CLI's start-up: a process that finds the store at head (nearly
    every one) never imports it."""
    Store(store_url).close()
    probe = (
        "import sys\n"
        "from gateway._store import Store\n"
        "Store(sys.argv[1]).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    opened = subprocess.run([sys.executable, "-c", probe, store_url], capture_output=True, text=True, timeout=120)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "[]"


def test_a_store_with_two_revisions_recorded_is_refused_clearly(store_url: str):
    Store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0004')"))
    engine.dispose()

    with pytest.raises(StoreError, match="alembic_version table holds 2 revisions"):
        Store(store_url)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("UPDATE schema_version SET version = 8", "made by a newer gateway: schema_version 8"),
        ("DELETE FROM schema_version", "a schema_version table without its row"),
    ],
)
def test_a_home_made_store_of_no_known_version_is_refused(store_url: str, change: str, refusal: str):
    make_home_made_store(store_url, 6)
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text(change))
    engine.dispose()

    with pytest.raises(StoreError, match=refusal):
        Store(store_url)


# -- two processes at once --------------------------------------------------------------------------------

OPEN_STORE = """
import sys
from gateway._store import Store
print("ready", flush=True)
sys.stdin.readline()
store = Store(sys.argv[1])
print(store.upgraded_from.describe(), flush=True)
store.close()
"""


def test_two_processes_opening_a_fresh_store_at_once_create_it_once(store_url: str):
    """Both processes find the store empty and go for the upgrade lock together (the test holds it
    until both wait on PostgreSQL); the second to get it finds the schema made and does nothing."""
    holder = _LockHolder(store_url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_STORE, store_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        holder.wait_for_both()
        holder.release()
        results = [process.communicate(timeout=120) for process in processes]
    finally:
        holder.release()
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (stdout, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr
        assert stdout.strip() == "empty (no schema yet)"  # both found it empty: the lock kept them apart
    store = Store(store_url)
    try:
        assert store.upgraded_from.revision == head_revision()
        assert table_rows(store, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
        assert table_rows(store, "SELECT id, version FROM schema_version") == [(1, 7)]
    finally:
        store.close()


class _LockHolder:
    """The upgrade lock taken by the test itself, so that both processes are made to wait on it."""

    def __init__(self, url: str):
        self.url = url
        self.released = False
        if make_url(url).get_backend_name() == "postgresql":
            self.engine = create_engine(url)
            self.conn = self.engine.connect()
            self.conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            self.conn.commit()
        else:
            import sqlite3

            self.engine = None
            self.conn = sqlite3.connect(make_url(url).database, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("BEGIN IMMEDIATE")

    def wait_for_both(self) -> None:
        if self.engine is None:  # SQLite shows no waiters; the processes' busy timeout is 10 s
            time.sleep(1.0)
            return
        deadline = time.monotonic() + 60
        query = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        while self.conn.execute(query).scalar() < 2:
            self.conn.commit()
            assert time.monotonic() < deadline, "the two processes never waited on the upgrade lock"
            time.sleep(0.05)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.engine is None:
            self.conn.execute("COMMIT")
            self.conn.close()
            return
        self.conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        self.conn.commit()
        self.conn.close()
        self.engine.dispose()


# -- gateway db --------------------------------------------------------------------------------------------


def db(config_dir, store_url: str, command: str):
    return CliRunner().invoke(app, ["--config", str(config_dir / "gateway.yaml"), "--store", store_url, "db", command])


def flat(output: str) -> str:
    """The output with its line breaks (rich wraps at the terminal's width) as single spaces."""
    return " ".join(output.split())


def test_db_history_lists_the_revisions_with_what_they_change(repo_config_dir):
    result = CliRunner().invoke(app, ["db", "history"])
    assert result.exit_code == 0, result.output
    assert flat(result.output).startswith(
        "0001 the version 6 schema: create it, or bring a store from before Alembic (versions 1 to 6) to it "
        "0002 a peer's own cursor per stream (peer_position), kept for the adapter beside the time cursor "
        "0003 each complaint's working-day deadlines by tier, met or missed (complaint_deadline) "
        "0004 complaints' texts purged after retention or erased on request; data subjects' requests "
        "(privacy_request) "
        "0005 (head) erasure requests indexed by local app and id (privacy_request), for the intake's lookup"
    )


def test_db_current_of_a_fresh_store_says_an_upgrade_is_due(store_url: str, repo_config_dir):
    result = db(repo_config_dir, store_url, "current")
    assert result.exit_code == 1, result.output
    assert "empty (no schema yet); the head is revision 0005: run `gateway db upgrade`" in flat(result.output)
    upgrade = db(repo_config_dir, store_url, "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    assert "upgraded the store from empty (no schema yet) to revision 0005 (head)" in flat(upgrade.output)
