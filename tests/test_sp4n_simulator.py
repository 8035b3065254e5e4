"""The sp4n simulator speaks the LAPOR! v3 contract of ``reference/lapor-v3.md``, seen from
a client over real HTTP on loopback (``SimulatorServer`` on port 0, httpx).

One test (or a few) per point of the contract: auth, Laravel's answers by ``Accept``,
statuses, the read with its history logs, follow-ups and documents, the upload, the
create, the forward, the follow-up add, master data, the hub's faults and quirks, and
the inspection and driving methods. Everything is seeded: no sleeps, no luck.
"""

from __future__ import annotations

import json
import random
import re
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway import WIB
from gateway.simulation import SimClock, SimulatorServer
from lapor_gateway_adapters.sp4n._world import (
    CLOSED,
    HOLD_REASON,
    INSTITUTION_TABLE,
    PLACEHOLDERS,
    STATUS_CODES,
    STATUS_NAMES,
    TEMPLATES,
    evidence_png,
)
from lapor_gateway_adapters.sp4n.simulator import READ_DRIFTS, Sp4nSimulator, create_simulator

USER_ID = "58231"
JSON = {"Accept": "application/json"}
PNG = evidence_png(random.Random(1))
CREATE = {
    "title": "Jalan berlubang",
    "content": "Ada lubang besar di tengah jalan.",
    "channel": 2,
    "is_new_user_slider": False,
    "user_id": int(USER_ID),
    "is_inbox": True,
    "is_disposisi_slider": True,
    "classification_id": 1,
    "disposition_id": 200101,
    "category_id": 41,
    "priority_program_id": None,
    "location_id": 11,
    "community_id": None,
    "date_of_incident": "2026-11-01",
    "copy_externals": None,
    "info_disposition": None,
    "info_attachments": None,
    "tags_raw": "#lapor-gateway #gw-000001",
    "is_approval": False,
    "is_anonymous": False,
    "is_secret": False,
    "is_priority": False,
    "attachments": "[]",
}
TIME = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}\Z")


@pytest.fixture
def hub() -> Iterator[tuple[Sp4nSimulator, SimulatorServer]]:
    sim = create_simulator(seed=7, clock=SimClock())
    sim.quiesce()
    with SimulatorServer(sim, port=0) as server:
        yield sim, server


def client_of(sim: Sp4nSimulator, server: SimulatorServer, *, accept: bool = True, **headers: str) -> httpx.Client:
    base = {"Authorization": sim.authorization, "token": sim.token, **(JSON if accept else {})}
    return httpx.Client(base_url=server.base_url, headers={**base, **headers}, follow_redirects=False)


def created_id(body: dict[str, Any]) -> int:
    """The new id, from whichever of the three places the answer put it."""
    if "complaint_id" in body:
        return body["complaint_id"]
    data = body["data"]
    return data["complaint_id"] if "complaint_id" in data else data["results"]["complaint"]["id"]


def follow_up_form(complaint_id: int, **fields: str) -> dict[str, tuple[None, str]]:
    """The client's follow-up add: every field a string, as multipart parts."""
    values = {
        "user_id": USER_ID,
        "institution_from_id": "100234",
        "institution_to_id": "200101",
        "complaint_id": str(complaint_id),
        "info_disposition": "",
        "template_code": "reply_gateway",
        "rating": "0",
        "is_secret": "0",
        "content": "Sudah kami tinjau ke lokasi.",
        **fields,
    }
    return {name: (None, value) for name, value in values.items()}


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    # a valid stream: every chunk's CRC matches and the image data inflates to the rows
    at, idat = 8, b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        tag, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        idat += body if tag == b"IDAT" else b""
        at += 12 + length
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


# --- 1. auth ---------------------------------------------------------------------------------------


def test_auth_value_is_compared_exactly_and_the_token_is_required(hub) -> None:
    sim, server = hub
    assert sim.demo_environment() == {"SP4N_AUTHORIZATION": sim.authorization, "SP4N_TOKEN": sim.token}
    with client_of(sim, server) as client:
        assert client.get("/masters/templates").status_code == 200
        for headers in (
            {"Authorization": f"Bearer {sim.authorization}"},
            {"Authorization": sim.authorization + "x"},
            {"token": "wrong"},
            {"Authorization": sim.authorization.upper()},
        ):
            answer = client.get("/masters/templates", headers=headers)
            assert answer.status_code == 401 and answer.json()["message"] == "Unauthenticated."
    without_token = httpx.get(
        f"{server.base_url}/masters/templates", headers={"Authorization": sim.authorization, **JSON}
    )
    assert without_token.status_code == 401
    assert sim.counts()["unauthorized"] == 5


def test_the_auth_header_name_is_an_option() -> None:
    sim = create_simulator(seed=1, clock=SimClock(), auth_header="auth", authorization="k-123", token="t-9")
    with SimulatorServer(sim, port=0) as server:
        good = httpx.get(f"{server.base_url}/masters/templates", headers={"auth": "k-123", "token": "t-9", **JSON})
        assert good.status_code == 200
        wrong_name = httpx.get(
            f"{server.base_url}/masters/templates", headers={"Authorization": "k-123", "token": "t-9", **JSON}
        )
        assert wrong_name.status_code == 401
    with pytest.raises(ValueError, match="auth_header"):
        create_simulator(auth_header=" ")


# --- 2. Accept -------------------------------------------------------------------------------------


def test_errors_without_a_json_accept_are_a_browsers_redirect(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    base = server.base_url
    with client_of(sim, server, accept=False) as client:
        unauthorized = client.get("/masters/templates", headers={"token": "wrong"})
        assert unauthorized.status_code == 302 and unauthorized.headers["Location"] == f"{base}/login"
        assert unauthorized.headers["Content-Type"].startswith("text/html") and "Redirecting to" in unauthorized.text
        for answer in (
            client.post("/complaints/complaint", json={**CREATE, "title": ""}),  # 422
            client.get("/complaints/4999999/complaint"),  # 404
            client.get("/no/such/path"),  # 404 (no route)
            client.get("/complaints/complaint"),  # 405
            client.post("/complaints/followup/add", json={"complaint_id": ident}),
        ):  # refused body
            assert answer.status_code == 302 and answer.headers["Location"] == f"{base}/"
            assert answer.headers["Content-Type"].startswith("text/html")
        back = client.post(f"/complaints/process/{ident}/reject", json={}, headers={"Referer": f"{base}/form"})
        assert back.status_code == 302 and back.headers["Location"] == f"{base}/form"
        for accept in ("*/*", "text/html, application/json", "application/json;q=0.5, text/html"):
            assert client.get("/complaints/4999999/complaint", headers={"Accept": accept}).status_code == 302
        # Successes are JSON in any case.
        read = client.get(f"/complaints/{ident}/complaint")
        assert read.status_code == 200 and read.json()["results"]["data"]["id"] == ident
    assert sim.counts()["complaints"] == 1  # nothing refused was done
    missing = sim.counts()["missing_accept"]
    assert missing == 11
    with client_of(sim, server) as client:
        assert client.get("/complaints/4999999/complaint").status_code == 404
        assert (
            client.get("/complaints/4999999/complaint", headers={"Accept": "application/vnd.api+json"}).status_code
            == 404
        )
        ajax = client.get(
            "/complaints/4999999/complaint", headers={"Accept": "*/*", "X-Requested-With": "XMLHttpRequest"}
        )
        assert ajax.status_code == 404 and ajax.json()["message"]
    assert sim.counts()["missing_accept"] == missing + 1  # the XMLHttpRequest with */* lacked it too


def test_errors_with_a_json_accept_are_laravels_json(hub) -> None:
    sim, server = hub
    with client_of(sim, server) as client:
        invalid = client.post("/complaints/complaint", json={**CREATE, "title": "", "category_id": 7})
        assert invalid.status_code == 422
        body = invalid.json()
        assert body["message"] == "The given data was invalid." and body["success"] is False
        assert body["errors"] == {
            "title": ["The title field is required."],
            "category_id": ["The selected category id is invalid."],
        }
        missing = client.get("/complaints/4999999/complaint")
        assert missing.status_code == 404 and set(missing.json()) == {"success", "message"}
        assert client.delete("/masters/templates").status_code == 405


# --- 3. statuses ---------------------------------------------------------------------------------------


def test_statuses_are_names_with_opaque_codes_of_our_own() -> None:
    assert STATUS_NAMES == (
        "Belum Terverifikasi",
        "Terverifikasi",
        "Didisposisi",
        "Ditunda",
        "Dalam Proses",
        "Selesai",
        "Ditolak",
        "Diarsipkan",
    )
    codes = [STATUS_CODES[name] for name in STATUS_NAMES]
    assert all(isinstance(code, int) for code in codes) and len(set(codes)) == len(codes)
    assert STATUS_CODES["Koordinasi"] not in codes
    assert {"Selesai", "Ditolak", "Diarsipkan"} == CLOSED


def test_the_officers_lifecycle_moves_through_the_named_statuses() -> None:
    clock = SimClock()
    sim = create_simulator(seed=3, clock=clock)
    ids = sim.preload([f"gw-{n}" for n in range(60)])
    for _ in range(30):
        clock.advance(2 * 3600)
        sim.tick()
    seen = {entry["status_new"] for i in ids for entry in sim.logs(i) if entry["status_new"]}
    assert seen == set(STATUS_NAMES)
    assert {c["status_name"] for c in sim.complaints()} <= set(STATUS_NAMES)
    assert all(c["status_code"] == STATUS_CODES[c["status_name"]] for c in sim.complaints())


# --- 4. read one complaint -----------------------------------------------------------------------------


def test_read_serves_data_and_template_logs_with_json_encoded_data(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"], disposition_id="100234")
    sim.act(ident, "Terverifikasi")
    sim.act(ident, "Didisposisi", institution_to="200101")
    sim.act(ident, "Didisposisi", institution_to="200102")  # handed on: a disposition, not a status change
    sim.officer_follow_up(ident, "Tim akan meninjau lokasi.")  # a note in the history
    sim.act(ident, "Dalam Proses")
    sim.act(ident, "Ditunda")
    with client_of(sim, server) as client:
        results = client.get(f"/complaints/{ident}/complaint").json()["results"]
    data, logs = results["data"], results["data_logs"]
    assert (data["status_code"], data["status_name"]) == (STATUS_CODES["Ditunda"], "Ditunda")
    assert (data["disposition_id"], data["disposition_name"]) == (200102, "Dinas Lingkungan Hidup Kota Semarang")
    assert data["tags_raw"] == "gw-1" and data["is_secret"] == 0 and data["is_anonymous"] == 0

    assert [set(log) for log in logs] == [
        {"id", "content", "institution_from_name", "institution_to_name", "data", "created_at"}
    ] * 7
    assert all(TIME.match(log["created_at"]) and isinstance(log["id"], int) for log in logs)
    assert logs[0]["created_at"] == sim.clock.now().astimezone(WIB).strftime("%d-%m-%Y %H:%M:%S")
    used = {name for log in logs for name in re.findall(r"\{\{(\w+)\}\}", log["content"])}
    assert used <= set(PLACEHOLDERS) and {"institution_from", "institution_to", "status_old", "status_new"} <= used
    decoded = [None if log["data"] is None else json.loads(log["data"]) for log in logs]
    assert all(isinstance(log["data"], str) for log in logs if log["data"] is not None)
    changes = [(d["status_old"]["name"], d["status_new"]["name"]) for d in decoded if d and "status_old" in d]
    assert changes == [
        ("Belum Terverifikasi", "Terverifikasi"),
        ("Terverifikasi", "Didisposisi"),
        ("Didisposisi", "Dalam Proses"),
        ("Dalam Proses", "Ditunda"),
    ]
    assert decoded[0]["status_new"]["name"] == "Belum Terverifikasi" and "status_old" not in decoded[0]
    assert all(
        d["status_new"]["code"] == STATUS_CODES[d["status_new"]["name"]] for d in decoded if d and "status_new" in d
    )
    disposed, note = logs[3], logs[4]
    assert decoded[3] == {} and disposed["data"] == "{}"
    assert "{{institution_to}}" in disposed["content"]
    assert (disposed["institution_from_name"], disposed["institution_to_name"]) == (
        "Dinas Pekerjaan Umum Kota Semarang",
        "Dinas Lingkungan Hidup Kota Semarang",
    )
    assert note["data"] is None
    assert decoded[6]["reason_description"] == HOLD_REASON and "lengkapi" in HOLD_REASON
    assert sim.logs(ident)[6]["text"] == (
        "Status laporan diubah dari Dalam Proses menjadi Ditunda oleh Dinas Lingkungan Hidup Kota Semarang"
    )


def test_rejections_archives_and_forwards_carry_their_reason(hub) -> None:
    sim, server = hub
    first, second, third = sim.preload(["gw-1", "gw-2", "gw-3"])
    sim.act(first, "Ditolak", reason="Isi laporan tidak jelas.")
    sim.act(second, "Diarsipkan")
    with client_of(sim, server) as client:
        client.post(
            f"/complaints/process/{third}/reject",
            json={"is_request": 1, "reason": 300101, "reason_description": "Jalan provinsi.", "not_authority": 1},
        )
        reasons = [
            json.loads(client.get(f"/complaints/{i}/complaint").json()["results"]["data_logs"][-1]["data"]).get(
                "reason_description"
            )
            for i in (first, second, third)
        ]
    assert reasons == ["Isi laporan tidak jelas.", "Laporan tidak dapat diproses.", "Jalan provinsi."]


# --- 5. follow-ups and documents -----------------------------------------------------------------------


def test_follow_ups_are_served_with_their_fields_and_attachments(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"], disposition_id="200101")
    plain = sim.officer_follow_up(ident, "Sudah dijadwalkan.")
    shown = sim.officer_follow_up(
        ident, "Foto hasil perbaikan.", attachments=[PNG, ("surat.pdf", "application/pdf", b"%PDF-1.4 ...")], photo=True
    )
    secret = sim.officer_follow_up(ident, "Catatan internal.", is_secret=True)
    with client_of(sim, server) as client:
        rows = client.get(f"/complaints/{ident}/followups").json()["results"]["data"]
        assert [r["id"] for r in rows] == [plain["id"], shown["id"], secret["id"]]
        assert all(
            set(r)
            == {
                "id",
                "complaint_id",
                "content",
                "created_at",
                "institution_from_id",
                "institution_from_name",
                "institution_to_id",
                "is_secret",
                "template_code",
                "rating",
                "attachments",
            }
            for r in rows
        )
        assert all(TIME.match(r["created_at"]) and r["complaint_id"] == ident for r in rows)
        assert (rows[0]["institution_from_id"], rows[0]["institution_from_name"]) == (
            200101,
            "Dinas Pekerjaan Umum Kota Semarang",
        )
        assert [r["is_secret"] for r in rows] == [0, 0, 1]
        assert rows[0]["attachments"] == [] and len(rows[1]["attachments"]) == 3
        assert all(set(a) == {"id", "filename", "mime", "size"} for a in rows[1]["attachments"])
        assert [a["mime"] for a in rows[1]["attachments"]] == ["image/png", "application/pdf", "image/png"]
        for attachment in rows[1]["attachments"]:
            download = client.get(f"/complaints/file/{attachment['id']}")
            assert download.status_code == 200 and download.headers["Content-Type"].startswith(attachment["mime"])
            assert len(download.content) == attachment["size"] == len(sim.document(attachment["id"]))
            if attachment["mime"] == "image/png":
                assert png_size(download.content)
        assert client.get(f"/complaints/file/{rows[1]['attachments'][0]['id']}").content == PNG
        assert client.get("/complaints/file/999999").status_code == 404
        assert client.get("/complaints/file/abc").status_code == 404


def test_officers_sometimes_attach_a_photo_or_mark_a_follow_up_secret() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        clock = SimClock()
        sim = create_simulator(seed=seed, clock=clock, change_rate_per_hour=0.5)
        ids = sim.preload([f"gw-{n}" for n in range(200)])
        for _ in range(24):
            clock.advance(3600)
            sim.tick()
        return [f for i in ids for f in sim.follow_ups(i)]

    follow_ups = run(4)
    with_photo = [f for f in follow_ups if f["attachments"]]
    secret = [f for f in follow_ups if f["is_secret"]]
    assert len(follow_ups) > 100
    assert 0 < len(with_photo) < 0.3 * len(follow_ups) and 0 < len(secret) < 0.2 * len(follow_ups)
    assert follow_ups == run(4)  # seeded


# --- 6. upload ---------------------------------------------------------------------------------------


def test_upload_takes_every_file_as_attachments_in_one_request(hub) -> None:
    sim, server = hub
    with client_of(sim, server) as client:
        answer = client.post(
            "/complaints/complaint/file",
            files=[
                ("attachments[]", ("a.png", PNG, "image/png")),
                ("attachments[]", ("b.jpg", b"\xff\xd8jpeg", "image/jpeg")),
            ],
        )
        assert answer.status_code == 200
        docs = answer.json()["results"]["docs"]
        assert [(d["filename"], d["mime"], d["size"]) for d in docs] == [
            ("a.png", "image/png", len(PNG)),
            ("b.jpg", "image/jpeg", 6),
        ]
        assert all(isinstance(d["id"], int) for d in docs)
        for refused in (
            client.post("/complaints/complaint/file", json={"attachments": ["a"]}),
            client.post("/complaints/complaint/file", data={"attachments[]": "a"}),
            client.post("/complaints/complaint/file", files=[("file", ("a.png", PNG, "image/png"))]),
        ):
            assert refused.status_code == 422 and "attachments" in refused.json()["errors"]
    assert [d["id"] for d in sim.documents()] == [d["id"] for d in docs]


# --- 7. create ------------------------------------------------------------------------------------------


def test_create_takes_the_clients_json_and_puts_the_id_at_one_of_three_places(hub) -> None:
    sim, server = hub
    with client_of(sim, server) as client:
        docs = client.post("/complaints/complaint/file", files=[("attachments[]", ("a.png", PNG, "image/png"))]).json()[
            "results"
        ]["docs"]
        places = set()
        for n in range(12):
            path = "/complaints/complaint-lmw" if n % 2 else "/complaints/complaint"
            body = {
                **CREATE,
                "attachments": json.dumps([d["id"] for d in docs]) if n == 0 else "[]",
                "extra_key_laravel_ignores": "x",
            }
            answer = client.post(path, json=body)
            assert answer.status_code == 200, answer.text
            places.add(
                "complaint_id"
                if "complaint_id" in answer.json()
                else "data.complaint_id"
                if "complaint_id" in answer.json()["data"]
                else "data.results.complaint.id"
            )
            assert created_id(answer.json()) == sim.complaints()[-1]["id"]
        assert places == {"complaint_id", "data.complaint_id", "data.results.complaint.id"}
    first = sim.complaints()[0]
    assert first["attachments"] == [docs[0]["id"]] and first["location_id"] == "11"
    assert (first["title"], first["tags_raw"], first["date_of_incident"]) == (
        CREATE["title"],
        CREATE["tags_raw"],
        "2026-11-01",
    )
    assert (first["status_name"], first["disposition_id"], first["is_inbox"]) == ("Belum Terverifikasi", "200101", 1)
    assert sim.counts()["requests_by_route"]["POST /complaints/complaint-lmw"] == 6


def test_create_is_validated_as_laravel_would(hub) -> None:
    sim, server = hub

    def errors(body: Any = None, **kwargs: Any) -> set[str]:
        answer = client.post("/complaints/complaint", **({"json": body} if body is not None else kwargs))
        assert answer.status_code == 422, answer.text
        return set(answer.json()["errors"])

    required = {"title", "content", "user_id", "classification_id", "category_id", "disposition_id", "location_id"}
    with client_of(sim, server) as client:
        assert errors({}) == required
        assert errors({k: v for k, v in CREATE.items() if k not in required}) == required
        assert errors(data={k: str(v) for k, v in CREATE.items()}) == required  # a form is not read
        assert errors(files={k: (None, str(v)) for k, v in CREATE.items()}) == required  # nor multipart
        assert errors(content=b"{not json", headers={"Content-Type": "application/json"}) == required
        for field, value in [
            ("title", 12),
            ("content", ["a"]),
            ("user_id", "abc"),
            ("user_id", 77),
            ("channel", 99),
            ("channel", True),
            ("classification_id", 9),
            ("category_id", 436),
            ("disposition_id", 123),
            ("location_id", 33),
            ("location_id", 3374),
            ("is_anonymous", "true"),
            ("is_secret", None),
            ("is_priority", 2),
            ("is_inbox", "yes"),
            ("attachments", [1]),
            ("attachments", "[1,2]"),
            ("attachments", "not json"),
            ("attachments", "{}"),
            ("date_of_incident", "kemarin"),
            ("tags_raw", ["#a"]),
            ("info_disposition", 5),
            ("priority_program_id", "x"),
            ("copy_externals", "x"),
        ]:
            assert errors({**CREATE, field: value}) == {field}, (field, value)
        # Laravel's integer and boolean rules: digit strings, 0/1 and "0"/"1" are fine.
        lenient = {
            **CREATE,
            "user_id": USER_ID,
            "category_id": "41",
            "location_id": " 34 ",
            "channel": "2",
            "is_anonymous": 1,
            "is_secret": "0",
            "is_priority": 0,
            "date_of_incident": None,
            "priority_program_id": 3,
            "tags_raw": "",
        }
        answer = client.post("/complaints/complaint", json=lenient)
        assert answer.status_code == 200, answer.text
    [stored] = sim.complaints()
    assert (stored["is_anonymous"], stored["is_secret"], stored["location_id"]) == (1, 0, "34")


# --- 8. forward ("bukan wewenang") -----------------------------------------------------------------------


def test_forward_hands_the_complaint_to_the_institution_in_reason(hub) -> None:
    sim, server = hub
    ident, other = sim.preload(["gw-1", "gw-2"])
    body = {"is_request": 1, "reason": 200103, "reason_description": "Urusan perhubungan.", "not_authority": 1}
    with client_of(sim, server) as client:
        for refused, fields in [
            ({**body, "reason": 424242}, {"reason"}),
            ({**body, "reason": None}, {"reason"}),
            ({**body, "reason_description": None}, {"reason_description"}),
        ]:
            answer = client.post(f"/complaints/process/{ident}/reject", json=refused)
            assert answer.status_code == 422 and set(answer.json()["errors"]) == fields
        as_form = client.post(f"/complaints/process/{ident}/reject", data={k: str(v) for k, v in body.items()})
        assert as_form.status_code == 422
        assert client.post("/complaints/process/4999999/reject", json=body).status_code == 404
        assert sim.logs(ident)[-1]["kind"] == "created"
        answer = client.post(f"/complaints/process/{ident}/reject", json={**body, "reason": "200103"})
        assert answer.status_code == 200 and answer.json()["results"]["data"]["disposition_id"] == 200103
    entry = sim.logs(ident)[-1]
    assert (entry["status_new"], entry["institution_to_id"], entry["data"]["reason_description"]) == (
        "Didisposisi",
        "200103",
        "Urusan perhubungan.",
    )
    assert sim.complaints()[0]["disposition_id"] == "200103" and sim.counts()["forwards"] == 1


# --- 9. follow-up add ------------------------------------------------------------------------------------


def test_follow_up_add_takes_multipart_strings_and_numbered_attachments(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    with client_of(sim, server) as client:
        answer = client.post(
            "/complaints/followup/add",
            files={
                **follow_up_form(ident, is_secret="1"),
                "attachment[0]": ("foto.png", PNG, "image/png"),
                "attachment[1]": ("b.pdf", b"%PDF", "application/pdf"),
            },
        )
        assert answer.status_code == 200, answer.text
        new_id = answer.json()["results"]["data"]["id"]
        [row] = client.get(f"/complaints/{ident}/followups").json()["results"]["data"]
        assert row["id"] == new_id and row["is_secret"] == 1 and row["template_code"] == "reply_gateway"
        assert [a["filename"] for a in row["attachments"]] == ["foto.png", "b.pdf"]
        assert client.get(f"/complaints/file/{row['attachments'][0]['id']}").content == PNG
        template = client.post("/complaints/followup/add", files=follow_up_form(ident, template_code="TL-JADWAL"))
        assert template.status_code == 200
    [stored, _] = sim.follow_ups(ident)
    assert (stored["source"], stored["institution_from_id"], stored["institution_to_id"]) == ("api", "100234", "200101")
    assert sim.counts()["follow_ups_from_gateway"] == 2
    assert sim.logs(ident)[-1]["kind"] == "note"


def test_follow_up_add_refuses_what_the_hub_would(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    with client_of(sim, server) as client:

        def errors(**kwargs: Any) -> set[str]:
            answer = client.post("/complaints/followup/add", **kwargs)
            assert answer.status_code == 422, answer.text
            return set(answer.json()["errors"])

        required = {"user_id", "institution_from_id", "complaint_id", "template_code", "content"}
        form = {name: value for name, (_, value) in follow_up_form(ident).items()}
        assert errors(json=form) == required  # JSON is not read
        assert errors(data=form) == required  # nor a urlencoded form
        assert errors(files=follow_up_form(ident, template_code="reply_lmw")) == {"template_code"}
        assert errors(files=follow_up_form(ident, user_id="9001")) == {"user_id"}
        assert errors(files=follow_up_form(4999999)) == {"complaint_id"}
        assert errors(files=follow_up_form(ident, institution_from_id="1")) == {"institution_from_id"}
        assert errors(files=follow_up_form(ident, is_secret="true")) == {"is_secret"}
        assert errors(files=follow_up_form(ident, content="   ")) == {"content"}
        assert errors(files={**follow_up_form(ident), "attachment[0]": (None, "not a file")}) == {"attachment.0"}
    assert sim.follow_ups(ident) == []


def test_the_integrator_template_code_is_an_option() -> None:
    sim = create_simulator(seed=1, clock=SimClock(), integrator_template_code="reply_lmw", user_id="5218120")
    (ident,) = sim.preload(["gw-1"])
    with SimulatorServer(sim, port=0) as server, client_of(sim, server) as client:
        answer = client.post(
            "/complaints/followup/add", files=follow_up_form(ident, template_code="reply_lmw", user_id="5218120")
        )
        assert answer.status_code == 200
        refused = client.post("/complaints/followup/add", files=follow_up_form(ident, user_id="5218120"))
        assert refused.status_code == 422 and set(refused.json()["errors"]) == {"template_code"}
    assert sim.complaints()[0]["user_id"] == "5218120"  # preload's default account is the option's


# --- 10. master data -----------------------------------------------------------------------------------------


def test_master_data_serves_results_data_with_id_and_name(hub) -> None:
    sim, server = hub
    with client_of(sim, server) as client:
        institutions = client.get("/masters/institutions/external", params={"page_size": 1000}).json()
        templates = client.get("/masters/templates", params={"page_size": 1000}).json()
    assert len(institutions["results"]["data"]) == len(INSTITUTION_TABLE)
    assert len(templates["results"]["data"]) == len(TEMPLATES)
    for row in institutions["results"]["data"] + templates["results"]["data"]:
        assert isinstance(row["id"], int) and isinstance(row["name"], str) and row["name"]


# --- 11. faults and quirks ----------------------------------------------------------------------------------


def test_drifted_reads_take_the_real_shapes_and_pass(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    sim.act(ident, "Terverifikasi")
    sim.officer_follow_up(ident, "Catatan.")  # the newest log is a note: drift picks the newest with data
    seen: set[str] = set()
    sim.faults.configure(drift_rate=1.0)
    with client_of(sim, server) as client:
        for _ in range(20):
            results = client.get(f"/complaints/{ident}/complaint").json()["results"]
            if "data_logs" not in results:
                seen.add("no_data_logs")
                assert results["data"]["status_name"] == "Terverifikasi"  # the current status is still readable
            elif "status_name" not in results["data"]:
                seen.add("no_status_name")
                assert results["data"]["status_code"] == STATUS_CODES["Terverifikasi"]
            elif "data" not in results["data_logs"][1]:
                seen.add("log_without_data")
            else:
                with pytest.raises(ValueError):
                    json.loads(results["data_logs"][1]["data"])
                seen.add("log_data_invalid")
            assert len(results.get("data_logs", [1, 2, 3])) == 3
        assert seen == set(READ_DRIFTS)
        follow_ups = client.get(f"/complaints/{ident}/followups").json()["results"]["data"]
        assert not any(
            set(f)
            == {
                "id",
                "complaint_id",
                "content",
                "created_at",
                "institution_from_id",
                "institution_from_name",
                "institution_to_id",
                "is_secret",
                "template_code",
                "rating",
            }
            and isinstance(f.get("attachments"), list)
            and TIME.match(f["created_at"])
            for f in follow_ups
        )
        sim.faults.configure(drift_rate=0.0)
        healthy = client.get(f"/complaints/{ident}/complaint").json()["results"]
        assert [json.loads(log["data"]) if log["data"] else None for log in healthy["data_logs"]][1]["status_new"]
    assert sim.faults.injected["drifted"] == 21


def test_no_id_rate_commits_a_create_answered_without_an_id(hub) -> None:
    sim, server = hub
    hub_sim = create_simulator(seed=2, clock=SimClock(), no_id_rate=1.0)
    assert hub_sim.quirks == {"no_id_rate": 1.0, "false_success_rate": 0.0}
    assert sim.set_quirks(no_id_rate=1.0) == {"no_id_rate": 1.0, "false_success_rate": 0.0}
    with client_of(sim, server) as client:
        answers = [client.post("/complaints/complaint", json=CREATE) for _ in range(6)]
        assert all(a.status_code == 200 for a in answers)
        for answer in answers:
            body = answer.json()
            with pytest.raises((KeyError, TypeError, AssertionError)):
                assert created_id(body)
        assert sim.counts()["complaints"] == 6 and sim.counts()["no_id_answers"] == 6
        sim.set_quirks(no_id_rate=0)
        assert created_id(client.post("/complaints/complaint", json=CREATE).json()) == sim.complaints()[-1]["id"]
    for bad in (-0.1, 1.5, "x", True):
        with pytest.raises(ValueError, match="no_id_rate"):
            sim.set_quirks(no_id_rate=bad)
    with pytest.raises(ValueError, match="false_success_rate"):
        create_simulator(false_success_rate=2)


def test_false_success_rate_answers_200_without_committing_the_follow_up(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    sim.set_quirks(false_success_rate=1.0)
    with client_of(sim, server) as client:
        answer = client.post("/complaints/followup/add", files=follow_up_form(ident))
        assert answer.status_code == 200 and answer.json()["success"] == "false" and answer.json()["message"]
        assert "results" not in answer.json()
        assert client.post("/complaints/followup/add", files=follow_up_form(ident, content="")).status_code == 422
    assert sim.follow_ups(ident) == [] and sim.counts()["false_successes"] == 1
    sim.set_quirks(false_success_rate=0.0)


def test_quirks_are_set_over_http_too(hub) -> None:
    sim, server = hub
    url = f"{server.base_url}/_sim/quirks"
    before = sim.counts()["requests"]
    shown = httpx.post(url, json={"no_id_rate": 0.25}).json()
    assert shown == {
        "quirks": {"no_id_rate": 0.25, "false_success_rate": 0.0},
        "no_id_answers": 0,
        "false_successes": 0,
    }
    assert sim.quirks["no_id_rate"] == 0.25 and httpx.get(url).json()["quirks"]["no_id_rate"] == 0.25
    for bad in ({"no_id_rate": 3}, {"bogus": 1}, [1]):
        refused = httpx.post(url, json=bad)
        assert refused.status_code == 400 and refused.json()["error"]
    assert sim.quirks["no_id_rate"] == 0.25 and sim.counts()["requests"] == before  # control: not counted


def test_a_lost_follow_up_answer_is_committed(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    sim.faults.configure(lost_answer_rate=1.0)
    with client_of(sim, server) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/complaints/followup/add", files=follow_up_form(ident))
        assert client.post("/complaints/followup/add", files=follow_up_form(4999999)).status_code == 422
    assert len(sim.follow_ups(ident)) == 1 and sim.faults.injected["lost_answers"] == 1


# --- 12. inspection and driving ------------------------------------------------------------------------------


def test_act_and_officer_follow_up_drive_the_hub_and_are_recorded(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    sim.clock.advance(60)
    entry = sim.act(ident, "Terverifikasi")
    assert (entry["kind"], entry["status_old"], entry["status_new"]) == (
        "status",
        "Belum Terverifikasi",
        "Terverifikasi",
    )
    disposed = sim.act(ident, "Didisposisi")  # without an institution: its category's agency
    assert disposed["institution_to_id"] == sim.complaints()[0]["disposition_id"] != "100234"
    held = sim.act(ident, "Ditunda", reason="Mohon kirim foto lokasi.")
    assert held["data"]["reason_description"] == "Mohon kirim foto lokasi."
    moved = sim.act(ident, "Ditunda", institution_to="200105")
    assert moved["kind"] == "disposition" and moved["status_new"] is None
    follow_up = sim.officer_follow_up(ident, "Mohon lengkapi data.", is_secret=True, photo=True)
    assert follow_up["is_secret"] == 1 and len(follow_up["attachments"]) == 1 and follow_up["source"] == "officer"
    changes = sim.changes()
    assert [(c["kind"], c.get("status")) for c in changes] == [
        ("status", "Terverifikasi"),
        ("status", "Didisposisi"),
        ("status", "Ditunda"),
        ("follow_up", None),
    ]
    assert changes[0]["code"] == STATUS_CODES["Terverifikasi"] and changes[0]["at"] == sim.clock.now()
    assert changes[-1]["ref"] == str(follow_up["id"])
    for bad in (
        {"status_name": "Menunggu"},
        {"status_name": "Ditunda"},
        {"status_name": "Selesai", "institution_to": "1"},
    ):
        with pytest.raises(ValueError):
            sim.act(ident, **bad)
    with pytest.raises(KeyError):
        sim.act(4999999, "Selesai")
    assert sim.counts()["documents"] == 1 and png_size(sim.document(follow_up["attachments"][0]))


def test_the_path_prefix_of_the_splp_gateway() -> None:
    sim = create_simulator(seed=1, clock=SimClock(), path_prefix="/lapor/3.0.0/")
    (ident,) = sim.preload(["gw-1"])
    with SimulatorServer(sim, port=0) as server, client_of(sim, server) as client:
        assert client.get(f"/lapor/3.0.0/complaints/{ident}/complaint").status_code == 200
        assert client.get(f"/complaints/{ident}/complaint").status_code == 404
        sim.faults.configure(lost_answer_rate=1.0)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/lapor/3.0.0/complaints/complaint", json=CREATE)
    assert sim.counts()["complaints"] == 2


def test_times_are_wib_without_an_offset(hub) -> None:
    sim, server = hub
    (ident,) = sim.preload(["gw-1"])
    sim.clock.advance(3600 * 20)  # 04:00 WIB the next day
    sim.officer_follow_up(ident, "Pagi.")
    with client_of(sim, server) as client:
        [row] = client.get(f"/complaints/{ident}/followups").json()["results"]["data"]
    at = datetime.strptime(row["created_at"], "%d-%m-%Y %H:%M:%S").replace(tzinfo=WIB)
    assert at == sim.clock.now() and at.utcoffset() == timedelta(hours=7)
