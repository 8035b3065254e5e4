"""The simulated LAPOR!-SP4N world: master data, complaints with their status logs
and follow-ups, and the hub's officers.

Plain data and rules, no HTTP and no locking: :class:`~adapters.sp4n.simulator.Sp4nSimulator`
holds its lock around every call. Times are kept as aware UTC and formatted the
hub's way (``d-m-Y H:i:s`` in WIB, no offset) only in the views.

Built for a large hub (100,000 complaints): a complaint is found by id in a
dict, and the open ones are kept in a set of their own, so neither a read nor
the officers' turn scans the closed ones. What the simulated people change on
``tick()`` is recorded (:attr:`World.changes`) for benchmarks that measure how
long the gateway takes to carry it to the local app.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway import WIB, format_peer_time

TIME_FORMAT = "%d-%m-%Y %H:%M:%S"

STATUS_NAMES = {
    "wait": "Belum Terverifikasi",
    "verification": "Terverifikasi",
    "disposition": "Didisposisi",
    "hold": "Ditunda",
    "process": "Dalam Proses",
    "done": "Selesai",
    "reject": "Ditolak",
    "archive": "Diarsipkan",
}
CLOSED = frozenset({"done", "reject", "archive"})
#: The code the officers use instead of the real one while the ``unknown_status_codes``
#: fault is on: a status the shipped config does not map (seen in the wild).
UNKNOWN_STATUS_CODE = "koordinasi"
UNKNOWN_STATUS_NAMES = {UNKNOWN_STATUS_CODE: "Koordinasi"}


def status_name(code: str) -> str:
    return STATUS_NAMES.get(code) or UNKNOWN_STATUS_NAMES.get(code) or code

CATEGORIES = {
    "41": "Infrastruktur Jalan",
    "42": "Drainase dan Banjir",
    "43": "Kebersihan dan Sampah",
    "44": "Penerangan Jalan Umum",
    "45": "Pelayanan Kesehatan",
    "46": "Administrasi Kependudukan",
    "47": "Ketertiban Umum",
    "48": "Pendidikan",
    "49": "Lainnya",
}
CLASSIFICATIONS = {"1": "pengaduan", "2": "aspirasi", "3": "permintaan informasi", "4": "whistleblowing"}
CHANNELS = {"1": "web", "2": "android", "3": "sms", "4": "twitter", "5": "whatsapp", "6": "integrasi"}

GATEWAY_INSTITUTION_ID = "100234"
GATEWAY_INSTITUTION_NAME = "Pemerintah Kota Semarang"
PROVINCE_ID = "300001"
#: The hub's external institutions (``GET /masters/institutions/external``), in the order
#: served: (id, code, name, parent id). Ids are fixed; codes start with the BPS region
#: code (33 Jawa Tengah, 3374 Kota Semarang, 3322/3321/3324 the neighbouring regencies).
INSTITUTION_TABLE: tuple[tuple[str, str, str, str | None], ...] = (
    (GATEWAY_INSTITUTION_ID, "3374-PEMKOT", GATEWAY_INSTITUTION_NAME, None),
    ("200101", "3374-DPU", "Dinas Pekerjaan Umum Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200102", "3374-DLH", "Dinas Lingkungan Hidup Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200103", "3374-DISHUB", "Dinas Perhubungan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200104", "3374-DINKES", "Dinas Kesehatan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200105", "3374-DISDUKCAPIL", "Dinas Kependudukan dan Pencatatan Sipil Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200106", "3374-SATPOLPP", "Satuan Polisi Pamong Praja Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200107", "3374-DISDIK", "Dinas Pendidikan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200108", "3374-DINSOS", "Dinas Sosial Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200109", "3374-DISPERKIM", "Dinas Perumahan dan Kawasan Permukiman Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200110", "3374-DISTARU", "Dinas Penataan Ruang Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200111", "3374-DISKOMINFO", "Dinas Komunikasi, Informatika, Statistik dan Persandian Kota Semarang",
     GATEWAY_INSTITUTION_ID),
    ("200112", "3374-DISNAKER", "Dinas Tenaga Kerja Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200113", "3374-DINKOPUM", "Dinas Koperasi dan Usaha Mikro Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200114", "3374-DISDAG", "Dinas Perdagangan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200115", "3374-DISBUDPAR", "Dinas Kebudayaan dan Pariwisata Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200116", "3374-DISPORA", "Dinas Pemuda dan Olahraga Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200117", "3374-DKP", "Dinas Ketahanan Pangan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200118", "3374-DISTAN", "Dinas Pertanian Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200119", "3374-DISARPUS", "Dinas Arsip dan Perpustakaan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200120", "3374-DAMKAR", "Dinas Pemadam Kebakaran Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200121", "3374-DPMPTSP", "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu Kota Semarang",
     GATEWAY_INSTITUTION_ID),
    ("200122", "3374-DP3A", "Dinas Pemberdayaan Perempuan dan Perlindungan Anak Kota Semarang",
     GATEWAY_INSTITUTION_ID),
    ("200123", "3374-DP2KB", "Dinas Pengendalian Penduduk dan Keluarga Berencana Kota Semarang",
     GATEWAY_INSTITUTION_ID),
    ("200124", "3374-BAPENDA", "Badan Pendapatan Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200125", "3374-BPBD", "Badan Penanggulangan Bencana Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200126", "3374-BAPPEDA", "Badan Perencanaan Pembangunan Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200127", "3374-BKPSDM", "Badan Kepegawaian dan Pengembangan Sumber Daya Manusia Kota Semarang",
     GATEWAY_INSTITUTION_ID),
    ("200128", "3374-KESBANGPOL", "Badan Kesatuan Bangsa dan Politik Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200129", "3374-INSPEKTORAT", "Inspektorat Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200130", "3374-RSUD-KRMTW", "RSUD K.R.M.T. Wongsonegoro Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200131", "3374-PDAM", "Perumda Air Minum Tirta Moedal Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200132", "3374-KEC-SMGTENGAH", "Kecamatan Semarang Tengah", GATEWAY_INSTITUTION_ID),
    ("200133", "3374-KEC-TEMBALANG", "Kecamatan Tembalang", GATEWAY_INSTITUTION_ID),
    (PROVINCE_ID, "33-PEMPROV", "Pemerintah Provinsi Jawa Tengah", None),
    ("300101", "33-DPUBMCK", "Dinas Pekerjaan Umum Bina Marga dan Cipta Karya Provinsi Jawa Tengah", PROVINCE_ID),
    ("300102", "33-DISHUB", "Dinas Perhubungan Provinsi Jawa Tengah", PROVINCE_ID),
    ("300103", "33-DISDIKBUD", "Dinas Pendidikan dan Kebudayaan Provinsi Jawa Tengah", PROVINCE_ID),
    ("300104", "33-DINKES", "Dinas Kesehatan Provinsi Jawa Tengah", PROVINCE_ID),
    ("300105", "33-DLHK", "Dinas Lingkungan Hidup dan Kehutanan Provinsi Jawa Tengah", PROVINCE_ID),
    ("100235", "3322-PEMKAB", "Pemerintah Kabupaten Semarang", None),
    ("100236", "3321-PEMKAB", "Pemerintah Kabupaten Demak", None),
    ("100237", "3324-PEMKAB", "Pemerintah Kabupaten Kendal", None),
)
INSTITUTIONS = {ident: name for ident, _, name, _ in INSTITUTION_TABLE}
#: The agencies (OPD) the hub's officers dispose complaints to, by category (below).
AGENCIES = {ident: INSTITUTIONS[ident] for ident in ("200101", "200102", "200103", "200104", "200105", "200106",
                                                     "200107")}
AGENCY_BY_CATEGORY = {
    "41": "200101", "42": "200101", "43": "200102", "44": "200103",
    "45": "200104", "46": "200105", "47": "200106", "48": "200107",
}  # "49" Lainnya: any agency

TEMPLATES = [
    {"code": "TL-TERIMA", "name": "Laporan diterima",
     "content": "Terima kasih, laporan Anda sudah kami terima dan sedang kami pelajari."},
    {"code": "TL-JADWAL", "name": "Jadwal penanganan",
     "content": "Laporan sudah kami terima dan akan ditindaklanjuti oleh tim lapangan pada {tanggal}."},
    {"code": "TL-KOORDINASI", "name": "Koordinasi lintas OPD",
     "content": "Laporan Anda sedang kami koordinasikan dengan perangkat daerah terkait."},
    {"code": "TL-DATA", "name": "Permintaan kelengkapan data",
     "content": "Mohon lengkapi lokasi dan foto pendukung agar laporan dapat kami tindak lanjuti."},
    {"code": "TL-SELESAI", "name": "Laporan selesai",
     "content": "Penanganan di lokasi telah selesai dilaksanakan. Terima kasih atas partisipasi Anda."},
]

#: Where a create answer may put the new id; the simulator picks one per request.
COMPLAINT_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("results", "complaint_id"),
    ("results", "data", "complaint_id"),
    ("results", "data", "id"),
    ("data", "complaint_id"),
    ("complaint_id",),
)

REQUIRED_CREATE_FIELDS = ("title", "content", "user_id", "category_id", "classification_id")


class ValidationFailed(Exception):
    """The request's data is invalid; ``errors`` maps field names to messages (Laravel's shape)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("invalid data")
        self.errors = {name: [message] for name, message in errors.items()}


def _s(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _flag(value: Any, name: str, errors: dict[str, str]) -> int:
    text = _s(value).lower()
    if text in ("", "0", "false"):
        return 0
    if text in ("1", "true"):
        return 1
    errors[name] = f"The {name} field must be 0 or 1."
    return 0


def _num(value: str | None) -> int | None:
    """Ids go out as JSON numbers, as the hub sends them."""
    return int(value) if value is not None and value.isdigit() else None


def peer_time(value: datetime) -> str:
    return format_peer_time(value, TIME_FORMAT, WIB)


@dataclass(slots=True)
class SimComplaint:
    id: int
    title: str
    content: str
    channel: str | None
    user_id: str
    classification_id: str
    category_id: str
    disposition_id: str | None
    location_id: str | None
    date_of_incident: str | None
    tags_raw: str
    is_anonymous: int
    is_secret: int
    attachments: list[int]
    created_at: datetime
    status_code: str = "wait"
    changed_at: datetime | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)


class World:
    """Everything the simulated hub knows. Ids are integers from fixed ranges, so
    that each kind is recognisable in a trace."""

    def __init__(self) -> None:
        self.complaints: dict[int, SimComplaint] = {}
        self.docs: dict[int, dict[str, Any]] = {}
        self._next = {"complaint": 4_000_001, "doc": 5_001, "log": 6_000_001, "follow_up": 7_000_001}
        self.follow_ups_by_officers = 0
        self.follow_ups_from_gateway = 0
        self.status_changes = 0  # changes after creation (officers and API actions)
        self.unknown_status_changes = 0  # officers' changes to UNKNOWN_STATUS_CODE (a fault)
        self.forwards = 0  # "bukan wewenang" through the API
        self.rejects = 0  # rejections through the API
        #: What the simulated people changed on tick(), in order: {"complaint_id", "kind"
        #: ("status" or "follow_up"), "ref" (the log or follow-up id, as the adapter reads it),
        #: "at" (simulated time, UTC), "status" (the new code, for a status change)}.
        self.changes: list[dict[str, Any]] = []
        # The open complaints (status not in CLOSED): a list to draw from and each one's place in it.
        self._open: list[int] = []
        self._open_at: dict[int, int] = {}

    def _track(self, complaint: SimComplaint) -> None:
        """Keep the set of open complaints in step with ``complaint``'s status."""
        ident, is_open = complaint.id, complaint.status_code not in CLOSED
        if is_open and ident not in self._open_at:
            self._open_at[ident] = len(self._open)
            self._open.append(ident)
        elif not is_open and ident in self._open_at:
            at, last = self._open_at.pop(ident), self._open.pop()
            if last != ident:  # the last one takes the place of the one leaving
                self._open[at] = last
                self._open_at[last] = at

    def open_count(self) -> int:
        return len(self._open)

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def get(self, complaint_id: Any) -> SimComplaint | None:
        text = _s(complaint_id)
        return self.complaints.get(int(text)) if text.isdigit() else None

    # -- API actions ---------------------------------------------------------------------------

    def add_doc(self, filename: str, content_type: str, data: bytes, now: datetime) -> dict[str, Any]:
        doc = {"id": self._new_id("doc"), "filename": filename, "mime": content_type, "size": len(data),
               "data": data, "created_at": now}
        self.docs[doc["id"]] = doc
        return doc

    def create(self, payload: dict[str, Any], now: datetime) -> SimComplaint:
        errors: dict[str, str] = {}
        for name in REQUIRED_CREATE_FIELDS:
            if not _s(payload.get(name)):
                errors[name] = f"The {name} field is required."
        category, classification = _s(payload.get("category_id")), _s(payload.get("classification_id"))
        if category and category not in CATEGORIES:
            errors["category_id"] = "The selected category id is invalid."
        if classification and classification not in CLASSIFICATIONS:
            errors["classification_id"] = "The selected classification id is invalid."
        channel = _s(payload.get("channel")) or None
        if channel is not None and channel not in CHANNELS:
            errors["channel"] = "The selected channel is invalid."
        disposition = _s(payload.get("disposition_id")) or None
        if disposition is not None and disposition not in INSTITUTIONS:
            errors["disposition_id"] = "The selected disposition id is invalid."
        incident = _s(payload.get("date_of_incident")) or None
        if incident is not None:
            try:
                datetime.strptime(incident, "%Y-%m-%d")
            except ValueError:
                errors["date_of_incident"] = "The date of incident does not match the format Y-m-d."
        attachments = self._attachment_ids(payload.get("attachments"), errors)
        anonymous = _flag(payload.get("is_anonymous"), "is_anonymous", errors)
        secret = _flag(payload.get("is_secret"), "is_secret", errors)
        if errors:
            raise ValidationFailed(errors)
        complaint = SimComplaint(
            id=self._new_id("complaint"), title=_s(payload["title"]), content=str(payload["content"]),
            channel=channel, user_id=_s(payload["user_id"]), classification_id=classification,
            category_id=category, disposition_id=disposition, location_id=_s(payload.get("location_id")) or None,
            date_of_incident=incident, tags_raw=_s(payload.get("tags_raw")), is_anonymous=anonymous,
            is_secret=secret, attachments=attachments, created_at=now, changed_at=now)
        self.complaints[complaint.id] = complaint
        self._track(complaint)
        self._log(complaint, None, "wait", now, "Laporan diterima dan menunggu verifikasi.",
                  institution_from=None, institution_to=disposition or GATEWAY_INSTITUTION_ID)
        return complaint

    def preload(self, tags: list[str], now: datetime, rng: random.Random, *, user_id: str,
                disposition_id: str | None = GATEWAY_INSTITUTION_ID) -> list[int]:
        """Complaints as the gateway would have created them through the API at ``now``, one
        per ``tags_raw`` string, without the checks of :meth:`create` (fast: 100,000 in about
        a second). Category, classification and channel are drawn from ``rng``."""
        categories, channels = sorted(CATEGORIES), ("1", "2", "5", "1", "2")  # web, android, whatsapp
        ids = []
        for tag in tags:
            category = rng.choice(categories)
            complaint = SimComplaint(
                id=self._new_id("complaint"), title=f"{CATEGORIES[category]}: laporan warga",
                content="Laporan warga yang diteruskan dari aplikasi daerah.", channel=rng.choice(channels),
                user_id=user_id, classification_id="1", category_id=category, disposition_id=disposition_id,
                location_id=None, date_of_incident=None, tags_raw=str(tag), is_anonymous=0, is_secret=0,
                attachments=[], created_at=now, changed_at=now)
            self.complaints[complaint.id] = complaint
            self._track(complaint)
            self._log(complaint, None, "wait", now, "Laporan diterima dan menunggu verifikasi.",
                      institution_from=None, institution_to=disposition_id or GATEWAY_INSTITUTION_ID)
            ids.append(complaint.id)
        return ids

    def _attachment_ids(self, raw: Any, errors: dict[str, str]) -> list[int]:
        if raw is None or raw == "":
            return []
        try:
            ids = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            ids = None
        if (not isinstance(ids, list)
                or not all(isinstance(i, int) and not isinstance(i, bool) and i in self.docs for i in ids)):
            errors["attachments"] = "The attachments must be a JSON list of uploaded document ids."
            return []
        return ids

    def add_follow_up(self, complaint: SimComplaint, *, institution_from: str, institution_to: str | None,
                      content: str, now: datetime, source: str, is_secret: int = 0, rating: int = 0,
                      template_code: str = "", attachments: list[int] | None = None) -> dict[str, Any]:
        """``source`` is ``officer`` (the simulated agency) or ``api`` (a client such as the gateway)."""
        record = {
            "id": self._new_id("follow_up"), "complaint_id": complaint.id,
            "institution_from_id": institution_from, "institution_from_name": INSTITUTIONS.get(institution_from),
            "institution_to_id": institution_to, "content": content, "created_at": now,
            "is_secret": is_secret, "rating": rating, "template_code": template_code,
            "attachments": list(attachments or []), "source": source,
        }
        complaint.followups.append(record)
        if source == "officer":
            self.follow_ups_by_officers += 1
        else:
            self.follow_ups_from_gateway += 1
        return record

    def forward(self, complaint: SimComplaint, target: str, now: datetime, note: str | None) -> dict[str, Any]:
        """Not our authority ("bukan wewenang"): hand the complaint to another institution
        (status ``disposition``); returns the new log entry."""
        source = complaint.disposition_id or GATEWAY_INSTITUTION_ID
        complaint.disposition_id = target
        self.forwards += 1
        return self._change(complaint, "disposition", now,
                            note or f"Laporan bukan wewenang kami, diteruskan kepada {INSTITUTIONS[target]}.",
                            institution_from=source, institution_to=target)

    def reject(self, complaint: SimComplaint, now: datetime, note: str | None) -> dict[str, Any]:
        self.rejects += 1
        return self._change(complaint, "reject", now, note or "Laporan ditolak.",
                            institution_from=complaint.disposition_id or GATEWAY_INSTITUTION_ID, institution_to=None)

    # -- status history ------------------------------------------------------------------------

    def _log(self, complaint: SimComplaint, old: str | None, new: str, now: datetime, content: str, *,
             institution_from: str | None, institution_to: str | None) -> dict[str, Any]:
        entry = {
            "id": self._new_id("log"), "complaint_id": complaint.id,
            "institution_from_id": institution_from, "institution_to_id": institution_to,
            "status_old": old, "status_new": new, "status_new_name": status_name(new),
            "content": content, "created_at": now,
        }
        complaint.logs.append(entry)
        return entry

    def _change(self, complaint: SimComplaint, new: str, now: datetime, content: str, *,
                institution_from: str | None, institution_to: str | None) -> dict[str, Any]:
        old = complaint.status_code
        complaint.status_code = new
        complaint.changed_at = now
        self.status_changes += 1
        self._track(complaint)
        return self._log(complaint, old, new, now, content, institution_from=institution_from,
                         institution_to=institution_to)

    def _record(self, complaint: SimComplaint, kind: str, record: dict[str, Any], now: datetime) -> None:
        """Note a change the simulated people made on tick() (see :attr:`changes`)."""
        change = {"complaint_id": complaint.id, "kind": kind, "ref": str(record["id"]), "at": now}
        if kind == "status":
            change["status"] = record["status_new"]
        self.changes.append(change)

    # -- officers ------------------------------------------------------------------------------

    def _officer_change(self, complaint: SimComplaint, new: str, now: datetime, content: str,
                        unknown_status: str | None, **institutions: str | None) -> None:
        """A status change by the hub's officers (with ``unknown_status``, to that code instead)."""
        if unknown_status is not None:
            new = unknown_status
            self.unknown_status_changes += 1
        entry = self._change(complaint, new, now, content, **institutions)  # type: ignore[arg-type]
        self._record(complaint, "status", entry, now)

    def _officer_note(self, complaint: SimComplaint, now: datetime, source: str, template_code: str,
                      content: str) -> None:
        """A follow-up by the hub's officers (the agency, or the admin)."""
        record = self.add_follow_up(complaint, institution_from=source, institution_to=GATEWAY_INSTITUTION_ID,
                                    now=now, source="officer", template_code=template_code, content=content)
        self._record(complaint, "follow_up", record, now)

    @staticmethod
    def _visit_note(now: datetime, roll: float) -> str:
        visit = (now + timedelta(days=1 + int(roll * 6) % 3)).astimezone(WIB).strftime("%d-%m-%Y")
        return f"Laporan sudah kami terima dan akan ditindaklanjuti oleh tim lapangan pada {visit}."

    def officers_act(self, rng: random.Random, now: datetime, *, unknown_status: str | None = None) -> None:
        """Each open complaint gets one roll; what it can lead to depends on its
        status and on the simulated hours since its last change. With
        ``unknown_status``, every change the officers make sets that code instead
        (and a complaint already at it stays there); without, a complaint at
        :data:`UNKNOWN_STATUS_CODE` moves on like one on hold. O(open complaints)."""

        def change(complaint: SimComplaint, new: str, content: str, **institutions: str | None) -> None:
            self._officer_change(complaint, new, now, content, unknown_status, **institutions)

        for complaint in [self.complaints[ident] for ident in sorted(self._open_at)]:
            if unknown_status is not None and complaint.status_code == unknown_status:
                continue
            roll = rng.random()
            hours = (now - (complaint.changed_at or complaint.created_at)).total_seconds() / 3600
            status = complaint.status_code
            admin = GATEWAY_INSTITUTION_ID
            agency = complaint.disposition_id if complaint.disposition_id in AGENCIES else None
            if status == "wait" and hours >= 1:
                if roll < 0.03:
                    change(complaint, "reject", "Laporan ditolak karena tidak memenuhi ketentuan "
                           "(isi tidak jelas atau tidak lengkap).", institution_from=admin, institution_to=None)
                elif roll < 0.05:
                    change(complaint, "archive", "Laporan diarsipkan karena tidak dapat diproses.",
                           institution_from=admin, institution_to=None)
                elif roll < 0.65:
                    change(complaint, "verification", "Laporan telah diverifikasi oleh admin.",
                           institution_from=admin, institution_to=admin)
            elif status == "verification" and hours >= 1 and roll < 0.6:
                target = agency or AGENCY_BY_CATEGORY.get(complaint.category_id) or rng.choice(sorted(AGENCIES))
                complaint.disposition_id = target
                change(complaint, "disposition", f"Laporan didisposisikan kepada {AGENCIES[target]}.",
                       institution_from=admin, institution_to=target)
            elif status == "disposition" and hours >= 2 and roll < 0.5:
                source = complaint.disposition_id or admin
                change(complaint, "process", f"Laporan sedang ditindaklanjuti oleh "
                       f"{INSTITUTIONS.get(source, source)}.", institution_from=source, institution_to=admin)
                self._officer_note(complaint, now, source, "TL-JADWAL", self._visit_note(now, roll))
            elif status == "process" and hours >= 2:
                source = complaint.disposition_id or admin
                if roll < 0.08:
                    change(complaint, "hold", "Laporan ditunda: menunggu kelengkapan data dan "
                           "ketersediaan anggaran.", institution_from=source, institution_to=admin)
                elif roll < 0.45:
                    change(complaint, "done", "Laporan telah selesai ditindaklanjuti.",
                           institution_from=source, institution_to=admin)
                    self._officer_note(complaint, now, source, "TL-SELESAI", "Penanganan di lokasi telah selesai "
                                       "dilaksanakan oleh tim lapangan. Terima kasih atas partisipasi Anda.")
            elif status in ("hold", UNKNOWN_STATUS_CODE) and hours >= 2 and roll < 0.5:
                source = complaint.disposition_id or admin
                change(complaint, "process", "Penanganan laporan dilanjutkan kembali.",
                       institution_from=source, institution_to=admin)

    def change_some(self, rng: random.Random, now: datetime, count: int, *,
                    unknown_status: str | None = None) -> int:
        """The change model: ``count`` distinct open complaints, drawn by ``rng``, each get one
        change at ``now``, a step of their life: ``wait`` → ``verification`` →
        ``disposition`` (to the agency of their category) → ``process`` → ``done``, with
        ``process`` as likely to get an officer's follow-up instead as to close (``hold``
        and ``koordinasi`` go back to ``process``). With ``unknown_status``, status
        changes set that code, and a complaint already at it gets a follow-up. Returns
        how many changed. O(count), whatever the number of complaints."""
        count = max(0, min(count, len(self._open)))
        admin = GATEWAY_INSTITUTION_ID
        for ident in rng.sample(self._open, count):
            complaint = self.complaints[ident]
            status, roll = complaint.status_code, rng.random()
            agency = complaint.disposition_id if complaint.disposition_id in AGENCIES else None
            source = complaint.disposition_id or admin

            def change(new: str, content: str, **institutions: str | None) -> None:
                self._officer_change(complaint, new, now, content, unknown_status, **institutions)

            if unknown_status is not None and status == unknown_status:
                self._officer_note(complaint, now, source, "TL-KOORDINASI", "Laporan Anda sedang kami "
                                   "koordinasikan dengan perangkat daerah terkait.")
            elif status == "wait":
                change("verification", "Laporan telah diverifikasi oleh admin.", institution_from=admin,
                       institution_to=admin)
            elif status == "verification":
                target = agency or AGENCY_BY_CATEGORY.get(complaint.category_id) or rng.choice(sorted(AGENCIES))
                complaint.disposition_id = target
                change("disposition", f"Laporan didisposisikan kepada {AGENCIES[target]}.", institution_from=admin,
                       institution_to=target)
            elif status == "disposition":
                change("process", f"Laporan sedang ditindaklanjuti oleh {INSTITUTIONS.get(source, source)}.",
                       institution_from=source, institution_to=admin)
            elif status == "process" and roll < 0.5:
                self._officer_note(complaint, now, source, "TL-JADWAL", self._visit_note(now, roll))
            elif status == "process":
                change("done", "Laporan telah selesai ditindaklanjuti.", institution_from=source, institution_to=admin)
            else:  # hold, koordinasi (the fault is off now), or a code set through a test
                change("process", "Penanganan laporan dilanjutkan kembali.", institution_from=source,
                       institution_to=admin)
        return count

    # -- views: what the HTTP answers carry -----------------------------------------------------

    def complaint_view(self, complaint: SimComplaint) -> dict[str, Any]:
        return {
            "data": {
                "id": complaint.id, "title": complaint.title, "content": complaint.content,
                "status_code": complaint.status_code, "status_name": status_name(complaint.status_code),
                "disposition_id": _num(complaint.disposition_id),
                "disposition_name": INSTITUTIONS.get(complaint.disposition_id or ""),
                "category_id": _num(complaint.category_id),
                "category_name": CATEGORIES.get(complaint.category_id),
                "classification_id": _num(complaint.classification_id), "channel": _num(complaint.channel),
                "is_anonymous": complaint.is_anonymous, "is_secret": complaint.is_secret,
                "tags_raw": complaint.tags_raw, "attachments": list(complaint.attachments),
                "created_at": peer_time(complaint.created_at),
                "updated_at": peer_time(complaint.changed_at or complaint.created_at),
            },
            "data_logs": [
                {**entry, "institution_from_id": _num(entry["institution_from_id"]),
                 "institution_to_id": _num(entry["institution_to_id"]), "created_at": peer_time(entry["created_at"])}
                for entry in complaint.logs
            ],
        }

    def follow_ups_view(self, complaint: SimComplaint) -> list[dict[str, Any]]:
        hidden = ("source",)
        return [
            {**{k: v for k, v in record.items() if k not in hidden},
             "institution_from_id": _num(record["institution_from_id"]),
             "institution_to_id": _num(record["institution_to_id"]), "created_at": peer_time(record["created_at"])}
            for record in complaint.followups
        ]

    @staticmethod
    def institutions_view(page: int, page_size: int) -> dict[str, Any]:
        """A page of :data:`INSTITUTION_TABLE`: ``data`` ({id, name, code, parent_id}), ``page``,
        ``page_size`` and ``total``."""
        rows = [{"id": int(ident), "name": name, "code": code, "parent_id": _num(parent)}
                for ident, code, name, parent in INSTITUTION_TABLE]
        start = (page - 1) * page_size
        return {"data": rows[start:start + page_size], "page": page, "page_size": page_size, "total": len(rows)}

    # -- inspection (tests, demo) ---------------------------------------------------------------

    @staticmethod
    def summary(complaint: SimComplaint) -> dict[str, Any]:
        return {
            "id": complaint.id, "title": complaint.title, "content": complaint.content,
            "tags_raw": complaint.tags_raw, "status_code": complaint.status_code,
            "status_name": status_name(complaint.status_code), "attachments": list(complaint.attachments),
            "user_id": complaint.user_id, "is_anonymous": complaint.is_anonymous, "is_secret": complaint.is_secret,
            "category_id": complaint.category_id, "classification_id": complaint.classification_id,
            "channel": complaint.channel, "disposition_id": complaint.disposition_id,
            "location_id": complaint.location_id, "date_of_incident": complaint.date_of_incident,
            "created_at": complaint.created_at, "changed_at": complaint.changed_at,
        }

    @staticmethod
    def copies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return copy.deepcopy(records)
