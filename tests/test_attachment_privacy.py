"""Attachments under UU PDP, end to end over loopback: photos reach the hub (and the local app)
without their metadata, and files of anonymous complaints that look like identity documents are
held back with a reason the operator sees. Both simulators, the real engine, a real store."""

from __future__ import annotations

import html
import io
import json
import re

import httpx
import pytest
from dashboard_kit import served
from image_kit import gps_of, jpeg, open_image, png
from sqlmodel import select
from test_delivery_guarantees import LOCAL, _invoke, _quiet, harness
from typer.testing import CliRunner

import gateway.cli
from gateway._logging import configure_logging
from gateway._store._tables import AttachmentRow
from gateway._timezones import utcnow
from gateway._web._dashboard import DashboardContext
from gateway._web._texts import EN

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MARKER = "PLANTED-a41f07"
BROKEN_JPEG = b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00" + MARKER.encode() + b" and then the file ends"


def _rows(h, local_id: int) -> dict[str, AttachmentRow]:
    with h.store.session() as s:
        rows = s.exec(select(AttachmentRow).where(AttachmentRow.complaint_id == h.complaint_id(local_id))).all()
    return {row.filename: row for row in rows}


def _documents(h, local_id: int) -> list[bytes]:
    (hub_c,) = h.at_hub(local_id)
    return [h.world.hub.document(doc_id) for doc_id in hub_c["attachments"]]


async def test_photos_reach_the_hub_and_the_local_app_without_their_metadata(world, tmp_path, store_url):
    _quiet(world)
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    async with harness(world, tmp_path, store_url) as h:
        files = [
            ("jalan_rusak.jpg", "image/jpeg", jpeg(64, 48, marker=MARKER)),
            ("dari_hp.jpg", "image/jpeg", jpeg(60, 40, marker=MARKER, orientation=6)),  # stored sideways
            ("peta.png", "image/png", png(20, 10, text={"Comment": f"{MARKER} -6.98,110.41"})),
            ("rusak.jpg", "image/jpeg", BROKEN_JPEG),
        ]
        local_id = world.local.submit_complaint(kategori="Jalan Rusak", anonim=False, rahasia=False, lampiran=files)
        assert all(MARKER.encode() in data for _, _, data in files)
        await h.passes(1)

        # The complaint went, with the three readable files; none carries the marker or a GPS block.
        sent = _documents(h, local_id)
        assert len(sent) == 3
        for data in sent:
            assert MARKER.encode() not in data and b"Xiaomi" not in data
            assert gps_of(data) == {} and dict(open_image(data).getexif()) == {}
        by_size = sorted(open_image(data).size for data in sent)
        assert by_size == [(20, 10), (40, 60), (64, 48)]  # same sizes, the sideways photo upright
        # The broken "JPEG" was refused with its reason, not sent with its metadata.
        rows = _rows(h, local_id)
        broken = rows["rusak.jpg"]
        assert broken.hub_doc_id is None
        assert broken.refused_reason.startswith("not sent with its metadata: declared image/jpeg but")
        assert all(rows[name].hub_doc_id and not rows[name].refused_reason for name, _, _ in files[:3])
        # The size the hub keeps is the size of what was sent.
        (hub_c,) = h.at_hub(local_id)
        docs = {d["id"]: d for d in world.hub.documents()}
        assert sorted(docs[d]["size"] for d in hub_c["attachments"]) == sorted(len(d) for d in sent)

        # Down: a hub officer's photo reaches the local app without its metadata.
        world.hub.officer_follow_up(
            h.hub_id(local_id),
            "Sudah ditinjau.",
            attachments=[("bukti.jpg", "image/jpeg", jpeg(32, 24, marker=MARKER))],
        )
        await h.passes(2)
        down = [t for t in world.local.follow_ups(local_id) if t["isi"] == "Sudah ditinjau."]
        (answer,) = down
        [(_, mime, data)] = world.local.follow_up_files(answer["id_tanggapan"])
        assert mime == "image/jpeg" and MARKER.encode() not in data and gps_of(data) == {}
        assert open_image(data).size == (32, 24)
    assert MARKER not in logs.getvalue()


async def test_identity_documents_of_anonymous_complaints_are_held_back_with_the_reason_shown(
    world, tmp_path, store_url
):
    _quiet(world)
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs)
    photo = jpeg(40, 30, marker=MARKER)
    async with harness(world, tmp_path, store_url) as h:
        anonymous = world.local.submit_complaint(
            kategori="Jalan Rusak",
            anonim=True,
            rahasia=False,
            lampiran=[("ktp_budi.jpg", "image/jpeg", photo), ("simpang-lima.jpg", "image/jpeg", photo)],
        )
        named = world.local.submit_complaint(
            kategori="Jalan Rusak", anonim=False, rahasia=False, lampiran=[("ktp_budi.jpg", "image/jpeg", photo)]
        )
        await h.passes(1)

        held = _rows(h, anonymous)["ktp_budi.jpg"]
        assert held.hub_doc_id is None
        assert held.refused_reason == (
            "held back: looks like an identity document (name matches 'ktp') on an anonymous complaint; "
            "check it at the local app and send it by hand only if the reporter agreed"
        )
        assert _rows(h, anonymous)["simpang-lima.jpg"].hub_doc_id is not None
        assert len(_documents(h, anonymous)) == 1
        # The same file of a complaint whose reporter is named goes, without its metadata.
        (sent,) = _documents(h, named)
        assert MARKER.encode() not in sent and gps_of(sent) == {}

        # The operator sees why, by the attachment's id at the local app, and never its name.
        shown = CliRunner().invoke(
            gateway.cli.app,
            ["--config", str(h.config.path), "quarantine"],
            env={**world.environ, "COLUMNS": "300"},  # the reason on one line
        )
        assert shown.exit_code == 0, shown.output
        assert held.refused_reason in shown.output
        assert held.local_ref in shown.output
        as_json = json.loads(_invoke(h, "quarantine", "--json").output)
        assert [q["reason"] for q in as_json if q["record_ref"] == held.local_ref] == [held.refused_reason]
        # And on the dashboard, under what waits for an operator, with where to find it.
        dashboard = DashboardContext(store=h.store, config=h.config, clock=utcnow)
        with served(dashboard) as base, httpx.Client(base_url=base) as client:
            page = client.get("/dashboard", params={"lang": "en"}).text
        (row,) = re.findall(r'<tr data-attachment="\d+">.*?</tr>', page, re.S)
        assert html.unescape(row).count(held.refused_reason) == 1 and f"<code>{held.local_ref}</code>" in row
        assert f"<small>{anonymous}</small>" in row and EN["held_back_hint"] in page
        (audited,) = h.audit("attachment_held_back")
        assert audited.detail == f"attachment {held.local_ref}: {held.refused_reason}"
        audit_text = " ".join(a.detail or "" for a in h.audit("attachment_held_back") + h.audit("attachment_refused"))
        for text in (shown.output, audit_text, logs.getvalue(), page):
            assert "budi" not in text.lower()
        # It is not sent on a later pass either.
        h.later()
        await h.passes(1)
        assert len(_documents(h, anonymous)) == 1


async def test_the_identity_patterns_and_the_complaints_they_apply_to_are_configurable(world, tmp_path, store_url):
    _quiet(world)
    photo = png(12, 8)

    def tweak(config) -> None:
        privacy = config.instances[LOCAL].spec.privacy.attachments
        privacy.identity_names = ["bukti pribadi"]
        privacy.hold_back_for = ["secret"]

    async with harness(world, tmp_path, store_url, tweak=tweak) as h:
        files = [("BuktiPribadi.png", "image/png", photo), ("ktp_budi.png", "image/png", photo)]
        secret = world.local.submit_complaint(kategori="Sampah", anonim=False, rahasia=True, lampiran=files)
        anonymous = world.local.submit_complaint(kategori="Sampah", anonim=True, rahasia=False, lampiran=files)
        await h.passes(1)
        rows = _rows(h, secret)
        assert rows["BuktiPribadi.png"].refused_reason.startswith(
            "held back: looks like an identity document (name matches 'bukti pribadi') on a confidential complaint"
        )
        assert rows["ktp_budi.png"].hub_doc_id is not None  # not among this app's patterns
        assert all(row.hub_doc_id for row in _rows(h, anonymous).values())  # anonymous: not held back here


async def test_an_anonymous_complaints_spelled_out_and_glued_identity_documents_stay_home(world, tmp_path, store_url):
    """The files of the review of issue 13: only ``ktp_`` was held back, the KTP spelled out, the
    driving licence spelled out and the KTP glued to ``ku`` went to the hub."""
    _quiet(world)
    photo = png(12, 8)
    identity = ["Kartu_Tanda_Penduduk_Budi.jpg", "Surat Izin Mengemudi Budi.jpg", "KTPku_Budi.jpg", "ktp_budi.jpg"]
    async with harness(world, tmp_path, store_url) as h:
        files = [(name, "image/png", photo) for name in [*identity, "simpang-lima.jpg", "simulasi_banjir.jpg"]]
        anonymous = world.local.submit_complaint(kategori="Sampah", anonim=True, rahasia=False, lampiran=files)
        await h.passes(1)
        rows = _rows(h, anonymous)
        for name in identity:
            assert rows[name].hub_doc_id is None, name
            assert rows[name].refused_reason.startswith("held back: looks like an identity document (name matches")
            assert "budi" not in rows[name].refused_reason.lower()
        assert len(_documents(h, anonymous)) == 2  # simpang-lima and simulasi_banjir went
