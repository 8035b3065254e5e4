"""The shared HTTP layer: what is retried within a call, what is not, and how
failures map to the error tree."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from gateway import (
    AmbiguousOutcomeError,
    BreakerPolicy,
    CircuitBreaker,
    PeerClient,
    PeerUnavailableError,
    PermanentPeerError,
    RetryPolicy,
    TooLargeError,
    TransientPeerError,
)
from gateway._http import decode_json, parse_retry_after

BASE = "https://hub.example.go.id/api"
FAST = RetryPolicy(initial_wait=0.001, max_wait=0.01)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def mock():
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def peer(client: httpx.AsyncClient, retry: RetryPolicy = FAST, **kwargs) -> PeerClient:
    return PeerClient("sp4n", BASE, client=client, retry=retry, **kwargs)


def ok(body: object = None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True})


# -- what is told: every attempt sent, once -------------------------------------------------------


async def test_every_attempt_sent_is_told_with_its_status_or_error(http, mock):
    mock.get("/complaints/1/complaint").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(503), ok({"id": 1})]
    )
    told: list[tuple[str, str, str]] = []
    client = peer(http)
    client.on_answer = lambda *answer: told.append(answer)

    await client.request_json("get", "/complaints/1/complaint")

    assert told == [("sp4n", "GET", "error"), ("sp4n", "GET", "503"), ("sp4n", "GET", "200")]


async def test_a_download_refused_for_its_size_is_told_once_with_its_status(http, mock):
    from gateway import TooLargeError

    mock.get("/files/1").mock(return_value=httpx.Response(200, content=b"x" * 100))
    told: list[tuple[str, str, str]] = []
    client = peer(http)
    client.on_answer = lambda *answer: told.append(answer)

    with pytest.raises(TooLargeError):
        await client.request("GET", "/files/1", max_bytes=10)

    assert told == [("sp4n", "GET", "200")]


# -- what is retried ----------------------------------------------------------------------------


async def test_get_is_retried_on_503_then_succeeds(http, mock):
    route = mock.get("/complaints/1/complaint").mock(side_effect=[httpx.Response(503), ok({"id": 1})])

    body = await peer(http).request_json("GET", "/complaints/1/complaint")

    assert body == {"id": 1}
    assert route.call_count == 2


async def test_get_gives_up_after_the_policy_attempts(http, mock):
    route = mock.get("/complaints/1/complaint").mock(return_value=httpx.Response(502))

    with pytest.raises(TransientPeerError) as caught:
        await peer(http, RetryPolicy(attempts=4, initial_wait=0.001, max_wait=0.01)).request(
            "GET", "/complaints/1/complaint"
        )

    assert route.call_count == 4
    assert caught.value.status_code == 502


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_429_with_retry_after_zero_is_retried(http, mock, method):
    route = mock.route(method=method, path="/complaints/complaint").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), ok({"complaint_id": 7})]
    )

    body = await peer(http).request_json(method, "/complaints/complaint")

    assert body == {"complaint_id": 7}
    assert route.call_count == 2


async def test_connect_error_on_post_is_retried(http, mock):
    route = mock.post("/complaints/complaint").mock(
        side_effect=[httpx.ConnectError("connection refused"), ok({"complaint_id": 7})]
    )

    body = await peer(http).request_json("POST", "/complaints/complaint", json={"title": "x"})

    assert body == {"complaint_id": 7}
    assert route.call_count == 2


async def test_post_answered_503_was_not_processed_and_is_retried(http, mock):
    route = mock.post("/complaints/complaint").mock(side_effect=[httpx.Response(503), ok({"complaint_id": 7})])

    assert await peer(http).request_json("POST", "/complaints/complaint") == {"complaint_id": 7}
    assert route.call_count == 2


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(504),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["500", "502", "504", "read-timeout", "disconnected"],
)
async def test_post_that_may_have_been_processed_is_not_retried(http, mock, answer):
    route = mock.post("/complaints/complaint").mock(side_effect=[answer, ok({"complaint_id": 7})])

    with pytest.raises(AmbiguousOutcomeError) as caught:
        await peer(http).request("POST", "/complaints/complaint", json={"title": "x"})

    assert route.call_count == 1  # a repeat could create the complaint twice
    assert not isinstance(caught.value, TransientPeerError)  # a retrying handler never sees it


async def test_post_declared_idempotent_is_retried_like_a_get(http, mock):
    route = mock.post("/complaints/search").mock(side_effect=[httpx.Response(500), ok([])])

    assert await peer(http).request_json("POST", "/complaints/search", idempotent=True) == []
    assert route.call_count == 2


# -- how failures map to errors -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_422_is_permanent_not_retried_and_names_no_body(http, mock, method):
    body = {"message": "NIK 3374012345678901 tidak valid", "email": "budi@example.co.id"}
    route = mock.route(method=method, path="/complaints/complaint").mock(return_value=httpx.Response(422, json=body))

    with pytest.raises(PermanentPeerError) as caught:
        await peer(http).request(method, "/complaints/complaint", operation=f"{method} /complaints/complaint")

    assert route.call_count == 1
    assert caught.value.status_code == 422
    assert str(caught.value) == f"sp4n: {method} /complaints/complaint: answered HTTP 422"
    assert "3374012345678901" not in str(caught.value) and "budi@" not in str(caught.value)


async def test_malformed_json_is_transient(http, mock):
    mock.get("/complaints/1/followups").mock(return_value=httpx.Response(200, content=b'{"results": {"data": ['))

    with pytest.raises(TransientPeerError) as caught:
        await peer(http).request_json("GET", "/complaints/1/followups", operation="GET /complaints/{id}/followups")

    assert "malformed JSON" in str(caught.value)
    assert caught.value.operation == "GET /complaints/{id}/followups"
    assert '{"results"' not in str(caught.value)


async def test_malformed_json_after_a_write_is_ambiguous(http, mock):
    route = mock.post("/complaints/complaint").mock(return_value=httpx.Response(200, content=b"<html>gateway"))

    with pytest.raises(AmbiguousOutcomeError):
        await peer(http).request_json("POST", "/complaints/complaint")

    assert route.call_count == 1


@pytest.mark.parametrize("secret", ["k-from-a-file\n", "k-pasted ", "k\x00", "kunci-rahasia-\u00e9"])
async def test_a_header_value_that_is_not_valid_http_is_refused_unsent_not_of_unknown_outcome(secret):
    # A secret pasted with a trailing newline used to fail as "connection lost": every create
    # then waited for an operator as possibly done, though nothing had left the gateway.
    received: list[bytes] = []

    async def listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(listen, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:  # a real transport: it is h11 that refuses the header
            with pytest.raises(PermanentPeerError) as caught:
                await PeerClient("sp4n", f"http://127.0.0.1:{port}", client=client, retry=FAST).request(
                    "POST", "/complaints/complaint", headers={"Authorization": secret}, json={"title": "x"}
                )
    finally:
        server.close()
        await server.wait_closed()
    assert not any(received)  # not a byte of the request reached the peer
    assert "request not sent" in str(caught.value) and "secrets" in str(caught.value)
    assert secret.strip() not in str(caught.value)


async def test_a_body_that_cannot_be_decoded_after_a_write_is_of_unknown_outcome(http, mock):
    def garbled() -> httpx.Response:  # decoded only when read, as an answer off the wire
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip"))

    route = mock.post("/complaints/complaint").mock(side_effect=[garbled(), ok({"complaint_id": 7})])

    with pytest.raises(AmbiguousOutcomeError) as caught:  # the hub may have created it
        await peer(http).request_json("POST", "/complaints/complaint", json={"title": "x"})

    assert route.call_count == 1
    assert "could not be decoded" in str(caught.value)
    read = mock.get("/complaints/7/complaint").mock(side_effect=[garbled(), ok({"id": 7})])
    assert await peer(http).request_json("GET", "/complaints/7/complaint") == {"id": 7}  # a read is retried
    assert read.call_count == 2


async def test_retry_after_is_read_and_capped_on_the_error(http, mock):
    mock.get("/masters/templates").mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))

    with pytest.raises(TransientPeerError) as caught:
        await peer(http, RetryPolicy(attempts=1, max_retry_after=7)).request("GET", "/masters/templates")

    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7.0


async def test_headers_of_the_client_and_of_the_call_are_sent(http, mock):
    route = mock.get("/masters/templates").mock(return_value=ok())

    await peer(http, headers={"Authorization": "Bearer k", "token": "g"}).request(
        "GET", "/masters/templates", headers={"X-Request": "1"}
    )

    sent = route.calls.last.request.headers
    assert (sent["Authorization"], sent["token"], sent["X-Request"]) == ("Bearer k", "g", "1")


async def test_injected_client_is_not_closed_by_the_peer_client(http, mock):
    mock.get("/masters/templates").mock(return_value=ok())
    client = peer(http)

    await client.aclose()

    assert not http.is_closed
    assert (await http.get(BASE + "/masters/templates")).status_code == 200


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("120", 30.0),  # capped
        ("", None),
        (None, None),
        ("soon", None),
        ("Tomorrow, 99 Foo 2026", None),
    ],
)
async def test_parse_retry_after_seconds_and_garbage(value, expected):
    assert parse_retry_after(value, cap=30.0) == expected


async def test_parse_retry_after_http_date():
    in_20s = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    far = email.utils.format_datetime(datetime.now(UTC) + timedelta(days=2), usegmt=True)

    assert 17.0 < parse_retry_after(in_20s, cap=30.0) <= 20.0  # the date has whole seconds
    assert parse_retry_after(past, cap=30.0) == 0.0
    assert parse_retry_after(far, cap=30.0) == 30.0


# -- the circuit breaker's probe ----------------------------------------------------------------------


async def test_a_cancelled_probe_does_not_leave_the_breaker_stuck(http, mock):
    now = [0.0]
    breaker = CircuitBreaker("sp4n", BreakerPolicy(failure_threshold=1, reset_seconds=10), clock=lambda: now[0])
    client = peer(http, RetryPolicy(attempts=1), breaker=breaker)
    route = mock.get("/masters/templates").mock(return_value=httpx.Response(502))
    with pytest.raises(TransientPeerError):
        await client.request("GET", "/masters/templates")
    assert breaker.state == CircuitBreaker.OPEN

    now[0] = 11.0  # the reset time passed: the next call is the probe
    started, never = asyncio.Event(), asyncio.Event()

    async def hanging(request):
        started.set()
        await never.wait()

    route.mock(side_effect=hanging)
    probe = asyncio.create_task(client.request("GET", "/masters/templates"))
    await started.wait()
    probe.cancel()  # a daemon shutting down, a job timeout
    with pytest.raises(asyncio.CancelledError):
        await probe

    route.mock(return_value=ok())
    now[0] = 1000.0
    try:
        await client.request("GET", "/masters/templates")
    except PeerUnavailableError:
        pytest.fail(f"breaker stuck in {breaker.state} after a cancelled probe")


DEEP = b"[" * 100_000 + b"]" * 100_000  # valid JSON, nested deeper than Python's json recurses


def test_json_nested_too_deeply_is_not_json_to_decode_json():
    """Found by review-fuzz: decode_json let RecursionError out, so a page nested this deep
    failed the intake job as an 'internal error (RecursionError)' instead of malformed JSON."""
    with pytest.raises(ValueError, match="nested too deeply"):
        decode_json(DEEP)


async def test_a_body_nested_too_deeply_is_malformed_json_and_transient(http, mock):
    mock.get("/api/v1/aduan").mock(return_value=httpx.Response(200, content=DEEP))

    with pytest.raises(TransientPeerError, match="answered malformed JSON"):
        await peer(http).request_json("GET", "/api/v1/aduan", operation="GET /api/v1/aduan")


async def test_the_size_limit_holds_on_a_retry_too(http, mock):
    """Found by review-fuzz: the first attempt popped max_bytes from the keyword arguments every
    attempt shares, so an attachment fetch that was retried (a 503 first) read the file whole."""
    route = mock.get("/files/1").mock(side_effect=[httpx.Response(503), httpx.Response(200, content=b"x" * 1000)])

    with pytest.raises(TooLargeError, match="over the limit of 10"):
        await peer(http).request("GET", "/files/1", max_bytes=10, operation="GET /files/{id}")

    assert route.call_count == 2


def _gzip_of_spaces(size: int) -> bytes:
    """A valid JSON object padded with ``size`` spaces, gzipped: a few KB that unpack to ``size``."""
    return gzip.compress(b'{"status": "sukses", "data": []' + b" " * size + b"}")


@pytest.mark.parametrize(("method", "raised"), [("GET", TooLargeError), ("POST", AmbiguousOutcomeError)])
async def test_a_json_answer_unpacking_past_the_limit_is_refused_unread(http, mock, method, raised):
    """Found by review-fuzz: request_json read a compressed answer whole, so 300 KB of gzip took
    600 MB of memory (one such page could take the daemon, and every city with it). A read is
    refused; a write's answer is of unknown outcome (the peer may have done it)."""
    body = _gzip_of_spaces(1_000_000)
    assert len(body) < 5_000
    mock.route(method=method, path="/api/v1/aduan").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})
    )
    client = peer(http)
    client.max_json_bytes = 100_000

    with pytest.raises(raised, match="over the limit of 100000"):
        await client.request_json(method, "/api/v1/aduan", operation=f"{method} /api/v1/aduan")


async def test_a_compressed_json_answer_within_the_limit_is_read(http, mock):
    mock.get("/api/v1/aduan").mock(
        return_value=httpx.Response(200, content=_gzip_of_spaces(50_000), headers={"Content-Encoding": "gzip"})
    )
    client = peer(http)
    client.max_json_bytes = 100_000

    assert await client.request_json("GET", "/api/v1/aduan") == {"status": "sukses", "data": []}


@pytest.mark.parametrize("path", ["@evil.example/x", "http://evil.example/x", "../admin"])
async def test_a_path_not_below_base_url_is_refused_before_anything_is_sent(http, mock, path):
    """Found by review-fuzz: the path is appended to base_url, so '@evil.example/x' became a
    request to evil.example (base_url's host and port read as a user name) with this peer's
    credentials, and 'http://...' an httpx.InvalidURL escaping as an internal error."""
    route = mock.route().mock(return_value=ok())

    with pytest.raises(PermanentPeerError, match="must start with '/'"):
        await peer(http).request("GET", path, operation="GET /x", headers={"token": "s3cret"})

    assert route.call_count == 0
