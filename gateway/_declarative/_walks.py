"""Walking a described list with the gateway's paging helpers: each paging style of the
description maps to one helper, so the stream rules hold as they do for a Python adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, tzinfo
from typing import Any

import httpx

from gateway._declarative._records import record_key, search, write_time
from gateway._declarative._schema import (
    LinkPaging,
    ListSpec,
    NoPaging,
    OffsetPaging,
    PageByTime,
    Times,
    TokenPaging,
)
from gateway._errors import PermanentPeerError
from gateway._http import PeerClient, decode_json
from gateway._paging import TimePage, walk_by_time
from gateway._paging_styles import TokenPage, walk_by_link, walk_by_offset, walk_by_token, walk_list


class ListWalk:
    """One described list of one instance: ``walk(since, start)`` yields its raw records
    (and, for a feed whose position the engine keeps, :class:`gateway.PeerPosition` markers)."""

    def __init__(
        self,
        spec: ListSpec,
        http: PeerClient,
        *,
        base_url: str,
        peer: str,
        stream: str,
        times: Times,
        zone: tzinfo,
        key: tuple[str, str],
    ):
        self.spec, self.http, self.peer, self.stream = spec, http, peer, stream
        self.base_url = base_url
        self.times, self.zone = times, zone
        self.operation = f"{spec.request.method} {spec.request.path}"
        self.key: Callable[[Any], tuple[str, datetime] | None] = record_key(*key, times, zone)

    def _items(self, body: Any) -> list[Any]:
        items = search(self.spec.records, body)
        if not isinstance(items, list):
            raise PermanentPeerError(
                self.peer, self.operation, f"answered without a list at {self.spec.records!r} (see records:)"
            )
        return items

    def _params(self, since: datetime | None) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.spec.request.params)
        if since is not None and self.spec.request.since_param is not None:
            params[self.spec.request.since_param] = write_time(since, self.times, self.zone)
        return params

    async def _get(self, params: dict[str, Any]) -> Any:
        request = self.spec.request
        if request.method == "GET":
            return await self.http.request_json("GET", request.path, params=params, operation=self.operation)
        # A search sent as POST changes nothing: safe to repeat.
        return await self.http.request_json(
            "POST", request.path, json=params, idempotent=True, operation=self.operation
        )

    def walk(self, since: datetime | None, start: str | None = None) -> AsyncIterator[Any]:
        paging = self.spec.paging
        if isinstance(paging, PageByTime):
            return walk_by_time(self._fetch_time_page(paging), self.key, since, peer=self.peer, stream=self.stream)
        if isinstance(paging, OffsetPaging):
            return self._by_offset(paging, since)
        if isinstance(paging, TokenPaging):
            return self._by_token(paging, since, start)
        if isinstance(paging, LinkPaging):
            return self._by_link(since)
        assert isinstance(paging, NoPaging)
        return self._whole(since)

    def _fetch_time_page(self, paging: PageByTime) -> Callable[[datetime | None, int], Any]:
        async def fetch(boundary: datetime | None, page: int) -> TimePage:
            params = self._params(boundary)
            params[paging.page_param] = page
            if paging.size_param:
                params[paging.size_param] = paging.page_size
            body = await self._get(params)
            items = self._items(body)
            last = bool(search(paging.last_page, body)) if paging.last_page else len(items) < paging.page_size
            total = search(paging.total, body) if paging.total else None
            return TimePage(items=items, total=total if isinstance(total, int) else None, last=last)

        return fetch

    async def _by_offset(self, paging: OffsetPaging, since: datetime | None) -> AsyncIterator[Any]:
        async def fetch(offset: int) -> list[Any]:
            params = self._params(since)
            params.update({paging.offset_param: offset, paging.limit_param: paging.page_size})
            return self._items(await self._get(params))

        async for item in walk_by_offset(fetch, page_size=paging.page_size, peer=self.peer, stream=self.stream):
            yield item

    async def _by_token(self, paging: TokenPaging, since: datetime | None, start: str | None) -> AsyncIterator[Any]:
        async def fetch(token: str | None) -> TokenPage:
            # A stored position stands for everything before it: the time filter is then not needed.
            params = self._params(since if start is None else None)
            if token is not None:
                params[paging.token_param] = token
            body = await self._get(params)
            items = self._items(body)
            next_token = search(paging.next_token, body)
            if next_token is not None and not isinstance(next_token, str):
                raise PermanentPeerError(self.peer, self.operation, "answered a next token that is not a text")
            last = not search(paging.has_more, body) if paging.has_more else None
            return TokenPage(items=items, next_token=next_token or None, last=last)

        start = start if paging.keep_position else None
        walk = walk_by_token(fetch, peer=self.peer, stream=self.stream, start=start, positions=paging.keep_position)
        async for item in walk:
            yield item

    async def _by_link(self, since: datetime | None) -> AsyncIterator[Any]:
        first = str(httpx.URL(self.spec.request.path).copy_merge_params(self._params(since)))

        async def fetch(path: str) -> httpx.Response:
            # Read with the limit request_json applies: a compressed answer may unpack to gigabytes.
            return await self.http.request("GET", path, operation=self.operation, max_bytes=self.http.max_json_bytes)

        def items(response: httpx.Response) -> list[Any]:
            try:
                body = decode_json(response.content)
            except ValueError:
                raise PermanentPeerError(self.peer, self.operation, "answered malformed JSON") from None
            return self._items(body)

        walk = walk_by_link(fetch, first, items, base_url=self.base_url, peer=self.peer, stream=self.stream)
        async for item in walk:
            yield item

    async def _whole(self, since: datetime | None) -> AsyncIterator[Any]:
        async def fetch() -> list[Any]:
            return self._items(await self._get(self._params(since)))

        def order_by(raw: Any) -> datetime | None:
            found = self.key(raw)
            return None if found is None else found[1]

        async for item in walk_list(fetch, order_by=order_by):
            yield item
