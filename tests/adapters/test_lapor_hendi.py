"""The lapor_hendi adapter: translation against respx fixtures, then a round trip
against the real simulator on loopback."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

import gateway
from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    AttachmentRef,
    Classification,
    Complaint,
    FollowUp,
    InstanceContext,
    PermanentPeerError,
    RawStatus,
    RecordError,
    StatusChange,
)
from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp
from lapor_gateway_adapters.lapor_hendi.simulator import LaporHendiSimulator, create_simulator

BASE = "http://lh.test"
UTC = UTC


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(
    base_url: str = BASE, *, api_key: str = "k", client: httpx.AsyncClient | None = None, **settings: Any
) -> LaporHendiApp:
    context = InstanceContext(
        name="lapor-hendi-semarang",
        base_url=base_url,
        timezone=gateway.WIB,
        secrets={"api_key": api_key},
        settings=LaporHendiApp.Settings(**settings),
    )
    return LaporHendiApp(context, client=client)


def aduan(id_aduan: int, **fields: Any) -> dict[str, Any]:
    record = {
        "id_aduan": id_aduan,
        "nomor_tiket": f"LH-2026-{id_aduan:06d}",
        "judul": "Jalan berlubang di Jl. Pandanaran",
        "isi": "Mohon perbaikan jalan berlubang di Jl. Pandanaran, Kelurahan Pekunden.",
        "kategori": "Jalan Rusak",
        "klasifikasi": "pengaduan",
        "lokasi": {
            "alamat_kejadian": "Jl. Pandanaran No. 12",
            "kelurahan": "Pekunden",
            "kecamatan": "Semarang Tengah",
            "lat": -6.9861,
            "lng": 110.4122,
        },
        "kanal": "whatsapp",
        "tanggal_kejadian": "2026-11-27",
        "anonim": False,
        "rahasia": False,
        "pelapor": {
            "nama": "Sri Wulandari",
            "nik": "3374014506880001",
            "telepon": "081234567890",
            "email": "sri.wulandari@example.com",
            "alamat": "Jl. Depok No. 3, RT 02/RW 05, Miroto",
        },
        "lampiran": [{"id_lampiran": 30001, "nama_file": "foto_1.png", "tipe_mime": "image/png", "ukuran_byte": 2048}],
        "status": "belum terverifikasi",
        "opd": "DPU",
        "dibuat_pada": "2026-11-27 14:05:00",
        "diperbarui_pada": "2026-11-27 14:30:15",
    }
    record.update(fields)
    return record


def page(
    data: list[Any], halaman: int = 1, per_halaman: int = 50, total: int | None = None, total_halaman: int = 1
) -> httpx.Response:
    total = len(data) if total is None else total
    return httpx.Response(
        200,
        json={
            "status": "sukses",
            "data": data,
            "meta": {"halaman": halaman, "per_halaman": per_halaman, "total": total, "total_halaman": total_halaman},
        },
    )


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


# --- translation (respx) ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_walks_by_time_with_api_key_and_since_in_wib(respx_mock: Any) -> None:
    """After each page the next query starts at the newest time read (inclusive), page 1."""
    records = [aduan(i, diperbarui_pada=f"2026-11-27 14:{30 + i:02d}:00") for i in range(1, 6)]

    def answer(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("diperbarui_sejak", "")
        rows = [r for r in records if r["diperbarui_pada"] >= since]
        n, size = int(request.url.params["halaman"]), int(request.url.params["per_halaman"])
        return page(
            rows[(n - 1) * size : n * size],
            halaman=n,
            per_halaman=size,
            total=len(rows),
            total_halaman=max(1, -(-len(rows) // size)),
        )

    route = respx_mock.get(f"{BASE}/api/v1/aduan").mock(side_effect=answer)
    app = make_app(client=httpx.AsyncClient(), page_size=2)
    items = await collect(app.complaints_since(datetime(2026, 11, 27, 7, 0, tzinfo=UTC)))
    await app.aclose()

    assert [c.ref for c in items] == ["1", "2", "3", "4", "5"]
    sinces = [call.request.url.params["diperbarui_sejak"] for call in route.calls]
    assert sinces == ["2026-11-27 14:00:00", "2026-11-27 14:32:00", "2026-11-27 14:33:00", "2026-11-27 14:34:00"]
    for call in route.calls:
        assert call.request.headers["X-Api-Key"] == "k"
        assert call.request.url.params["halaman"] == "1" and call.request.url.params["per_halaman"] == "2"


@pytest.mark.anyio
async def test_no_since_omits_the_filter(respx_mock: Any) -> None:
    route = respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([], total_halaman=1))
    app = make_app(client=httpx.AsyncClient())
    assert await collect(app.complaints_since(None)) == []
    await app.aclose()
    assert route.call_count == 1
    assert "diperbarui_sejak" not in route.calls[0].request.url.params
    assert route.calls[0].request.url.params["per_halaman"] == "50"


@pytest.mark.anyio
async def test_complaint_fields_and_wib_times_become_utc(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(
        return_value=page([aduan(7, klasifikasi="permintaan informasi", rahasia=True)])
    )
    app = make_app(client=httpx.AsyncClient())
    [c] = await collect(app.complaints_since(None))
    await app.aclose()

    assert isinstance(c, Complaint)
    assert c.ref == "7"
    assert c.created_at == datetime(2026, 11, 27, 7, 5, tzinfo=UTC)
    assert c.updated_at == datetime(2026, 11, 27, 7, 30, 15, tzinfo=UTC)
    assert c.incident_at == datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # midnight WIB
    assert c.status == RawStatus("belum terverifikasi", "belum terverifikasi")
    assert c.category == "Jalan Rusak"
    assert c.classification is Classification.INFORMATION_REQUEST
    assert c.channel == "whatsapp"
    assert c.agency == "DPU"
    assert c.is_secret and not c.is_anonymous
    assert c.location is not None
    assert (c.location.description, c.location.subdistrict, c.location.district) == (
        "Jl. Pandanaran No. 12",
        "Pekunden",
        "Semarang Tengah",
    )
    assert (c.location.latitude, c.location.longitude) == (-6.9861, 110.4122)
    assert c.attachments == (AttachmentRef(ref="30001", filename="foto_1.png", content_type="image/png", size=2048),)


@pytest.mark.anyio
async def test_anonymous_complaint_has_no_reporter(respx_mock: Any) -> None:
    # Even if the app sent a pelapor with anonim true, no identity is passed on.
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(
        return_value=page([aduan(1, anonim=True, pelapor=None), aduan(2, anonim=True)])
    )
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.complaints_since(None))
    await app.aclose()
    assert [(c.is_anonymous, c.reporter) for c in items] == [(True, None), (True, None)]


@pytest.mark.anyio
async def test_reporter_is_mapped_and_never_shown_in_repr(respx_mock: Any) -> None:
    record = aduan(3)
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([record]))
    app = make_app(client=httpx.AsyncClient())
    [c] = await collect(app.complaints_since(None))
    await app.aclose()

    assert c.reporter is not None
    assert (c.reporter.name, c.reporter.nik, c.reporter.phone, c.reporter.email, c.reporter.address) == (
        "Sri Wulandari",
        "3374014506880001",
        "081234567890",
        "sri.wulandari@example.com",
        "Jl. Depok No. 3, RT 02/RW 05, Miroto",
    )
    shown = repr(c) + str(c) + repr(c.reporter)
    for value in record["pelapor"].values():
        assert value not in shown


# -- the reporter: nothing of it is needed to pass a complaint on, so none of it stops one --------


@pytest.mark.anyio
async def test_a_nik_or_phone_sent_as_a_number_is_read_as_its_digits(respx_mock: Any) -> None:
    """A review of issue 13: a NIK sent as a JSON number quarantined the complaint ('field
    pelapor.nik is not a string') although no purpose kept the reporter."""
    pelapor = {"nama": "Sri Wulandari", "nik": 3374014506880001, "telepon": 81234567890}
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([aduan(1, pelapor=pelapor)]))
    app = make_app(client=httpx.AsyncClient())
    with capture_logs() as logs:
        [c] = await collect(app.complaints_since(None))
    await app.aclose()

    assert isinstance(c, Complaint) and c.reporter is not None
    # The leading 0 the phone lost as a number is not guessed back.
    assert (c.reporter.name, c.reporter.nik, c.reporter.phone) == ("Sri Wulandari", "3374014506880001", "81234567890")
    assert logs == []


ODD_REPORTERS = [
    ({"nik": 9471014506880001}, "pelapor.nik", "above 2^53"),  # Papua: may have been rounded on its way
    ({"nik": 3374014506880001.0}, "pelapor.nik", "not a text (a number)"),
    ({"nik": -3374014506880001}, "pelapor.nik", "not a text (a number)"),
    ({"nik": {"nomor": "3374014506880001"}}, "pelapor.nik", "not a text (an object)"),
    ({"telepon": True}, "pelapor.telepon", "not a text (true or false)"),
    ({"telepon": ["081234567890"]}, "pelapor.telepon", "not a text (a list)"),
    ({"nama": 3374}, "pelapor.nama", "not a text (a number)"),
    ({"email": {"alamat": "sri@example.com"}}, "pelapor.email", "not a text (an object)"),
    ({"alamat": ["Jl. Depok No. 3"]}, "pelapor.alamat", "not a text (a list)"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("odd", "field_name", "problem"), ODD_REPORTERS)
async def test_a_reporter_field_of_the_wrong_type_is_taken_as_absent_with_a_warning_naming_it(
    respx_mock: Any, odd: dict[str, Any], field_name: str, problem: str
) -> None:
    pelapor = {"nama": "Sri Wulandari", "nik": "3374014506880001", "telepon": "081234567890", **odd}
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([aduan(1), aduan(2, pelapor=pelapor)]))
    app = make_app(client=httpx.AsyncClient())
    with capture_logs() as logs:
        items = await collect(app.complaints_since(None))
    await app.aclose()

    assert [type(i) for i in items] == [Complaint, Complaint]
    reporter = items[1].reporter
    assert reporter is not None
    read = {"nama": reporter.name, "nik": reporter.nik, "telepon": reporter.phone, "email": reporter.email}
    read["alamat"] = reporter.address
    assert read[field_name.split(".")[1]] is None
    assert reporter.name == (None if "nama" in odd else "Sri Wulandari")
    (warning,) = logs
    assert warning["log_level"] == "warning" and warning["event"] == "reporter field not read, taken as absent"
    assert (warning["field"], warning["record"]) == (field_name, "2") and problem in warning["problem"]
    for value in _leaves(odd):
        assert str(value) not in str(warning)


@pytest.mark.anyio
async def test_a_pelapor_that_is_not_an_object_is_taken_as_absent(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([aduan(1, pelapor="Sri Wulandari 0812")]))
    app = make_app(client=httpx.AsyncClient())
    with capture_logs() as logs:
        [c] = await collect(app.complaints_since(None))
    await app.aclose()

    assert isinstance(c, Complaint) and c.reporter is None
    assert [(e["field"], e["problem"]) for e in logs] == [("pelapor", "not an object")]
    assert "Sri" not in str(logs)


@pytest.mark.anyio
async def test_an_anonymous_complaints_pelapor_is_not_read_at_all(respx_mock: Any) -> None:
    odd = [aduan(1, anonim=True, pelapor="Sri"), aduan(2, anonim=True, pelapor={"nik": 3374014506880001})]
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page(odd))
    app = make_app(client=httpx.AsyncClient())
    with capture_logs() as logs:
        items = await collect(app.complaints_since(None))
    await app.aclose()

    assert [(type(i), i.reporter) for i in items] == [(Complaint, None), (Complaint, None)]
    assert logs == []


MALFORMED = [
    ({"judul": None}, "judul"),
    ({"isi": None}, "isi"),
    ({"diperbarui_pada": None}, "diperbarui_pada"),
    ({"diperbarui_pada": "27/11/2026 14:30"}, "diperbarui_pada"),
    ({"dibuat_pada": "2026-11-27T14:05:00+07:00"}, "dibuat_pada"),
    ({"tanggal_kejadian": "kemarin"}, "tanggal_kejadian"),
    ({"anonim": "ya"}, "anonim"),
    ({"judul": ["Jalan", "berlubang"]}, "judul"),
    ({"klasifikasi": "keluhan warga"}, "klasifikasi"),
    ({"lokasi": {"lat": "minus enam koma sembilan"}}, "lokasi.lat"),
    ({"lampiran": [{"nama_file": "foto_rumah_sri_wulandari.png"}]}, "lampiran[0].id_lampiran"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("fields", "field_name"), MALFORMED)
async def test_malformed_record_is_a_record_error_and_the_page_goes_on(
    respx_mock: Any, fields: dict[str, Any], field_name: str
) -> None:
    bad = aduan(2, **fields)
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([aduan(1), bad, aduan(3)]))
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.complaints_since(None))
    await app.aclose()

    assert [type(i) for i in items] == [Complaint, RecordError, Complaint]
    error = items[1]
    assert error.peer == "lapor-hendi-semarang"
    assert error.operation == "GET /api/v1/aduan"
    assert error.record_ref == "2"
    assert f"'{field_name}'" in error.reason
    text = str(error) + repr(error)
    for value in _leaves(bad):
        if (isinstance(value, str) and len(value) > 3) or (isinstance(value, int) and value > 100):
            assert str(value) not in text, value


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("field", "written"), [("lat", "NaN"), ("lng", "Infinity"), ("lat", "-Infinity"), ("lng", "1e400")]
)
async def test_a_coordinate_that_is_no_finite_number_is_a_record_error(
    respx_mock: Any, field: str, written: str
) -> None:
    """Found by review-fuzz: Python's JSON reads NaN, Infinity and 1e400 (as Infinity) as floats,
    and a complaint with such a lokasi.lat was taken in (httpx then refuses to send it as JSON)."""
    odd = aduan(2, lokasi={"lat": -6.99, "lng": 110.42, field: "<<odd>>"})
    body = json.dumps({"status": "sukses", "data": [aduan(1), odd, aduan(3)], "meta": {"total_halaman": 1}})
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(
        return_value=httpx.Response(200, content=body.replace('"<<odd>>"', written).encode())
    )
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.complaints_since(None))
    await app.aclose()

    assert [type(i) for i in items] == [Complaint, RecordError, Complaint]
    assert items[1].record_ref == "2" and items[1].reason == f"field 'lokasi.{field}' is not a number"


@pytest.mark.anyio
async def test_record_without_id_or_not_an_object(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=page([{**aduan(1), "id_aduan": None}, "aduan", aduan(4)]))
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.complaints_since(None))
    await app.aclose()
    assert isinstance(items[0], RecordError) and items[0].record_ref is None and "'id_aduan'" in items[0].reason
    assert isinstance(items[1], RecordError) and items[1].record_ref is None
    assert isinstance(items[2], Complaint)


@pytest.mark.anyio
async def test_a_list_without_meta_is_a_permanent_error(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/aduan").mock(return_value=httpx.Response(200, json={"status": "sukses", "data": []}))
    app = make_app(client=httpx.AsyncClient())
    with pytest.raises(PermanentPeerError) as caught:
        await collect(app.complaints_since(None))
    await app.aclose()
    assert caught.value.operation == "GET /api/v1/aduan"


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@pytest.mark.anyio
async def test_follow_ups_carry_author_and_gateway_ref(respx_mock: Any) -> None:
    route = respx_mock.get(f"{BASE}/api/v1/tanggapan").mock(
        return_value=page(
            [
                {
                    "id_tanggapan": 5001,
                    "id_aduan": 12,
                    "isi": "Sudah kami cek ke lokasi.",
                    "oleh": "Dinas Pekerjaan Umum Kota Semarang",
                    "sumber": "lapor_hendi",
                    "ref_eksternal": None,
                    "dibuat_pada": "2026-11-27 09:00:00",
                },
                {
                    "id_tanggapan": 5002,
                    "id_aduan": 12,
                    "isi": "Tindak lanjut dari LAPOR!",
                    "oleh": "LAPOR!-SP4N",
                    "sumber": "eksternal",
                    "ref_eksternal": "gw-fu-0001",
                    "dibuat_pada": "2026-11-27 09:05:00",
                },
                {"id_tanggapan": 5003, "id_aduan": 12, "isi": None, "dibuat_pada": "2026-11-27 09:06:00"},
            ]
        )
    )
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.follow_ups_since(datetime(2026, 11, 27, 1, 0, tzinfo=UTC)))
    await app.aclose()

    assert route.calls[0].request.url.params["sejak"] == "2026-11-27 08:00:00"
    assert items[0] == FollowUp(
        ref="5001",
        complaint_ref="12",
        content="Sudah kami cek ke lokasi.",
        created_at=datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
        author="Dinas Pekerjaan Umum Kota Semarang",
        gateway_ref=None,
    )
    assert items[1].gateway_ref == "gw-fu-0001"
    assert isinstance(items[2], RecordError)
    assert items[2].operation == "GET /api/v1/tanggapan" and items[2].record_ref == "5003"


@pytest.mark.anyio
async def test_status_changes_carry_previous_and_gateway_ref(respx_mock: Any) -> None:
    route = respx_mock.get(f"{BASE}/api/v1/riwayat-status").mock(
        return_value=page(
            [
                {
                    "id_riwayat": 70001,
                    "id_aduan": 12,
                    "status_lama": None,
                    "status_baru": "belum terverifikasi",
                    "oleh": "Sistem Lapor Hendi",
                    "sumber": "lapor_hendi",
                    "ref_eksternal": None,
                    "dibuat_pada": "2026-11-27 08:00:00",
                },
                {
                    "id_riwayat": 70002,
                    "id_aduan": 12,
                    "status_lama": "belum terverifikasi",
                    "status_baru": "selesai",
                    "oleh": "LAPOR!-SP4N",
                    "sumber": "eksternal",
                    "ref_eksternal": "gw-st-0009",
                    "dibuat_pada": "2026-11-28 10:00:00",
                },
            ]
        )
    )
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.status_changes_since(None))
    await app.aclose()

    assert "sejak" not in route.calls[0].request.url.params
    assert items == [
        StatusChange(
            ref="70001",
            complaint_ref="12",
            status=RawStatus("belum terverifikasi", "belum terverifikasi"),
            changed_at=datetime(2026, 11, 27, 1, 0, tzinfo=UTC),
            previous=None,
            gateway_ref=None,
        ),
        StatusChange(
            ref="70002",
            complaint_ref="12",
            status=RawStatus("selesai", "selesai"),
            changed_at=datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
            previous=RawStatus("belum terverifikasi", "belum terverifikasi"),
            gateway_ref="gw-st-0009",
        ),
    ]


@pytest.mark.anyio
async def test_write_follow_up_body(respx_mock: Any) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/aduan/12/tanggapan").mock(
        return_value=httpx.Response(200, json={"status": "sukses", "data": {"id_tanggapan": 5009}})
    )
    app = make_app(client=httpx.AsyncClient())
    assert (
        await app.write_follow_up("12", "Sudah ditangani DPU.", author="Dinas Pekerjaan Umum", gateway_ref="gw-fu-1")
        == "5009"
    )
    assert await app.write_follow_up("12", "Terima kasih.", author=None, gateway_ref="gw-fu-2") == "5009"
    await app.aclose()

    first, second = (json.loads(call.request.content) for call in route.calls)
    assert first == {
        "isi": "Sudah ditangani DPU.",
        "oleh": "LAPOR!-SP4N / Dinas Pekerjaan Umum",
        "ref_eksternal": "gw-fu-1",
    }
    assert second == {"isi": "Terima kasih.", "oleh": "LAPOR!-SP4N", "ref_eksternal": "gw-fu-2"}
    assert route.calls[0].request.headers["X-Api-Key"] == "k"


@pytest.mark.anyio
async def test_write_status_body(respx_mock: Any) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/aduan/12/status").mock(
        return_value=httpx.Response(200, json={"status": "sukses", "data": {"id_riwayat": 70042}})
    )
    app = make_app(client=httpx.AsyncClient(), author_name="LAPOR! Kota Semarang")
    assert await app.write_status("12", RawStatus("selesai", "Selesai"), note=None, gateway_ref="gw-st-1") == "70042"
    assert (
        await app.write_status("12", RawStatus("dalam proses"), note="Didisposisi ke DPU", gateway_ref="gw-st-2")
        == "70042"
    )
    await app.aclose()

    first, second = (json.loads(call.request.content) for call in route.calls)
    assert first == {"status": "selesai", "keterangan": "", "oleh": "LAPOR! Kota Semarang", "ref_eksternal": "gw-st-1"}
    assert second == {
        "status": "dalam proses",
        "keterangan": "Didisposisi ke DPU",
        "oleh": "LAPOR! Kota Semarang",
        "ref_eksternal": "gw-st-2",
    }


@pytest.mark.anyio
@pytest.mark.parametrize("status_code", [404, 422])
async def test_refused_write_is_permanent(respx_mock: Any, status_code: int) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/aduan/999/tanggapan").mock(
        return_value=httpx.Response(status_code, json={"status": "gagal", "pesan": "aduan tidak ditemukan"})
    )
    app = make_app(client=httpx.AsyncClient())
    with pytest.raises(PermanentPeerError) as caught:
        await app.write_follow_up("999", "Isi tanggapan", author=None, gateway_ref="gw-fu-3")
    await app.aclose()
    assert caught.value.status_code == status_code
    assert caught.value.operation == "POST /api/v1/aduan/{id}/tanggapan"
    assert "tidak ditemukan" not in str(caught.value) and "999" not in str(caught.value)
    assert route.call_count == 1


@pytest.mark.anyio
async def test_fetch_attachment(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/lampiran/30001").mock(
        return_value=httpx.Response(
            200,
            content=b"\x89PNG...",
            headers={"Content-Type": "image/png", "Content-Disposition": 'attachment; filename="x.png"'},
        )
    )
    app = make_app(client=httpx.AsyncClient())
    content = await app.fetch_attachment(AttachmentRef(ref="30001", filename="foto_1.png"))
    await app.aclose()
    assert (content.filename, content.content_type, content.data) == ("foto_1.png", "image/png", b"\x89PNG...")
    assert respx_mock.calls[0].request.headers["Accept"] == "*/*"  # a file, not JSON
    assert respx_mock.calls[0].request.headers["X-Api-Key"] == "k"


# --- follow-ups: rahasia and lampiran --------------------------------------------------------------


def tanggapan(id_tanggapan: int, **fields: Any) -> dict[str, Any]:
    record = {
        "id_tanggapan": id_tanggapan,
        "id_aduan": 12,
        "isi": "Sudah kami perbaiki, foto terlampir.",
        "oleh": "Dinas Pekerjaan Umum Kota Semarang",
        "sumber": "lapor_hendi",
        "ref_eksternal": None,
        "rahasia": False,
        "lampiran": [],
        "dibuat_pada": "2026-11-28 09:30:00",
    }
    record.update(fields)
    return record


@pytest.mark.anyio
async def test_follow_ups_carry_rahasia_and_lampiran(respx_mock: Any) -> None:
    respx_mock.get(f"{BASE}/api/v1/tanggapan").mock(
        return_value=page(
            [
                tanggapan(
                    5060,
                    rahasia=True,
                    lampiran=[
                        {
                            "id_lampiran": 30027,
                            "nama_file": "bukti_1.png",
                            "tipe_mime": "image/png",
                            "ukuran_byte": 4099,
                        },
                        {
                            "id_lampiran": "30028",
                            "nama_file": "berita_acara.pdf",
                            "tipe_mime": "application/pdf",
                            "ukuran_byte": 81234,
                        },
                    ],
                ),
                {
                    key: value for key, value in tanggapan(5061).items() if key not in ("rahasia", "lampiran")
                },  # older app
                tanggapan(5062, rahasia=None, lampiran=None),
            ]
        )
    )
    app = make_app(client=httpx.AsyncClient())
    first, older, nulls = await collect(app.follow_ups_since(None))
    await app.aclose()

    assert first.is_secret is True
    assert first.attachments == (
        AttachmentRef(ref="30027", filename="bukti_1.png", content_type="image/png", size=4099),
        AttachmentRef(ref="30028", filename="berita_acara.pdf", content_type="application/pdf", size=81234),
    )
    assert (older.is_secret, older.attachments) == (False, ())
    assert (nulls.is_secret, nulls.attachments) == (False, ())


MALFORMED_FOLLOW_UPS = [
    ({"rahasia": "ya"}, "'rahasia'"),
    ({"rahasia": 1}, "'rahasia'"),
    ({"lampiran": "bukti_perbaikan_jalan_pandanaran.png"}, "'lampiran'"),
    ({"lampiran": [{"nama_file": "bukti_rumah_sri_wulandari.png"}]}, "'lampiran[0].id_lampiran'"),
    (
        {"lampiran": [{"id_lampiran": 30027, "nama_file": "bukti.png", "ukuran_byte": "empat ribu"}]},
        "'lampiran[0].ukuran_byte'",
    ),
    ({"lampiran": [{"id_lampiran": 30027, "nama_file": ["bukti", "png"]}]}, "'lampiran[0].nama_file'"),
    ({"lampiran": [{"id_lampiran": 30027}, "foto_rumah_sri_wulandari.png"]}, "lampiran[1]"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("fields", "field_name"), MALFORMED_FOLLOW_UPS)
async def test_malformed_follow_up_is_a_record_error_naming_the_field(
    respx_mock: Any, fields: dict[str, Any], field_name: str
) -> None:
    bad = tanggapan(5061, **fields)
    respx_mock.get(f"{BASE}/api/v1/tanggapan").mock(return_value=page([tanggapan(5060), bad, tanggapan(5062)]))
    app = make_app(client=httpx.AsyncClient())
    items = await collect(app.follow_ups_since(None))
    await app.aclose()

    assert [type(i) for i in items] == [FollowUp, RecordError, FollowUp]
    error = items[1]
    assert (error.operation, error.record_ref) == ("GET /api/v1/tanggapan", "5061")
    assert field_name in error.reason
    text = str(error) + repr(error)
    for value in _leaves(bad):
        if isinstance(value, str) and len(value) > 3 and value not in ("lampiran", "rahasia"):
            assert value not in text, value


# --- writes: files, rahasia, the hub's id, and answers that are not a success ----------------------


@pytest.mark.anyio
async def test_write_follow_up_sends_rahasia_and_files_in_base64(respx_mock: Any) -> None:
    route = respx_mock.post(f"{BASE}/api/v1/aduan/12/tanggapan").mock(
        return_value=httpx.Response(200, json={"status": "sukses", "data": {"id_tanggapan": "5010"}})
    )
    photo, report = b"\xff\xd8\xff\xe0 bukti" + bytes(range(256)), b"%PDF-1.4 berita acara"
    app = make_app(client=httpx.AsyncClient())
    new_id = await app.write_follow_up(
        "12",
        "Perbaikan selesai, foto terlampir.",
        author="Dinas Pekerjaan Umum",
        gateway_ref="gw-fu-5",
        is_secret=True,
        attachments=[
            AttachmentContent("bukti.jpg", "image/JPG; charset=binary", photo),
            AttachmentContent("berita_acara.pdf", "application/pdf", report),
        ],
    )
    await app.aclose()

    assert new_id == "5010"
    body = json.loads(route.calls[0].request.content)
    assert body == {
        "isi": "Perbaikan selesai, foto terlampir.",
        "oleh": "LAPOR!-SP4N / Dinas Pekerjaan Umum",
        "ref_eksternal": "gw-fu-5",
        "rahasia": True,
        "lampiran": [
            {"nama_file": "bukti.jpg", "tipe_mime": "image/jpeg", "konten_base64": base64.b64encode(photo).decode()},
            {
                "nama_file": "berita_acara.pdf",
                "tipe_mime": "application/pdf",
                "konten_base64": base64.b64encode(report).decode(),
            },
        ],
    }
    assert base64.b64decode(body["lampiran"][0]["konten_base64"], validate=True) == photo


@pytest.mark.anyio
async def test_write_hub_ref_puts_nomor_lapor_and_checks_the_echo(respx_mock: Any) -> None:
    route = respx_mock.put(f"{BASE}/api/v1/aduan/12/nomor-lapor").mock(
        return_value=httpx.Response(200, json={"status": "sukses", "data": {"id_aduan": 12, "nomor_lapor": "4000123"}})
    )
    app = make_app(client=httpx.AsyncClient())
    assert await app.write_hub_ref("12", "4000123", gateway_ref="gw-hr-1") is None
    assert await app.write_hub_ref("12", "4000123", gateway_ref="gw-hr-1") is None  # safe to repeat
    await app.aclose()
    assert route.call_count == 2
    assert json.loads(route.calls[0].request.content) == {"nomor_lapor": "4000123", "ref_eksternal": "gw-hr-1"}
    assert route.calls[0].request.headers["X-Api-Key"] == "k"


@pytest.mark.anyio
async def test_write_hub_ref_is_retried_within_the_call_after_a_500(respx_mock: Any) -> None:
    """A PUT is idempotent (the same value again changes nothing): the shared layer repeats it."""
    route = respx_mock.put(f"{BASE}/api/v1/aduan/12/nomor-lapor").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(200, json={"status": "sukses", "data": {"id_aduan": 12, "nomor_lapor": "4000123"}}),
        ]
    )
    context = InstanceContext(
        name="lapor-hendi-semarang",
        base_url=BASE,
        timezone=gateway.WIB,
        secrets={"api_key": "k"},
        settings=LaporHendiApp.Settings(),
        retry=gateway.RetryPolicy(initial_wait=0.001, max_wait=0.01),
    )
    app = LaporHendiApp(context, client=httpx.AsyncClient())
    await app.write_hub_ref("12", "4000123", gateway_ref="gw-hr-1")
    await app.aclose()
    assert route.call_count == 2


# What each write sends, where, and what its success answer carries.
WRITES = {
    "status": ("POST", "/api/v1/aduan/4812/status", "POST /api/v1/aduan/{id}/status", "id_riwayat"),
    "follow_up": ("POST", "/api/v1/aduan/4812/tanggapan", "POST /api/v1/aduan/{id}/tanggapan", "id_tanggapan"),
    "hub_ref": ("PUT", "/api/v1/aduan/4812/nomor-lapor", "PUT /api/v1/aduan/{id}/nomor-lapor", "nomor_lapor"),
}
PESAN = "gagal menyimpan tanggapan Sri Wulandari 081234567890"  # what the app might put in a pesan


async def _do_write(app: LaporHendiApp, kind: str) -> str | None:
    if kind == "status":
        return await app.write_status("4812", RawStatus("selesai"), note="Perbaikan selesai", gateway_ref="gw-7")
    if kind == "follow_up":
        return await app.write_follow_up(
            "4812",
            "Perbaikan jalan selesai.",
            author=None,
            gateway_ref="gw-7",
            attachments=[AttachmentContent("bukti.png", "image/png", b"\x89PNG..")],
        )
    return await app.write_hub_ref("4812", "4000777", gateway_ref="gw-7")


def _sukses(kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    good = {
        "status": {"id_riwayat": 70042},
        "follow_up": {"id_tanggapan": 5009},
        "hub_ref": {"id_aduan": 4812, "nomor_lapor": "4000777"},
    }[kind]
    return {"status": "sukses", "data": good if data is None else data}


REFUSED = {  # the body says it failed: PermanentPeerError
    "gagal": lambda kind: httpx.Response(200, json={"status": "gagal", "pesan": PESAN}),
    "another status": lambda kind: httpx.Response(200, json={"status": "error", "message": PESAN}),
    "gagal with data": lambda kind: httpx.Response(201, json={**_sukses(kind), "status": "gagal", "pesan": PESAN}),
}
UNKNOWN = {  # the body proves nothing: AmbiguousOutcomeError
    "not JSON": lambda kind: httpx.Response(200, text=f"<html><body>OK {PESAN}</body></html>"),
    "empty 204": lambda kind: httpx.Response(204),
    "a JSON list": lambda kind: httpx.Response(200, json=[PESAN]),
    "no status": lambda kind: httpx.Response(200, json={"data": _sukses(kind)["data"]}),
    "sukses without data": lambda kind: httpx.Response(200, json={"status": "sukses"}),
    "sukses with data not an object": lambda kind: httpx.Response(200, json={"status": "sukses", "data": [PESAN]}),
    "sukses without the id": lambda kind: httpx.Response(200, json=_sukses(kind, {"pesan": PESAN})),
    "sukses with an id that is not one": lambda kind: httpx.Response(
        200,
        json=_sukses(kind, {"id_riwayat": True, "id_tanggapan": {"id": 5009}, "nomor_lapor": None, "id_aduan": 4812}),
    ),
    "sukses echoing another nomor_lapor": lambda kind: httpx.Response(
        200, json=_sukses(kind, {"id_riwayat": "x1", "id_tanggapan": "", "id_aduan": 4812, "nomor_lapor": "4000778"})
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(WRITES))
@pytest.mark.parametrize(
    ("answer", "expected"),
    [*((name, PermanentPeerError) for name in REFUSED), *((name, AmbiguousOutcomeError) for name in UNKNOWN)],
)
async def test_a_write_answered_without_proof_of_success_is_not_done(
    respx_mock: Any, kind: str, answer: str, expected: type[Exception]
) -> None:
    method, path, operation, _ = WRITES[kind]
    respond = {**REFUSED, **UNKNOWN}[answer]
    route = respx_mock.route(method=method, url=f"{BASE}{path}").mock(side_effect=lambda request: respond(kind))
    app = make_app(client=httpx.AsyncClient())
    with pytest.raises(expected) as caught:
        await _do_write(app, kind)
    await app.aclose()

    error = caught.value
    assert type(error) is expected  # refused is not "unknown", and unknown is not "refused"
    assert error.operation == operation and error.peer == "lapor-hendi-semarang"
    assert route.call_count == 1  # nothing repeated blindly within the call
    text = str(error) + repr(error) + error.reason
    for leak in (PESAN, "Sri Wulandari", "081234567890", "4812", "4000777", "4000778", "gw-7", "OK", "Perbaikan"):
        assert leak not in text, leak


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(WRITES))
async def test_a_write_answered_sukses_with_its_id_is_done(respx_mock: Any, kind: str) -> None:
    method, path, _, id_key = WRITES[kind]
    respx_mock.route(method=method, url=f"{BASE}{path}").mock(
        return_value=httpx.Response(201, json={**_sukses(kind), "pesan": "berhasil"})
    )
    app = make_app(client=httpx.AsyncClient())
    result = await _do_write(app, kind)
    await app.aclose()
    assert result == {"id_riwayat": "70042", "id_tanggapan": "5009", "nomor_lapor": None}[id_key]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(WRITES))
async def test_a_write_answer_unpacking_past_the_limit_is_of_unknown_outcome(respx_mock: Any, kind: str) -> None:
    """Found by review-fuzz: a write's answer was read whole, so a few KB of gzip could unpack to
    gigabytes in the daemon. It is read with the JSON limit; over it, the write may have been done."""
    method, path, operation, _ = WRITES[kind]
    bomb = gzip.compress(json.dumps(_sukses(kind)).encode()[:-1] + b" " * 1_000_000 + b"}")
    respx_mock.route(method=method, url=f"{BASE}{path}").mock(
        return_value=httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})
    )
    app = make_app(client=httpx.AsyncClient())
    app.http.max_json_bytes = 100_000
    with pytest.raises(AmbiguousOutcomeError, match="over the limit of 100000") as caught:
        await _do_write(app, kind)
    await app.aclose()
    assert caught.value.operation == operation


@pytest.mark.anyio
async def test_write_hub_ref_answered_for_another_complaint_is_unknown(respx_mock: Any) -> None:
    respx_mock.put(f"{BASE}/api/v1/aduan/12/nomor-lapor").mock(
        return_value=httpx.Response(200, json={"status": "sukses", "data": {"id_aduan": 13, "nomor_lapor": "4000123"}})
    )
    app = make_app(client=httpx.AsyncClient())
    with pytest.raises(AmbiguousOutcomeError) as caught:
        await app.write_hub_ref("12", "4000123", gateway_ref="gw-hr-1")
    await app.aclose()
    assert "id_aduan" in caught.value.reason and "13" not in str(caught.value)


def test_settings_and_declarations() -> None:
    assert LaporHendiApp.secret_names == ("api_key",)
    assert LaporHendiApp.role == "local_app"
    assert LaporHendiApp.Settings().page_size == 50
    assert LaporHendiApp.Settings().author_name == "LAPOR!-SP4N"
    for bad in ({"page_size": 0}, {"page_size": 101}, {"pagesize": 10}):
        with pytest.raises(ValidationError):
            LaporHendiApp.Settings(**bad)
    assert make_app().auth_headers() == {"X-Api-Key": "k"}


# --- round trip against the simulator ------------------------------------------------------------


@pytest.fixture
def sim() -> LaporHendiSimulator:
    simulator = create_simulator(seed=7, initial_complaints=23)
    simulator.officers_active = False
    return simulator


@pytest.fixture
def server(sim: LaporHendiSimulator) -> Any:
    with SimulatorServer(sim, port=0) as running:
        yield running


@pytest.mark.anyio
async def test_round_trip_with_the_simulator(sim: LaporHendiSimulator, server: SimulatorServer) -> None:
    with_photos = sim.submit_complaint(lampiran=2, anonim=False)
    anonymous = sim.submit_complaint(anonim=True)
    app = make_app(server.base_url, api_key=sim.api_key, page_size=4)
    try:
        before = sim.counts()["requests"]
        complaints = await collect(app.complaints_since(None))
        # 25 complaints, 4 a page; each page after the first starts with the newest read again.
        assert sim.counts()["requests"] - before == 8
        assert all(isinstance(c, Complaint) for c in complaints)
        assert [c.ref for c in complaints] == [str(r["id_aduan"]) for r in sim.complaints()]
        by_ref = {c.ref: c for c in complaints}
        assert by_ref[str(anonymous)].reporter is None and by_ref[str(anonymous)].is_anonymous
        assert by_ref[str(with_photos)].reporter is not None
        shown = {r["id_aduan"]: r for r in sim.complaints()}
        assert by_ref[str(with_photos)].reporter.nik == shown[with_photos]["pelapor"]["nik"]

        # A follow-up written by the gateway comes back with its gateway_ref.
        sim.clock.advance(3600)
        since = sim.clock.now()
        target = complaints[0]
        ref = await app.write_follow_up(
            target.ref,
            "Laporan sudah diteruskan ke OPD terkait.",
            author="Dinas Pekerjaan Umum",
            gateway_ref="gw-fu-77",
        )
        follow_ups = await collect(app.follow_ups_since(since))
        assert [(f.ref, f.complaint_ref, f.gateway_ref, f.author) for f in follow_ups] == [
            (ref, target.ref, "gw-fu-77", "LAPOR!-SP4N / Dinas Pekerjaan Umum")
        ]
        assert follow_ups[0].created_at == since.replace(microsecond=0)
        assert sim.follow_ups(int(target.ref))[-1]["sumber"] == "eksternal"

        # A status written by the gateway comes back in the history, and the complaint moved.
        change_ref = await app.write_status(
            target.ref, RawStatus("dalam proses"), note="Didisposisi", gateway_ref="gw-st-78"
        )
        changes = await collect(app.status_changes_since(since))
        assert [(c.ref, c.status.code, c.previous.code if c.previous else None, c.gateway_ref) for c in changes] == [
            (change_ref, "dalam proses", "belum terverifikasi", "gw-st-78")
        ]
        updated = await collect(app.complaints_since(since))
        assert [(c.ref, c.status.code) for c in updated] == [(target.ref, "dalam proses")]
        assert sim.counts()["follow_ups_from_gateway"] == 1
        assert sim.counts()["status_changes_from_gateway"] == 1

        # Attachments: the bytes as listed.
        [first, second] = by_ref[str(with_photos)].attachments
        content = await app.fetch_attachment(first)
        assert content.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(content.data) == first.size and content.content_type == "image/png"
        assert content.filename == first.filename

        # The simulator refuses what the real app refuses.
        with pytest.raises(PermanentPeerError) as caught:
            await app.write_status(target.ref, RawStatus("diarsipkan"), note=None, gateway_ref="gw-st-79")
        assert caught.value.status_code == 422
        with pytest.raises(PermanentPeerError) as caught:
            await app.write_follow_up("99999", "Isi", author=None, gateway_ref="gw-fu-80")
        assert caught.value.status_code == 404
    finally:
        await app.aclose()


@pytest.mark.anyio
async def test_wrong_key_is_refused(sim: LaporHendiSimulator, server: SimulatorServer) -> None:
    app = make_app(server.base_url, api_key="not-the-key")
    try:
        with pytest.raises(PermanentPeerError) as caught:
            await collect(app.complaints_since(None))
    finally:
        await app.aclose()
    assert caught.value.status_code == 401
    assert "not-the-key" not in str(caught.value)
    assert sim.counts()["unauthorized"] == 1


def test_simulator_is_seeded_and_ticks() -> None:
    clock = SimClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    first = create_simulator(seed=3, clock=clock, initial_complaints=40)
    again = create_simulator(seed=3, clock=clock, initial_complaints=40)
    assert first.complaints() == again.complaints()
    records = first.complaints()
    assert all(r["status"] == "belum terverifikasi" and r["nomor_tiket"].startswith("LH-2026-") for r in records)
    assert all(r["pelapor"] is None for r in records if r["anonim"])
    for r in records:
        if r["pelapor"]:
            assert r["pelapor"]["nik"].startswith("3374") and len(r["pelapor"]["nik"]) == 16
            assert r["pelapor"]["telepon"].startswith("08") and len(r["pelapor"]["telepon"]) in (11, 12)
    assert first.demo_environment() == {"LAPOR_HENDI_API_KEY": "demo-lapor-hendi-key"}

    first.officers_active = False
    first.tick()
    assert first.counts()["complaints"] == 40 and first.counts()["follow_ups_by_officers"] == 0
    first.officers_active = True
    for _ in range(10):
        clock.advance(600)
        first.tick()
    counts = first.counts()
    assert counts["complaints"] > 40 and counts["follow_ups_by_officers"] > 0
    answered = next(r for r in first.complaints() if first.follow_ups(r["id_aduan"]))
    reply = first.follow_ups(answered["id_aduan"])[0]
    assert reply["sumber"] == "lapor_hendi" and reply["ref_eksternal"] is None
    assert first.answer(answered["id_aduan"], "Sudah kami tangani.") > reply["id_tanggapan"]
