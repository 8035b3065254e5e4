"""A fake of "Lapor Bubuhan", an invented complaint app of Kota Balikpapan (WITA), written
from its (invented) API description only, as a third-party adapter author would.

Its dialect differs from Lapor Hendi's on purpose:

- HTTP basic auth;
- ``GET /api/v2/tickets?modifiedSince=<epoch ms>&pageSize=N&pageToken=T``: tickets ordered by
  ``modifiedMs`` then ``ticketNo``, filtered inclusively, paged by an opaque ``nextPageToken``
  (an offset into the filtered list: it shifts when a ticket is updated during a walk);
- ticket times as epoch milliseconds; follow-up times as ``YYYY-MM-DD HH:MM:SS`` and status-log
  times as ``DD/MM/YYYY HH:MM:SS``, both WITA wall-clock time without an offset;
- the reporter nested (``pelapor.profil``), statuses in the app's own words (``state.code``);
- follow-ups (``tindakLanjut``) and the status history (``riwayat``) only embedded in each
  ticket; adding either moves the ticket's ``modifiedMs``;
- writes carry ``extRef`` and are applied once per ticket and ``extRef``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from aiohttp import BasicAuth, web

from gateway import Reporter
from gateway.simulation import SimClock, Simulator

WITA = ZoneInfo("Asia/Makassar")
USERNAME = "balikpapan"
PASSWORD = "rahasia-uji"  # a made-up test credential
STATES = {"TRM": "Diterima", "VRF": "Diverifikasi", "PRS": "Diproses", "SLS": "Selesai", "TLK": "Ditolak"}
NEXT_STATE = {"TRM": "VRF", "VRF": "PRS", "PRS": "SLS", "SLS": "PRS", "TLK": "PRS"}


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def wita(value: datetime, fmt: str) -> str:
    return value.astimezone(WITA).strftime(fmt)


@dataclass
class Ticket:
    no: int
    subject: Any
    narrative: str
    created: datetime
    modified: datetime
    state: str
    pelapor: dict[str, Any] | None
    anonim: bool = False
    tindak_lanjut: list[dict[str, Any]] = field(default_factory=list)
    riwayat: list[dict[str, Any]] = field(default_factory=list)


class BubuhanSimulator(Simulator):
    name: ClassVar[str] = "bubuhan"
    default_port: ClassVar[int] = 8799

    def __init__(self, *, seed: int = 0, clock: SimClock | None = None, **kw: Any):
        super().__init__(seed=seed, clock=clock, **kw)
        self.tickets: dict[int, Ticket] = {}
        self._ids = 0

    # -- the world ------------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _profil(self, reporter: Reporter) -> dict[str, Any]:
        return {
            "rahasiakan": False,
            "profil": {
                "namaLengkap": reporter.name,
                "nik": reporter.nik,
                "hp": reporter.phone,
                "surel": reporter.email,
            },
        }

    def file_ticket(self, reporter: Reporter, *, subject: Any = "Jalan berlubang") -> int:
        with self.lock:
            now = self.clock.now()
            no = self._next_id()
            ticket = Ticket(no, subject, "Lubang besar di depan pasar.", now, now, "TRM", self._profil(reporter))
            ticket.riwayat.append(self._log_entry(None, "TRM", now, ext_ref=None, memo=None))
            self.tickets[no] = ticket
            return no

    def _log_entry(
        self, before: str | None, after: Any, at: datetime, *, ext_ref: str | None, memo: str | None
    ) -> dict[str, Any]:
        return {
            "logId": self._next_id(),
            "dari": before,
            "ke": after,
            "pada": wita(at, "%d/%m/%Y %H:%M:%S"),
            "extRef": ext_ref,
            "memo": memo,
        }

    def answer(self, no: int, text: Any, *, by: str = "Petugas DPU", ext_ref: str | None = None) -> int:
        with self.lock:
            ticket = self.tickets[no]
            for existing in ticket.tindak_lanjut:
                if ext_ref is not None and existing["extRef"] == ext_ref:
                    return int(existing["fuId"])
            now = self.clock.now()
            entry = {
                "fuId": self._next_id(),
                "isi": text,
                "waktu": wita(now, "%Y-%m-%d %H:%M:%S"),
                "oleh": {"nama": by},
                "extRef": ext_ref,
            }
            ticket.tindak_lanjut.append(entry)
            ticket.modified = now
            return int(entry["fuId"])

    def move(self, no: int, state: Any = None, *, ext_ref: str | None = None, memo: str | None = None) -> int:
        with self.lock:
            ticket = self.tickets[no]
            for existing in ticket.riwayat:
                if ext_ref is not None and existing["extRef"] == ext_ref:
                    return int(existing["logId"])
            now = self.clock.now()
            after = NEXT_STATE[ticket.state] if state is None else state
            entry = self._log_entry(ticket.state, after, now, ext_ref=ext_ref, memo=memo)
            ticket.riwayat.append(entry)
            if isinstance(after, str):
                ticket.state = after
            ticket.modified = now
            return int(entry["logId"])

    def tick(self) -> None:
        """Nobody acts on their own: the tests drive the world."""

    # -- the HTTP face --------------------------------------------------------------------------

    def _ticket_json(self, t: Ticket) -> dict[str, Any]:
        return {
            "ticketNo": f"BPN-{t.no:06d}",
            "subject": t.subject,
            "narrative": t.narrative,
            "createdMs": epoch_ms(t.created),
            "modifiedMs": epoch_ms(t.modified),
            "state": {"code": t.state, "label": STATES.get(t.state, t.state)},
            "topic": "Jalan",
            "via": "whatsapp",
            "anonim": t.anonim,
            "pelapor": t.pelapor,  # served for an anonymous ticket too, with anonim: true
            "lokasi": {
                "alamat": "Jl. Jenderal Sudirman",
                "kelurahan": "Klandasan Ilir",
                "kecamatan": "Balikpapan Kota",
            },
            "tindakLanjut": list(t.tindak_lanjut),
            "riwayat": list(t.riwayat),
        }

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        try:
            creds = BasicAuth.decode(header)
        except ValueError:
            creds = None
        if creds is None or (creds.login, creds.password) != (USERNAME, PASSWORD):
            return web.json_response({"ok": False, "error": "unauthorised"}, status=401)
        return await handler(request)

    def build_app(self) -> web.Application:
        app = self.make_app(inner=[self._auth])
        app.router.add_get("/api/v2/tickets", self._list)
        app.router.add_post("/api/v2/tickets/{no}/tindaklanjut", self._post_follow_up)
        app.router.add_patch("/api/v2/tickets/{no}", self._patch_state)
        return app

    def _ticket_of(self, request: web.Request) -> int | None:
        text = request.match_info["no"]
        if not text.startswith("BPN-"):
            return None
        try:
            no = int(text[4:])
        except ValueError:
            return None
        return no if no in self.tickets else None

    async def _list(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            since = int(q["modifiedSince"]) if "modifiedSince" in q else None
            size = int(q.get("pageSize", "20"))
            offset = int(base64.urlsafe_b64decode(q["pageToken"]).decode()[2:]) if "pageToken" in q else 0
        except (ValueError, binascii.Error):
            return web.json_response({"ok": False, "error": "bad query"}, status=400)
        with self.lock:
            rows = sorted(self.tickets.values(), key=lambda t: (t.modified, t.no))
            if since is not None:
                rows = [t for t in rows if epoch_ms(t.modified) >= since]
            page = rows[offset : offset + size]
            more = offset + size < len(rows)
            body = {
                "ok": True,
                "tickets": [self._ticket_json(t) for t in page],
                "nextPageToken": base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode() if more else None,
            }
        return web.json_response(body)

    async def _post_follow_up(self, request: web.Request) -> web.Response:
        no = self._ticket_of(request)
        if no is None:
            return web.json_response({"ok": False, "error": "tiket tidak ada"}, status=404)
        body = await request.json()
        if not isinstance(body.get("isi"), str) or not body["isi"]:
            return web.json_response({"ok": False, "error": "isi wajib"}, status=422)
        fu_id = self.answer(no, body["isi"], by=body.get("oleh") or "Gateway", ext_ref=body.get("extRef"))
        return web.json_response({"ok": True, "fuId": fu_id})

    async def _patch_state(self, request: web.Request) -> web.Response:
        no = self._ticket_of(request)
        if no is None:
            return web.json_response({"ok": False, "error": "tiket tidak ada"}, status=404)
        body = await request.json()
        if body.get("state") not in STATES:
            return web.json_response({"ok": False, "error": "state tidak dikenal"}, status=422)
        log_id = self.move(no, body["state"], ext_ref=body.get("extRef"), memo=body.get("memo"))
        return web.json_response({"ok": True, "logId": log_id})


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> BubuhanSimulator:
    return BubuhanSimulator(seed=seed, clock=clock, **options)


class BubuhanDriver:
    """The kit's PeerDriver for the fake."""

    def __init__(self, sim: BubuhanSimulator):
        self.sim = sim

    def now(self) -> datetime:
        return self.sim.clock.now()

    def advance(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def add_complaint(self, reporter: Reporter) -> str:
        return f"BPN-{self.sim.file_ticket(reporter):06d}"

    def add_anonymous_complaint(self, reporter: Reporter) -> str:
        no = self.sim.file_ticket(reporter)
        with self.sim.lock:
            self.sim.tickets[no].anonim = True
        return f"BPN-{no:06d}"

    def add_follow_up(self, complaint_ref: str) -> str:
        return str(self.sim.answer(int(complaint_ref[4:]), "Sudah dicek petugas."))

    def change_status(self, complaint_ref: str) -> None:
        self.sim.move(int(complaint_ref[4:]))

    def add_malformed_record(self, stream: str, reporter: Reporter) -> str:
        if stream == "complaints":
            return f"BPN-{self.sim.file_ticket(reporter, subject=None):06d}"
        no = self.sim.file_ticket(reporter)
        if stream == "follow_ups":
            return str(self.sim.answer(no, None))
        return str(self.sim.move(no, state=42))
