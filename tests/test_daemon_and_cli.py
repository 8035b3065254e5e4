"""The daemon with the real APScheduler, and the `gateway` command as an operator
runs it: a real process, real HTTP to the simulators, a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway._daemon import Daemon
from gateway._engine import Engine
from gateway._store import Store
from gateway._store._report import status_report
from gateway.cli import app

GATEWAY = [sys.executable, "-m", "gateway.cli"]
FAST = "schedule:\n  intake_seconds: 0.2\n  hub_poll_seconds: 0.3\n  deliver_seconds: 0.2\n"


def _fast(config) -> None:
    for inst in config.instances.values():
        for key in ("intake_seconds", "hub_poll_seconds", "deliver_seconds"):
            setattr(inst.spec.schedule, key, None)  # the instance files' own overrides give way to FAST


async def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.anyio
@pytest.mark.e2e
async def test_daemon_schedules_every_job_and_stops_cleanly(world, tmp_path: Path):
    for _ in range(3):
        world.step()
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path, url, schedule=FAST)
    _fast(config)
    store = Store(url)
    expected = len(world.local.complaints())
    roles = {n: i.role for n, i in config.instances.items() if i.spec.enabled}  # disabled ones run no job

    def created() -> int:
        return next(r for r in status_report(store, roles)["instances"] if r["role"] == "local_app")[
            "complaints_created_at_hub"
        ]

    stop = asyncio.Event()
    async with Engine(config, store) as engine:
        daemon = Daemon(engine, config)
        task = asyncio.create_task(daemon.run_until_signalled(stop))
        await _until(lambda: created() == expected)
        # Hub officers act while the daemon runs; their work reaches the local app.
        world.step(hours=3)
        await _until(lambda: world.local.counts()["status_changes_from_gateway"] > 0)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    report = status_report(store, roles)
    store.close()
    assert daemon.scheduler is None
    # Each hub complaint carries its gateway reference as a hashtag (#lg_<hex>) in tags_raw.
    tags = [tag for c in world.hub.complaints() for tag in (c["tags_raw"] or "").split() if tag.startswith("#lg_")]
    assert len(tags) == len(set(tags)) == len(world.hub.complaints()) >= expected  # citizens kept filing; none twice
    for row in report["instances"]:
        assert row["jobs"], row["name"]
        for job, info in row["jobs"].items():
            assert info["runs"] >= 1 and info["failures"] == 0, (row["name"], job, info)
            assert info["last_success"] is not None


def _env(world, config_path: Path) -> dict[str, str]:
    return {**os.environ, **world.environ, "GATEWAY_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}


@pytest.mark.e2e
def test_sync_once_then_status_json_reports_what_flowed(world, tmp_path: Path):
    world.step()
    config_path = tmp_path / "config" / "gateway.yaml"
    world.config(config_path.parent, f"sqlite:///{tmp_path / 'gateway.db'}")
    env = _env(world, config_path)
    done = subprocess.run(
        GATEWAY + ["sync", "--once"], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    # JSON log lines (every one, the standard library's too: a journal read as JSON lines), each
    # bound to its adapter instance.
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    created = [line for line in lines if line["event"] == "complaint created at hub"]
    assert created and all(line["adapter"] == "sp4n" and "complaint_id" in line for line in created)

    status = subprocess.run(GATEWAY + ["status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    local = next(r for r in report["instances"] if r["name"] == "lapor-hendi-semarang")
    hub = next(r for r in report["instances"] if r["name"] == "sp4n")
    assert local["complaints_seen"] == len(world.local.complaints())
    assert local["complaints_created_at_hub"] == hub["complaints_created"] == len(world.hub.complaints())
    assert local["last_successful_pass"] is not None

    table = subprocess.run(GATEWAY + ["status"], env=env, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "lapor-hendi-semarang" in table.stdout and "created at hub" in table.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_gateway_run_stops_cleanly_on_a_signal(world, tmp_path: Path, sig):
    world.step()
    config_path = tmp_path / "config" / "gateway.yaml"
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    world.config(config_path.parent, url)
    proc = subprocess.Popen(
        GATEWAY + ["run"],
        env=_env(world, config_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(world.hub.complaints()) < len(world.local.complaints()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the daemon created nothing in time"
            time.sleep(0.1)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines()]  # every line a JSON object
    assert "daemon stopped" in events


def test_a_bad_config_stops_start_up_with_file_and_line(tmp_path: Path, repo_config_dir: Path):
    broken = repo_config_dir / "adapters" / "sp4n.yaml"
    broken.write_text(broken.read_text().replace("timeout_seconds: 15", "timeout_seconds: soon"))
    line = next(i for i, text in enumerate(broken.read_text().splitlines(), 1) if "timeout_seconds" in text)
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(repo_config_dir / "gateway.yaml"),
        "SP4N_AUTHORIZATION": "a",
        "SP4N_TOKEN": "b",
        "LAPOR_HENDI_API_KEY": "c",
    }
    done = subprocess.run(
        GATEWAY + ["run"], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2
    assert f"sp4n.yaml:{line}: timeout_seconds" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_runs_for_the_seconds_asked_and_creates_complaints_at_the_hub(tmp_path: Path):
    """`make run` is `gateway demo`: it must keep running (a loop variable once shadowed
    `--seconds` and stopped every demo after 2 s, before the first complaint reached the hub)."""
    started = time.monotonic()
    done = subprocess.run(
        [
            *GATEWAY,
            "--config",
            str(Path(__file__).resolve().parents[1] / "config" / "gateway.yaml"),
            "demo",
            "--seconds",
            "6",
        ],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert elapsed >= 6, f"the demo stopped after {elapsed:.1f} s"
    assert "complaint created at hub" in done.stdout + done.stderr
    # Where to look, on the configured port or, when another program holds it, on a free one.
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/dashboard", done.stdout), done.stdout[-2000:]
    # The simulated world starts about LAPOR!'s 3 working days to verify before now, whatever the date:
    # the first deadlines fall near now (Lebaran's days off at most in between), not weeks off.
    listed = subprocess.run(
        [*GATEWAY, "--config", str(Path(__file__).resolve().parents[1] / "config" / "gateway.yaml")]
        + ["--store", f"sqlite:///{tmp_path / 'data' / 'demo.db'}", "deadlines", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    verify = [datetime.fromisoformat(d["due_at"]) for d in json.loads(listed.stdout) if d["tier"] == "verify"]
    now = datetime.now(UTC)
    assert verify and all(abs(due - now) < timedelta(days=14) for due in verify), (now, verify)


@pytest.mark.parametrize(
    "args",
    [
        ("deliveries", "show", "99999999999999999999999"),
        ("deliveries", "link", "99999999999999999999999", "4000001"),
        ("deliveries", "resend", "9223372036854775808"),
        ("deliveries", "retry", "1", "99999999999999999999999"),
        ("deliveries", "drop", "0", "--reason", "duplikat"),
        ("deliveries", "show", "--", "-1"),
    ],
)
def test_a_delivery_id_out_of_range_is_a_usage_error_not_a_traceback(tmp_path: Path, repo_config_dir: Path, args):
    """Found by review-fuzz: an id past 64 bits reached the store and ended in an OverflowError
    traceback ('an internal error'); it is a bad argument (exit 2) naming the range."""
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t"}
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "--store", store, *args], env=env
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "OverflowError" not in result.output
    flat = re.sub(r"[\s│]+", " ", result.output)
    assert "Invalid value for 'outbox_id" in flat, flat


def test_quarantine_shows_a_peers_markup_and_escape_codes_as_text(tmp_path: Path, repo_config_dir: Path):
    """Found by review-fuzz: an unmapped status '[/]' (quoted by its quarantine reason) made
    `gateway quarantine` and `gateway mapping check` end in a rich.MarkupError traceback, and an
    escape sequence in a peer's value reached the operator's terminal as it was."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    try:
        store.quarantine("lapor-hendi-semarang", "statuses", "3", "status '[/] [bold]x\x1b[2J' has no mapping")
    finally:
        store.close()
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "200"}
    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "--store", url, "quarantine"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "status '[/] [bold]x\\x1b[2J' has no mapping" in result.output
    assert "\x1b" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("privacy", "reporter", "--app", "[/]", "--ref", "1"), "no local app instance named '[/]'"),
        (("privacy", "erase", "--app", "[/]", "--ref", "1"), "no local app named '[/]'"),
        (("backfill", "--since", "2026-01-01", "--app", "[/]"), "no enabled local app instance named '[/]'"),
        (("deadlines", "--due-within", "[/x]"), "'[/x]' is not a duration"),
        (("links", "import", "/nonexistent/[/].csv"), "/nonexistent/[/].csv: cannot read"),
        (("simulate", "--fault", "[/]=1"), "[/]"),
    ],
)
def test_an_argument_that_is_not_valid_markup_gets_its_usage_error(tmp_path: Path, repo_config_dir: Path, args, says):
    """Found by review-fuzz: the CLI's messages quote what was typed and were printed as markup, so
    an argument holding '[/]' ended the command in a rich.MarkupError traceback (exit 1)."""
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "300"}
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "--store", store, *args], env=env
    )
    assert result.exit_code == 2, result.output
    assert "MarkupError" not in result.output and "Traceback" not in result.output
    assert says in result.output and "[red]" not in result.output


def test_a_store_locked_by_another_process_is_a_clear_error_not_a_traceback(
    tmp_path: Path, repo_config_dir: Path, monkeypatch, capsys
):
    """Found by the operator review: `gateway deliveries drop` on a SQLite file another process
    held (a sqlite3 shell, a second daemon) ended in an 'internal error' traceback with exit 1;
    it is the store's matter, said as such, with exit 2 as for a store that cannot be opened."""
    import sqlite3

    import gateway._store._engine as engine_module
    from gateway.cli._commands import main

    path = tmp_path / "locked.db"
    Store(f"sqlite:///{path}").close()
    monkeypatch.setattr(engine_module, "SQLITE_LOCK_WAIT_SECONDS", 0.05)
    for name, value in {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "300")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        args = ["--config", str(repo_config_dir / "gateway.yaml"), "--store", f"sqlite:///{path}"]
        monkeypatch.setattr(
            sys, "argv", ["gateway", *args, "privacy", "erase", "--app", "lapor-hendi-semarang", "--ref", "7"]
        )
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        holder.rollback()
        holder.close()
    said = capsys.readouterr().err
    assert stopped.value.code == 2, said
    assert "Traceback" not in said and "internal error" not in said
    assert "store: the database failed (OperationalError)" in said and "another process" in said


def test_a_store_url_that_cannot_be_opened_names_where_it_came_from(tmp_path: Path, repo_config_dir: Path):
    """Found by the operator review: with --store (or GATEWAY_STORE_URL) the error sent the
    operator to store.url in gateway.yaml, a URL the command had not used."""
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "300"}
    config = str(repo_config_dir / "gateway.yaml")
    for args in (["status"], ["db", "current"]):
        result = CliRunner().invoke(app, ["--config", config, "--store", "nonsense-url", *args], env=env)
        assert result.exit_code == 2, result.output
        assert "--store (or GATEWAY_STORE_URL)" in result.output and "store.url in" not in result.output


def test_retry_of_several_ids_tries_each_and_says_which_were_requeued(tmp_path: Path, repo_config_dir: Path):
    """Found by the operator review: `gateway deliveries retry 1 999 2` stopped at the refused
    999 with exit 1, leaving 2 parked without a word, and printed a bare 'done' for 1."""
    from gateway import Complaint, RawStatus

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    try:
        when = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
        for ref in ("LH-1", "LH-2"):
            store.take_in_complaint(
                "lapor-hendi-semarang",
                "sp4n",
                Complaint(ref=ref, title="Aduan", body="isi", created_at=when, updated_at=when, status=RawStatus("1")),
                None,
            )
        first, second = store.claim_due("sp4n", "daemon-1", timedelta(minutes=5))
        for row in (first, second):
            store.fail_delivery(row.id, "sp4n: create: answered HTTP 400", retry_at=None, token=row.claim_token)
    finally:
        store.close()
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "200"}
    args = ["--config", str(repo_config_dir / "gateway.yaml"), "--store", url, "deliveries", "retry"]
    result = CliRunner().invoke(app, [*args, str(first.id), "999", str(second.id)], env=env)
    assert result.exit_code == 1, result.output
    assert f"delivery {first.id}: requeued" in result.output and f"delivery {second.id}: requeued" in result.output
    assert "no delivery 999" in result.output
    listed = CliRunner().invoke(app, [*args[:4], "deliveries", "list", "--state", "pending", "--json"], env=env)
    assert sorted(r["id"] for r in json.loads(listed.stdout)) == [first.id, second.id]


def test_a_store_refusing_a_change_for_a_race_is_not_called_locked_or_down(capsys):
    from sqlalchemy.exc import IntegrityError, OperationalError

    from gateway.cli._context import store_failure_text

    raced = store_failure_text(IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed")))
    assert "IntegrityError" in raced and "same moment" in raced and "down" not in raced
    assert "down" in store_failure_text(OperationalError("SELECT 1", {}, Exception("database is locked")))


def test_status_counts_the_hub_statuses_written_to_the_local_app(store_url: str):
    """Found by the operator review: `gateway status` (and the dashboard) showed 'statuses ← hub'
    0 after the demo wrote dozens: a status written as it is carries no note, and NOT (NULL LIKE
    ...) is NULL in SQL, so none was counted; only the ones written as a note were."""
    from sqlmodel import select

    from gateway import Complaint, RawStatus
    from gateway._store import LOCAL_STATUS
    from gateway._store._store import STATUS_AS_FOLLOW_UP
    from gateway._store._tables import OutboxRow

    local, hub = "lapor-hendi-semarang", "sp4n"
    store = Store(store_url)
    try:
        when = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
        complaint_id, _ = store.take_in_complaint(
            local,
            hub,
            Complaint(ref="LH-1", title="Aduan", body="isi", created_at=when, updated_at=when, status=RawStatus("1")),
            None,
        )
        for ref in ("h-1", "h-2", "h-3"):
            store.record_event(
                complaint_id, kind="status_change", origin=hub, origin_ref=ref, occurred_at=when,
                raw_status=("2", "Terverifikasi"), side="hub", deliver=(LOCAL_STATUS, local),
            )  # fmt: skip
        with store.session() as s:
            rows = s.exec(select(OutboxRow).where(OutboxRow.kind == LOCAL_STATUS).order_by(OutboxRow.id)).all()
            for row, note in zip(rows, (None, None, f"{STATUS_AS_FOLLOW_UP} (the local app shows it)"), strict=True):
                row.state, row.last_error = "done", note
        report = status_report(store, {local: "local_app", hub: "hub"})
    finally:
        store.close()
    row = next(r for r in report["instances"] if r["name"] == local)
    assert (row["status_changes_from_hub"], row["status_notes_from_hub"]) == (2, 1)


def test_a_daemon_that_cannot_start_says_why_in_json_lines(tmp_path: Path, repo_config_dir: Path):
    """Found by the operator review: under systemd (JSON logs) a store that could not be opened
    and a port in use were said in plain text, and the notes lacked the `"logger": "gateway.cli"`
    docs/deploy.md promises: a journal read with jq lost exactly the line saying why it stopped."""
    import socket

    env = {**os.environ, "LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t"}
    config = ["--config", str(repo_config_dir / "gateway.yaml")]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        gateway_yaml = repo_config_dir / "gateway.yaml"
        gateway_yaml.write_text(gateway_yaml.read_text().replace("port: 8780", f"port: {port}"))
        for store, says in (
            ("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", "cannot open the store"),
            (f"sqlite:///{tmp_path / 'gateway.db'}", "address is in use"),
        ):
            done = subprocess.run(
                [*GATEWAY, *config, "--store", store, "run"],
                env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert done.returncode == 2, done.stderr
            lines = [json.loads(line) for line in done.stderr.splitlines()]
            assert any(says in line["event"] and line["level"] == "error" for line in lines), lines
            assert all(line.get("logger") for line in lines), lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--state", "parkd"), "--state: 'parkd' is not a state"),
        (("--state", "parked", "--state", "needs-confirmation"), "'needs-confirmation' is not a state"),
        (("--target", "sp4m"), "--target: no adapter instance named 'sp4m'"),
    ],
)
def test_deliveries_list_refuses_a_state_or_target_that_matches_nothing(
    tmp_path: Path, repo_config_dir: Path, args, says
):
    """Found by the operator review: a mistyped --state or --target matched no row, and the list
    said "nothing waits for an operator" with exit 0, though deliveries were parked."""
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "300"}
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "--store", store, "deliveries", "list", *args], env=env
    )
    assert result.exit_code == 2, result.output
    assert says in result.output and "nothing waits" not in result.output


def test_a_sqlite_store_in_a_folder_this_user_cannot_write_names_the_folder(
    tmp_path: Path, repo_config_dir: Path, monkeypatch
):
    """Found by the operator review: a SQLite store in a read-only folder (a read-only mount,
    another owner, systemd's ProtectSystem) said only 'cannot open the store (OperationalError)'.
    The folder is named. (Run as root, the folder is made unwritable through os.access.)"""
    from sqlalchemy.exc import OperationalError

    import gateway.cli._context as context_module

    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "gateway.db"
    Store(f"sqlite:///{db}").close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == folder else real_access(path, mode))

    def refuse(*_args, **_kwargs):  # what SQLite answers there, whoever runs the test
        raise OperationalError("open", {}, Exception("unable to open database file"))

    monkeypatch.setattr(context_module, "Store", refuse)
    env = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t", "COLUMNS": "300"}
    result = CliRunner().invoke(
        app, ["--config", str(repo_config_dir / "gateway.yaml"), "--store", f"sqlite:///{db}", "status"], env=env
    )
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert f"cannot write in {folder}" in flat and "OperationalError" in flat
