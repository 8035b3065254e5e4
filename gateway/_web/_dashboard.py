"""The dashboard page the daemon serves at ``/dashboard``: per instance what flowed and what is
owed, the deliveries waiting for an operator, deadlines by agency, breakers and budgets, recent
errors and operator actions; in Indonesian or English (``?lang=id|en``), times in each
instance's zone. It reloads its live part every few seconds (``/dashboard/part``); scripts read
the same figures as JSON at ``/dashboard/api/summary``.

Operator actions (retry, resend, link, drop) are off unless the configuration turns them on,
and then need a sign-in with the token from the environment (see :mod:`gateway._web._sessions`
for the security model). What an operator does is audited with the name given at sign-in.

Rendering: Jinja2 with autoescape, so every value is HTML-escaped unless a template says
otherwise (none does): a value that reached the page unescaped would be a hole, and a string
template escaping by hand would have one per forgotten call.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import jinja2
import structlog
from aiohttp import web

from gateway._config import GatewayConfig
from gateway._errors import StoreUnavailableError, safe_text
from gateway._operator_name import clean_operator_name
from gateway._store import DATABASE_ERRORS, Store
from gateway._store._deadlines import DeadlineCounter
from gateway._store._operator import OperatorError, drop_delivery, link_delivery, resend_delivery, retry_delivery
from gateway._timezones import utcnow
from gateway._web._sessions import (
    IDLE_TIMEOUT,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Flash,
    Session,
    Sessions,
    SigninThrottle,
    same_origin,
    set_cookie,
    token_matches,
)
from gateway._web._summary import FLOW_KEYS, OWED_KEYS, OwnFigures, RuntimeState, build_summary
from gateway._web._texts import LANGUAGES, TEXTS

if TYPE_CHECKING:
    from gateway._engine import Engine
    from gateway._engine._async_store import AsyncStore

log = structlog.get_logger("gateway.dashboard")

HERE = Path(__file__).parent
T = TypeVar("T")

# The page loads nothing from elsewhere, runs only its own script and cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class DashboardContext:
    """What the dashboard reads and may do. ``token`` is the sign-in token for operator actions
    (``None``: none set); actions are possible only with ``operator_actions`` on and a token."""

    store: Store
    config: GatewayConfig
    clock: Callable[[], datetime] = utcnow
    runtime_state: RuntimeState | None = None
    deadline_counts: DeadlineCounter | None = None
    deadline_due_within: timedelta = timedelta(days=2)
    async_store: AsyncStore | None = None
    own_figures: OwnFigures | None = None
    operator_actions: bool = False
    token: str | None = field(default=None, repr=False)
    language: str = "id"
    refresh_seconds: int = 5
    public_origin: str | None = None

    @classmethod
    def from_config(
        cls, config: GatewayConfig, store: Store, *, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> DashboardContext:
        """The context ``settings.dashboard`` asks for, the token read from its environment variable."""
        settings = config.settings.dashboard
        token = (os.environ if environ is None else environ).get(settings.token_env, "").strip() or None
        return cls(
            store=store,
            config=config,
            operator_actions=settings.operator_actions,
            token=token,
            language=settings.language,
            refresh_seconds=settings.refresh_seconds,
            public_origin=settings.public_origin,
            **kwargs,
        )

    @property
    def actions_on(self) -> bool:
        return self.operator_actions and bool(self.token)


def runtime_state_of(engine: Engine) -> RuntimeState:
    """This daemon's breakers and request budgets, per instance, for ``DashboardContext.runtime_state``."""

    def state() -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        for name, adapter in engine.adapters.items():
            http = adapter.http
            budget = getattr(http, "budget", None)
            found[name] = {
                "breaker_state": http.breaker.state,
                "budget_current_rps": budget.current_rps if budget is not None else None,
                "budget_configured_rps": budget.policy.requests_per_second if budget is not None else None,
            }
        return found

    return state


def add_dashboard_routes(app: web.Application, context: DashboardContext) -> None:
    """``/`` (to the dashboard), ``/dashboard...`` and ``/static/...`` on ``app``."""
    dashboard = _Dashboard(context)
    app.router.add_get("/", dashboard.root)
    app.router.add_get("/dashboard", dashboard.page)
    app.router.add_get("/dashboard/part", dashboard.part)
    app.router.add_get("/dashboard/api/summary", dashboard.summary_json)
    app.router.add_get("/dashboard/signin", dashboard.signin_form)
    app.router.add_post("/dashboard/signin", dashboard.signin)
    app.router.add_post("/dashboard/signout", dashboard.signout)
    app.router.add_post(r"/dashboard/deliveries/{id:\d{1,18}}/{action:retry|resend|link|drop}", dashboard.act)
    app.router.add_static("/static/", HERE / "static")
    app.on_response_prepare.append(_secure_headers)


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/" or request.path.startswith(("/dashboard", "/static/")):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)


class _Refused(Exception):
    def __init__(self, status: int, text_key: str):
        self.status, self.text_key = status, text_key


class _Dashboard:
    def __init__(self, context: DashboardContext):
        self.context = context
        self.sessions = Sessions(context.clock)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(flow_keys=FLOW_KEYS, owed_keys=OWED_KEYS)
        self.throttle = SigninThrottle(context.clock)

    # -- reading ------------------------------------------------------------------------------

    async def _store_call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Off the event loop: the store's calls are blocking transactions."""
        if self.context.async_store is not None:
            return await self.context.async_store.call(function, *args, **kwargs)
        return await asyncio.to_thread(function, *args, **kwargs)

    async def _summary(self) -> dict[str, Any]:
        c = self.context
        try:
            return await self._store_call(
                build_summary,
                c.store,
                c.config,
                c.clock(),
                runtime_state=c.runtime_state,
                deadline_counts=c.deadline_counts,
                deadline_due_within=c.deadline_due_within,
                own_figures=c.own_figures,
            )
        except Exception as exc:  # the store is down: say so, never a traceback (it may quote data)
            log.warning("dashboard could not read the store", error=safe_text(exc))
            raise _Refused(503, "store_unavailable") from None

    def _lang(self, request: web.Request, form: Mapping[str, Any] | None = None) -> str:
        """The language asked for: the form's ``lang``, else ``?lang=``, else (a POST whose form
        lost it) the one of the page it was sent from, else the configured one."""
        for asked in ((form or {}).get("lang"), request.query.get("lang"), _referer_lang(request)):
            if asked in LANGUAGES:
                return str(asked)
        return self.context.language

    def _render(self, template: str, request: web.Request, lang: str, status: int = 200, **values: Any) -> web.Response:
        values.setdefault("session", self.sessions.of(request))
        html = self.templates.get_template(template).render(
            lang=lang,
            t=TEXTS[lang],
            languages=[(code, TEXTS[code]["language_name"]) for code in LANGUAGES],
            actions_on=self.context.actions_on,
            actions_need_token=self.context.operator_actions and not self.context.token,
            token_env=self.context.config.settings.dashboard.token_env,
            refresh_seconds=self.context.refresh_seconds,
            budget_text=lambda budget: _budget_text(budget, TEXTS[lang]),
            job_text=lambda job: _job_text(job, TEXTS[lang]),
            **values,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    async def root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    async def page(self, request: web.Request) -> web.Response:
        session = self.sessions.of(request)
        flash, lang = None, self._lang(request)
        try:
            summary = await self._summary()
        except _Refused as refused:
            return self._refusal(request, lang, refused)
        if session is not None and session.flash is not None:
            flash, session.flash = session.flash, None
        return self._render("dashboard.html", request, lang, s=summary, flash=flash, session=session)

    async def part(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        try:
            summary = await self._summary()
        except _Refused as refused:  # the page keeps what it shows and tries again at the next tick
            return web.Response(status=refused.status, text=TEXTS[lang][refused.text_key])
        return self._render("live.html", request, lang, s=summary, flash=None)

    async def summary_json(self, request: web.Request) -> web.Response:
        try:
            summary = await self._summary()
        except _Refused as refused:
            return web.json_response({"error": TEXTS["en"][refused.text_key]}, status=refused.status)
        return web.Response(text=json.dumps(summary, indent=1), content_type="application/json")

    # -- signing in and out -------------------------------------------------------------------

    def _refusal(self, request: web.Request, lang: str, refused: _Refused) -> web.Response:
        log.warning("dashboard request refused", path=request.path, reason=refused.text_key)
        return self._render("message.html", request, lang, status=refused.status, message=TEXTS[lang][refused.text_key])

    def _check_post(self, request: web.Request) -> None:
        if not self.context.actions_on:
            raise _Refused(403, "forbidden_off")
        if not same_origin(request, self.context.public_origin):
            raise _Refused(403, "forbidden_origin")

    def _signin_page(self, request: web.Request, lang: str, status: int = 200, **values: Any) -> web.Response:
        # Before sign-in there is no session to bind the form to: a random value in a short-lived
        # cookie and in the form (another site can set neither) guards the sign-in itself.
        pre = os.urandom(24).hex()
        values.setdefault("problem", None)
        values.setdefault("operator", "")
        response = self._render("signin.html", request, lang, status=status, signin_csrf=pre, **values)
        set_cookie(response, request, SIGNIN_COOKIE, pre, max_age=900)
        return response

    async def signin_form(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        if not self.context.actions_on:
            return self._refusal(request, lang, _Refused(403, "signin_off"))
        return self._signin_page(request, lang)

    async def signin(self, request: web.Request) -> web.Response:
        form = await request.post()
        lang = self._lang(request, form)
        try:
            self._check_post(request)
            pre = request.cookies.get(SIGNIN_COOKIE, "")
            if not pre or not token_matches(str(form.get("csrf", "")), pre):
                raise _Refused(403, "forbidden_csrf")
        except _Refused as refused:
            return self._refusal(request, lang, refused)
        name = clean_operator_name(str(form.get("operator", "")))
        if self.throttle.closed():
            log.warning("dashboard sign-in refused", reason="too many wrong tokens")
            return self._signin_page(request, lang, status=429, problem=TEXTS[lang]["signin_wrong"])
        assert self.context.token is not None  # actions_on
        if not token_matches(str(form.get("token", "")), self.context.token):
            self.throttle.failed()
            log.warning("dashboard sign-in refused", reason="wrong token")
            return self._signin_page(
                request, lang, status=401, problem=TEXTS[lang]["signin_wrong"], operator=name or ""
            )
        if name is None:
            return self._signin_page(request, lang, status=400, problem=TEXTS[lang]["signin_name_missing"])
        session_id, _ = self.sessions.open(name)
        log.info("dashboard sign-in", operator=name)
        response = web.HTTPSeeOther(f"/dashboard?lang={lang}")
        set_cookie(response, request, SESSION_COOKIE, session_id, max_age=int(IDLE_TIMEOUT.total_seconds()))
        response.del_cookie(SIGNIN_COOKIE, path="/")
        raise response

    def _session_for_post(self, request: web.Request, form: Mapping[str, Any]) -> Session:
        self._check_post(request)
        session = self.sessions.of(request)
        if session is None:
            raise _Refused(403, "forbidden_session")
        if not token_matches(str(form.get("csrf", "")), session.csrf):
            raise _Refused(403, "forbidden_csrf")
        return session

    async def signout(self, request: web.Request) -> web.Response:
        form = await request.post()
        lang = self._lang(request, form)
        try:
            self._session_for_post(request, form)
        except _Refused as refused:
            return self._refusal(request, lang, refused)
        self.sessions.close(request)
        response = web.HTTPSeeOther(f"/dashboard?lang={lang}")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    # -- operator actions ---------------------------------------------------------------------

    async def act(self, request: web.Request) -> web.Response:
        form = await request.post()
        lang = self._lang(request, form)
        try:
            session = self._session_for_post(request, form)
        except _Refused as refused:
            return self._refusal(request, lang, refused)
        outbox_id, action = int(request.match_info["id"]), request.match_info["action"]
        store, actor = self.context.store, session.actor
        texts = TEXTS[lang]
        try:
            if action == "retry":
                await self._store_call(retry_delivery, store, outbox_id, actor=actor)
            elif action == "resend":
                await self._store_call(resend_delivery, store, outbox_id, actor=actor)
            elif action == "link":
                external_id = str(form.get("external_id", "")).strip()
                if not external_id:
                    raise _Refused(400, "link_needs_id")
                await self._store_call(link_delivery, store, outbox_id, external_id, actor=actor)
            else:
                reason = str(form.get("reason", "")).strip()
                if not reason:
                    raise _Refused(400, "drop_needs_reason")
                await self._store_call(drop_delivery, store, outbox_id, reason, actor=actor)
        except _Refused as refused:
            session.flash = Flash("refused", texts["refused"].format(id=outbox_id, error=texts[refused.text_key]))
        except (StoreUnavailableError, *DATABASE_ERRORS) as exc:
            # The store is locked by another process or down: refused like any other action
            # (nothing was written), not aiohttp's bare 500 page. The class only: a driver's text
            # may quote the statement's values.
            log.warning("dashboard action not done: the store failed", action=action, delivery=outbox_id,
                        error=type(exc).__name__)  # fmt: skip
            session.flash = Flash("refused", texts["refused"].format(id=outbox_id, error=texts["store_unavailable"]))
        except OperatorError as exc:
            # The store's reason is English (the CLI prints the same text): the page's language
            # says it was refused, and marks the reason as English rather than half-translating it.
            session.flash = Flash("refused", texts["refused_english"].format(id=outbox_id, error=exc))
        else:
            log.info("operator action", action=action, delivery=outbox_id, actor=actor)
            session.flash = Flash("done", texts["done"].format(id=outbox_id, action=texts[f"action_{action}"]))
        raise web.HTTPSeeOther(f"/dashboard?lang={lang}")


def _referer_lang(request: web.Request) -> str | None:
    referer = request.headers.get("Referer")
    if not referer:
        return None
    asked = parse_qs(urlsplit(referer).query).get("lang")
    return asked[-1] if asked else None


def _budget_text(budget: Mapping[str, Any], texts: Mapping[str, str]) -> str:
    configured, current = budget.get("configured_rps"), budget.get("current_rps")
    if configured is None and current is None:
        return texts["budget_unlimited"]
    if current is None:
        return texts["budget_configured"].format(configured=f"{configured:g}")
    return texts["budget_rate"].format(
        current=f"{current:.3g}", configured=texts["budget_unlimited"] if configured is None else f"{configured:g}"
    )


def _job_text(job: Mapping[str, Any], texts: Mapping[str, str]) -> str:
    if not job["runs"]:
        return texts["job_not_run"].format(job=job["job"])
    last = job["last_seconds"]
    return texts["job_runs"].format(
        job=job["job"],
        last="?" if last is None else f"{last:.3g}",
        mean=f"{job['mean_seconds']:.3g}",
        runs=job["runs"],
    )
