"""The shared HTTP layer: every adapter talks to its peer through a :class:`PeerClient`.

It owns what adapters must not re-implement: retries within a call (tenacity,
exponential backoff with jitter, Retry-After honoured and capped), a circuit
breaker per peer, the mapping of failures to the error tree, and error texts
free of bodies, query strings and headers. An adapter may be handed an
``httpx.AsyncClient`` (for example one with ``httpx.MockTransport`` or respx)
instead of building its own.

A call that changes something (POST by default) is retried within the call only
when the peer surely did not process it: the connection was never made, or the
peer answered 429 or 503. Any other failure after the request may have reached
the peer is an :class:`AmbiguousOutcomeError`, which the engine resolves by
looking the result up, never by repeating the call blindly.

With a :class:`RequestBudget` (``gateway._budget``), every attempt, retries
included, takes a slot of the peer's budget for the time of its send only (not
during the wait between attempts), and the budget learns from each answer.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gateway._auth import TOKEN_REQUEST, TokenRequestError
from gateway._budget import RequestBudget
from gateway._errors import (
    AmbiguousOutcomeError,
    PeerError,
    PeerUnavailableError,
    PermanentPeerError,
    TooLargeError,
    TransientPeerError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one call retries transient failures before giving up (across passes,
    the outbox retries again later)."""

    attempts: int = 3
    initial_wait: float = 0.2
    max_wait: float = 5.0
    max_retry_after: float = 30.0
    transient_status: frozenset[int] = field(default_factory=lambda: frozenset({408, 425, 429, 500, 502, 503, 504}))
    # Answers that say the request was not processed, so even a write may be sent again.
    unprocessed_status: frozenset[int] = field(default_factory=lambda: frozenset({425, 429, 503}))


NO_RETRY = RetryPolicy(attempts=1)

#: The code :attr:`PeerClient.on_answer` is given for an attempt that got no answer (connection
#: refused or lost, timed out).
NO_ANSWER = "error"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """After ``failure_threshold`` transient failures in a row the peer is left alone
    for ``reset_seconds``; then one probe call decides whether it is back."""

    failure_threshold: int = 5
    reset_seconds: float = 30.0


class CircuitBreaker:
    """Per peer: closed (calls flow), open (calls fail fast with
    :class:`PeerUnavailableError`), half-open (one probe call at a time)."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        peer: str,
        policy: BreakerPolicy = BreakerPolicy(),
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitBreaker], None] | None = None,
    ):
        self.peer = peer
        self.policy = policy
        self.clock = clock
        self.on_change = on_change
        self.state = self.CLOSED
        self.failures = 0
        self.opened_at: float | None = None
        self.last_error: str | None = None
        self._probing = False
        self._lock = threading.Lock()

    def before_call(self, operation: str) -> None:
        with self._lock:
            if self.state == self.CLOSED:
                return
            if self.state == self.OPEN and self.clock() - (self.opened_at or 0) >= self.policy.reset_seconds:
                self._set(self.HALF_OPEN)
            if self.state == self.HALF_OPEN and not self._probing:
                self._probing = True  # this call is the probe
                return
        raise PeerUnavailableError(self.peer, operation, "circuit open after repeated failures; not called")

    def trip(self, seconds_ago: float, error: str | None = None) -> None:
        """Open the breaker as if it had opened ``seconds_ago`` (another daemon found the peer
        down then): no call until the reset time from then, then one probe. A breaker that is
        not closed is left as it is."""
        with self._lock:
            if self.state != self.CLOSED:
                return
            self.opened_at = self.clock() - seconds_ago
            self.last_error = error
            self.state = self.OPEN  # not _set: the store already shows it open

    def release_probe(self) -> None:
        with self._lock:
            self._probing = False

    def record_success(self) -> None:
        with self._lock:
            self._probing = False
            self.failures = 0
            if self.state != self.CLOSED:
                self._set(self.CLOSED)

    def record_failure(self, error: str) -> None:
        with self._lock:
            self._probing = False
            self.failures += 1
            self.last_error = error
            if self.state == self.HALF_OPEN or (
                self.state == self.CLOSED and self.failures >= self.policy.failure_threshold
            ):
                self.opened_at = self.clock()
                self._set(self.OPEN)

    def _set(self, state: str) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(self)


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
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, cap))


def _int_or_text(digits: str) -> int | str:
    # Python refuses to turn more than 4300 digits into an int (a guard against slow parsing):
    # such a number is kept as its text, so the one record holding it is malformed (a wrong
    # type where a number belongs) instead of the whole page being unreadable.
    return int(digits) if len(digits) <= 4300 else digits


def _idempotent(method: str, declared: bool | None) -> bool:
    """Whether a request may be sent again: as the caller declared, else by its method."""
    if declared is not None:
        return declared
    return method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")


def decode_json(content: bytes | str) -> Any:
    """A peer's JSON body, decoded. Raises ValueError for what is not JSON; an integer too long
    for Python comes back as its digits (a string), for the adapter's checks to refuse."""
    try:
        return jsonlib.loads(content, parse_int=_int_or_text)
    except RecursionError:  # nested deeper than Python recurses ([[[[...]]]]): no JSON it can read
        raise ValueError("JSON nested too deeply") from None


#: A field name a peer's validation error may name, as an operator is shown it. Values are never
#: shown (they may hold personal data); a name that does not look like a field name is left out.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}$")
MAX_FIELD_NAMES = 12


def _invalid_fields(response: httpx.Response) -> str:
    """`` (invalid fields: a, b)`` from a Laravel-style validation answer
    (``{"message": ..., "errors": {field: [...]}}``), or ``""``. Only the names are read."""
    try:
        body = decode_json(response.content)
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return ""
    names = sorted(name for name in errors if isinstance(name, str) and _FIELD_NAME.match(name))
    if not names:
        return ""
    shown = ", ".join(names[:MAX_FIELD_NAMES]) + (", ..." if len(names) > MAX_FIELD_NAMES else "")
    return f" (invalid fields: {shown})"


def _sending_token_request(exc: httpx.TransportError) -> bool:
    """Whether ``exc`` happened on an auth flow's token request (see ``gateway._auth``)."""
    try:
        return bool(exc.request.extensions.get(TOKEN_REQUEST))
    except RuntimeError:  # raised outside a request
        return False


class PeerClient:
    """HTTP calls to one peer, named by its adapter instance.

    Every call sends ``Accept: application/json`` unless the adapter's or the call's
    headers say otherwise: a Laravel-style peer answers a client without it with an HTML
    redirect on errors. Only a 2xx answer is returned; a 3xx is an error, never a success.

    ``on_answer(peer, method, code)``, if set, is called after every attempt that was sent
    (retries included): ``code`` is the HTTP status as text, or :data:`NO_ANSWER`. The engine
    counts requests with it.
    """

    on_answer: Callable[[str, str, str], None] | None = None
    #: The most a JSON answer may unpack to. A peer (or a proxy) may compress its answers, and a
    #: few hundred kilobytes of gzip unpack to gigabytes: read whole, one such answer would take
    #: the daemon's memory, and every instance with it. A page of 100 records of 60 KB texts is 6 MB.
    max_json_bytes: int = 64 * 1024 * 1024

    def __init__(
        self,
        peer: str,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 15.0,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = RetryPolicy(),
        breaker: CircuitBreaker | None = None,
        budget: RequestBudget | None = None,
        auth: httpx.Auth | None = None,
    ):
        self.peer = peer
        # Applied to every request, retries included (a token renewed meanwhile is used).
        self._auth: dict[str, Any] = {} if auth is None else {"auth": auth}
        self.retry = retry
        self.breaker = breaker or CircuitBreaker(peer)
        self.budget = budget
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **(headers or {})}

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def request(
        self, method: str, path: str, *, operation: str | None = None, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request, retrying transient failures per the policy.

        ``operation`` names the call in errors and logs (a path template such as
        ``GET /complaints/{id}/followups``); it defaults to method and path.
        """
        operation = operation or f"{method} {path.split('?')[0]}"  # a query string may hold anything
        if path and not path.startswith("/"):
            # The path is appended to base_url: 'http://127.0.0.1:8701' + '@evil.example/x' is a
            # request to evil.example, carrying this peer's credentials.
            raise PermanentPeerError(self.peer, operation, "a request path must start with '/' (below base_url)")
        idempotent = _idempotent(method, idempotent)
        headers = {**self._headers, **kwargs.pop("headers", {})}

        def should_retry(exc: BaseException) -> bool:
            # Only what changed nothing: an AmbiguousOutcomeError or a PeerUnavailableError is
            # no TransientPeerError (see gateway._errors), so neither is sent again here.
            return isinstance(exc, TransientPeerError)

        def wait(retry_state: Any) -> float:
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, TransientPeerError) and exc.retry_after is not None:
                if self.budget is not None and exc.status_code == 429:
                    return 0.0  # the budget holds the next send back for Retry-After: wait once, not twice
                return exc.retry_after
            return wait_exponential_jitter(
                multiplier=self.retry.initial_wait, max=self.retry.max_wait, jitter=self.retry.initial_wait
            )(retry_state)

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait,
            retry=retry_if_exception(should_retry),
            reraise=True,
        ):
            with attempt:
                self.breaker.before_call(operation)
                try:
                    response = await self._send(method, path, operation, idempotent, headers, kwargs)
                except (TransientPeerError, AmbiguousOutcomeError) as exc:  # the peer failed to answer
                    if exc.status_code == 429:
                        self.breaker.record_success()  # throttling: the peer is alive
                    else:
                        self.breaker.record_failure(exc.reason)
                    raise
                except PermanentPeerError:
                    self.breaker.record_success()  # it answered; the request was wrong
                    raise
                except BaseException:  # cancelled (a stopping daemon): the probe, if it was one, is free again
                    self.breaker.release_probe()
                    raise
                self.breaker.record_success()
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, path: str, operation: str, idempotent: bool, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        """One attempt, within a slot of the budget if there is one."""
        budget = self.budget
        if budget is None:
            return await self._send_once(method, path, operation, idempotent, headers, kwargs)
        async with budget.slot() as sent_at:
            try:
                response = await self._send_once(method, path, operation, idempotent, headers, kwargs)
            except PeerError as exc:
                if exc.status_code == 429:
                    budget.throttled(getattr(exc, "retry_after", None), sent_at)
                elif exc.status_code is not None:
                    budget.accepted(sent_at)  # answered: not a refusal for the rate
                raise
            budget.accepted(sent_at)
            return response

    async def _send_once(
        self, method: str, path: str, operation: str, idempotent: bool, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        maybe_done = TransientPeerError if idempotent else AmbiguousOutcomeError
        kwargs = dict(kwargs)  # every attempt is given the same dict: popping from it lost the limit on a retry
        max_bytes = kwargs.pop("max_bytes", None)
        try:
            if max_bytes is None:
                response = await self._client.request(
                    method, self._base_url + path, headers=headers, **self._auth, **kwargs
                )
            else:
                response = await self._download(method, path, operation, headers, kwargs, max_bytes)
        except TooLargeError as exc:
            if idempotent:
                raise
            # An answer too large to read, to a write: the peer may have done it.
            raise AmbiguousOutcomeError(self.peer, operation, exc.reason, status_code=exc.status_code) from None
        except TokenRequestError as exc:  # before the call's own request: nothing was sent
            refused = TransientPeerError if exc.transient else PermanentPeerError
            raise refused(self.peer, operation, exc.reason, status_code=exc.status_code) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            self._answered(method, NO_ANSWER)
            raise TransientPeerError(self.peer, operation, "could not connect") from None
        except (httpx.LocalProtocolError, UnicodeEncodeError) as exc:
            # Refused on this side before the peer could get a whole request: most often a secret
            # sent as a header value with a newline or a space at an end (pasted from a file) or
            # a character outside ASCII. Nothing was done at the peer, and a resend fails alike.
            # Only the class is named: the exception's text may quote the value.
            raise PermanentPeerError(
                self.peer,
                operation,
                f"request not sent: it is not valid HTTP ({type(exc).__name__}); check the instance's "
                "secrets and settings sent as headers (no newline, no space at an end, ASCII only)",
            ) from None
        except httpx.DecodingError:
            # It answered, with a body its Content-Encoding does not decode: a write may have been done.
            self._answered(method, NO_ANSWER)
            raise maybe_done(self.peer, operation, "answered a body that could not be decoded") from None
        except httpx.TransportError as exc:
            # The class name says what happened (RemoteProtocolError, ReadError...); its
            # text may quote the peer, so it stays out.
            if _sending_token_request(exc):  # the call's own request was not sent yet
                raise TransientPeerError(self.peer, operation, f"token request failed ({type(exc).__name__})") from None
            self._answered(method, NO_ANSWER)
            if isinstance(exc, httpx.TimeoutException):
                raise maybe_done(self.peer, operation, "timed out") from None
            raise maybe_done(self.peer, operation, f"connection lost ({type(exc).__name__})") from None
        status = response.status_code
        self._answered(method, str(status))
        if 200 <= status < 300:
            return response
        if 300 <= status < 400:
            # Never a success (httpx does not follow redirects): a wrong base_url, a proxy, or a
            # Laravel-style app sending a client without Accept: application/json back with a
            # 302 on an error. A write may or may not have been done before the redirect.
            reason = f"answered a redirect (HTTP {status}) instead of an answer; check base_url"
            if idempotent:
                raise PermanentPeerError(self.peer, operation, reason, status_code=status)
            raise AmbiguousOutcomeError(self.peer, operation, reason, status_code=status)
        if status in self.retry.transient_status:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.retry.max_retry_after)
            cls = TransientPeerError if status in self.retry.unprocessed_status else maybe_done
            raise cls(self.peer, operation, f"answered HTTP {status}", status_code=status, retry_after=retry_after)
        raise PermanentPeerError(
            self.peer, operation, f"answered HTTP {status}{_invalid_fields(response)}", status_code=status
        )

    def _answered(self, method: str, code: str) -> None:
        if self.on_answer is not None:
            self.on_answer(self.peer, method.upper(), code)

    async def _download(
        self, method: str, path: str, operation: str, headers: dict[str, str], kwargs: dict[str, Any], max_bytes: int
    ) -> httpx.Response:
        """A response whose body is read in pieces and abandoned as soon as it is larger than
        ``max_bytes`` (a declared ``Content-Length`` over it is refused before reading): a
        300 MiB attachment never sits in memory to be refused afterwards."""
        request = self._client.build_request(method, self._base_url + path, headers=headers, **kwargs)
        response = await self._client.send(request, stream=True, **self._auth)
        try:
            if not 200 <= response.status_code < 300:
                # The status is judged by the caller, the body read only for field names: what is
                # past the limit is left unread (an error answer may be compressed too).
                read, size = [], 0
                async for chunk in response.aiter_bytes():
                    read.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        break
                return self._read_answer(response, request, b"".join(read)[:max_bytes])
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise TooLargeError(self.peer, operation, f"{int(declared)} bytes, over the limit of {max_bytes}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():  # decoded: the limit is on what would sit in memory
                size += len(chunk)
                if size > max_bytes:
                    raise TooLargeError(self.peer, operation, f"over the limit of {max_bytes} bytes")
                chunks.append(chunk)
            return self._read_answer(response, request, b"".join(chunks))
        except TooLargeError:
            self._answered(method, str(response.status_code))  # it answered; its body was refused here
            raise
        finally:
            await response.aclose()

    @staticmethod
    def _read_answer(response: httpx.Response, request: httpx.Request, content: bytes) -> httpx.Response:
        """``response`` with the body read (decoded) as ``content``."""
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=kept, content=content, request=request)

    async def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, and decode the JSON body. Malformed JSON is transient
        (a proxy or an overloaded peer cut it short); on a write it is ambiguous. A body over
        ``max_json_bytes`` is refused unread (:class:`TooLargeError`); on a write that is
        ambiguous too: the peer may have done it."""
        operation = kwargs.get("operation") or f"{method} {path.split('?')[0]}"
        kwargs.setdefault("max_bytes", self.max_json_bytes)
        response = await self.request(method, path, **kwargs)
        try:
            return decode_json(response.content)
        except ValueError:
            cls = TransientPeerError if _idempotent(method, kwargs.get("idempotent")) else AmbiguousOutcomeError
            raise cls(self.peer, operation, "answered malformed JSON", status_code=response.status_code) from None
