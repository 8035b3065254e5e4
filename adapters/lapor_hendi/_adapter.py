"""The Lapor Hendi adapter: Kota Semarang's local complaint app (see docs/lapor-hendi-api.md).

Lapor Hendi speaks REST with an ``X-Api-Key`` header, pages by number
(``halaman``, ``per_halaman``) through lists ordered by time (read with
:func:`gateway.walk_by_time`), and writes times in WIB without an offset. This
module translates its records to the canonical model and back; retries, cursors
and ordering across passes belong to the gateway.

Every write checks its answer (brief, invariant 8): only ``{"status": "sukses",
"data": {...}}`` with the expected id (or the echoed nomor_lapor) is success; a
2xx that says it failed is a refusal (:class:`gateway.PermanentPeerError`), and
one that proves nothing is an unknown outcome (:class:`gateway.AmbiguousOutcomeError`:
the engine resends, and Lapor Hendi applies a repeated ``ref_eksternal`` once).

Error texts name fields and path templates only: never a record's content, a
personal data value, a header or a response body.
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar, overload
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, Field

from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    AttachmentRef,
    Capability,
    Classification,
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
    TooLargeError,
    Write,
    decode_json,
    format_peer_time,
    parse_peer_time,
    walk_by_time,
)

__all__ = ["LaporHendiApp"]

TIME_FMT = "%Y-%m-%d %H:%M:%S"
DATE_FMT = "%Y-%m-%d"

OP_COMPLAINTS = "GET /api/v1/aduan"
OP_FOLLOW_UPS = "GET /api/v1/tanggapan"
OP_STATUS_CHANGES = "GET /api/v1/riwayat-status"
OP_WRITE_STATUS = "POST /api/v1/aduan/{id}/status"
OP_WRITE_FOLLOW_UP = "POST /api/v1/aduan/{id}/tanggapan"
OP_WRITE_HUB_REF = "PUT /api/v1/aduan/{id}/nomor-lapor"
OP_ATTACHMENT = "GET /api/v1/lampiran/{id}"

CLASSIFICATIONS = {
    "pengaduan": Classification.COMPLAINT,
    "aspirasi": Classification.ASPIRATION,
    "permintaan informasi": Classification.INFORMATION_REQUEST,
}

#: Content types as Lapor Hendi names them (it takes image/jpeg, image/png, application/pdf).
CONTENT_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}

#: The reporter's fields (gateway.Reporter) and Lapor Hendi's names of them under ``pelapor``.
REPORTER_KEYS = {"name": "nama", "nik": "nik", "phone": "telepon", "email": "email", "address": "alamat"}

T = TypeVar("T")

log = structlog.get_logger("gateway.adapter")


def _raw_ref(raw: Any, id_key: str) -> str | None:
    """A raw record's id as a string, when it has a readable one."""
    if isinstance(raw, dict):
        value = raw.get(id_key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip().isdigit():
            return value.strip()
    return None


class _Unreadable(Exception):
    """A field of one record cannot be read; the text names the field, never its value."""


class _Record:
    """Typed reads from one record dict, raising :class:`_Unreadable` with the field's path."""

    def __init__(self, raw: Any, path: str = ""):
        if not isinstance(raw, dict):
            raise _Unreadable(f"{path or 'record'} is not an object")
        self.raw = raw
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, required: bool) -> Any:
        value = self.raw.get(key)
        if value is None and required:
            raise _Unreadable(f"field '{self._name(key)}' is missing")
        return value

    # The overloads tell mypy what the code guarantees: a required field is never None.
    @overload
    def id(self, key: str, *, required: Literal[True] = True) -> str: ...
    @overload
    def id(self, key: str, *, required: bool) -> str | None: ...
    def id(self, key: str, *, required: bool = True) -> str | None:
        """An id: an integer, or a string of digits."""
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
            raise _Unreadable(f"field '{self._name(key)}' is not an id")
        return str(value).strip()

    @overload
    def text(self, key: str, *, required: Literal[True]) -> str: ...
    @overload
    def text(self, key: str, *, required: bool = False) -> str | None: ...
    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is not None and not isinstance(value, str):
            raise _Unreadable(f"field '{self._name(key)}' is not a string")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise _Unreadable(f"field '{self._name(key)}' is not a boolean")
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is None:
            return None
        # NaN and Infinity: Python's JSON reads them (and 1e400 as Infinity); no place has them,
        # and httpx refuses to send them on.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _Unreadable(f"field '{self._name(key)}' is not a number")
        return float(value)

    def integer(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Unreadable(f"field '{self._name(key)}' is not an integer")
        return value

    @overload
    def time(self, key: str, zone: Any, *, fmt: str = TIME_FMT, required: Literal[True] = True) -> datetime: ...
    @overload
    def time(self, key: str, zone: Any, *, fmt: str = TIME_FMT, required: bool) -> datetime | None: ...
    def time(self, key: str, zone: Any, *, fmt: str = TIME_FMT, required: bool = True) -> datetime | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            return parse_peer_time(value, fmt, zone)
        except ValueError:
            shape = "YYYY-MM-DD" if fmt == DATE_FMT else "YYYY-MM-DD HH:MM:SS"
            raise _Unreadable(f"field '{self._name(key)}' is not a time in the form {shape}") from None

    def child(self, key: str) -> _Record | None:
        value = self._get(key, False)
        return None if value is None else _Record(value, self._name(key))

    def children(self, key: str) -> list[_Record]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _Unreadable(f"field '{self._name(key)}' is not a list")
        return [_Record(item, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]


class LaporHendiApp(LocalApp):
    """Kota Semarang's "Lapor Hendi" complaint app."""

    description: ClassVar[str] = (
        "Lapor Hendi, Kota Semarang's complaint app: REST with an X-Api-Key, "
        "WIB times, page-numbered lists of aduan, tanggapan and riwayat status"
    )
    secret_names: ClassVar[tuple[str, ...]] = ("api_key",)
    #: Status and tanggapan writes carrying a ref_eksternal already written for the complaint
    #: answer the existing id and change nothing, and nomor-lapor is set by value
    #: (docs/lapor-hendi-api.md), so the engine may repeat any write whose outcome it does not know.
    idempotent_writes: ClassVar[frozenset[Write]] = frozenset({Write.STATUS, Write.FOLLOW_UP, Write.HUB_REF})
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.STATUS_HISTORY, Capability.FETCH_ATTACHMENT, Capability.WRITE_HUB_REF}
    )

    class Settings(BaseModel):
        """The ``settings:`` block of a lapor_hendi instance."""

        model_config = ConfigDict(extra="forbid")

        page_size: int = Field(50, ge=1, le=100, description="per_halaman asked of every list (the app allows 1-100)")
        author_name: str = Field(
            "LAPOR!-SP4N", min_length=1, description="'oleh' written with the gateway's status changes and follow-ups"
        )

    settings: Settings  # narrows Adapter.settings (set by Adapter.__init__) for type checkers

    def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.context.secrets["api_key"]}

    # --- reading -------------------------------------------------------------------------

    async def _walk(
        self, path: str, operation: str, filter_name: str, since: datetime | None, id_key: str, time_key: str
    ) -> AsyncIterator[Any]:
        """Every item updated at or after ``since``. Lapor Hendi pages by number through a
        list ordered by time; :func:`gateway.walk_by_time` asks again from the newest
        time read after each page, so records that change meanwhile are not skipped."""
        zone = self.context.timezone

        async def fetch(boundary: datetime | None, page: int) -> TimePage:
            params: dict[str, Any] = {"per_halaman": self.settings.page_size, "halaman": page}
            if boundary is not None:
                params[filter_name] = format_peer_time(boundary, TIME_FMT, zone)
            body = await self.http.request_json("GET", path, params=params, operation=operation)
            if not isinstance(body, dict) or body.get("status") != "sukses" or not isinstance(body.get("data"), list):
                raise PermanentPeerError(
                    self.name, operation, "answered a list without status 'sukses' and a data list"
                )
            meta = body.get("meta")
            total_pages = meta.get("total_halaman") if isinstance(meta, dict) else None
            if isinstance(total_pages, bool) or not isinstance(total_pages, int):
                raise PermanentPeerError(self.name, operation, "answered a list without meta.total_halaman")
            total = meta.get("total")  # type: ignore[union-attr]
            total = total if isinstance(total, int) and not isinstance(total, bool) else None
            return TimePage(items=body["data"], total=total, last=page >= total_pages)

        def key(raw: Any) -> tuple[str, datetime] | None:
            ref = _raw_ref(raw, id_key)
            value = raw.get(time_key) if isinstance(raw, dict) else None
            if ref is None or not isinstance(value, str):
                return None
            try:
                return ref, parse_peer_time(value, TIME_FMT, zone)
            except ValueError:
                return None

        async for item in walk_by_time(fetch, key, since, peer=self.name, stream=operation):
            yield item

    def _read(self, raw: Any, operation: str, id_key: str, translate: Callable[[_Record], T]) -> T | RecordError:
        record_ref = _raw_ref(raw, id_key)
        try:
            return translate(_Record(raw))
        except _Unreadable as exc:
            return RecordError(self.name, operation, str(exc), record_ref=record_ref)
        except Exception as exc:  # anything else odd in one record: it, not the page, is set aside
            return RecordError(self.name, operation, f"cannot be read ({type(exc).__name__})", record_ref=record_ref)

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        async for raw in self._walk(
            "/api/v1/aduan", OP_COMPLAINTS, "diperbarui_sejak", since, "id_aduan", "diperbarui_pada"
        ):
            yield self._read(raw, OP_COMPLAINTS, "id_aduan", self._complaint)

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        async for raw in self._walk("/api/v1/tanggapan", OP_FOLLOW_UPS, "sejak", since, "id_tanggapan", "dibuat_pada"):
            yield self._read(raw, OP_FOLLOW_UPS, "id_tanggapan", self._follow_up)

    async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError]:
        async for raw in self._walk(
            "/api/v1/riwayat-status", OP_STATUS_CHANGES, "sejak", since, "id_riwayat", "dibuat_pada"
        ):
            yield self._read(raw, OP_STATUS_CHANGES, "id_riwayat", self._status_change)

    def _complaint(self, r: _Record) -> Complaint:
        zone = self.context.timezone
        ref = r.id("id_aduan")
        title = r.text("judul", required=True)
        body = r.text("isi", required=True)
        updated_at = r.time("diperbarui_pada", zone)
        created_at = r.time("dibuat_pada", zone)
        status = r.text("status", required=True)
        klasifikasi = r.text("klasifikasi")
        classification: Classification | None
        if klasifikasi is None:
            classification = Classification.COMPLAINT
        else:
            classification = CLASSIFICATIONS.get(klasifikasi.strip().lower())
            if classification is None:
                raise _Unreadable("field 'klasifikasi' has an unknown value")
        location = None
        lokasi = r.child("lokasi")
        if lokasi is not None:
            location = Location(
                description=lokasi.text("alamat_kejadian"),
                subdistrict=lokasi.text("kelurahan"),
                district=lokasi.text("kecamatan"),
                latitude=lokasi.number("lat"),
                longitude=lokasi.number("lng"),
            )
        anonymous = r.flag("anonim")
        secret = r.flag("rahasia")
        reporter = None
        # An anonymous complaint passes on no identity at all: its pelapor is not even read. A
        # malformed pelapor or field of it is taken as absent (Reporter.from_peer): the complaint
        # needs none of it, and by default none of it is kept.
        pelapor = None if anonymous else r.raw.get("pelapor")
        if isinstance(pelapor, dict):
            reporter = Reporter.from_peer(
                {field: pelapor.get(key) for field, key in REPORTER_KEYS.items()},
                where={field: f"pelapor.{key}" for field, key in REPORTER_KEYS.items()},
                record=ref,
            )
        elif pelapor is not None:
            log.warning(
                "reporter field not read, taken as absent", field="pelapor", problem="not an object", record=ref
            )
        attachments = self._attachments(r)
        return Complaint(
            ref=ref,
            title=title,
            body=body,
            created_at=created_at,
            updated_at=updated_at,
            status=RawStatus(code=status, name=status),
            category=r.text("kategori"),
            classification=classification,
            location=location,
            channel=r.text("kanal"),
            incident_at=r.time("tanggal_kejadian", zone, fmt=DATE_FMT, required=False),
            is_anonymous=anonymous,
            is_secret=secret,
            agency=r.text("opd"),
            attachments=attachments,
            reporter=reporter,
        )

    @staticmethod
    def _attachments(r: _Record) -> tuple[AttachmentRef, ...]:
        """``lampiran`` of a complaint or a tanggapan (the same item shape)."""
        attachments = []
        for item in r.children("lampiran"):
            att_ref = item.id("id_lampiran")
            attachments.append(
                AttachmentRef(
                    ref=att_ref,
                    filename=item.text("nama_file") or f"lampiran-{att_ref}",
                    content_type=item.text("tipe_mime"),
                    size=item.integer("ukuran_byte"),
                )
            )
        return tuple(attachments)

    def _follow_up(self, r: _Record) -> FollowUp:
        return FollowUp(
            ref=r.id("id_tanggapan"),
            complaint_ref=r.id("id_aduan"),
            content=r.text("isi", required=True),
            created_at=r.time("dibuat_pada", self.context.timezone),
            author=r.text("oleh"),
            gateway_ref=r.text("ref_eksternal"),
            is_secret=r.flag("rahasia"),
            attachments=self._attachments(r),
        )

    def _status_change(self, r: _Record) -> StatusChange:
        new = r.text("status_baru", required=True)
        old = r.text("status_lama")
        return StatusChange(
            ref=r.id("id_riwayat"),
            complaint_ref=r.id("id_aduan"),
            status=RawStatus(new, new),
            changed_at=r.time("dibuat_pada", self.context.timezone),
            previous=RawStatus(old, old) if old is not None else None,
            gateway_ref=r.text("ref_eksternal"),
        )

    # --- writing -------------------------------------------------------------------------

    async def _write(
        self, method: str, template: str, complaint_ref: str, suffix: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Send one write; return the ``data`` of an answer that says ``sukses``.

        The shared HTTP layer raises for everything but a 2xx (a redirect included); a 2xx
        is read here: a body whose ``status`` is there and is not ``sukses`` is refused (the
        app says it did not write it: an operator looks); a body that is not JSON, not an
        object, without a ``status`` or without a ``data`` object proves nothing, and the
        outcome is unknown. The caller checks ``data`` for the id it expects."""
        path = f"/api/v1/aduan/{quote(str(complaint_ref), safe='')}/{suffix}"
        try:  # read with the limit request_json applies: a compressed answer may unpack to gigabytes
            response = await self.http.request(
                method, path, json=payload, operation=template, max_bytes=self.http.max_json_bytes
            )
        except TooLargeError as exc:
            # Only a PUT gets here (the shared layer makes it so for a POST): idempotent, but its
            # answer is what proves the write, and it was not read.
            raise AmbiguousOutcomeError(self.name, template, exc.reason, status_code=exc.status_code) from None
        code = response.status_code
        if not 200 <= code < 300:  # a redirect, should the shared layer ever hand one back: not a success
            raise AmbiguousOutcomeError(
                self.name,
                template,
                f"answered a redirect (HTTP {code}) instead of an answer; check base_url",
                status_code=code,
            )
        try:
            body = decode_json(response.content)
        except ValueError:
            raise AmbiguousOutcomeError(
                self.name, template, f"answered HTTP {code} without a JSON body: outcome unknown", status_code=code
            ) from None
        status = body.get("status") if isinstance(body, dict) else None
        if status is None:
            raise AmbiguousOutcomeError(
                self.name, template, f"answered HTTP {code} without a status: outcome unknown", status_code=code
            )
        if status != "sukses":
            raise PermanentPeerError(
                self.name,
                template,
                f"answered HTTP {code} with a status other than 'sukses': not written",
                status_code=code,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise AmbiguousOutcomeError(
                self.name,
                template,
                f"answered HTTP {code} 'sukses' without a data object: outcome unknown",
                status_code=code,
            )
        return data

    def _new_id(self, data: dict[str, Any], template: str, id_key: str) -> str:
        """The id a write's answer gives, or AmbiguousOutcomeError: 'sukses' alone proves nothing."""
        new_id = data.get(id_key)
        if isinstance(new_id, int) and not isinstance(new_id, bool):
            return str(new_id)
        if isinstance(new_id, str) and new_id.strip().isdigit():
            return new_id.strip()
        raise AmbiguousOutcomeError(
            self.name, template, f"answered 'sukses' without an id in data.{id_key}: outcome unknown"
        )

    async def write_status(
        self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str
    ) -> str | None:
        payload = {
            "status": status.code,
            "keterangan": note or "",
            "oleh": self.settings.author_name,
            "ref_eksternal": gateway_ref,
        }
        data = await self._write("POST", OP_WRITE_STATUS, complaint_ref, "status", payload)
        return self._new_id(data, OP_WRITE_STATUS, "id_riwayat")

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
        oleh = self.settings.author_name + (f" / {author}" if author else "")
        payload: dict[str, Any] = {"isi": content, "oleh": oleh, "ref_eksternal": gateway_ref}
        if is_secret:  # the app's default is false: a plain follow-up's body stays as it always was
            payload["rahasia"] = True
        if attachments:
            payload["lampiran"] = [
                {
                    "nama_file": a.filename,
                    "tipe_mime": self._content_type(a.content_type),
                    "konten_base64": base64.b64encode(a.data).decode("ascii"),
                }
                for a in attachments
            ]
        data = await self._write("POST", OP_WRITE_FOLLOW_UP, complaint_ref, "tanggapan", payload)
        return self._new_id(data, OP_WRITE_FOLLOW_UP, "id_tanggapan")

    @staticmethod
    def _content_type(value: str | None) -> str:
        """A content type as Lapor Hendi names it: no parameters, lower case, known aliases."""
        plain = (value or "").split(";")[0].strip().lower()
        return CONTENT_TYPE_ALIASES.get(plain, plain) or "application/octet-stream"

    async def write_hub_ref(self, complaint_ref: str, hub_ref: str, *, gateway_ref: str) -> None:
        """``PUT /api/v1/aduan/{id}/nomor-lapor``: idempotent by value, so safe to repeat (the
        shared HTTP layer retries a PUT within the call). Done only when the answer echoes
        the value sent."""
        payload = {"nomor_lapor": hub_ref, "ref_eksternal": gateway_ref}
        data = await self._write("PUT", OP_WRITE_HUB_REF, complaint_ref, "nomor-lapor", payload)
        if data.get("nomor_lapor") != hub_ref:
            raise AmbiguousOutcomeError(
                self.name, OP_WRITE_HUB_REF, "answered 'sukses' without echoing data.nomor_lapor: outcome unknown"
            )
        echoed = _raw_ref(data, "id_aduan")
        if "id_aduan" in data and echoed != str(complaint_ref).strip():
            raise AmbiguousOutcomeError(
                self.name, OP_WRITE_HUB_REF, "answered 'sukses' for another data.id_aduan: outcome unknown"
            )

    async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> AttachmentContent:
        # The file itself, not JSON: the shared layer's default Accept: application/json would
        # not fit it (a strict server may answer 406). Read in pieces, stopped over max_bytes.
        response = await self.http.request(
            "GET",
            f"/api/v1/lampiran/{quote(attachment.ref, safe='')}",
            operation=OP_ATTACHMENT,
            headers={"Accept": "*/*"},
            max_bytes=max_bytes,
        )
        header = response.headers.get("Content-Type", "").split(";")[0].strip()
        return AttachmentContent(
            filename=attachment.filename,
            content_type=header or attachment.content_type or "application/octet-stream",
            data=response.content,
        )
