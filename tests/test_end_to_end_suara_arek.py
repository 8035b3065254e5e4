"""Suara Arek in YAML alone, end to end: the real engine and store, the declarative adapter built
from config/adapters/suara-arek-malang.yaml, the Suara Arek and SP4N simulators over loopback.
Simulated citizens and officers act on a fake clock between passes, so each run is the same.

What must hold without a line of Python for Suara Arek: every report reaches the hub once; every
officer's response crosses once each way and nothing the gateway wrote comes back (Suara Arek
shows no gateway_ref on reads: the engine knows its own responses by the ids the writes
returned); hub statuses are written as states; nothing is parked; no personal data in the logs.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, SEED, TEST_POLLING

from gateway._config import load_config
from gateway._engine import Engine
from gateway._logging import configure_logging
from gateway._store import Store
from gateway._store._report import status_report
from gateway.simulation import SimClock, SimulatorServer

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

NOTE = "Status di LAPOR!:"  # the sp4n adapter's note with a hub status passed on as a follow-up
LOCAL = "suara-arek-malang"


def write_config(folder: Path, store_url: str, local_url: str, hub_url: str) -> Path:
    (folder / "adapters").mkdir(parents=True)
    for name, url in (("suara-arek-malang.yaml", local_url), ("sp4n.yaml", hub_url)):
        text = (REPO / "config" / "adapters" / name).read_text()
        text = re.sub(r"^base_url:.*$", f"base_url: {url}", text, flags=re.M)
        text = re.sub(r"^enabled: false.*$", "enabled: true", text, flags=re.M)
        text = re.sub(r"^budget:.*?(?=^\S|\Z)", "", text, flags=re.M | re.S) + "budget:\n  requests_per_second: null\n"
        # The hub simulator knows the locations and institutions of its Jawa Tengah world only.
        text = re.sub(r"location_id: 15 .*", "location_id: 11", text)
        text = re.sub(r"disposition_id: 100357 .*", "disposition_id: 100234", text)
        if name == "sp4n.yaml":  # read every open complaint every pass: the clock is the simulators'
            text = re.sub(r"^polling:\n(  .*\n)*", "", text, flags=re.M) + TEST_POLLING
        (folder / "adapters" / name).write_text(text)
    path = folder / "gateway.yaml"
    path.write_text(f"store:\n  url: {store_url}\nlog:\n  format: json\n")
    return path


async def test_suara_arek_in_yaml_flows_both_ways_exactly_once(tmp_path: Path, store_url: str) -> None:
    from lapor_gateway_adapters.sp4n.simulator import create_simulator as hub_sim
    from lapor_gateway_adapters.suara_arek.simulator import create_simulator as local_sim

    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    clock = SimClock(speed=0)
    local = local_sim(seed=SEED, clock=clock, initial_reports=6, act_probability=0.3)
    hub = hub_sim(seed=SEED, clock=clock)
    with SimulatorServer(local) as local_server, SimulatorServer(hub) as hub_server:
        environ = {**local.demo_environment(), **hub.demo_environment()}
        config = load_config(
            write_config(tmp_path, store_url, local_server.base_url, hub_server.base_url), environ=environ
        )
        store = Store(store_url)
        try:
            async with Engine(config, store, seed=1) as engine:
                for _ in range(10):
                    clock.advance(2 * 3600)
                    local.tick()
                    hub.tick()
                    await engine.run_pass()
                local.officers_active = False
                hub.quiesce()
                for _ in range(6):
                    await engine.run_pass()
            report = status_report(store, {n: i.role for n, i in config.instances.items()})
        finally:
            store.close()

        reports = local.reports()
        hub_complaints = hub.complaints()
        assert len(reports) > 6, "the simulated citizens should have filed reports beside the 6 seeded ones"

        # 1. Every report is at the hub exactly once, but one closed before the gateway first saw it
        #    (route.create_at_hub); each carries its own gateway reference.
        row = next(r for r in report["instances"] if r["name"] == LOCAL)
        assert row["complaints_seen"] == len(reports)
        assert row["complaints_created_at_hub"] == len(hub_complaints) >= len(reports) - 2
        tags = [t for c in hub_complaints for t in c["tags_raw"].split() if t.startswith("#lg_")]
        assert len(tags) == len(set(tags)) == len(hub_complaints)
        at_hub = Counter(c["title"] for c in hub_complaints)
        missing = Counter(r["title"] for r in reports) - at_hub
        assert not at_hub - Counter(r["title"] for r in reports)
        assert all(r["state"] in ("selesai", "ditolak") for r in reports if missing[r["title"]])

        # 2. Every officer's response crosses once each way; nothing the gateway wrote comes back.
        from_gateway: Counter[str] = Counter()
        from_officers: Counter[str] = Counter()
        for r in reports:
            for response in local.responses(r["id"]):
                if response["author"]["type"] == "client":
                    if not response["message"].startswith(NOTE):
                        from_gateway[response["message"]] += 1
                else:
                    from_officers[response["message"]] += 1
        hub_officers: Counter[str] = Counter()
        hub_api: Counter[str] = Counter()
        for c in hub_complaints:
            for f in hub.follow_ups(c["id"]):
                (hub_officers if f["source"] == "officer" else hub_api)[f["content"]] += 1
        assert from_gateway == hub_officers and sum(hub_officers.values()) > 3
        assert hub_api == from_officers and sum(from_officers.values()) > 3

        # 3. Hub statuses are written as Suara Arek states; nothing owed or parked.
        counts = local.counts()
        assert counts["state_changes_from_clients"] > 0
        assert row["deliveries_owed"] == 0 and row["deliveries_parked"] == 0

        # 4. No personal data in any log line.
        text = logs.getvalue()
        assert "complaint created at hub" in text
        for r in reports:
            if r["reporter"]:
                for value in r["reporter"].values():
                    assert value not in text
