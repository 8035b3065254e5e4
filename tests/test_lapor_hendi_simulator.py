"""The Lapor Hendi simulator over real HTTP (loopback, port 0): tanggapan with files and
rahasia, the hub's tracking id (nomor_lapor), the "2xx that is not a success" fault
(error_body_rate), the officers' evidence photos and confidential answers, and the
adapter against all of it.

Deterministic: seeded simulators, a clock that only moves when told, no sleeps.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import gateway
from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    FollowUp,
    InstanceContext,
    PermanentPeerError,
    RawStatus,
    RetryPolicy,
    TransientPeerError,
)
from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp
from lapor_gateway_adapters.lapor_hendi.simulator import ERROR_BODY_PESAN, LaporHendiSimulator
from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator as lapor_hendi_simulator

UTC = UTC
NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.001, max_wait=0.001)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3
PDF = b"%PDF-1.4\n% berita acara\n"
MIB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def local() -> Iterator[tuple[LaporHendiSimulator, SimulatorServer]]:
    sim = lapor_hendi_simulator(seed=13, clock=SimClock(), initial_complaints=6)
    sim.officers_active = False
    with SimulatorServer(sim, port=0) as server:
        yield sim, server


def client(sim: LaporHendiSimulator, server: SimulatorServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-Api-Key": sim.api_key}, timeout=30)


def make_app(sim: LaporHendiSimulator, server: SimulatorServer, retry: RetryPolicy = NO_RETRY) -> LaporHendiApp:
    context = InstanceContext(
        name="lapor-hendi-semarang",
        base_url=server.base_url,
        timezone=gateway.WIB,
        secrets={"api_key": sim.api_key},
        settings=LaporHendiApp.Settings(),
        retry=retry,
    )
    return LaporHendiApp(context, client=httpx.AsyncClient())


def upload(nama: str, mime: str, data: bytes) -> dict[str, str]:
    return {"nama_file": nama, "tipe_mime": mime, "konten_base64": base64.b64encode(data).decode()}


def record(sim: LaporHendiSimulator, id_aduan: int) -> dict[str, Any]:
    return next(r for r in sim.complaints() if r["id_aduan"] == id_aduan)


# --- tanggapan with files and rahasia -------------------------------------------------------------


def test_a_tanggapan_with_files_and_rahasia_is_listed_and_its_files_download(local) -> None:
    sim, server = local
    with client(sim, server) as c:
        answer = c.post(
            "/api/v1/aduan/2/tanggapan",
            json={
                "isi": "Perbaikan selesai.",
                "oleh": "LAPOR!-SP4N",
                "ref_eksternal": "gw-fu-1",
                "rahasia": True,
                "lampiran": [
                    upload("bukti.jpg", "image/JPEG", JPEG),
                    upload('berita acara "final".pdf', "application/pdf", PDF),
                ],
            },
        )
        assert answer.status_code == 200
        id_tanggapan = answer.json()["data"]["id_tanggapan"]
        assert answer.json() == {"status": "sukses", "data": {"id_tanggapan": id_tanggapan}}

        [listed] = [t for t in c.get("/api/v1/tanggapan").json()["data"] if t["id_tanggapan"] == id_tanggapan]
        assert listed["rahasia"] is True and listed["sumber"] == "eksternal"
        assert [(f["nama_file"], f["tipe_mime"], f["ukuran_byte"]) for f in listed["lampiran"]] == [
            ("bukti.jpg", "image/jpeg", len(JPEG)),
            ('berita acara "final".pdf', "application/pdf", len(PDF)),
        ]
        for item, data in zip(listed["lampiran"], (JPEG, PDF)):
            got = c.get(f"/api/v1/lampiran/{item['id_lampiran']}", headers={"Accept": "*/*"})
            assert got.status_code == 200 and got.content == data
            assert got.headers["content-type"] == item["tipe_mime"]
        got = c.get(f"/api/v1/lampiran/{listed['lampiran'][1]['id_lampiran']}")
        assert got.headers["content-disposition"] == 'attachment; filename="berita acara \\"final\\".pdf"'

        plain = c.post("/api/v1/aduan/2/tanggapan", json={"isi": "Tanpa berkas.", "ref_eksternal": "gw-fu-2"})
        assert plain.status_code == 200
    assert sim.follow_up_files(id_tanggapan) == [
        ("bukti.jpg", "image/jpeg", JPEG),
        ('berita acara "final".pdf', "application/pdf", PDF),
    ]
    assert sim.attachment(listed["lampiran"][0]["id_lampiran"]) == ("bukti.jpg", "image/jpeg", JPEG)
    assert sim.attachment(999_999) is None
    last = sim.follow_ups(2)[-1]
    assert (last["rahasia"], last["lampiran"]) == (False, [])
    assert sim.counts()["files_from_gateway"] == 2


def test_a_repeated_tanggapan_stores_no_file_again(local) -> None:
    sim, server = local
    body = {"isi": "Perbaikan selesai.", "ref_eksternal": "gw-fu-3", "lampiran": [upload("b.png", "image/png", PNG)]}
    with client(sim, server) as c:
        first = c.post("/api/v1/aduan/3/tanggapan", json=body).json()["data"]
        again = c.post("/api/v1/aduan/3/tanggapan", json=body).json()["data"]
        # The first write stands: a repeat is not even checked.
        broken = c.post("/api/v1/aduan/3/tanggapan", json={**body, "lampiran": "bukan daftar"}).json()["data"]
    assert again == broken == {"id_tanggapan": first["id_tanggapan"], "sudah_ada": True}
    assert len(sim.follow_ups(3)) == 1 and len(sim.follow_ups(3)[0]["lampiran"]) == 1
    assert sim.counts()["files_from_gateway"] == 1


BAD_UPLOADS = [
    ({"lampiran": "b.png"}, "lampiran harus berupa daftar berkas"),
    ({"lampiran": ["b.png"]}, "lampiran ke-1 harus berupa objek dengan nama_file, tipe_mime dan konten_base64"),
    ({"lampiran": [{"tipe_mime": "image/png", "konten_base64": "iVBORw=="}]}, "lampiran ke-1: nama_file wajib diisi"),
    ({"lampiran": [upload("a\nb.png", "image/png", PNG)]}, "lampiran ke-1: nama_file tidak valid"),
    ({"lampiran": [upload("x" * 256, "image/png", PNG)]}, "lampiran ke-1: nama_file tidak valid"),
    (
        {"lampiran": [upload("ok.png", "image/png", PNG), upload("video.mp4", "video/mp4", b"\x00\x01")]},
        "lampiran ke-2: tipe_mime tidak didukung, gunakan image/jpeg, image/png atau application/pdf",
    ),
    ({"lampiran": [{"nama_file": "b.png", "tipe_mime": "image/png"}]}, "lampiran ke-1: konten_base64 wajib diisi"),
    (
        {"lampiran": [{"nama_file": "b.png", "tipe_mime": "image/png", "konten_base64": "bukan base64!"}]},
        "lampiran ke-1: konten_base64 bukan base64 yang valid",
    ),
    (
        {"lampiran": [{"nama_file": "b.png", "tipe_mime": "image/png", "konten_base64": "iVBORw0"}]},
        "lampiran ke-1: konten_base64 bukan base64 yang valid",
    ),
    (
        {"lampiran": [{"nama_file": "b.png", "tipe_mime": "image/png", "konten_base64": "===="}]},
        "lampiran ke-1: konten_base64 bukan base64 yang valid",
    ),
    (
        {"lampiran": [upload("big.png", "image/png", b"\x89PNG" + bytes(10 * MIB - 3))]},
        "lampiran ke-1: ukuran berkas melebihi 10 MiB",
    ),
    ({"rahasia": "ya"}, "rahasia harus berupa boolean (true atau false)"),
    ({"rahasia": 1}, "rahasia harus berupa boolean (true atau false)"),
]


@pytest.mark.parametrize(("fields", "pesan"), BAD_UPLOADS)
def test_a_tanggapan_with_a_bad_file_or_rahasia_is_refused_whole(local, fields: dict[str, Any], pesan: str) -> None:
    sim, server = local
    before = (sim.follow_ups(4), sim.counts(), record(sim, 4)["diperbarui_pada"])
    with client(sim, server) as c:
        answer = c.post(
            "/api/v1/aduan/4/tanggapan", json={"isi": "Bukti terlampir.", "ref_eksternal": "gw-x", **fields}
        )
        assert answer.status_code == 422
        assert answer.json()["status"] == "gagal" and answer.json()["pesan"].startswith(pesan)
        # Nothing was stored, not even the ref: the same ref may be written properly now.
        fine = c.post("/api/v1/aduan/4/tanggapan", json={"isi": "Bukti terlampir.", "ref_eksternal": "gw-x"})
        assert "sudah_ada" not in fine.json()["data"]
    counts = sim.counts()
    assert counts["files_from_gateway"] == before[1]["files_from_gateway"]
    assert len(sim.follow_ups(4)) == len(before[0]) + 1
    assert all(t["lampiran"] == [] for t in sim.follow_ups(4))


def test_a_file_of_exactly_10_mib_is_taken(local) -> None:
    sim, server = local
    data = b"%PDF" + bytes(10 * MIB - 4)
    with client(sim, server) as c:
        answer = c.post(
            "/api/v1/aduan/5/tanggapan",
            json={"isi": "Dokumen.", "rahasia": None, "lampiran": [upload("d.pdf", "application/pdf", data)]},
        )
    assert answer.status_code == 200
    [(nama, mime, stored)] = sim.follow_up_files(answer.json()["data"]["id_tanggapan"])
    assert (nama, mime, len(stored)) == ("d.pdf", "application/pdf", 10 * MIB) and stored == data
    assert sim.follow_ups(5)[-1]["rahasia"] is False


# --- nomor_lapor ----------------------------------------------------------------------------------


def test_nomor_lapor_is_set_idempotently_without_moving_the_complaint(local) -> None:
    sim, server = local
    before = record(sim, 2)
    assert before["nomor_lapor"] is None and sim.nomor_lapor(2) is None
    sim.clock.advance(3600)
    with client(sim, server) as c:
        first = c.put("/api/v1/aduan/2/nomor-lapor", json={"nomor_lapor": "4000123", "ref_eksternal": "gw-hr-1"})
        again = c.put("/api/v1/aduan/2/nomor-lapor", json={"nomor_lapor": "4000123", "ref_eksternal": "gw-hr-2"})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json() == {"status": "sukses", "data": {"id_aduan": 2, "nomor_lapor": "4000123"}}
        after = record(sim, 2)
        assert after["nomor_lapor"] == "4000123" == sim.nomor_lapor(2)
        assert after["diperbarui_pada"] == before["diperbarui_pada"]  # bookkeeping, not news
        # So a reader filtering from before the write (an hour ago: nothing changed since) does
        # not get it again; a read without the filter shows the value.
        since = (sim.clock.now() - timedelta(minutes=30)).astimezone(gateway.WIB).strftime("%Y-%m-%d %H:%M:%S")
        assert c.get("/api/v1/aduan", params={"diperbarui_sejak": since}).json()["data"] == []
        assert [r["nomor_lapor"] for r in c.get("/api/v1/aduan").json()["data"] if r["id_aduan"] == 2] == ["4000123"]
        assert sim.counts()["nomor_lapor_from_gateway"] == 1

        replaced = c.put("/api/v1/aduan/2/nomor-lapor", json={"nomor_lapor": "4000999"})
        assert replaced.json()["data"] == {"id_aduan": 2, "nomor_lapor": "4000999"}
        assert sim.nomor_lapor(2) == "4000999" and sim.counts()["nomor_lapor_from_gateway"] == 2
        assert [r["nomor_lapor"] for r in sim.complaints() if r["id_aduan"] != 2] == [None] * 5


@pytest.mark.parametrize(
    ("body", "status", "pesan"),
    [
        ({}, 422, "nomor_lapor wajib diisi"),
        ({"nomor_lapor": "  "}, 422, "nomor_lapor wajib diisi"),
        ({"nomor_lapor": 4000123}, 422, "nomor_lapor harus berupa teks"),
        ({"nomor_lapor": "4" * 65}, 422, "nomor_lapor tidak valid (paling banyak 64 karakter)"),
        ({"nomor_lapor": "4000123", "ref_eksternal": 7}, 422, "ref_eksternal harus berupa teks"),
        ([1], 400, "badan permintaan harus berupa objek JSON"),
    ],
)
def test_nomor_lapor_refusals(local, body: Any, status: int, pesan: str) -> None:
    sim, server = local
    with client(sim, server) as c:
        answer = c.put("/api/v1/aduan/3/nomor-lapor", json=body)
        assert (answer.status_code, answer.json()) == (status, {"status": "gagal", "pesan": pesan})
        unknown = c.put("/api/v1/aduan/999/nomor-lapor", json={"nomor_lapor": "4000123"})
        assert (unknown.status_code, unknown.json()["pesan"]) == (404, "aduan tidak ditemukan")
        assert c.put("/api/v1/aduan/3/nomor-lapor", content=b"{bukan json").status_code == 400
    assert sim.nomor_lapor(3) is None and sim.counts()["nomor_lapor_from_gateway"] == 0
    with pytest.raises(KeyError):
        sim.nomor_lapor(999)


def test_a_complaint_may_be_filed_with_nomor_lapor() -> None:
    sim = lapor_hendi_simulator(seed=1, clock=SimClock())
    ident = sim.submit_complaint(nomor_lapor="4000001")
    assert sim.nomor_lapor(ident) == "4000001"


# --- error_body_rate: a 2xx that is not a success -------------------------------------------------


def test_error_body_writes_answer_200_gagal_and_commit_nothing(local) -> None:
    sim, server = local
    before = sim.counts()
    history_before = sim.status_history(2)
    sim.set_error_body_rate(1.0)
    with client(sim, server) as c:
        answers = [
            c.post("/api/v1/aduan/2/status", json={"status": "dalam proses", "ref_eksternal": "gw-s-1"}),
            c.post(
                "/api/v1/aduan/2/tanggapan",
                json={"isi": "Dicek.", "ref_eksternal": "gw-t-1", "lampiran": [upload("b.png", "image/png", PNG)]},
            ),
            c.put("/api/v1/aduan/2/nomor-lapor", json={"nomor_lapor": "4000123", "ref_eksternal": "gw-h-1"}),
        ]
        assert c.get("/api/v1/aduan").status_code == 200  # reads are not affected
        for answer in answers:
            assert (answer.status_code, answer.json()) == (200, {"status": "gagal", "pesan": ERROR_BODY_PESAN})
        after = sim.counts()
        assert after["error_bodies"] == before["error_bodies"] + 3
        assert sim.status_history(2) == history_before and sim.follow_ups(2) == [] and sim.nomor_lapor(2) is None
        assert after["files_from_gateway"] == after["follow_ups_from_gateway"] == 0

        # Off again: the same writes (same refs) are new writes, committed once.
        sim.set_error_body_rate(0)
        assert (
            c.post("/api/v1/aduan/2/status", json={"status": "dalam proses", "ref_eksternal": "gw-s-1"}).json()[
                "status"
            ]
            == "sukses"
        )
        assert (
            "sudah_ada"
            not in c.post("/api/v1/aduan/2/tanggapan", json={"isi": "Dicek.", "ref_eksternal": "gw-t-1"}).json()["data"]
        )
    assert sim.counts()["status_changes_from_gateway"] == 1 and sim.counts()["error_bodies"] == 3
    with pytest.raises(ValueError, match="error_body_rate"):
        sim.set_error_body_rate(1.5)
    with pytest.raises(ValueError, match="error_body_rate"):
        lapor_hendi_simulator(error_body_rate=-0.1)


def test_error_body_control_endpoint_and_seeded_sequence() -> None:
    outcomes = []
    for _ in range(2):
        sim = lapor_hendi_simulator(seed=5, clock=SimClock(), initial_complaints=2, error_body_rate=0.5)
        sim.officers_active = False
        with SimulatorServer(sim, port=0) as server, client(sim, server) as c:
            seen = [
                c.post("/api/v1/aduan/1/tanggapan", json={"isi": f"Tanggapan {n}."}).json()["status"] for n in range(40)
            ]
            state = httpx.get(f"{server.base_url}/_sim/error-body").json()
            assert state == {"error_body_rate": 0.5, "error_bodies": seen.count("gagal")}
            assert 5 < seen.count("gagal") < 35 and len(sim.follow_ups(1)) == seen.count("sukses")
            changed = httpx.post(f"{server.base_url}/_sim/error-body", json={"error_body_rate": 1})
            assert changed.json()["error_body_rate"] == 1.0
            assert httpx.post(f"{server.base_url}/_sim/error-body", json={"error_body_rate": 2}).status_code == 400
            assert httpx.post(f"{server.base_url}/_sim/error-body", json={"rate": 1}).status_code == 400
            assert c.post("/api/v1/aduan/1/tanggapan", json={"isi": "Lagi."}).json()["status"] == "gagal"
            assert (
                "requests_by_route" in sim.counts() and "GET /_sim/error-body" not in sim.counts()["requests_by_route"]
            )
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]


# --- the officers: evidence photos and confidential answers ---------------------------------------


def test_officers_sometimes_attach_evidence_and_rarely_answer_rahasia() -> None:
    clock = SimClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    sim = lapor_hendi_simulator(seed=3, clock=clock, initial_complaints=80, answer_probability=0.3)
    for _ in range(12):
        clock.advance(600)
        sim.tick()
    answers = [t for r in sim.complaints() for t in sim.follow_ups(r["id_aduan"]) if t["sumber"] == "lapor_hendi"]
    with_photo = [t for t in answers if t["lampiran"]]
    secret = [t for t in answers if t["rahasia"]]
    assert len(answers) > 100
    assert 0.05 * len(answers) < len(with_photo) < 0.4 * len(answers)
    assert 0 < len(secret) < 0.15 * len(answers)
    with SimulatorServer(sim, port=0) as server, client(sim, server) as c:
        for t in with_photo[:5]:
            [item] = t["lampiran"]
            assert item["nama_file"].startswith("bukti_tindak_lanjut_") and item["tipe_mime"] == "image/png"
            got = c.get(f"/api/v1/lampiran/{item['id_lampiran']}")
            assert got.content.startswith(b"\x89PNG\r\n\x1a\n") and len(got.content) == item["ukuran_byte"]
    again = lapor_hendi_simulator(
        seed=3, clock=SimClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC)), initial_complaints=80, answer_probability=0.3
    )
    for _ in range(12):
        again.clock.advance(600)
        again.tick()
    assert [again.follow_ups(r["id_aduan"]) for r in again.complaints()] == [
        sim.follow_ups(r["id_aduan"]) for r in sim.complaints()
    ]
    officer = sim.answer(1, "Sudah kami tangani, foto terlampir.", rahasia=True, lampiran=2)
    shown = sim.follow_ups(1)[-1]
    assert shown["id_tanggapan"] == officer and shown["rahasia"] is True and len(shown["lampiran"]) == 2
    assert [f[1] for f in sim.follow_up_files(officer)] == ["image/png", "image/png"]


def test_evidence_photos_of_a_seeded_history_are_made_when_downloaded() -> None:
    sim = lapor_hendi_simulator(seed=2, clock=SimClock(), initial_complaints=300, history_days=60)
    photos = [f for r in sim.complaints() for t in sim.follow_ups(r["id_aduan"]) for f in t["lampiran"]]
    assert photos
    for item in photos[:5]:
        nama, mime, data = sim.attachment(item["id_lampiran"])
        assert (nama, mime, len(data)) == (item["nama_file"], "image/png", item["ukuran_byte"])
        width, height = struct.unpack(">II", data[16:24])
        assert 32 <= width <= 56 and 24 <= height <= 40
        assert sim.attachment(item["id_lampiran"]) == (nama, mime, data)


# --- the adapter against it -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_adapter_writes_and_reads_files_rahasia_and_the_hub_ref(local) -> None:
    sim, server = local
    sim.clock.advance(3600)
    since = sim.clock.now()
    evidence = sim.answer(3, "Sudah kami perbaiki.", rahasia=True, lampiran=1)
    app = make_app(sim, server)
    try:
        ref = await app.write_follow_up(
            "2",
            "Perbaikan selesai.",
            author="Dinas Pekerjaan Umum",
            gateway_ref="gw-fu-1",
            is_secret=True,
            attachments=[
                AttachmentContent("bukti.jpg", "image/jpg", JPEG),
                AttachmentContent("ba.pdf", "application/pdf", PDF),
            ],
        )
        again = await app.write_follow_up(
            "2",
            "Perbaikan selesai.",
            author="Dinas Pekerjaan Umum",
            gateway_ref="gw-fu-1",
            is_secret=True,
            attachments=[AttachmentContent("bukti.jpg", "image/jpg", JPEG)],
        )
        assert again == ref  # applied once
        follow_ups = {f.ref: f for f in await _collect(app.follow_ups_since(since))}
        mine, theirs = follow_ups[ref], follow_ups[str(evidence)]
        assert isinstance(mine, FollowUp) and mine.is_secret and mine.gateway_ref == "gw-fu-1"
        assert [(a.filename, a.content_type, a.size) for a in mine.attachments] == [
            ("bukti.jpg", "image/jpeg", len(JPEG)),
            ("ba.pdf", "application/pdf", len(PDF)),
        ]
        assert [(await app.fetch_attachment(a)).data for a in mine.attachments] == [JPEG, PDF]
        assert theirs.is_secret and theirs.gateway_ref is None and len(theirs.attachments) == 1
        photo = await app.fetch_attachment(theirs.attachments[0])
        assert photo.data.startswith(b"\x89PNG") and photo.content_type == "image/png"
        assert sim.counts()["files_from_gateway"] == 2

        assert await app.write_hub_ref("2", "4000123", gateway_ref="gw-hr-1") is None
        assert await app.write_hub_ref("2", "4000123", gateway_ref="gw-hr-1") is None
        assert sim.nomor_lapor(2) == "4000123" and sim.counts()["nomor_lapor_from_gateway"] == 1

        with pytest.raises(PermanentPeerError) as caught:  # a file the app does not take
            await app.write_follow_up(
                "2",
                "Video.",
                author=None,
                gateway_ref="gw-fu-2",
                attachments=[AttachmentContent("v.mp4", "video/mp4", b"\x00")],
            )
        assert caught.value.status_code == 422
        with pytest.raises(PermanentPeerError) as caught:
            await app.write_hub_ref("999", "4000123", gateway_ref="gw-hr-2")
        assert caught.value.status_code == 404
    finally:
        await app.aclose()


@pytest.mark.anyio
async def test_the_adapter_takes_an_error_body_as_refused_and_never_as_done(local) -> None:
    sim, server = local
    sim.set_error_body_rate(1.0)
    app = make_app(sim, server)
    try:
        writes = [
            app.write_status("4", RawStatus("dalam proses"), note=None, gateway_ref="gw-st-1"),
            app.write_follow_up(
                "4",
                "Sudah diteruskan.",
                author=None,
                gateway_ref="gw-fu-1",
                attachments=[AttachmentContent("b.png", "image/png", PNG)],
            ),
            app.write_hub_ref("4", "4000123", gateway_ref="gw-hr-1"),
        ]
        for write in writes:
            with pytest.raises(PermanentPeerError) as caught:
                await write
            assert type(caught.value) is PermanentPeerError
            assert "not written" in caught.value.reason
            assert ERROR_BODY_PESAN not in str(caught.value) and "gagal" not in str(caught.value)
        assert sim.counts()["error_bodies"] == 3
        assert sim.follow_ups(4) == [] and sim.nomor_lapor(4) is None
        assert [h["sumber"] for h in sim.status_history(4)] == ["lapor_hendi"]

        sim.set_error_body_rate(0.0)  # the operator retries once the app is fixed: written once
        assert await app.write_hub_ref("4", "4000123", gateway_ref="gw-hr-1") is None
        assert await app.write_follow_up("4", "Sudah diteruskan.", author=None, gateway_ref="gw-fu-1")
    finally:
        await app.aclose()
    assert sim.nomor_lapor(4) == "4000123" and len(sim.follow_ups(4)) == 1


@pytest.mark.anyio
async def test_a_lost_nomor_lapor_answer_is_retried_and_lands_once(local) -> None:
    sim, server = local
    app = make_app(sim, server)  # one attempt per call
    patient = make_app(sim, server, RetryPolicy(attempts=3, initial_wait=0.001, max_wait=0.001))
    try:
        sim.faults.configure(lost_answer_rate=1.0)
        with pytest.raises(TransientPeerError) as caught:
            await app.write_hub_ref("5", "4000555", gateway_ref="gw-hr-5")
        assert not isinstance(caught.value, AmbiguousOutcomeError)  # a PUT is idempotent: simply retried
        assert sim.nomor_lapor(5) == "4000555"  # committed, then the answer was lost
        sim.faults.reset()
        await app.write_hub_ref("5", "4000555", gateway_ref="gw-hr-5")
        # Within one call: the first answer is lost, the repeat answers the same.
        sim.faults.configure(lost_answer_rate=1.0)
        lost_before = sim.faults.injected["lost_answers"]
        route_before = sim.counts()["requests_by_route"].get("PUT /api/v1/aduan/{id}/nomor-lapor", 0)
        with pytest.raises(TransientPeerError):
            await patient.write_hub_ref("6", "4000666", gateway_ref="gw-hr-6")
        assert sim.faults.injected["lost_answers"] - lost_before == 3
        assert sim.counts()["requests_by_route"]["PUT /api/v1/aduan/{id}/nomor-lapor"] - route_before == 3
    finally:
        sim.faults.reset()
        await app.aclose()
        await patient.aclose()
    assert sim.counts()["nomor_lapor_from_gateway"] == 2  # one change each, however often it was sent


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]
