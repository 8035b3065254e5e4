"""Property-based fuzzing of everything a peer's records go through, on both stores
(issue: "one bad record never stops a city").

Hypothesis writes pages of Lapor Hendi's three lists (``GET /api/v1/aduan``, ``/tanggapan``,
``/riwayat-status``) and answers of the SP4N hub (``GET /complaints/{id}/complaint`` and
``/followups``) that mix well-formed records with malformed ones: fields missing, of a wrong JSON
type, huge, empty; odd times (year 1 and 9999, 30 February, lone surrogates, NUL, emoji, RTL text,
very long); ids as floats, negative, booleans, strings; objects where strings belong; broken JSON
inside the hub's ``data`` strings. It serves them to the REAL adapters through an injected
``httpx.AsyncClient`` (``httpx.MockTransport``: no server, no sleep) and runs the REAL engine
(``Engine.intake``, ``Engine.poll_hub``) into a real store: SQLite, and PostgreSQL when
GATEWAY_TEST_DATABASE_URL is set (the ``store_url`` fixture).

The properties, checked record by record in every example:

- no exception escapes, and none is swallowed as an internal error: the job is recorded as
  successful (unless the peer itself failed: a hub answer that is not usable at all);
- every malformed record is quarantined (``_store._operator.list_quarantine``) with a reason that
  names a field or a class, never a value (a hub status log that cannot be read is skipped and
  logged by field, as docs/lapor-sp4n.md says, and the complaint's current status still recorded);
- every well-formed record, and every readable one whose text holds a NUL or a lone surrogate,
  is taken in, with exactly that text cleaned (NUL dropped, lone surrogate -> U+FFFD) and nothing
  else changed;
- the store holds no NUL and no lone surrogate anywhere;
- at least 10,000 malformed records per adapter and store (counted, printed with ``-s``).

The product bugs this fuzzing found are fixed; each is pinned by a regression test at the end of
this file (one minimal input each), and the generators keep those inputs out (each place says so),
since their classification differs by store.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from conftest import set_privacy, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import delete, update
from sqlmodel import select
from structlog.testing import capture_logs

from gateway._config import GatewayConfig, load_config
from gateway._engine import Engine
from gateway._personal_data import PersonalDataKeys
from gateway._store import Store
from gateway._store._operator import list_quarantine
from gateway._store._tables import (
    AttachmentRow,
    ComplaintRow,
    CursorRow,
    EventRow,
    JobRunRow,
    LinkRow,
    QuarantineRow,
    ReporterRow,
)
from gateway._timezones import ensure_utc

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
LH_BASE, HUB_BASE = "http://lapor-hendi.fuzz", "http://sp4n.fuzz"
# The reporter's name is kept (encrypted) for a purpose, so that its cleaning is checked too.
ENVIRON = {
    "LAPOR_HENDI_API_KEY": "fuzz-key",
    "SP4N_AUTHORIZATION": "fuzz-authorization",
    "SP4N_TOKEN": "fuzz-token",
    "GATEWAY_PERSONAL_DATA_KEYS": "2wZHWw1vfG9fmCqyhoF5sYvzS3BVoE63sZ1MXLlSc3g=",
}
KEPT = "privacy:\n  reporter:\n    purpose: to check what the intake keeps\n    keep: [name]\n"
PAGE_SIZE = 10  # small pages: the walk pages, re-asks from the newest time and pages through crowded seconds
TARGET = 10_000  # malformed records per adapter and store

LH_FMT, LH_DATE = "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"
HUB_FMTS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")  # the sp4n adapter's default time_formats
BASE = datetime(2026, 11, 2, 8, 0, 0)  # WIB, naive: the peers' clocks

# Examples per test: enough for TARGET malformed records with some margin (about 69 per Lapor
# Hendi example, 89 per SP4N example). Most of the run time is the product's: each quarantined
# record is a transaction of its own.
LH_EXAMPLES = 155
HUB_EXAMPLES = 120
HUB_COMPLAINTS = 12  # complaints linked at the hub, each read with fuzzed answers in every example


@pytest.fixture(autouse=True, scope="module")
def hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Hypothesis keeps caches under ./.hypothesis even without an example database: keep
    them out of the checkout."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


# derandomize: the same examples on every run (CI); no example database, no deadline (an
# example is a whole intake run). The health checks would refuse examples this large and slow.
FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)


# -- cleaning, as the product promises it (gateway/_sanitize.py), written independently ---------


def lone_surrogates(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def clean(text: str | None) -> str | None:
    """What a text that went over the wire must be in the store: NUL dropped, each lone
    surrogate U+FFFD. (After JSON decoding a surrogate can only be lone: the decoder joins
    an escaped pair into one character.)"""
    if text is None:
        return None
    return "".join("" if c == "\x00" else "\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def wire(value: Any) -> Any:
    """A value as the adapter receives it: through JSON and back."""
    return json.loads(json.dumps(value))


def unholdable(value: Any) -> bool:
    return isinstance(value, str) and ("\x00" in value or lone_surrogates(value))


def parses(text: Any, fmt: str) -> bool:
    if not isinstance(text, str):
        return False
    try:
        datetime.strptime(text.strip(), fmt)
    except Exception:
        return False
    return True


# -- generators: where each choice comes from -------------------------------------------------

MISSING = "<<missing>>"  # a key left out of the record (never a value the generators produce)
LONE = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"]
SPECIALS = [
    "🙂",
    "🚧🕳️",
    "\u202eشارع رئيسي",
    "جالان روساک",
    "\u200b",
    "\ufeff",
    "e\u0301",
    "路面",
    "\r\n\t",
    "'\"\\",
    "'; DROP TABLE complaint; --",
    "%s {0} {{status_new}}",
    "<b>tebal</b>",
    "\u0085\u2028",
    "\x00",
]
# Code points a bulk text is made of: ASCII, Latin-1, Arabic, Devanagari, CJK, emoji, controls (NUL too).
CHAR_RANGES = [
    (0x20, 0x7E),
    (0x20, 0x7E),
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0xA0, 0xFF),
    (0x0600, 0x06FF),
    (0x0900, 0x097F),
    (0x4E00, 0x9FFF),
    (0x1F300, 0x1FAFF),
    (0x0300, 0x036F),
    (0xE000, 0xF8FF),
    (0xFFF0, 0xFFFF),
    (0x10000, 0x10FFFF),
]


class Src:
    """Where a record's choices come from: Hypothesis (a few crafted records per example, which
    it shrinks and steers) or a Random seeded by Hypothesis (the bulk: drawing a hundred nested
    records per example from Hypothesis overruns its buffer and takes minutes)."""

    def int(self, lo: int, hi: int) -> int: ...
    def pick(self, items: list[Any]) -> Any: ...
    def text(self, max_size: int = 10, keep: Any = None) -> str: ...
    def float(self) -> float: ...

    def one(self, *makers: Any) -> Any:
        """One of several ways of making a value."""
        return self.pick(list(makers))()

    def chance(self, n: int) -> bool:
        return self.int(0, n - 1) == 0


class DrawSrc(Src):
    def __init__(self, draw: Any):
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def pick(self, items: list[Any]) -> Any:
        return self.draw(st.sampled_from(items))

    def text(self, max_size: int = 10, keep: Any = None) -> str:
        strategy = st.text(max_size=max_size)  # any code point but surrogates
        return self.draw(strategy.filter(keep) if keep else strategy)

    def float(self) -> float:
        return self.draw(st.floats(allow_nan=False, allow_infinity=False))


class RandomSrc(Src):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def pick(self, items: list[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def _char(self) -> str:
        lo, hi = CHAR_RANGES[self.rng.randrange(len(CHAR_RANGES))]
        return chr(self.rng.randint(lo, hi))  # no range holds a surrogate

    def text(self, max_size: int = 10, keep: Any = None) -> str:
        while True:
            text = "".join(self._char() for _ in range(self.rng.randint(0, max_size)))
            if keep is None or keep(text):
                return text

    def float(self) -> float:
        return self.pick([self.rng.uniform(-1e6, 1e6), 0.5, -0.0, 1e308, 5e-324, float(self.rng.randint(-99, 99))])


# -- generators: values ----------------------------------------------------------------------

ODD_TIMES = [
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "2026-02-30 10:00:00",
    "\ud800",
    "\x00",
    "🙂",
    "\u202e2026-11-01 08:00:00",
    "2026-11-01 08:00:00" * 400,
    "",
    " ",
    "2026-11-01T08:00:00",
    "2026-11-01 08:00:00+07:00",
    "2026-11-01",
    "1899-12-31 23:59:59",
    "2201-01-01 00:00:00",
    "2026-11-01 25:00:00",
    "2026-11-01\x0008:00:00",
    "2026-11-01 08:00:00\x00",
    "01-11-2026 08:00:00",
    "null",
    "2026-11-01 08:00:00\ud800",
    "\u202bالأحد ٢٠٢٦\u202c",
    "２０２６年１１月１日",
]
ODD_HUB_TIMES = [
    "0001-01-01 00:00:00",
    "31-12-9999 23:59:59",
    "30-02-2026 10:00:00",
    "\ud800",
    "\x00",
    "🙂",
    "\u202e01-11-2026 08:00:00",
    "01-11-2026 08:00:00" * 400,
    "01-11-2026",
    "2026-11-01T08:00:00Z",
    "01-11-1899 23:59:59",
    "01-01-2201 00:00:00",
    "01-11-2026 24:00:00",
    "01-11-2026 08:00:00\x00",
    "1 Nov 2026",
    "1762041600",
    "",
    "null",
]
ODD_DATES = [
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "\ud800",
    "\x00",
    "🙂",
    "27/11/2026",
    "2026-11-27 00:00:00",
    "",
    "1899-12-31",
    "2026-13-01",
    "2026-11-27" * 300,
]
CLASSIFICATIONS = {"pengaduan", "aspirasi", "permintaan informasi"}


def nested(src: Src) -> Any:
    """An object or a list where a string, a number or a flag belongs."""
    return src.one(
        lambda: [src.int(0, 9) for _ in range(src.int(0, 3))],
        lambda: {src.pick(["a", "nama", "id", "isi"]): src.int(0, 9)},
        lambda: {"nama": {"depan": "Sri"}},
    )


def not_str(src: Src) -> Any:
    return src.one(lambda: src.int(-(10**6), 10**6), src.float, lambda: src.pick([True, False]), lambda: nested(src))


def required(make: Any) -> Any:
    """A required field: left out, null, or of a wrong type."""
    return lambda src: src.one(lambda: MISSING, lambda: None, lambda: make(src))


def bad_id(src: Src) -> Any:  # an id is an integer or a string of digits
    return src.one(
        src.float,
        lambda: src.int(-(10**6), -1),
        lambda: src.pick([True, False]),
        lambda: nested(src),
        lambda: src.text(12, keep=lambda s: not s.strip().isdigit()),
        lambda: "",
        lambda: src.pick(["12a", "-5", "1.5", "1e3", " ", "٣x"]),
    )


def bad_time(src: Src) -> Any:
    return src.one(
        lambda: src.pick(ODD_TIMES), lambda: src.text(24, keep=lambda s: not parses(s, LH_FMT)), lambda: not_str(src)
    )


def bad_date(src: Src) -> Any:
    return src.one(
        lambda: src.pick(ODD_DATES), lambda: src.text(12, keep=lambda s: not parses(s, LH_DATE)), lambda: not_str(src)
    )


def bad_flag(src: Src) -> Any:  # Lapor Hendi's flags are true or false, nothing else
    return src.one(lambda: src.int(-5, 5), src.float, lambda: src.pick(["true", "1", "ya", ""]), lambda: nested(src))


def bad_number(src: Src) -> Any:
    return src.one(lambda: src.pick(["-6.98", "", "utara"]), lambda: src.pick([True, False]), lambda: nested(src))


def bad_integer(src: Src) -> Any:
    return src.one(
        src.float, lambda: src.pick(["4211", "", "4 KB"]), lambda: src.pick([True, False]), lambda: nested(src)
    )


def bad_list(src: Src) -> Any:
    return src.one(
        lambda: src.text(8),
        lambda: src.int(-9, 9),
        lambda: src.pick([True, False]),
        lambda: {"id_lampiran": src.int(0, 9)},
    )


def bad_object(src: Src) -> Any:
    return src.one(
        lambda: src.text(8), lambda: src.int(-9, 9), src.float, lambda: src.pick([True, False]), lambda: [src.int(0, 9)]
    )


def bad_klasifikasi(src: Src) -> Any:
    return src.one(
        lambda: src.text(12, keep=lambda s: s.strip().lower() not in CLASSIFICATIONS),
        lambda: src.pick(["pengaduan!", "aduan", "", "\x00pengaduan", "whistleblowing"]),
        lambda: not_str(src),
    )


def texts(src: Src, *, dirty: bool = False, huge: bool = True, nonblank: bool = False) -> str:
    """A text a citizen or an officer might write: any Unicode (NUL included), emoji, RTL,
    now and then huge (20k-60k characters) or empty; ``dirty`` inserts NULs and lone surrogates."""
    text = "".join(src.one(lambda: src.text(10), lambda: src.pick(SPECIALS)) for _ in range(src.int(0, 3)))
    if nonblank and not text.strip():
        text = "teks " + text
    if huge and src.chance(40):
        size = src.int(20_000, 60_000)
        seed = text or "jalan berlubang "
        text = (seed * (size // len(seed) + 1))[:size]
    if dirty:
        for _ in range(src.int(1, 3)):
            at = src.int(0, len(text))
            text = text[:at] + src.pick(["\x00", *LONE]) + text[at:]
    return text


def offset(src: Src) -> int:
    """Seconds after BASE of a record's server time: a few crowded seconds (more records than
    a page), and a spread."""
    return src.one(lambda: src.int(0, 2), lambda: src.int(0, 1800))


@dataclass
class Recipe:
    """One record to serve: its kind, its fields (besides id, times and ticket), how it is broken."""

    kind: str  # good | dirty | bad | unmapped (a complaint whose status has no mapping) | note | noid
    offset: int = 0
    fields: dict[str, Any] = field(default_factory=dict)
    mutations: tuple[tuple[tuple[Any, ...], Any], ...] = ()
    whole: str | None = None  # the record is not an object: its JSON type
    target: int = 0  # which complaint a follow-up or status change belongs to
    tokens: frozenset[str] = frozenset()  # what a quarantine reason may name: the fields it broke


def lh_name(path: tuple[Any, ...]) -> str:
    """A field's path as the lapor_hendi adapter names it: lampiran[0].id_lampiran."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def set_path(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = record
    for part in path[:-1]:
        target = target[part]
    if isinstance(value, str) and value == MISSING:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


def maybe(src: Src, make: Any, *, null: bool = True) -> Any:
    """An optional field: its value, null, or left out."""
    choice = src.int(0, 5)
    if choice == 0:
        return MISSING
    if choice == 1 and null:
        return None
    return make()


def put(record: dict[str, Any], key: str, value: Any) -> None:
    if not (isinstance(value, str) and value == MISSING):
        record[key] = value


# -- generators: Lapor Hendi records -----------------------------------------------------------

LH_STATUSES = [
    "belum terverifikasi",
    "terverifikasi",
    "dalam proses",
    "selesai",
    "ditolak",
    "  Dalam   PROSES ",
    "SELESAI",
]
STREAMS = ("complaints", "follow_ups", "status_changes")


def lh_attachment(src: Src) -> dict[str, Any]:
    item = {"id_lampiran": src.int(1, 10**9)}
    put(item, "nama_file", maybe(src, lambda: texts(src, huge=False)))
    put(item, "tipe_mime", maybe(src, lambda: src.pick(["image/png", "image/jpeg", "application/pdf", "x/odd"])))
    # Sizes stay within 32 bits: bigger ones are store-dependent (pinned by the regression tests at the end).
    put(item, "ukuran_byte", maybe(src, lambda: src.int(0, 2**31 - 1)))
    return item


def lh_complaint_fields(src: Src, dirty: frozenset[str] = frozenset()) -> dict[str, Any]:
    def text(name: str) -> str:
        return texts(src, dirty=name in dirty)

    record: dict[str, Any] = {"judul": text("judul"), "isi": text("isi"), "status": src.pick(LH_STATUSES)}
    put(record, "kategori", maybe(src, lambda: src.pick(["Jalan Rusak", "Sampah", "Lainnya", "Kategori Baru"])))
    put(
        record,
        "klasifikasi",
        maybe(src, lambda: src.pick(["pengaduan", "aspirasi", "permintaan informasi", " Aspirasi ", "PENGADUAN"])),
    )
    put(record, "kanal", maybe(src, lambda: src.pick(["web", "android", "whatsapp", "sms1708", "twitter", "fax"])))
    put(record, "tanggal_kejadian", maybe(src, lambda: str(date(1950, 1, 1) + timedelta(days=src.int(0, 55_000)))))
    put(record, "rahasia", maybe(src, lambda: src.pick([True, False])))
    put(record, "opd", maybe(src, lambda: src.pick(["DPU", "DLH", "DINKES", "BARU"])))
    if any(f.startswith("lokasi.") for f in dirty) or not src.chance(4):
        record["lokasi"] = {
            "alamat_kejadian": text("lokasi.alamat_kejadian"),
            "kelurahan": text("lokasi.kelurahan"),
            "kecamatan": text("lokasi.kecamatan"),
        }
        put(record["lokasi"], "lat", maybe(src, lambda: src.pick([-6.9861, -7.05, 0.0, -90.0])))
        put(record["lokasi"], "lng", maybe(src, lambda: src.pick([110.4122, 110, 141.0])))
    else:
        put(record, "lokasi", src.pick([MISSING, None]))
    anonymous = False if "pelapor.nama" in dirty else src.pick([True, False])
    put(record, "anonim", anonymous if (anonymous or src.pick([True, False])) else MISSING)
    if "pelapor.nama" in dirty or not src.chance(4):
        record["pelapor"] = {
            "nama": text("pelapor.nama"),
            "nik": "3374" + str(src.int(10**11, 10**12 - 1)),
            "telepon": "08" + str(src.int(10**9, 10**10 - 1)),
            "email": "warga@example.com",
            "alamat": texts(src, huge=False),
        }
        if "pelapor.nama" not in dirty and src.chance(6):
            # A reporter field of a wrong type is taken as absent: the complaint is still taken in.
            key = src.pick(["nama", "nik", "telepon", "email", "alamat"])
            record["pelapor"][key] = src.one(lambda: not_str(src), lambda: src.int(0, 2**60))
    else:
        put(record, "pelapor", src.pick([MISSING, None]))
    put(record, "lampiran", maybe(src, lambda: [lh_attachment(src) for _ in range(src.int(0, 2))]))
    if src.chance(10):
        record["kolom_baru"] = {"tidak": ["dikenal", 1]}  # unknown keys are left alone
    return record


def lh_follow_up_fields(src: Src, dirty: frozenset[str] = frozenset()) -> dict[str, Any]:
    record: dict[str, Any] = {"isi": texts(src, dirty="isi" in dirty)}
    put(
        record,
        "oleh",
        texts(src, dirty=True, huge=False)
        if "oleh" in dirty
        else maybe(
            src,
            lambda: src.pick(
                ["Dinas Pekerjaan Umum Kota Semarang", "Admin Lapor Hendi", "LAPOR!-SP4N", "Dinas 🙂 \u202eرسمی", ""]
            ),
        ),
    )
    put(record, "sumber", maybe(src, lambda: src.pick(["lapor_hendi", "eksternal", "lain"])))
    put(record, "ref_eksternal", maybe(src, lambda: texts(src, huge=False)))
    put(record, "rahasia", maybe(src, lambda: src.pick([True, False])))
    put(record, "lampiran", maybe(src, lambda: [lh_attachment(src) for _ in range(src.int(0, 2))]))
    return record


def lh_status_fields(src: Src, dirty: frozenset[str] = frozenset()) -> dict[str, Any]:
    # Any status string is readable: one without a mapping is kept in the timeline unmapped.
    def status(name: str) -> str:
        if name in dirty:
            return texts(src, dirty=True, huge=False)
        return src.one(lambda: src.pick(LH_STATUSES), lambda: texts(src, huge=False))

    record: dict[str, Any] = {"status_baru": status("status_baru")}
    put(
        record,
        "status_lama",
        status("status_lama") if "status_lama" in dirty else maybe(src, lambda: status("status_lama")),
    )
    put(record, "keterangan", maybe(src, lambda: texts(src)))
    put(record, "oleh", maybe(src, lambda: src.pick(["Sistem Lapor Hendi", "LAPOR!-SP4N"])))
    put(
        record,
        "ref_eksternal",
        texts(src, dirty=True, huge=False) if "ref_eksternal" in dirty else maybe(src, lambda: texts(src, huge=False)),
    )
    return record


def _fix_parents(record: dict[str, Any], paths: list[tuple[Any, ...]]) -> None:
    """Make room for mutations of nested fields: they must be read to break the record."""
    for path in paths:
        if len(path) > 1 and path[0] == "lokasi" and not isinstance(record.get("lokasi"), dict):
            record["lokasi"] = {"alamat_kejadian": "Jl. Pemuda"}
        if (
            len(path) > 1
            and path[0] == "lampiran"
            and (not isinstance(record.get("lampiran"), list) or not record["lampiran"])
        ):
            record["lampiran"] = [{"id_lampiran": 7, "nama_file": "a.png"}]


LH_LAMPIRAN_MUTATIONS = [
    (("lampiran",), bad_list),
    (("lampiran", 0), bad_object),
    (("lampiran", 0, "id_lampiran"), required(bad_id)),
    (("lampiran", 0, "nama_file"), not_str),
    (("lampiran", 0, "tipe_mime"), not_str),
    (("lampiran", 0, "ukuran_byte"), bad_integer),
]
LH_MUTATIONS: dict[str, list[tuple[tuple[Any, ...], Any]]] = {
    "complaints": [
        (("id_aduan",), required(bad_id)),
        (("judul",), required(not_str)),
        (("isi",), required(not_str)),
        (("status",), required(not_str)),
        (("dibuat_pada",), required(bad_time)),
        (("diperbarui_pada",), required(bad_time)),
        (("klasifikasi",), bad_klasifikasi),
        (("kategori",), not_str),
        (("kanal",), not_str),
        (("opd",), not_str),
        (("lokasi",), bad_object),
        (("lokasi", "alamat_kejadian"), not_str),
        (("lokasi", "kelurahan"), not_str),
        (("lokasi", "kecamatan"), not_str),
        (("lokasi", "lat"), bad_number),
        (("lokasi", "lng"), bad_number),
        (("tanggal_kejadian",), bad_date),
        (("anonim",), bad_flag),
        (("rahasia",), bad_flag),
        # No pelapor mutation: a malformed reporter is taken as absent, never a reason to refuse the
        # complaint (Reporter.from_peer); good records carry some (lh_complaint_fields).
        *LH_LAMPIRAN_MUTATIONS,
    ],
    "follow_ups": [
        (("id_tanggapan",), required(bad_id)),
        (("id_aduan",), required(bad_id)),
        (("isi",), required(not_str)),
        (("dibuat_pada",), required(bad_time)),
        (("oleh",), not_str),
        (("ref_eksternal",), not_str),
        (("rahasia",), bad_flag),
        *LH_LAMPIRAN_MUTATIONS,
    ],
    "status_changes": [
        (("id_riwayat",), required(bad_id)),
        (("id_aduan",), required(bad_id)),
        (("status_baru",), required(not_str)),
        (("status_lama",), not_str),
        (("ref_eksternal",), not_str),
        (("dibuat_pada",), required(bad_time)),
    ],
}
WHOLE_KINDS = ["int", "float", "str", "list", "null", "bool"]
LH_FIELDS = {"complaints": lh_complaint_fields, "follow_ups": lh_follow_up_fields, "status_changes": lh_status_fields}
LH_DIRTY_FIELDS = {
    "complaints": ["judul", "isi", "pelapor.nama", "lokasi.alamat_kejadian", "lokasi.kelurahan", "lokasi.kecamatan"],
    "follow_ups": ["isi", "oleh"],
    "status_changes": ["status_baru", "status_lama", "ref_eksternal"],
}


def lh_record(src: Src, stream: str, kind: str) -> Recipe:
    at, target = offset(src), src.int(0, 10**6)
    if kind == "dirty":
        names = LH_DIRTY_FIELDS[stream]
        dirty = frozenset(src.pick(names) for _ in range(src.int(1, 3)))
        return Recipe("dirty", at, LH_FIELDS[stream](src, dirty), target=target)
    fields = LH_FIELDS[stream](src)
    if kind == "unmapped":  # readable, taken in, and its status quarantined for a mapping to be added
        # Short: a long one is pinned by test_a_value_too_long_for_an_index_on_postgresql_does_not_stop_the_intake.
        fields["status"] = "status lain " + src.text(24)
        return Recipe("unmapped", at, fields, target=target)
    if kind == "good":
        return Recipe("good", at, fields, target=target)
    if src.chance(12):
        return Recipe("bad", at, fields, whole=src.pick(WHOLE_KINDS), target=target, tokens=frozenset({"record"}))
    catalogue = LH_MUTATIONS[stream]
    picks = sorted({src.int(0, len(catalogue) - 1) for _ in range(src.int(1, 3))})
    mutations = tuple((catalogue[i][0], catalogue[i][1](src)) for i in picks)
    _fix_parents(fields, [path for path, _ in mutations])
    return Recipe(
        "bad", at, fields, mutations=mutations, target=target, tokens=frozenset(lh_name(path) for path, _ in mutations)
    )


CRAFTED_KINDS = ["bad", "bad", "good", "dirty"]


@st.composite
def lh_pages(draw: Any) -> dict[str, list[Recipe]]:
    """The three lists of one example: two records each crafted by Hypothesis, the bulk from a
    Random it seeds (20-24 malformed, 4-7 well-formed, 2-3 readable with text to clean)."""
    crafted, rng = DrawSrc(draw), random.Random(draw(st.integers(0, 2**32 - 1)))
    bulk = RandomSrc(rng)
    pages: dict[str, list[Recipe]] = {}
    for stream in STREAMS:
        records = [lh_record(crafted, stream, crafted.pick(CRAFTED_KINDS)) for _ in range(2)]
        records += [lh_record(bulk, stream, "bad") for _ in range(rng.randint(20, 24))]
        records += [lh_record(bulk, stream, "good") for _ in range(rng.randint(4, 7))]
        records += [lh_record(bulk, stream, "dirty") for _ in range(rng.randint(2, 3))]
        if stream == "complaints" and rng.random() < 0.5:
            records.append(lh_record(bulk, stream, "unmapped"))
        pages[stream] = records
    return pages


# -- generators: SP4N answers ------------------------------------------------------------------

HUB_STATUSES = [
    "Belum Terverifikasi",
    "Terverifikasi",
    "Didisposisi",
    "Ditunda",
    "Dalam Proses",
    "Selesai",
    "Ditolak",
    "Diarsipkan",
    "  selesai  ",
]
ODD_NAMES = ["🙂 Selesai", "\u202eتم الحل", "Status Baru", "Ditunda\u200b", "<b>Selesai</b>", "x" * 400]
HUB_GOOD_FLAGS = [True, False, 0, 1, "0", "1", "true", "FALSE", " True ", None, MISSING]
BROKEN_JSON = [
    '{"status_new": ',
    "{",
    "not json",
    '{"status_new": {"name": "Selesai"}',
    "\ud800",
    "[",
    "{'status_new': 1}",
    '{"a": 1}}',
    "\x00",
    "NaN?",
    '{"status_new": {"name": "Selesai\\ud800"}',
]
BAD_ATTACHMENT_ITEMS = [{}, {"id": None}, {"id": ""}, {"id": "  "}, {"id": {}}, {"id": []}, None, [], "  "]
FLAG_TEXTS = ("0", "1", "true", "false")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def blank(src: Src) -> Any:
    return src.pick([MISSING, None, "", "   ", "\t\n"])


def bad_hub_flag(src: Src) -> Any:
    return src.one(
        lambda: src.int(2, 10**6),
        lambda: src.int(-(10**6), -1),
        src.float,
        lambda: nested(src),
        lambda: src.text(6, keep=lambda s: s.strip().lower() not in FLAG_TEXTS),
    )


def bad_hub_time(src: Src) -> Any:
    return src.one(
        lambda: src.pick(ODD_HUB_TIMES),
        lambda: src.int(-(10**6), 10**6),
        src.float,
        lambda: src.pick([True, False]),
        lambda: src.text(24, keep=lambda s: not any(parses(s, f) for f in HUB_FMTS)),
    )


def broken_json(src: Src) -> str:
    return src.one(
        lambda: src.pick(BROKEN_JSON), lambda: src.text(12, keep=lambda s: s.strip() != "" and not _is_json(s))
    )


HUB_FOLLOW_UP_MUTATIONS: list[tuple[tuple[Any, ...], Any, str]] = [
    (("content",), lambda src: src.one(lambda: blank(src), lambda: not_str(src)), "content"),
    (("created_at",), lambda src: src.one(lambda: blank(src), lambda: nested(src)), "created_at"),
    (("created_at",), bad_hub_time, "created_at"),
    (("is_secret",), bad_hub_flag, "is_secret"),
    (
        ("attachments",),
        lambda src: src.one(lambda: src.text(6), lambda: src.int(-9, 9), lambda: True, lambda: {"id": src.int(0, 9)}),
        "attachments",
    ),
    (("attachments",), lambda src: [src.pick(BAD_ATTACHMENT_ITEMS) for _ in range(src.int(1, 2))], "attachments"),
]
HUB_LOG_MUTATIONS: list[tuple[tuple[Any, ...], Any]] = [
    (("data",), broken_json),
    (("created_at",), lambda src: src.one(lambda: blank(src), lambda: nested(src), lambda: bad_hub_time(src))),
]
HUB_TIME_FORMATS = ["{d:%d-%m-%Y %H:%M:%S}", "{d:%Y-%m-%d %H:%M:%S}"]


def hub_log(src: Src, kind: str) -> Recipe:
    """A data_logs entry: ``noid`` is a good one without an id (known by a digest of its time,
    statuses, institutions and text; a lone surrogate there is pinned by
    test_a_hub_record_without_an_id_and_a_lone_surrogate_is_taken_in)."""
    dirty = kind == "dirty"
    new = texts(src, dirty=True, huge=False, nonblank=True) if dirty else src.pick(HUB_STATUSES + ODD_NAMES)
    old = src.pick([MISSING, None, *HUB_STATUSES[:4]])
    data: dict[str, Any] = {"status_new": {"name": new} if src.pick([True, False]) else new}
    if not (isinstance(old, str) and old == MISSING):
        data["status_old"] = {"name": old}
    if src.pick([True, False]):
        data["reason_description"] = texts(src, dirty=dirty, huge=False)
    fields = {
        "time_format": src.pick(HUB_TIME_FORMATS),
        "data": data if src.chance(5) else json.dumps(data),
        "content": src.pick(
            [
                "Status {{status_old}} menjadi {{status_new}} oleh {{institution_from}}",
                "Diteruskan ke {{institution_to_link}}",
                "",
            ]
        )
        + (texts(src, dirty=True, huge=False) if dirty else ""),
        "institution_from_name": src.pick(["Pemerintah Kota Semarang", None, "Instansi 🙂"]),
        "institution_to_name": texts(src, dirty=dirty, huge=False),
    }
    if kind == "note":  # not a status change: a note, or data that decodes to no object
        fields["data"] = src.pick(
            ["", "[]", "5", "null", '"teks"', '{"info": "catatan"}', 7, None, {"status_old": {"name": "Ditunda"}}]
        )
    recipe = Recipe(kind, offset(src), fields)
    if kind == "bad":
        if src.chance(8):
            recipe.whole = src.pick(WHOLE_KINDS)
        else:
            picks = sorted({src.int(0, len(HUB_LOG_MUTATIONS) - 1) for _ in range(src.int(1, 2))})
            recipe.mutations = tuple((HUB_LOG_MUTATIONS[i][0], HUB_LOG_MUTATIONS[i][1](src)) for i in picks)
    return recipe


def hub_follow_up(src: Src, kind: str) -> Recipe:
    dirty = kind == "dirty"
    fields: dict[str, Any] = {
        "time_format": src.pick(HUB_TIME_FORMATS),
        "content": texts(src, dirty=dirty, nonblank=True),
    }
    fields["institution_from_name"] = (
        texts(src, dirty=True, huge=False)
        if dirty
        else src.one(
            lambda: src.pick([MISSING, None, 5, "Dinas Kesehatan Kota Semarang"]), lambda: texts(src, huge=False)
        )
    )
    fields["is_secret"] = src.pick(HUB_GOOD_FLAGS)
    fields["attachments"] = src.one(
        lambda: src.pick([MISSING, None, []]),
        lambda: [
            {
                "id": src.int(1, 10**6),
                "filename": texts(src, huge=False),
                "mime": src.pick(["image/png", "application/pdf"]),
                "size": src.int(0, 2**31 - 1),
            }
            for _ in range(src.int(1, 2))
        ],
    )
    if kind == "noid":
        # Known by a digest of its time, author and text. A lone surrogate there is pinned by
        # test_a_hub_record_without_an_id_and_a_lone_surrogate_is_taken_in.
        fields["content"] = texts(src, huge=False, nonblank=True)
    recipe = Recipe(kind, offset(src), fields)
    if kind == "bad":
        if src.chance(10):
            recipe.whole, recipe.tokens = src.pick(WHOLE_KINDS), frozenset({"record"})
        else:
            picks = sorted({src.int(0, len(HUB_FOLLOW_UP_MUTATIONS) - 1) for _ in range(src.int(1, 2))})
            recipe.mutations = tuple((HUB_FOLLOW_UP_MUTATIONS[i][0], HUB_FOLLOW_UP_MUTATIONS[i][1](src)) for i in picks)
            recipe.tokens = frozenset(HUB_FOLLOW_UP_MUTATIONS[i][2] for i in picks)
    return recipe


UNUSABLE_READS = [
    "list",
    "results_null",
    "data_string",
    "data_list",
    "no_status",
    "status_objects",
    "not_json",
    "says_failed",
]
UNUSABLE_FOLLOW_UPS = ["list", "results_null", "data_dict", "data_string", "not_json", "says_failed"]


@dataclass
class HubRead:
    kind: str  # ok | read_unusable | follow_ups_unusable
    broken: str = ""
    code: Any = None
    name: Any = None
    logs_shape: str = "list"  # list | missing | null | dict | string
    logs: list[Recipe] = field(default_factory=list)
    follow_ups: list[Recipe] = field(default_factory=list)


def hub_read(src: Src, first: bool, crafted: Src | None = None) -> HubRead:
    """One complaint's two answers; ``crafted`` adds a few records Hypothesis makes itself."""
    roll = 9 if first else src.int(0, 11)
    if roll == 0:
        return HubRead("read_unusable", broken=src.pick(UNUSABLE_READS))
    if roll == 1:
        return HubRead("follow_ups_unusable", broken=src.pick(UNUSABLE_FOLLOW_UPS), code=3, name="Terverifikasi")
    code = src.pick([MISSING, None, 1, 5, "7", " 3 ", "", True, "\x002"])
    # The current status's name goes into an indexed column (its event's ref): kept short, see
    # test_a_value_too_long_for_an_index_on_postgresql_stops_the_hub_poll.
    name = src.one(
        lambda: src.pick(HUB_STATUSES + ODD_NAMES[:4] + ["Selesai\x00", "Ditunda\ud800"]),
        lambda: texts(src, huge=False, nonblank=True)[:200],
    )
    read = HubRead(
        "ok", code=code, name=name, logs_shape="list" if roll > 2 else src.pick(["missing", "null", "dict", "string"])
    )
    if read.logs_shape == "list":
        read.logs = (
            [hub_log(src, "bad") for _ in range(src.int(4, 5))]
            + [hub_log(src, "good") for _ in range(src.int(0, 2))]
            + [hub_log(src, "dirty") for _ in range(src.int(0, 1))]
            + [hub_log(src, "note") for _ in range(src.int(0, 1))]
            + [hub_log(src, "noid") for _ in range(src.int(0, 1))]
        )
        if crafted is not None:
            read.logs += [hub_log(crafted, crafted.pick(CRAFTED_KINDS)) for _ in range(2)]
    read.follow_ups = (
        [hub_follow_up(src, "bad") for _ in range(src.int(4, 5))]
        + [hub_follow_up(src, "good") for _ in range(src.int(0, 2))]
        + [hub_follow_up(src, "dirty") for _ in range(src.int(0, 1))]
        + [hub_follow_up(src, "noid") for _ in range(src.int(0, 1))]
    )
    if crafted is not None:
        read.follow_ups += [hub_follow_up(crafted, crafted.pick(CRAFTED_KINDS + ["noid"])) for _ in range(2)]
    return read


@st.composite
def hub_answers(draw: Any) -> list[HubRead]:
    """The answers for every linked complaint of one example: the first complaint's records
    partly crafted by Hypothesis, the rest from a Random it seeds."""
    crafted, bulk = DrawSrc(draw), RandomSrc(random.Random(draw(st.integers(0, 2**32 - 1))))
    return [hub_read(bulk, i == 0, crafted if i == 0 else None) for i in range(HUB_COMPLAINTS)]


# -- the peers, as MockTransports -------------------------------------------------------------


class FakeLaporHendi:
    """Lapor Hendi's three lists as docs/lapor-hendi-api.md serves them: ordered by time then
    id, an inclusive time filter, page numbers, meta.total_halaman. Each record has a server
    time of its own (what the app's database holds), used for the order and the filter even
    when the record's time field is broken."""

    PATHS: ClassVar[dict[str, tuple[str, str]]] = {
        "/api/v1/aduan": ("complaints", "diperbarui_sejak"),
        "/api/v1/tanggapan": ("follow_ups", "sejak"),
        "/api/v1/riwayat-status": ("status_changes", "sejak"),
    }

    def __init__(self) -> None:
        self.lists: dict[str, list[tuple[tuple[datetime, int], Any]]] = {s: [] for s, _ in self.PATHS.values()}
        self.requests = 0
        self.extra: dict[str, str] = {}  # raw JSON spliced into a page: {"<<placeholder>>": text}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.headers.get("X-Api-Key") != ENVIRON["LAPOR_HENDI_API_KEY"]:
            return httpx.Response(401, json={"status": "gagal", "pesan": "API key tidak valid"})
        stream, filter_name = self.PATHS[request.url.path]
        params = request.url.params
        items = sorted(self.lists[stream], key=lambda item: item[0])
        if filter_name in params:
            since = datetime.strptime(params[filter_name], LH_FMT)
            items = [item for item in items if item[0][0] >= since]
        page, per_page = int(params.get("halaman", 1)), min(int(params.get("per_halaman", 50)), 100)
        chunk = items[(page - 1) * per_page : page * per_page]
        body = json.dumps(
            {
                "status": "sukses",
                "data": [raw for _, raw in chunk],
                "meta": {
                    "halaman": page,
                    "per_halaman": per_page,
                    "total": len(items),
                    "total_halaman": max(1, math.ceil(len(items) / per_page)),
                },
            }
        )
        for placeholder, text in self.extra.items():
            body = body.replace(json.dumps(placeholder), text)
        return httpx.Response(200, content=body.encode(), headers={"Content-Type": "application/json"})


class FakeHub:
    """The hub's create (for setting up linked complaints) and its two reads per complaint."""

    def __init__(self) -> None:
        self.reads: dict[str, Any] = {}
        self.follow_ups: dict[str, Any] = {}
        self.created = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/complaints/complaint":
            self.created += 1
            return httpx.Response(200, json={"success": True, "complaint_id": 4_000_000 + self.created})
        found = re.fullmatch(r"/complaints/([^/]+)/(complaint|followups)", path)
        if request.method != "GET" or found is None:
            return httpx.Response(404, json={"message": "not found"})
        answer = (self.reads if found.group(2) == "complaint" else self.follow_ups)[found.group(1)]
        if isinstance(answer, bytes):
            return httpx.Response(200, content=answer, headers={"Content-Type": "text/html"})
        return httpx.Response(200, content=json.dumps(answer).encode(), headers={"Content-Type": "application/json"})


# -- the gateway around them -------------------------------------------------------------------


def make_config(folder: Path, store_url: str) -> GatewayConfig:
    path = write_config(folder, store_url, {"lapor_hendi": LH_BASE, "sp4n": HUB_BASE})
    local = folder / "adapters" / "lapor-hendi-semarang.yaml"
    local.write_text(re.sub(r"page_size: \d+", f"page_size: {PAGE_SIZE}", local.read_text()))
    set_privacy(local, KEPT)
    return load_config(path, environ=ENVIRON)


def _exception_class(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """In captured log lines, the class of the exception being handled when one was logged."""
    if event_dict.get("exc_info"):
        event_dict["exception_class"] = type(sys.exc_info()[1]).__name__
    return event_dict


def internal_errors(logs: list[dict[str, Any]]) -> list[str]:
    """Exceptions the engine caught as internal errors (a bug, not a peer's failure)."""
    return [
        f"{e.get('event')}: {e.get('exception_class', '?')}"
        for e in logs
        if e.get("exc_info") or "internal error" in str(e.get("event")) or "internal error" in str(e.get("error"))
    ]


def job_error(store: Store, instance: str, job: str) -> str | None:
    with store.session() as s:
        row = s.get(JobRunRow, (instance, job))
        return None if row is None else row.last_error


def clients(peer: FakeLaporHendi | None = None, hub: FakeHub | None = None) -> dict[str, httpx.AsyncClient]:
    """Both instances' clients, on the fakes (an engine builds every enabled instance's adapter)."""
    return {
        LOCAL: httpx.AsyncClient(transport=httpx.MockTransport((peer or FakeLaporHendi()).handler)),
        HUB: httpx.AsyncClient(transport=httpx.MockTransport((hub or FakeHub()).handler)),
    }


async def _intake(config: GatewayConfig, store: Store, peer: FakeLaporHendi) -> Any:
    async with Engine(config, store, clients=clients(peer=peer), seed=1) as engine:
        return await engine.intake(LOCAL)


async def _poll(config: GatewayConfig, store: Store, hub: FakeHub) -> Any:
    async with Engine(config, store, clients=clients(hub=hub), seed=1) as engine:
        return await engine.poll_hub(HUB)


def intake(config: GatewayConfig, store: Store, peer: FakeLaporHendi) -> tuple[Any, list[dict[str, Any]]]:
    with capture_logs(processors=[_exception_class]) as logs:
        result = asyncio.run(_intake(config, store, peer))
    return result, logs


def poll(config: GatewayConfig, store: Store, hub: FakeHub) -> tuple[Any, list[dict[str, Any]]]:
    with capture_logs(processors=[_exception_class]) as logs:
        result = asyncio.run(_poll(config, store, hub))
    return result, logs


def good_complaint(ident: int | str, when: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id_aduan": ident,
        "nomor_tiket": f"LH-FUZZ-{ident}",
        "judul": "Jalan berlubang",
        "isi": "Mohon diperbaiki.",
        "status": "belum terverifikasi",
        "kategori": "Jalan Rusak",
        "klasifikasi": "pengaduan",
        "kanal": "web",
        "anonim": False,
        "rahasia": False,
        "dibuat_pada": when.strftime(LH_FMT),
        "diperbarui_pada": when.strftime(LH_FMT),
        **fields,
    }


def serve(peer: FakeLaporHendi, stream: str, records: list[dict[str, Any]]) -> None:
    """Records served as they are; each at the time its time field says (BASE when unreadable)."""
    key = "diperbarui_pada" if stream == "complaints" else "dibuat_pada"
    for raw in records:
        shown = raw.get(key) if isinstance(raw, dict) else None
        when = datetime.strptime(shown, LH_FMT) if parses(shown, LH_FMT) else BASE
        peer.lists[stream].append(((when, len(peer.lists[stream])), raw))


def taken_in(store: Store, refs: list[str] | None = None) -> set[str]:
    with store.session() as s:
        query = select(LinkRow.external_ref).where(LinkRow.instance == LOCAL)
        if refs is not None:
            query = query.where(LinkRow.external_ref.in_(refs))
        return set(s.exec(query).all())


def unholdable_in_store(store: Store) -> list[str]:
    """Every text the store holds that a database cannot hold (it got in anyway: SQLite
    stores what it is given)."""
    found = []
    with store.session() as s:
        for table in (ComplaintRow, ReporterRow, AttachmentRow, EventRow, QuarantineRow, LinkRow):
            for row in s.exec(select(table)).all():
                for key, value in row.model_dump().items():
                    if unholdable(value):
                        found.append(f"{table.__tablename__}.{key}")
    return found


@dataclass
class Figures:
    adapter: str
    store: str
    examples: int = 0
    records: int = 0
    malformed: int = 0
    quarantined: int = 0
    taken_in: int = 0
    cleaned: int = 0
    unmapped: int = 0
    skipped_logs: int = 0
    peer_failed: int = 0
    uncaught: int = 0
    requests: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        extra = (
            f", unmapped statuses quarantined and taken in {self.unmapped}"
            if self.adapter == LOCAL
            else f", unreadable status logs skipped {self.skipped_logs}, unusable hub answers (peer failed) "
            f"{self.peer_failed}"
        )
        return (
            f"[fuzz {self.adapter} on {self.store}] {self.examples} examples, {self.requests} requests: "
            f"records generated {self.records}, malformed {self.malformed}, quarantined {self.quarantined}, "
            f"taken in {self.taken_in} (of which with cleaned text {self.cleaned}){extra}, "
            f"uncaught exceptions {self.uncaught}; {self.seconds:.1f} s"
        )


def backend(store_url: str) -> str:
    return "postgresql" if store_url.startswith("postgresql") else "sqlite"


# -- reasons -----------------------------------------------------------------------------------

_LH_FIELD = r"[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)?"
LH_REASON = re.compile(
    rf"^field '(?P<field>{_LH_FIELD})' (?:is missing|is not an id|is not a string|is not a boolean|is not a number"
    rf"|is not an integer|is not a time in the form YYYY-MM-DD(?: HH:MM:SS)?|is not a list|has an unknown value)$"
    rf"|^(?P<object>record|{_LH_FIELD}) is not an object$"
)
LH_FIELD_NAMES = {
    "id_aduan",
    "id_tanggapan",
    "id_riwayat",
    "judul",
    "isi",
    "status",
    "dibuat_pada",
    "diperbarui_pada",
    "klasifikasi",
    "kategori",
    "kanal",
    "opd",
    "lokasi",
    "alamat_kejadian",
    "kelurahan",
    "kecamatan",
    "lat",
    "lng",
    "tanggal_kejadian",
    "anonim",
    "rahasia",
    "pelapor",
    "nama",
    "nik",
    "telepon",
    "email",
    "alamat",
    "lampiran",
    "id_lampiran",
    "nama_file",
    "tipe_mime",
    "ukuran_byte",
    "oleh",
    "ref_eksternal",
    "status_baru",
    "status_lama",
    "record",
}
HUB_REASON = re.compile(
    r"^missing field '(?P<a>content|created_at|id)'$|^unparseable field '(?P<b>created_at)' \(expected d-m-Y H:i:s\)$"
    r"|^field '(?P<c>is_secret)' is not a flag$|^field '(?P<d>attachments)' is not a list$"
    r"|^field '(?P<e>attachments)\[\d+\]' has no id$|^(?P<f>follow-up) is not an object$"
    # A follow-up list that cannot be read (quarantined whole, the status read with it goes on).
    r"|^answer had no (?P<g>results\.data) list$|^answered (?P<h>JSON) that is not an object$"
    r"|^answered (?P<i>2xx) saying it failed$"
)
HUB_LOG_REASONS = {"'data' is not JSON", "missing or unparseable field 'created_at'"}


def lh_reason_names(reason: str) -> str | None:
    """The field (path) or class a Lapor Hendi quarantine reason names; None when it has
    another shape (which could carry a value)."""
    found = LH_REASON.match(reason)
    if found is None:
        return None
    name = found.group("field") or found.group("object")
    parts = re.split(r"[.\[\]]+", name)
    return name if all(p in LH_FIELD_NAMES or p.isdigit() or p == "" for p in parts) else None


def hub_reason_names(reason: str) -> str | None:
    found = HUB_REASON.match(reason)
    if found is None:
        return None
    name = next(v for v in found.groupdict().values() if v)
    return "record" if name == "follow-up" else name


# -- 1. Lapor Hendi: the intake ----------------------------------------------------------------


@dataclass
class LhExpect:
    stream: str
    recipe: Recipe
    ref: str  # the id the adapter reads ("?" when unreadable)
    raw: Any  # as served


def _whole(kind: str, ident: int, used: set[str]) -> Any:
    """A record that is no object, unique within its list (the walk passes each unreadable
    record on once, known by its text)."""
    if kind in ("null", "bool"):
        for value in [None] if kind == "null" else [True, False]:
            if repr(value) not in used:
                used.add(repr(value))
                return value
        kind = "str"
    return {"int": ident, "float": ident + 0.25, "str": f"rusak {ident}", "list": [ident, "rusak"]}[kind]


def lh_materialize(
    pages: dict[str, list[Recipe]], next_id: Any, anchors: list[int]
) -> tuple[FakeLaporHendi, list[LhExpect]]:
    peer = FakeLaporHendi()
    expects: list[LhExpect] = []
    id_keys = {"complaints": "id_aduan", "follow_ups": "id_tanggapan", "status_changes": "id_riwayat"}
    time_keys = {
        "complaints": ("dibuat_pada", "diperbarui_pada"),
        "follow_ups": ("dibuat_pada",),
        "status_changes": ("dibuat_pada",),
    }
    targets = list(anchors)
    for stream in ("complaints", "follow_ups", "status_changes"):
        used: set[str] = set()
        for recipe in pages[stream]:
            ident = next_id()
            when = BASE + timedelta(seconds=recipe.offset)
            if recipe.whole:
                raw: Any = _whole(recipe.whole, ident, used)
            else:
                raw = {id_keys[stream]: ident, "nomor_tiket": f"LH-FUZZ-{ident}"}
                if stream != "complaints":
                    raw["id_aduan"] = targets[recipe.target % len(targets)]
                raw.update(copy.deepcopy(recipe.fields))
                for key in time_keys[stream]:
                    raw[key] = when.strftime(LH_FMT)
                for path, value in sorted(recipe.mutations, key=lambda m: -len(m[0])):
                    set_path(raw, path, value)
            readable_id = not recipe.whole and (id_keys[stream],) not in {p for p, _ in recipe.mutations}
            expects.append(LhExpect(stream, recipe, str(ident) if readable_id else "?", wire(raw)))
            peer.lists[stream].append(((when, ident), raw))
            if stream == "complaints" and recipe.kind in ("good", "dirty", "unmapped"):
                targets.append(ident)
    return peer, expects


def lh_check(store: Store, expects: list[LhExpect], result: Any, logs: list[dict[str, Any]], figures: Figures) -> None:
    kinds = Counter((e.stream, e.recipe.kind) for e in expects)
    readable = {
        s: kinds[(s, "good")] + kinds[(s, "dirty")] + kinds[(s, "unmapped")]
        for s in ("complaints", "follow_ups", "status_changes")
    }
    bad = sum(n for (s, k), n in kinds.items() if k == "bad")
    where = f"(figures so far: {figures.line()})"
    errors = internal_errors(logs)
    figures.uncaught += len(errors) + (result is None)
    assert not errors, f"internal errors in the intake: {errors} {where}"
    assert result is not None and job_error(store, LOCAL, "intake") is None, (
        f"the intake run failed: {job_error(store, LOCAL, 'intake')} {where}"
    )
    assert (result.complaints_new, result.complaints_updated, result.follow_ups, result.status_changes) == (
        readable["complaints"],
        0,
        readable["follow_ups"],
        readable["status_changes"],
    ), f"taken in {result} but expected {readable} {where}"
    assert (result.deferred, result.echoes) == (0, 0), f"{result} {where}"
    assert result.quarantined == bad + kinds[("complaints", "unmapped")], (
        f"quarantined {result.quarantined}, expected {bad} malformed + {kinds[('complaints', 'unmapped')]} "
        f"unmapped {where}"
    )

    # What was taken in, with its texts cleaned and nothing else changed.
    by_stream: dict[str, dict[str, LhExpect]] = {s: {} for s in readable}
    for e in expects:
        if e.recipe.kind in ("good", "dirty", "unmapped"):
            by_stream[e.stream][e.ref] = e
    with store.session() as s:
        rows = s.exec(
            select(LinkRow.external_ref, ComplaintRow, ReporterRow)
            .join(ComplaintRow, ComplaintRow.id == LinkRow.complaint_id)
            .join(ReporterRow, ReporterRow.complaint_id == ComplaintRow.id, isouter=True)
            .where(LinkRow.instance == LOCAL, LinkRow.external_ref.in_(list(by_stream["complaints"])))
        ).all()
        assert {ref for ref, _, _ in rows} == set(by_stream["complaints"]), f"complaints not taken in {where}"
        for ref, row, reporter in rows:
            raw = by_stream["complaints"][ref].raw
            assert (row.title, row.body) == (clean(raw["judul"]), clean(raw["isi"])), f"complaint {ref} text {where}"
            lokasi = raw.get("lokasi")
            if isinstance(lokasi, dict):
                assert json.loads(row.location_json)["description"] == clean(lokasi.get("alamat_kejadian"))
            pelapor = raw.get("pelapor")
            if isinstance(pelapor, dict) and not raw.get("anonim"):
                keys = PersonalDataKeys.from_text(ENVIRON["GATEWAY_PERSONAL_DATA_KEYS"])
                kept = keys.open(reporter.name) if reporter is not None and reporter.name else None
                nama = pelapor.get("nama")
                assert kept == ((clean(nama) if isinstance(nama, str) else None) or None), f"reporter of {ref}"
            else:
                assert reporter is None, f"complaint {ref}: no reporter may be kept (anonymous or none sent)"
        for stream, kind in (("follow_ups", "follow_up"), ("status_changes", "status_change")):
            events = {
                e.origin_ref: e
                for e in s.exec(
                    select(EventRow).where(
                        EventRow.origin == LOCAL,
                        EventRow.kind == kind,
                        EventRow.origin_ref.in_(list(by_stream[stream])),
                    )
                ).all()
            }
            assert set(events) == set(by_stream[stream]), (
                f"{stream} not taken in: {sorted(set(by_stream[stream]) - set(events))[:5]} {where}"
            )
            for ref, event in events.items():
                raw = by_stream[stream][ref].raw
                if kind == "follow_up":
                    oleh = raw.get("oleh")
                    assert (event.content, event.author) == (clean(raw["isi"]), clean(oleh)), f"follow-up {ref}"
                else:
                    assert event.raw_status_code == clean(raw["status_baru"]), f"status change {ref}"
        quarantine = s.exec(
            select(QuarantineRow).where(  # this example's (ids are never reused)
                QuarantineRow.instance == LOCAL, QuarantineRow.record_ref.in_({e.ref for e in expects} | {"?"})
            )
        ).all()
    open_rows: dict[tuple[str, str], list[str]] = {}
    for q in quarantine:
        if q.resolved_at is None:
            open_rows.setdefault((q.stream, q.record_ref), []).append(q.reason)
    for e in expects:
        if e.recipe.kind == "bad":
            tokens = e.recipe.tokens
            reasons = open_rows.get((e.stream, e.ref), [])
            named = {lh_reason_names(r) for r in reasons}
            assert named & tokens, (
                f"malformed {e.stream} record (ref {e.ref}, broken {sorted(tokens)}) not "
                f"quarantined with a reason naming it: {reasons[:5]} {where}"
            )
        elif e.recipe.kind == "unmapped":
            assert any(
                r.startswith("status ") and r.endswith("has no mapping in 'statuses'")
                for r in open_rows.get(("statuses", e.ref), [])
            ), f"unmapped status of {e.ref} {where}"
            assert not open_rows.get((e.stream, e.ref)), f"complaint {e.ref} quarantined {where}"
        else:
            assert not open_rows.get((e.stream, e.ref)), (
                f"{e.stream} {e.ref} quarantined: {open_rows[(e.stream, e.ref)]} {where}"
            )
    for (stream, _), reasons in open_rows.items():
        if stream != "statuses":
            for reason in reasons:
                assert lh_reason_names(reason) is not None, f"a reason that names no field or class: {reason!r}"

    figures.examples += 1
    figures.records += len(expects)
    figures.malformed += bad
    figures.quarantined += result.quarantined
    figures.unmapped += kinds[("complaints", "unmapped")]
    figures.taken_in += result.complaints_new + result.follow_ups + result.status_changes
    figures.cleaned += sum(n for (_, k), n in kinds.items() if k == "dirty")


def test_lapor_hendi_intake_survives_fuzzed_pages(store_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    figures = Figures(LOCAL, backend(store_url))
    try:
        # A few complaints taken in before: follow-ups and status changes may belong to them.
        anchors = [1, 2, 3, 4, 5]
        peer = FakeLaporHendi()
        serve(peer, "complaints", [good_complaint(i, BASE - timedelta(days=1)) for i in anchors])
        result, _ = intake(config, store, peer)
        assert result is not None and result.complaints_new == len(anchors)
        counter = iter(range(1000, 10**9))

        @settings(FUZZ_SETTINGS, max_examples=LH_EXAMPLES)
        @given(pages=lh_pages())
        def example(pages: dict[str, list[Recipe]]) -> None:
            peer, expects = lh_materialize(pages, lambda: next(counter), anchors)
            with store.session() as s:  # every example reads its pages from the start
                s.execute(delete(CursorRow).where(CursorRow.instance == LOCAL))
            result, logs = intake(config, store, peer)
            figures.requests += peer.requests
            lh_check(store, expects, result, logs, figures)

        example()
        leftovers = unholdable_in_store(store)
        assert not leftovers, f"texts a database cannot hold were stored: {sorted(set(leftovers))}"
        reasons = [q["reason"] for q in list_quarantine(store, limit=100_000)]
        assert all(lh_reason_names(r) or r.endswith("has no mapping in 'statuses'") for r in reasons)
    finally:
        store.close()
        figures.seconds = time.monotonic() - started
        print("\n" + figures.line())
    assert figures.uncaught == 0, figures.line()
    assert figures.malformed >= TARGET, f"too few malformed records: {figures.line()}"


# -- 2. SP4N: the hub poll ---------------------------------------------------------------------


def _unusable(kind: str, which: str) -> Any:
    if kind == "not_json":
        return b"<html><body>502 Bad Gateway</body></html>"
    return {
        "list": [],
        "results_null": {"results": None},
        "data_string": {"results": {"data": "complaint", "data_logs": []}},
        "data_list": {"results": {"data": [], "data_logs": []}},
        "data_dict": {"results": {"data": {"id": 1}}},
        "no_status": {"results": {"data": {"status_code": None, "status_name": "  "}, "data_logs": []}},
        "status_objects": {"results": {"data": {"status_code": {}, "status_name": []}, "data_logs": []}},
        "says_failed": {"success": False, "message": "Unauthenticated", "results": {"data": []}},
    }[kind]


def _text(value: Any) -> str | None:
    """The adapter's reading of a loose scalar (docs/lapor-sp4n.md): stripped, None when empty."""
    if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
        return None
    return str(value).strip()


@dataclass
class HubExpect:
    complaint_id: int
    hub_ref: str
    read: HubRead
    code: str | None = None
    name: str | None = None
    logs: list[tuple[Recipe, str, Any]] = field(default_factory=list)  # recipe, ref, raw as served
    follow_ups: list[tuple[Recipe, str, Any]] = field(default_factory=list)


def hub_materialize(
    reads: list[HubRead], complaints: list[tuple[int, str]], next_id: Any
) -> tuple[FakeHub, list[HubExpect]]:
    hub = FakeHub()
    expects = []
    for read, (complaint_id, hub_ref) in zip(reads, complaints):
        e = HubExpect(complaint_id, hub_ref, read)
        expects.append(e)
        if read.kind == "read_unusable":
            hub.reads[hub_ref], hub.follow_ups[hub_ref] = _unusable(read.broken, "read"), {"results": {"data": []}}
            continue
        data: dict[str, Any] = {"id": int(hub_ref), "disposition_id": 100234, "disposition_name": "Kota Semarang"}
        put(data, "status_code", read.code)
        put(data, "status_name", read.name)
        code, name = (_text(None if isinstance(v, str) and v == MISSING else v) for v in (read.code, read.name))
        e.code, e.name = clean(code or name or ""), clean(name)
        logs: list[Any] = []
        for recipe in read.logs:
            ident = next_id()
            fields = dict(recipe.fields)
            when = BASE + timedelta(seconds=recipe.offset)
            entry: Any = {"id": ident, "created_at": fields.pop("time_format").format(d=when), **fields}
            if recipe.kind == "noid":  # known by its text then: make it unique
                del entry["id"]
                entry["content"] = f"{entry['content']} #{ident}"
            for path, value in recipe.mutations:
                set_path(entry, path, value)
            if recipe.whole:
                entry = _whole(recipe.whole, ident, set())
            e.logs.append((recipe, str(ident), wire(entry)))
            logs.append(entry)
        results: dict[str, Any] = {"data": data}
        if read.logs_shape != "missing":
            results["data_logs"] = {"list": logs, "null": None, "dict": {"0": {}}, "string": "[]"}[read.logs_shape]
        hub.reads[hub_ref] = {"success": True, "results": results}
        if read.kind == "follow_ups_unusable":
            hub.follow_ups[hub_ref] = _unusable(read.broken, "follow_ups")
            continue
        follow_ups: list[Any] = []
        used: set[str] = set()
        for recipe in read.follow_ups:
            ident = next_id()
            fields = dict(recipe.fields)
            when = BASE + timedelta(seconds=recipe.offset)
            record: Any = {"created_at": fields.pop("time_format").format(d=when)}
            for key, value in fields.items():
                put(record, key, value)
            if recipe.kind == "noid":
                record["content"] = f"{record['content']} #{ident}"  # known by its text: make it unique
            else:
                record["id"] = ident if ident % 3 else f" {ident} "
            for path, value in recipe.mutations:
                set_path(record, path, value)
            if recipe.whole:
                record = _whole(recipe.whole, ident, used)
            ref = "?" if recipe.whole or recipe.kind == "noid" else str(ident)
            e.follow_ups.append((recipe, ref, wire(record)))
            follow_ups.append(record)
        hub.follow_ups[hub_ref] = {"success": True, "results": {"data": follow_ups}}
    return hub, expects


def hub_check(
    store: Store, expects: list[HubExpect], watermark: int, result: Any, logs: list[dict[str, Any]], figures: Figures
) -> None:
    where = f"(figures so far: {figures.line()})"
    errors = internal_errors(logs)
    figures.uncaught += len(errors) + (result is None)
    assert not errors, f"internal errors in the hub poll: {errors} {where}"
    assert result is not None and job_error(store, HUB, "hub_poll") is None, (
        f"the hub poll failed: {job_error(store, HUB, 'hub_poll')} {where}"
    )
    # A follow-up list the hub answered unusably for good does not hold back the status read with it:
    # the complaint is polled, its list quarantined. One that may read next time (not JSON) fails the read.
    unusable_lists = [e for e in expects if e.read.kind == "follow_ups_unusable" and e.read.broken != "not_json"]
    failed = [e for e in expects if e.read.kind != "ok" and e not in unusable_lists]
    polled = [e for e in expects if e.read.kind == "ok" or e in unusable_lists]
    assert (result.failures, result.polled) == (len(failed), len(polled)), (
        f"{result}, expected {len(failed)} unusable answers {where}"
    )
    # A follow-up without its id is quarantined too: the hub gives ids (follow_up_id_key: id), and one
    # read without it must not be taken in under a second ref (docs/lapor-sp4n.md).
    bad_follow_ups = [(e, r, ref) for e in polled for r, ref, _ in e.follow_ups if r.kind in ("bad", "noid")]
    expected = len(bad_follow_ups) + len(unusable_lists)
    assert result.quarantined == expected, f"{result}, expected {expected} quarantined {where}"
    unreadable_logs = [e for e in logs if e.get("event") == "status log unreadable"]
    assert all(e.get("reason") in HUB_LOG_REASONS for e in unreadable_logs), (
        f"a status log was unreadable for another reason: {[e.get('reason') for e in unreadable_logs][:5]} {where}"
    )

    with store.session() as s:
        rows = {
            r.id: r
            for r in s.exec(select(ComplaintRow).where(ComplaintRow.id.in_([e.complaint_id for e in expects]))).all()
        }
        events = s.exec(select(EventRow).where(EventRow.origin == HUB, EventRow.id > watermark)).all()
        refs = {ref for e in expects for _, ref, _ in e.follow_ups} | {"?"} | {f"list:{e.hub_ref}" for e in expects}
        quarantine = s.exec(
            select(QuarantineRow).where(
                QuarantineRow.instance == HUB, QuarantineRow.record_ref.in_(refs), QuarantineRow.resolved_at.is_(None)
            )
        ).all()
    by_ref = {(ev.complaint_id, ev.kind, ev.origin_ref): ev for ev in events}
    by_content = {(ev.complaint_id, ev.content) for ev in events if ev.kind == "follow_up"}
    by_time = {
        (ev.complaint_id, ensure_utc(ev.occurred_at), ev.raw_status_name) for ev in events if ev.kind == "status_change"
    }
    open_rows: dict[tuple[str, str], list[str]] = {}
    for q in quarantine:
        open_rows.setdefault((q.stream, q.record_ref), []).append(q.reason)
    for e in unusable_lists:
        assert open_rows.get(("follow_ups", f"list:{e.hub_ref}")), (
            f"the unusable follow-up list of {e.hub_ref} is not quarantined {where}"
        )
    taken = cleaned = skipped = 0
    for e in polled:
        row = rows[e.complaint_id]
        # The current status is recorded whatever its history held.
        assert row.hub_status_code == e.code, (
            f"complaint {e.hub_ref}: status {row.hub_status_code!r} recorded, {e.code!r} read {where}"
        )
        if e.name is not None:
            assert row.hub_status_name == e.name, f"complaint {e.hub_ref}: status name {where}"
        for recipe, ref, raw in e.logs:
            event = by_ref.get((e.complaint_id, "status_change", ref))
            if recipe.kind == "noid":  # known by its time and status (its ref is the adapter's digest)
                data = json.loads(raw["data"]) if isinstance(raw["data"], str) else raw["data"]
                new = data["status_new"]
                when = (BASE + timedelta(seconds=recipe.offset, hours=-7)).replace(tzinfo=UTC)
                assert (e.complaint_id, when, clean(_text(new["name"] if isinstance(new, dict) else new))) in by_time, (
                    f"status log without id at {when} of {e.hub_ref} not taken in {where}"
                )
                taken += 1
            elif recipe.kind in ("good", "dirty"):
                assert event is not None, f"status log {ref} of {e.hub_ref} not taken in {where}"
                data = raw["data"] if isinstance(raw["data"], dict) else json.loads(raw["data"])
                new = data["status_new"]
                assert event.raw_status_name == clean(_text(new["name"] if isinstance(new, dict) else new))
                taken += 1
                cleaned += recipe.kind == "dirty"
            else:
                assert event is None, f"status log {ref} ({recipe.kind}) became a status change {where}"
                skipped += recipe.kind == "bad"
        for recipe, ref, raw in e.follow_ups:
            if recipe.kind == "bad":
                tokens = recipe.tokens
                reasons = open_rows.get(("follow_ups", ref), [])
                assert {hub_reason_names(r) for r in reasons} & tokens, (
                    f"malformed hub follow-up (ref {ref}, broken {sorted(tokens)}) not quarantined with a reason "
                    f"naming it: {reasons[:5]} {where}"
                )
                continue
            if recipe.kind == "noid":
                assert (e.complaint_id, clean(raw["content"])) not in by_content, (
                    f"follow-up without id taken in {where}"
                )
                assert "missing field 'id'" in open_rows.get(("follow_ups", "?"), []), (
                    f"follow-up without id not quarantined {where}"
                )
                continue
            else:
                event = by_ref.get((e.complaint_id, "follow_up", ref))
                assert event is not None, f"hub follow-up {ref} of {e.hub_ref} not taken in {where}"
                assert event.content == clean(raw["content"]), f"hub follow-up {ref}: text {where}"
                assert event.author == clean(_text(raw.get("institution_from_name"))), f"follow-up {ref}: author"
                assert not open_rows.get(("follow_ups", ref)), f"hub follow-up {ref} quarantined {where}"
            taken += 1
            cleaned += recipe.kind == "dirty"
    for (stream, _), reasons in open_rows.items():
        for reason in reasons:
            assert hub_reason_names(reason) is not None, f"a reason that names no field or class: {reason!r}"

    figures.examples += 1
    figures.records += sum(1 + len(e.logs) + len(e.follow_ups) for e in expects)
    figures.malformed += len(failed) + len(bad_follow_ups) + sum(r.kind == "bad" for e in polled for r, _, _ in e.logs)
    figures.quarantined += result.quarantined
    figures.taken_in += taken
    figures.cleaned += cleaned
    figures.skipped_logs += skipped
    figures.peer_failed += result.failures


async def _link_complaints(config: GatewayConfig, store: Store, peer: FakeLaporHendi, hub: FakeHub) -> None:
    async with Engine(config, store, clients=clients(peer, hub), seed=1) as engine:
        assert (await engine.intake(LOCAL)).complaints_new == len(peer.lists["complaints"])
        assert (await engine.deliver(HUB)).delivered == len(peer.lists["complaints"])


def linked_complaints(config: GatewayConfig, store: Store, count: int) -> list[tuple[int, str]]:
    """``count`` complaints taken in from Lapor Hendi and created at the hub: (gateway id, hub id)."""
    peer, hub = FakeLaporHendi(), FakeHub()
    serve(peer, "complaints", [good_complaint(i, BASE - timedelta(days=1)) for i in range(1, count + 1)])
    with capture_logs():
        asyncio.run(_link_complaints(config, store, peer, hub))
    with store.session() as s:
        return sorted(s.exec(select(LinkRow.complaint_id, LinkRow.external_ref).where(LinkRow.instance == HUB)).all())


def reset_polling(store: Store) -> None:
    """Every linked complaint due for a read again (a closed one too)."""
    with store.session() as s:
        s.execute(update(ComplaintRow).values(next_poll_at=None, closed_at=None))


def max_event_id(store: Store) -> int:
    with store.session() as s:
        return max(s.exec(select(EventRow.id)).all(), default=0)


def test_sp4n_hub_poll_survives_fuzzed_answers(store_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    figures = Figures(HUB, backend(store_url))
    try:
        complaints = linked_complaints(config, store, HUB_COMPLAINTS)
        assert len(complaints) == HUB_COMPLAINTS
        counter = iter(range(10**6, 10**9))

        @settings(FUZZ_SETTINGS, max_examples=HUB_EXAMPLES)
        @given(reads=hub_answers())
        def example(reads: list[HubRead]) -> None:
            hub, expects = hub_materialize(reads, complaints, lambda: next(counter))
            reset_polling(store)
            watermark = max_event_id(store)
            result, logs = poll(config, store, hub)
            figures.requests += 2 * len(expects)
            hub_check(store, expects, watermark, result, logs, figures)

        example()
        leftovers = unholdable_in_store(store)
        assert not leftovers, f"texts a database cannot hold were stored: {sorted(set(leftovers))}"
    finally:
        store.close()
        figures.seconds = time.monotonic() - started
        print("\n" + figures.line())
    assert figures.uncaught == 0, figures.line()
    assert figures.malformed >= TARGET, f"too few malformed records: {figures.line()}"


# -- 3. what the fuzzing found: one minimal input per bug, each fixed ----------------------------
#
# Each test states the property the fuzz tests above check, for one input that broke it before
# the fix named in its docstring.


def random_text(size: int, alphabet: str = "0123456789", seed: int = 1) -> str:
    """Text that does not compress: PostgreSQL compresses a long value before indexing it."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(size))


LONG_DIGITS = random_text(3000)
LONG_LETTERS = random_text(3000, "abcdefghijklmnopqrstuvwxyz ")


def lh_runs(
    tmp_path: Path, store_url: str, runs: list[dict[str, list[Any]]], *, extra: dict[str, str] | None = None
) -> tuple[Store, list[tuple[Any, list[dict[str, Any]]]]]:
    """Intake runs over Lapor Hendi's lists, each run adding the records given to what is served."""
    config, store, peer = make_config(tmp_path / "config", store_url), Store(store_url), FakeLaporHendi()
    peer.extra = extra or {}
    outcomes = []
    for run in runs:
        for stream, records in run.items():
            serve(peer, stream, records)
        outcomes.append(intake(config, store, peer))
    return store, outcomes


def assert_run_went_on(store: Store, outcome: tuple[Any, list[dict[str, Any]]], refs: set[str]) -> None:
    result, logs = outcome
    assert not internal_errors(logs), internal_errors(logs)
    assert result is not None, f"the intake failed: {job_error(store, LOCAL, 'intake')}"
    assert refs <= taken_in(store), f"not taken in: {refs - taken_in(store)}"


@pytest.mark.parametrize(
    "case",
    [
        "an id of 3000 digits",
        "a malformed record with an id of 3000 digits",
        "an unmapped status of 3000 characters",
        "an opd of 3000 characters, changed",
    ],
)
def test_a_value_too_long_for_an_index_on_postgresql_does_not_stop_the_intake(case, store_url, tmp_path):
    """Found by fuzzing 'huge' values: on PostgreSQL one long id, or an unmapped status (the
    'statuses' quarantine reason quotes it), or a changed opd (the agency event's ref quotes it)
    makes the intake job fail with 'internal error (OperationalError)', every run, for every
    record of the app. Minimal input: ``{"id_aduan": "<3000 random digits>", ...}`` in GET /api/v1/aduan.
    Fixed: refused_for_its_data() knows program_limit_exceeded; quarantine keeps refs and reasons bounded."""
    neighbours = [good_complaint(1, BASE), good_complaint(2, BASE + timedelta(seconds=2))]
    later = BASE + timedelta(hours=1)  # after the first run's cursor
    odd = {
        "an id of 3000 digits": good_complaint(LONG_DIGITS, later),
        "a malformed record with an id of 3000 digits": good_complaint(LONG_DIGITS, later, judul=5),
        "an unmapped status of 3000 characters": good_complaint(3, later, status=LONG_LETTERS),
        "an opd of 3000 characters, changed": good_complaint(1, later, opd=LONG_LETTERS),
    }[case]
    runs = [{"complaints": neighbours}, {"complaints": [odd, good_complaint(4, BASE + timedelta(hours=2))]}]
    store, outcomes = lh_runs(tmp_path, store_url, runs)
    try:
        assert_run_went_on(store, outcomes[0], {"1", "2"})
        assert_run_went_on(store, outcomes[1], {"4"})
    finally:
        store.close()


@pytest.mark.parametrize("stream", ["complaints", "follow_ups"])
def test_a_size_beyond_64_bits_does_not_stop_the_intake(stream, store_url, tmp_path):
    """Found by fuzzing 'huge' numbers: on SQLite an attachment's ``ukuran_byte`` of 2**63 or more
    raises OverflowError ("Python int too large to convert to SQLite INTEGER") while the batch is
    stored. It is no sqlalchemy StatementError, so Intake._stored does not fall back to one by
    one: the intake job fails with 'internal error (OverflowError)', every run. (PostgreSQL
    refuses it with a DataError and the record is quarantined: this test passes there.)
    Minimal input: ``"lampiran": [{"id_lampiran": 1, "ukuran_byte": 9223372036854775808}]``.
    Fixed: OverflowError is one of STORE_REFUSALS."""
    huge = [{"id_lampiran": 1, "nama_file": "a.png", "ukuran_byte": 2**63}]
    run: dict[str, list[Any]] = {"complaints": [good_complaint(1, BASE), good_complaint(2, BASE)]}
    if stream == "complaints":
        run["complaints"].append(good_complaint(3, BASE, lampiran=huge))
    else:
        run["follow_ups"] = [
            {
                "id_tanggapan": 9,
                "id_aduan": 1,
                "isi": "Sudah ditangani.",
                "lampiran": huge,
                "dibuat_pada": BASE.strftime(LH_FMT),
            },
            {"id_tanggapan": 10, "id_aduan": 2, "isi": "Sedang dikerjakan.", "dibuat_pada": BASE.strftime(LH_FMT)},
        ]
    store, outcomes = lh_runs(tmp_path, store_url, [run])
    try:
        assert_run_went_on(store, outcomes[0], {"1", "2"})
    finally:
        store.close()


def test_an_integer_of_more_than_4300_digits_does_not_stop_the_stream(store_url, tmp_path):
    """Found by fuzzing 'huge' numbers: valid JSON with one integer of 5000 digits in one record
    (``"ukuran_byte": 1111...``) makes PeerClient.request_json raise TransientPeerError
    ('answered malformed JSON'): the stream fails, its cursor stays, and every later run fails on
    the same page. The record could be quarantined and the page read.
    Fixed: gateway.decode_json keeps such a number as its digits (a type error of that record)."""
    odd = good_complaint(3, BASE, lampiran=[{"id_lampiran": 1, "ukuran_byte": "<<5000 digits>>"}])
    run = {"complaints": [good_complaint(1, BASE), odd, good_complaint(2, BASE)]}
    store, outcomes = lh_runs(tmp_path, store_url, [run], extra={"<<5000 digits>>": "1" * 5000})
    try:
        assert_run_went_on(store, outcomes[0], {"1", "2"})
    finally:
        store.close()


def test_a_complaint_dated_far_in_the_future_does_not_hide_later_ones(store_url, tmp_path):
    """Found by fuzzing odd times: ``"diperbarui_pada": "2199-12-31 23:59:59"`` is inside the years
    the gateway accepts (1900-2200), so the complaint is read and the complaints cursor moves to
    2199. From then on every run asks ``diperbarui_sejak=2199-12-31 23:59:59``: every complaint
    filed or updated later (today) is never read, and each run is recorded as a success. A typo
    of a year (2062 for 2026) has the same effect for decades.
    Fixed: a record dated more than a day past the store's clock is taken in, not followed by the cursor."""
    future = good_complaint(2, BASE)
    future["diperbarui_pada"] = "2199-12-31 23:59:59"
    runs = [
        {"complaints": [good_complaint(1, BASE), future]},
        {"complaints": [good_complaint(3, BASE + timedelta(days=1))]},
    ]
    store, outcomes = lh_runs(tmp_path, store_url, runs)
    try:
        assert_run_went_on(store, outcomes[0], {"1", "2"})
        assert_run_went_on(store, outcomes[1], {"3"})
    finally:
        store.close()


def hub_poll_once(
    tmp_path: Path, store_url: str, reads: list[Any], follow_ups: list[Any], *, follow_up_ids: bool = True
) -> tuple[Store, list[tuple[int, str]], Any, list[dict[str, Any]]]:
    """Two complaints linked at the hub, read once with the answers given. ``follow_up_ids=False``:
    a hub whose follow-ups carry no id (``follow_up_id_key: null``)."""
    config = make_config(tmp_path / "config", store_url)
    if not follow_up_ids:
        hub_yaml = tmp_path / "config" / "adapters" / "sp4n.yaml"
        hub_yaml.write_text(hub_yaml.read_text().replace("settings:\n", "settings:\n  follow_up_id_key: null\n", 1))
        config = load_config(tmp_path / "config" / "gateway.yaml", environ=ENVIRON)
    store = Store(store_url)
    complaints = linked_complaints(config, store, len(reads))
    hub = FakeHub()
    for (_, ref), read, listed in zip(complaints, reads, follow_ups):
        hub.reads[ref], hub.follow_ups[ref] = read, {"success": True, "results": {"data": listed}}
    result, logs = poll(config, store, hub)
    return store, complaints, result, logs


def hub_read_answer(name: str = "Terverifikasi", logs: list[Any] | None = None) -> dict[str, Any]:
    return {"success": True, "results": {"data": {"status_code": 2, "status_name": name}, "data_logs": logs or []}}


def status_log(**fields: Any) -> dict[str, Any]:
    return {
        "id": 501,
        "created_at": "02-11-2026 10:00:00",
        "content": "Status {{status_new}}",
        "data": json.dumps({"status_old": {"name": "Belum Terverifikasi"}, "status_new": {"name": "Ditunda"}}),
        **fields,
    }


def hub_follow_up_record(**fields: Any) -> dict[str, Any]:
    return {"id": 601, "content": "Sedang ditindaklanjuti.", "created_at": "03-11-2026 09:00:00", **fields}


@pytest.mark.parametrize(
    "case",
    [
        "a follow-up id of 3000 characters",
        "a status log id of 3000 characters",
        "a current status name of 3000 characters",
        "a malformed follow-up with an id of 3000 characters",
    ],
)
def test_a_value_too_long_for_an_index_on_postgresql_does_not_stop_the_hub_poll(case, store_url, tmp_path):
    """Found by fuzzing 'huge' values: on PostgreSQL one long follow-up id, status log id or status
    name (the current status's event ref quotes it) at one complaint fails the whole poll run
    with 'internal error (OperationalError)': hub_poll re-raises an error it does not take for the
    data's, so the other complaints' reads of that run are lost too, every run.
    Minimal input: ``{"results": {"data": [{"id": "<3000 random characters>", "content": "x",
    "created_at": "03-11-2026 09:00:00"}]}}`` from GET /complaints/{id}/followups.
    Fixed: refused_for_its_data() knows program_limit_exceeded; that complaint's read is quarantined."""
    read, listed = hub_read_answer(), [hub_follow_up_record()]
    if case == "a follow-up id of 3000 characters":
        listed = [hub_follow_up_record(id=LONG_LETTERS)]
    elif case == "a status log id of 3000 characters":
        read = hub_read_answer(logs=[status_log(id=LONG_LETTERS)])
    elif case == "a current status name of 3000 characters":
        read = hub_read_answer(name=LONG_LETTERS)
    else:
        listed = [hub_follow_up_record(id=LONG_LETTERS, content="")]
    store, complaints, result, logs = hub_poll_once(
        tmp_path, store_url, [read, hub_read_answer("Selesai")], [listed, []]
    )
    try:
        assert not internal_errors(logs), internal_errors(logs)
        assert result is not None, f"the hub poll failed: {job_error(store, HUB, 'hub_poll')}"
        with store.session() as s:
            other = s.get(ComplaintRow, complaints[1][0])
            assert other.hub_status_name == "Selesai", "the other complaint's read was lost"
    finally:
        store.close()


def test_a_size_beyond_64_bits_is_quarantined_in_the_hub_poll(store_url, tmp_path):
    """Found by fuzzing 'huge' numbers: on SQLite a hub follow-up's file with ``"size": 2**63``
    raises OverflowError while the read is stored; hub_poll logs 'hub read failed with an internal
    error' and the complaint's whole read (its status too) is dropped, unquarantined, again at
    every poll. (PostgreSQL refuses it with a DataError: the read is quarantined, and this test
    passes there.) Minimal input: ``"attachments": [{"id": 1, "size": 9223372036854775808}]``.
    Fixed: OverflowError is one of STORE_REFUSALS."""
    listed = [hub_follow_up_record(attachments=[{"id": 1, "filename": "a.png", "size": 2**63}])]
    store, complaints, result, logs = hub_poll_once(tmp_path, store_url, [hub_read_answer()], [listed])
    try:
        assert not internal_errors(logs), internal_errors(logs)
        assert result is not None and result.quarantined == 1, f"not quarantined: {result}"
    finally:
        store.close()


@pytest.mark.parametrize("record", ["follow-up", "status log"])
def test_a_hub_record_without_an_id_and_a_lone_surrogate_is_taken_in(record, store_url, tmp_path):
    """Found by fuzzing texts: a hub follow-up or status log entry without an id (the hub's id
    field is not seen, docs/lapor-sp4n.md: such records are known by a digest of their time,
    author and text) whose text holds a lone surrogate is readable, and must be taken in with its
    text cleaned. Instead the digest raises UnicodeEncodeError: the follow-up is quarantined as
    'cannot be read (UnicodeEncodeError)', the status log is skipped (only the current status
    goes on). Minimal input: ``{"content": "tindak \\ud800 lanjut", "created_at": "03-11-2026
    09:00:00"}`` in GET /complaints/{id}/followups.
    Fixed: the digest encodes with surrogatepass."""
    if record == "follow-up":
        read, listed = hub_read_answer(), [{"content": "tindak \ud800 lanjut", "created_at": "03-11-2026 09:00:00"}]
    else:
        entry = status_log(content="Ditunda \ud800")
        del entry["id"]
        read, listed = hub_read_answer(name="Ditunda", logs=[entry]), []
    # A follow-up without an id is taken in only where the hub is set up as giving none (else it
    # is quarantined: its id may come on a later read, and it would be taken in twice).
    store, complaints, result, logs = hub_poll_once(tmp_path, store_url, [read], [listed], follow_up_ids=False)
    try:
        assert result is not None and not internal_errors(logs)
        with store.session() as s:
            events = s.exec(
                select(EventRow).where(EventRow.complaint_id == complaints[0][0], EventRow.origin == HUB)
            ).all()
        if record == "follow-up":
            assert [e.content for e in events if e.kind == "follow_up"] == ["tindak \ufffd lanjut"]
            assert not list_quarantine(store)
        else:  # the log's own change, at its own time (WIB 10:00 is 03:00 UTC), not only the current status
            assert any(
                e.kind == "status_change" and e.occurred_at.replace(tzinfo=None) == datetime(2026, 11, 2, 3)
                for e in events
            ), [(e.origin_ref, e.occurred_at) for e in events]
    finally:
        store.close()
