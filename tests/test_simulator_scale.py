"""The simulators at scale: sorted list indexes that page like a naive filter and sort,
fast seeding of a city's history, the hub's preload and change model, its master
data and forwarding endpoints, and the request counts by route.

Deterministic and seeded; no assertion is about time.
"""

from __future__ import annotations

import json
import random
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.lapor_hendi._world import TimeIndex, read_time, stored_png_size, tiny_png
from lapor_gateway_adapters.lapor_hendi.simulator import LaporHendiSimulator
from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator as lapor_hendi_simulator
from lapor_gateway_adapters.sp4n._world import AGENCIES, CLOSED, INSTITUTION_TABLE, TEMPLATES
from lapor_gateway_adapters.sp4n.simulator import Sp4nSimulator
from lapor_gateway_adapters.sp4n.simulator import create_simulator as sp4n_simulator

LIST_TIME = {"aduan": "diperbarui_pada", "tanggapan": "dibuat_pada", "riwayat": "dibuat_pada"}
LIST_ID = {"aduan": "id_aduan", "tanggapan": "id_tanggapan", "riwayat": "id_riwayat"}
LIST_PATH = {
    "aduan": ("/api/v1/aduan", "diperbarui_sejak"),
    "tanggapan": ("/api/v1/tanggapan", "sejak"),
    "riwayat": ("/api/v1/riwayat-status", "sejak"),
}
STATUSES = ("belum terverifikasi", "terverifikasi", "dalam proses", "selesai", "ditolak")


# --- helpers -----------------------------------------------------------------------------------


def naive(sim: LaporHendiSimulator, kind: str, since: datetime | None) -> list[int]:
    """The ids of a list as the API orders them, the slow way: every record, filtered, sorted."""
    complaints = sim.complaints()
    if kind == "aduan":
        rows = complaints
    elif kind == "tanggapan":
        rows = [t for c in complaints for t in sim.follow_ups(c["id_aduan"])]
    else:
        rows = [h for c in complaints for h in sim.status_history(c["id_aduan"])]
    keyed = [(read_time(r[LIST_TIME[kind]]), r[LIST_ID[kind]]) for r in rows]
    return [ident for at, ident in sorted(keyed) if since is None or at >= since]


def change_some(sim: LaporHendiSimulator, rng: random.Random, ids: list[int]) -> None:
    """Between two pages: statuses, tanggapan and new complaints, a few minutes later."""
    sim.clock.advance(rng.randint(1, 600))
    now = sim.clock.now()
    with sim.lock:
        for _ in range(rng.randint(1, 6)):
            ident = rng.choice(ids)
            if rng.random() < 0.5:
                sim.world.set_status(ident, rng.choice(STATUSES), oleh="Tes", sumber="eksternal", ref=None, now=now)
            else:
                sim.world.add_tanggapan(ident, "Ditinjau.", oleh="Tes", sumber="eksternal", ref=None, now=now)
    for _ in range(rng.randint(0, 2)):
        ids.append(sim.submit_complaint(lampiran=0))


def local_client(sim: LaporHendiSimulator, server: SimulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-Api-Key": sim.api_key})


def hub_client(sim: Sp4nSimulator, server: SimulatorServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": sim.authorization, "token": sim.token, "Accept": "application/json"},
    )


HUB_CREATE = {
    "title": "t",
    "content": "c",
    "channel": 1,
    "user_id": 58231,
    "classification_id": 1,
    "disposition_id": 100234,
    "category_id": 43,
    "location_id": 11,
    "attachments": "[]",
}


@pytest.fixture(scope="module")
def big_local() -> LaporHendiSimulator:
    """3,000 complaints over 60 days (their history, most closed), then 50 filed ten minutes apart."""
    sim = lapor_hendi_simulator(seed=21, clock=SimClock(), initial_complaints=3000, history_days=60)
    sim.officers_active = False
    for _ in range(50):
        sim.clock.advance(600)
        sim.submit_complaint()
    return sim


@pytest.fixture
def hub() -> Iterator[tuple[Sp4nSimulator, SimulatorServer]]:
    sim = sp4n_simulator(seed=5, clock=SimClock())
    sim.quiesce()
    with SimulatorServer(sim, port=0) as server:
        yield sim, server


# --- Lapor Hendi: sorted indexes ------------------------------------------------------------------


def test_time_index_orders_by_time_then_id_and_moves_a_key() -> None:
    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    rows = {7: {"t": at}, 3: {"t": at}, 5: {"t": at - timedelta(seconds=1)}}
    index = TimeIndex(rows, "t")
    for ident in rows:
        index.add(ident)
    assert index.slice(0, 3) == [rows[5], rows[3], rows[7]] and len(index) == 3
    assert index.first(at) == 1 and index.first(at - timedelta(microseconds=1)) == 1  # inclusive, to the second
    assert index.first(at + timedelta(microseconds=1)) == 3 and index.first(None) == 0
    rows[3]["t"] = at + timedelta(hours=1)
    index.move(3, at, rows[3]["t"])
    assert index.slice(0, 5) == [rows[5], rows[7], rows[3]] and index.slice(5, 9) == []
    with pytest.raises(KeyError, match="out of step"):  # not where the caller says it was
        index.move(3, at - timedelta(days=1), at)


@pytest.mark.parametrize("kind", ["aduan", "tanggapan", "riwayat"])
def test_paging_while_the_world_changes_serves_what_a_naive_filter_and_sort_would(big_local, kind: str) -> None:
    sim, rng = big_local, random.Random(kind)
    ids = [c["id_aduan"] for c in sim.complaints()]
    now = sim.clock.now()
    for since in (None, now - timedelta(days=20), now - timedelta(minutes=30)):
        expected_total = None
        for halaman in range(1, 9):
            per_halaman = rng.choice((7, 50, 100))
            with sim.lock:
                total, rows = sim.world.page(kind, since, (halaman - 1) * per_halaman, halaman * per_halaman)
            order = naive(sim, kind, since)
            assert total == len(order)
            assert [r[LIST_ID[kind]] for r in rows] == order[(halaman - 1) * per_halaman : halaman * per_halaman]
            expected_total = total
            change_some(sim, rng, ids)
        assert expected_total is not None


def test_pages_over_http_match_the_naive_order_meta_and_a_page_shift(big_local) -> None:
    sim = big_local
    since = sim.clock.now() - timedelta(days=15)
    with SimulatorServer(sim, port=0) as server, local_client(sim, server) as client:
        for kind, (path, filter_name) in LIST_PATH.items():
            order = naive(sim, kind, since)
            params = {filter_name: (since + timedelta(hours=7)).strftime("%Y-%m-%d %H:%M:%S"), "per_halaman": 40}
            seen: list[int] = []
            halaman = 1
            while True:
                body = client.get(path, params={**params, "halaman": halaman}).json()
                assert body["meta"] == {
                    "halaman": halaman,
                    "per_halaman": 40,
                    "total": len(order),
                    "total_halaman": max(1, -(-len(order) // 40)),
                }
                seen += [r[LIST_ID[kind]] for r in body["data"]]
                if halaman >= body["meta"]["total_halaman"]:
                    break
                halaman += 1
            assert seen == order
            sim.faults.configure(page_shift_rate=1.0)  # page 1 is never shifted; page 2 starts one off
            first = client.get(path, params={**params, "halaman": 1}).json()
            shifted = client.get(path, params={**params, "halaman": 2}).json()
            sim.faults.configure(page_shift_rate=0.0)
            assert [r[LIST_ID[kind]] for r in first["data"]] == order[:40]
            ids = [r[LIST_ID[kind]] for r in shifted["data"]]
            assert ids in (order[39:80], order[41:81])  # a repeat or a skip
            assert shifted["meta"]["total"] == len(order)
        beyond = client.get("/api/v1/aduan", params={"halaman": 10_000, "per_halaman": 100}).json()
        assert beyond["data"] == [] and beyond["meta"]["total"] == len(sim.complaints())


# --- Lapor Hendi: seeding a history -----------------------------------------------------------------


def test_seeding_a_history_spreads_complaints_over_the_span_most_closed() -> None:
    clock = SimClock()
    sim = lapor_hendi_simulator(seed=4, clock=clock, initial_complaints=2000, history_days=400)
    now, start = clock.now(), clock.now() - timedelta(days=400)
    complaints = sim.complaints()
    assert len(complaints) == 2000 == sim.counts()["complaints"]
    assert [c["id_aduan"] for c in complaints] == list(range(1, 2001))
    created = [read_time(c["dibuat_pada"]) for c in complaints]
    assert created == sorted(created)  # filed in id order
    assert all(start - timedelta(seconds=1) <= at <= now for at in created)
    assert created[0] < start + timedelta(days=2) and created[-1] > now - timedelta(days=2)  # the whole span
    assert all(created[i] <= read_time(c["diperbarui_pada"]) <= now for i, c in enumerate(complaints))

    statuses = Counter(c["status"] for c in complaints)
    assert statuses["selesai"] + statuses["ditolak"] > 0.9 * 2000 and statuses["ditolak"] < statuses["selesai"]
    assert statuses["belum terverifikasi"] + statuses["dalam proses"] > 0  # the last days' are still open
    answered = [c for c in complaints if sim.follow_ups(c["id_aduan"])]
    assert 0.1 * 2000 < len(answered) < 0.8 * 2000  # a few follow-ups, on some
    for c in complaints[:200]:
        history = sim.status_history(c["id_aduan"])
        assert history[0]["status_lama"] is None and history[-1]["status_baru"] == c["status"]
        assert [h["status_lama"] for h in history[1:]] == [h["status_baru"] for h in history[:-1]]
        assert history[-1]["dibuat_pada"] <= c["diperbarui_pada"]
    for r in complaints:
        if r["pelapor"]:  # personal data as generated for every complaint: fake, plausible
            assert r["pelapor"]["nik"].startswith("3374") and len(r["pelapor"]["nik"]) == 16
            assert r["pelapor"]["telepon"].startswith("08") and len(r["pelapor"]["telepon"]) in (11, 12)
        else:
            assert r["anonim"]

    again = lapor_hendi_simulator(seed=4, clock=SimClock(), initial_complaints=2000, history_days=400)
    assert again.complaints() == complaints and again.counts() == sim.counts()
    other = lapor_hendi_simulator(seed=5, clock=SimClock(), initial_complaints=2000, history_days=400)
    assert other.complaints() != complaints


def test_a_short_history_leaves_most_open_and_the_simulator_goes_on_from_it() -> None:
    clock = SimClock()
    sim = lapor_hendi_simulator(seed=8, clock=clock, initial_complaints=300, history_days=0.5)
    statuses = Counter(c["status"] for c in sim.complaints())
    assert statuses["belum terverifikasi"] + statuses["dalam proses"] > 200
    before = sim.counts()
    for _ in range(5):
        clock.advance(600)
        sim.tick()
    after = sim.counts()
    assert after["complaints"] > before["complaints"]
    assert after["follow_ups_by_officers"] > before["follow_ups_by_officers"]
    with pytest.raises(ValueError, match="history_days"):
        lapor_hendi_simulator(initial_complaints=3, history_days=0)


def test_photos_of_a_seeded_history_are_made_when_downloaded_and_are_valid() -> None:
    for width in range(32, 57):
        for height in (24, 31, 40):
            assert len(tiny_png(random.Random(width), width, height, level=0)) == stored_png_size(width, height)
    sim = lapor_hendi_simulator(seed=2, clock=SimClock(), initial_complaints=60, history_days=30)
    photos = [p for c in sim.complaints() for p in c["lampiran"]]
    assert photos
    with SimulatorServer(sim, port=0) as server, local_client(sim, server) as client:
        for photo in photos[:5]:
            answer = client.get(f"/api/v1/lampiran/{photo['id_lampiran']}")
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            assert answer.content.startswith(b"\x89PNG\r\n\x1a\n") and len(answer.content) == photo["ukuran_byte"]
            width, height = struct.unpack(">II", answer.content[16:24])
            assert 32 <= width <= 56 and 24 <= height <= 40
            assert client.get(f"/api/v1/lampiran/{photo['id_lampiran']}").content == answer.content


# --- the hub: preload and the change model --------------------------------------------------------


def _consistent(sim: Sp4nSimulator, changes: list[dict[str, Any]]) -> None:
    """Each recorded change is in the hub's own records, at its time, and nothing else changed."""
    by_complaint: dict[int, list[dict[str, Any]]] = {}
    for change in changes:
        by_complaint.setdefault(change["complaint_id"], []).append(change)
    for complaint_id, recorded in by_complaint.items():
        logs = {str(entry["id"]): entry for entry in sim.logs(complaint_id)}
        notes = {str(f["id"]): f for f in sim.follow_ups(complaint_id) if f["source"] == "officer"}
        for change in recorded:
            found = logs if change["kind"] == "status" else notes
            record = found[change["ref"]]
            assert record["created_at"] == change["at"]
            if change["kind"] == "status":
                assert record["status_new"] == change["status"]
        assert {c["ref"] for c in recorded if c["kind"] == "status"} == {
            ref for ref, entry in logs.items() if entry["status_old"] is not None
        }
        assert {c["ref"] for c in recorded if c["kind"] == "follow_up"} == set(notes)


def test_preload_puts_complaints_at_the_hub_as_the_gateway_would_have() -> None:
    clock = SimClock()
    sim = sp4n_simulator(seed=9, clock=clock)
    tags = [f"lapor-gateway,gw-{n:05d}" for n in range(1000)]
    ids = sim.preload(tags)
    assert ids == list(range(4_000_001, 4_001_001))
    complaints = sim.complaints()
    assert [c["tags_raw"] for c in complaints] == tags
    assert all(c["status_name"] == "Belum Terverifikasi" and c["created_at"] == clock.now() for c in complaints)
    assert {c["category_id"] for c in complaints} == {str(n) for n in range(41, 50)}
    assert sim.counts()["complaints"] == sim.counts()["open_complaints"] == 1000 and sim.counts()["requests"] == 0
    assert [entry["status_new"] for entry in sim.logs(ids[5])] == ["Belum Terverifikasi"]
    later = sim.preload(["lapor-gateway,gw-x"], at=clock.now() - timedelta(days=3))
    assert later == [4_001_001] and sim.complaints()[-1]["created_at"] == clock.now() - timedelta(days=3)
    with SimulatorServer(sim, port=0) as server, hub_client(sim, server) as client:
        read = client.get(f"/complaints/{ids[-1]}/complaint").json()["results"]
        assert read["data"]["tags_raw"] == tags[-1] and read["data"]["status_name"] == "Belum Terverifikasi"
        assert client.get(f"/complaints/{ids[0]}/followups").json()["results"]["data"] == []
        created = client.post("/complaints/complaint", json=HUB_CREATE)
        assert created.status_code == 200 and sim.counts()["complaints"] == 1002  # ids go on after the preload


def test_the_change_model_changes_its_share_of_open_complaints_and_records_each_change() -> None:
    clock = SimClock()
    sim = sp4n_simulator(seed=13, clock=clock, change_rate_per_hour=0.1)
    ids = sim.preload([f"gw-{n}" for n in range(800)])
    clock.advance(3600)
    sim.tick()
    first = sim.changes()
    assert len(first) == 80  # 0.1 of 800 open complaints in one simulated hour
    assert len({c["complaint_id"] for c in first}) == 80 and all(c["at"] == clock.now() for c in first)
    assert {(c["kind"], c["status"]) for c in first} == {("status", "Terverifikasi")}
    for _ in range(47):
        clock.advance(1800)
        sim.tick()
    changes = sim.changes()
    assert changes[:80] == first and sim.changes(since=80) == changes[80:]
    assert {c["kind"] for c in changes} == {"status", "follow_up"}
    assert {c["status"] for c in changes if c["kind"] == "status"} == {
        "Terverifikasi",
        "Didisposisi",
        "Dalam Proses",
        "Selesai",
    }
    _consistent(sim, changes)
    counts = sim.counts()
    assert counts["changes"] == len(changes) and counts["open_complaints"] < 800
    assert counts["open_complaints"] == sum(1 for c in sim.complaints() if c["status_name"] not in CLOSED)
    done = next(c for c in changes if c.get("status") == "Selesai")
    disposed = [entry for entry in sim.logs(done["complaint_id"]) if entry["status_new"] == "Didisposisi"]
    assert disposed and disposed[0]["institution_to_id"] in AGENCIES
    assert set(ids) >= {c["complaint_id"] for c in changes}

    twin = sp4n_simulator(seed=13, clock=SimClock(), change_rate_per_hour=0.1)  # the same seed: the same changes
    twin.preload([f"gw-{n}" for n in range(800)])
    for hours in [1.0] + [0.5] * 47:
        twin.clock.advance(hours * 3600)
        twin.tick()
    assert [(c["complaint_id"], c["kind"], c["ref"]) for c in twin.changes()] == [
        (c["complaint_id"], c["kind"], c["ref"]) for c in changes
    ]

    sim.quiesce()
    clock.advance(10 * 3600)
    sim.tick()
    sim.resume()  # the change model counts its hours from here: the quiet ten hours are not made up
    clock.advance(3600)
    sim.tick()
    open_before = counts["open_complaints"]
    assert len(sim.changes(since=len(changes))) in (int(0.1 * open_before), int(0.1 * open_before) + 1)


def test_the_officers_changes_are_recorded_too_and_the_rate_can_change_at_run_time() -> None:
    clock = SimClock()
    sim = sp4n_simulator(seed=3, clock=clock)  # no change rate: the officers roll for every open complaint
    sim.preload([f"gw-{n}" for n in range(60)])
    for _ in range(20):
        clock.advance(90 * 60)
        sim.tick()
    changes = sim.changes()
    assert len(changes) > 60 and {c["kind"] for c in changes} == {"status", "follow_up"}
    _consistent(sim, changes)
    sim.set_change_rate(0.0)
    clock.advance(3600)
    sim.tick()
    assert sim.changes(since=len(changes)) == []
    with pytest.raises(ValueError, match="change_rate_per_hour"):
        sim.set_change_rate(-1)
    with pytest.raises(ValueError, match="change_rate_per_hour"):
        sp4n_simulator(change_rate_per_hour="fast")


def test_unknown_status_codes_apply_to_the_change_model() -> None:
    clock = SimClock()
    sim = sp4n_simulator(seed=1, clock=clock, change_rate_per_hour=1.0, faults={"unknown_status_codes": True})
    sim.preload([f"gw-{n}" for n in range(20)])
    clock.advance(3600)
    sim.tick()
    assert {c["status"] for c in sim.changes()} == {"Koordinasi"} and sim.faults.injected["unknown_statuses"] == 20
    clock.advance(3600)
    sim.tick()  # already at koordinasi while the fault is on: a follow-up instead
    assert {c["kind"] for c in sim.changes(since=20)} == {"follow_up"}
    sim.faults.configure(unknown_status_codes=False)
    clock.advance(3600)
    sim.tick()
    assert {c["status"] for c in sim.changes(since=40)} == {"Dalam Proses"}


# --- the hub: master data and forwarding ------------------------------------------------------------


def test_master_data_endpoints(hub) -> None:
    sim, server = hub
    with hub_client(sim, server) as client:
        answer = client.get("/masters/institutions/external", params={"page_size": 1000, "page": 1}).json()
        assert answer["success"] is True
        results = answer["results"]
        assert (results["page"], results["page_size"], results["total"]) == (1, 1000, len(INSTITUTION_TABLE))
        assert 35 <= results["total"] <= 50
        rows = results["data"]
        assert all(set(row) == {"id", "name", "code", "parent_id"} and isinstance(row["id"], int) for row in rows)
        assert len({row["id"] for row in rows}) == len({row["code"] for row in rows}) == len(rows)
        by_id = {row["id"]: row for row in rows}
        assert by_id[100234]["name"] == "Pemerintah Kota Semarang" and by_id[100234]["parent_id"] is None
        assert by_id[200101] == {
            "id": 200101,
            "name": "Dinas Pekerjaan Umum Kota Semarang",
            "code": "3374-DPU",
            "parent_id": 100234,
        }
        assert any("Provinsi Jawa Tengah" in row["name"] for row in rows)

        second = client.get("/masters/institutions/external", params={"page_size": 10, "page": 2}).json()["results"]
        assert second["data"] == rows[10:20] and (second["page"], second["total"]) == (2, len(rows))
        past = client.get("/masters/institutions/external", params={"page_size": 1000, "page": 2}).json()
        assert past["results"]["data"] == []
        for bad in ({"page_size": 0}, {"page_size": 1001}, {"page": 0}, {"page_size": "many"}):
            refused = client.get("/masters/institutions/external", params=bad)
            assert refused.status_code == 422 and refused.json()["success"] is False

        templates = client.get("/masters/templates").json()["results"]["data"]
        assert templates == TEMPLATES and len(templates) >= 3
        assert all(set(t) == {"id", "code", "name", "content"} for t in templates)
        assert client.get("/masters/templates", headers={"token": "wrong"}).status_code == 401


def test_forwarding_bukan_wewenang_moves_the_disposition_and_logs_it(hub) -> None:
    sim, server = hub
    first, second, third = sim.preload(["gw-1", "gw-2", "gw-3"])

    def forward(ident: int, target: Any, text: str = "Bukan wewenang kota.") -> httpx.Response:
        return client.post(
            f"/complaints/process/{ident}/reject",
            json={"is_request": 1, "reason": target, "reason_description": text, "not_authority": 1},
        )

    with hub_client(sim, server) as client:
        answer = forward(first, 300101, "Jalan provinsi.")
        assert answer.status_code == 200 and answer.json()["success"] is True
        data = answer.json()["results"]["data"]
        assert (data["status_name"], data["disposition_id"]) == ("Didisposisi", 300101)
        assert data["disposition_name"] == "Dinas Pekerjaan Umum Bina Marga dan Cipta Karya Provinsi Jawa Tengah"
        [entry] = sim.logs(first)[1:]
        assert {
            k: entry[k]
            for k in ("kind", "institution_from_id", "institution_to_id", "status_old", "status_new", "reason")
        } == {
            "kind": "status",
            "institution_from_id": "100234",
            "institution_to_id": "300101",
            "status_old": "Belum Terverifikasi",
            "status_new": "Didisposisi",
            "reason": "Jalan provinsi.",
        }

        again = forward(first, "200108", "Urusan dinsos.")  # the id as a digit string: Laravel's integer rule
        assert again.status_code == 200 and again.json()["results"]["data"]["disposition_id"] == 200108
        read = client.get(f"/complaints/{first}/complaint").json()["results"]
        last = read["data_logs"][-1]
        assert json.loads(last["data"]) == {"reason_description": "Urusan dinsos."}  # already Didisposisi
        assert "{{institution_to_link}}" in last["content"]
        assert (last["institution_from_name"], last["institution_to_name"]) == (
            "Dinas Pekerjaan Umum Bina Marga dan Cipta Karya Provinsi Jawa Tengah",
            "Dinas Sosial Kota Semarang",
        )
        assert read["data"]["disposition_id"] == 200108

        rejected = client.post(
            f"/complaints/process/{second}/reject",
            json={"is_request": 1, "not_authority": 0, "reason_description": "Tidak jelas."},
        )
        assert rejected.status_code == 200 and rejected.json()["results"]["data"]["status_name"] == "Ditolak"

        def refused(path_id: int, body: dict[str, Any], status: int, fields: set[str]) -> None:
            answer = client.post(f"/complaints/process/{path_id}/reject", json=body)
            assert answer.status_code == status and answer.json()["success"] is False
            assert set(answer.json().get("errors", {})) == fields

        ok = {"is_request": 1, "reason": 200101, "reason_description": "Bukan wewenang.", "not_authority": 1}
        refused(4_999_999, ok, 404, set())
        refused(third, {**ok, "reason": 999999}, 422, {"reason"})
        refused(third, {**ok, "reason": "Dinas Pekerjaan Umum"}, 422, {"reason"})  # free text is not an id
        refused(third, {k: v for k, v in ok.items() if k != "reason"}, 422, {"reason"})
        refused(third, {**ok, "reason_description": ""}, 422, {"reason_description"})
        refused(third, {k: v for k, v in ok.items() if k != "not_authority"}, 422, {"not_authority"})
        refused(third, {**ok, "not_authority": "maybe"}, 422, {"not_authority"})
        as_form = client.post(f"/complaints/process/{third}/reject", data={k: str(v) for k, v in ok.items()})
        assert as_form.status_code == 422 and {"not_authority", "reason_description"} <= set(as_form.json()["errors"])
    assert [entry["status_new"] for entry in sim.logs(third)] == ["Belum Terverifikasi"]  # nothing refused was done
    counts = sim.counts()
    assert (counts["forwards"], counts["rejects"], counts["status_changes"]) == (2, 1, 2)
    assert counts["changes"] == 0  # API actions are not the simulated people's changes
    assert counts["requests_by_route"]["POST /complaints/process/{id}/reject"] == 11


# --- request counts by route, and the command line ----------------------------------------------------


def test_requests_are_counted_by_route_template() -> None:
    hub_sim = sp4n_simulator(seed=1, clock=SimClock())
    (ident,) = hub_sim.preload(["gw-1"])
    local_sim = lapor_hendi_simulator(seed=1, clock=SimClock(), initial_complaints=3)
    with SimulatorServer(hub_sim, port=0) as hub_server, hub_client(hub_sim, hub_server) as client:
        for _ in range(3):
            client.get(f"/complaints/{ident}/complaint")
        client.get(f"/complaints/{ident}/followups")
        client.get("/masters/templates")
        client.get("/no/such/path")
        httpx.get(hub_server.control_url)  # control endpoints are not counted
    assert hub_sim.counts()["requests_by_route"] == {
        "GET /complaints/{id}/complaint": 3,
        "GET /complaints/{id}/followups": 1,
        "GET /masters/templates": 1,
        "GET (no route)": 1,
    }
    assert hub_sim.counts()["requests"] == 6
    with SimulatorServer(local_sim, port=0) as local_server, local_client(local_sim, local_server) as client:
        client.get("/api/v1/aduan")
        client.get("/api/v1/aduan", headers={"X-Api-Key": "wrong"})
        client.post("/api/v1/aduan/1/status", json={"status": "dalam proses", "ref_eksternal": "r1"})
    assert local_sim.counts()["requests_by_route"] == {"GET /api/v1/aduan": 2, "POST /api/v1/aduan/{id}/status": 1}


def test_simulate_checks_the_lapor_hendi_options_before_starting() -> None:
    from gateway.cli._commands import app

    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "lapor_hendi", "--history-days", "0"])
    assert result.exit_code == 2 and "--history-days" in result.output
    result = runner.invoke(app, ["simulate", "lapor_hendi", "--initial-complaints", "-5"])
    assert result.exit_code == 2 and "--initial-complaints" in result.output
    result = runner.invoke(app, ["simulate", "sp4n", "--initial-complaints", "10"])
    assert result.exit_code == 2 and "lapor_hendi" in result.output


def test_simulator_options_reach_the_factory() -> None:
    from gateway.cli._demo import _start

    servers = _start(
        ["lapor_hendi", "sp4n"],
        seed=1,
        clock=SimClock(),
        port=None,
        options={"lapor_hendi": {"initial_complaints": 40, "history_days": 30}},
        free_ports=True,
    )
    try:
        local = servers["lapor_hendi"].simulator
        assert local.counts()["complaints"] == 40
        assert sum(1 for c in local.complaints() if c["status"] in ("selesai", "ditolak")) > 20
        assert servers["sp4n"].simulator.counts()["complaints"] == 0
        assert all(server.port not in (8701, 8702) for server in servers.values())
    finally:
        for server in servers.values():
            server.stop()
