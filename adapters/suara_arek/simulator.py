"""A simulated Suara Arek (Kota Malang's complaint app) served over real HTTP.

The API is the one in ``docs/suara-arek-api.md``, a dialect unlike Lapor Hendi's:
OAuth2 client-credentials tokens that live two minutes, a changes feed ordered by
modification with an opaque cursor, ISO times with offsets, English field names with
Indonesian state names, responses (follow-ups) only per report, and only the current
state of a report (no history). Officers act when :meth:`SuaraArekSimulator.tick` runs.
Seeded: the same seed, clocks and calls give the same world.

Token lifetimes run on ``token_clock``, real time by default: ``gateway simulate`` runs
the world's clock hundreds of times faster, and a token must still last two minutes of
the client's time. Tests pass a clock that moves only when told.

Faults (``docs/simulators.md``): the generic ones of :class:`gateway.simulation.Faults`
in the app's error envelope; a lost answer can hit ``POST /v2/reports/{id}/responses``
and ``PUT /v2/reports/{id}/state`` (committed, then the connection is closed).
``drift_rate`` serves a report of the feed with a field missing or malformed;
``page_shift_rate`` starts a feed page one report early (the last report of the page
before, again), never later; ``unknown_status_codes`` makes officers use a state
outside the documented four.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import BasicAuth, web

from gateway.simulation import SimClock, Simulator
from lapor_gateway_adapters.lapor_hendi.simulator import content_disposition
from lapor_gateway_adapters.suara_arek._world import SuaraArekWorld, WorldError, show_time

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "SuaraArekSimulator", "create_simulator"]

DEFAULT_CLIENT_ID = "lapor-gateway"
DEFAULT_CLIENT_SECRET = "demo-suara-arek-secret"
ENV_CLIENT_ID, ENV_CLIENT_SECRET = "SUARA_AREK_CLIENT_ID", "SUARA_AREK_CLIENT_SECRET"
TOKEN_SECONDS = 120
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_KEY_CHARS = 255
REPORT = "/v2/reports/{id}"
CLIENT_ID = web.RequestKey("client_id", str)  # who the bearer token was issued to

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fail(http_status: int, error: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=http_status, headers=headers)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"sa1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The change number behind a cursor; ``WorldError`` (400) for anything this app did not issue."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        tag, _, number = raw.partition(":")
        if tag != "sa1" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise WorldError(400, "invalid_cursor", "cursor is not one this API issued") from None


def show(record: dict[str, Any]) -> dict[str, Any]:
    """A stored report or response as the API shows it (a copy without internals, times in WIB)."""
    shown = {k: v for k, v in record.items() if k != "seq"}
    for key in ("created_at", "updated_at", "state_changed_at"):
        if key in shown:
            shown[key] = show_time(shown[key])
    copied: dict[str, Any] = json.loads(json.dumps(shown))  # a deep copy: nothing served aliases the world
    return copied


class SuaraArekSimulator(Simulator):
    name = "suara_arek"
    default_port = 8704
    commit_then_drop_routes = frozenset({("POST", f"{REPORT}/responses"), ("PUT", f"{REPORT}/state")})

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: SimClock | None = None,
        token_clock: SimClock | None = None,
        clients: Mapping[str, str] | None = None,
        initial_reports: int = 0,
        reports_per_tick: float = 1.0,
        act_probability: float = 0.15,
        faults: Mapping[str, Any] | None = None,
    ):
        super().__init__(seed=seed, clock=clock, faults=faults)
        self.token_clock = token_clock or SimClock(speed=1.0)
        self.clients = dict(clients or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
        self.reports_per_tick = reports_per_tick
        self.act_probability = act_probability
        self.officers_active = True
        self.world = SuaraArekWorld(random.Random(seed))
        self._token_rng = random.Random(f"tokens:{seed}")
        self._tokens: dict[str, tuple[str, float]] = {}  # access token -> (client_id, expiry on token_clock)
        self._idempotent: dict[tuple[str, str], tuple[str, int, Any]] = {}  # (client, key) -> (what, status, body)
        self._counts = {"requests": 0, "tokens_issued": 0, "unauthorized": 0, "idempotent_replays": 0}
        if int(initial_reports) < 0:
            raise ValueError("initial_reports must not be negative")
        with self.lock:
            now = self.clock.now()
            for i in range(int(initial_reports)):
                self.world.submit(now - (int(initial_reports) - i) * timedelta(minutes=10))

    # --- the simulated people ---------------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            if self.officers_active:
                self.world.tick(
                    self.clock.now(),
                    reports_per_tick=self.reports_per_tick,
                    act_probability=self.act_probability,
                    unknown_state=self.faults.settings.unknown_status_codes,
                )

    def submit_report(self, **overrides: Any) -> str:
        with self.lock:
            return self.world.submit(self.clock.now(), **overrides)

    def respond(self, report_id: str, message: str, *, unit: str = "Dinas PUPR Kota Malang") -> int:
        """An officer answers a report now; returns the response id."""
        with self.lock:
            return int(
                self.world.add_response(report_id, message, {"type": "officer", "name": unit}, self.clock.now())["id"]
            )

    def set_state(self, report_id: str, state: str, note: str | None = None) -> None:
        """An officer sets a report's state now (any text, so tests can use unknown ones)."""
        with self.lock:
            by = {"type": "officer", "name": "Admin Suara Arek"}
            self.world.set_state(report_id, state, note, by, self.clock.now(), known=False)

    # --- inspection ------------------------------------------------------------------------

    def reports(self) -> list[dict[str, Any]]:
        with self.lock:
            return [show(r) for r in self.world.all()]

    def responses(self, report_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [show(r) for r in self.world.responses(report_id)]

    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {**self.world.counts(), **self._counts}

    def demo_environment(self) -> dict[str, str]:
        client_id, secret = next(iter(self.clients.items()))
        return {ENV_CLIENT_ID: client_id, ENV_CLIENT_SECRET: secret}

    # --- HTTP -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = self.make_app(outer=[self._count], inner=[self._check_token], client_max_size=32 * 1024 * 1024)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/v2/reports/changes", self._changes)  # before {id}: routes match in order
        app.router.add_get(REPORT, self._report)
        app.router.add_get(f"{REPORT}/responses", self._responses)
        app.router.add_post(f"{REPORT}/responses", self._post_response)
        app.router.add_put(f"{REPORT}/state", self._put_state)
        app.router.add_get("/v2/attachments/{id}", self._attachment)
        return app

    def fault_answer(self, status: int, message: str, headers: dict[str, str]) -> web.StreamResponse:
        return fail(status, "rate_limited" if status == 429 else "server_error", message, headers)

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self.lock:
            self._counts["requests"] += 1
        return await handler(request)

    @web.middleware
    async def _check_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/oauth/token":
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            found = self._tokens.get(token) if scheme.lower() == "bearer" else None
            expired = found is not None and self.token_clock.now().timestamp() >= found[1]
            if found is None or expired:
                self._counts["unauthorized"] += 1
        if found is None or expired:
            why = "the access token expired" if expired else "a valid Bearer access token is required"
            challenge = f'Bearer realm="suara-arek", error="invalid_token", error_description="{why}"'
            return fail(401, "invalid_token", why, {"WWW-Authenticate": challenge})
        request[CLIENT_ID] = found[0]
        missing = request.match_info.http_exception
        if missing is not None:  # the app's envelope, not aiohttp's text page
            return fail(missing.status, "not_found", f"{request.method} {request.path} is not an endpoint of this API")
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        """RFC 6749 4.4: client credentials in an HTTP Basic header or in the form."""
        form = await request.post()
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                auth = BasicAuth.decode(basic)
                client_id, secret = auth.login, auth.password
            except ValueError:
                return web.json_response(
                    {"error": "invalid_request", "error_description": "bad Basic header"}, status=400
                )
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"},
                status=400,
            )
        known = self.clients.get(client_id) if isinstance(client_id, str) else None
        if known is None or not isinstance(secret, str) or not hmac.compare_digest(known.encode(), secret.encode()):
            return web.json_response(
                {"error": "invalid_client", "error_description": "unknown client or wrong secret"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="suara-arek"'},
            )
        with self.lock:
            token = f"sat_{self._token_rng.getrandbits(128):032x}"
            self._tokens[token] = (str(client_id), self.token_clock.now().timestamp() + TOKEN_SECONDS)
            self._counts["tokens_issued"] += 1
        body = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}
        return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _drift(self, report: dict[str, Any]) -> dict[str, Any]:
        if not self.faults.roll(self.faults.settings.drift_rate):
            return report
        self.faults.count("drifted")
        how = self.faults.choice(("updated_at", "state", "location"))
        if how == "updated_at":
            report["updated_at"] = report["updated_at"][:19]  # the offset lost
        elif how == "state":
            report.pop("state", None)
        else:
            report["location"] = report["location"]["address"]  # a string instead of the object
        return report

    async def _changes(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            after = decode_cursor(query["cursor"]) if query.get("cursor") else 0
            limit = int(query.get("limit") or DEFAULT_LIMIT)
        except WorldError as exc:
            return fail(exc.http_status, exc.error, exc.message)
        except ValueError:
            return fail(400, "invalid_parameter", f"limit must be a whole number from 1 to {MAX_LIMIT}")
        if not 1 <= limit <= MAX_LIMIT:
            return fail(400, "invalid_parameter", f"limit must be a whole number from 1 to {MAX_LIMIT}")
        with self.lock:
            shift = after > 0 and self.faults.roll(self.faults.settings.page_shift_rate)
            if shift:
                self.faults.count("shifted_pages")
            found, last, more = self.world.changes(after, limit, repeat_last=shift)
            data = [self._drift(show(r)) for r in found]
        return web.json_response({"data": data, "next_cursor": encode_cursor(last), "has_more": more})

    async def _report(self, request: web.Request) -> web.Response:
        try:
            with self.lock:
                return web.json_response(show(self.world.get(request.match_info["id"])))
        except WorldError as exc:
            return fail(exc.http_status, exc.error, exc.message)

    async def _responses(self, request: web.Request) -> web.Response:
        try:
            with self.lock:
                return web.json_response({"data": [show(r) for r in self.world.responses(request.match_info["id"])]})
        except WorldError as exc:
            return fail(exc.http_status, exc.error, exc.message)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise WorldError(400, "invalid_json", "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise WorldError(400, "invalid_json", "the body must be a JSON object")
        return body

    async def _post_response(self, request: web.Request) -> web.Response:
        """A client's response; with an ``Idempotency-Key`` header, a repeat of the same write
        answers the first answer again (and ``Idempotent-Replayed: true``) and writes nothing."""
        client, key = request[CLIENT_ID], request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= MAX_KEY_CHARS and key.isprintable() and key.isascii()):
            return fail(400, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII")
        try:
            body = await self._json(request)
            what = json.dumps([request.match_info["id"], body], sort_keys=True)
            with self.lock:
                if key is not None and (client, key) in self._idempotent:
                    first, status, answer = self._idempotent[(client, key)]
                    if first != what:
                        return fail(422, "idempotency_key_reused", "this Idempotency-Key was used for another write")
                    self._counts["idempotent_replays"] += 1
                    return web.json_response(answer, status=status, headers={"Idempotent-Replayed": "true"})
                author = {"type": "client", "client_id": client, "name": body.get("author_name") or client}
                response = self.world.add_response(
                    request.match_info["id"], body.get("message"), author, self.clock.now(), body.get("attachments")
                )
                answer = show(response)
                if key is not None:
                    self._idempotent[(client, key)] = (what, 201, answer)
        except WorldError as exc:
            return fail(exc.http_status, exc.error, exc.message)
        return web.json_response(answer, status=201)

    async def _put_state(self, request: web.Request) -> web.Response:
        """Naturally idempotent: the same state and note again change nothing (updated_at stays)."""
        try:
            body = await self._json(request)
            by = {"type": "client", "client_id": request[CLIENT_ID]}
            with self.lock:
                self.world.set_state(
                    request.match_info["id"], body.get("state"), body.get("note"), by, self.clock.now()
                )
                return web.json_response(show(self.world.get(request.match_info["id"])))
        except WorldError as exc:
            return fail(exc.http_status, exc.error, exc.message)

    async def _attachment(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        with self.lock:
            found = self.world.file(int(ident)) if ident.isdigit() else None
        if found is None:
            return fail(404, "not_found", "no attachment with this id")
        name, kind, data = found
        return web.Response(body=data, content_type=kind, headers={"Content-Disposition": content_disposition(name)})


def create_simulator(*, seed: int = 0, clock: SimClock | None = None, **options: Any) -> SuaraArekSimulator:
    """Entry point of ``lapor_gateway.simulators``. Options: ``token_clock`` (the clock tokens
    expire on; real time by default), ``clients`` (client_id -> client_secret; default
    ``lapor-gateway`` / ``demo-suara-arek-secret``), ``initial_reports`` (0: filed ten minutes
    apart before now, all menunggu), ``reports_per_tick`` (1.0), ``act_probability`` (0.15:
    each open report's chance per tick of an officer's next step), ``faults``."""
    return SuaraArekSimulator(seed=seed, clock=clock, **options)
