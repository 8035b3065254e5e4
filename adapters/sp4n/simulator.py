"""A simulator of LAPOR!-SP4N, the LAPOR! v3.0.0 integration API as it goes over the wire,
for the demo, the tests and the benchmarks.

Built from ``reference/lapor-v3.md`` (what the one public client of the real API sends
and reads, item by item, seen / inferred / unknown), not from our adapter. Seen there,
and served so:

- auth: a header whose **name** is configurable (``auth_header``, default
  ``Authorization``) and whose value must equal ``authorization`` **exactly** (no
  ``Bearer`` prefix added or accepted), and ``token: <token>`` on every call;
- a Laravel app's answers: with ``Accept: application/json`` errors are JSON (422
  ``{"message": "The given data was invalid.", "errors": {field: [..]}}``, others
  ``{"message": ...}``, with ``"success": false`` beside); **without** it every 4xx is
  what a browser gets, ``302`` with a ``Location`` (``<base>/login`` for a 401, the
  ``Referer`` or ``<base>/`` otherwise) and a small HTML body. Successes are JSON either
  way. Requests without a JSON ``Accept`` are counted (``counts()["missing_accept"]``);
- ``POST /complaints/complaint/file`` (multipart ``attachments[]``, answer
  ``results.docs[].id``), ``POST /complaints/complaint`` and ``/complaints/complaint-lmw``
  (a JSON body with the client's keys and JSON types, checked as Laravel would; the new
  id at ``complaint_id``, ``data.complaint_id`` or ``data.results.complaint.id``, chosen
  per request by a seeded RNG), ``POST /complaints/process/{id}/reject`` (JSON; with
  ``not_authority`` 1, ``reason`` is the target institution id: a forward),
  ``GET /complaints/{id}/complaint`` (``results.data`` and ``results.data_logs``: logs
  whose ``content`` is a template and whose ``data`` is a JSON-encoded string),
  ``GET /complaints/{id}/followups`` (``results.data[]``), ``POST /complaints/followup/add``
  (multipart, string fields, files as ``attachment[0]``...), ``GET
  /masters/institutions/external`` and ``GET /masters/templates`` (``results.data[]``);
- times as ``d-m-Y H:i:s`` in WIB without an offset; no change feed, no idempotency key,
  no search by reference.

Our choices for what the reference marks unknown (documented in ``docs/simulators.md``):
the status codes (small integers: only names are seen), the logs' ``id`` and
``created_at``, the follow-ups' field names beyond ``created_at`` and ``content`` and
their ``attachments``, ``GET /complaints/file/{doc_id}`` to download a document, the
answers of the forward and of the follow-up add, and the hub's location ids beyond the
three seen.

A body in another format than its endpoint's (a form to a JSON endpoint, JSON to a
multipart one) is read as no input at all, as a Laravel app reading that format would,
so it is refused with 422 naming the required fields.

:meth:`Sp4nSimulator.tick` lets the hub's officers verify, dispose, hold, answer and
close complaints in simulated time; :meth:`Sp4nSimulator.act` and
:meth:`Sp4nSimulator.officer_follow_up` let a test make one officer's change.

Faults on demand (see ``docs/simulators.md``): the generic ones of
:class:`gateway.simulation.Faults` run after the request is counted and before auth is
checked; a lost answer can hit the creates and ``POST /complaints/followup/add`` (the
complaint or follow-up is committed, then the connection is closed). The hub's own:
``drift_rate`` serves a read with a history log whose ``data`` is not valid JSON, a log
without ``data``, no ``data_logs`` at all, or ``results.data`` without ``status_name``,
and follow-ups with a field missing or malformed (transient); ``unknown_status_codes``
makes the officers' new status changes set ``Koordinasi`` (persistent). Two quirks of
the "2xx that is not a success" kind are options (and :meth:`Sp4nSimulator.set_quirks`):
``no_id_rate`` (a create committed, answered 200 without an id) and
``false_success_rate`` (a follow-up add not committed, answered 200
``{"success": "false"}``).

For benchmarks: :meth:`Sp4nSimulator.preload` puts many complaints at the hub at
once (as if the gateway had created them), ``change_rate_per_hour`` replaces the
officers' per-complaint rolls by a change model of a given rate, and
:meth:`Sp4nSimulator.changes` lists what changed when, so that the delay until the
gateway carried each change to the local app can be measured.
"""

from __future__ import annotations

import hmac
import html
import json
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.simulation import CONTROL_PREFIX, SimClock, Simulator
from lapor_gateway_adapters.sp4n._world import (
    COMPLAINT_ID_PATHS,
    GATEWAY_INSTITUTION_ID,
    INSTITUTIONS,
    TEMPLATE_CODES,
    TEMPLATES,
    UNKNOWN_STATUS_NAME,
    Rules,
    SimComplaint,
    ValidationFailed,
    World,
)

__all__ = [
    "DEFAULT_AUTHORIZATION",
    "DEFAULT_TOKEN",
    "DEFAULT_USER_ID",
    "INTEGRATOR_TEMPLATE_CODE",
    "Sp4nSimulator",
    "create_simulator",
]

DEFAULT_AUTHORIZATION = "demo-sp4n-authorization"
DEFAULT_TOKEN = "5f0c2a9e-3b7d-4c1e-9a61-2d8e7f4b1c30"
DEFAULT_USER_ID = "58231"
INTEGRATOR_TEMPLATE_CODE = "reply_gateway"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
INVALID = "The given data was invalid."
#: How a drifted follow-up is served: which field goes missing or malformed.
FOLLOW_UP_DRIFTS = ("content", "created_at", "id", "attachments")
#: How a drifted read is served (one per read).
READ_DRIFTS = ("log_data_invalid", "log_without_data", "no_data_logs", "no_status_name")
#: The 200 answers of a create under the ``no_id_rate`` quirk: committed, no usable id.
NO_ID_ANSWERS: tuple[dict[str, Any], ...] = (
    {},
    {"complaint_id": 0},
    {"success": True, "message": "Laporan berhasil dibuat"},
    {"data": {"complaint_id": None}},
)
QUIRKS = ("no_id_rate", "false_success_rate")
_ATTACHMENT_PART = re.compile(r"attachment\[(\d*)\]\Z")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HubError(Exception):
    """An error answer: rendered as JSON or as a browser's redirect by :meth:`Sp4nSimulator._render`."""

    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def _invalid(errors: dict[str, list[str]]) -> HubError:
    return HubError(422, INVALID, errors)


def _not_found() -> HubError:
    return HubError(404, "Data not found")


def _accepted(request: web.Request) -> list[str]:
    """The media types of ``Accept``, most acceptable first (by quality, then order)."""
    types = []
    for position, part in enumerate(request.headers.get("Accept", "").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        types.append((-quality, position, media.lower()))
    return [media for _, _, media in sorted(types)]


def asks_for_json(request: web.Request) -> bool:
    """Laravel's ``wantsJson()``: the most acceptable type of ``Accept`` is JSON (``.../json``
    or ``...+json``), as the client's ``Accept: application/json``."""
    types = _accepted(request)
    return bool(types) and ("/json" in types[0] or "+json" in types[0])


def wants_json(request: web.Request) -> bool:
    """Laravel's ``expectsJson()``: :func:`asks_for_json`, or an XMLHttpRequest that accepts anything."""
    if asks_for_json(request):
        return True
    types = _accepted(request)
    ajax = request.headers.get("X-Requested-With", "") == "XMLHttpRequest"
    return ajax and (not types or types[0] in ("*/*", "*"))


def _redirect_html(location: str) -> str:
    """Symfony's RedirectResponse body, as a Laravel app sends it."""
    url = html.escape(location)
    return (
        f'<!DOCTYPE html>\n<html>\n    <head>\n        <meta charset="UTF-8" />\n'
        f'        <meta http-equiv="refresh" content="0;url=\'{url}\'" />\n\n'
        f"        <title>Redirecting to {url}</title>\n    </head>\n"
        f'    <body>\n        Redirecting to <a href="{url}">{url}</a>.\n    </body>\n</html>'
    )


def _ok(results: dict[str, Any], message: str = "OK") -> web.Response:
    return web.json_response({"success": True, "message": message, "results": results})


def route_key(request: web.Request) -> str:
    """``"GET /complaints/{id}/complaint"``: the method and the route template a request
    matched (``"GET (no route)"`` for an unknown path), for ``counts()["requests_by_route"]``."""
    resource = getattr(getattr(request.match_info, "route", None), "resource", None)
    return f"{request.method} {getattr(resource, 'canonical', None) or '(no route)'}"


def _create_answer(complaint_id: int, path: tuple[str, ...]) -> dict[str, Any]:
    answer: dict[str, Any] = {"success": True, "message": "Laporan berhasil dibuat"}
    node = answer
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = complaint_id
    return answer


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a request; ``{}`` (no input) when the body is not JSON."""
    ctype = request.content_type.lower()
    if not (ctype == "application/json" or ctype.endswith("+json")):
        return {}
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _check_rate(name: str, rate: Any) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(rate, bool) or not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number from 0 to 1, got {rate!r}")
    return value


def _mime_of(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg", "jpg"
    return "application/octet-stream", "bin"


class Sp4nSimulator(Simulator):
    """The hub. Options: ``authorization``, ``token``, ``auth_header`` (the header carrying
    ``authorization``), ``user_id`` (the integrator's account: the only ``user_id`` a create
    or a follow-up add may carry), ``integrator_template_code`` (accepted as a follow-up's
    ``template_code`` besides the codes of the templates), ``path_prefix`` (served under it,
    as the SPLP gateway's ``.../lapor/3.0.0``), ``no_id_rate`` and ``false_success_rate``
    (quirks, 0 to 1), ``change_rate_per_hour`` and ``faults``."""

    name = "sp4n"
    default_port = 8702
    commit_then_drop_routes = frozenset(
        {("POST", "/complaints/complaint"), ("POST", "/complaints/complaint-lmw"), ("POST", "/complaints/followup/add")}
    )

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        authorization: str = DEFAULT_AUTHORIZATION,
        token: str = DEFAULT_TOKEN,
        auth_header: str = "Authorization",
        user_id: str = DEFAULT_USER_ID,
        integrator_template_code: str = INTEGRATOR_TEMPLATE_CODE,
        path_prefix: str = "",
        no_id_rate: float = 0.0,
        false_success_rate: float = 0.0,
        change_rate_per_hour: float | None = None,
        faults: Mapping[str, Any] | None = None,
    ):
        super().__init__(seed=seed, clock=clock, faults=faults)
        if not str(auth_header).strip():
            raise ValueError("auth_header must name a header")
        self.authorization = authorization
        self.token = token
        self.auth_header = str(auth_header).strip()
        self.user_id = str(user_id)
        self.integrator_template_code = integrator_template_code
        self.path_prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self.commit_then_drop_routes = frozenset(  # type: ignore[misc]  # an instance's, with its prefix
            (method, self.path_prefix + route) for method, route in type(self).commit_then_drop_routes
        )
        self._quirks = {
            "no_id_rate": _check_rate("no_id_rate", no_id_rate),
            "false_success_rate": _check_rate("false_success_rate", false_success_rate),
        }
        self.world = World(extras_rng=random.Random(f"sp4n-extras-{seed}"))
        self.officers_active = True
        self.middlewares: list[Any] = []  # extra aiohttp middlewares, inside the faults, outermost first
        self._rng = random.Random(seed)  # the officers
        self._answer_rng = random.Random(f"sp4n-answers-{seed}")  # per-request id placement
        self._quirk_rng = random.Random(f"sp4n-quirks-{seed}")  # the quirks (drawn only while on)
        self._change_rng = random.Random(f"sp4n-changes-{seed}")  # the change model
        self._preload_rng = random.Random(f"sp4n-preload-{seed}")
        self.change_rate_per_hour = self._check_rate(change_rate_per_hour)
        self._changes_since = self.clock.now()  # the change model has run up to here
        self._requests = 0
        self._unauthorized = 0
        self._missing_accept = 0
        self._no_id_answers = 0
        self._false_successes = 0
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

    # -- quirks ---------------------------------------------------------------------------------

    def set_quirks(
        self, *, no_id_rate: float | None = None, false_success_rate: float | None = None
    ) -> dict[str, float]:
        """Change the quirks at run time (None leaves one as it is); returns those in force.
        ``no_id_rate``: a create is committed and answered 200 without an id (``{}``,
        ``{"complaint_id": 0}``, ...); ``false_success_rate``: a follow-up add is not committed
        and answered 200 ``{"success": "false", "message": ...}``. ``ValueError`` outside 0..1."""
        given = {"no_id_rate": no_id_rate, "false_success_rate": false_success_rate}
        checked = {name: _check_rate(name, rate) for name, rate in given.items() if rate is not None}
        with self.lock:
            self._quirks.update(checked)
            return dict(self._quirks)

    @property
    def quirks(self) -> dict[str, float]:
        with self.lock:
            return dict(self._quirks)

    def _quirk(self, name: str) -> bool:
        rate = self._quirks[name]
        return rate > 0 and self._quirk_rng.random() < rate

    # -- the HTTP face --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = self.make_app(
            outer=[self._count], inner=[*self.middlewares, self._auth], client_max_size=MAX_UPLOAD_BYTES
        )
        p = self.path_prefix
        app.add_routes(
            [
                web.post(p + "/complaints/complaint/file", self._upload),
                web.post(p + "/complaints/complaint", self._create),
                web.post(p + "/complaints/complaint-lmw", self._create),
                web.post(p + "/complaints/process/{id}/reject", self._reject),
                web.get(p + "/complaints/file/{doc_id}", self._document),
                web.get(p + "/complaints/{id}/complaint", self._read),
                web.get(p + "/complaints/{id}/followups", self._follow_ups),
                web.post(p + "/complaints/followup/add", self._add_follow_up),
                web.get(p + "/masters/institutions/external", self._institutions),
                web.get(p + "/masters/templates", self._templates),
            ]
        )
        app.router.add_get(f"{CONTROL_PREFIX}quirks", self._get_quirks)
        app.router.add_post(f"{CONTROL_PREFIX}quirks", self._post_quirks)
        return app

    async def _get_quirks(self, request: web.Request) -> web.Response:
        """``GET /_sim/quirks`` (a control endpoint: no faults, no auth, not counted)."""
        counts = self.counts()
        return web.json_response(
            {
                "quirks": self.quirks,
                "no_id_answers": counts["no_id_answers"],
                "false_successes": counts["false_successes"],
            }
        )

    async def _post_quirks(self, request: web.Request) -> web.Response:
        """``POST /_sim/quirks`` with ``{"no_id_rate": 0.1, "false_success_rate": 0}``; 400
        ``{"error": ...}`` for anything else (then nothing is changed)."""
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) - set(QUIRKS):
            return web.json_response({"error": f"the body must be a JSON object of {', '.join(QUIRKS)}"}, status=400)
        try:
            self.set_quirks(**body)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._get_quirks(request)

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        response = web.json_response({"success": False, "message": message}, status=status)
        response.headers.update(headers)
        return response

    def _render(self, request: web.Request, error: HubError) -> web.Response:
        """An error as a Laravel app answers it: JSON to a client that asks for JSON, else a
        302 redirect (to the login page for a 401, back otherwise) with a small HTML body."""
        if wants_json(request):
            body: dict[str, Any] = {"success": False, "message": error.message}
            if error.errors:
                body["errors"] = error.errors
            return web.json_response(body, status=error.status)
        base = f"{request.scheme}://{request.host}{self.path_prefix}"
        location = f"{base}/login" if error.status == 401 else request.headers.get("Referer") or f"{base}/"
        return web.Response(
            status=302,
            headers={"Location": location},
            text=_redirect_html(location),
            content_type="text/html",
            charset="utf-8",
        )

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_key(request)
        with self.lock:
            self._requests += 1
            self._by_route[route] = self._by_route.get(route, 0) + 1
            if not asks_for_json(request):
                self._missing_accept += 1
        try:
            return await handler(request)
        except HubError as error:
            return self._render(request, error)
        except web.HTTPException as exc:
            if 400 <= exc.status < 500:  # unknown path (404), method (405), a body too large (413)
                message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status, exc.reason)
                return self._render(request, HubError(exc.status, message))
            raise

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get(self.auth_header)
        token = request.headers.get("token")
        if not (
            given is not None
            and token is not None
            and hmac.compare_digest(given.encode(), self.authorization.encode())
            and hmac.compare_digest(token.encode(), self.token.encode())
        ):
            with self.lock:
                self._unauthorized += 1
            raise HubError(401, "Unauthenticated.")
        return await handler(request)

    async def _upload(self, request: web.Request) -> web.Response:
        """Multipart, one part per file named ``attachments[]`` (seen); answer ``results.docs``
        (``id`` seen; ``filename``, ``mime``, ``size`` ours)."""
        parts = (
            (await request.post()).getall("attachments[]", []) if request.content_type == "multipart/form-data" else []
        )
        files = [f for f in parts if isinstance(f, web.FileField)]
        if not files:
            raise _invalid({"attachments": ["The attachments field is required."]})
        if len(files) != len(parts):
            raise _invalid({"attachments": ["The attachments must be files."]})
        contents = [(f.filename, f.content_type, f.file.read()) for f in files]
        with self.lock:
            now = self.clock.now()
            docs = [self.world.add_doc(name, ctype, data, now)["id"] for name, ctype, data in contents]
            return _ok({"docs": [self.world.doc_view(d) for d in docs]})

    async def _create(self, request: web.Request) -> web.Response:
        """The JSON create: validated by :meth:`World.create`; the id at one of
        :data:`COMPLAINT_ID_PATHS` (or none at all under the ``no_id_rate`` quirk)."""
        payload = await _json_body(request)
        with self.lock:
            try:
                complaint = self.world.create(payload, self.clock.now(), user_id=self.user_id)
            except ValidationFailed as exc:
                raise _invalid(exc.errors) from None
            answer = _create_answer(complaint.id, self._answer_rng.choice(COMPLAINT_ID_PATHS))
            if self._quirk("no_id_rate"):
                self._no_id_answers += 1
                answer = dict(self._quirk_rng.choice(NO_ID_ANSWERS))
        return web.json_response(answer)

    async def _reject(self, request: web.Request) -> web.Response:
        """``{"is_request": 1, "reason": <institution id>, "reason_description": "<text>",
        "not_authority": 1}`` (seen): a forward ("bukan wewenang") to that institution. With
        ``not_authority`` 0 (our choice: not seen), a rejection (Ditolak) for
        ``reason_description``. 404 for an unknown complaint (before anything else), 422
        naming each wrong field. The answer (ours: unknown) is ``results.data`` with the
        complaint's id, title, status and disposition."""
        with self.lock:
            if self.world.get(request.match_info["id"]) is None:
                raise _not_found()
        rules = Rules(await _json_body(request))
        rules.boolean("is_request")
        if "not_authority" not in rules.data or rules.data["not_authority"] is None:
            rules.fail("not_authority", "The not authority field is required.")
        not_authority = rules.boolean("not_authority")
        target = rules.integer("reason", required=True, known=INSTITUTIONS) if not_authority else None
        reason = rules.string("reason_description", required=True)
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                raise _not_found()
            try:
                rules.check()
            except ValidationFailed as exc:
                raise _invalid(exc.errors) from None
            now = self.clock.now()
            if not_authority:
                self.world.forward(complaint, str(target), now, reason)
                message = "Laporan berhasil diteruskan"
            else:
                self.world.reject(complaint, now, reason)
                message = "Laporan berhasil ditolak"
            return _ok({"data": self.world.complaint_data(complaint)}, message)

    async def _read(self, request: web.Request) -> web.Response:
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                raise _not_found()
            view = self.world.complaint_view(complaint)
        if self.faults.roll(self.faults.settings.drift_rate):
            self.faults.count("drifted")
            self._drift_read(view, self.faults.choice(READ_DRIFTS))
        return _ok(view)

    @staticmethod
    def _drift_read(view: dict[str, Any], how: str) -> None:
        """Serve ``view`` drifted ``how`` (:data:`READ_DRIFTS`): the newest log that has data
        with it cut short (not valid JSON) or without it, no ``data_logs``, or no ``status_name``."""
        if how == "no_status_name":
            view["data"].pop("status_name", None)
        elif how == "no_data_logs":
            view.pop("data_logs", None)
        else:
            entry = next(e for e in reversed(view["data_logs"]) if e["data"] is not None)
            if how == "log_without_data":
                del entry["data"]
            else:
                entry["data"] = entry["data"][: max(1, len(entry["data"]) // 2)]

    async def _follow_ups(self, request: web.Request) -> web.Response:
        with self.lock:
            complaint = self.world.get(request.match_info["id"])
            if complaint is None:
                raise _not_found()
            records = self.world.follow_ups_view(complaint)
        return _ok({"data": [self._drift(record) for record in records]})

    def _drift(self, record: dict[str, Any]) -> dict[str, Any]:
        """A follow-up as served: with probability drift_rate, a field missing or malformed."""
        if not self.faults.roll(self.faults.settings.drift_rate):
            return record
        self.faults.count("drifted")
        how = self.faults.choice(FOLLOW_UP_DRIFTS)
        if how == "created_at":  # a format the hub never uses
            return {**record, "created_at": record["created_at"].replace("-", "/")[:16]}
        if how == "attachments":  # a JSON-encoded string instead of a list
            return {**record, "attachments": json.dumps(record["attachments"])[:-1]}
        return {k: v for k, v in record.items() if k != how}

    async def _document(self, request: web.Request) -> web.Response:
        """A document's bytes (our choice: the real download endpoint is unknown)."""
        number = request.match_info["doc_id"]
        with self.lock:
            doc = self.world.docs.get(int(number)) if number.isdigit() else None
            if doc is None:
                raise _not_found()
            return web.Response(
                body=doc["data"],
                content_type=doc["mime"],
                headers={"Content-Disposition": f'inline; filename="{doc["filename"]}"'},
            )

    async def _add_follow_up(self, request: web.Request) -> web.Response:
        """Multipart only (seen), every field a string: ``user_id`` (the integrator's),
        ``institution_from_id``, ``institution_to_id``, ``complaint_id``,
        ``info_disposition``, ``template_code`` (one the hub issued), ``rating``,
        ``is_secret`` (0/1), ``content``, files as ``attachment[0]``, ``attachment[1]``...
        Answer (ours: unknown) ``results.data.id``."""
        fields: dict[str, Any] = {}
        files: list[tuple[int, str, str, bytes]] = []
        bad_parts: list[str] = []
        if request.content_type == "multipart/form-data":
            for key, value in (await request.post()).items():
                part = _ATTACHMENT_PART.match(key)
                if isinstance(value, web.FileField):
                    if part:  # other file parts are ignored, as a Laravel controller would
                        index = int(part.group(1)) if part.group(1) else len(files)
                        files.append((index, value.filename, value.content_type, value.file.read()))
                elif part:
                    bad_parts.append(key)
                else:
                    fields[key] = value
        rules = Rules(fields)
        for key in bad_parts:
            rules.fail(key.replace("[", ".").rstrip("]"), "The attachment must be a file.")
        account = rules.integer("user_id", required=True)
        if account is not None and str(account) != self.user_id:
            rules.fail("user_id", "The selected user id is invalid.")
        source = rules.integer("institution_from_id", required=True, known=INSTITUTIONS)
        target = rules.integer("institution_to_id", known=INSTITUTIONS)
        complaint_id = rules.integer("complaint_id", required=True)
        info = rules.string("info_disposition")
        template = rules.string("template_code", required=True)
        if template is not None and template not in TEMPLATE_CODES | {self.integrator_template_code}:
            rules.fail("template_code", "The selected template code is invalid.")
        rating = rules.integer("rating")
        secret = rules.boolean("is_secret")
        content = rules.string("content", required=True)
        with self.lock:
            complaint = self.world.get(complaint_id) if complaint_id is not None else None
            if complaint_id is not None and complaint is None:
                rules.fail("complaint_id", "The selected complaint id is invalid.")
            try:
                rules.check()
            except ValidationFailed as exc:
                raise _invalid(exc.errors) from None
            assert complaint is not None and content is not None
            if self._quirk("false_success_rate"):
                self._false_successes += 1
                return web.json_response({"success": "false", "message": "Gagal menyimpan tindak lanjut"})
            now = self.clock.now()
            doc_ids = [
                self.world.add_doc(name, ctype, data, now)["id"]
                for _, name, ctype, data in sorted(files, key=lambda f: f[0])
            ]
            record = self.world.add_follow_up(
                complaint,
                institution_from=str(source),
                institution_to=None if target is None else str(target),
                content=content,
                now=now,
                source="api",
                is_secret=int(secret),
                rating=rating or 0,
                template_code=template or "",
                attachments=doc_ids,
                info_disposition=info,
            )
            return _ok({"data": {"id": record["id"]}})

    async def _institutions(self, request: web.Request) -> web.Response:
        try:
            page_size = int(request.query.get("page_size", "10"))
            page = int(request.query.get("page", "1"))
        except ValueError:
            page_size = page = 0
        if not (1 <= page_size <= 1000 and page >= 1):
            raise _invalid({"page_size": ["The page size must be 1 to 1000."]})
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
            unknown = UNKNOWN_STATUS_NAME if self.faults.settings.unknown_status_codes else None
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

    def act(
        self, complaint_id: Any, status_name: str, reason: str | None = None, institution_to: str | None = None
    ) -> dict[str, Any]:
        """An officer's change, now: the complaint goes to ``status_name`` (a name of
        :data:`~lapor_gateway_adapters.sp4n._world.STATUS_CODES`), its disposition to ``institution_to``
        when given (Didisposisi without one: its category's agency). Ditunda, Ditolak and
        Diarsipkan carry ``reason`` (or a default; a hold's asks for more data) as
        ``reason_description``. The same status with another institution is a disposition
        log, not a status change. Recorded in :meth:`changes` when the status changed.
        Returns the log entry as :meth:`logs` shows it; ``KeyError`` for an unknown
        complaint, ``ValueError`` for an unknown status or institution or a change of nothing."""
        with self.lock:
            complaint = self._complaint(complaint_id)
            now = self.clock.now()
            entry = self.world.act(
                complaint,
                status_name,
                now,
                reason=reason,
                institution_to=None if institution_to is None else str(institution_to),
            )
            if entry["kind"] == "status":
                self.world.record(complaint, "status", entry, now)
            return self.world.log_copy(entry)

    def officer_follow_up(
        self,
        complaint_id: Any,
        content: str,
        is_secret: bool = False,
        attachments: Sequence[bytes | tuple[str, str, bytes]] = (),
        *,
        photo: bool = False,
        institution_from: str | None = None,
        template_code: str = "TL-JADWAL",
    ) -> dict[str, Any]:
        """An officer's follow-up, now, from ``institution_from`` (default: the complaint's
        disposition). ``attachments``: ``(filename, mime, bytes)`` or bare bytes (PNG or JPEG
        by their signature); ``photo`` adds a generated evidence PNG. Recorded in
        :meth:`changes`; returns the follow-up as :meth:`follow_ups` shows it."""
        files = []
        for n, item in enumerate(attachments, start=1):
            if isinstance(item, (bytes, bytearray)):
                mime, ext = _mime_of(bytes(item))
                files.append((f"lampiran_{n}.{ext}", mime, bytes(item)))
            else:
                name, mime, data = item
                files.append((name, mime, bytes(data)))
        with self.lock:
            complaint = self._complaint(complaint_id)
            record = self.world.officer_follow_up(
                complaint,
                self.clock.now(),
                content,
                institution_from=institution_from,
                template_code=template_code,
                is_secret=is_secret,
                photo=photo,
                files=files,
            )
            return self.world.copies([record])[0]

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

    def preload(
        self,
        tags: list[str],
        *,
        at: datetime | None = None,
        user_id: str | None = None,
        disposition_id: str | None = GATEWAY_INSTITUTION_ID,
    ) -> list[int]:
        """Put one complaint per ``tags_raw`` string at the hub at once, as if the gateway had
        created them through the API (Belum Terverifikasi, one log entry, at ``at`` or now;
        category and channel seeded; ``user_id`` the integrator's by default), and return
        their hub ids in order. Nothing is counted as a request. 100,000 take about a second."""
        with self.lock:
            return self.world.preload(
                list(tags),
                at or self.clock.now(),
                self._preload_rng,
                user_id=user_id or self.user_id,
                disposition_id=disposition_id,
            )

    def changes(self, since: int = 0) -> list[dict[str, Any]]:
        """What the simulated people changed (on :meth:`tick`, :meth:`act`,
        :meth:`officer_follow_up`), in order, from position ``since``: ``{"complaint_id": int,
        "kind": "status" | "follow_up", "ref": str (the log or follow-up id), "at": datetime
        (UTC, simulated)}``, and for a status change ``"status"`` (the new status **name**,
        such as ``"Terverifikasi"``) and ``"code"`` (its code)."""
        with self.lock:
            return [dict(change) for change in self.world.changes[since:]]

    # -- inspection -----------------------------------------------------------------------------

    def demo_environment(self) -> dict[str, str]:
        return {"SP4N_AUTHORIZATION": self.authorization, "SP4N_TOKEN": self.token}

    def complaints(self) -> list[dict[str, Any]]:
        """Every complaint: ``status_code`` (the hub's code, an int) and ``status_name``, the
        ids as strings, the flags 0/1, times as UTC."""
        with self.lock:
            return [self.world.summary(c) for _, c in sorted(self.world.complaints.items())]

    def _complaint(self, complaint_id: Any) -> SimComplaint:
        complaint = self.world.get(complaint_id)
        if complaint is None:
            raise KeyError(f"no complaint {complaint_id!r} in the simulator")
        return complaint

    def follow_ups(self, complaint_id: Any) -> list[dict[str, Any]]:
        """A complaint's follow-ups (times as UTC; ``source`` is ``officer`` or ``api``;
        ``attachments`` are document ids, see :meth:`documents`)."""
        with self.lock:
            return self.world.copies(self._complaint(complaint_id).followups)

    def logs(self, complaint_id: Any) -> list[dict[str, Any]]:
        """A complaint's history, every log (not only status changes): ``id``, ``kind``
        (``created``, ``status``, ``disposition``, ``note``), ``status_old`` / ``status_new``
        (status **names**, None where the log is no status change; the creation has
        ``status_new`` only), ``institution_from_id`` / ``institution_to_id`` (strings),
        ``reason`` (the ``reason_description``, or None), ``content`` (the template as
        served), ``text`` (the template filled in), ``data`` (what the served ``data``
        decodes to: a dict, or None for a note) and ``created_at`` (UTC). Before the
        simulator spoke the reference's contract, ``status_old``/``status_new`` were codes
        such as ``"wait"`` and every log was a status change."""
        with self.lock:
            return [self.world.log_copy(entry) for entry in self._complaint(complaint_id).logs]

    def documents(self) -> list[dict[str, Any]]:
        """Every document (uploads, follow-up files, officers' photos), without its bytes."""
        with self.lock:
            return [{k: v for k, v in d.items() if k != "data"} for _, d in sorted(self.world.docs.items())]

    def document(self, doc_id: int) -> bytes:
        """A document's bytes; ``KeyError`` when there is none."""
        with self.lock:
            data: bytes = self.world.docs[int(doc_id)]["data"]
            return data

    def counts(self) -> dict[str, Any]:
        """The world's counts (``forwards`` and ``rejects`` through the API, ``changes`` made
        by the simulated people), ``requests`` (every request but the control endpoints'),
        ``unauthorized``, ``missing_accept`` (requests without a JSON ``Accept``),
        ``no_id_answers`` and ``false_successes`` (the quirks), ``documents`` and
        ``requests_by_route`` (``"GET /complaints/{id}/complaint"``: n, by the route template a
        request matched; ``"GET (no route)"`` for an unknown path)."""
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
                "documents": len(self.world.docs),
                "requests": self._requests,
                "unauthorized": self._unauthorized,
                "missing_accept": self._missing_accept,
                "no_id_answers": self._no_id_answers,
                "false_successes": self._false_successes,
                "requests_by_route": dict(self._by_route),
            }


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> Sp4nSimulator:
    """The entry point of ``lapor_gateway.simulators``; ``options`` are those of
    :class:`Sp4nSimulator`: ``authorization``, ``token``, ``auth_header``, ``user_id``,
    ``integrator_template_code``, ``path_prefix``, ``no_id_rate``, ``false_success_rate``,
    ``change_rate_per_hour`` (None: the officers roll for every open complaint on each
    tick; a number from 0: that share of the open complaints gets one change per simulated
    hour) and ``faults`` (a dict of :class:`gateway.simulation.FaultSettings` values)."""
    return Sp4nSimulator(seed=seed, clock=clock, **options)
