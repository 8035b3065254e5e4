"""Walking the other kinds of lists peers offer: by offset, by an opaque next-page token,
by RFC 8288 ``Link: <...>; rel="next"`` headers, and lists answered whole.

Each walk is an async generator over the raw records, driven by a small ``fetch``
callable the adapter writes (it makes the request and checks the envelope). A peer
that answers the same token again, a link it gave before, or the same full page for
another offset would keep a walk going for ever; the walk raises
:class:`gateway.PermanentPeerError` naming the peer and the stream instead (never the
token or the URL: they may carry anything).

None of these orders a list by itself: a stream still has to keep the stream rule
(docs/adapters.md, "The stream rules"). A list ordered by update time and paged by
number or offset shifts under a walk; read it with :func:`gateway.walk_by_time`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from gateway._errors import PermanentPeerError
from gateway._position import PeerPosition


def looping_error(peer: str, stream: str, what: str) -> PermanentPeerError:
    return PermanentPeerError(peer, stream, f"{what}: the walk would never end, so it stops here")


async def walk_by_offset(
    fetch: Callable[[int], Awaitable[list[Any]]], *, page_size: int, peer: str, stream: str, start: int = 0
) -> AsyncIterator[Any]:
    """Every record of an offset-paged list (``?offset=&limit=``), in the list's order.

    ``fetch(offset)`` asks for the ``page_size`` records from ``offset`` on. The walk
    ends at the first page shorter than ``page_size``. A full page equal to the one
    before (a peer ignoring the offset) raises :class:`gateway.PermanentPeerError`.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    offset, before = start, None
    while True:
        items = await fetch(offset)
        if len(items) >= page_size and items == before:
            raise looping_error(peer, stream, f"offset {offset} answered the same page as the offset before")
        for item in items:
            yield item
        if len(items) < page_size:
            return
        offset, before = offset + len(items), items


@dataclass(frozen=True)
class TokenPage:
    """One page of a list paged by an opaque token (``next_cursor``, ``nextPageToken``)."""

    items: list[Any]
    next_token: str | None  # what to ask for the next page with; None: this is the last
    # No page after this one (default: no next_token). A change feed may give a token with
    # its last page, to resume from next time: set ``last=True`` and keep the token.
    last: bool | None = None


async def walk_by_token(
    fetch: Callable[[str | None], Awaitable[TokenPage]],
    *,
    peer: str,
    stream: str,
    start: str | None = None,
    positions: bool = False,
) -> AsyncIterator[Any]:
    """Every record of a token-paged list, in the list's order.

    ``fetch(token)`` asks for the page at ``token`` (``None``: the first page). A token
    answered twice in one walk raises :class:`gateway.PermanentPeerError`. With
    ``positions``, a :class:`gateway.PeerPosition` of each page's next token follows that
    page's records, for the engine to store and give back as ``self.position(stream)``
    (a change feed ordered by the token: see docs/adapters.md, "A peer's own cursor").
    """
    token, seen = start, {start}
    while True:
        page = await fetch(token)
        for item in page.items:
            yield item
        if positions and page.next_token is not None:
            yield PeerPosition(page.next_token)
        last = page.last if page.last is not None else page.next_token is None
        if last or page.next_token is None:
            return
        if page.next_token in seen:
            raise looping_error(peer, stream, "answered a next-page token it gave before")
        token = page.next_token
        seen.add(token)


async def walk_by_link(
    fetch: Callable[[str], Awaitable[httpx.Response]],
    first: str,
    items: Callable[[httpx.Response], list[Any]],
    *,
    base_url: str,
    peer: str,
    stream: str,
) -> AsyncIterator[Any]:
    """Every record of a list paged by RFC 8288 ``Link`` headers (``rel="next"``).

    ``fetch(path)`` gets one page (``first``, then each next link as a path below
    ``base_url``, query included: what ``self.http.request("GET", path)`` takes);
    ``items(response)`` reads its records. A next link outside ``base_url`` (the
    adapter's headers would go to another host) or one given before raises
    :class:`gateway.PermanentPeerError`.
    """
    root = base_url.rstrip("/")
    path, seen = first, {first}
    while True:
        response = await fetch(path)
        for item in items(response):
            yield item
        link = response.links.get("next", {}).get("url")
        if not link:
            return
        url = str(response.request.url.join(link)) if _has_request(response) else link
        if not url.startswith(root + "/") and url != root:
            raise PermanentPeerError(peer, stream, "its next-page link leads away from the peer's base_url")
        path = url[len(root) :]
        if path in seen:
            raise looping_error(peer, stream, "gave a next-page link it gave before")
        seen.add(path)


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 - raises when the response was built without one
    except RuntimeError:
        return False
    return True


async def walk_list(
    fetch: Callable[[], Awaitable[list[Any]]], *, order_by: Callable[[Any], datetime | None] | None = None
) -> AsyncIterator[Any]:
    """The records of a list the peer answers whole, in one response.

    With ``order_by`` (a record's time, or None when it cannot be read), records are
    passed on oldest first, as a stream must (a peer's single list is often in no order
    or newest first); the unreadable ones come first, for the adapter to quarantine.
    """
    records = await fetch()
    if order_by is None:
        for item in records:
            yield item
        return
    keyed = [(order_by(item), n, item) for n, item in enumerate(records)]
    unreadable = [item for when, _, item in keyed if when is None]
    readable = sorted(((when, n, item) for when, n, item in keyed if when is not None), key=lambda k: (k[0], k[1]))
    for item in unreadable:
        yield item
    for _, _, item in readable:
        yield item
