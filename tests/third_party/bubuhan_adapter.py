"""A third party's adapter for "Lapor Bubuhan" (see bubuhan_sim.py), written from
docs/adapters.md and the names ``gateway`` exports only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from gateway import (
    AmbiguousOutcomeError,
    BasicAuth,
    Capability,
    Complaint,
    FollowUp,
    LocalApp,
    Location,
    PermanentPeerError,
    RawStatus,
    RecordError,
    Reporter,
    StatusChange,
    TimePage,
    Write,
    parse_peer_time,
    walk_by_time,
    walk_children,
)

OP_LIST = "GET /api/v2/tickets"
OP_FOLLOW_UP = "POST /api/v2/tickets/{no}/tindaklanjut"
OP_STATE = "PATCH /api/v2/tickets/{no}"
FU_FMT = "%Y-%m-%d %H:%M:%S"
LOG_FMT = "%d/%m/%Y %H:%M:%S"


class Unreadable(Exception):
    """A field of a record that cannot be read; the text names the field, never the value."""


def from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def text(raw: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise Unreadable(f"{key}: missing or not a text")
    return value


def ref_of(raw: Any, key: str) -> str | None:
    value = raw.get(key) if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


class BubuhanApp(LocalApp):
    """Lapor Bubuhan, Kota Balikpapan: basic auth, epoch-ms tickets, WITA follow-ups, page tokens."""

    secret_names: ClassVar[tuple[str, ...]] = ("username", "password")
    idempotent_writes: ClassVar[frozenset[Write]] = frozenset({Write.STATUS, Write.FOLLOW_UP})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        page_size: int = Field(20, ge=1, le=100)

    settings: Settings

    def auth(self) -> httpx.Auth:
        return BasicAuth(self.context.secrets["username"], self.context.secrets["password"])

    # -- reading --------------------------------------------------------------------------------

    def _tickets(self, since: datetime | None) -> AsyncIterator[Any]:
        """Every raw ticket modified at or after ``since``, with walk_by_time over page tokens:
        page n of one boundary is asked with the token page n-1 of that boundary gave."""
        tokens: dict[tuple[datetime | None, int], str] = {}

        async def fetch(boundary: datetime | None, page: int) -> TimePage:
            params: dict[str, Any] = {"pageSize": self.settings.page_size}
            if boundary is not None:
                params["modifiedSince"] = int(boundary.timestamp() * 1000)
            if page > 1:
                params["pageToken"] = tokens[(boundary, page - 1)]
            body = await self.http.request_json("GET", "/api/v2/tickets", params=params, operation=OP_LIST)
            if not isinstance(body, dict) or body.get("ok") is not True or not isinstance(body.get("tickets"), list):
                raise PermanentPeerError(self.name, OP_LIST, "answered without ok and a tickets list")
            token = body.get("nextPageToken")
            if isinstance(token, str):
                tokens[(boundary, page)] = token
            return TimePage(items=body["tickets"], total=None, last=not isinstance(token, str))

        return walk_by_time(fetch, self._ticket_key, since)

    def _ticket_key(self, raw: Any) -> tuple[str, datetime] | None:
        ref = ref_of(raw, "ticketNo")
        modified = from_ms(raw.get("modifiedMs")) if isinstance(raw, dict) else None
        if ref is None or modified is None:
            return None
        return ref, modified

    def _read(self, raw: Any, operation: str, id_key: str, translate: Callable[[dict[str, Any]], Any]) -> Any:
        try:
            if not isinstance(raw, dict):
                raise Unreadable("not an object")
            return translate(raw)
        except Unreadable as exc:
            return RecordError(self.name, operation, str(exc), record_ref=ref_of(raw, id_key))

    def _complaint(self, raw: dict[str, Any]) -> Complaint:
        ref = ref_of(raw, "ticketNo")
        if ref is None:
            raise Unreadable("ticketNo: missing")
        created, modified = from_ms(raw.get("createdMs")), from_ms(raw.get("modifiedMs"))
        if created is None or modified is None:
            raise Unreadable("createdMs/modifiedMs: missing or not epoch milliseconds")
        state = raw.get("state")
        if not isinstance(state, dict) or not isinstance(state.get("code"), str):
            raise Unreadable("state.code: missing or not a text")
        anonymous = raw.get("anonim") is True
        reporter = None
        pelapor = None if anonymous else raw.get("pelapor")
        if isinstance(pelapor, dict) and isinstance(pelapor.get("profil"), dict):
            p = pelapor["profil"]
            reporter = Reporter.from_peer(
                {"name": p.get("namaLengkap"), "nik": p.get("nik"), "phone": p.get("hp"), "email": p.get("surel")},
                where={
                    "name": "pelapor.profil.namaLengkap",
                    "nik": "pelapor.profil.nik",
                    "phone": "pelapor.profil.hp",
                    "email": "pelapor.profil.surel",
                },
                record=ref,
            )
        lokasi = raw.get("lokasi") if isinstance(raw.get("lokasi"), dict) else {}
        return Complaint(
            ref=ref,
            title=text(raw, "subject", required=True) or "",
            body=text(raw, "narrative", required=True) or "",
            created_at=created,
            updated_at=modified,
            status=RawStatus(state["code"], state.get("label") if isinstance(state.get("label"), str) else None),
            category=text(raw, "topic"),
            channel=text(raw, "via"),
            location=Location(
                description=text(lokasi, "alamat"),
                subdistrict=text(lokasi, "kelurahan"),
                district=text(lokasi, "kecamatan"),
            ),
            is_anonymous=anonymous,
            is_secret=isinstance(pelapor, dict) and pelapor.get("rahasiakan") is True,
            reporter=reporter,
        )

    def _local_time(self, value: Any, fmt: str, field: str) -> datetime:
        if not isinstance(value, str):
            raise Unreadable(f"{field}: missing or not a text")
        try:
            return parse_peer_time(value, fmt, self.context.timezone)
        except ValueError:
            raise Unreadable(f"{field}: not a time as {fmt}") from None

    def _child_time(self, key: str, fmt: str) -> Callable[[Any], datetime | None]:
        def read(raw: Any) -> datetime | None:
            try:
                return self._local_time(raw.get(key) if isinstance(raw, dict) else None, fmt, key)
            except Unreadable:
                return None

        return read

    @staticmethod
    def _embedded(key: str) -> Callable[[Any], Any]:
        async def children(raw_ticket: Any) -> list[Any]:
            value = raw_ticket.get(key) if isinstance(raw_ticket, dict) else None
            if not isinstance(value, list):
                return []
            # the child needs its ticket's id: the app does not repeat it on each entry
            return [{**c, "_ticket": raw_ticket.get("ticketNo")} if isinstance(c, dict) else c for c in value]

        return children

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        async for raw in self._tickets(since):
            yield self._read(raw, OP_LIST, "ticketNo", self._complaint)

    def _follow_up(self, raw: dict[str, Any]) -> FollowUp:
        fu_ref, ticket = ref_of(raw, "fuId"), ref_of(raw, "_ticket")
        if fu_ref is None or ticket is None:
            raise Unreadable("fuId: missing")
        oleh = raw.get("oleh")
        return FollowUp(
            ref=fu_ref,
            complaint_ref=ticket,
            content=text(raw, "isi", required=True) or "",
            created_at=self._local_time(raw.get("waktu"), FU_FMT, "waktu"),
            author=text(oleh, "nama") if isinstance(oleh, dict) else None,
            gateway_ref=text(raw, "extRef"),
        )

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        async for raw in walk_children(
            self._tickets(since),
            self._ticket_key,
            self._embedded("tindakLanjut"),
            self._child_time("waktu", FU_FMT),
            peer=self.name,
            stream="follow_ups",
        ):
            yield raw if isinstance(raw, RecordError) else self._read(raw, OP_LIST, "fuId", self._follow_up)

    def _status_change(self, raw: dict[str, Any]) -> StatusChange:
        log_ref, ticket = ref_of(raw, "logId"), ref_of(raw, "_ticket")
        if log_ref is None or ticket is None:
            raise Unreadable("logId: missing")
        before = text(raw, "dari")
        return StatusChange(
            ref=log_ref,
            complaint_ref=ticket,
            status=RawStatus(text(raw, "ke", required=True) or ""),
            previous=RawStatus(before) if before else None,
            changed_at=self._local_time(raw.get("pada"), LOG_FMT, "pada"),
            gateway_ref=text(raw, "extRef"),
            note=text(raw, "memo"),
        )

    async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError]:
        async for raw in walk_children(
            self._tickets(since),
            self._ticket_key,
            self._embedded("riwayat"),
            self._child_time("pada", LOG_FMT),
            peer=self.name,
            stream="status_changes",
        ):
            yield raw if isinstance(raw, RecordError) else self._read(raw, OP_LIST, "logId", self._status_change)

    # -- writing --------------------------------------------------------------------------------

    async def _write(self, method: str, path: str, payload: dict[str, Any], operation: str, id_key: str) -> str:
        body = await self.http.request_json(method, path, json=payload, operation=operation)
        if isinstance(body, dict) and body.get("ok") is False:
            raise PermanentPeerError(self.name, operation, "answered ok false")
        new_id = ref_of(body, id_key)
        if not isinstance(body, dict) or body.get("ok") is not True or new_id is None:
            raise AmbiguousOutcomeError(self.name, operation, f"answered without ok and {id_key}")
        return new_id

    async def write_follow_up(
        self,
        complaint_ref: str,
        content: str,
        *,
        author: str | None,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Any = (),
    ) -> str | None:
        payload = {"isi": content, "oleh": author or "LAPOR!-SP4N", "extRef": gateway_ref}
        path = f"/api/v2/tickets/{quote(complaint_ref, safe='')}/tindaklanjut"
        return await self._write("POST", path, payload, OP_FOLLOW_UP, "fuId")

    async def write_status(
        self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str
    ) -> str | None:
        payload = {"state": status.code, "memo": note, "extRef": gateway_ref}
        path = f"/api/v2/tickets/{quote(complaint_ref, safe='')}"
        return await self._write("PATCH", path, payload, OP_STATE, "logId")
