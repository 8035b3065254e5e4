"""The shared HTTP layer: every adapter talks to its peer through a :class:`PeerClient`.

It owns what adapters must not re-implement: retries within a call (tenacity,
exponential backoff with jitter, Retry-After honoured and capped), the mapping
of failures to the error tree, and error texts free of bodies, query strings
and headers. An adapter may be handed an ``httpx.AsyncClient`` (for example
one with ``httpx.MockTransport`` or respx) instead of building its own.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gateway._errors import PermanentPeerError, TransientPeerError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call retries transient failures before giving up (across passes,
    the outbox retries again later)."""

    attempts: int = 3
    initial_wait: float = 0.2
    max_wait: float = 5.0
    max_retry_after: float = 30.0
    transient_status: frozenset[int] = field(default_factory=lambda: frozenset({408, 425, 429, 500, 502, 503, 504}))


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Retry-After as seconds or an HTTP date, capped; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, min(seconds, cap))


class PeerClient:
    """HTTP calls to one peer, named by its adapter instance."""

    def __init__(self, peer: str, base_url: str, *, headers: dict[str, str] | None = None,
                 timeout: float = 15.0, client: httpx.AsyncClient | None = None,
                 retry: RetryPolicy = RetryPolicy()):
        self.peer = peer
        self.retry = retry
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def request(self, method: str, path: str, *, operation: str | None = None,
                      idempotent: bool | None = None, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying transient failures per the policy.

        ``operation`` names the call in errors and logs (a path template such as
        ``GET /complaints/{id}/followups``); it defaults to method and path.
        A non-idempotent call (POST by default) is retried only when the peer
        surely did not process it: the connection was never made, or it
        answered 429.
        """
        operation = operation or f"{method} {path}"
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        headers = {**self._headers, **kwargs.pop("headers", {})}

        def should_retry(exc: BaseException) -> bool:
            if not isinstance(exc, TransientPeerError):
                return False
            return idempotent or exc.status_code == 429 or exc.reason == "connection refused"

        def wait(retry_state: Any) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, TransientPeerError) and exc.retry_after is not None:
                return exc.retry_after
            return wait_exponential_jitter(multiplier=self.retry.initial_wait, max=self.retry.max_wait,
                                          jitter=self.retry.initial_wait)(retry_state)

        async for attempt in AsyncRetrying(stop=stop_after_attempt(self.retry.attempts), wait=wait,
                                           retry=retry_if_exception(should_retry), reraise=True):
            with attempt:
                return await self._send_once(method, path, operation, headers, kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, method: str, path: str, operation: str, headers: dict[str, str],
                         kwargs: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._client.request(method, self._base_url + path, headers=headers, **kwargs)
        except httpx.ConnectError:
            raise TransientPeerError(self.peer, operation, "connection refused") from None
        except httpx.TimeoutException:
            raise TransientPeerError(self.peer, operation, "timed out") from None
        except httpx.TransportError as exc:
            # The class name says what happened (RemoteProtocolError, ReadError...); its
            # text may quote the peer, so it stays out.
            raise TransientPeerError(self.peer, operation, f"transport error ({type(exc).__name__})") from None
        status = response.status_code
        if status < 400:
            return response
        if status in self.retry.transient_status:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.retry.max_retry_after)
            raise TransientPeerError(self.peer, operation, f"answered HTTP {status}", status_code=status,
                                     retry_after=retry_after)
        raise PermanentPeerError(self.peer, operation, f"answered HTTP {status}", status_code=status)

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, and decode the JSON body (malformed JSON is transient:
        a proxy or an overloaded peer cut it short)."""
        response = await self.request(method, path, **kwargs)
        operation = kwargs.get("operation") or f"{method} {path}"
        try:
            return jsonlib.loads(response.content)
        except ValueError:
            raise TransientPeerError(self.peer, operation, "answered malformed JSON",
                                     status_code=response.status_code) from None
