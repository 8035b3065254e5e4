"""Who may act on the dashboard, and the guards against a request made by another site.

The security model (docs/operations.md, "Dashboard"):

- Operator actions are off unless ``settings.dashboard.operator_actions`` is on *and* the
  token's environment variable is set; the page alone only reads.
- An operator signs in with that token and their name; the token is compared in constant
  time (:func:`hmac.compare_digest`). The name goes into every audit entry they cause. Wrong
  tokens close the sign-in for a while (:class:`SigninThrottle`): guessing costs time.
- A session is a random id in a cookie (HttpOnly: no script reads it; SameSite=Strict: no
  other site's page sends it), kept in this process's memory: a restart signs everyone out.
- Every form carries a CSRF token that the server checks (the session's own; before sign-in,
  one bound to a short-lived cookie), and every POST must come from the page's own origin
  (``Origin``, else ``Referer``), or from ``dashboard.public_origin`` behind a TLS proxy: a
  page of another site can neither read the token nor pass the origin check.
- Every request must name this server in ``Host`` (:mod:`gateway._web._hosts`): a page whose
  own name was rebound to this address (DNS rebinding) cannot read it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web

SESSION_COOKIE = "gateway_session"
SIGNIN_COOKIE = "gateway_signin"
#: A session unused this long ends (the operator signs in again).
IDLE_TIMEOUT = timedelta(hours=8)
#: Wrong tokens allowed per :data:`SIGNIN_WINDOW` before every sign-in is refused for the rest of it.
SIGNIN_FAILURES_ALLOWED = 5
SIGNIN_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Flash:
    """A one-time message on the next page the operator sees (kept in the session, not the URL)."""

    kind: str  # done | refused
    text: str


@dataclass
class Session:
    operator: str
    csrf: str
    last_seen: datetime
    flash: Flash | None = None

    @property
    def actor(self) -> str:
        """The audit's actor, written as the CLI writes its own (``operator:NAME``)."""
        return f"operator:{self.operator}"


def token_matches(given: str, expected: str) -> bool:
    """Constant time whatever the strings: no timing tells how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class Sessions:
    """The signed-in operators of this process, by session id."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, operator: str) -> tuple[str, Session]:
        session_id = secrets.token_urlsafe(32)
        session = Session(operator=operator, csrf=secrets.token_urlsafe(32), last_seen=self.clock())
        with self._lock:
            self._by_id[session_id] = session
        return session_id, session

    def of(self, request: web.Request) -> Session | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        now = self.clock()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > IDLE_TIMEOUT:
                del self._by_id[session_id]
                return None
            session.last_seen = now
            return session

    def close(self, request: web.Request) -> None:
        with self._lock:
            self._by_id.pop(request.cookies.get(SESSION_COOKIE, ""), None)


class SigninThrottle:
    """Makes guessing the token slow: after :data:`SIGNIN_FAILURES_ALLOWED` wrong tokens within
    :data:`SIGNIN_WINDOW`, every sign-in (the right token too) is refused until the window passes."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock
        self._failures: list[datetime] = []
        self._lock = threading.Lock()

    def closed(self) -> bool:
        now = self.clock()
        with self._lock:
            self._failures = [at for at in self._failures if now - at < SIGNIN_WINDOW]
            return len(self._failures) >= SIGNIN_FAILURES_ALLOWED

    def failed(self) -> None:
        with self._lock:
            self._failures.append(self.clock())


def same_origin(request: web.Request, public_origin: str | None = None) -> bool:
    """The request was sent by a page of this server: its ``Origin`` (or, where a browser sends
    none, its ``Referer``) names this server's scheme, host and port as this server sees them,
    or ``public_origin`` (``dashboard.public_origin``: the address a TLS reverse proxy serves the
    page at, where this server sees plain HTTP). Neither: refused. ``X-Forwarded-*`` headers are
    not trusted: anyone who reaches the port can send them."""
    own = {_normal_origin(f"{request.scheme}://{request.host}")}
    if public_origin:
        own.add(public_origin)
    origin = request.headers.get("Origin")
    if origin is not None:
        return _normal_origin(origin) in own
    referer = request.headers.get("Referer")
    if not referer:
        return False
    parts = urlsplit(referer)
    return _normal_origin(f"{parts.scheme}://{parts.netloc}") in own


def _normal_origin(origin: str) -> str:
    """Lower case, the scheme's default port left out (as ``dashboard.public_origin`` is kept)."""
    origin = origin.strip().lower()
    for scheme, port in (("https", ":443"), ("http", ":80")):
        if origin.startswith(f"{scheme}://") and origin.endswith(port):
            return origin.removesuffix(port)
    return origin


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,  # on plain HTTP (loopback) a Secure cookie would never come back
    )
