"""The hub's reference data (institutions, templates) cached in the store; complaints
disposed and forwarded to the agency (OPD) the local app assigned; `gateway mapping
check`. Real HTTP to both simulators, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from gateway._engine import Engine
from gateway._store import Store
from gateway._store._reference import reference
from gateway._store._tables import ComplaintRow, LinkRow, OutboxRow

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LOCAL = "lapor-hendi-semarang"


def _config(world, tmp_path: Path, store_url: str, *, agencies: dict[str, str] | None = None):
    """The shipped config; with ``agencies``, that table replaced."""
    config = world.config(tmp_path / "config", store_url)
    if agencies is not None:
        config.instances[LOCAL].spec.agencies = agencies
    return config


def _hub_id(store: Store, complaint_id: int) -> str:
    with store.session() as s:
        return s.exec(
            select(LinkRow.external_ref).where(LinkRow.complaint_id == complaint_id, LinkRow.instance == "sp4n")
        ).one()


def _local_ids(store: Store) -> dict[int, int]:
    """gateway id -> Lapor Hendi id_aduan."""
    with store.session() as s:
        return {
            cid: int(ref)
            for cid, ref in s.exec(
                select(LinkRow.complaint_id, LinkRow.external_ref).where(LinkRow.instance == LOCAL)
            ).all()
        }


async def test_reference_data_is_read_from_the_hub_and_cached(world, tmp_path: Path, store_url: str):
    from lapor_gateway_adapters.sp4n._world import INSTITUTION_TABLE, TEMPLATES

    config = _config(world, tmp_path, store_url)
    store = Store(store_url)
    async with Engine(config, store) as engine:
        result = await engine.refresh_reference("sp4n")
        assert result.institutions == len(INSTITUTION_TABLE) and result.templates == len(TEMPLATES)
        cached = {i.ref: i for i in reference(store, "sp4n", "institutions")}
        assert cached["200101"].name == "Dinas Pekerjaan Umum Kota Semarang"
        assert cached["200101"].parent_ref == "100234"
        assert {t.code for t in reference(store, "sp4n", "templates")} == {t["code"] for t in TEMPLATES}
        await engine.refresh_reference("sp4n")  # read again: replaced, not added to
        assert len(reference(store, "sp4n", "institutions")) == len(INSTITUTION_TABLE)
    store.close()


async def test_a_complaint_goes_to_the_hub_disposed_to_its_agency_and_follows_a_reassignment(
    world, tmp_path: Path, store_url: str
):
    config = _config(world, tmp_path, store_url)
    store = Store(store_url)
    world.local.officers_active = False
    world.hub.quiesce()
    async with Engine(config, store) as engine:
        await engine.run_pass()
        local_ids = _local_ids(store)
        shown = {c["id_aduan"]: c for c in world.local.complaints()}
        agencies = config.instances[LOCAL].spec.agencies
        for cid, local_id in local_ids.items():  # created disposed to the mapped institution
            hub = world.hub.world.get(_hub_id(store, cid))
            opd = shown[local_id]["opd"]
            assert hub.disposition_id == (agencies[opd] if opd else "100234")
        cid, local_id = next((c, i) for c, i in local_ids.items() if shown[i]["opd"] == "DPU")
        world.clock.advance(60)
        world.local.reassign(local_id, "DLH")  # the city's admin: not DPU's, Lingkungan Hidup's
        await engine.intake(LOCAL)
        assert (await engine.deliver("sp4n")).delivered == 1
        hub = world.hub.world.get(_hub_id(store, cid))
        assert hub.disposition_id == "200102"
        assert any(log["institution_to_id"] == "200102" for log in world.hub.logs(hub.id))
        # Read again, nothing is forwarded twice.
        await engine.intake(LOCAL)
        assert (await engine.deliver("sp4n")).delivered == 0
        assert world.hub.counts()["forwards"] == 1
    store.close()


async def test_an_agency_without_mapping_is_parked_with_its_reason(world, tmp_path: Path, store_url: str):
    config = _config(world, tmp_path, store_url, agencies={"DPU": "200101"})
    store = Store(store_url)
    world.local.officers_active = False
    world.hub.quiesce()
    async with Engine(config, store) as engine:
        await engine.intake(LOCAL)
        await engine.deliver("sp4n")
        with store.session() as s:
            parked = s.exec(select(OutboxRow, ComplaintRow).join(ComplaintRow).where(OutboxRow.state == "parked")).all()
        assert parked and all(c.agency not in (None, "DPU") for _, c in parked)
        assert all("no mapping for agencies value" in o.last_error for o, _ in parked)
    store.close()


async def test_an_institution_the_hub_does_not_list_parks_the_forward(world, tmp_path: Path, store_url: str):
    config = _config(world, tmp_path, store_url)
    store = Store(store_url)
    world.local.officers_active = False
    world.hub.quiesce()
    async with Engine(config, store) as engine:
        await engine.run_pass()
        cid, local_id = next(iter(_local_ids(store).items()))
        config.instances[LOCAL].spec.agencies["BAPPEDA"] = "999999"
        world.clock.advance(60)
        world.local.reassign(local_id, "BAPPEDA")
        await engine.intake(LOCAL)
        assert (await engine.deliver("sp4n")).parked == 1
        with store.session() as s:
            row = s.exec(select(OutboxRow).where(OutboxRow.kind == "forward_complaint")).one()
        assert "999999" in row.last_error and "not among sp4n's institutions" in row.last_error
        assert world.hub.counts()["forwards"] == 0
    store.close()


def test_mapping_check_lists_values_without_mapping(world, tmp_path: Path):
    store_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path / "config", store_url)
    env = {**os.environ, **world.environ}
    gateway = [sys.executable, "-m", "gateway.cli", "--config", str(config.path)]
    world.local.submit_complaint(kategori="Pohon Tumbang", opd="DISPERKIM")
    done = subprocess.run(
        gateway + ["sync", "--once"], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    check = subprocess.run(
        gateway + ["mapping", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert check.returncode == 1, check.stderr + done.stderr
    report = json.loads(check.stdout)
    found = {(f["table"], f["value"]): f for f in report["findings"]}
    assert found[("categories", "Pohon Tumbang")]["seen"] == 1
    assert found[("agencies", "DISPERKIM")]["file"].endswith("lapor-hendi-semarang.yaml")
    assert report["reference_read_at"]["sp4n"] is not None  # the pass read the hub's institutions
    table = subprocess.run(
        gateway + ["mapping", "check"], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert table.returncode == 1 and "Pohon Tumbang" in table.stdout


def test_mapping_check_maps_statuses_as_the_sync_does(tmp_path: Path, repo_config_dir: Path, monkeypatch):
    """Found by the operator review: with the shipped sp4n.yaml (a table of status names, as the
    hub publishes no codes) `gateway mapping check` listed every hub status code as 'no mapping'
    and exited 1, and a local status differing only in case was listed too, though the sync
    maps both. Only a status the sync cannot map is listed, by its name."""
    from datetime import UTC, datetime

    from gateway import Complaint, RawStatus
    from gateway._config import load_config
    from gateway._engine._mapping_check import mapping_check

    for name, value in {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t"}.items():
        monkeypatch.setenv(name, value)
    config = load_config(repo_config_dir / "gateway.yaml")
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        when = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
        complaint_id, _ = store.take_in_complaint(
            LOCAL,
            "sp4n",
            Complaint(
                ref="LH-1", title="Aduan", body="isi", created_at=when, updated_at=when, status=RawStatus("Selesai")
            ),
            None,
        )
        for ref, raw in (("h-1", ("2", "Terverifikasi")), ("h-2", ("8", "diarsipkan")), ("h-3", ("12", "Koordinasi"))):
            store.record_event(
                complaint_id, kind="status_change", origin="sp4n", origin_ref=ref, occurred_at=when,
                raw_status=raw, side="hub",
            )  # fmt: skip
        statuses = [(f.instance, f.value, f.seen) for f in mapping_check(config, store) if f.table == "statuses"]
    finally:
        store.close()
    assert statuses == [("sp4n", "Koordinasi", 1)]
