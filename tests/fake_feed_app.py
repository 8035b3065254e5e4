"""A small local app for the engine's tests of peer positions and current-state peers: an
in-memory peer served through httpx.MockTransport, and two adapters for it written as an
adapter author would, with the public API only.

The peer keeps each complaint's current state only (no status history) and offers two lists:
``GET /changes?cursor=`` (a change feed ordered by an opaque token, answering ``next_cursor``
and ``has_more``) and ``GET /complaints?since=`` (every complaint modified since, in one
answer, newest first). ``POST /complaints/{id}/status`` sets a status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
from conftest import write_config

from gateway import (
    AttachmentContent,
    Capability,
    Classification,
    Complaint,
    FollowUp,
    InstanceContext,
    LocalApp,
    PeerPosition,
    RawStatus,
    RecordError,
    StatusChange,
    TokenPage,
    walk_by_token,
    walk_list,
)
from gateway._config import load_config
from gateway._engine._mapping import Route

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"  # the shipped config's instances (their status tables)
ENVIRON = {"LAPOR_HENDI_API_KEY": "k", "SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "t"}
T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)


class Peer:
    def __init__(self, page_size: int = 2):
        self.now = T0
        self.complaints: dict[str, dict[str, Any]] = {}
        self.feed: list[dict[str, Any]] = []  # each change, with the complaint as it was then
        self.page_size = page_size
        self.asked: list[httpx.Request] = []
        self.broken: set[str] = set()  # complaints whose next change is served without a title

    def _changed(self, ref: str) -> None:
        self.now += timedelta(minutes=1)
        self.complaints[ref]["updated_at"] = self.now.isoformat()
        snapshot = dict(self.complaints[ref])
        if ref in self.broken:
            self.broken.discard(ref)
            snapshot.pop("title")
        self.feed.append(snapshot)

    def file(self, ref: str, status: str = "belum terverifikasi") -> None:
        self.complaints[ref] = {"id": ref, "title": "Lampu jalan mati", "status": status}
        self.complaints[ref]["created_at"] = (self.now + timedelta(minutes=1)).isoformat()
        self._changed(ref)

    def set_status(self, ref: str, status: str) -> None:
        self.complaints[ref]["status"] = status
        self._changed(ref)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request)
        path = request.url.path
        if path == "/changes":
            start = int(request.url.params.get("cursor", "c0")[1:])
            page = self.feed[start : start + self.page_size]
            end = start + len(page)
            return httpx.Response(200, json={"items": page, "next_cursor": f"c{end}", "has_more": end < len(self.feed)})
        if path == "/complaints" and request.method == "GET":
            since = request.url.params.get("since")
            found = [c for c in self.complaints.values() if since is None or c["updated_at"] >= since]
            return httpx.Response(200, json=sorted(found, key=lambda c: c["updated_at"], reverse=True))
        if path.startswith("/complaints/") and path.endswith("/status"):
            ref = path.split("/")[2]
            self.set_status(ref, json.loads(request.content)["status"])
            return httpx.Response(200, json={"id": f"st-{len(self.feed)}"})
        return httpx.Response(404, json={"error": "not found"})


class _FeedApp(LocalApp):
    """The translation both adapters share; no follow-ups, no attachments."""

    async def _nothing(self) -> AsyncIterator[Any]:
        for item in ():
            yield item

    def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError | PeerPosition]:
        return self._nothing()

    def _complaint(self, raw: Any) -> Complaint | RecordError:
        if "title" not in raw:
            return RecordError(self.name, "complaints", "field 'title' is missing", record_ref=raw.get("id"))
        return Complaint(
            ref=raw["id"],
            title=raw["title"],
            body="Sudah tiga malam gelap.",
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
            status=RawStatus(raw["status"], raw["status"]),
            category="Jalan Rusak",
            classification=Classification.COMPLAINT,
            channel="web",
        )

    async def write_status(
        self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str
    ) -> str | None:
        body = await self.http.request_json(
            "POST", f"/complaints/{complaint_ref}/status", json={"status": status.code, "ref": gateway_ref}
        )
        return str(body["id"])

    async def write_follow_up(
        self,
        complaint_ref: str,
        content: str,
        *,
        author: str | None,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Sequence[AttachmentContent] = (),
    ) -> str | None:
        raise AssertionError("not used by these tests")


class ChangesFeedApp(_FeedApp):
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})
    """Complaints from the change feed, resumed from the position the engine keeps."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError | PeerPosition]:
        async def fetch(token: str | None) -> TokenPage:
            body = await self.http.request_json("GET", "/changes", params={"cursor": token} if token else {})
            return TokenPage(body["items"], body["next_cursor"], last=not body["has_more"])

        start = self.position("complaints")
        async for raw in walk_by_token(fetch, peer=self.name, stream="complaints", start=start, positions=True):
            yield raw if isinstance(raw, PeerPosition) else self._complaint(raw)

    async def status_changes_since(
        self, since: datetime | None
    ) -> AsyncIterator[StatusChange | RecordError | PeerPosition]:
        for item in ():
            yield item


class CurrentStateApp(_FeedApp):
    """Complaints as they are now, modified since the cursor; the app keeps no status history."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError | PeerPosition]:
        async def fetch() -> list[Any]:
            params = {"since": since.isoformat()} if since else {}
            return list(await self.http.request_json("GET", "/complaints", params=params))

        async for raw in walk_list(fetch, order_by=lambda c: datetime.fromisoformat(c["updated_at"])):
            yield self._complaint(raw)


def connect(app_class: type[_FeedApp], peer: Peer) -> _FeedApp:
    context = InstanceContext(name=LOCAL, base_url="http://feed.test", timezone=UTC)
    return app_class(context, client=httpx.AsyncClient(transport=httpx.MockTransport(peer.handle)))


def route(folder: Path, store_url: str) -> Route:
    config = load_config(write_config(folder, store_url, {}), environ=ENVIRON)
    return Route(local=config.instances[LOCAL], hub=config.instances[HUB])
