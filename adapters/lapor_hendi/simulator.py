"""A simulated Lapor Hendi (Kota Semarang's complaint app) served over real HTTP.

The API is the one in ``docs/lapor-hendi-api.md``. Citizens submit complaints and
local officers answer them when :meth:`LaporHendiSimulator.tick` runs; the
gateway reads and writes through the API. Everything is seeded, so a run with
the same seed, clock and calls produces the same world.

Writes are idempotent by ``ref_eksternal``: a status or tanggapan write whose
non-empty ``ref_eksternal`` was already written for that complaint answers 200
with the existing id and changes nothing. ``PUT /api/v1/aduan/{id}/nomor-lapor``
(the national hub's tracking id) is idempotent by its value. A tanggapan may
carry files (``lampiran``, base64) and be confidential (``rahasia``); the app's
own officers sometimes attach an evidence photo, and rarely mark one rahasia.

Faults on demand (see ``docs/simulators.md``): the generic ones of
:class:`gateway.simulation.Faults` sit between the request counter (outermost)
and the API-key check; a lost answer can hit ``POST /api/v1/aduan/{id}/status``
, ``POST /api/v1/aduan/{id}/tanggapan`` and ``PUT /api/v1/aduan/{id}/nomor-lapor``
(the write is committed, then the connection is closed). The app's own:
``drift_rate`` serves list records with a field missing, of the wrong type or
with an unknown status (transient), and ``page_shift_rate`` serves a page with
its window shifted by one record. Not a ``FaultSettings`` knob but an option of
this simulator (and :meth:`LaporHendiSimulator.set_error_body_rate` at run
time): ``error_body_rate``, a write not committed and answered HTTP 200
``{"status": "gagal", ...}``, a "2xx that is not a success".

At scale: ``initial_complaints=100_000, history_days=1500`` files a city's years
of complaints (most closed) in a few seconds, and a page of a list costs
O(log n + page size) whatever the size of the world (see ``_world.py``).
"""

from __future__ import annotations

import hmac
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.simulation import SimClock, Simulator
from lapor_gateway_adapters.lapor_hendi._world import (
    EXTERNAL_AUTHOR,
    SOURCE_EXTERNAL,
    LaporHendiWorld,
    WorldError,
    read_time,
)

__all__ = ["DEFAULT_API_KEY", "ENV_API_KEY", "LaporHendiSimulator", "create_simulator"]

DEFAULT_API_KEY = "demo-lapor-hendi-key"
ENV_API_KEY = "LAPOR_HENDI_API_KEY"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_BODY_BYTES = 64 * 1024 * 1024  # a write's body: a few files of 10 MiB each, in base64
ERROR_BODY_PESAN = "gagal menyimpan data, silakan coba lagi"  # what an error_body fault answers
_TEN_MINUTES = timedelta(minutes=10)

#: How a drifted record of each list is served (see :meth:`LaporHendiSimulator._drift`).
DRIFTS: dict[str, tuple[str, ...]] = {
    "aduan": ("judul", "diperbarui_pada", "status"),
    "tanggapan": ("isi", "dibuat_pada"),
    "riwayat": ("status_baru", "dibuat_pada"),
}
DRIFTED_STATUS = "menunggu"  # a status the app does not have

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_key(request: web.Request) -> str:
    """``"GET /api/v1/aduan/{id}/status"``: the method and the route template a request
    matched (``"GET (no route)"`` for an unknown path), for ``counts()["requests_by_route"]``."""
    resource = getattr(getattr(request.match_info, "route", None), "resource", None)
    return f"{request.method} {getattr(resource, 'canonical', None) or '(no route)'}"


def _fail(http_status: int, pesan: str) -> web.Response:
    return web.json_response({"status": "gagal", "pesan": pesan}, status=http_status)


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)


def content_disposition(nama_file: str) -> str:
    """``attachment; filename="..."`` (quotes and backslashes escaped, anything not
    printable ASCII as ``_``), plus ``filename*`` (RFC 6266) when the name is not ASCII."""
    plain = "".join(c if 32 <= ord(c) < 127 else "_" for c in nama_file).replace("\\", "\\\\").replace('"', '\\"')
    header = f'attachment; filename="{plain}"'
    if not nama_file.isascii():
        header += f"; filename*=UTF-8''{quote(nama_file, safe='')}"
    return header


class LaporHendiSimulator(Simulator):
    name = "lapor_hendi"
    default_port = 8701
    commit_then_drop_routes = frozenset(
        {
            ("POST", "/api/v1/aduan/{id}/status"),
            ("POST", "/api/v1/aduan/{id}/tanggapan"),
            ("PUT", "/api/v1/aduan/{id}/nomor-lapor"),
        }
    )

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        api_key: str = DEFAULT_API_KEY,
        initial_complaints: int = 0,
        history_days: float | None = None,
        complaints_per_tick: float = 1.5,
        answer_probability: float = 0.15,
        error_body_rate: float = 0.0,
        faults: Mapping[str, Any] | None = None,
    ):
        super().__init__(seed=seed, clock=clock, faults=faults)
        self.error_body_rate = _rate("error_body_rate", error_body_rate)
        # Its own RNG, so that switching it on leaves every other seeded draw as it was.
        self._error_body_rng = random.Random(f"error-body:{seed}")
        self._error_bodies = 0
        initial_complaints = int(initial_complaints)
        if initial_complaints < 0:
            raise ValueError("initial_complaints must not be negative")
        if history_days is not None and not float(history_days) > 0:
            raise ValueError("history_days must be above 0")
        self.api_key = api_key
        self.complaints_per_tick = complaints_per_tick
        self.answer_probability = answer_probability
        self.officers_active = True  # False: citizens and officers stop acting in tick()
        self.extra_middlewares: list[Any] = []  # more aiohttp middlewares, inside the faults, before the key check
        self.world = LaporHendiWorld(random.Random(seed))
        self._requests = 0
        self._unauthorized = 0
        self._by_route: dict[str, int] = {}
        with self.lock:
            now = self.clock.now()
            if history_days is None:
                # Spread the initial complaints over the time before now, ten minutes apart.
                for i in range(initial_complaints):
                    self.world.submit(now.replace(microsecond=0) - (initial_complaints - i) * _TEN_MINUTES)
            else:  # over the last history_days, each as far through its life as its age allows
                self.world.seed_history(initial_complaints, now, float(history_days))

    # --- the simulated people ---------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            if not self.officers_active:
                return
            self.world.tick(
                self.clock.now(),
                complaints_per_tick=self.complaints_per_tick,
                answer_probability=self.answer_probability,
            )

    def submit_complaint(self, **overrides: Any) -> int:
        """A citizen submits one complaint now; fields of the record may be overridden
        (``lampiran`` is a number of generated photos, or a list of ``(nama_file, tipe_mime,
        bytes)`` served as they are). Returns its id_aduan."""
        with self.lock:
            return self.world.submit(self.clock.now(), **overrides)

    def answer(self, id_aduan: int, text: str, *, rahasia: bool = False, lampiran: int = 0) -> int:
        """A local officer (the complaint's OPD, or the admin) writes a tanggapan, confidential
        when ``rahasia``, with ``lampiran`` generated evidence photos; returns its id."""
        with self.lock:
            return self.world.officer_answer(id_aduan, text, self.clock.now(), rahasia=rahasia, photos=lampiran)

    def set_error_body_rate(self, rate: float) -> None:
        """From now on, this share of writes (status, tanggapan, nomor-lapor) is not committed
        and answered HTTP 200 ``{"status": "gagal", "pesan": ...}``. ``ValueError`` outside 0..1."""
        rate = _rate("error_body_rate", rate)
        with self.lock:
            self.error_body_rate = rate

    def reassign(self, id_aduan: int, opd: str | None) -> None:
        """The city's admin hands a complaint to another OPD (its diperbarui_pada moves)."""
        with self.lock:
            self.world.reassign(id_aduan, opd, self.clock.now())

    # --- inspection -----------------------------------------------------------------------

    def complaints(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.world.all_aduan()

    def follow_ups(self, id_aduan: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self.world.show(r) for r in self.world.list_tanggapan(id_aduan=id_aduan)]

    def status_history(self, id_aduan: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self.world.show(r) for r in self.world.list_riwayat(id_aduan=id_aduan)]

    def attachment(self, id_lampiran: int) -> tuple[str, str, bytes] | None:
        """A stored file (of a complaint or of a tanggapan) as served by GET
        /api/v1/lampiran/{id}: (nama_file, tipe_mime, bytes); None if there is none."""
        with self.lock:
            return self.world.file(id_lampiran)

    def follow_up_files(self, id_tanggapan: int) -> list[tuple[str, str, bytes]]:
        """The files listed on one tanggapan, in order: (nama_file, tipe_mime, bytes)."""
        with self.lock:
            row = self.world.tanggapan(id_tanggapan)
            return [self.world.file(item["id_lampiran"]) for item in row.lampiran]  # type: ignore[misc]

    def nomor_lapor(self, id_aduan: int) -> str | None:
        """The national hub's tracking id stored on a complaint (None until set).
        ``KeyError`` for an unknown complaint."""
        with self.lock:
            try:
                return self.world.nomor_lapor(id_aduan)
            except WorldError:
                raise KeyError(id_aduan) from None

    def counts(self) -> dict[str, Any]:
        """The world's counts (``complaints``, ``follow_ups_by_officers``, ``follow_ups_from_gateway``,
        ``status_changes_from_gateway``, ``files_from_gateway``, ``nomor_lapor_from_gateway``),
        ``error_bodies`` (writes answered 200 "gagal" by the error_body fault), ``requests``
        (every request but the control endpoints'), ``unauthorized`` and ``requests_by_route``
        (``"GET /api/v1/aduan"``: n, by the route template a request matched; ``"GET (no
        route)"`` for an unknown path)."""
        with self.lock:
            return {
                **self.world.counts(),
                "error_bodies": self._error_bodies,
                "requests": self._requests,
                "unauthorized": self._unauthorized,
                "requests_by_route": dict(self._by_route),
            }

    def demo_environment(self) -> dict[str, str]:
        return {ENV_API_KEY: self.api_key}

    # --- HTTP ---------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = self.make_app(
            outer=[self._count_requests],
            inner=[*self.extra_middlewares, self._check_api_key],
            client_max_size=MAX_BODY_BYTES,
        )
        app.router.add_get("/api/v1/aduan", self._list_aduan)
        app.router.add_get("/api/v1/tanggapan", self._list_tanggapan)
        app.router.add_get("/api/v1/riwayat-status", self._list_riwayat)
        app.router.add_post("/api/v1/aduan/{id}/status", self._post_status)
        app.router.add_post("/api/v1/aduan/{id}/tanggapan", self._post_tanggapan)
        app.router.add_put("/api/v1/aduan/{id}/nomor-lapor", self._put_nomor_lapor)
        app.router.add_get("/api/v1/lampiran/{id}", self._get_lampiran)
        return app

    def add_control_routes(self, app: web.Application) -> None:
        super().add_control_routes(app)
        app.router.add_get("/_sim/error-body", self._get_error_body)
        app.router.add_post("/_sim/error-body", self._post_error_body)

    def _error_body_state(self) -> dict[str, Any]:
        with self.lock:
            return {"error_body_rate": self.error_body_rate, "error_bodies": self._error_bodies}

    async def _get_error_body(self, request: web.Request) -> web.Response:
        return web.json_response(self._error_body_state())

    async def _post_error_body(self, request: web.Request) -> web.Response:
        """``{"error_body_rate": 0.2}``: the error_body fault at run time (like the fault knobs
        of ``/_sim/faults``, exempt from faults and auth); 400 with ``{"error": ...}`` otherwise."""
        try:
            body = await request.json()
            self.set_error_body_rate(body["error_body_rate"])
        except (ValueError, TypeError, KeyError):
            return web.json_response(
                {"error": 'the body must be {"error_body_rate": a number between 0 and 1}'}, status=400
            )
        return web.json_response(self._error_body_state())

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        response = _fail(status, message)
        response.headers.update(headers)
        return response

    @web.middleware
    async def _count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_key(request)
        with self.lock:
            self._requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1
        return await handler(request)

    @web.middleware
    async def _check_api_key(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("X-Api-Key", "")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            with self.lock:
                self._unauthorized += 1
            return _fail(401, "API key tidak valid")
        return await handler(request)

    def _paged(self, request: web.Request, filter_name: str, kind: str) -> web.Response:
        query = request.query
        try:
            halaman = int(query.get("halaman") or 1)
            per_halaman = int(query.get("per_halaman") or DEFAULT_PER_PAGE)
        except ValueError:
            return _fail(400, "parameter halaman tidak valid")
        if halaman < 1 or per_halaman < 1:
            return _fail(400, "parameter halaman tidak valid")
        per_halaman = min(per_halaman, MAX_PER_PAGE)
        since = None
        if query.get(filter_name):
            try:
                since = read_time(query[filter_name])
            except ValueError:
                return _fail(400, "format waktu tidak valid, gunakan YYYY-MM-DD HH:MM:SS")
        start = end = (halaman - 1) * per_halaman
        end += per_halaman
        with self.lock:
            total, rows = self.world.page(kind, since, start, end, shift=self._shift)
            data = [self._drift(kind, self.world.show(row)) for row in rows]
        meta = {
            "halaman": halaman,
            "per_halaman": per_halaman,
            "total": total,
            "total_halaman": max(1, math.ceil(total / per_halaman)),
        }
        return web.json_response({"status": "sukses", "data": data, "meta": meta})

    def _shift(self, start: int, end: int, total: int) -> tuple[int, int]:
        """A page's window [start, end), shifted by one record with probability page_shift_rate,
        as when records changed since the page before was read: either it starts with the
        previous page's last record again (a repeat; the page then carries one record more)
        or it starts one record later (a skip: its first record is not served in this
        walk). Page 1 of a query is never shifted: there is no page before it to shift from."""
        if start == 0 or start >= total or not self.faults.roll(self.faults.settings.page_shift_rate):
            return start, end
        self.faults.count("shifted_pages")
        if self.faults.choice(("repeat", "skip")) == "repeat":
            return start - 1, end
        return start + 1, end + 1

    def _drift(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        """A list record as served: with probability drift_rate, a field missing, of the
        wrong type or (aduan) with a status the app does not have. Transient."""
        if not self.faults.roll(self.faults.settings.drift_rate):
            return record
        self.faults.count("drifted")
        how = self.faults.choice(DRIFTS[kind])
        if how in ("diperbarui_pada", "dibuat_pada"):  # a number instead of the WIB text
            record[how] = int(read_time(record[how]).timestamp())
        elif how == "status":
            record["status"] = DRIFTED_STATUS
        else:
            record.pop(how, None)
        return record

    async def _list_aduan(self, request: web.Request) -> web.Response:
        return self._paged(request, "diperbarui_sejak", "aduan")

    async def _list_tanggapan(self, request: web.Request) -> web.Response:
        return self._paged(request, "sejak", "tanggapan")

    async def _list_riwayat(self, request: web.Request) -> web.Response:
        return self._paged(request, "sejak", "riwayat")

    def _error_body(self) -> web.Response | None:
        """The error_body fault: with probability error_body_rate, the write is not
        committed and answered 200 with the app's failure envelope."""
        with self.lock:
            if self.error_body_rate <= 0 or self._error_body_rng.random() >= self.error_body_rate:
                return None
            self._error_bodies += 1
        return web.json_response({"status": "gagal", "pesan": ERROR_BODY_PESAN}, status=200)

    async def _write_body(self, request: web.Request) -> tuple[int, dict[str, Any]] | web.Response:
        """A write's complaint id and JSON object body, or the answer refusing them."""
        failed = self._error_body()
        if failed is not None:
            return failed
        try:
            id_aduan = int(request.match_info["id"])
        except ValueError:
            return _fail(404, "aduan tidak ditemukan")
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            return _fail(413, f"badan permintaan terlalu besar (maksimal {MAX_BODY_BYTES // (1024 * 1024)} MiB)")
        except ValueError:
            return _fail(400, "badan permintaan bukan JSON yang valid")
        if not isinstance(body, dict):
            return _fail(400, "badan permintaan harus berupa objek JSON")
        ref = body.get("ref_eksternal")
        if ref is not None and not isinstance(ref, str):
            return _fail(422, "ref_eksternal harus berupa teks")
        return id_aduan, body

    async def _write(
        self, request: web.Request, write: Callable[[int, dict[str, Any], str, str | None], int], id_key: str, kind: str
    ) -> web.Response:
        read = await self._write_body(request)
        if isinstance(read, web.Response):
            return read
        id_aduan, body = read
        ref = body.get("ref_eksternal")
        oleh = body.get("oleh")
        oleh = oleh.strip() if isinstance(oleh, str) and oleh.strip() else EXTERNAL_AUTHOR
        try:
            with self.lock:
                existing = self.world.written(kind, id_aduan, ref)
                if existing is not None:  # a repeated write: the first one stands
                    return web.json_response({"status": "sukses", "data": {id_key: existing, "sudah_ada": True}})
                new_id = write(id_aduan, body, oleh, ref)
        except WorldError as exc:
            return _fail(exc.http_status, exc.pesan)
        return web.json_response({"status": "sukses", "data": {id_key: new_id}})

    async def _post_status(self, request: web.Request) -> web.Response:
        def write(id_aduan: int, body: dict[str, Any], oleh: str, ref: str | None) -> int:
            return self.world.set_status(
                id_aduan,
                body.get("status"),
                oleh=oleh,
                sumber=SOURCE_EXTERNAL,
                ref=ref,
                now=self.clock.now(),
                keterangan=body.get("keterangan"),
            )

        return await self._write(request, write, "id_riwayat", "riwayat")

    async def _post_tanggapan(self, request: web.Request) -> web.Response:
        def write(id_aduan: int, body: dict[str, Any], oleh: str, ref: str | None) -> int:
            return self.world.add_tanggapan(
                id_aduan,
                body.get("isi"),
                oleh=oleh,
                sumber=SOURCE_EXTERNAL,
                ref=ref,
                now=self.clock.now(),
                rahasia=body.get("rahasia"),
                uploads=body.get("lampiran"),
            )

        return await self._write(request, write, "id_tanggapan", "tanggapan")

    async def _put_nomor_lapor(self, request: web.Request) -> web.Response:
        read = await self._write_body(request)
        if isinstance(read, web.Response):
            return read
        id_aduan, body = read
        try:
            with self.lock:
                value = self.world.set_nomor_lapor(id_aduan, body.get("nomor_lapor"))
        except WorldError as exc:
            return _fail(exc.http_status, exc.pesan)
        return web.json_response({"status": "sukses", "data": {"id_aduan": id_aduan, "nomor_lapor": value}})

    async def _get_lampiran(self, request: web.Request) -> web.Response:
        try:
            id_lampiran = int(request.match_info["id"])
        except ValueError:
            return _fail(404, "lampiran tidak ditemukan")
        with self.lock:
            found = self.world.file(id_lampiran)
        if found is None:
            return _fail(404, "lampiran tidak ditemukan")
        nama_file, tipe_mime, data = found
        return web.Response(
            body=data, content_type=tipe_mime, headers={"Content-Disposition": content_disposition(nama_file)}
        )


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> LaporHendiSimulator:
    """Entry point of ``lapor_gateway.simulators``. Options: ``api_key`` (default
    ``demo-lapor-hendi-key``), ``initial_complaints`` (0), ``history_days`` (None: the initial
    complaints are filed ten minutes apart before now and left new; a number of days: they
    are spread over that many days before now and taken through their lives, most closed,
    see :meth:`LaporHendiWorld.seed_history`), ``complaints_per_tick`` (1.5),
    ``answer_probability`` (0.15), ``error_body_rate`` (0: the share of writes answered HTTP 200
    ``{"status": "gagal"}`` and not committed; :meth:`LaporHendiSimulator.set_error_body_rate`
    changes it at run time), ``faults`` (a dict of :class:`gateway.simulation.FaultSettings`
    values; none by default)."""
    return LaporHendiSimulator(seed=seed, clock=clock, **options)
