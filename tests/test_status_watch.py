"""`gateway status --watch`: the tables read again every interval from a real store that changes
between refreshes, what moved shown, a store that cannot be read for a while, and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import write_config
from rich.console import Console
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gateway import Classification, Complaint, Location, RawStatus, Status
from gateway._config import GatewayConfig, load_config
from gateway._store import Store, head_revision
from gateway.cli._commands import app
from gateway.cli._watch import watch_status

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
NOW = datetime(2026, 11, 30, 2, 40, 12, tzinfo=UTC)


def _config(tmp_path: Path, url: str) -> GatewayConfig:
    return load_config(write_config(tmp_path / "config", url, {}), check_secrets=False)


def _complaint(ref: str) -> Complaint:
    return Complaint(
        ref=ref,
        title="Lampu jalan mati",
        body="Sudah seminggu gelap.",
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
        status=RawStatus("belum terverifikasi", "Belum Terverifikasi"),
        category="Penerangan Jalan",
        classification=Classification.COMPLAINT,
        location=Location(description="Jl. Pemuda"),
        channel="web",
        is_anonymous=True,
    )


class Sleeps:
    """The watch's sleep: records the waits and does what the test says between refreshes."""

    def __init__(self, *between):
        self.between = list(between)
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.between:
            self.between.pop(0)()


def test_a_piped_watch_prints_a_plain_snapshot_per_refresh_with_what_moved(tmp_path: Path, store_url: str):
    config = _config(tmp_path, store_url)
    store, writer = Store(store_url), Store(store_url)
    console = Console(file=io.StringIO(), width=120)  # not a terminal: plain snapshots
    sleeps = Sleeps(
        lambda: [writer.take_in_complaint(LOCAL, HUB, _complaint(f"LH-{n}"), Status.UNVERIFIED) for n in (1, 2, 3)],
        lambda: None,
    )
    try:
        watch_status(config, store, console=console, interval=5, refreshes=3, sleep=sleeps, clock=lambda: NOW)
    finally:
        store.close()
        writer.close()
    text = console.file.getvalue()
    assert "\x1b" not in text
    assert sleeps.waits == [5, 5]
    snapshots = text.split("store: ")[1:]
    assert len(snapshots) == 3
    # The header: the store, the time in UTC and in the instances' zone (WIB), how to stop.
    assert "2026-11-30 02:40:12 UTC · 09:40:12 WIB · every 5 s · Ctrl-C to stop" in snapshots[0]
    first, second, third = snapshots
    assert _row(first, "complaints seen") == ["0"]
    assert _row(second, "complaints seen") == ["3", "(+3)"]  # moved since the previous refresh
    hubs = second.split("Hubs")[1]
    assert _row(hubs, "owed") == ["3", "(+3)"] and _row(hubs, "reads due now (oldest due since, UTC)") == ["0"]
    assert _row(third, "complaints seen") == ["3"]  # nothing moved since


def _row(snapshot: str, label: str) -> list[str]:
    """The cells of the first table row whose label is ``label``."""
    for line in snapshot.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == label:
            return cells[1].split()
    raise AssertionError(f"no row {label!r} in {snapshot}")


def test_a_store_that_cannot_be_read_is_one_line_and_the_watch_goes_on(tmp_path: Path, store_url: str):
    config = _config(tmp_path, store_url)
    store = Store(store_url)
    store.take_in_complaint(LOCAL, HUB, _complaint("LH-1"), Status.UNVERIFIED)
    break_it, mend_it = _outage(store)
    console = Console(file=io.StringIO(), width=120)
    try:
        watch_status(
            config, store, console=console, interval=2, refreshes=3, sleep=Sleeps(break_it, mend_it), clock=lambda: NOW
        )
    finally:
        store.close()
    first, broken, mended = console.file.getvalue().split("store: ")[1:]
    assert _row(first, "complaints seen") == ["1"]
    unreachable = [line for line in broken.splitlines() if "unreachable" in line]
    error = "DatabaseError" if store_url.startswith("sqlite") else "OperationalError"
    assert unreachable == [f"store unreachable (sqlalchemy.{error}); trying again every 2 s"]
    assert "Traceback" not in broken and "terminat" not in broken and "not a database" not in broken  # no driver text
    assert "last read at 02:40:12 UTC:" in broken and _row(broken, "complaints seen") == ["1"]
    assert "unreachable" not in mended and _row(mended, "complaints seen") == ["1"]


def _outage(store: Store):
    """Two steps: the store cannot be read (PostgreSQL: its server ends the watch's connection, as in
    a restart; SQLite: the file is not a database when it is opened again), then it can again."""
    if store.url.startswith("sqlite"):
        path = Path(store.engine.url.database)
        kept: list[bytes] = []

        def break_sqlite() -> None:
            store.engine.dispose()  # the connections closed (the WAL written back), as after a restart
            kept.append(path.read_bytes())
            path.write_bytes(b"not a database, whatever it was" * 200)

        return break_sqlite, lambda: path.write_bytes(kept[0])

    def break_postgres() -> None:
        with store.engine.connect() as conn:  # the pool's connection: its server process
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = create_engine(store.url)
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        admin.dispose()

    return break_postgres, lambda: None  # the next refresh connects afresh


def test_ctrl_c_during_the_wait_ends_the_watch_cleanly(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = _config(tmp_path, url)
    store = Store(url)

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    console = Console(file=io.StringIO(), width=120)
    try:
        watch_status(config, store, console=console, refreshes=None, sleep=Sleeps(lambda: None, ctrl_c))
    finally:
        store.close()
    assert console.file.getvalue().count("Ctrl-C to stop") == 2  # two refreshes, then out without a traceback


def test_on_a_terminal_the_view_is_redrawn_in_place_with_what_moved_highlighted(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = _config(tmp_path, url)
    store, writer = Store(url), Store(url)
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    sleeps = Sleeps(lambda: writer.take_in_complaint(LOCAL, HUB, _complaint("LH-1"), Status.UNVERIFIED))
    try:
        watch_status(config, store, console=console, refreshes=2, sleep=sleeps, clock=lambda: NOW)
    finally:
        store.close()
        writer.close()
    text = console.file.getvalue()
    assert "\x1b[?25l" in text  # Live hides the cursor while it draws ...
    assert "\x1b[2K" in text  # ... and erases the previous view's lines to draw the next in place
    assert "\x1b[1;33m1 (+1)" in text  # the count that moved, bold yellow


def test_the_command_watches_pipes_json_lines_and_refuses_what_makes_no_sense(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    path = write_config(tmp_path / "config", url, {})
    monkeypatch.setenv("GATEWAY_CONFIG", str(path))
    runner = CliRunner()

    plain = runner.invoke(app, ["status", "--watch", "--interval", "0.5", "--refreshes", "2"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.count("Ctrl-C to stop") == 2 and "\x1b" not in plain.stdout

    lines = runner.invoke(app, ["status", "--watch", "--json", "--interval", "0.5", "--refreshes", "3"])
    assert lines.exit_code == 0, lines.output
    reports = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(reports) == 3
    assert {r["name"] for r in reports[0]["instances"]} >= {LOCAL, HUB} and "at" in reports[0]

    alone = runner.invoke(app, ["status", "--interval", "5"])
    assert alone.exit_code == 2 and "--interval needs --watch" in alone.stderr
    for bad in ("0", "1e-9", "0.49", "1e300", "86401", "nan"):  # a busy loop; a sleep that overflowed
        refused = runner.invoke(app, ["status", "--watch", "--interval", bad])
        assert refused.exit_code == 2 and "from 0.5 to 86400 seconds" in refused.stderr, refused.output


def test_ctrl_c_ends_a_running_watch_with_status_0(tmp_path: Path):
    """The real signal, in a real process: what an operator's Ctrl-C does."""
    path = write_config(tmp_path / "config", f"sqlite:///{tmp_path / 'gateway.db'}", {})
    env = {**os.environ, "GATEWAY_CONFIG": str(path)}
    watch = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "status", "--watch", "--interval", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell's background job ignores SIGINT, and a child inherits that: take the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert watch.stdout is not None
        for line in watch.stdout:  # the first snapshot printed: the watch is running
            if "Ctrl-C to stop" in line:
                break
        watch.send_signal(signal.SIGINT)
        _, stderr = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == 0
    assert stderr.strip() in ("", "store: schema created at revision " + head_revision())
    assert "Traceback" not in stderr and "Aborted" not in stderr


def test_no_store_password_in_status_or_on_the_dashboard(tmp_path: Path, store_url: str, monkeypatch):
    """libpq takes the password in the query string too (``password``, ``sslpassword``): masked as
    the one after the user name is, in ``status --json``, the watch and the dashboard's HTML."""
    from dashboard_kit import served

    from gateway._store._report import _safe_url
    from gateway._web._dashboard import DashboardContext

    assert _safe_url("postgresql+psycopg://u:pw1@h/db?password=pw2&sslpassword=pw3&passfile=/etc/pgpass") == (
        "postgresql+psycopg://u:***@h/db?passfile=%2Fetc%2Fpgpass&password=***&sslpassword=***"
    )
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite takes no password")
    url = f"{store_url}&password=s3cret-one&sslpassword=s3cret-two"
    path = write_config(tmp_path / "config", url, {})
    monkeypatch.setenv("GATEWAY_CONFIG", str(path))
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert "password=***" in json.loads(status.stdout)["store"]
    watched = runner.invoke(app, ["status", "--watch", "--interval", "0.5", "--refreshes", "1"])
    assert watched.exit_code == 0, watched.output
    config = load_config(path, check_secrets=False)
    store = Store(url)
    try:
        with served(DashboardContext(store=store, config=config)) as base:
            page = httpx.get(f"{base}/dashboard?lang=en").text
    finally:
        store.close()
    assert "password=***" in page
    for shown in (status.output, watched.output, page):
        assert "s3cret" not in shown
