"""An HTTP transport that lets the peer's world change in the middle of an adapter's walk.

The kit hands the adapter an ``httpx.AsyncClient`` over this transport. After the k-th
response has come back, and before the adapter reads it, the transport calls an action
(the driver adding records), so the requests after it see a world that changed under
the walk, as a busy app's does, without any hook in the peer itself.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx


class InterruptingTransport(httpx.AsyncBaseTransport):
    """Counts responses; calls ``action`` once, after response number ``after`` (0: never)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, after: int = 0, action: Callable[[], None] | None = None):
        self.inner = inner
        self.after = after
        self.action = action
        self.responses = 0
        self.fired = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.responses += 1
        if self.action is not None and self.responses == self.after:
            self.fired = True
            self.action()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class FailingTransport(httpx.AsyncBaseTransport):
    """Passes the first ``after`` requests to the peer and answers every later one with HTTP
    ``status`` itself (503: a peer that goes down in the middle of a walk); with
    ``writes_only``, only the requests that are not GET or HEAD count and fail."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, after: int, status: int = 503, writes_only: bool = False):
        self.inner = inner
        self.after = after
        self.status = status
        self.writes_only = writes_only
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.writes_only and request.method in ("GET", "HEAD"):
            return await self.inner.handle_async_request(request)
        self.requests += 1
        if self.requests > self.after:
            return httpx.Response(self.status, json={"error": "failed"}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
