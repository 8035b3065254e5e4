"""The paging helpers for offsets, opaque tokens, Link headers and whole lists, against a
peer served by httpx.MockTransport through the gateway's own PeerClient: every record
once, in order, and a peer that would loop stopped with an error naming it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway import (
    PeerClient,
    PeerPosition,
    PermanentPeerError,
    RetryPolicy,
    TokenPage,
    walk_by_link,
    walk_by_offset,
    walk_by_token,
    walk_list,
)

pytestmark = [pytest.mark.anyio]

BASE = "http://peer.test/api"
RECORDS = [{"id": str(n)} for n in range(1, 24)]  # 23: two full pages of 10 and a short one


def client(handler: Callable[[httpx.Request], httpx.Response]) -> PeerClient:
    return PeerClient(
        "wargaku",
        BASE,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(attempts=1),
    )


async def collect(walk: Any) -> list[Any]:
    return [item async for item in walk]


async def test_walk_by_offset_reads_every_record_once_and_stops_at_a_short_page() -> None:
    asked: list[int] = []

    def serve(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        asked.append(offset)
        return httpx.Response(200, json={"data": RECORDS[offset : offset + limit]})

    http = client(serve)

    async def fetch(offset: int) -> list[Any]:
        body = await http.request_json("GET", "/aduan", params={"offset": offset, "limit": 10})
        return list(body["data"])

    assert await collect(walk_by_offset(fetch, page_size=10, peer="wargaku", stream="complaints")) == RECORDS
    assert asked == [0, 10, 20]


async def test_walk_by_offset_ends_on_an_empty_page_after_an_exact_fit() -> None:
    pages = {0: RECORDS[:10], 10: RECORDS[10:20], 20: []}

    async def fetch(offset: int) -> list[Any]:
        return pages[offset]

    assert await collect(walk_by_offset(fetch, page_size=10, peer="wargaku", stream="complaints")) == RECORDS[:20]


async def test_walk_by_offset_stops_a_peer_that_ignores_the_offset() -> None:
    http = client(lambda request: httpx.Response(200, json={"data": RECORDS[:10]}))

    async def fetch(offset: int) -> list[Any]:
        body = await http.request_json("GET", "/aduan", params={"offset": offset, "limit": 10})
        return list(body["data"])

    seen: list[Any] = []
    with pytest.raises(PermanentPeerError) as caught:
        async for item in walk_by_offset(fetch, page_size=10, peer="wargaku", stream="complaints"):
            seen.append(item)
    assert seen == RECORDS[:10]  # the first page was passed on once, then the loop was seen
    assert caught.value.peer == "wargaku" and caught.value.operation == "complaints"
    assert "never end" in str(caught.value)


def token_peer(pages: dict[str | None, tuple[list[Any], str | None]]) -> PeerClient:
    def serve(request: httpx.Request) -> httpx.Response:
        items, nxt = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"items": items, "next_cursor": nxt})

    return client(serve)


def token_fetch(http: PeerClient) -> Callable[[str | None], Any]:
    async def fetch(token: str | None) -> TokenPage:
        params = {"cursor": token} if token else {}
        body = await http.request_json("GET", "/changes", params=params)
        return TokenPage(items=body["items"], next_token=body["next_cursor"])

    return fetch


async def test_walk_by_token_follows_the_tokens_to_the_last_page() -> None:
    http = token_peer({None: (RECORDS[:10], "b"), "b": (RECORDS[10:20], "c"), "c": (RECORDS[20:], None)})
    assert await collect(walk_by_token(token_fetch(http), peer="wargaku", stream="follow_ups")) == RECORDS


async def test_walk_by_token_stops_a_peer_that_answers_an_earlier_token_again() -> None:
    http = token_peer({None: (RECORDS[:10], "b"), "b": (RECORDS[10:20], "c"), "c": (RECORDS[20:], "b")})
    with pytest.raises(PermanentPeerError, match=r"wargaku: follow_ups: .*token it gave before"):
        await collect(walk_by_token(token_fetch(http), peer="wargaku", stream="follow_ups"))


async def test_walk_by_token_marks_each_page_end_with_a_position_when_asked() -> None:
    async def fetch(token: str | None) -> TokenPage:
        if token is None:
            return TokenPage(RECORDS[:2], "p2")
        return TokenPage(RECORDS[2:3], "p3", last=True)  # a change feed: resume at p3 next time

    walked = await collect(walk_by_token(fetch, peer="wargaku", stream="complaints", positions=True))
    assert walked == [*RECORDS[:2], PeerPosition("p2"), RECORDS[2], PeerPosition("p3")]


async def test_walk_by_token_starts_from_a_stored_position() -> None:
    asked: list[str | None] = []

    async def fetch(token: str | None) -> TokenPage:
        asked.append(token)
        return TokenPage([RECORDS[0]], None)

    await collect(walk_by_token(fetch, peer="wargaku", stream="complaints", start="p7"))
    assert asked == ["p7"]


def link_peer(next_of: dict[str, str | None]) -> PeerClient:
    """Pages at /aduan?page=N, each linking the next (``next_of``: the Link value to send)."""

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        headers = {}
        nxt = next_of.get(str(page))
        if nxt:
            headers["Link"] = f'<{nxt}>; rel="next", <{BASE}/aduan?page=1>; rel="first"'
        return httpx.Response(200, json=RECORDS[(page - 1) * 10 : page * 10], headers=headers)

    return client(serve)


async def link_walk(http: PeerClient) -> list[Any]:
    async def fetch(path: str) -> httpx.Response:
        return await http.request("GET", path)

    return await collect(
        walk_by_link(fetch, "/aduan", lambda r: list(r.json()), base_url=BASE, peer="wargaku", stream="complaints")
    )


async def test_walk_by_link_follows_absolute_and_relative_next_links() -> None:
    # An absolute link first, then one relative to the page (resolved as a browser would).
    http = link_peer({"1": f"{BASE}/aduan?page=2", "2": "aduan?page=3"})
    assert await link_walk(http) == RECORDS


async def test_walk_by_link_stops_a_peer_that_links_back() -> None:
    http = link_peer({"1": f"{BASE}/aduan?page=2", "2": f"{BASE}/aduan?page=2"})
    with pytest.raises(PermanentPeerError, match="wargaku: complaints: gave a next-page link it gave before"):
        await link_walk(http)


async def test_walk_by_link_refuses_a_link_to_another_host_without_naming_it() -> None:
    http = link_peer({"1": "http://elsewhere.test/steal?token=secret"})
    with pytest.raises(PermanentPeerError) as caught:
        await link_walk(http)
    assert "away from the peer's base_url" in str(caught.value)
    assert "elsewhere" not in str(caught.value) and "secret" not in str(caught.value)


async def test_walk_list_passes_a_whole_list_on_oldest_first() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    answer = [
        {"id": "3", "t": t0 + timedelta(minutes=3)},
        {"id": "x", "t": None},
        {"id": "1", "t": t0 + timedelta(minutes=1)},
        {"id": "2", "t": t0 + timedelta(minutes=1)},
    ]
    http = client(lambda request: httpx.Response(200, json=[{**r, "t": r["t"] and r["t"].isoformat()} for r in answer]))

    async def fetch() -> list[Any]:
        return list(await http.request_json("GET", "/kategori"))

    def when(raw: Any) -> datetime | None:
        return datetime.fromisoformat(raw["t"]) if raw["t"] else None

    walked = [r["id"] for r in await collect(walk_list(fetch, order_by=when))]
    assert walked == ["x", "1", "2", "3"]  # the unreadable first (for quarantine), ties in the peer's order
    assert [r["id"] for r in await collect(walk_list(fetch))] == ["3", "x", "1", "2"]


def test_a_position_keeps_its_value_out_of_its_repr() -> None:
    assert "abc" not in repr(PeerPosition("abc"))
    with pytest.raises(ValueError):
        PeerPosition("")
