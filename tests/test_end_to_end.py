"""The whole path over real HTTP on loopback: both simulators, the real engine,
a real store (SQLite file; PostgreSQL too when configured).

Simulated people act between passes on a fake clock, so each run is the same.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from gateway._engine import Engine
from gateway._logging import configure_logging
from gateway._store import Store
from gateway._store._report import status_report

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

GATEWAY_INSTITUTION = "100234"
NOTE = "Status di LAPOR!:"  # the first line of the sp4n adapter's note with a hub status


def hashtag(gateway_ref: str) -> str:
    """How a complaint's gateway reference appears in the hub's tags_raw."""
    return "#" + gateway_ref.replace("-", "_")


def _local_write_table(config) -> dict[str, str]:
    """Hub status name -> the Lapor Hendi status the gateway writes for it."""
    local = config.instances["lapor-hendi-semarang"].spec
    hub = config.instances["sp4n"].spec
    return {name: local.status_writes[status] for name, status in hub.statuses.items()}


def _rank(config) -> dict[str, int]:
    order = config.instances["lapor-hendi-semarang"].spec.status_order
    return {name: rank for rank, item in enumerate(order) for name in (item if isinstance(item, list) else [item])}


async def _run(world, config, store, *, rounds: int, settle: int = 6) -> Engine:
    async with Engine(config, store, seed=1) as engine:
        for _ in range(rounds):
            world.step(hours=2)
            await engine.run_pass()
        world.local.officers_active = False
        world.hub.quiesce()
        for _ in range(settle):
            await engine.run_pass()
    return engine


async def test_complaints_follow_ups_and_statuses_flow_both_ways_exactly_once(world, tmp_path: Path, store_url: str):
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    config = world.config(tmp_path, store_url)
    store = Store(store_url)
    try:
        await _run(world, config, store, rounds=10)
        report = status_report(store, {n: i.role for n, i in config.instances.items()})
        local_links = {}
        with store.session() as s:
            from sqlmodel import select

            from gateway._store._tables import ComplaintRow, EventRow, LinkRow

            for row, link in s.exec(
                select(ComplaintRow, LinkRow)
                .join(LinkRow, LinkRow.complaint_id == ComplaintRow.id)
                .where(LinkRow.instance == "lapor-hendi-semarang")
            ).all():
                local_links[int(link.external_ref)] = row.gateway_ref
            # Each follow-up's two copies, by identity (the simulators reuse texts): (origin, local id, hub id).
            pairs = [
                (e.origin, e.local_ref, e.hub_ref)
                for e in s.exec(
                    select(EventRow).where(
                        EventRow.kind == "follow_up", EventRow.local_ref.is_not(None), EventRow.hub_ref.is_not(None)
                    )
                ).all()
            ]
    finally:
        store.close()

    local_complaints = {c["id_aduan"]: c for c in world.local.complaints()}
    hub_complaints = world.hub.complaints()
    assert len(local_complaints) > 20, "the simulated citizens should have filed complaints"

    # 1. Every local complaint is at the hub exactly once, carrying the gateway's reference as a
    #    hashtag; the hub's tracking id is written back to the local app.
    assert set(local_links) == set(local_complaints)
    tags = {hashtag(ref): local_id for local_id, ref in local_links.items()}
    by_tag = Counter(tag for c in hub_complaints for tag in (c["tags_raw"] or "").split() if tag in tags)
    assert all(by_tag[tag] == 1 for tag in tags), "a complaint was created twice or never"
    assert len(hub_complaints) == len(local_complaints)
    hub_by_ref = {
        local_links[tags[tag]]: c for c in hub_complaints for tag in (c["tags_raw"] or "").split() if tag in tags
    }
    for local_id, ref in local_links.items():
        assert hub_by_ref[ref]["title"] == local_complaints[local_id]["judul"]
        assert world.local.nomor_lapor(local_id) == str(hub_by_ref[ref]["id"])
        assert hub_by_ref[ref]["location_id"] in (11, "11")  # the hub's own id of Jawa Tengah, not BPS 33
    with_photos = [c for c in local_complaints.values() if c["lampiran"]]
    assert with_photos and all(
        len(hub_by_ref[local_links[c["id_aduan"]]]["attachments"]) == len(c["lampiran"]) for c in with_photos
    )

    writes, rank = _local_write_table(config), _rank(config)
    meaning = {
        **{k: v for k, v in config.instances["lapor-hendi-semarang"].spec.statuses.items()},
        **config.instances["sp4n"].spec.statuses,
    }
    statuses_checked = follow_ups_checked = reasons = secret_out = secret_in = files_out = files_in = 0
    for local_id, ref in local_links.items():
        hub_c = hub_by_ref[ref]
        hub_follow_ups = world.hub.follow_ups(hub_c["id"])
        local_follow_ups = world.local.follow_ups(local_id)
        hub_logs = world.hub.logs(hub_c["id"])

        # 2. Every hub officer's follow-up is at the local app exactly once (confidential ones as
        #    rahasia, with their evidence files); nothing the gateway wrote locally came back to
        #    the hub.
        officers = [f for f in hub_follow_ups if f["source"] == "officer"]
        status_notes = [t for t in local_follow_ups if t["sumber"] == "eksternal" and t["isi"].startswith(NOTE)]
        written = [t for t in local_follow_ups if t["sumber"] == "eksternal" and not t["isi"].startswith(NOTE)]
        officer_texts = Counter(f["content"] for f in officers)
        written_texts = Counter(t["isi"] for t in written)
        assert written_texts == officer_texts
        local_by_id = {str(t["id_tanggapan"]): t for t in local_follow_ups}
        hub_by_id = {str(f["id"]): f for f in hub_follow_ups}
        for f in officers:
            [mirror_id] = [local for origin, local, hub in pairs if origin == "sp4n" and hub == str(f["id"])]
            mirror = local_by_id[mirror_id]
            assert mirror["isi"] == f["content"] and mirror["sumber"] == "eksternal"
            assert bool(mirror["rahasia"]) == bool(f["is_secret"])
            assert len(mirror["lampiran"]) == len(f["attachments"])
            secret_in += bool(f["is_secret"])
            files_in += len(f["attachments"])
        follow_ups_checked += sum(officer_texts.values())

        # 3. Every local officer's follow-up is at the hub exactly once (rahasia as is_secret, with
        #    its files), and nothing the gateway wrote to the hub came back to the local app.
        local_own = [t for t in local_follow_ups if t["sumber"] == "lapor_hendi"]
        at_hub = [f for f in hub_follow_ups if f["source"] == "api"]
        assert Counter(f["content"] for f in at_hub) == Counter(t["isi"] for t in local_own)
        for t in local_own:
            [copy_id] = [hub for origin, local, hub in pairs if origin != "sp4n" and local == str(t["id_tanggapan"])]
            copy = hub_by_id[copy_id]
            assert copy["content"] == t["isi"] and copy["source"] == "api"
            assert int(copy["is_secret"]) == int(bool(t["rahasia"]))
            assert len(copy["attachments"]) == len(t["lampiran"])
            secret_out += bool(t["rahasia"])
            files_out += len(t["lampiran"])
        assert all(str(f["institution_from_id"]) == GATEWAY_INSTITUTION for f in at_hub)

        # 4. Every hub status change reached the local app once, in order, translated; never one
        #    that would move the citizen's status back (forward_only), nor one it already showed.
        #    A hub status that is not written (the app shows it already, or it would move back) still
        #    reaches the citizen as a follow-up when it is news: a reason, or another meaning.
        history = world.local.status_history(local_id)
        expected_writes, expected_final, expected_notes = _expected_local_statuses(
            history, writes, rank, hub_logs, meaning
        )
        assert [h["status_baru"] for h in history if h["sumber"] == "eksternal"] == expected_writes
        assert local_complaints[local_id]["status"] == expected_final
        assert [t["isi"].splitlines()[0] for t in status_notes] == [f"{NOTE} {name}" for name in expected_notes]
        # The hub's reasons reach the citizen (a hold asks the reporter for more data).
        shown = [h.get("keterangan") or "" for h in history if h["sumber"] == "eksternal"] + [
            t["isi"] for t in status_notes
        ]
        for entry in hub_logs:
            if entry["kind"] == "status" and entry["status_old"] is not None and entry["reason"]:
                assert any(entry["reason"] in text for text in shown), "a hub status's reason did not reach the app"
                reasons += 1
        statuses_checked += len(hub_logs)

    assert statuses_checked > 30 and follow_ups_checked > 10 and reasons > 0
    assert secret_in + secret_out > 0 and files_in > 0 and files_out > 0, "the simulators should have made some"

    # The status view counts what the simulators saw.
    local_row = next(r for r in report["instances"] if r["name"] == "lapor-hendi-semarang")
    assert local_row["complaints_seen"] == len(local_complaints)
    assert local_row["complaints_created_at_hub"] == len(hub_complaints)
    assert (
        local_row["follow_ups_from_hub"] + local_row["status_notes_from_hub"]
        == world.local.counts()["follow_ups_from_gateway"]
    )
    assert local_row["follow_ups_to_hub"] == world.hub.counts()["follow_ups_from_gateway"]
    assert local_row["deliveries_owed"] == 0 and local_row["deliveries_parked"] == 0

    # 5. No personal data in any log line.
    text = logs.getvalue()
    assert "complaint created at hub" in text
    for complaint in local_complaints.values():
        reporter = complaint["pelapor"]
        if reporter:
            for value in (reporter["nama"], reporter["nik"], reporter["telepon"], reporter["email"]):
                assert value not in text
            # ... and none at the hub either (it only gets the gateway's account id).
            hub_c = hub_by_ref[local_links[complaint["id_aduan"]]]
            assert reporter["nik"] not in json.dumps(hub_c, default=str)
            assert reporter["nama"] not in hub_c["content"]


def _expected_local_statuses(history, writes, rank, hub_logs, meaning) -> tuple[list[str], str, list[str]]:
    """What the gateway should have written to the local app, the status it should end at,
    and the hub statuses whose note it should have written as a follow-up instead: each hub
    status, translated, unless the local app already showed it or it would move the status
    back in the app's status_order; then its note, when the hub gave a reason or the hub's
    status means something else than the local one (``meaning``: canonical of either side)."""
    expected, notes, current, current_meaning = [], [], None, None
    events = sorted(
        [
            ("hub", entry["created_at"], entry)
            for entry in hub_logs
            if entry["kind"] == "status" and entry["status_old"] is not None
        ]  # the first is not a change
        + [("local", _utc(h["dibuat_pada"]), h) for h in history if h["sumber"] != "eksternal"],
        key=lambda e: (e[1], e[0] == "hub"),
    )
    for origin, _when, item in events:
        if origin == "local":
            current = item["status_baru"]
            current_meaning = meaning[current]
            continue
        status = writes[item["status_new"]]
        if status != current and (current is None or rank[status] >= rank[current]):
            expected.append(status)
            current, current_meaning = status, meaning[status]
        elif item["reason"] or meaning[item["status_new"]] != current_meaning:
            notes.append(item["status_new"])
    return expected, current, notes


def _utc(text: str):
    from datetime import datetime

    from gateway import WIB, to_utc

    return to_utc(datetime.strptime(text, "%Y-%m-%d %H:%M:%S"), WIB)


async def test_a_second_engine_on_the_same_store_repeats_nothing(world, tmp_path: Path, store_url: str):
    """A restart (a new engine, a new process in real life) picks up from the store."""
    config = world.config(tmp_path, store_url)
    store = Store(store_url)
    try:
        await _run(world, config, store, rounds=4, settle=2)
        before_hub, before_local = world.hub.counts(), world.local.counts()
        async with Engine(config, Store(store_url)) as engine:
            for _ in range(3):
                await engine.run_pass()
        assert world.hub.counts()["complaints"] == before_hub["complaints"]
        assert world.hub.counts()["follow_ups_from_gateway"] == before_hub["follow_ups_from_gateway"]
        assert world.local.counts()["follow_ups_from_gateway"] == before_local["follow_ups_from_gateway"]
        assert world.local.counts()["status_changes_from_gateway"] == before_local["status_changes_from_gateway"]
    finally:
        store.close()
