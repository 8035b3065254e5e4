"""The LAPOR!-SP4N hub adapter (API v3.0.0 as public client code shows it).

What it translates:

- auth: two static headers, ``Authorization: Bearer <key>`` and ``token: <guid>``;
- a create answer that puts ``complaint_id`` at one of several JSON paths;
- ``success: false`` on HTTP 200, which the hub uses to refuse a call;
- times as ``d-m-Y H:i:s`` without an offset, read in the instance's zone (WIB);
- codes and ids that come as numbers or strings (always kept as ``str``).

It never sends the reporter's personal data: the hub receives only the
gateway's own account id (``settings.user_id``). Error texts name the peer,
the operation (a path template, never an id or a query string) and a reason
built here; no body, header or record content goes into them or into a log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict

from gateway import (
    AttachmentContent,
    FollowUp,
    Hub,
    HubComplaintDraft,
    HubComplaintState,
    Location,
    PermanentPeerError,
    RawStatus,
    RecordError,
    ReferenceItem,
    StatusChange,
    format_peer_time,
    parse_peer_time,
)

__all__ = ["Sp4nHub"]

log = structlog.get_logger(__name__)

#: How the hub writes times (``d-m-Y H:i:s``); the second is accepted in case a
#: deployment answers in the ISO-like Laravel default.
TIME_FORMATS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")
INCIDENT_DATE_FORMAT = "%Y-%m-%d"

#: Where create answers have been seen to carry the new complaint's id, in the
#: order they are tried.
COMPLAINT_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("results", "complaint_id"),
    ("results", "data", "complaint_id"),
    ("results", "data", "id"),
    ("data", "complaint_id"),
    ("complaint_id",),
)

OP_UPLOAD = "POST /complaints/complaint/file"
OP_CREATE = "POST /complaints/complaint"
OP_READ = "GET /complaints/{id}/complaint"
OP_FOLLOW_UPS = "GET /complaints/{id}/followups"
OP_ADD_FOLLOW_UP = "POST /complaints/followup/add"
OP_FORWARD = "POST /complaints/process/{id}/reject"
OP_INSTITUTIONS = "GET /masters/institutions/external"
OP_TEMPLATES = "GET /masters/templates"
MASTER_PAGE_SIZE = 1000  # what public clients ask for


def _dig(value: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested dicts, or ``None``."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _text(value: Any) -> str | None:
    return str(value) if _present(value) else None


def _location_line(location: Location | None) -> str | None:
    if location is None:
        return None
    parts = []
    if location.description:
        parts.append(location.description)
    if location.subdistrict:
        parts.append(f"Kel. {location.subdistrict}")
    if location.district:
        parts.append(f"Kec. {location.district}")
    return f"Lokasi: {', '.join(parts)}" if parts else None


def _id_list(ids: Sequence[str]) -> str:
    """Document ids as the hub wants them: a string such as ``"[12,13]"``."""
    return "[" + ",".join(i if i.isdigit() else json.dumps(i) for i in ids) + "]"


def _form(fields: dict[str, str]) -> list[tuple[str, tuple[None, bytes]]]:
    """Plain fields sent as multipart/form-data (httpx sends ``data=`` alone url-encoded)."""
    return [(name, (None, value.encode())) for name, value in fields.items()]


class Sp4nHub(Hub):
    """LAPOR!-SP4N, reached through the government service gateway (SPLP)."""

    description = "LAPOR!-SP4N national hub, API v3.0.0 shape"
    secret_names = ("authorization", "token")

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")

        user_id: str
        """The gateway's own account at the hub: every complaint is created as this user."""
        institution_id: str
        """The local government's institution id at the hub (``institution_from_id`` of follow-ups)."""

    settings: Settings

    def auth_headers(self) -> dict[str, str]:
        secrets = self.context.secrets
        return {"Authorization": f"Bearer {secrets['authorization']}", "token": secrets["token"]}

    # -- helpers ------------------------------------------------------------------------------

    def _refused(self, operation: str, reason: str) -> PermanentPeerError:
        return PermanentPeerError(self.name, operation, reason)

    async def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One call; the decoded envelope. ``success: false`` (on HTTP 200) is a refusal."""
        body = await self.http.request_json(method, path, operation=operation, **kwargs)
        if not isinstance(body, dict):
            raise self._refused(operation, "answered JSON that is not an object")
        if body.get("success") is False:
            raise self._refused(operation, "answered success=false")
        return body

    def _parse_time(self, text: Any) -> datetime:
        if not isinstance(text, str):
            raise ValueError("not a string")
        for fmt in TIME_FORMATS:
            try:
                return parse_peer_time(text, fmt, self.context.timezone)
            except ValueError:
                continue
        raise ValueError("no known time format")

    @staticmethod
    def _path_ref(ref: str) -> str:
        return quote(str(ref), safe="")

    # -- writes -------------------------------------------------------------------------------

    async def upload_attachments(self, files: Sequence[AttachmentContent]) -> list[str]:
        if not files:
            return []
        multipart = [("attachments[]", (f.filename, f.data, f.content_type)) for f in files]
        body = await self._call("POST", "/complaints/complaint/file", OP_UPLOAD, files=multipart)
        docs = _dig(body, ("results", "docs"))
        if not isinstance(docs, list) or len(docs) != len(files):
            raise self._refused(OP_UPLOAD, f"answer did not list {len(files)} document ids")
        ids = [_text(doc.get("id")) if isinstance(doc, dict) else None for doc in docs]
        if any(i is None for i in ids):
            raise self._refused(OP_UPLOAD, "answer listed a document without an id")
        return [i for i in ids if i is not None]

    def _create_payload(self, draft: HubComplaintDraft) -> dict[str, Any]:
        complaint = draft.complaint
        content = complaint.body
        location = _location_line(complaint.location)
        if location:
            content = f"{content}\n\n{location}"
        incident = (format_peer_time(complaint.incident_at, INCIDENT_DATE_FORMAT, self.context.timezone)
                    if complaint.incident_at is not None else None)
        # complaint.reporter is deliberately never read here (UU PDP 27/2022).
        return {
            "title": complaint.title,
            "content": content,
            "channel": draft.channel_id,
            "user_id": self.settings.user_id,
            "classification_id": draft.classification_id,
            "disposition_id": draft.disposition_id or draft.route_fields.get("disposition_id"),
            "category_id": draft.category_id,
            "location_id": draft.route_fields.get("location_id"),
            "date_of_incident": incident,
            "tags_raw": f"lapor-gateway,{draft.gateway_ref}",
            "is_anonymous": 1 if complaint.is_anonymous else 0,
            "is_secret": 1 if complaint.is_secret else 0,
            "attachments": _id_list(draft.attachment_ids),
        }

    async def create_complaint(self, draft: HubComplaintDraft) -> str:
        body = await self._call("POST", "/complaints/complaint", OP_CREATE, json=self._create_payload(draft))
        for path in COMPLAINT_ID_PATHS:
            found = _text(_dig(body, path))
            if found is not None:
                return found
        raise self._refused(OP_CREATE, "answer had no complaint id")

    async def forward(self, ref: str, institution_ref: str, *, note: str | None = None) -> None:
        """"Bukan wewenang": the reject call with ``not_authority: 1`` and the target institution."""
        fields = {"not_authority": "1", "institution_id": str(institution_ref)}
        if note:
            fields["content"] = note
        await self._call("POST", f"/complaints/process/{self._path_ref(ref)}/reject", OP_FORWARD,
                         files=_form(fields))

    async def institutions(self) -> list[ReferenceItem]:
        """Every page of the external institutions (``page_size=1000``, as public clients ask)."""
        items: list[ReferenceItem] = []
        page = 1
        while True:
            body = await self._call("GET", "/masters/institutions/external", OP_INSTITUTIONS,
                                    params={"page_size": MASTER_PAGE_SIZE, "page": page})
            rows = _dig(body, ("results", "data"))
            if not isinstance(rows, list):
                raise self._refused(OP_INSTITUTIONS, "answered without results.data")
            for row in rows:
                ident, name = _text(_dig(row, ("id",))), _text(_dig(row, ("name",)))
                if ident is None or name is None:
                    continue  # an entry without id or name cannot be mapped to
                items.append(ReferenceItem(ref=ident, name=name, code=_text(_dig(row, ("code",))),
                                           parent_ref=_text(_dig(row, ("parent_id",)))))
            total = _dig(body, ("results", "total"))
            if len(rows) < MASTER_PAGE_SIZE or not isinstance(total, int) or page * MASTER_PAGE_SIZE >= total:
                return items
            page += 1

    async def templates(self) -> list[ReferenceItem]:
        body = await self._call("GET", "/masters/templates", OP_TEMPLATES)
        rows = _dig(body, ("results", "data"))
        if not isinstance(rows, list):
            raise self._refused(OP_TEMPLATES, "answered without results.data")
        return [ReferenceItem(ref=code, name=_text(_dig(row, ("name",))) or code, code=code)
                for row in rows if (code := _text(_dig(row, ("code",)))) is not None]

    async def add_follow_up(self, ref: str, content: str, *, gateway_ref: str) -> str | None:
        # The hub has no field for the gateway's mark; the engine recognises its own
        # follow-ups by the id returned here (and by institution_from_id).
        fields = {
            "complaint_id": str(ref),
            "institution_from_id": self.settings.institution_id,
            "institution_to_id": self.settings.institution_id,
            "content": content,
            "is_secret": "0",
            "rating": "0",
            "template_code": "",
        }
        body = await self._call("POST", "/complaints/followup/add", OP_ADD_FOLLOW_UP, files=_form(fields))
        return _text(_dig(body, ("results", "data", "id"))) or _text(_dig(body, ("results", "id")))

    # -- reads --------------------------------------------------------------------------------

    async def read_complaint(self, ref: str) -> HubComplaintState:
        body = await self._call("GET", f"/complaints/{self._path_ref(ref)}/complaint", OP_READ)
        data = _dig(body, ("results", "data"))
        if not isinstance(data, dict):
            raise self._refused(OP_READ, "answer had no complaint data")
        code = _text(data.get("status_code"))
        if code is None:
            raise self._refused(OP_READ, "answer had no status_code")
        logs = _dig(body, ("results", "data_logs"))
        changes = []
        for entry in logs if isinstance(logs, list) else []:
            change = self._status_change(ref, entry)
            if change is not None:
                changes.append(change)
        changes.sort(key=lambda c: c.changed_at)  # stable: the hub's order breaks ties
        return HubComplaintState(
            ref=str(ref),
            status=RawStatus(code=code, name=_text(data.get("status_name"))),
            status_changes=tuple(changes),
            disposition_id=_text(data.get("disposition_id")),
            disposition_name=_text(data.get("disposition_name")),
        )

    def _status_change(self, ref: str, entry: Any) -> StatusChange | None:
        """One data_log as a status change; ``None`` for a log without a status (a note)
        or one that cannot be read (logged by field name and id only)."""
        if not isinstance(entry, dict) or not _present(entry.get("status_new")):
            return None
        log_id = _text(entry.get("id"))
        problem = None
        if log_id is None:
            problem = "missing field 'id'"
        else:
            try:
                changed_at = self._parse_time(entry.get("created_at"))
            except ValueError:
                problem = "missing or unparseable field 'created_at'"
        if problem is not None:
            log.warning("skipped unreadable status log", peer=self.name, operation=OP_READ,
                        reason=problem, record_ref=log_id)
            return None
        old = _text(entry.get("status_old"))
        return StatusChange(
            ref=str(log_id),
            complaint_ref=str(ref),
            status=RawStatus(code=str(entry["status_new"]), name=_text(entry.get("status_new_name"))),
            changed_at=changed_at,
            previous=RawStatus(code=old) if old is not None else None,
        )

    async def follow_ups(self, ref: str) -> list[FollowUp | RecordError]:
        body = await self._call("GET", f"/complaints/{self._path_ref(ref)}/followups", OP_FOLLOW_UPS)
        records = _dig(body, ("results", "data"))
        if records is None:
            records = []
        if not isinstance(records, list):
            raise self._refused(OP_FOLLOW_UPS, "answer had no list of follow-ups")
        out: list[FollowUp | RecordError] = [self._follow_up(ref, record) for record in records]
        # Oldest first; unreadable records keep their place.
        slots = [i for i, item in enumerate(out) if isinstance(item, FollowUp)]
        ordered = sorted((out[i] for i in slots), key=lambda f: f.created_at)  # type: ignore[union-attr]
        for i, item in zip(slots, ordered):
            out[i] = item
        return out

    def _follow_up(self, ref: str, record: Any) -> FollowUp | RecordError:
        if not isinstance(record, dict):
            return RecordError(self.name, OP_FOLLOW_UPS, "follow-up is not an object")
        record_ref = _text(record.get("id"))

        def bad(reason: str) -> RecordError:
            return RecordError(self.name, OP_FOLLOW_UPS, reason, record_ref=record_ref)

        if record_ref is None:
            return bad("missing field 'id'")
        content = record.get("content")
        if not isinstance(content, str) or not content.strip():
            return bad("missing field 'content'")
        if not _present(record.get("created_at")):
            return bad("missing field 'created_at'")
        try:
            created_at = self._parse_time(record.get("created_at"))
        except ValueError:
            return bad("unparseable field 'created_at' (expected d-m-Y H:i:s)")
        return FollowUp(
            ref=record_ref,
            complaint_ref=str(ref),
            content=content,
            created_at=created_at,
            author=_text(record.get("institution_from_name")),
        )
