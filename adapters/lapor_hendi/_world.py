"""The simulated Lapor Hendi's state: complaints (aduan), follow-ups (tanggapan),
status history (riwayat status), attachment files (of complaints and of
tanggapan) and the national hub's tracking id of each complaint (nomor_lapor),
in memory.

The world knows nothing of HTTP and takes no lock: :class:`LaporHendiSimulator`
holds ``Simulator.lock`` around every call. Times are kept as aware UTC
datetimes to the second and shown as the app shows them: WIB without an offset.

Built to serve a large world (100,000 complaints and their history): each list
the API pages through keeps a sorted index of (time, id) keys, so a page costs
O(log n + page size); a change of a complaint's ``diperbarui_pada`` moves its
key. :meth:`LaporHendiWorld.seed_history` files many complaints in one pass
(their photos are made only when downloaded).
"""

from __future__ import annotations

import base64
import binascii
import copy
import gc
import math
import random
import struct
import zlib
from bisect import bisect, bisect_left, insort
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, ClassVar

from gateway import WIB
from lapor_gateway_adapters.lapor_hendi import _data as D

TIME_FMT = "%Y-%m-%d %H:%M:%S"
DATE_FMT = "%Y-%m-%d"

SOURCE_APP = "lapor_hendi"
SOURCE_EXTERNAL = "eksternal"
EXTERNAL_AUTHOR = "Eksternal"  # oleh when an API writer passes none
MAX_OFFICER_ANSWERS = 3  # per complaint, so that a long run does not pile them up
OFFICER_SECRET_SHARE = 0.05  # generated officer tanggapan marked rahasia (rare, but present)
OFFICER_PHOTO_SHARE = 0.2  # generated officer tanggapan with an evidence photo (bukti tindak lanjut)

# Files an API writer may attach to a tanggapan (docs/lapor-hendi-api.md).
UPLOAD_TYPES = ("image/jpeg", "image/png", "application/pdf")
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # per file, decoded
MAX_FILENAME_CHARS = 255
MAX_NOMOR_LAPOR_CHARS = 64

_DISTRICT_NAMES = tuple(D.DISTRICTS)
_CATEGORY_CUM_WEIGHTS = tuple(accumulate(D.CATEGORY_WEIGHTS))  # the same draws as weights=, computed once
_CHANNEL_CUM_WEIGHTS = tuple(accumulate(D.CHANNEL_WEIGHTS))

# Fields a caller of submit_complaint may set; "lampiran" is a number of generated photos, or a
# list of files (nama_file, tipe_mime, bytes) to serve as they are.
OVERRIDABLE = frozenset(
    {
        "judul",
        "isi",
        "kategori",
        "klasifikasi",
        "lokasi",
        "kanal",
        "tanggal_kejadian",
        "anonim",
        "rahasia",
        "pelapor",
        "opd",
        "lampiran",
        "nomor_lapor",
    }
)


def show_time(value: datetime) -> str:
    return value.astimezone(WIB).strftime(TIME_FMT)


def read_time(text: str) -> datetime:
    """A WIB time as the app writes it, to UTC. Raises ``ValueError``."""
    return datetime.strptime(text.strip(), TIME_FMT).replace(tzinfo=WIB).astimezone(UTC)


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth), good enough for small means."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def tiny_png(rng: random.Random, width: int, height: int, level: int = -1) -> bytes:
    """A valid RGB PNG of seeded noise (noise does not compress, so it weighs a few KB).
    ``level`` is zlib's; at 0 (stored) the size is :func:`stored_png_size`."""
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")
    )


def stored_png_size(width: int, height: int) -> int:
    """The size of ``tiny_png(rng, width, height, level=0)``: the signature and three chunks
    (57 bytes) around a stored zlib stream (the raw rows, one block, 11 bytes of framing)."""
    raw = height * (1 + width * 3)
    assert raw < 65535, "one stored deflate block"
    return 57 + raw + 11


_ID_BITS = 32
_ID_MASK = (1 << _ID_BITS) - 1


def _key(moment: datetime, ident: int) -> int:
    """(time to the second, id) as one int, ordered as the pair is."""
    return (int(moment.timestamp()) << _ID_BITS) | ident


class TimeIndex:
    """One list of the API in its order: (time, id) keys, each one int, kept sorted.

    ``rows`` maps an id to its stored record and ``time_field`` names the time the
    list is ordered and filtered by. :meth:`add` and :meth:`move` keep it sorted
    (O(log n) to find, a memmove to insert); :meth:`rebuild` sorts it from ``rows``
    after a bulk load."""

    __slots__ = ("keys", "rows", "time_field")

    def __init__(self, rows: dict[int, Any], time_field: str):
        self.keys: list[int] = []
        self.rows = rows
        self.time_field = time_field

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, ident: int) -> None:
        insort(self.keys, _key(self.rows[ident][self.time_field], ident))

    def move(self, ident: int, old: datetime, new: datetime) -> None:
        """The record ``ident`` was at ``old`` and is now at ``new``."""
        if old == new:
            return
        key = _key(old, ident)
        at = bisect_left(self.keys, key)
        if at == len(self.keys) or self.keys[at] != key:
            raise KeyError(f"index out of step: no key for id {ident} at {old}")
        del self.keys[at]
        insort(self.keys, _key(new, ident))

    def rebuild(self) -> None:
        self.keys = sorted(_key(record[self.time_field], ident) for ident, record in self.rows.items())

    def first(self, since: datetime | None) -> int:
        """The position of the first record at or after ``since`` (inclusive; None: 0)."""
        if since is None:
            return 0
        return bisect_left(self.keys, math.ceil(since.timestamp()) << _ID_BITS)

    def slice(self, start: int, end: int) -> list[Any]:
        rows = self.rows
        return [rows[key & _ID_MASK] for key in self.keys[max(0, start) : max(0, end)]]


class WorldError(Exception):
    """A request the app refuses: its HTTP status and its Indonesian message."""

    def __init__(self, http_status: int, pesan: str):
        super().__init__(pesan)
        self.http_status = http_status
        self.pesan = pesan


_MAX_UPLOAD_BASE64_CHARS = 4 * math.ceil(MAX_UPLOAD_BYTES / 3)


def read_uploads(value: Any) -> list[tuple[str, str, bytes]]:
    """The ``lampiran`` of a tanggapan write, checked and decoded: (nama_file, tipe_mime,
    bytes) per file. None or missing: no files. Raises :class:`WorldError` (422) naming the
    file by its position, before anything is stored."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(422, "lampiran harus berupa daftar berkas")
    files = []
    for n, item in enumerate(value, start=1):
        where = f"lampiran ke-{n}"
        if not isinstance(item, dict):
            raise WorldError(422, f"{where} harus berupa objek dengan nama_file, tipe_mime dan konten_base64")
        nama = item.get("nama_file")
        if not isinstance(nama, str) or not nama.strip():
            raise WorldError(422, f"{where}: nama_file wajib diisi")
        if len(nama) > MAX_FILENAME_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in nama):
            raise WorldError(
                422,
                f"{where}: nama_file tidak valid (paling banyak {MAX_FILENAME_CHARS} karakter, tanpa karakter kendali)",
            )
        mime = item.get("tipe_mime")
        mime = mime.strip().lower() if isinstance(mime, str) else None
        if mime not in UPLOAD_TYPES:
            raise WorldError(
                422, f"{where}: tipe_mime tidak didukung, gunakan image/jpeg, image/png atau application/pdf"
            )
        konten = item.get("konten_base64")
        if not isinstance(konten, str) or not konten:
            raise WorldError(422, f"{where}: konten_base64 wajib diisi")
        if len(konten) > _MAX_UPLOAD_BASE64_CHARS:
            raise WorldError(422, f"{where}: ukuran berkas melebihi 10 MiB")
        try:
            data = base64.b64decode(konten, validate=True)
        except (binascii.Error, ValueError):
            raise WorldError(422, f"{where}: konten_base64 bukan base64 yang valid") from None
        if len(data) > MAX_UPLOAD_BYTES:
            raise WorldError(422, f"{where}: ukuran berkas melebihi 10 MiB")
        if not data:
            raise WorldError(422, f"{where}: berkas kosong")
        files.append((nama, mime, data))
    return files


# The life of a complaint filed by seed_history(): means of the exponential waits, in seconds.
HISTORY_TO_PROCESS = 1.5 * 86400  # filed -> "dalam proses" (or rejected)
HISTORY_TO_DONE = 6 * 86400  # "dalam proses" -> "selesai"
HISTORY_REJECTED = 0.06  # share rejected by the admin instead of taken up
HISTORY_ANSWERED = 0.35  # share with an officer's tanggapan when taken up
HISTORY_CLOSING_NOTE = 0.15  # share with an officer's tanggapan when closed


class FastDraws:
    """The draws the world makes, each from a single ``random()``: not the numbers that
    :class:`random.Random`'s own methods give (they draw bits until a value fits) but
    several times faster. :meth:`LaporHendiWorld.seed_history` uses them, where no
    earlier sequence has to be kept; everything else draws from the ``Random`` itself."""

    __slots__ = ("random",)

    def __init__(self, rng: random.Random):
        self.random = rng.random

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            start, stop = 0, start
        return start + int(self.random() * (stop - start))

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def choices(self, population: Any, *, cum_weights: Any) -> list[Any]:
        return [population[bisect(cum_weights, self.random() * cum_weights[-1])]]

    def digits(self, count: int) -> str:
        return f"{int(self.random() * 10**count):0{count}d}"


class _Row:
    """A stored tanggapan or riwayat: its fields as slots (a third of a dict's memory),
    read like a dict (``row["dibuat_pada"]``)."""

    __slots__: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Tanggapan(_Row):
    # In the app's column order, not sorted: as_dict() follows it, and so does the JSON the simulator serves.
    __slots__ = (  # noqa: RUF023
        "id_tanggapan",
        "id_aduan",
        "isi",
        "oleh",
        "sumber",
        "ref_eksternal",
        "rahasia",
        "lampiran",
        "dibuat_pada",
    )

    def __init__(
        self,
        id_tanggapan: int,
        id_aduan: int,
        isi: str,
        oleh: str,
        sumber: str,
        ref_eksternal: str | None,
        dibuat_pada: datetime,
        rahasia: bool = False,
        lampiran: tuple[dict[str, Any], ...] = (),
    ):
        self.id_tanggapan, self.id_aduan, self.isi, self.oleh = id_tanggapan, id_aduan, isi, oleh
        self.sumber, self.ref_eksternal, self.dibuat_pada = sumber, ref_eksternal, dibuat_pada
        # lampiran: a tuple of {id_lampiran, nama_file, tipe_mime, ukuran_byte} (shown as a list)
        self.rahasia, self.lampiran = rahasia, lampiran


class Riwayat(_Row):
    # In the app's column order, not sorted (see Tanggapan).
    __slots__ = (  # noqa: RUF023
        "id_riwayat",
        "id_aduan",
        "status_lama",
        "status_baru",
        "keterangan",
        "oleh",
        "sumber",
        "ref_eksternal",
        "dibuat_pada",
    )

    def __init__(
        self,
        id_riwayat: int,
        id_aduan: int,
        status_lama: str | None,
        status_baru: str,
        oleh: str,
        sumber: str,
        ref_eksternal: str | None,
        dibuat_pada: datetime,
        keterangan: str | None = None,
    ):
        self.id_riwayat, self.id_aduan = id_riwayat, id_aduan
        self.status_lama, self.status_baru, self.keterangan = status_lama, status_baru, keterangan
        self.oleh, self.sumber, self.ref_eksternal, self.dibuat_pada = oleh, sumber, ref_eksternal, dibuat_pada


_ATOMIC = frozenset({str, int, float, bool, type(None), datetime})


def _copy(value: Any) -> Any:
    """A deep copy of a stored value (dicts, lists and immutable scalars; a tanggapan or
    riwayat row becomes a dict), several times faster than :func:`copy.deepcopy` on the
    app's records."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _ATOMIC else _copy(v) for k, v in value.items()}
    if kind is list or kind is tuple:  # a tuple (a tanggapan's lampiran) is shown as a list
        return [v if type(v) in _ATOMIC else _copy(v) for v in value]
    if kind in _ATOMIC:
        return value
    if isinstance(value, _Row):
        return {k: v if type(v) in _ATOMIC else _copy(v) for k, v in value.as_dict().items()}
    return copy.deepcopy(value)


class LaporHendiWorld:
    # Distinct id ranges, so that an adapter mixing up ids fails loudly.
    FIRST_IDS: ClassVar[dict[str, int]] = {"aduan": 1, "tanggapan": 5001, "riwayat": 70001, "lampiran": 30001}

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._aduan: dict[int, dict[str, Any]] = {}
        self._tanggapan: dict[int, Tanggapan] = {}
        self._riwayat: dict[int, Riwayat] = {}
        self._tanggapan_of: dict[int, list[int]] = {}  # id_aduan -> its tanggapan ids
        self._riwayat_of: dict[int, list[int]] = {}
        self._index = {
            "aduan": TimeIndex(self._aduan, "diperbarui_pada"),
            "tanggapan": TimeIndex(self._tanggapan, "dibuat_pada"),
            "riwayat": TimeIndex(self._riwayat, "dibuat_pada"),
        }
        self._bulk = False  # seed_history(): the indexes are rebuilt once at the end
        self._dice: random.Random | FastDraws = rng  # FastDraws during seed_history()
        self._texts: dict[str, str] = {}  # one copy of each generated text (judul, isi, replies)
        # id_lampiran -> (nama, mime, the bytes, or (width, height) of a photo made when downloaded)
        self._files: dict[int, tuple[str, str, bytes | tuple[int, int]]] = {}
        self._photo_seed: int | None = None  # of the photos made when downloaded
        self._next = dict(self.FIRST_IDS)
        # (kind, id_aduan, ref_eksternal) -> the id written: API writes are idempotent by ref.
        self._by_ref: dict[tuple[str, int, str], int] = {}
        self._officer_answers: dict[int, int] = {}  # id_aduan -> tanggapan by the app's officers
        self._answerable: set[int] = set()  # open complaints with fewer than MAX_OFFICER_ANSWERS
        self._tanggapan_by_source: dict[str, int] = {}
        self._status_changes_from_gateway = 0
        self._files_from_gateway = 0  # files stored with the tanggapan API writers wrote
        self._nomor_lapor_from_gateway = 0  # PUT nomor-lapor writes that changed the value

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # --- citizens -----------------------------------------------------------------

    def submit(self, now: datetime, **overrides: Any) -> int:
        """A citizen submits one complaint at ``now``; returns its id_aduan."""
        return self._file(now, overrides, lazy_photos=False)

    def _file(self, now: datetime, overrides: dict[str, Any], *, lazy_photos: bool) -> int:
        unknown = set(overrides) - OVERRIDABLE
        if unknown:
            raise TypeError(f"submit_complaint() got unknown fields: {', '.join(sorted(unknown))}")
        rng, now = self._dice, _second(now)
        local = now.astimezone(WIB)
        kategori = overrides.get("kategori") or rng.choices(D.CATEGORIES, cum_weights=_CATEGORY_CUM_WEIGHTS)[0]
        kecamatan = rng.choice(_DISTRICT_NAMES)
        kelurahans, streets, (lat, lng) = D.DISTRICTS[kecamatan]
        kelurahan, jalan = rng.choice(kelurahans), rng.choice(streets)
        klasifikasi, judul, isi = rng.choice(D.TEXTS.get(kategori, D.TEXTS["Lainnya"]))
        words = {
            "jalan": jalan,
            "kelurahan": kelurahan,
            "kecamatan": kecamatan,
            "hari": rng.choice(D.DAYS),
            "puskesmas": rng.choice(D.PUSKESMAS),
            "sekolah": rng.choice(D.SCHOOLS),
        }
        kanal = rng.choices(D.CHANNELS, cum_weights=_CHANNEL_CUM_WEIGHTS)[0]
        has_point = kanal not in ("sms1708", "twitter")  # text channels give no coordinates
        incident = None
        if rng.random() < 0.7:
            incident = (local.date() - timedelta(days=rng.randrange(4))).strftime(DATE_FMT)
        id_aduan = self._new_id("aduan")
        record: dict[str, Any] = {
            "id_aduan": id_aduan,
            "nomor_tiket": f"LH-{local.year}-{id_aduan:06d}",
            "nomor_lapor": None,  # the national hub's tracking id, once an API writer has set it
            "judul": self._text(judul.format(**words)),
            "isi": self._text(isi.format(**words)),
            "kategori": kategori,
            "klasifikasi": klasifikasi,
            "lokasi": {
                "alamat_kejadian": self._text(f"{jalan} No. {rng.randrange(1, 250)}"),
                "kelurahan": kelurahan,
                "kecamatan": kecamatan,
                "lat": round(lat + rng.uniform(-0.008, 0.008), 6) if has_point else None,
                "lng": round(lng + rng.uniform(-0.008, 0.008), 6) if has_point else None,
            },
            "kanal": kanal,
            "tanggal_kejadian": incident,
            "anonim": rng.random() < 0.15,
            "rahasia": rng.random() < 0.10,
            "pelapor": self._reporter(),
            "lampiran": [],
            "status": D.STATUS_NEW,
            "opd": D.CATEGORY_OPD.get(kategori),
            "dibuat_pada": now,
            "diperbarui_pada": now,
        }
        photos = 0 if rng.random() >= 0.3 else rng.randint(1, 2)
        if overrides:
            overrides = dict(overrides)
            photos = overrides.pop("lampiran", photos)
            record.update(copy.deepcopy(overrides))
        if record["anonim"]:
            record["pelapor"] = None
        if isinstance(photos, list | tuple):  # given files: (nama_file, tipe_mime, bytes) each, served as they are
            record["lampiran"].extend(self._store_file(nama, mime, data) for nama, mime, data in photos)
            photos = 0
        for n in range(1, int(photos) + 1):
            record["lampiran"].append(self._photo(now, kanal, n, lazy=lazy_photos))
        self._aduan[id_aduan] = record
        if not self._bulk:
            self._index["aduan"].add(id_aduan)
        self._answerable.add(id_aduan)
        self._history(id_aduan, None, D.STATUS_NEW, D.SYSTEM_NAME, SOURCE_APP, None, now)
        return id_aduan

    def seed_history(self, count: int, now: datetime, days: float) -> None:
        """File ``count`` complaints over the ``days`` before ``now`` (in id order, evenly
        spread with a seeded jitter), each taken as far through its life as its age
        allows: most are taken up ("dalam proses", some with an officer's tanggapan)
        and closed ("selesai") within days, a few are rejected; those filed in the last
        days are still open. Personal data is generated as for :meth:`submit`; photos
        are made when downloaded. One pass, the list indexes sorted once at the end."""
        if count <= 0:
            return
        if days <= 0:
            raise ValueError("history_days must be above 0")
        rng, now = self.rng, _second(now)
        if self._photo_seed is None:
            self._photo_seed = rng.getrandbits(64)
        step = days * 86400.0 / count
        start = now.timestamp() - days * 86400.0
        self._bulk, self._dice = True, FastDraws(rng)
        collecting = gc.isenabled()
        gc.disable()  # a million new objects, none of them garbage: no point looking for cycles meanwhile
        try:
            for i in range(count):
                created = datetime.fromtimestamp(int(start + (i + rng.random()) * step), UTC)
                self._live(self._file(min(created, now), {}, lazy_photos=True), now)
        finally:
            if collecting:
                gc.enable()
            self._bulk, self._dice = False, rng
            for index in self._index.values():
                index.rebuild()

    def _live(self, id_aduan: int, now: datetime) -> None:
        """A complaint filed by :meth:`seed_history`, through what happened to it up to ``now``."""
        rng, record = self.rng, self._aduan[id_aduan]
        at = record["dibuat_pada"] + timedelta(seconds=int(rng.expovariate(1 / HISTORY_TO_PROCESS)))
        if at > now:
            return
        if rng.random() < HISTORY_REJECTED:
            self.set_status(id_aduan, "ditolak", oleh=D.ADMIN_NAME, sumber=SOURCE_APP, ref=None, now=at)
            return
        officer = self.officer_name(id_aduan)
        self.set_status(id_aduan, D.STATUS_IN_PROGRESS, oleh=officer, sumber=SOURCE_APP, ref=None, now=at)
        if rng.random() < HISTORY_ANSWERED:
            self.officer_answer(id_aduan, None, at)
        at += timedelta(seconds=int(rng.expovariate(1 / HISTORY_TO_DONE)))
        if at > now:
            return
        if rng.random() < HISTORY_CLOSING_NOTE:
            self.officer_answer(id_aduan, None, at)
        self.set_status(id_aduan, "selesai", oleh=officer, sumber=SOURCE_APP, ref=None, now=at)

    def _text(self, text: str) -> str:
        """``text``, as the one copy the world keeps of it (generated texts repeat a lot)."""
        return self._texts.setdefault(text, text)

    def _reporter(self) -> dict[str, str]:
        rng = self._dice
        first, last = rng.choice(D.FIRST_NAMES), rng.choice(D.LAST_NAMES)
        kecamatan = rng.choice(_DISTRICT_NAMES)
        kelurahans, streets, _ = D.DISTRICTS[kecamatan]
        born = datetime(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        day = born.day + (40 if first in D.FEMALE_FIRST_NAMES else 0)  # as a NIK encodes women
        nik = (
            f"3374{D.DISTRICT_CODES[kecamatan]}{day:02d}{born.month:02d}{born.year % 100:02d}"
            f"{rng.randrange(1, 10000):04d}"
        )
        prefix, count = rng.choice(D.PHONE_PREFIXES), rng.choice((7, 8))
        if isinstance(rng, FastDraws):
            phone = prefix + rng.digits(count)
        else:
            phone = prefix + "".join(str(rng.randrange(10)) for _ in range(count))
        return {
            "nama": f"{first} {last}",
            "nik": nik,
            "telepon": phone,
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 100)}@{rng.choice(D.EMAIL_DOMAINS)}",
            "alamat": f"{rng.choice(streets)} No. {rng.randrange(1, 200)}, RT {rng.randint(1, 12):02d}/"
            f"RW {rng.randint(1, 9):02d}, {rng.choice(kelurahans)}, {kecamatan}, Kota Semarang",
        }

    def _photo(
        self, now: datetime, kanal: str, n: int, *, lazy: bool = False, prefix: str | None = None
    ) -> dict[str, Any]:
        width, height = self._dice.randint(32, 56), self._dice.randint(24, 40)
        data: bytes | tuple[int, int]
        if lazy:  # made when downloaded, from a seed of its own (level 0: its size is known now)
            data, size = (width, height), stored_png_size(width, height)
        else:
            data = tiny_png(self.rng, width, height)
            size = len(data)
        id_lampiran = self._new_id("lampiran")
        stamp = now.astimezone(WIB)
        if prefix is not None:
            nama = f"{prefix}_{stamp:%Y%m%d_%H%M%S}_{n}.png"
        elif kanal == "whatsapp":
            nama = f"IMG-{stamp:%Y%m%d}-WA{id_lampiran % 10000:04d}.png"
        else:
            nama = f"foto_aduan_{stamp:%Y%m%d_%H%M%S}_{n}.png"
        self._files[id_lampiran] = (nama, "image/png", data)
        return {"id_lampiran": id_lampiran, "nama_file": nama, "tipe_mime": "image/png", "ukuran_byte": size}

    def _store_file(self, nama: str, mime: str, data: bytes) -> dict[str, Any]:
        """An uploaded file, downloadable at GET /api/v1/lampiran/{id}; its listing entry."""
        id_lampiran = self._new_id("lampiran")
        self._files[id_lampiran] = (nama, mime, data)
        return {"id_lampiran": id_lampiran, "nama_file": nama, "tipe_mime": mime, "ukuran_byte": len(data)}

    # --- officers and API writers -----------------------------------------------------

    def _get(self, id_aduan: int) -> dict[str, Any]:
        record = self._aduan.get(id_aduan)
        if record is None:
            raise WorldError(404, "aduan tidak ditemukan")
        return record

    def _touch(self, id_aduan: int, record: dict[str, Any], now: datetime) -> None:
        """The complaint changed at ``now``: its key in the aduan list moves with it."""
        old, record["diperbarui_pada"] = record["diperbarui_pada"], now
        if not self._bulk:
            self._index["aduan"].move(id_aduan, old, now)

    def reassign(self, id_aduan: int, opd: str | None, now: datetime) -> None:
        """The city's admin hands the complaint to another OPD."""
        record = self._get(id_aduan)
        record["opd"] = opd
        self._touch(id_aduan, record, _second(now))

    def _check_answerable(self, id_aduan: int, record: dict[str, Any]) -> None:
        if record["status"] in D.CLOSED_STATUSES or self._officer_answers.get(id_aduan, 0) >= MAX_OFFICER_ANSWERS:
            self._answerable.discard(id_aduan)
        else:
            self._answerable.add(id_aduan)

    def _history(
        self,
        id_aduan: int,
        old: str | None,
        new: str,
        oleh: str,
        sumber: str,
        ref: str | None,
        now: datetime,
        keterangan: str | None = None,
    ) -> int:
        id_riwayat = self._new_id("riwayat")
        if ref:
            self._by_ref[("riwayat", id_aduan, ref)] = id_riwayat
        self._riwayat[id_riwayat] = Riwayat(id_riwayat, id_aduan, old, new, oleh, sumber, ref, now, keterangan)
        self._riwayat_of.setdefault(id_aduan, []).append(id_riwayat)
        if not self._bulk:
            self._index["riwayat"].add(id_riwayat)
        if sumber == SOURCE_EXTERNAL:
            self._status_changes_from_gateway += 1
        return id_riwayat

    def written(self, kind: str, id_aduan: int, ref: str | None) -> int | None:
        """The id of the ``kind`` (``riwayat`` or ``tanggapan``) record already written for
        this complaint with this non-empty ``ref_eksternal``, or None. Raises
        :class:`WorldError` (404) for an unknown complaint."""
        self._get(id_aduan)
        return self._by_ref.get((kind, id_aduan, ref)) if ref else None

    def set_status(
        self,
        id_aduan: int,
        status: Any,
        *,
        oleh: str,
        sumber: str,
        ref: str | None,
        now: datetime,
        keterangan: Any = None,
    ) -> int:
        """``keterangan``: the note shown to the citizen with the change (a string, or None)."""
        record = self._get(id_aduan)
        if status not in D.STATUSES:
            raise WorldError(422, "status tidak dikenal")
        if keterangan is not None and not isinstance(keterangan, str):
            raise WorldError(422, "keterangan harus berupa teks")
        now = _second(now)
        old, record["status"] = record["status"], status
        self._touch(id_aduan, record, now)
        self._check_answerable(id_aduan, record)
        return self._history(id_aduan, old, status, oleh, sumber, ref, now, keterangan or None)

    def add_tanggapan(
        self,
        id_aduan: int,
        isi: Any,
        *,
        oleh: str,
        sumber: str,
        ref: str | None,
        now: datetime,
        rahasia: Any = False,
        uploads: Any = None,
        photos: int = 0,
    ) -> int:
        """A tanggapan: ``rahasia`` (a bool, or None for false) and ``uploads`` (the API's
        ``lampiran``: a list of {nama_file, tipe_mime, konten_base64}) as an API writer sends
        them, checked before anything is stored (:class:`WorldError` 422); ``photos``
        generated evidence photos (the app's own officers)."""
        record = self._get(id_aduan)
        if not isinstance(isi, str) or not isi.strip():
            raise WorldError(422, "isi tanggapan wajib diisi")
        if rahasia is None:
            rahasia = False
        if not isinstance(rahasia, bool):
            raise WorldError(422, "rahasia harus berupa boolean (true atau false)")
        files = read_uploads(uploads)
        now = _second(now)
        self._touch(id_aduan, record, now)
        id_tanggapan = self._new_id("tanggapan")
        if ref:
            self._by_ref[("tanggapan", id_aduan, ref)] = id_tanggapan
        lampiran: tuple[dict[str, Any], ...] = ()
        if files or photos:
            lampiran = tuple(
                [self._store_file(*f) for f in files]
                + [self._photo(now, "", n, lazy=self._bulk, prefix="bukti_tindak_lanjut") for n in range(1, photos + 1)]
            )
        self._tanggapan[id_tanggapan] = Tanggapan(
            id_tanggapan, id_aduan, isi, oleh, sumber, ref, now, rahasia, lampiran
        )
        if sumber == SOURCE_EXTERNAL:
            self._files_from_gateway += len(files)
        self._tanggapan_of.setdefault(id_aduan, []).append(id_tanggapan)
        if not self._bulk:
            self._index["tanggapan"].add(id_tanggapan)
        self._tanggapan_by_source[sumber] = self._tanggapan_by_source.get(sumber, 0) + 1
        if sumber == SOURCE_APP:
            self._officer_answers[id_aduan] = self._officer_answers.get(id_aduan, 0) + 1
            self._check_answerable(id_aduan, record)
        return id_tanggapan

    def officer_name(self, id_aduan: int) -> str:
        opd = self._get(id_aduan)["opd"]
        return D.OPD_NAMES.get(opd, D.ADMIN_NAME) if opd else D.ADMIN_NAME

    def officer_answer(
        self, id_aduan: int, text: str | None, now: datetime, *, rahasia: bool = False, photos: int = 0
    ) -> int:
        """An officer's tanggapan. With ``text`` None the text is generated, and so are
        (seeded, rarely) its confidentiality and an evidence photo."""
        record = self._get(id_aduan)
        if text is None:
            lokasi = record.get("lokasi") or {}
            text = self._text(
                self._dice.choice(D.OFFICER_REPLIES).format(
                    kecamatan=lokasi.get("kecamatan") or "terkait", kelurahan=lokasi.get("kelurahan") or "lokasi"
                )
            )
            rahasia = self._dice.random() < OFFICER_SECRET_SHARE
            photos = 1 if self._dice.random() < OFFICER_PHOTO_SHARE else 0
        return self.add_tanggapan(
            id_aduan,
            text,
            oleh=self.officer_name(id_aduan),
            sumber=SOURCE_APP,
            ref=None,
            now=now,
            rahasia=rahasia,
            photos=photos,
        )

    def set_nomor_lapor(self, id_aduan: int, value: Any) -> str:
        """An API writer stores the national hub's tracking id of a complaint. The same value
        again changes nothing; another value replaces it. ``diperbarui_pada`` does not move
        (see docs/lapor-hendi-api.md). Returns the value now stored."""
        record = self._get(id_aduan)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise WorldError(422, "nomor_lapor wajib diisi")
        if not isinstance(value, str):
            raise WorldError(422, "nomor_lapor harus berupa teks")
        if len(value) > MAX_NOMOR_LAPOR_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise WorldError(422, f"nomor_lapor tidak valid (paling banyak {MAX_NOMOR_LAPOR_CHARS} karakter)")
        if record["nomor_lapor"] != value:
            record["nomor_lapor"] = value
            self._nomor_lapor_from_gateway += 1
        return value

    def nomor_lapor(self, id_aduan: int) -> str | None:
        nomor: str | None = self._get(id_aduan)["nomor_lapor"]
        return nomor

    def tanggapan(self, id_tanggapan: int) -> Tanggapan:
        """A stored tanggapan (``KeyError`` if there is none)."""
        return self._tanggapan[id_tanggapan]

    def tick(self, now: datetime, *, complaints_per_tick: float, answer_probability: float) -> None:
        """Officers answer some open complaints (in id order, those not yet answered
        MAX_OFFICER_ANSWERS times), then citizens submit new ones."""
        rng = self.rng
        for id_aduan in sorted(self._answerable):
            record = self._aduan[id_aduan]
            if record["status"] in D.CLOSED_STATUSES or self._officer_answers.get(id_aduan, 0) >= MAX_OFFICER_ANSWERS:
                continue
            if rng.random() >= answer_probability:
                continue
            self.officer_answer(id_aduan, None, now)
            if record["status"] in (D.STATUS_NEW, "terverifikasi") and rng.random() < 0.5:
                self.set_status(
                    id_aduan,
                    D.STATUS_IN_PROGRESS,
                    oleh=self.officer_name(id_aduan),
                    sumber=SOURCE_APP,
                    ref=None,
                    now=now,
                )
        for _ in range(poisson(rng, complaints_per_tick)):
            self.submit(now)

    # --- reading ------------------------------------------------------------------------

    @staticmethod
    def show(record: dict[str, Any] | _Row) -> dict[str, Any]:
        """A stored record as the API shows it (a copy, times in WIB)."""
        shown: dict[str, Any] = _copy(record)
        for key in ("dibuat_pada", "diperbarui_pada"):
            if isinstance(shown.get(key), datetime):
                shown[key] = show_time(shown[key])
        return shown

    def page(
        self,
        kind: str,
        since: datetime | None,
        start: int,
        end: int,
        shift: Callable[[int, int, int], tuple[int, int]] | None = None,
    ) -> tuple[int, list[Any]]:
        """One page of the list ``kind`` (``aduan``, ``tanggapan`` or ``riwayat``): the number
        of records at or after ``since`` and the stored records at positions [start, end)
        of them, in the API's order. ``shift(start, end, total)`` may move the window
        first (the page_shift fault). O(log n + page size)."""
        index = self._index[kind]
        first = index.first(since)
        total = len(index) - first
        if shift is not None:
            start, end = shift(start, end, total)
        return total, index.slice(first + start, first + end)

    # The list_* methods return the stored records in the API's order (update time,
    # then id; the time filter is inclusive): aduan as dicts, tanggapan and riwayat as
    # rows read like dicts; pass what you present through show(). O(log n + result).

    def list_aduan(self, since: datetime | None = None) -> list[dict[str, Any]]:
        index = self._index["aduan"]
        return index.slice(index.first(since), len(index))

    def _of(self, kind: str, ids: list[int], since: datetime | None) -> list[Any]:
        index = self._index[kind]
        rows = [index.rows[i] for i in ids]
        rows = [r for r in rows if since is None or r["dibuat_pada"] >= since]
        rows.sort(key=lambda r: _key(r["dibuat_pada"], r[f"id_{kind}"]))
        return rows

    def list_tanggapan(self, since: datetime | None = None, id_aduan: int | None = None) -> list[Tanggapan]:
        if id_aduan is not None:
            return self._of("tanggapan", self._tanggapan_of.get(id_aduan, []), since)
        index = self._index["tanggapan"]
        return index.slice(index.first(since), len(index))

    def list_riwayat(self, since: datetime | None = None, id_aduan: int | None = None) -> list[Riwayat]:
        if id_aduan is not None:
            return self._of("riwayat", self._riwayat_of.get(id_aduan, []), since)
        index = self._index["riwayat"]
        return index.slice(index.first(since), len(index))

    def all_aduan(self) -> list[dict[str, Any]]:
        return [self.show(self._aduan[i]) for i in sorted(self._aduan)]

    def file(self, id_lampiran: int) -> tuple[str, str, bytes] | None:
        found = self._files.get(id_lampiran)
        if found is None:
            return None
        nama, mime, data = found
        if isinstance(data, tuple):  # a photo of seed_history(), made now, the same every time
            width, height = data
            data = tiny_png(random.Random(f"lampiran:{self._photo_seed}:{id_lampiran}"), width, height, level=0)
        return nama, mime, data

    def counts(self) -> dict[str, int]:
        return {
            "complaints": len(self._aduan),
            "follow_ups_by_officers": self._tanggapan_by_source.get(SOURCE_APP, 0),
            "follow_ups_from_gateway": self._tanggapan_by_source.get(SOURCE_EXTERNAL, 0),
            "status_changes_from_gateway": self._status_changes_from_gateway,
            "files_from_gateway": self._files_from_gateway,
            "nomor_lapor_from_gateway": self._nomor_lapor_from_gateway,
        }
