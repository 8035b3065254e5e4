"""Authentication an adapter hands to its :class:`gateway.PeerClient` (``Adapter.auth()``): an
``httpx.Auth`` applied to every request of the peer, retries included.

:class:`OAuth2ClientCredentials` keeps a token of the OAuth2 client-credentials grant
(RFC 6749 section 4.4): fetched on first use, renewed shortly before it expires and once
after a 401, one token request at a time however many requests find it stale. The token
request is yielded by the auth flow, so it goes through the peer's own client and transport
(an ``httpx.MockTransport`` in tests) and never blocks the event loop. Authlib builds the
token request and the client authentication and holds the token; httpx-auth was not used
because it fetches tokens with a synchronous client of its own (blocking the loop, and
bypassing the transport handed to the adapter).

No token and no secret ever reaches a log line, an error text or a ``repr``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request

#: Marks the token request among the requests of a call, so that a failure sending it is known
#: to have happened before the call's own request (a write was then surely not sent).
TOKEN_REQUEST = "gateway_token_request"

# An OAuth2 error code ("invalid_client") is a fixed word of the RFC, safe to show; anything
# else in the answer may echo what was sent.
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")


class TokenRequestError(Exception):
    """The token endpoint refused or answered unusably. ``PeerClient`` turns it into a
    ``TransientPeerError`` (``transient``) or a ``PermanentPeerError`` of the peer."""

    def __init__(self, reason: str, *, status_code: int | None = None, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.transient = transient


class ApiKeyHeader(httpx.Auth):
    """A fixed key in a header of every request (``X-Api-Key: ...``)."""

    def __init__(self, header: str, key: str):
        self._header = header
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._key
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyHeader({self._header!r})"


class BasicAuth(httpx.BasicAuth):
    """HTTP basic authentication (``httpx.BasicAuth``, with a ``repr`` that shows no password)."""

    def __init__(self, username: str, password: str):
        super().__init__(username, password)

    def __repr__(self) -> str:
        return "BasicAuth(...)"


class OAuth2ClientCredentials(httpx.Auth):
    """A bearer token of the client-credentials grant, kept fresh.

    ``token_url`` may be absolute or a path on the peer's ``base_url``. ``margin``: seconds
    before ``expires_in`` runs out at which the token is renewed (at most half its lifetime).
    ``client_auth``: ``client_secret_basic`` (the RFC's default) or ``client_secret_post``.
    ``clock``: monotonic seconds (a fake one in tests).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        margin: float = 30.0,
        client_auth: str = "client_secret_basic",
        clock: Callable[[], float] = time.monotonic,
    ):
        if client_auth not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("client_auth must be client_secret_basic or client_secret_post")
        self._token_url = token_url
        self._client = ClientAuth(client_id, client_secret, client_auth)
        self._scope = scope
        self._margin = margin
        self._clock = clock
        self._token: OAuth2Token | None = None
        self._renew_at: float | None = None  # None: no known expiry, renewed only after a 401
        self._lock = asyncio.Lock()
        #: Token requests sent (for tests and diagnostics; never the token itself).
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self._token_url!r})"

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._token is None or self._stale():
            async with self._lock:
                # Whoever comes first renews; the others waited here and find it fresh.
                if self._token is None or self._stale():
                    await self._store((yield self._token_request(request)))
        used = self._bearer(request)
        response = yield request
        if response.status_code != 401:
            return
        # Refused: the peer may have revoked the token before its time. Renewed once (unless
        # another request renewed it meanwhile) and sent again: a request answered 401 was
        # not processed, so even a write is safe to send again.
        async with self._lock:
            if self._token is used:
                await self._store((yield self._token_request(request)))
        self._bearer(request)
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")

    def _bearer(self, request: httpx.Request) -> OAuth2Token:
        token = self._token
        assert token is not None  # stored before any request goes out
        request.headers["Authorization"] = f"Bearer {token['access_token']}"
        return token

    def _stale(self) -> bool:
        return self._renew_at is not None and self._clock() >= self._renew_at

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        url = request.url.join(self._token_url)
        extra = {"scope": self._scope} if self._scope else {}
        body = prepare_token_request("client_credentials", **extra)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        _, headers, body = self._client.prepare("POST", str(url), headers, body)
        self.token_requests += 1
        return httpx.Request("POST", url, headers=headers, content=body, extensions={TOKEN_REQUEST: True})

    async def _store(self, response: httpx.Response) -> None:
        await response.aread()  # the flow is async: httpx reads no body for it
        token = _read_token(response)
        lifetime = token.get("expires_in")
        self._token = token
        if lifetime is None:
            self._renew_at = None
        else:
            self._renew_at = self._clock() + lifetime - min(self._margin, lifetime / 2)


def _read_token(response: httpx.Response) -> OAuth2Token:
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        body = None
    if not 200 <= status < 300:
        code = body.get("error") if isinstance(body, dict) else None
        shown = f" ({code})" if isinstance(code, str) and _ERROR_CODE.match(code) else ""
        transient = status in (408, 425, 429, 500, 502, 503, 504)
        raise TokenRequestError(
            f"token endpoint answered HTTP {status}{shown}", status_code=status, transient=transient
        )
    if not isinstance(body, dict):
        raise TokenRequestError("token endpoint answered without a JSON object", status_code=status, transient=True)
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenRequestError("token endpoint answered without access_token", status_code=status)
    kind = body.get("token_type", "bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise TokenRequestError("token endpoint answered a token_type other than bearer", status_code=status)
    lifetime = body.get("expires_in")
    fields: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
    if lifetime is not None:
        try:
            seconds = float(lifetime)
        except (TypeError, ValueError):
            raise TokenRequestError("token endpoint answered an expires_in that is not a number") from None
        if seconds <= 0:
            raise TokenRequestError("token endpoint answered an expires_in that is not positive")
        fields["expires_in"] = seconds
    return OAuth2Token(fields)
