"""The simulated LAPOR!-SP4N world: master data, complaints with their history logs
and follow-ups, documents, and the hub's officers.

Plain data and rules, no HTTP and no locking: :class:`~lapor_gateway_adapters.sp4n.simulator.Sp4nSimulator`
holds its lock around every call. Times are kept as aware UTC and formatted the
hub's way (``d-m-Y H:i:s`` in WIB, no offset) only in the views.

What goes over the wire follows ``reference/lapor-v3.md`` (the LAPOR! v3 contract as
its one public client sends and reads it); each shape below says whether it is
**seen** there or **our choice** for an item the reference marks unknown:

- a status is a **name** (seen: ``Belum Terverifikasi``, ``Terverifikasi``, ...) and an
  opaque **code** (the hub keeps one, its values are not published: ours are small
  integers, :data:`STATUS_CODES`);
- a history log's ``content`` is a **template** with ``{{institution_from}}``-style
  placeholders and its ``data`` a **JSON-encoded string** holding ``status_old.name`` and
  ``status_new.name`` for a status change (seen); a log that is not a status change has
  ``data`` ``"{}"`` (a disposition) or ``null`` (a note) (our choice); the human reason
  of a hold, a rejection, an archive or a forward is ``reason_description`` in the
  decoded ``data`` (inferred: the name the client's forward call uses).

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
import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway import WIB, format_peer_time

TIME_FORMAT = "%d-%m-%Y %H:%M:%S"

# -- statuses: a name (seen) and an opaque code (ours: the real codes are not published) ------------

WAIT = "Belum Terverifikasi"
VERIFIED = "Terverifikasi"
DISPOSED = "Didisposisi"
HOLD = "Ditunda"
PROCESS = "Dalam Proses"
DONE = "Selesai"
REJECTED = "Ditolak"
ARCHIVED = "Diarsipkan"
#: The status the officers set instead of the real one while the ``unknown_status_codes``
#: fault is on: a name (and code) the shipped config does not map (seen in the wild).
UNKNOWN_STATUS_NAME = "Koordinasi"

#: Status name -> the hub's code. Opaque: our own small integers (the real codes are not
#: published); only the names are seen in the reference.
STATUS_CODES: dict[str, int] = {
    WAIT: 1,
    VERIFIED: 2,
    DISPOSED: 3,
    HOLD: 4,
    PROCESS: 5,
    DONE: 6,
    REJECTED: 7,
    ARCHIVED: 8,
    UNKNOWN_STATUS_NAME: 12,
}
STATUS_NAMES: tuple[str, ...] = (WAIT, VERIFIED, DISPOSED, HOLD, PROCESS, DONE, REJECTED, ARCHIVED)
CLOSED = frozenset({DONE, REJECTED, ARCHIVED})
#: The statuses whose change carries a human reason in the log's data (``reason_description``).
REASONED = frozenset({HOLD, REJECTED, ARCHIVED})
#: The simulator's former status keys, still accepted where a status is given in Python
#: (``World._change``, :meth:`World.act`); never served.
LEGACY_KEYS = {
    "wait": WAIT,
    "verification": VERIFIED,
    "disposition": DISPOSED,
    "hold": HOLD,
    "process": PROCESS,
    "done": DONE,
    "reject": REJECTED,
    "archive": ARCHIVED,
    "koordinasi": UNKNOWN_STATUS_NAME,
}
#: What the disposition is called while there is none (seen in the client's views).
NO_DISPOSITION_NAME = "Belum Terdisposisi"

#: The reasons the officers give (``reason_description`` in the log's data).
HOLD_REASON = "Mohon lengkapi lokasi dan foto pendukung agar laporan dapat kami tindak lanjuti."
REJECT_REASON = "Laporan tidak memenuhi ketentuan: isi tidak jelas atau tidak lengkap."
ARCHIVE_REASON = "Laporan tidak dapat diproses."
DEFAULT_REASONS = {HOLD: HOLD_REASON, REJECTED: REJECT_REASON, ARCHIVED: ARCHIVE_REASON}


def status_name(value: str) -> str:
    """A status name from a name or a legacy key (``"wait"``); ``ValueError`` otherwise."""
    if value in STATUS_CODES:
        return value
    if value in LEGACY_KEYS:
        return LEGACY_KEYS[value]
    raise ValueError(f"unknown hub status {value!r} (known: {', '.join(STATUS_CODES)})")


def status_code(name: str) -> int:
    return STATUS_CODES[name]


# -- log templates (seen: the placeholders; the sentences are ours) --------------------------------

TEMPLATE_CREATED = "Laporan baru dibuat dan diteruskan kepada {{institution_to}}"
TEMPLATE_STATUS = "Status laporan diubah dari {{status_old}} menjadi {{status_new}} oleh {{institution_from}}"
TEMPLATE_DISPOSED = "Laporan didisposisikan oleh {{institution_from}} kepada {{institution_to}}"
TEMPLATE_FORWARDED = (
    "Laporan diteruskan oleh {{institution_from_link}} kepada {{institution_to_link}} karena bukan wewenang"
)
TEMPLATE_NOTE = "{{institution_from}} menambahkan tindak lanjut"
PLACEHOLDERS = (
    "institution_from",
    "institution_to",
    "institution_from_link",
    "institution_to_link",
    "status_old",
    "status_new",
)

# -- master data ---------------------------------------------------------------------------------------

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
#: The hub's own location ids (seen: ``ProvinceMapIdSeeder`` maps BPS 31 DKI -> 8, 33 Jawa
#: Tengah -> 11, 34 DIY -> 34); not BPS codes. Any other ``location_id`` is refused.
LOCATIONS = {"8": "DKI Jakarta", "11": "Jawa Tengah", "34": "DI Yogyakarta"}

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
    (
        "200111",
        "3374-DISKOMINFO",
        "Dinas Komunikasi, Informatika, Statistik dan Persandian Kota Semarang",
        GATEWAY_INSTITUTION_ID,
    ),
    ("200112", "3374-DISNAKER", "Dinas Tenaga Kerja Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200113", "3374-DINKOPUM", "Dinas Koperasi dan Usaha Mikro Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200114", "3374-DISDAG", "Dinas Perdagangan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200115", "3374-DISBUDPAR", "Dinas Kebudayaan dan Pariwisata Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200116", "3374-DISPORA", "Dinas Pemuda dan Olahraga Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200117", "3374-DKP", "Dinas Ketahanan Pangan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200118", "3374-DISTAN", "Dinas Pertanian Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200119", "3374-DISARPUS", "Dinas Arsip dan Perpustakaan Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200120", "3374-DAMKAR", "Dinas Pemadam Kebakaran Kota Semarang", GATEWAY_INSTITUTION_ID),
    (
        "200121",
        "3374-DPMPTSP",
        "Dinas Penanaman Modal dan Pelayanan Terpadu Satu Pintu Kota Semarang",
        GATEWAY_INSTITUTION_ID,
    ),
    ("200122", "3374-DP3A", "Dinas Pemberdayaan Perempuan dan Perlindungan Anak Kota Semarang", GATEWAY_INSTITUTION_ID),
    (
        "200123",
        "3374-DP2KB",
        "Dinas Pengendalian Penduduk dan Keluarga Berencana Kota Semarang",
        GATEWAY_INSTITUTION_ID,
    ),
    ("200124", "3374-BAPENDA", "Badan Pendapatan Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200125", "3374-BPBD", "Badan Penanggulangan Bencana Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    ("200126", "3374-BAPPEDA", "Badan Perencanaan Pembangunan Daerah Kota Semarang", GATEWAY_INSTITUTION_ID),
    (
        "200127",
        "3374-BKPSDM",
        "Badan Kepegawaian dan Pengembangan Sumber Daya Manusia Kota Semarang",
        GATEWAY_INSTITUTION_ID,
    ),
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
AGENCIES = {
    ident: INSTITUTIONS[ident] for ident in ("200101", "200102", "200103", "200104", "200105", "200106", "200107")
}
AGENCY_BY_CATEGORY = {
    "41": "200101",
    "42": "200101",
    "43": "200102",
    "44": "200103",
    "45": "200104",
    "46": "200105",
    "47": "200106",
    "48": "200107",
}  # "49" Lainnya: any agency

#: Follow-up templates (``GET /masters/templates``: ``results.data[]`` with ``id``, ``name``,
#: seen; ``code`` and ``content`` are ours). ``template_code`` of a follow-up add must be one
#: of these codes or the code the hub issued to the integrator (the simulator's
#: ``integrator_template_code``, as the client's ``reply_lmw``).
TEMPLATES = [
    {
        "id": 1,
        "code": "TL-TERIMA",
        "name": "Laporan diterima",
        "content": "Terima kasih, laporan Anda sudah kami terima dan sedang kami pelajari.",
    },
    {
        "id": 2,
        "code": "TL-JADWAL",
        "name": "Jadwal penanganan",
        "content": "Laporan sudah kami terima dan akan ditindaklanjuti oleh tim lapangan pada {tanggal}.",
    },
    {
        "id": 3,
        "code": "TL-KOORDINASI",
        "name": "Koordinasi lintas OPD",
        "content": "Laporan Anda sedang kami koordinasikan dengan perangkat daerah terkait.",
    },
    {
        "id": 4,
        "code": "TL-DATA",
        "name": "Permintaan kelengkapan data",
        "content": "Mohon lengkapi lokasi dan foto pendukung agar laporan dapat kami tindak lanjuti.",
    },
    {
        "id": 5,
        "code": "TL-SELESAI",
        "name": "Laporan selesai",
        "content": "Penanganan di lokasi telah selesai dilaksanakan. Terima kasih atas partisipasi Anda.",
    },
]
TEMPLATE_CODES = frozenset(t["code"] for t in TEMPLATES)

#: Where a create answer puts the new id (all three seen in the client: ``complaint_id`` in
#: the newer one, the other two in the older); the simulator picks one per request.
COMPLAINT_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("complaint_id",),
    ("data", "complaint_id"),
    ("data", "results", "complaint", "id"),
)

#: The share of the officers' follow-ups that carry an evidence photo, and that are secret.
OFFICER_PHOTO_RATE = 0.12
OFFICER_SECRET_RATE = 0.06


# -- Laravel-style validation ----------------------------------------------------------------------


class ValidationFailed(Exception):
    """The request's data is invalid; ``errors`` maps field names to messages (Laravel's shape)."""

    def __init__(self, errors: dict[str, str] | dict[str, list[str]]):
        super().__init__("invalid data")
        self.errors = {name: [m] if isinstance(m, str) else list(m) for name, m in errors.items()}


_INTEGER = re.compile(r"[+-]?\d+\Z")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d-%m-%Y")


def _label(name: str) -> str:
    return name.replace("_", " ").replace(".", " ")


def _input(value: Any) -> Any:
    """What a Laravel app's input middleware makes of a value: strings trimmed, and an empty
    string as null (``TrimStrings``, ``ConvertEmptyStringsToNull``)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def as_integer(value: Any) -> int | None:
    """``value`` as Laravel's ``integer`` rule accepts it (an integer, or a string of digits
    with an optional sign), else None. Booleans and floats are refused."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


class Rules:
    """Laravel's validation rules over one request's input; one message per field (the first
    rule that fails), collected in :attr:`errors`. :meth:`check` raises them."""

    def __init__(self, data: dict[str, Any]):
        self.data = {name: _input(value) for name, value in data.items()}
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, [message])

    def _value(self, name: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None or value == [] or value == {}:
            if required:
                self.fail(name, f"The {_label(name)} field is required.")
            return None
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self._value(name, required)
        if value is not None and not isinstance(value, str):
            self.fail(name, f"The {_label(name)} field must be a string.")
            return None
        return value

    def integer(self, name: str, *, required: bool = False, known: dict[str, Any] | None = None) -> int | None:
        value = self._value(name, required)
        if value is None:
            return None
        number = as_integer(value)
        if number is None:
            self.fail(name, f"The {_label(name)} field must be an integer.")
        elif known is not None and str(number) not in known:
            self.fail(name, f"The selected {_label(name)} is invalid.")
            return None
        return number

    def boolean(self, name: str, *, nullable: bool = False) -> bool:
        """``true``/``false``, ``1``/``0`` or ``"1"``/``"0"`` (Laravel's ``boolean``); absent
        is false; present and null is refused unless ``nullable``."""
        if name not in self.data:
            return False
        value = self.data[name]
        if value is None and nullable:
            return False
        if isinstance(value, bool):
            return value
        if (isinstance(value, int) and value in (0, 1)) or value in ("0", "1"):
            return value in (1, "1")
        self.fail(name, f"The {_label(name)} field must be true or false.")
        return False

    def date(self, name: str) -> str | None:
        value = self.string(name)
        if value is None:
            return None
        for fmt in _DATE_FORMATS:
            try:
                datetime.strptime(value, fmt)
                return value
            except ValueError:
                continue
        self.fail(name, f"The {_label(name)} field must be a valid date.")
        return None

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def _id_text(value: int | None) -> str | None:
    return None if value is None else str(value)


def peer_time(value: datetime) -> str:
    return format_peer_time(value, TIME_FORMAT, WIB)


def evidence_png(rng: random.Random, width: int = 24, height: int = 18) -> bytes:
    """A small valid RGB PNG (a seeded colour wash with noise), as an officer's evidence photo."""
    base = [rng.randrange(60, 200) for _ in range(3)]
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += bytes(
                min(255, max(0, c + (x * 3 if i == 0 else y * 4 if i == 1 else 0) + rng.randrange(-12, 12)))
                for i, c in enumerate(base)
            )
        rows.append(bytes(row))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def _render(template: str, values: dict[str, str | None]) -> str:
    text = template
    for name in PLACEHOLDERS:
        text = text.replace("{{" + name + "}}", values.get(name) or "-")
    return text


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
    status: str = WAIT  # the status name
    changed_at: datetime | None = None
    #: The other keys of the create, as validated: is_priority, is_approval, is_inbox,
    #: is_new_user_slider, is_disposisi_slider (0/1), priority_program_id, community_id,
    #: copy_externals, info_disposition, info_attachments.
    extra: dict[str, Any] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """The hub's (opaque) code of the current status."""
        return STATUS_CODES[self.status]


class World:
    """Everything the simulated hub knows. Ids are integers from fixed ranges, so
    that each kind is recognisable in a trace. ``extras_rng`` draws the rare extras
    of the officers' follow-ups (an evidence photo, a secret one)."""

    def __init__(self, extras_rng: random.Random | None = None) -> None:
        self.complaints: dict[int, SimComplaint] = {}
        self.docs: dict[int, dict[str, Any]] = {}
        self.extras_rng = extras_rng or random.Random("sp4n-extras")
        self._next = {"complaint": 4_000_001, "doc": 5_001, "log": 6_000_001, "follow_up": 7_000_001}
        self.follow_ups_by_officers = 0
        self.follow_ups_from_gateway = 0
        self.status_changes = 0  # changes after creation (officers and API actions)
        self.unknown_status_changes = 0  # officers' changes to UNKNOWN_STATUS_NAME (a fault)
        self.forwards = 0  # "bukan wewenang" through the API
        self.rejects = 0  # rejections through the API
        #: What the simulated people changed (on tick(), or through act() / officer_follow_up()),
        #: in order: {"complaint_id", "kind" ("status" or "follow_up"), "ref" (the log or
        #: follow-up id, as a string), "at" (simulated time, UTC), and for a status change
        #: "status" (the new status name) and "code" (its code)}.
        self.changes: list[dict[str, Any]] = []
        # The open complaints (status not in CLOSED): a list to draw from and each one's place in it.
        self._open: list[int] = []
        self._open_at: dict[int, int] = {}

    def _track(self, complaint: SimComplaint) -> None:
        """Keep the set of open complaints in step with ``complaint``'s status."""
        ident, is_open = complaint.id, complaint.status not in CLOSED
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
        number = as_integer(complaint_id.strip() if isinstance(complaint_id, str) else complaint_id)
        return self.complaints.get(number) if number is not None else None

    # -- API actions ---------------------------------------------------------------------------

    def add_doc(self, filename: str, content_type: str, data: bytes, now: datetime) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self._new_id("doc"),
            "filename": filename,
            "mime": content_type,
            "size": len(data),
            "data": data,
            "created_at": now,
        }
        self.docs[doc["id"]] = doc
        return doc

    def _attachment_ids(self, rules: Rules) -> list[int]:
        """``attachments``: a JSON-encoded string of uploaded document ids (seen: ``"[12,13]"``)."""
        raw = rules.string("attachments")
        if raw is None:
            return []
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        ids = [as_integer(i) for i in decoded] if isinstance(decoded, list) else None
        if ids is None or any(i is None for i in ids):
            rules.fail("attachments", "The attachments field must be a JSON-encoded list of document ids.")
            return []
        unknown = [i for i in ids if i not in self.docs]
        if unknown:
            rules.fail("attachments", "The selected attachments are invalid.")
            return []
        return ids  # type: ignore[return-value]

    def create(self, payload: dict[str, Any], now: datetime, *, user_id: str | None = None) -> SimComplaint:
        """A create (``POST /complaints/complaint``) checked as a Laravel app would: the keys
        and JSON types the client sends (see the simulator's docs); ``user_id`` must be the
        integrator's account when given. Unknown keys are ignored. ``ValidationFailed``
        with every field that is wrong."""
        rules = Rules(payload)
        title = rules.string("title", required=True)
        content = rules.string("content", required=True)
        account = rules.integer("user_id", required=True)
        if account is not None and user_id is not None and str(account) != str(user_id):
            rules.fail("user_id", "The selected user id is invalid.")
        classification = rules.integer("classification_id", required=True, known=CLASSIFICATIONS)
        category = rules.integer("category_id", required=True, known=CATEGORIES)
        disposition = rules.integer("disposition_id", required=True, known=INSTITUTIONS)
        location = rules.integer("location_id", required=True, known=LOCATIONS)
        channel = rules.integer("channel", known=CHANNELS)
        priority_program = rules.integer("priority_program_id")
        community = rules.integer("community_id")
        incident = rules.date("date_of_incident")
        info_disposition = rules.string("info_disposition")
        info_attachments = rules.string("info_attachments")
        tags = rules.string("tags_raw")
        copy_externals = rules.data.get("copy_externals")
        if copy_externals is not None and not isinstance(copy_externals, list):
            rules.fail("copy_externals", "The copy externals field must be an array.")
        flags = {
            name: int(rules.boolean(name))
            for name in (
                "is_new_user_slider",
                "is_inbox",
                "is_disposisi_slider",
                "is_approval",
                "is_anonymous",
                "is_secret",
                "is_priority",
            )
        }
        attachments = self._attachment_ids(rules)
        rules.check()
        complaint = SimComplaint(
            id=self._new_id("complaint"),
            title=title or "",
            content=content or "",
            channel=_id_text(channel),
            user_id=str(account),
            classification_id=str(classification),
            category_id=str(category),
            disposition_id=str(disposition),
            location_id=str(location),
            date_of_incident=incident,
            tags_raw=tags or "",
            is_anonymous=flags.pop("is_anonymous"),
            is_secret=flags.pop("is_secret"),
            attachments=attachments,
            created_at=now,
            changed_at=now,
            extra={
                **flags,
                "priority_program_id": priority_program,
                "community_id": community,
                "copy_externals": copy_externals,
                "info_disposition": info_disposition,
                "info_attachments": info_attachments,
            },
        )
        self._insert(complaint, now)
        return complaint

    def _insert(self, complaint: SimComplaint, now: datetime) -> None:
        self.complaints[complaint.id] = complaint
        self._track(complaint)
        self._log(
            complaint,
            "created",
            now,
            TEMPLATE_CREATED,
            institution_from=None,
            institution_to=complaint.disposition_id or GATEWAY_INSTITUTION_ID,
            status_new=WAIT,
        )

    def preload(
        self,
        tags: list[str],
        now: datetime,
        rng: random.Random,
        *,
        user_id: str,
        disposition_id: str | None = GATEWAY_INSTITUTION_ID,
    ) -> list[int]:
        """Complaints as the gateway would have created them through the API at ``now``, one
        per ``tags_raw`` string, without the checks of :meth:`create` (fast: 100,000 in about
        a second). Category, classification and channel are drawn from ``rng``; the location
        is Jawa Tengah (``11``)."""
        categories, channels = sorted(CATEGORIES), ("1", "2", "5", "1", "2")  # web, android, whatsapp
        ids = []
        for tag in tags:
            category = rng.choice(categories)
            complaint = SimComplaint(
                id=self._new_id("complaint"),
                title=f"{CATEGORIES[category]}: laporan warga",
                content="Laporan warga yang diteruskan dari aplikasi daerah.",
                channel=rng.choice(channels),
                user_id=user_id,
                classification_id="1",
                category_id=category,
                disposition_id=disposition_id,
                location_id="11",
                date_of_incident=None,
                tags_raw=str(tag),
                is_anonymous=0,
                is_secret=0,
                attachments=[],
                created_at=now,
                changed_at=now,
            )
            self._insert(complaint, now)
            ids.append(complaint.id)
        return ids

    def add_follow_up(
        self,
        complaint: SimComplaint,
        *,
        institution_from: str,
        institution_to: str | None,
        content: str,
        now: datetime,
        source: str,
        is_secret: int = 0,
        rating: int = 0,
        template_code: str = "",
        attachments: list[int] | None = None,
        info_disposition: str | None = None,
    ) -> dict[str, Any]:
        """A follow-up (tindak lanjut), and a note in the complaint's history (``data``
        null). ``source`` is ``officer`` (the simulated agency) or ``api`` (a client such as
        the gateway); ``attachments`` are document ids."""
        record = {
            "id": self._new_id("follow_up"),
            "complaint_id": complaint.id,
            "institution_from_id": institution_from,
            "institution_from_name": INSTITUTIONS.get(institution_from),
            "institution_to_id": institution_to,
            "content": content,
            "created_at": now,
            "is_secret": int(bool(is_secret)),
            "rating": rating,
            "template_code": template_code,
            "info_disposition": info_disposition,
            "attachments": list(attachments or []),
            "source": source,
        }
        complaint.followups.append(record)
        if source == "officer":
            self.follow_ups_by_officers += 1
        else:
            self.follow_ups_from_gateway += 1
        self._log(
            complaint, "note", now, TEMPLATE_NOTE, institution_from=institution_from, institution_to=institution_to
        )
        return record

    def forward(self, complaint: SimComplaint, target: str, now: datetime, reason: str | None) -> dict[str, Any]:
        """Not our authority ("bukan wewenang"): hand the complaint to ``target``; its status
        becomes Didisposisi (a status change, or a disposition log when it already was);
        the log's data carries ``reason_description``. Returns the log entry."""
        source = complaint.disposition_id or GATEWAY_INSTITUTION_ID
        complaint.disposition_id = target
        self.forwards += 1
        if complaint.status == DISPOSED:
            complaint.changed_at = now
            return self._log(
                complaint,
                "disposition",
                now,
                TEMPLATE_FORWARDED,
                institution_from=source,
                institution_to=target,
                reason=reason,
            )
        return self._change(
            complaint,
            DISPOSED,
            now,
            reason,
            institution_from=source,
            institution_to=target,
            template=TEMPLATE_FORWARDED,
        )

    def reject(self, complaint: SimComplaint, now: datetime, reason: str | None) -> dict[str, Any]:
        """Rejected (Ditolak) through the API; the reason (or a default) in the log's data."""
        self.rejects += 1
        return self._change(
            complaint,
            REJECTED,
            now,
            reason or REJECT_REASON,
            institution_from=complaint.disposition_id or GATEWAY_INSTITUTION_ID,
            institution_to=None,
        )

    def act(
        self,
        complaint: SimComplaint,
        status: str,
        now: datetime,
        *,
        reason: str | None = None,
        institution_to: str | None = None,
        institution_from: str | None = None,
    ) -> dict[str, Any]:
        """An officer's change: to ``status`` (a name, or a legacy key), moving the
        disposition to ``institution_to`` when given (Didisposisi without one: to the agency
        of the complaint's category). A hold, rejection or archive carries ``reason`` (or a
        default one) in the log's data. The same status with a new institution is a
        disposition log without a status change. Returns the log entry; ``ValueError`` for
        an unknown status or institution, or a change that changes nothing."""
        new = status_name(status)
        if institution_to is not None and institution_to not in INSTITUTIONS:
            raise ValueError(f"unknown institution {institution_to!r}")
        admin = GATEWAY_INSTITUTION_ID
        target = institution_to
        if target is None and new == DISPOSED and complaint.status != DISPOSED:
            target = (
                complaint.disposition_id
                if complaint.disposition_id in AGENCIES
                else AGENCY_BY_CATEGORY.get(complaint.category_id, "200101")
            )
        moved = target is not None and target != complaint.disposition_id
        source = institution_from or (
            admin if moved and complaint.status in (WAIT, VERIFIED) else complaint.disposition_id or admin
        )
        if reason is None and new in DEFAULT_REASONS:
            reason = DEFAULT_REASONS[new]
        if new == complaint.status and not moved:
            raise ValueError(f"complaint {complaint.id} is already {new!r} at {complaint.disposition_id}")
        if moved:
            complaint.disposition_id = target
        if new == complaint.status:
            complaint.changed_at = now
            return self._log(
                complaint,
                "disposition",
                now,
                TEMPLATE_DISPOSED,
                institution_from=source,
                institution_to=target,
                reason=reason,
            )
        if moved or new == DISPOSED:
            return self._change(
                complaint,
                new,
                now,
                reason,
                institution_from=source,
                institution_to=complaint.disposition_id,
                template=TEMPLATE_DISPOSED,
            )
        return self._change(
            complaint, new, now, reason, institution_from=source, institution_to=admin if source != admin else None
        )

    # -- history -------------------------------------------------------------------------------

    def _log(
        self,
        complaint: SimComplaint,
        kind: str,
        now: datetime,
        template: str,
        *,
        institution_from: str | None,
        institution_to: str | None,
        status_old: str | None = None,
        status_new: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """A history entry. ``kind``: ``created``, ``status``, ``disposition`` or ``note``;
        ``data`` is what the log's JSON-encoded ``data`` decodes to (None for a note)."""
        data: dict[str, Any] | None = None
        if kind != "note":
            data = {}
            if status_old is not None:
                data["status_old"] = {"name": status_old, "code": STATUS_CODES[status_old]}
            if status_new is not None:
                data["status_new"] = {"name": status_new, "code": STATUS_CODES[status_new]}
            if reason:
                data["reason_description"] = reason
        entry = {
            "id": self._new_id("log"),
            "complaint_id": complaint.id,
            "kind": kind,
            "institution_from_id": institution_from,
            "institution_to_id": institution_to,
            "status_old": status_old,
            "status_new": status_new,
            "reason": reason or None,
            "content": template,
            "data": data,
            "created_at": now,
        }
        complaint.logs.append(entry)
        return entry

    def _change(
        self,
        complaint: SimComplaint,
        new: str,
        now: datetime,
        reason: str | None = None,
        *,
        institution_from: str | None,
        institution_to: str | None,
        template: str = TEMPLATE_STATUS,
    ) -> dict[str, Any]:
        """A status change to ``new`` (a name, or a legacy key such as ``"verification"``),
        logged with ``status_old``/``status_new`` and ``reason`` as ``reason_description``."""
        new = status_name(new)
        old = complaint.status
        complaint.status = new
        complaint.changed_at = now
        self.status_changes += 1
        self._track(complaint)
        return self._log(
            complaint,
            "status",
            now,
            template,
            institution_from=institution_from,
            institution_to=institution_to,
            status_old=old,
            status_new=new,
            reason=reason,
        )

    def record(self, complaint: SimComplaint, kind: str, record: dict[str, Any], now: datetime) -> None:
        """Note a change the simulated people made (see :attr:`changes`)."""
        change: dict[str, Any] = {"complaint_id": complaint.id, "kind": kind, "ref": str(record["id"]), "at": now}
        if kind == "status":
            change["status"] = record["status_new"]
            change["code"] = STATUS_CODES[record["status_new"]]
        self.changes.append(change)

    # -- officers ------------------------------------------------------------------------------

    def _officer_change(
        self,
        complaint: SimComplaint,
        new: str,
        now: datetime,
        unknown_status: str | None,
        *,
        reason: str | None = None,
        institution_to: str | None = None,
        institution_from: str | None = None,
    ) -> None:
        """A status change by the hub's officers (with ``unknown_status``, to that status
        instead; the disposition still moves)."""
        if unknown_status is not None:
            new = unknown_status
            self.unknown_status_changes += 1
        entry = self.act(
            complaint, new, now, reason=reason, institution_to=institution_to, institution_from=institution_from
        )
        self.record(complaint, "status", entry, now)

    def officer_follow_up(
        self,
        complaint: SimComplaint,
        now: datetime,
        content: str,
        *,
        institution_from: str | None = None,
        template_code: str = "TL-JADWAL",
        is_secret: bool | None = None,
        photo: bool | None = None,
        files: list[tuple[str, str, bytes]] | None = None,
    ) -> dict[str, Any]:
        """A follow-up by the hub's officers (the complaint's agency, or the admin), recorded
        as a change. ``is_secret`` and ``photo`` (an evidence PNG attached) default to a rare
        draw from :attr:`extras_rng`; ``files`` are attached as they are."""
        source = institution_from or complaint.disposition_id or GATEWAY_INSTITUTION_ID
        if photo is None:
            photo = self.extras_rng.random() < OFFICER_PHOTO_RATE
        if is_secret is None:
            is_secret = self.extras_rng.random() < OFFICER_SECRET_RATE
        doc_ids = [self.add_doc(name, mime, data, now)["id"] for name, mime, data in (files or [])]
        if photo:
            stamp = now.astimezone(WIB)
            doc_ids.append(
                self.add_doc(
                    f"bukti_{stamp:%Y%m%d_%H%M%S}_{complaint.id}.png", "image/png", evidence_png(self.extras_rng), now
                )["id"]
            )
        record = self.add_follow_up(
            complaint,
            institution_from=source,
            institution_to=GATEWAY_INSTITUTION_ID,
            now=now,
            source="officer",
            template_code=template_code,
            content=content,
            is_secret=int(is_secret),
            attachments=doc_ids,
        )
        self.record(complaint, "follow_up", record, now)
        return record

    @staticmethod
    def _visit_note(now: datetime, roll: float) -> str:
        visit = (now + timedelta(days=1 + int(roll * 6) % 3)).astimezone(WIB).strftime("%d-%m-%Y")
        return f"Laporan sudah kami terima dan akan ditindaklanjuti oleh tim lapangan pada {visit}."

    def officers_act(self, rng: random.Random, now: datetime, *, unknown_status: str | None = None) -> None:
        """Each open complaint gets one roll; what it can lead to depends on its
        status and on the simulated hours since its last change. With
        ``unknown_status``, every change the officers make sets that status instead
        (and a complaint already at it stays there); without, a complaint at
        :data:`UNKNOWN_STATUS_NAME` moves on like one on hold. Besides the status
        changes: the admin sometimes hands a disposed complaint to another agency (a
        disposition log, not a status change, not recorded in :attr:`changes`), and
        the agencies write follow-ups. O(open complaints)."""

        def change(complaint: SimComplaint, new: str, **options: Any) -> None:
            self._officer_change(complaint, new, now, unknown_status, **options)

        for complaint in [self.complaints[ident] for ident in sorted(self._open_at)]:
            if unknown_status is not None and complaint.status == unknown_status:
                continue
            roll = rng.random()
            hours = (now - (complaint.changed_at or complaint.created_at)).total_seconds() / 3600
            status = complaint.status
            admin = GATEWAY_INSTITUTION_ID
            agency = complaint.disposition_id if complaint.disposition_id in AGENCIES else None
            if status == WAIT and hours >= 1:
                if roll < 0.03:
                    change(complaint, REJECTED, institution_from=admin)
                elif roll < 0.05:
                    change(complaint, ARCHIVED, institution_from=admin)
                elif roll < 0.65:
                    change(complaint, VERIFIED, institution_from=admin)
            elif status == VERIFIED and hours >= 1 and roll < 0.6:
                target = agency or AGENCY_BY_CATEGORY.get(complaint.category_id) or rng.choice(sorted(AGENCIES))
                if target == complaint.disposition_id:  # already there: the status alone changes
                    change(complaint, DISPOSED, institution_from=admin)
                else:
                    change(complaint, DISPOSED, institution_from=admin, institution_to=target)
            elif status == DISPOSED and hours >= 2 and roll < 0.5:
                source = complaint.disposition_id or admin
                change(complaint, PROCESS, institution_from=source)
                self.officer_follow_up(complaint, now, self._visit_note(now, roll), institution_from=source)
            elif status == DISPOSED and hours >= 2 and roll < 0.56 and unknown_status is None:
                others = sorted(a for a in AGENCIES if a != complaint.disposition_id)
                self.act(
                    complaint,
                    DISPOSED,
                    now,
                    institution_to=rng.choice(others),
                    institution_from=admin,
                    reason="Dilimpahkan kepada perangkat daerah yang berwenang.",
                )
            elif status == PROCESS and hours >= 2:
                source = complaint.disposition_id or admin
                if roll < 0.08:
                    change(complaint, HOLD, institution_from=source)
                elif roll < 0.45:
                    change(complaint, DONE, institution_from=source)
                    self.officer_follow_up(
                        complaint,
                        now,
                        "Penanganan di lokasi telah selesai dilaksanakan oleh "
                        "tim lapangan. Terima kasih atas partisipasi Anda.",
                        institution_from=source,
                        template_code="TL-SELESAI",
                    )
            elif status in (HOLD, UNKNOWN_STATUS_NAME) and hours >= 2 and roll < 0.5:
                change(complaint, PROCESS, institution_from=complaint.disposition_id or admin)

    def change_some(self, rng: random.Random, now: datetime, count: int, *, unknown_status: str | None = None) -> int:
        """The change model: ``count`` distinct open complaints, drawn by ``rng``, each get one
        change at ``now``, a step of their life: Belum Terverifikasi → Terverifikasi →
        Didisposisi (to the agency of their category) → Dalam Proses → Selesai, with Dalam
        Proses as likely to get an officer's follow-up instead as to close (Ditunda and
        Koordinasi go back to Dalam Proses). With ``unknown_status``, status changes set
        that status, and a complaint already at it gets a follow-up. Returns how many
        changed. O(count), whatever the number of complaints."""
        count = max(0, min(count, len(self._open)))
        admin = GATEWAY_INSTITUTION_ID
        for ident in rng.sample(self._open, count):
            complaint = self.complaints[ident]
            status, roll = complaint.status, rng.random()
            agency = complaint.disposition_id if complaint.disposition_id in AGENCIES else None
            source = complaint.disposition_id or admin

            def change(new: str, **options: Any) -> None:
                # Called only within this iteration, so the late-bound `complaint` is this one.
                self._officer_change(complaint, new, now, unknown_status, **options)  # noqa: B023

            if unknown_status is not None and status == unknown_status:
                self.officer_follow_up(
                    complaint,
                    now,
                    "Laporan Anda sedang kami koordinasikan dengan perangkat daerah terkait.",
                    institution_from=source,
                    template_code="TL-KOORDINASI",
                )
            elif status == WAIT:
                change(VERIFIED, institution_from=admin)
            elif status == VERIFIED:
                target = agency or AGENCY_BY_CATEGORY.get(complaint.category_id) or rng.choice(sorted(AGENCIES))
                change(
                    DISPOSED,
                    institution_from=admin,
                    institution_to=None if target == complaint.disposition_id else target,
                )
            elif status == DISPOSED:
                change(PROCESS, institution_from=source)
            elif status == PROCESS and roll < 0.5:
                self.officer_follow_up(complaint, now, self._visit_note(now, roll), institution_from=source)
            elif status == PROCESS:
                change(DONE, institution_from=source)
            else:  # Ditunda, Koordinasi (the fault is off now), or a status set through a test
                change(PROCESS, institution_from=source)
        return count

    # -- views: what the HTTP answers carry -----------------------------------------------------

    def doc_view(self, doc_id: int) -> dict[str, Any] | None:
        doc = self.docs.get(doc_id)
        if doc is None:
            return None
        return {"id": doc["id"], "filename": doc["filename"], "mime": doc["mime"], "size": doc["size"]}

    def complaint_view(self, complaint: SimComplaint) -> dict[str, Any]:
        """``results`` of ``GET /complaints/{id}/complaint``: ``data`` (the complaint, with
        ``status_code``, ``status_name``, ``disposition_id``, ``disposition_name``: seen; its
        other fields and flags, 0/1: ours) and ``data_logs`` (:meth:`log_view`)."""
        extra = complaint.extra
        return {
            "data": self.complaint_data(complaint)
            | {
                "content": complaint.content,
                "user_id": as_integer(complaint.user_id),
                "classification_id": as_integer(complaint.classification_id),
                "category_id": as_integer(complaint.category_id),
                "category_name": CATEGORIES.get(complaint.category_id),
                "channel": as_integer(complaint.channel) if complaint.channel else None,
                "location_id": as_integer(complaint.location_id) if complaint.location_id else None,
                "location_name": LOCATIONS.get(complaint.location_id or ""),
                "date_of_incident": complaint.date_of_incident,
                "is_anonymous": complaint.is_anonymous,
                "is_secret": complaint.is_secret,
                "is_priority": extra.get("is_priority", 0),
                "is_approval": extra.get("is_approval", 0),
                "priority_program_id": extra.get("priority_program_id"),
                "tags_raw": complaint.tags_raw,
                "attachments": list(complaint.attachments),
                "created_at": peer_time(complaint.created_at),
                "updated_at": peer_time(complaint.changed_at or complaint.created_at),
            },
            "data_logs": [self.log_view(entry) for entry in complaint.logs],
        }

    @staticmethod
    def complaint_data(complaint: SimComplaint) -> dict[str, Any]:
        """The complaint's id, title, status and disposition, as ``results.data`` has them."""
        return {
            "id": complaint.id,
            "title": complaint.title,
            "status_code": complaint.status_code,
            "status_name": complaint.status,
            "disposition_id": as_integer(complaint.disposition_id) if complaint.disposition_id else None,
            "disposition_name": INSTITUTIONS.get(complaint.disposition_id or "", NO_DISPOSITION_NAME),
        }

    @staticmethod
    def log_view(entry: dict[str, Any]) -> dict[str, Any]:
        """One ``data_logs[]`` entry: ``content`` (a template), ``institution_from_name``,
        ``institution_to_name``, ``data`` (a JSON-encoded string, or null for a note): seen;
        ``id`` and ``created_at`` (``d-m-Y H:i:s`` WIB): ours (the time field's name is
        unknown; the follow-up list's is used)."""
        data = entry["data"]
        return {
            "id": entry["id"],
            "content": entry["content"],
            "institution_from_name": INSTITUTIONS.get(entry["institution_from_id"] or ""),
            "institution_to_name": INSTITUTIONS.get(entry["institution_to_id"] or ""),
            "data": None if data is None else json.dumps(data),
            "created_at": peer_time(entry["created_at"]),
        }

    def follow_ups_view(self, complaint: SimComplaint) -> list[dict[str, Any]]:
        """``results.data`` of ``GET /complaints/{id}/followups``: ``created_at`` (``d-m-Y
        H:i:s`` WIB) and ``content`` seen; ``id``, ``complaint_id``, ``institution_from_id``,
        ``institution_from_name``, ``institution_to_id``, ``is_secret`` (0/1),
        ``template_code``, ``rating`` (the names the client's add sends) and ``attachments``
        (``[{id, filename, mime, size}]``) ours."""
        return [
            {
                "id": record["id"],
                "complaint_id": record["complaint_id"],
                "content": record["content"],
                "created_at": peer_time(record["created_at"]),
                "institution_from_id": as_integer(record["institution_from_id"]),
                "institution_from_name": record["institution_from_name"],
                "institution_to_id": as_integer(record["institution_to_id"]) if record["institution_to_id"] else None,
                "is_secret": record["is_secret"],
                "template_code": record["template_code"],
                "rating": record["rating"],
                "attachments": [view for view in (self.doc_view(i) for i in record["attachments"]) if view],
            }
            for record in complaint.followups
        ]

    @staticmethod
    def institutions_view(page: int, page_size: int) -> dict[str, Any]:
        """A page of :data:`INSTITUTION_TABLE`: ``data`` ({id, name} seen; code, parent_id
        ours), ``page``, ``page_size`` and ``total``."""
        rows = [
            {"id": int(ident), "name": name, "code": code, "parent_id": as_integer(parent) if parent else None}
            for ident, code, name, parent in INSTITUTION_TABLE
        ]
        start = (page - 1) * page_size
        return {"data": rows[start : start + page_size], "page": page, "page_size": page_size, "total": len(rows)}

    # -- inspection (tests, demo) ---------------------------------------------------------------

    @staticmethod
    def summary(complaint: SimComplaint) -> dict[str, Any]:
        return {
            "id": complaint.id,
            "title": complaint.title,
            "content": complaint.content,
            "tags_raw": complaint.tags_raw,
            "status_code": complaint.status_code,
            "status_name": complaint.status,
            "attachments": list(complaint.attachments),
            "user_id": complaint.user_id,
            "is_anonymous": complaint.is_anonymous,
            "is_secret": complaint.is_secret,
            "category_id": complaint.category_id,
            "classification_id": complaint.classification_id,
            "channel": complaint.channel,
            "disposition_id": complaint.disposition_id,
            "location_id": complaint.location_id,
            "date_of_incident": complaint.date_of_incident,
            "created_at": complaint.created_at,
            "changed_at": complaint.changed_at,
            **copy.deepcopy(complaint.extra),
        }

    @staticmethod
    def log_copy(entry: dict[str, Any]) -> dict[str, Any]:
        """A history entry for inspection: the stored one (times UTC, ``data`` decoded) plus
        ``text``, its template filled in."""
        names = {
            "institution_from": INSTITUTIONS.get(entry["institution_from_id"] or ""),
            "institution_to": INSTITUTIONS.get(entry["institution_to_id"] or ""),
            "status_old": entry["status_old"],
            "status_new": entry["status_new"],
        }
        names["institution_from_link"] = names["institution_from"]
        names["institution_to_link"] = names["institution_to"]
        return {**copy.deepcopy(entry), "text": _render(entry["content"], names)}

    @staticmethod
    def copies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return copy.deepcopy(records)
