"""Auth flows applied by the shared HTTP layer: OAuth2 client credentials (a token fetched once,
renewed before it expires and after a 401, one token request however many requests find it
stale, nothing secret in errors), basic auth and an API-key header; and one run over loopback
against a token endpoint served by aiohttp, through an adapter's ``auth()`` hook."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import web

from gateway import (
    WIB,
    AmbiguousOutcomeError,
    ApiKeyHeader,
    BasicAuth,
    Capability,
    Complaint,
    FollowUp,
    InstanceContext,
    LocalApp,
    OAuth2ClientCredentials,
    PeerClient,
    PermanentPeerError,
    RawStatus,
    RecordError,
    RetryPolicy,
    StatusChange,
    TransientPeerError,
)

pytestmark = pytest.mark.anyio

BASE = "https://wargaku.example.go.id/api"
CLIENT_ID, SECRET = "gateway-semarang", "s3cret-Kp9x"
FAST = RetryPolicy(attempts=1)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """A token endpoint and one API route. Tokens are ``t1``, ``t2``, ...; the API accepts only
    the newest one (an older one is answered 401, as after a revocation)."""

    def __init__(self, expires_in: Any = 120) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.token_auth: list[str | None] = []
        self.api_tokens: list[str] = []
        self.gate: asyncio.Event | None = None  # holds token answers back while set up
        self.token_answer: httpx.Response | None = None
        self.revoked = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_forms.append(parse_qs(request.content.decode()))
            self.token_auth.append(request.headers.get("Authorization"))
            if self.gate is not None:
                await self.gate.wait()
            if self.token_answer is not None:
                return self.token_answer
            self.issued += 1
            body: dict[str, Any] = {"access_token": f"t{self.issued}", "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        given = request.headers.get("Authorization", "")
        self.api_tokens.append(given)
        if self.revoked or given != f"Bearer t{self.issued}":
            self.revoked = False
            return httpx.Response(401, json={"message": "Unauthenticated."})
        return httpx.Response(200, json={"ok": True})


def client_for(peer: Peer, auth: httpx.Auth) -> PeerClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(peer))
    return PeerClient("wargaku", BASE, client=http, retry=FAST, auth=auth)


def oauth(clock: FakeClock | None = None, **kwargs: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials("/oauth/token", CLIENT_ID, SECRET, **kwargs, clock=clock or FakeClock())


async def test_the_first_request_fetches_a_token_with_the_client_credentials_then_uses_it():
    peer = Peer()
    http = client_for(peer, oauth(scope="complaints.read complaints.write"))
    assert await http.request_json("GET", "/complaints") == {"ok": True}
    assert await http.request_json("GET", "/complaints") == {"ok": True}
    assert peer.issued == 1 and peer.api_tokens == ["Bearer t1", "Bearer t1"]
    (form,) = peer.token_forms
    assert form == {"grant_type": ["client_credentials"], "scope": ["complaints.read complaints.write"]}
    assert peer.token_auth == ["Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()]


async def test_client_secret_post_sends_the_credentials_in_the_form():
    peer = Peer()
    await client_for(peer, oauth(client_auth="client_secret_post")).request("GET", "/complaints")
    assert peer.token_forms[0]["client_id"] == [CLIENT_ID] and peer.token_forms[0]["client_secret"] == [SECRET]
    assert peer.token_auth == [None]


async def test_the_token_is_renewed_a_margin_before_it_expires():
    peer, clock = Peer(expires_in=120), FakeClock()
    http = client_for(peer, oauth(clock, margin=30))
    await http.request("GET", "/complaints")
    clock.now += 89.9  # 30 s before the end, less a little: still the first token
    await http.request("GET", "/complaints")
    assert peer.issued == 1
    clock.now += 0.1
    await http.request("GET", "/complaints")
    assert peer.issued == 2 and peer.api_tokens[-1] == "Bearer t2"


async def test_a_short_lived_token_is_renewed_at_half_its_life_not_on_every_request():
    peer, clock = Peer(expires_in=20), FakeClock()  # shorter than the margin
    http = client_for(peer, oauth(clock, margin=30))
    await http.request("GET", "/complaints")
    clock.now += 9
    await http.request("GET", "/complaints")
    assert peer.issued == 1
    clock.now += 1
    await http.request("GET", "/complaints")
    assert peer.issued == 2


async def test_a_401_renews_the_token_once_and_sends_the_request_again():
    peer = Peer(expires_in=None)  # no expiry given: kept until refused
    http = client_for(peer, oauth())
    await http.request("GET", "/complaints")
    peer.revoked = True  # the peer revoked t1 before its time
    assert await http.request_json("POST", "/complaints/7/followups", json={"text": "x"}) == {"ok": True}
    assert peer.issued == 2
    assert peer.api_tokens == ["Bearer t1", "Bearer t1", "Bearer t2"]


async def test_a_second_401_is_the_answer_not_another_renewal():
    peer = Peer()

    async def always_401(request: httpx.Request) -> httpx.Response:
        response = await peer(request)
        return response if request.url.path == "/oauth/token" else httpx.Response(401)

    http = PeerClient(
        "wargaku", BASE, client=httpx.AsyncClient(transport=httpx.MockTransport(always_401)), retry=FAST, auth=oauth()
    )
    with pytest.raises(PermanentPeerError) as caught:
        await http.request("GET", "/complaints")
    assert caught.value.status_code == 401 and peer.issued == 2


async def test_concurrent_requests_with_an_expired_token_cause_one_token_request():
    peer, clock = Peer(expires_in=60), FakeClock()
    http = client_for(peer, oauth(clock, margin=10))
    await http.request("GET", "/complaints")
    clock.now += 3600  # long expired
    peer.gate = asyncio.Event()
    calls = [asyncio.create_task(http.request("GET", f"/complaints/{i}")) for i in range(5)]
    for _ in range(20):  # every request is under way: one at the token endpoint, four waiting for it
        await asyncio.sleep(0)
    assert len(peer.token_forms) == 2, "only one of the five asked for a token"
    peer.gate.set()
    await asyncio.gather(*calls)
    assert peer.issued == 2 and peer.api_tokens[1:] == ["Bearer t2"] * 5


async def test_concurrent_401s_renew_once():
    peer = Peer(expires_in=None)
    http = client_for(peer, oauth())
    await http.request("GET", "/complaints")
    peer.issued += 1  # the peer moved on to t2 behind the gateway's back: t1 is refused now
    peer.gate = asyncio.Event()
    calls = [asyncio.create_task(http.request("GET", f"/complaints/{i}")) for i in range(3)]
    for _ in range(20):
        await asyncio.sleep(0)
    peer.gate.set()
    await asyncio.gather(*calls)
    assert len(peer.token_forms) == 2 and peer.issued == 3
    assert peer.api_tokens[-3:] == ["Bearer t3"] * 3


async def test_a_refused_token_request_names_the_oauth_error_and_no_secret():
    peer = Peer()
    peer.token_answer = httpx.Response(
        401, json={"error": "invalid_client", "error_description": f"client {CLIENT_ID} secret {SECRET} is wrong"}
    )
    auth = oauth()
    http = client_for(peer, auth)
    with pytest.raises(PermanentPeerError) as caught:
        await http.request("POST", "/complaints/7/followups", json={"text": "x"})
    text = str(caught.value)
    assert "token endpoint answered HTTP 401 (invalid_client)" in text
    assert SECRET not in text and CLIENT_ID not in text and "Bearer" not in text
    assert SECRET not in repr(auth) and SECRET not in repr(caught.value)
    assert peer.api_tokens == [], "the call's own request was never sent"


async def test_a_token_endpoint_that_fails_is_transient_even_for_a_write():
    """The write was not sent (the token came first), so it is not of unknown outcome."""
    peer = Peer()
    peer.token_answer = httpx.Response(503)
    with pytest.raises(TransientPeerError) as caught:
        await client_for(peer, oauth()).request("POST", "/complaints/7/followups", json={"text": "x"})
    assert not isinstance(caught.value, AmbiguousOutcomeError) and caught.value.status_code == 503

    async def unreachable_token(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={})

    http = PeerClient(
        "wargaku", BASE, client=httpx.AsyncClient(transport=httpx.MockTransport(unreachable_token)), retry=FAST,
        auth=oauth(),
    )  # fmt: skip
    with pytest.raises(TransientPeerError, match=r"token request failed \(ReadTimeout\)"):
        await http.request("POST", "/complaints/7/followups", json={"text": "x"})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"token_type": "Bearer"}, "without access_token"),
        ({"access_token": "abc", "token_type": "mac"}, "token_type other than bearer"),
        ({"access_token": "abc", "expires_in": "soon"}, "expires_in that is not a number"),
    ],
)
async def test_an_unusable_token_answer_is_refused_by_field(body, reason):
    peer = Peer()
    peer.token_answer = httpx.Response(200, json=body)
    with pytest.raises(PermanentPeerError, match=reason) as caught:
        await client_for(peer, oauth()).request("GET", "/complaints")
    assert "abc" not in str(caught.value)


async def test_a_token_answer_nested_too_deeply_is_no_json_object_not_an_internal_error():
    """Found by review-fuzz: json.loads let RecursionError out of the token answer's reading."""
    peer = Peer()
    peer.token_answer = httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(TransientPeerError, match="token endpoint answered without a JSON object"):
        await client_for(peer, oauth()).request("GET", "/complaints")


async def test_basic_auth_and_api_key_header():
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={})

    for auth in (BasicAuth("gateway", SECRET), ApiKeyHeader("X-Api-Key", SECRET)):
        http = PeerClient("wargaku", BASE, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), auth=auth)
        await http.request("GET", "/complaints")
        assert SECRET not in repr(auth)
    assert seen[0]["Authorization"] == "Basic " + base64.b64encode(f"gateway:{SECRET}".encode()).decode()
    assert seen[1]["X-Api-Key"] == SECRET


# -- end to end: an adapter's auth() hook against a token endpoint over loopback ------------------


class TokenServer:
    """A tiny OAuth2 token endpoint and a protected list, served by aiohttp on 127.0.0.1."""

    def __init__(self) -> None:
        self.issued = 0
        self.token_requests = 0
        self.refused: list[str] = []
        app = web.Application()
        app.router.add_post("/oauth/token", self.token)
        app.router.add_get("/api/complaints", self.complaints)
        self.runner = web.AppRunner(app)
        self.base_url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        self.issued += 1
        return web.json_response({"access_token": f"tok-{self.issued}", "token_type": "bearer", "expires_in": 120})

    async def complaints(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer tok-{self.issued}":
            self.refused.append(request.headers.get("Authorization", ""))
            return web.json_response({"message": "Unauthenticated."}, status=401)
        return web.json_response({"data": [{"id": 1}]})


CLOCK = FakeClock()


class WargaKu(LocalApp):
    """A local app whose API takes OAuth2 client-credentials tokens of two minutes."""

    secret_names: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})

    def auth(self) -> httpx.Auth:
        secrets = self.context.secrets
        return OAuth2ClientCredentials("/oauth/token", secrets["client_id"], secrets["client_secret"], clock=CLOCK)

    async def count(self) -> int:
        body = await self.http.request_json("GET", "/api/complaints")
        return len(body["data"])

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        return
        yield

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        return
        yield

    async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError]:
        return
        yield

    async def write_status(self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str) -> None:
        return None

    async def write_follow_up(self, complaint_ref: str, content: str, **kwargs: Any) -> None:
        return None


@pytest.mark.e2e
async def test_an_adapter_with_oauth2_over_loopback_renews_on_expiry_and_after_a_revocation():
    server = TokenServer()
    await server.start()
    app = WargaKu(
        InstanceContext(
            name="wargaku",
            base_url=server.base_url,
            timezone=WIB,
            secrets={"client_id": CLIENT_ID, "client_secret": SECRET},
        )
    )
    try:
        assert await app.count() == 1
        assert await asyncio.gather(app.count(), app.count()) == [1, 1]
        assert (server.token_requests, server.refused) == (1, [])
        CLOCK.now += 95  # past 120 s less the 30 s margin
        assert await asyncio.gather(app.count(), app.count(), app.count()) == [1, 1, 1]
        assert server.token_requests == 2, "renewed once before expiry, by one of the three"
        server.issued += 1  # revoked at the peer: tok-2 is refused from now on
        assert await app.count() == 1
        assert server.token_requests == 3 and server.refused == ["Bearer tok-2"]
    finally:
        await app.aclose()
        await server.runner.cleanup()
