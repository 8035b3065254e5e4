"""A simulated Open311 GeoReport v2 server (Kota Makassar, WITA) served over real HTTP.

Built from the published GeoReport v2 specification (wiki.open311.org/GeoReport_v2),
not from any adapter; ``docs/open311-api.md`` is the contract and marks what the spec
says and what this simulator chose where the spec is silent. JSON only.

Citizens report and the city's officers note and close requests when
:meth:`Open311Simulator.tick` runs; the batch service's submissions get their id on
every tick (the city's batch run), whether or not the officers are active. Seeded:
the same seed, clock and calls give the same world.

Faults (``docs/simulators.md``): the generic ones of :class:`gateway.simulation.Faults`,
answered in the spec's error list; a lost answer can hit ``POST /requests.{format}``
(the request is created, then the connection is closed: the core spec has no
idempotency, so sending it again makes a second request). ``drift_rate`` serves a
listed request with a field missing or malformed (transient); ``unknown_status_codes``
makes officers set a status that is neither ``open`` nor ``closed`` (persistent).
``page_shift_rate`` does not apply: the core spec has no paging.
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.simulation import SimClock, Simulator
from lapor_gateway_adapters.lapor_hendi._world import tiny_png
from lapor_gateway_adapters.open311._data import ATTRIBUTES, SERVICES
from lapor_gateway_adapters.open311._world import (
    JURISDICTION,
    Open311World,
    WorldError,
    read_time,
    show_time,
)

__all__ = ["DEFAULT_API_KEY", "ENV_API_KEY", "Open311Simulator", "create_simulator"]

DEFAULT_API_KEY = "demo-open311-key"
ENV_API_KEY = "OPEN311_API_KEY"
MAX_REQUESTS = 1000  # the spec's default query limit
WINDOW = timedelta(days=90)  # the spec's default (and longest) date range
FIELDS = (  # the spec's order of a service request's fields
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
DRIFTS = ("requested_datetime", "updated_datetime", "status", "lat")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def errors(http_status: int, *descriptions: str, code: int | None = None) -> web.Response:
    """The spec's error answer: a list of {code, description}."""
    body = [{"code": code or http_status, "description": d} for d in descriptions]
    return web.json_response(body, status=http_status)


def window(query: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """The [start, end] of a GET Service Requests: the spec's most recent 90 days when neither
    date is given; 90 days from the one given otherwise (our choice). ``WorldError`` (400)."""
    start = read_time(query["start_date"], "start_date") if query.get("start_date") else None
    end = read_time(query["end_date"], "end_date") if query.get("end_date") else None
    if start is None:
        end = end or now
        start = end - WINDOW
    elif end is None:
        end = start + WINDOW
    if end < start:
        raise WorldError(400, "end_date is before start_date")
    if end - start > WINDOW:
        raise WorldError(400, "start_date and end_date may not span more than 90 days")
    return start, end


class Open311Simulator(Simulator):
    name = "open311"
    default_port = 8703
    commit_then_drop_routes = frozenset({("POST", "/requests.{format}")})

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        api_key: str = DEFAULT_API_KEY,
        initial_requests: int = 0,
        requests_per_tick: float = 1.0,
        close_probability: float = 0.1,
        max_requests: int = MAX_REQUESTS,
        faults: Mapping[str, Any] | None = None,
    ):
        super().__init__(seed=seed, clock=clock, faults=faults)
        if int(initial_requests) < 0 or int(max_requests) < 1:
            raise ValueError("initial_requests must not be negative and max_requests must be at least 1")
        self.api_key = api_key
        self.requests_per_tick = requests_per_tick
        self.close_probability = close_probability
        self.max_requests = int(max_requests)
        self.officers_active = True  # False: citizens and officers stop acting in tick()
        self.world = Open311World(random.Random(seed))
        self._requests = 0
        self._forbidden = 0
        with self.lock:
            now = self.clock.now().replace(microsecond=0)
            for i in range(int(initial_requests)):
                self.world.submit(now - (int(initial_requests) - i) * timedelta(minutes=10))

    # --- the simulated people ----------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            now = self.clock.now()
            self.world.run_batch(now)
            if self.officers_active:
                self.world.tick(
                    now,
                    requests_per_tick=self.requests_per_tick,
                    close_probability=self.close_probability,
                    unknown_status=self.faults.settings.unknown_status_codes,
                )

    def submit_request(self, **overrides: Any) -> str:
        """A citizen reports through the city's own app now; returns its service_request_id."""
        with self.lock:
            return str(self.world.submit(self.clock.now(), **overrides))

    def note(self, service_request_id: str, notes: str) -> None:
        """An officer writes status_notes on an open request (updated_datetime moves)."""
        with self.lock:
            self.world.note(int(service_request_id), notes, self.clock.now())

    def close(self, service_request_id: str, notes: str) -> None:
        """An officer closes a request with status_notes (updated_datetime moves)."""
        with self.lock:
            self.world.close(int(service_request_id), notes, self.clock.now())

    # --- inspection ----------------------------------------------------------------------

    def service_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.world.all()

    def submitter(self, service_request_id: str) -> dict[str, Any]:
        """The personal data a request was submitted with (never served over HTTP)."""
        with self.lock:
            return self.world.submitter(int(service_request_id))

    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {**self.world.counts(), "requests_served": self._requests, "forbidden": self._forbidden}

    def demo_environment(self) -> dict[str, str]:
        return {ENV_API_KEY: self.api_key}

    # --- HTTP ----------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = self.make_app(outer=[self._count], inner=[self._check_format])
        app.router.add_get("/services.{format}", self._services)
        app.router.add_get("/services/{code}.{format}", self._service_definition)
        app.router.add_post("/requests.{format}", self._post_request)
        app.router.add_get("/requests.{format}", self._get_requests)
        app.router.add_get("/requests/{id}.{format}", self._get_request)
        app.router.add_get("/tokens/{token}.{format}", self._get_token)
        app.router.add_get("/media/{id}.png", self._media)
        return app

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        response = errors(status, message)
        response.headers.update(headers)
        return response

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self.lock:
            self._requests += 1
        return await handler(request)

    @web.middleware
    async def _check_format(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """JSON only (the spec makes XML the required format; this server offers JSON alone),
        and the one jurisdiction it serves."""
        fmt = request.match_info.get("format")
        if fmt is not None and fmt != "json":
            return errors(400, f"format {fmt} is not served here: use .json")
        jurisdiction = request.query.get("jurisdiction_id")
        if request.method == "POST" and not jurisdiction:
            jurisdiction = (await request.post()).get("jurisdiction_id")  # type: ignore[assignment]
        if jurisdiction and jurisdiction != JURISDICTION:
            return errors(404, f"jurisdiction_id {jurisdiction} was not found")
        missing = request.match_info.http_exception
        if missing is not None:
            return errors(missing.status, f"{request.method} {request.path} is not a resource of this server")
        return await handler(request)

    def _show(self, request: web.Request, record: dict[str, Any]) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for name in FIELDS:
            value = record.get(name)
            if name == "service_name":
                value = SERVICES[record["service_code"]][0]
            elif name == "service_request_id":
                value = str(value)
            elif name.endswith("_datetime"):
                value = show_time(value)
            elif name == "media_url" and isinstance(value, str) and value.startswith("/"):
                value = f"{request.scheme}://{request.host}{value}"
            shown[name] = value
        return shown

    def _drift(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self.faults.roll(self.faults.settings.drift_rate):
            return record
        self.faults.count("drifted")
        how = self.faults.choice(DRIFTS)
        if how.endswith("_datetime") and record[how]:
            record[how] = record[how][:19]  # the offset lost
        elif how == "lat":
            record["lat"] = str(record["lat"])
        else:
            record.pop(how, None)
        return record

    async def _services(self, request: web.Request) -> web.Response:
        body = [
            {
                "service_code": code,
                "service_name": name,
                "description": description,
                "metadata": code in ATTRIBUTES,
                "type": kind,
                "keywords": keywords,
                "group": group,
            }
            for code, (name, description, group, kind, _agency, keywords, _texts) in SERVICES.items()
        ]
        return web.json_response(body)

    async def _service_definition(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if code not in SERVICES:
            return errors(404, f"service_code {code} was not found")
        return web.json_response({"service_code": code, "attributes": ATTRIBUTES.get(code, [])})

    async def _post_request(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("api_key")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.api_key.encode()):
            with self.lock:
                self._forbidden += 1
            return errors(403, "Invalid api_key received -- can't proceed with create_request.")
        fields = {k: v for k, v in form.items() if isinstance(v, str) and not k.startswith("attribute[")}
        attributes: dict[str, list[str]] = {}
        for key, value in form.items():
            if key.startswith("attribute[") and key.endswith("]") and isinstance(value, str):
                attributes.setdefault(key[len("attribute[") : -1], []).append(value)
        try:
            with self.lock:
                answer = self.world.create(fields, attributes, self.clock.now())
        except WorldError as exc:
            return errors(exc.http_status, exc.description)
        return web.json_response([answer])

    async def _get_requests(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            ids = [i.strip() for i in query.get("service_request_id", "").split(",") if i.strip()]
            if ids:  # "This overrides all other arguments."
                if len(ids) > self.max_requests:
                    return errors(400, f"at most {self.max_requests} service_request_id at once")
                with self.lock:
                    found = self.world.find(ids)
                    shown = [self._drift(self._show(request, r)) for r in found]
                return web.json_response(shown)
            start, end = window(query, self.clock.now())
            statuses = {s.strip() for s in query.get("status", "").split(",") if s.strip()} or None
            if statuses and not statuses <= {"open", "closed"}:
                return errors(400, "status must be open or closed (comma delimited)")
            codes = {c.strip() for c in query.get("service_code", "").split(",") if c.strip()} or None
        except WorldError as exc:
            return errors(exc.http_status, exc.description)
        with self.lock:
            found = self.world.query(start, end, statuses, codes, self.max_requests)
            shown = [self._drift(self._show(request, r)) for r in found]
        return web.json_response(shown)

    async def _get_request(self, request: web.Request) -> web.Response:
        with self.lock:
            found = self.world.find([request.match_info["id"]])
            shown = [self._show(request, r) for r in found]
        if not shown:
            return errors(404, f"service_request_id {request.match_info['id']} was not found")
        return web.json_response(shown)

    async def _get_token(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        with self.lock:
            known, request_id = self.world.token(token)
        if not known:
            return errors(404, f"token {token} was not found")
        return web.json_response(
            [{"service_request_id": None if request_id is None else str(request_id), "token": token}]
        )

    async def _media(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        with self.lock:
            found = self.world.find([ident])
        if not found or not str(found[0].get("media_url") or "").startswith("/media/"):
            return errors(404, f"no media {ident}")
        return web.Response(
            body=tiny_png(random.Random(f"media:{self.seed}:{ident}"), 40, 30), content_type="image/png"
        )


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> Open311Simulator:
    """Entry point of ``lapor_gateway.simulators``. Options: ``api_key`` (default
    ``demo-open311-key``), ``initial_requests`` (0: filed ten minutes apart before now,
    all open), ``requests_per_tick`` (1.0), ``close_probability`` (0.1: each open request's
    chance per tick of an officer's next step: a note, then closing), ``max_requests``
    (1000: the most requests one answer lists), ``faults`` (a dict of
    :class:`gateway.simulation.FaultSettings` values; none by default)."""
    return Open311Simulator(seed=seed, clock=clock, **options)
