"""The retention purge and erasure end to end, over real HTTP to the Lapor Hendi and SP4N
simulators with a real store: after a purge the sync goes on (a later status change and a
follow-up at the hub still reach the local app); after an erasure nothing more of the complaint
is read or sent (a new follow-up at the local app stays there). Then the daemon's daily job and
the `gateway privacy` commands as an operator runs them: clear errors, no marker in any output."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import edit
from sqlmodel import col, select
from test_hub_contract_flow import HUB, LOCAL, flow, new_complaint
from test_privacy_retention import MARK, marked, markers_in_database, settled_complaint, texts_of
from typer.testing import CliRunner

import gateway.cli
from gateway._daemon import Daemon
from gateway._engine import PRIVACY_PURGE, Engine
from gateway._store import Store
from gateway._store._privacy import erase_complaint, purge_closed
from gateway._store._report import status_report
from gateway._store._tables import AuditRow, JobRunRow, OutboxRow, QuarantineRow

pytestmark = [pytest.mark.anyio]


def planted(where: str) -> dict:
    return {
        "judul": f"Jalan berlubang {marked('judul ' + where)}",
        "isi": f"Lubang besar {marked('isi ' + where)}",
        "pelapor": {
            "nama": marked("nama " + where),
            "nik": "3374012345678901",
            "telepon": "081234567890",
            "email": "budi@example.co.id",
            "alamat": marked("alamat " + where),
        },
    }


def reopen_window(config) -> None:
    """Closed complaints read for a while (the tests' config reads them never: a window of 0)."""
    config.instances[HUB].spec.polling.reopen_window_days = 14


@pytest.mark.e2e
async def test_after_a_purge_the_hub_still_reaches_the_local_app(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url, reopen_window) as f:
        local_id = await new_complaint(f, **planted("purged"))
        world.local.answer(local_id, f"Sedang dicek {marked('answer')}")
        await f.passes()
        hub_id = f.hub_id(local_id)
        world.hub.act(hub_id, "Ditolak", reason="Bukan kewenangan kota")
        await f.passes()
        assert f.local_status(local_id) == "ditolak"
        cid = f.complaint_id(local_id)
        assert f.store.complaint(cid).closed_at is not None and MARK in texts_of(f.store, cid)

        counts = purge_closed(f.store, LOCAL, 0, actor="operator:siti")
        assert counts.complaints == 1 and MARK not in texts_of(f.store, cid)

        # Inside the reopen window the hub is still read: what it does next reaches the citizen,
        # read fresh from the hub (the purged texts are not needed for it).
        world.hub.act(hub_id, "Selesai")
        world.hub.officer_follow_up(hub_id, "Sudah diperbaiki oleh Dinas PU.")
        await f.passes()
        assert f.local_status(local_id) == "selesai"
        assert "Sudah diperbaiki oleh Dinas PU." in {t["isi"] for t in f.written_locally(local_id)}
        assert len(f.at_hub(local_id)) == 1  # nothing created again
        assert markers_in_database(f.store) == []  # no planted text left, not even in free pages


@pytest.mark.e2e
async def test_after_an_erasure_nothing_more_of_the_complaint_is_read_or_sent(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f, **planted("erased"))
        kept_id = await new_complaint(f)
        hub_id = f.hub_id(local_id)
        cid = f.complaint_id(local_id)
        world.hub.officer_follow_up(hub_id, f"Mohon foto tambahan {marked('hub follow-up')}")
        await f.engine.poll_hub(HUB)  # read, owed to the local app, not delivered yet

        erasure = erase_complaint(f.store, LOCAL, str(local_id), actor="operator:siti")

        assert erasure.dropped == 1 and MARK not in texts_of(f.store, cid)
        assert f"the hub {HUB} holds complaint #{hub_id}" in erasure.remains[0]
        world.local.answer(local_id, f"Tanggapan baru {marked('late answer')}")
        world.local.answer(kept_id, "Petugas sudah dijadwalkan.")
        world.hub.act(hub_id, "Terverifikasi")
        before = len(world.hub.follow_ups(hub_id))
        await f.passes(3)
        assert len(world.hub.follow_ups(hub_id)) == before  # the late answer was not sent
        assert not any(MARK in t["isi"] for t in f.written_locally(local_id))  # the hub's was not written
        assert f.local_status(local_id) == "belum terverifikasi"  # nor its status
        assert MARK not in texts_of(f.store, cid)
        assert "Petugas sudah dijadwalkan." in {t["content"] for t in world.hub.follow_ups(f.hub_id(kept_id))}
        with f.store.session() as s:
            owed = s.exec(
                select(OutboxRow).where(OutboxRow.complaint_id == cid, col(OutboxRow.state) != "dropped")
            ).all()
        assert all(o.state == "done" for o in owed)
        assert markers_in_database(f.store) == []


@pytest.mark.e2e
async def test_a_complaint_withdrawn_before_the_gateway_read_it_is_never_taken_in(world, tmp_path, store_url):
    """The request comes first (the citizen asked the city before the next pass): the complaint, its
    follow-up and its status change are ignored when the local app serves them; nothing reaches the
    hub, nothing waits in quarantine, and `gateway status` counts only the app's other complaint."""

    def figures(f) -> tuple[int, ...]:
        rows = {row["name"]: row for row in status_report(f.store, {LOCAL: "local_app", HUB: "hub"})["instances"]}
        local, hub = rows[LOCAL], rows[HUB]
        return (
            local["complaints_seen"], local["complaints_created_at_hub"], hub["complaints_created"],
            len(world.hub.complaints()), local["records_quarantined"], local["deliveries_owed"], hub["deliveries_owed"],
        )  # fmt: skip

    async with flow(world, tmp_path, store_url) as f:
        await f.passes()  # the simulator's own history, taken in
        seen, created, created_there, at_hub, *_ = figures(f)
        withdrawn = world.local.submit_complaint(**planted("withdrawn"))
        erasure = erase_complaint(f.store, LOCAL, str(withdrawn), kind="withdraw", actor="operator:siti")
        assert erasure.outcome == "nothing_stored"
        world.local.answer(withdrawn, f"Tanggapan {marked('answer to withdrawn')}")
        f.set_local_status(withdrawn, "selesai")
        kept = await new_complaint(f)
        await f.passes(3)

        assert f.store.complaint_id_for(LOCAL, str(withdrawn)) is None
        assert f.hub_id(kept)
        assert MARK not in json.dumps(world.hub.complaints(), default=str)
        assert figures(f) == (seen + 1, created + 1, created_there + 1, at_hub + 1, 0, 0, 0)
        with f.store.session() as s:
            assert s.exec(select(QuarantineRow)).all() == []
        assert markers_in_database(f.store) == []


# -- the daemon's job ------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_the_daemon_purges_each_local_app_daily_first_some_minutes_after_its_start(world, tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path, url)
    config.instances[LOCAL].spec.privacy.retention.closed_days = 0
    store = Store(url)
    try:
        cid = settled_complaint(store, "LH-1", closed_at=datetime(2026, 1, 5, tzinfo=UTC))
        async with Engine(config, store) as engine:
            daemon = Daemon(engine, config)
            started = datetime.now(UTC)
            daemon.start()
            try:
                assert daemon.scheduler is not None
                local_apps = [i.name for i in config.local_apps()]
                for name in local_apps:
                    job = daemon.scheduler.get_job(f"{name}:{PRIVACY_PURGE}")
                    assert job is not None and job.trigger.interval == timedelta(days=1)
                    assert started + timedelta(minutes=9) < job.next_run_time < started + timedelta(minutes=11)
                assert {(i, j) for i, j, _, _ in daemon.jobs() if j == PRIVACY_PURGE} == {
                    (n, PRIVACY_PURGE) for n in local_apps
                }
            finally:
                await daemon.stop()
            counts = await engine.purge_texts(LOCAL)  # what the job runs
        assert counts is not None and counts.complaints == 1 and MARK not in texts_of(store, cid)
        with store.session() as s:
            run = s.get(JobRunRow, (LOCAL, PRIVACY_PURGE))
            [audit] = s.exec(select(AuditRow).where(AuditRow.action == "privacy_purge")).all()
        assert run is not None and run.runs == 1 and run.failures == 0
        assert audit.actor == "gateway" and MARK not in (audit.detail or "")
    finally:
        store.close()


# -- the commands ----------------------------------------------------------------------------------


def gateway_cli(config_dir: Path, store_url: str, *args: str, operator: str = "siti"):
    return CliRunner().invoke(
        gateway.cli.app,
        ["--config", str(config_dir / "gateway.yaml"), "--store", store_url, "--operator", operator, *args],
    )


def flat(output: str) -> str:
    return " ".join(output.split())


def test_privacy_purge_dry_run_then_purge_as_an_operator(repo_config_dir: Path, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    edit(repo_config_dir / "adapters" / "lapor-hendi-semarang.yaml", "closed_days: 365", "closed_days: 30")
    store = Store(url)
    try:
        old = settled_complaint(store, "LH-1", closed_at=datetime(2026, 1, 5, tzinfo=UTC))
    finally:
        store.close()

    dry = gateway_cli(repo_config_dir, url, "privacy", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    [row] = [r for r in json.loads(dry.stdout) if r["instance"] == LOCAL]
    assert (row["complaints"], row["events"], row["attachments"], row["reporters"], row["dry_run"]) == (
        1,
        1,
        2,
        1,
        True,
    )
    done = gateway_cli(repo_config_dir, url, "privacy", "purge")
    assert done.exit_code == 0, done.output
    assert "Purged" in done.output and MARK not in done.output
    requests = gateway_cli(repo_config_dir, url, "privacy", "requests")
    assert "no privacy request recorded" in requests.output
    store = Store(url)
    try:
        assert MARK not in texts_of(store, old)
        with store.session() as s:
            [audit] = s.exec(
                select(AuditRow).where(AuditRow.action == "privacy_purge", AuditRow.detail.contains(LOCAL))
            ).all()  # type: ignore[attr-defined]
        assert audit.actor == "operator:siti"
    finally:
        store.close()


def test_privacy_erase_names_what_remains_and_refuses_an_unknown_app(repo_config_dir: Path, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    try:
        settled_complaint(store, "LH-7", hub_ref="5150")
    finally:
        store.close()

    unknown = gateway_cli(repo_config_dir, url, "privacy", "erase", "--app", "lapor-semar", "--ref", "LH-7")
    assert unknown.exit_code == 2
    assert "no local app named 'lapor-semar'" in flat(unknown.output) and "lapor-hendi-semarang" in unknown.output
    assert "Traceback" not in unknown.output

    erased = gateway_cli(
        repo_config_dir, url, "privacy", "erase", "--app", LOCAL, "--ref", "LH-7", "--withdraw", "--reason", "surat 3"
    )
    assert erased.exit_code == 0, erased.output
    text = flat(erased.output)
    assert "withdrawal of consent request 1: complaint 1 erased" in text
    assert "the hub sp4n holds complaint #5150" in text and "holds report LH-7" in text
    assert MARK not in erased.output

    nothing = gateway_cli(repo_config_dir, url, "privacy", "erase", "--app", LOCAL, "--ref", "LH-404")
    assert nothing.exit_code == 0
    assert "no complaint with local id LH-404 at lapor-hendi-semarang: nothing stored" in flat(nothing.output)
    assert "will never take in this complaint, its follow-ups or its status changes" in flat(nothing.output)

    again = gateway_cli(repo_config_dir, url, "privacy", "erase", "--app", LOCAL, "--ref", "LH-7")
    assert again.exit_code == 0, again.output
    first_time = erased.output.split("erased at ")[1][:16]
    assert f"erasure request 3: complaint 1 was already erased at {first_time} UTC" in flat(again.output)

    listed = gateway_cli(repo_config_dir, url, "privacy", "requests", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["kind"], r["outcome"], r["operator"]) for r in rows] == [
        (3, "erase", "already_erased", "operator:siti"),
        (2, "erase", "nothing_stored", "operator:siti"),
        (1, "withdraw", "erased", "operator:siti"),
    ]
    assert all(r["completed_at"] for r in rows) and MARK not in listed.output
