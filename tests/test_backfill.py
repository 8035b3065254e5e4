"""`gateway backfill`: an app's history read over loopback HTTP into a real store,
within the walk that cannot skip records, resumable after a stop, and handed over
to the daemon's intake."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlmodel import func, select

from gateway import WIB
from gateway._engine import Engine
from gateway._errors import GatewayError
from gateway._store import Store
from gateway._store._tables import ComplaintRow, LinkRow, OutboxRow
from gateway.simulation import SimulatorServer

pytestmark = [pytest.mark.anyio]

HISTORY = 600  # complaints over the last 90 days


@pytest.fixture
def history(world):
    """The test world's Lapor Hendi, swapped for one with 90 days of history."""
    from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator

    sim = create_simulator(seed=11, clock=world.clock, initial_complaints=HISTORY, history_days=90)
    sim.officers_active = False
    sim.hooks = []  # tests put aiohttp middlewares here while the server runs

    @web.middleware
    async def hooked(request, handler):
        for hook in list(sim.hooks):
            answer = await hook(request)
            if answer is not None:
                return answer
        return await handler(request)

    sim.extra_middlewares.append(hooked)
    with SimulatorServer(sim) as server:
        world.local, world.local_server = sim, server
        world.hub.quiesce()
        yield sim


def _since(days_ago: int, world) -> datetime:
    day = (world.clock.now() - timedelta(days=days_ago)).astimezone(WIB).date()
    return datetime(day.year, day.month, day.day, tzinfo=WIB)


def _changed_since(sim, since: datetime) -> set[str]:
    from lapor_gateway_adapters.lapor_hendi._world import read_time

    return {str(c["id_aduan"]) for c in sim.complaints() if read_time(c["diperbarui_pada"]) >= since}


def _taken_in(store: Store) -> set[str]:
    with store.session() as s:
        return set(s.exec(select(LinkRow.external_ref).where(LinkRow.instance == "lapor-hendi-semarang")).all())


async def test_backfill_reads_what_changed_since_the_date_and_hands_over_to_the_intake(
    world, history, tmp_path: Path, store_url: str
):
    config = world.config(tmp_path / "config", store_url)
    store = Store(store_url)
    since = _since(30, world)
    expected = _changed_since(history, since)
    assert 0 < len(expected) < HISTORY  # the date cuts the history
    async with Engine(config, store) as engine:
        result = await engine.backfill("lapor-hendi-semarang", since)
        assert result.intake.complaints_new == len(expected) and not result.resumed
        assert _taken_in(store) == expected
        with store.session() as s:  # each is owed to the hub, once
            creates = s.exec(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == "create_complaint")
            ).one()
        assert creates == len(expected)
        assert result.intake.follow_ups > 0 and result.intake.status_changes > 0
        # The daemon's intake goes on from where the backfill ended: nothing read twice.
        again = await engine.intake("lapor-hendi-semarang")
        assert again.complaints_new == 0 and again.follow_ups == 0 and again.status_changes == 0
    store.close()


async def test_a_stopped_backfill_resumes_where_it_was(world, history, tmp_path: Path, store_url: str):
    config = world.config(tmp_path / "config", store_url)
    store = Store(store_url)
    since = _since(60, world)
    expected = _changed_since(history, since)
    served = {"pages": 0}

    async def stop_after_four_pages(request):  # the app goes away mid-walk
        if request.path == "/api/v1/aduan":
            served["pages"] += 1
            if served["pages"] > 4:
                return web.json_response({"status": "gagal", "pesan": "pemeliharaan"}, status=404)
        return None

    history.hooks.append(stop_after_four_pages)
    async with Engine(config, store) as engine:
        with pytest.raises(GatewayError):
            await engine.backfill("lapor-hendi-semarang", since)
        first = _taken_in(store)
        assert 0 < len(first) < len(expected)
        history.hooks.clear()
        before = history.counts()["requests_by_route"].get("GET /api/v1/aduan", 0)
        result = await engine.backfill("lapor-hendi-semarang", since)
        pages_again = history.counts()["requests_by_route"]["GET /api/v1/aduan"] - before
    assert result.resumed
    assert _taken_in(store) == expected
    assert result.intake.complaints_new == len(expected) - len(first)
    page_size = 50
    assert pages_again <= (len(expected) - len(first)) // (page_size - 1) + 2  # not from the start again
    store.close()


async def test_records_changing_during_the_backfill_are_not_skipped(world, history, tmp_path: Path, store_url: str):
    config = world.config(tmp_path / "config", store_url)
    store = Store(store_url)
    since = _since(90, world)
    ids = sorted(int(i) for i in _changed_since(history, since))
    changes = iter(ids[::7])

    async def officers_busy(request):  # before each page, an officer updates an older complaint
        if request.path == "/api/v1/aduan":
            world.clock.advance(1)
            target = next(changes, None)
            if target is not None:
                history.answer(target, "Sedang ditindaklanjuti oleh petugas.")
        return None

    history.hooks.append(officers_busy)
    async with Engine(config, store) as engine:
        await engine.backfill("lapor-hendi-semarang", since)
    assert _taken_in(store) == {str(i) for i in ids}
    with store.session() as s:
        rows = s.exec(
            select(ComplaintRow.local_updated_at, LinkRow.external_ref).join(
                LinkRow, (LinkRow.complaint_id == ComplaintRow.id) & (LinkRow.instance == "lapor-hendi-semarang")
            )
        ).all()
    from lapor_gateway_adapters.lapor_hendi._world import read_time

    newest = {str(c["id_aduan"]): read_time(c["diperbarui_pada"]) for c in history.complaints()}
    stale = [ref for when, ref in rows if when.replace(tzinfo=when.tzinfo or WIB) != newest[ref]]
    assert not stale, f"{len(stale)} complaints kept an older version"
    store.close()


def test_the_command_reports_progress_and_a_clear_error_for_a_bad_date(world, history, tmp_path: Path):
    store_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path / "config", store_url)
    env = {**os.environ, **world.environ}
    command = [sys.executable, "-m", "gateway.cli", "--config", str(config.path), "backfill"]
    bad = subprocess.run(
        command + ["--since", "30-11-2026"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    since = _since(20, world).date().isoformat()
    done = subprocess.run(
        command + ["--since", since], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )
    assert done.returncode == 0, done.stderr
    n = len(_changed_since(history, _since(20, world)))
    assert f"complaints: {n} to read" in done.stdout
    assert f"{n} complaints new" in done.stdout
