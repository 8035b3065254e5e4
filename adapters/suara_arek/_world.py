"""The simulated Suara Arek's state (Kota Malang's complaint app): reports with their
current state only (no history), their responses, attachment files and the
change sequence behind the changes feed, in memory.

The world knows nothing of HTTP and takes no lock: :class:`SuaraArekSimulator` holds
``Simulator.lock`` around every call. Times are aware UTC datetimes to the second,
shown in WIB with their offset (``2026-11-29T10:00:00+07:00``).

Every change of a report (its state, a new response) gives it the next number of one
change sequence; the changes feed lists reports by that number, so a report changed
while a client walks the feed moves to the end of it and is listed again.
"""

from __future__ import annotations

import base64
import binascii
import random
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

from gateway import WIB
from lapor_gateway_adapters.lapor_hendi._world import poisson, tiny_png

STATES = ("menunggu", "diproses", "selesai", "ditolak")
FINAL_STATES = frozenset({"selesai", "ditolak"})
UNKNOWN_STATE = "dikembalikan"  # officers' state under the unknown_status_codes fault
MAX_MESSAGE_CHARS = 5000
MAX_NOTE_CHARS = 1000
MAX_FILE_BYTES = 5 * 1024 * 1024
FILE_TYPES = ("image/jpeg", "image/png", "application/pdf")

# category -> (the unit that handles it, texts of reports)
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Jalan dan Jembatan": ("Dinas PUPR Kota Malang", ("Jalan berlubang di {jalan}, sudah ada pengendara jatuh.",)),
    "Persampahan": ("DLH Kota Malang", ("Sampah di TPS dekat {jalan} tidak diangkut sejak Senin.",)),
    "Penerangan Jalan": ("Dishub Kota Malang", ("Lampu jalan di {jalan} mati, rawan kejahatan.",)),
    "Drainase": ("Dinas PUPR Kota Malang", ("Saluran air di {jalan} mampet, banjir tiap hujan.",)),
    "Pelayanan Publik": ("Admin Suara Arek", ("Antrean layanan di kantor kelurahan dekat {jalan} terlalu lama.",)),
}
# kecamatan -> (kelurahan, streets, centre)
DISTRICTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "Klojen": (("Kauman", "Oro-oro Dowo", "Rampal Celaket"), ("Jl. Ijen", "Jl. Basuki Rahmat"), (-7.9797, 112.6304)),
    "Lowokwaru": (("Dinoyo", "Tlogomas", "Sumbersari"), ("Jl. MT Haryono", "Jl. Soekarno-Hatta"), (-7.9467, 112.6156)),
    "Blimbing": (("Purwantoro", "Pandanwangi", "Polehan"), ("Jl. LA Sucipto", "Jl. Ciliwung"), (-7.9570, 112.6530)),
    "Sukun": (
        ("Bandungrejosari", "Ciptomulyo", "Pisang Candi"),
        ("Jl. S. Supriyadi", "Jl. Janti"),
        (-7.9966, 112.6150),
    ),
    "Kedungkandang": (
        ("Sawojajar", "Buring", "Madyopuro"),
        ("Jl. Danau Toba", "Jl. Ki Ageng Gribig"),
        (-7.9900, 112.6570),
    ),
}
FIRST_NAMES = ("Arif", "Dewi", "Bagus", "Siti", "Eko", "Rina", "Yusuf", "Ayu")
LAST_NAMES = ("Santoso", "Wulandari", "Prasetyo", "Hidayat", "Kurniawan", "Lestari")
OFFICER_REPLIES = (
    "Terima kasih, laporan sudah kami teruskan ke petugas lapangan.",
    "Petugas sudah mengecek lokasi; perbaikan dijadwalkan pekan ini.",
)
OFFICER_NOTES = {
    "diproses": "Diteruskan ke {unit}.",
    "selesai": "Sudah ditangani.",
    "ditolak": "Bukan wewenang Pemkot.",
}


class WorldError(Exception):
    """A request the app refuses: HTTP status, an error code and an English message."""

    def __init__(self, http_status: int, error: str, message: str):
        super().__init__(message)
        self.http_status, self.error, self.message = http_status, error, message


def show_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(WIB).isoformat()


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def read_files(value: Any) -> list[tuple[str, str, bytes]]:
    """A response's ``attachments`` as written, checked and decoded; ``WorldError`` (422) naming the item."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(422, "invalid_attachments", "attachments must be a list")
    files = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise WorldError(422, "invalid_attachments", f"attachments[{n}] must be an object")
        name, kind, content = item.get("filename"), item.get("content_type"), item.get("content_base64")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise WorldError(422, "invalid_attachments", f"attachments[{n}].filename is required (at most 255 chars)")
        if kind not in FILE_TYPES:
            raise WorldError(422, "invalid_attachments", f"attachments[{n}].content_type must be one of {FILE_TYPES}")
        try:
            data = base64.b64decode(content, validate=True) if isinstance(content, str) else b""
        except (binascii.Error, ValueError):
            data = b""
        if not data or len(data) > MAX_FILE_BYTES:
            raise WorldError(422, "invalid_attachments", f"attachments[{n}].content_base64 must be 1 B to 5 MiB")
        files.append((name, kind, data))
    return files


class SuaraArekWorld:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self._reports: dict[str, dict[str, Any]] = {}
        self._responses: dict[int, dict[str, Any]] = {}
        self._responses_of: dict[str, list[int]] = {}
        self._files: dict[int, tuple[str, str, bytes]] = {}
        self._feed: list[tuple[int, str]] = []  # (seq, report id) in seq order; stale entries skipped
        self._seq = 0
        self._next = {"report": 1, "response": 9001, "file": 50001}
        self._counts = {"responses_by_officers": 0, "responses_from_clients": 0, "state_changes_from_clients": 0}

    def _new(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def _changed(self, record: dict[str, Any], now: datetime) -> None:
        """The report changed at ``now``: it takes the next place in the changes feed."""
        self._seq += 1
        record["seq"], record["updated_at"] = self._seq, now
        self._feed.append((self._seq, record["id"]))

    def _store_file(self, name: str, kind: str, data: bytes) -> dict[str, Any]:
        file_id = self._new("file")
        self._files[file_id] = (name, kind, data)
        return {"id": file_id, "filename": name, "content_type": kind, "size": len(data)}

    # --- citizens -------------------------------------------------------------------------

    def submit(self, now: datetime, **overrides: Any) -> str:
        """A citizen files a report at ``now``; returns its id."""
        rng, now = self.rng, _second(now)
        category = overrides.pop("category", None) or rng.choice(tuple(CATEGORIES))
        district = rng.choice(tuple(DISTRICTS))
        villages, streets, (lat, lng) = DISTRICTS[district]
        street = rng.choice(streets)
        number = self._new("report")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        reporter = {
            "name": f"{first} {last}",
            "nik": "3573" + "".join(str(rng.randrange(10)) for _ in range(12)),
            "phone": "08" + "".join(str(rng.randrange(10)) for _ in range(10)),
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 100)}@example.id",
        }
        anonymous = rng.random() < 0.1
        photo = rng.random() < 0.3
        record: dict[str, Any] = {
            "id": f"sa-{number:06d}",
            "ticket_number": f"SA/{now.astimezone(WIB).year}/{number:06d}",
            "title": f"{category} di {street}",
            "description": rng.choice(CATEGORIES[category][1]).format(jalan=street),
            "category": category,
            "location": {
                "address": f"{street} No. {rng.randrange(1, 150)}",
                "village": rng.choice(villages),
                "district": district,
                "lat": round(lat + rng.uniform(-0.01, 0.01), 6),
                "lng": round(lng + rng.uniform(-0.01, 0.01), 6),
            },
            "state": "menunggu",
            "state_note": None,
            "state_changed_at": now,
            "state_changed_by": {"type": "system", "name": "Sistem Suara Arek"},
            "reporter": None if anonymous else reporter,
            "attachments": [],
            "response_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        record.update(overrides)
        if photo:
            data = tiny_png(rng, 32, 24)
            record["attachments"].append(self._store_file(f"foto_{number:06d}.png", "image/png", data))
        self._reports[record["id"]] = record
        self._changed(record, now)
        return str(record["id"])

    # --- officers and API clients -----------------------------------------------------------

    def get(self, report_id: str) -> dict[str, Any]:
        record = self._reports.get(report_id)
        if record is None:
            raise WorldError(404, "not_found", "no report with this id")
        return record

    def add_response(
        self, report_id: str, message: Any, author: dict[str, Any], now: datetime, files: Any = None
    ) -> dict[str, Any]:
        record = self.get(report_id)
        if not isinstance(message, str) or not message.strip():
            raise WorldError(422, "invalid_message", "message is required")
        if len(message) > MAX_MESSAGE_CHARS:
            raise WorldError(422, "invalid_message", f"message is longer than {MAX_MESSAGE_CHARS} characters")
        checked = read_files(files)
        now = _second(now)
        response_id = self._new("response")
        response = {
            "id": response_id,
            "report_id": report_id,
            "message": message,
            "author": author,
            "attachments": [self._store_file(*f) for f in checked],
            "created_at": now,
        }
        self._responses[response_id] = response
        self._responses_of.setdefault(report_id, []).append(response_id)
        record["response_count"] += 1
        self._changed(record, now)
        kind = "responses_by_officers" if author["type"] == "officer" else "responses_from_clients"
        self._counts[kind] += 1
        return response

    def set_state(
        self, report_id: str, state: Any, note: Any, by: dict[str, Any], now: datetime, *, known: bool = True
    ) -> bool:
        """The report's state is now ``state``; False (nothing changed, nothing moved) when it
        already was, with the same note. ``known=False`` lets officers use a state outside STATES."""
        record = self.get(report_id)
        if known and state not in STATES:
            raise WorldError(422, "invalid_state", f"state must be one of: {', '.join(STATES)}")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
            raise WorldError(422, "invalid_note", f"note must be text of at most {MAX_NOTE_CHARS} characters")
        if record["state"] == state and record["state_note"] == (note or None):
            return False
        now = _second(now)
        record["state"], record["state_note"] = state, note or None
        record["state_changed_at"], record["state_changed_by"] = now, by
        self._changed(record, now)
        if by["type"] == "client":
            self._counts["state_changes_from_clients"] += 1
        return True

    def tick(self, now: datetime, *, reports_per_tick: float, act_probability: float, unknown_state: bool) -> None:
        """Officers take one step on some open reports (in id order), then citizens file new ones."""
        rng = self.rng
        for report_id in sorted(self._reports):
            record = self._reports[report_id]
            if record["state"] in FINAL_STATES or rng.random() >= act_probability:
                continue
            unit = CATEGORIES[record["category"]][0]
            officer = {"type": "officer", "name": unit}
            if record["state"] == "menunggu":
                state = "ditolak" if rng.random() < 0.05 else ("diproses" if not unknown_state else UNKNOWN_STATE)
                self.set_state(
                    report_id, state, OFFICER_NOTES.get(state, "").format(unit=unit) or None, officer, now, known=False
                )
            elif rng.random() < 0.6:
                self.add_response(report_id, rng.choice(OFFICER_REPLIES), officer, now)
            else:
                self.set_state(report_id, "selesai", OFFICER_NOTES["selesai"], officer, now)
        for _ in range(poisson(rng, reports_per_tick)):
            self.submit(now)

    # --- reading ------------------------------------------------------------------------------

    def changes(self, after: int, limit: int, *, repeat_last: bool = False) -> tuple[list[dict[str, Any]], int, bool]:
        """Up to ``limit`` reports whose current change number is above ``after`` (at or above it
        when ``repeat_last``: the page_shift fault), by that number; the number of the last one
        listed (``after`` when none) and whether more follow."""
        at = bisect_left(self._feed, (after if repeat_last else after + 1, ""))
        found: list[dict[str, Any]] = []
        last = after
        for seq, report_id in self._feed[at:]:
            record = self._reports[report_id]
            if record["seq"] != seq:
                continue  # the report changed again: it is listed further on
            if len(found) == limit:
                return found, last, True
            found.append(record)
            last = max(last, seq)
        return found, last, False

    def responses(self, report_id: str) -> list[dict[str, Any]]:
        self.get(report_id)
        return [self._responses[i] for i in self._responses_of.get(report_id, [])]

    def file(self, file_id: int) -> tuple[str, str, bytes] | None:
        return self._files.get(file_id)

    def all(self) -> list[dict[str, Any]]:
        return list(self._reports.values())

    def counts(self) -> dict[str, int]:
        open_ = sum(1 for r in self._reports.values() if r["state"] not in FINAL_STATES)
        return {"reports": len(self._reports), "open_reports": open_, **self._counts}
