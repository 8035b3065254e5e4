"""A simulator of LAPOR!-SP4N (API v3.0.0 shape) for the demo, the tests and the benchmarks.

It serves the paths public client code shows (see ``docs`` and the brief), checks
both auth headers on every call, answers in the hub's envelope
(``{"success": ..., "message": ..., "results": ...}``), writes times as
``d-m-Y H:i:s`` in WIB without an offset, and keeps one quirk of the real hub:
a create answer puts ``complaint_id`` at one of several JSON paths, chosen per
request by a seeded RNG. :meth:`Sp4nSimulator.tick` lets the hub's officers
verify, forward, hold, answer and close complaints in simulated time.

Faults on demand (see ``docs/simulators.md``): the generic ones of
:class:`gateway.simulation.Faults` run after the request is counted and before
auth is checked; a lost answer can hit ``POST /complaints/complaint`` and
``POST /complaints/followup/add`` (the complaint or follow-up is committed, then
the connection is closed). The hub's own: ``drift_rate`` serves follow-ups with
a field missing or malformed and complaints without ``status_name`` (transient:
the next read may be fine); ``unknown_status_codes`` makes the officers' new
status changes use the code ``koordinasi``, which the shipped config does not
map (persistent).

For benchmarks: :meth:`Sp4nSimulator.preload` puts many complaints at the hub at
once (as if the gateway had created them), ``change_rate_per_hour`` replaces the
officers' per-complaint rolls by a change model of a given rate, and
:meth:`Sp4nSimulator.changes` lists what changed when, so that the delay until the
gateway carried each change to the local app can be measured.
"""

from __future__ import annotations

import hmac
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.sp4n._world import (
    COMPLAINT_ID_PATHS,
    GATEWAY_INSTITUTION_ID,
    INSTITUTIONS,
    TEMPLATES,
    UNKNOWN_STATUS_CODE,
    SimComplaint,
    ValidationFailed,
    World,
    peer_time,
)
from gateway.simulation import SimClock, Simulator

__all__ = ["DEFAULT_AUTHORIZATION", "DEFAULT_TOKEN", "Sp4nSimulator", "create_simulator"]

DEFAULT_AUTHORIZATION = "demo-sp4n-authorization"
DEFAULT_TOKEN = "5f0c2a9e-3b7d-4c1e-9a61-2d8e7f4b1c30"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: How a drifted follow-up is served: which field goes missing or malformed.
FOLLOW_UP_DRIFTS = ("content", "created_at", "id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(results: dict[str, Any]) -> web.Response:
    return web.json_response({"success": True, "message": "OK", "results": results})


def _fail(status: int, message: str, errors: dict[str, list[str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": False, "message": message}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status)


def _not_found() -> web.Response:
    return _fail(404, "Data not found")


def _invalid(errors: dict[str, str]) -> web.Response:
    return _fail(422, "The given data was invalid.", {name: [message] for name, message in errors.items()})


def route_key(request: web.Request) -> str:
    """``"GET /complaints/{id}/complaint"``: the method and the route template a request
    matched (``"GET (no route)"`` for an unknown path), for ``counts()["requests_by_route"]``."""
    resource = getattr(getattr(request.match_info, "route", None), "resource", None)
    return f"{request.method} {getattr(resource, 'canonical', None) or '(no route)'}"


def _create_answer(complaint_id: int, path: tuple[str, ...]) -> dict[str, Any]:
    answer: dict[str, Any] = {"success": True, "message": "OK", "results": {}}
    node = answer
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = complaint_id
    return answer


async def _fields(request: web.Request) -> dict[str, Any]:
    """A request's fields, whether sent as JSON or as a form (urlencoded or multipart)."""
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return dict(await request.post())


class Sp4nSimulator(Simulator):
    name = "sp4n"
    default_port = 8702
    commit_then_drop_routes = frozenset({("POST", "/complaints/complaint"), ("POST", "/complaints/followup/add")})

    def __init__(self, *, seed: int = 0, clock: SimClock | None = None,
                 authorization: str = DEFAULT_AUTHORIZATION, token: str = DEFAULT_TOKEN,
                 change_rate_per_hour: float | None = None, faults: Mapping[str, Any] | None = None):
        super().__init__(seed=seed, clock=clock, faults=faults)
        self.authorization = authorization
        self.token = token
        self.world = World()
        self.officers_active = True
        self.middlewares: list[Any] = []  # extra aiohttp middlewares, inside the faults, outermost first
        self._rng = random.Random(seed)  # the officers
        self._answer_rng = random.Random(f"sp4n-answers-{seed}")  # per-request quirks
        self._change_rng = random.Random(f"sp4n-changes-{seed}")  # the change model
        self._preload_rng = random.Random(f"sp4n-preload-{seed}")
        self.change_rate_per_hour = self._check_rate(change_rate_per_hour)
        self._changes_since = self.clock.now()  # the change model has run up to here
        self._requests = 0
        self._unauthorized = 0
        self._by_route: dict[str, int] = {}

    @staticmethod
    def _check_rate(rate: Any) -> float | None:
        if rate is None:
            return None
        try:
            value = float(rate)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"change_rate_per_hour must be a number from 0, got {rate!r}")
        return value

    # -- the HTTP face --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = self.make_app(outer=[self._count], inner=[*self.middlewares, self._auth],
                            client_max_size=MAX_UPLOAD_BYTES)
        app.add_routes([
            web.post("/complaints/complaint/file", self._upload),
            web.post("/complaints/complaint", self._create),
            web.post("/complaints/process/{id}/reject", self._reject),
            web.get("/complaints/{id}/complaint", self._read),
            web.get("/complaints/{id}/followups", self._follow_ups),
            web.post("/complaints/followup/add", self._add_follow_up),
            web.get("/masters/institutions/external", self._institutions),
            web.get("/masters/templates", self._templates),
        ])
        return app

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        response = _fail(status, message)
        response.headers.update(headers)
        return response

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_key(request)
        with self.lock:
            self._requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status in (404, 405):  # unknown path or method, in the hub's envelope
                return _fail(exc.status, "Not Found" if exc.status == 404 else "Method Not Allowed")
            raise

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        token = request.headers.get("token", "")
        if not (hmac.compare_digest(authorization.encode(), f"Bearer {self.authorization}".encode())
                and hmac.compare_digest(token.encode(), self.token.encode())):
            with self.lock:
                self._unauthorized += 1
            return _fail(401, "Unauthenticated")
        return await handler(request)

    async def _upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        files = [f for f in post.getall("attachments[]", []) if isinstance(f, web.FileField)]
        if not files:
            return _fail(422, "The given data was invalid.", {"attachments": ["The attachments field is required."]})
        contents = [(f.filename, f.content_type, f.file.read()) for f in files]
        with self.lock:
            now = self.clock.now()
            docs = [self.world.add_doc(name, ctype, data, now) for name, ctype, data in contents]
        return _ok({"docs": [{"id": d["id"], "filename": d["filename"], "mime": d["mime"], "size": d["size"]}
                             for d in docs]})

    async def _create(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _fail(422, "The given data was invalid.", {"body": ["The body must be a JSON object."]})
        with self.lock:
            try:
                complaint = self.world.create(payload, self.clock.now())
            except ValidationFailed as exc:
                return _fail(422, "The given data was invalid.", exc.errors)
            path = self._answer_rng.choice(COMPLAINT_ID_PATHS)
        return web.json_response(_create_answer(complaint.id, path))

    async def _reject(self, request: web.Request) -> web.Response:
        """Reject a complaint, or with ``not_authority=1`` and ``institution_id`` forward it to
        that institution ("bukan wewenang"). Form or JSON fields; 404 for an unknown
        complaint, 422 for an unknown institution, a missing one, or an institution
        without ``not_authority=1``."""
        fields = await _fields(request)
        flag = str(fields.get("not_authority", "")).strip().lower()
        target = str(fields.get("institution_id") or fields.get("institution_to_id") or "").strip()
        note = str(fields.get("content") or fields.get("reason") or "").strip() or None
        errors: dict[str, str] = {}
        if flag not in ("", "0", "1", "false", "true"):
            errors["not_authority"] = "The not authority field must be 0 or 1."
        not_authority = flag in ("1", "true")
        if not_authority and not target:
            errors["institution_id"] = "The institution id field is required when not authority is 1."
        elif not_authority and target not in INSTITUTIONS:
            errors["institution_id"] = "The selected institution id is invalid."
        elif target and flag in ("", "0", "false"):
            errors["not_authority"] = "The not authority field must be 1 when an institution id is given."
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                return _not_found()
            if errors:
                return _invalid(errors)
            if not_authority:
                self.world.forward(complaint, target, self.clock.now(), note)
            else:
                self.world.reject(complaint, self.clock.now(), note)
            return _ok(self.world.complaint_view(complaint))

    async def _read(self, request: web.Request) -> web.Response:
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                return _not_found()
            view = self.world.complaint_view(complaint)
        if self.faults.roll(self.faults.settings.drift_rate):  # never the status codes of the logs
            view["data"].pop("status_name", None)
            self.faults.count("drifted")
        return _ok(view)

    async def _follow_ups(self, request: web.Request) -> web.Response:
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                return _not_found()
            records = self.world.follow_ups_view(complaint)
        return _ok({"data": [self._drift(record) for record in records]})

    def _drift(self, record: dict[str, Any]) -> dict[str, Any]:
        """A follow-up as served: with probability drift_rate, a field missing or malformed."""
        if not self.faults.roll(self.faults.settings.drift_rate):
            return record
        self.faults.count("drifted")
        how = self.faults.choice(FOLLOW_UP_DRIFTS)
        if how == "created_at":  # a format the adapter does not read
            return {**record, "created_at": record["created_at"].replace("-", "/")[:16]}
        return {k: v for k, v in record.items() if k != how}

    async def _add_follow_up(self, request: web.Request) -> web.Response:
        post = await request.post()
        files = [(k, v) for k, v in post.items() if isinstance(v, web.FileField)]
        fields = {k: str(v).strip() for k, v in post.items() if not isinstance(v, web.FileField)}
        contents = [(f.filename, f.content_type, f.file.read()) for _, f in files]
        errors: dict[str, list[str]] = {}
        if not fields.get("content"):
            errors["content"] = ["The content field is required."]
        source = fields.get("institution_from_id", "")
        if source not in INSTITUTIONS:
            errors["institution_from_id"] = ["The selected institution from id is invalid."]
        target = fields.get("institution_to_id") or None
        if target is not None and target not in INSTITUTIONS:
            errors["institution_to_id"] = ["The selected institution to id is invalid."]
        with self.lock:
            complaint = self.world.get(fields.get("complaint_id"))
            if complaint is None:
                return _not_found()
            if errors:
                return _fail(422, "The given data was invalid.", errors)
            now = self.clock.now()
            doc_ids = [self.world.add_doc(name, ctype, data, now)["id"] for name, ctype, data in contents]
            record = self.world.add_follow_up(
                complaint, institution_from=source, institution_to=target, content=fields["content"], now=now,
                source="api", is_secret=1 if fields.get("is_secret") == "1" else 0,
                rating=int(fields["rating"]) if fields.get("rating", "").isdigit() else 0,
                template_code=fields.get("template_code", ""), attachments=doc_ids)
            return _ok({"data": {"id": record["id"], "complaint_id": complaint.id,
                                 "created_at": peer_time(record["created_at"])}})

    async def _institutions(self, request: web.Request) -> web.Response:
        try:
            page_size = int(request.query.get("page_size", "10"))
            page = int(request.query.get("page", "1"))
        except ValueError:
            page_size = page = 0
        if not (1 <= page_size <= 1000 and page >= 1):
            return _fail(422, "The given data was invalid.", {"page_size": ["The page size must be 1 to 1000."]})
        return _ok(self.world.institutions_view(page, page_size))

    async def _templates(self, request: web.Request) -> web.Response:
        return _ok({"data": [dict(t) for t in TEMPLATES]})

    # -- the simulated people -------------------------------------------------------------------

    def tick(self) -> None:
        """The hub's officers act once, at the clock's time: without ``change_rate_per_hour``
        each open complaint gets a roll (:meth:`World.officers_act`); with it, the change
        model changes that share of the open complaints per simulated hour since the
        last tick (:meth:`World.change_some`). What they change is recorded (:meth:`changes`)."""
        with self.lock:
            now = self.clock.now()
            since, self._changes_since = self._changes_since, max(now, self._changes_since)
            if not self.officers_active:
                return
            unknown = UNKNOWN_STATUS_CODE if self.faults.settings.unknown_status_codes else None
            before = self.world.unknown_status_changes
            if self.change_rate_per_hour is None:
                self.world.officers_act(self._rng, now, unknown_status=unknown)
            else:
                hours = max(0.0, (now - since).total_seconds() / 3600)
                expected = self.change_rate_per_hour * hours * self.world.open_count()
                count = int(expected) + (1 if self._change_rng.random() < expected - int(expected) else 0)
                self.world.change_some(self._change_rng, now, count, unknown_status=unknown)
            if self.world.unknown_status_changes > before:
                self.faults.count("unknown_statuses", self.world.unknown_status_changes - before)

    def quiesce(self) -> None:
        """Stop the officers (and the change model) from acting (the world stays as it is)."""
        with self.lock:
            self.officers_active = False

    def resume(self) -> None:
        """The officers act again; the change model counts its hours from now."""
        with self.lock:
            self.officers_active = True
            self._changes_since = max(self.clock.now(), self._changes_since)

    def set_change_rate(self, change_rate_per_hour: float | None) -> None:
        """Change (or with None, turn off) the change model at run time; it counts its
        hours from now."""
        with self.lock:
            self.change_rate_per_hour = self._check_rate(change_rate_per_hour)
            self._changes_since = max(self.clock.now(), self._changes_since)

    # -- benchmarks -----------------------------------------------------------------------------

    def preload(self, tags: list[str], *, at: datetime | None = None, user_id: str = "58231",
                disposition_id: str | None = GATEWAY_INSTITUTION_ID) -> list[int]:
        """Put one complaint per ``tags_raw`` string at the hub at once, as if the gateway had
        created them through the API (status ``wait``, one log entry, at ``at`` or now;
        category and channel seeded), and return their hub ids in order. Nothing is
        counted as a request. 100,000 take about a second."""
        with self.lock:
            return self.world.preload(list(tags), at or self.clock.now(), self._preload_rng, user_id=user_id,
                                      disposition_id=disposition_id)

    def changes(self, since: int = 0) -> list[dict[str, Any]]:
        """What the simulated people changed on :meth:`tick`, in order, from position
        ``since``: ``{"complaint_id": int, "kind": "status" | "follow_up", "ref": str (the
        log or follow-up id, as the adapter reads it), "at": datetime (UTC, simulated),
        "status": str (status changes only)}``."""
        with self.lock:
            return [dict(change) for change in self.world.changes[since:]]

    # -- inspection -----------------------------------------------------------------------------

    def demo_environment(self) -> dict[str, str]:
        return {"SP4N_AUTHORIZATION": self.authorization, "SP4N_TOKEN": self.token}

    def complaints(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.world.summary(c) for _, c in sorted(self.world.complaints.items())]

    def _complaint(self, complaint_id: Any) -> SimComplaint:
        complaint = self.world.get(complaint_id)
        if complaint is None:
            raise KeyError(f"no complaint {complaint_id!r} in the simulator")
        return complaint

    def follow_ups(self, complaint_id: Any) -> list[dict[str, Any]]:
        """A complaint's follow-ups (times as UTC; ``source`` is ``officer`` or ``api``)."""
        with self.lock:
            return self.world.copies(self._complaint(complaint_id).followups)

    def logs(self, complaint_id: Any) -> list[dict[str, Any]]:
        """A complaint's status log (times as UTC)."""
        with self.lock:
            return self.world.copies(self._complaint(complaint_id).logs)

    def documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{k: v for k, v in d.items() if k != "data"} for _, d in sorted(self.world.docs.items())]

    def counts(self) -> dict[str, Any]:
        """The world's counts (``forwards`` and ``rejects`` through the API, ``changes`` made
        on tick()), ``requests`` (every request but the control endpoints'), ``unauthorized``
        and ``requests_by_route`` (``"GET /complaints/{id}/complaint"``: n, by the route
        template a request matched; ``"GET (no route)"`` for an unknown path)."""
        with self.lock:
            return {
                "complaints": len(self.world.complaints),
                "open_complaints": self.world.open_count(),
                "follow_ups_by_officers": self.world.follow_ups_by_officers,
                "follow_ups_from_gateway": self.world.follow_ups_from_gateway,
                "status_changes": self.world.status_changes,
                "forwards": self.world.forwards,
                "rejects": self.world.rejects,
                "changes": len(self.world.changes),
                "requests": self._requests,
                "unauthorized": self._unauthorized,
                "requests_by_route": dict(self._by_route),
            }


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> Sp4nSimulator:
    """The entry point of ``lapor_gateway.simulators``; ``options`` are ``authorization``,
    ``token``, ``change_rate_per_hour`` (None: the officers roll for every open complaint on
    each tick; a number from 0: that share of the open complaints gets one change per
    simulated hour) and ``faults`` (a dict of :class:`gateway.simulation.FaultSettings` values)."""
    return Sp4nSimulator(seed=seed, clock=clock, **options)

