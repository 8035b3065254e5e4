"""The simulated Lapor Hendi's state: complaints (aduan), follow-ups (tanggapan),
status history (riwayat status) and attachment files, in memory.

The world knows nothing of HTTP and takes no lock: :class:`LaporHendiSimulator`
holds ``Simulator.lock`` around every call. Times are kept as aware UTC
datetimes to the second and shown as the app shows them: WIB without an offset.
"""

from __future__ import annotations

import copy
import math
import random
import struct
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway import WIB

from adapters.lapor_hendi import _data as D

TIME_FMT = "%Y-%m-%d %H:%M:%S"
DATE_FMT = "%Y-%m-%d"

SOURCE_APP = "lapor_hendi"
SOURCE_EXTERNAL = "eksternal"
EXTERNAL_AUTHOR = "Eksternal"  # oleh when an API writer passes none
MAX_OFFICER_ANSWERS = 3  # per complaint, so that a long run does not pile them up

# Fields a caller of submit_complaint may set; "lampiran" is a number of generated photos.
OVERRIDABLE = frozenset({"judul", "isi", "kategori", "klasifikasi", "lokasi", "kanal", "tanggal_kejadian",
                         "anonim", "rahasia", "pelapor", "opd", "lampiran"})


def show_time(value: datetime) -> str:
    return value.astimezone(WIB).strftime(TIME_FMT)


def read_time(text: str) -> datetime:
    """A WIB time as the app writes it, to UTC. Raises ``ValueError``."""
    return datetime.strptime(text.strip(), TIME_FMT).replace(tzinfo=WIB).astimezone(timezone.utc)


def _second(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(microsecond=0)


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


def tiny_png(rng: random.Random, width: int, height: int) -> bytes:
    """A valid RGB PNG of seeded noise (noise does not compress, so it weighs a few KB)."""
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class WorldError(Exception):
    """A request the app refuses: its HTTP status and its Indonesian message."""

    def __init__(self, http_status: int, pesan: str):
        super().__init__(pesan)
        self.http_status = http_status
        self.pesan = pesan


class LaporHendiWorld:
    # Distinct id ranges, so that an adapter mixing up ids fails loudly.
    FIRST_IDS = {"aduan": 1, "tanggapan": 5001, "riwayat": 70001, "lampiran": 30001}

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._aduan: dict[int, dict[str, Any]] = {}
        self._tanggapan: list[dict[str, Any]] = []
        self._riwayat: list[dict[str, Any]] = []
        self._files: dict[int, tuple[str, str, bytes]] = {}
        self._next = dict(self.FIRST_IDS)
        # (kind, id_aduan, ref_eksternal) -> the id written: API writes are idempotent by ref.
        self._by_ref: dict[tuple[str, int, str], int] = {}

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # --- citizens -----------------------------------------------------------------

    def submit(self, now: datetime, **overrides: Any) -> int:
        """A citizen submits one complaint at ``now``; returns its id_aduan."""
        unknown = set(overrides) - OVERRIDABLE
        if unknown:
            raise TypeError(f"submit_complaint() got unknown fields: {', '.join(sorted(unknown))}")
        rng, now = self.rng, _second(now)
        kategori = overrides.get("kategori") or rng.choices(D.CATEGORIES, D.CATEGORY_WEIGHTS)[0]
        kecamatan = rng.choice(list(D.DISTRICTS))
        kelurahans, streets, (lat, lng) = D.DISTRICTS[kecamatan]
        kelurahan, jalan = rng.choice(kelurahans), rng.choice(streets)
        klasifikasi, judul, isi = rng.choice(D.TEXTS.get(kategori, D.TEXTS["Lainnya"]))
        words = {"jalan": jalan, "kelurahan": kelurahan, "kecamatan": kecamatan, "hari": rng.choice(D.DAYS),
                 "puskesmas": rng.choice(D.PUSKESMAS), "sekolah": rng.choice(D.SCHOOLS)}
        kanal = rng.choices(D.CHANNELS, D.CHANNEL_WEIGHTS)[0]
        has_point = kanal not in ("sms1708", "twitter")  # text channels give no coordinates
        incident = None
        if rng.random() < 0.7:
            incident = (now.astimezone(WIB).date() - timedelta(days=rng.randrange(4))).strftime(DATE_FMT)
        id_aduan = self._new_id("aduan")
        record: dict[str, Any] = {
            "id_aduan": id_aduan,
            "nomor_tiket": f"LH-{now.astimezone(WIB).year}-{id_aduan:06d}",
            "judul": judul.format(**words),
            "isi": isi.format(**words),
            "kategori": kategori,
            "klasifikasi": klasifikasi,
            "lokasi": {
                "alamat_kejadian": f"{jalan} No. {rng.randrange(1, 250)}",
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
        photos = overrides.pop("lampiran", photos)
        record.update(copy.deepcopy(overrides))
        if record["anonim"]:
            record["pelapor"] = None
        for n in range(1, int(photos) + 1):
            record["lampiran"].append(self._photo(now, kanal, n))
        self._aduan[id_aduan] = record
        self._history(id_aduan, None, D.STATUS_NEW, D.SYSTEM_NAME, SOURCE_APP, None, now)
        return id_aduan

    def _reporter(self) -> dict[str, str]:
        rng = self.rng
        first, last = rng.choice(D.FIRST_NAMES), rng.choice(D.LAST_NAMES)
        kecamatan = rng.choice(list(D.DISTRICTS))
        kelurahans, streets, _ = D.DISTRICTS[kecamatan]
        born = datetime(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        day = born.day + (40 if first in D.FEMALE_FIRST_NAMES else 0)  # as a NIK encodes women
        nik = f"3374{D.DISTRICT_CODES[kecamatan]}{day:02d}{born.month:02d}{born.year % 100:02d}" \
              f"{rng.randrange(1, 10000):04d}"
        phone = rng.choice(D.PHONE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(rng.choice((7, 8))))
        return {
            "nama": f"{first} {last}",
            "nik": nik,
            "telepon": phone,
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 100)}@{rng.choice(D.EMAIL_DOMAINS)}",
            "alamat": f"{rng.choice(streets)} No. {rng.randrange(1, 200)}, RT {rng.randint(1, 12):02d}/"
                      f"RW {rng.randint(1, 9):02d}, {rng.choice(kelurahans)}, {kecamatan}, Kota Semarang",
        }

    def _photo(self, now: datetime, kanal: str, n: int) -> dict[str, Any]:
        data = tiny_png(self.rng, self.rng.randint(32, 56), self.rng.randint(24, 40))
        id_lampiran = self._new_id("lampiran")
        stamp = now.astimezone(WIB)
        if kanal == "whatsapp":
            nama = f"IMG-{stamp:%Y%m%d}-WA{id_lampiran % 10000:04d}.png"
        else:
            nama = f"foto_aduan_{stamp:%Y%m%d_%H%M%S}_{n}.png"
        self._files[id_lampiran] = (nama, "image/png", data)
        return {"id_lampiran": id_lampiran, "nama_file": nama, "tipe_mime": "image/png", "ukuran_byte": len(data)}

    # --- officers and API writers -----------------------------------------------------

    def _get(self, id_aduan: int) -> dict[str, Any]:
        record = self._aduan.get(id_aduan)
        if record is None:
            raise WorldError(404, "aduan tidak ditemukan")
        return record

    def _history(self, id_aduan: int, old: str | None, new: str, oleh: str, sumber: str,
                 ref: str | None, now: datetime) -> int:
        id_riwayat = self._new_id("riwayat")
        if ref:
            self._by_ref[("riwayat", id_aduan, ref)] = id_riwayat
        self._riwayat.append({"id_riwayat": id_riwayat, "id_aduan": id_aduan, "status_lama": old,
                              "status_baru": new, "oleh": oleh, "sumber": sumber, "ref_eksternal": ref,
                              "dibuat_pada": now})
        return id_riwayat

    def written(self, kind: str, id_aduan: int, ref: str | None) -> int | None:
        """The id of the ``kind`` (``riwayat`` or ``tanggapan``) record already written for
        this complaint with this non-empty ``ref_eksternal``, or None. Raises
        :class:`WorldError` (404) for an unknown complaint."""
        self._get(id_aduan)
        return self._by_ref.get((kind, id_aduan, ref)) if ref else None

    def set_status(self, id_aduan: int, status: Any, *, oleh: str, sumber: str, ref: str | None,
                   now: datetime) -> int:
        record = self._get(id_aduan)
        if status not in D.STATUSES:
            raise WorldError(422, "status tidak dikenal")
        now = _second(now)
        old, record["status"], record["diperbarui_pada"] = record["status"], status, now
        return self._history(id_aduan, old, status, oleh, sumber, ref, now)

    def add_tanggapan(self, id_aduan: int, isi: Any, *, oleh: str, sumber: str, ref: str | None,
                      now: datetime) -> int:
        record = self._get(id_aduan)
        if not isinstance(isi, str) or not isi.strip():
            raise WorldError(422, "isi tanggapan wajib diisi")
        now = _second(now)
        record["diperbarui_pada"] = now
        id_tanggapan = self._new_id("tanggapan")
        if ref:
            self._by_ref[("tanggapan", id_aduan, ref)] = id_tanggapan
        self._tanggapan.append({"id_tanggapan": id_tanggapan, "id_aduan": id_aduan, "isi": isi, "oleh": oleh,
                                "sumber": sumber, "ref_eksternal": ref, "dibuat_pada": now})
        return id_tanggapan

    def officer_name(self, id_aduan: int) -> str:
        opd = self._get(id_aduan)["opd"]
        return D.OPD_NAMES.get(opd, D.ADMIN_NAME) if opd else D.ADMIN_NAME

    def officer_answer(self, id_aduan: int, text: str | None, now: datetime) -> int:
        record = self._get(id_aduan)
        if text is None:
            lokasi = record.get("lokasi") or {}
            text = self.rng.choice(D.OFFICER_REPLIES).format(kecamatan=lokasi.get("kecamatan") or "terkait",
                                                              kelurahan=lokasi.get("kelurahan") or "lokasi")
        return self.add_tanggapan(id_aduan, text, oleh=self.officer_name(id_aduan), sumber=SOURCE_APP, ref=None,
                                  now=now)

    def tick(self, now: datetime, *, complaints_per_tick: float, answer_probability: float) -> None:
        """Officers answer some open complaints, then citizens submit new ones."""
        rng = self.rng
        answered: dict[int, int] = {}
        for t in self._tanggapan:
            if t["sumber"] == SOURCE_APP:
                answered[t["id_aduan"]] = answered.get(t["id_aduan"], 0) + 1
        for id_aduan, record in list(self._aduan.items()):
            if record["status"] in D.CLOSED_STATUSES or answered.get(id_aduan, 0) >= MAX_OFFICER_ANSWERS:
                continue
            if rng.random() >= answer_probability:
                continue
            self.officer_answer(id_aduan, None, now)
            if record["status"] in (D.STATUS_NEW, "terverifikasi") and rng.random() < 0.5:
                self.set_status(id_aduan, D.STATUS_IN_PROGRESS, oleh=self.officer_name(id_aduan),
                                sumber=SOURCE_APP, ref=None, now=now)
        for _ in range(poisson(rng, complaints_per_tick)):
            self.submit(now)

    # --- reading ------------------------------------------------------------------------

    @staticmethod
    def show(record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as the API shows it (a copy, times in WIB)."""
        shown = copy.deepcopy(record)
        for key in ("dibuat_pada", "diperbarui_pada"):
            if isinstance(shown.get(key), datetime):
                shown[key] = show_time(shown[key])
        return shown

    # The list_* methods return the stored records in the API's order (update time,
    # then id; the time filter is inclusive); pass what you present through show().

    def list_aduan(self, since: datetime | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self._aduan.values() if since is None or r["diperbarui_pada"] >= since]
        rows.sort(key=lambda r: (r["diperbarui_pada"], r["id_aduan"]))
        return rows

    def list_tanggapan(self, since: datetime | None = None, id_aduan: int | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self._tanggapan if (since is None or r["dibuat_pada"] >= since)
                and (id_aduan is None or r["id_aduan"] == id_aduan)]
        rows.sort(key=lambda r: (r["dibuat_pada"], r["id_tanggapan"]))
        return rows

    def list_riwayat(self, since: datetime | None = None, id_aduan: int | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self._riwayat if (since is None or r["dibuat_pada"] >= since)
                and (id_aduan is None or r["id_aduan"] == id_aduan)]
        rows.sort(key=lambda r: (r["dibuat_pada"], r["id_riwayat"]))
        return rows

    def all_aduan(self) -> list[dict[str, Any]]:
        return [self.show(self._aduan[i]) for i in sorted(self._aduan)]

    def file(self, id_lampiran: int) -> tuple[str, str, bytes] | None:
        return self._files.get(id_lampiran)

    def counts(self) -> dict[str, int]:
        return {
            "complaints": len(self._aduan),
            "follow_ups_by_officers": sum(1 for t in self._tanggapan if t["sumber"] == SOURCE_APP),
            "follow_ups_from_gateway": sum(1 for t in self._tanggapan if t["sumber"] == SOURCE_EXTERNAL),
            "status_changes_from_gateway": sum(1 for r in self._riwayat if r["sumber"] == SOURCE_EXTERNAL),
        }
