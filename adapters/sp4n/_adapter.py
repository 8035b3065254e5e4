"""The LAPOR!-SP4N hub adapter: the LAPOR! v3 integration API as the one public client of
the real API sends and reads it (docs/lapor-sp4n.md has the contract item by item, each
marked seen, inferred or unknown; what is not seen is a setting here).

What it translates:

- auth: a header whose name is a setting (``Authorization`` by default) with the value sent
  exactly as stored (an operator pastes the whole value; nothing is prefixed), and
  ``token: <value>``; ``Accept: application/json`` on every call (the shared HTTP layer);
- the create: a JSON body with every key the public client sends, in its JSON types (ints
  for ids, booleans for flags, ``null`` where it sends null), the route's ``fields:`` merged
  in, the new id read at any of the three places the hub has been seen to put it;
- the status history: ``results.data_logs[]``, whose ``data`` is a JSON-encoded string
  holding ``status_old.name`` / ``status_new.name`` (names: codes are not published), and
  whose ``content`` is a template; the hub's reasons become the note that the local app
  shows with the status;
- the forward ("bukan wewenang"): JSON with the target institution id in ``reason``;
- follow-ups: read per complaint, added as multipart with the issued template code, the
  follow-up's own confidentiality and its evidence files;
- times as ``d-m-Y H:i:s`` without an offset, read in the instance's zone (WIB).

A 2xx answer is a success only when it proves it: the create's id, the upload's document
ids, a follow-up's id or an explicit ok. A 2xx that says it failed is a refusal
(:class:`~gateway.PermanentPeerError`); one that proves nothing after a write is an
:class:`~gateway.AmbiguousOutcomeError` (it may have been done).

It never sends the reporter's personal data: the hub receives only the gateway's own
account id. Error texts name the peer, the operation (a path template, never an id or a
query string) and a reason built here; no body, header or record content goes into them or
into a log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, Field

from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    AttachmentRef,
    Capability,
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
    TransientPeerError,
    decode_json,
    format_peer_time,
    parse_peer_time,
)

__all__ = ["Sp4nHub"]

log = structlog.get_logger(__name__)

#: Where a create answer has been seen to carry the new complaint's id (the newer client reads
#: the first, the older one the other two).
COMPLAINT_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("complaint_id",),
    ("data", "complaint_id"),
    ("data", "results", "complaint", "id"),
)
#: Where a follow-up add's answer may carry the new id (not seen: any of these proves it).
FOLLOW_UP_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("results", "data", "id"),
    ("results", "id"),
    ("data", "id"),
    ("id",),
)

OP_UPLOAD = "POST /complaints/complaint/file"
OP_CREATE = "POST /complaints/complaint"
OP_READ = "GET /complaints/{id}/complaint"
OP_FOLLOW_UPS = "GET /complaints/{id}/followups"
OP_ADD_FOLLOW_UP = "POST /complaints/followup/add"
OP_FORWARD = "POST /complaints/process/{id}/reject"
OP_INSTITUTIONS = "GET /masters/institutions/external"
OP_TEMPLATES = "GET /masters/templates"
OP_FILE = "GET (attachment_path)"
MASTER_PAGE_SIZE = 1000  # what the public client asks for
MASTER_MAX_PAGES = 100  # 100,000 institutions: Indonesia has some thousands
MAX_ID_LENGTH = 100  # the hub's ids seen are numbers of seven digits

#: Keys of the create body that the adapter sets itself; a route's ``fields:`` cannot change them.
OWN_CREATE_KEYS = frozenset(
    {
        "title",
        "content",
        "user_id",
        "classification_id",
        "category_id",
        "channel",
        "date_of_incident",
        "tags_raw",
        "is_anonymous",
        "is_secret",
        "attachments",
    }
)
#: Ids the hub wants as JSON integers; a YAML value of digits is sent as a number.
INTEGER_KEYS = frozenset(
    {
        "channel",
        "user_id",
        "classification_id",
        "disposition_id",
        "category_id",
        "priority_program_id",
        "location_id",
        "community_id",
    }
)
#: The create body's keys as the public client sends them, with its values where the adapter
#: has no better one (``null`` where it sends null). A route's ``fields:`` overrides these.
CREATE_DEFAULTS: dict[str, Any] = {
    "location_id": None,  # the route's fields set it (the hub's own location id); required by config check
    "disposition_id": None,  # the route's default institution, or the agency's
    "is_new_user_slider": False,
    "is_inbox": True,
    "is_disposisi_slider": True,
    "priority_program_id": None,
    "community_id": None,
    "copy_externals": None,
    "info_disposition": None,
    "info_attachments": None,
    "is_approval": False,
    "is_priority": False,
}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_FALSE = frozenset({"false", "0", "no", "gagal", "failed", "error"})
#: A field name a refusal may name, as the shared HTTP layer reads them: it starts with a letter, so
#: that a key of digits (a NIK, a phone number a hub keyed its errors by) is never shown.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}$")


def _dig(value: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` in nested dicts, or ``None``."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _present(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list)) and str(value).strip() != ""


def _text(value: Any) -> str | None:
    return str(value).strip() if _present(value) else None


def _ident(value: Any) -> str | None:
    """A hub id as text: ``7``, ``"7"`` and ``7.0`` are one id (a hub that passes its ids
    through floats writes ``7.0``: read as another id, a follow-up already passed on would be
    passed on again); a boolean is no id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value)


def _as_int(value: Any) -> Any:
    """An id as the hub wants it: digits become a JSON number; anything else stays as given."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _proven_id(value: Any) -> str | None:
    """An id that proves a write: a positive integer, or a string that is not empty, zero or false,
    and is an id at all: at most :data:`MAX_ID_LENGTH` printable characters. (A create answered
    with 6,000 characters was taken as done and refused by the store's index on PostgreSQL, parked
    as if nothing had been created: a resend created it twice.)"""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in ("0", "false", "null", "none", "undefined"):
            return None
        return text if len(text) <= MAX_ID_LENGTH and text.isprintable() else None
    return None


def _says_failed(body: dict[str, Any]) -> bool:
    """A 2xx body that says it failed: ``success`` false (as a boolean, a number or a
    string), or Laravel's validation ``errors``."""
    flag = body.get("success", body.get("status"))
    if flag is False or (isinstance(flag, (int, float)) and not isinstance(flag, bool) and flag == 0):
        return True
    if isinstance(flag, str) and flag.strip().lower() in _FALSE:
        return True
    return isinstance(body.get("errors"), dict) and bool(body["errors"])


def _says_ok(body: dict[str, Any]) -> bool:
    flag = body.get("success", body.get("status"))
    if flag is True or (isinstance(flag, int) and not isinstance(flag, bool) and flag == 1):
        return True
    return isinstance(flag, str) and flag.strip().lower() in ("true", "1", "ok", "success", "sukses")


def _flag(value: Any) -> bool | None:
    """A peer's boolean: true/false, 1/0, "1"/"0", "true"/"false"; ``None`` when unreadable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    return None


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


def _form(fields: dict[str, str]) -> list[tuple[str, tuple[None, bytes]]]:
    """Plain fields as parts of a multipart/form-data body (httpx sends ``data=`` alone url-encoded)."""
    return [(name, (None, value.encode())) for name, value in fields.items()]


def _digest(*parts: Any) -> str:
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:20]


class Sp4nHub(Hub):
    """LAPOR!-SP4N, reached through the government service gateway (SPLP)."""

    description = "LAPOR!-SP4N national hub, LAPOR! v3 integration API (as its public client uses it)"
    secret_names = ("authorization", "token")
    route_fields_reserved: ClassVar[frozenset[str]] = OWN_CREATE_KEYS
    route_fields_required: ClassVar[frozenset[str]] = frozenset({"location_id", "disposition_id"})
    # No find_complaint: LAPOR! has no search by reference (an operator looks for the hashtag).
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FETCH_ATTACHMENT, Capability.INSTITUTIONS, Capability.TEMPLATES, Capability.FORWARD}
    )

    class Settings(BaseModel):
        """The ``settings:`` block of an sp4n instance. Items the public client shows are
        fixed in code; the rest (marked "not seen" in docs/lapor-sp4n.md) are settings."""

        model_config = ConfigDict(extra="forbid")

        user_id: int = Field(
            description="the gateway's account id at the hub (user_id of every create and "
            "follow-up); no reporter data is ever sent"
        )
        institution_id: int = Field(
            description="the local government's institution id at the hub (institution_from_id of follow-ups)"
        )
        follow_up_template_code: str = Field(
            min_length=1,
            description="the template code the hub issued to this integration (template_code of follow-ups)",
        )
        follow_up_institution_to_id: int | None = Field(
            None, description="institution_to_id of follow-ups (not seen; default: institution_id)"
        )
        auth_header: str = Field(
            "Authorization",
            min_length=1,
            description="the name of the header the authorization value goes in "
            "(older deployments: auth); the value is sent as stored",
        )
        create_path: str = Field(
            "/complaints/complaint",
            pattern=r"^/",
            description="the create call's path (/complaints/complaint-lmw is a per-integrator variant)",
        )
        tags: str = Field(
            "#lapor_gateway #{tag}",
            description="tags_raw of a create; {tag} is the gateway's "
            "reference as a hashtag word (how an operator finds "
            "a create whose answer was lost)",
        )
        incident_date_format: str = Field("%Y-%m-%d", description="date_of_incident (format not seen)")
        time_formats: list[str] = Field(
            default_factory=lambda: ["%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"],
            min_length=1,
            description="how the hub writes times (d-m-Y H:i:s seen on follow-ups)",
        )
        log_time_key: str = Field("created_at", description="the time field of a data_logs entry (not seen)")
        log_id_key: str = Field(
            "id",
            description="the id field of a data_logs entry (not seen; without one "
            "an entry is known by its time and content)",
        )
        log_reason_keys: list[str] = Field(
            default_factory=lambda: ["reason_description", "reason", "keterangan"],
            description="keys of a log's decoded data that may hold the hub's reason (not seen)",
        )
        follow_up_id_key: str | None = Field(
            "id",
            description="the id field of a follow-up (not seen); null: the "
            "hub gives none, and a follow-up is known by its "
            "time, author and text",
        )
        follow_up_content_key: str = Field("content", description="the text field of a follow-up")
        follow_up_author_key: str = Field("institution_from_name", description="who wrote a follow-up (not seen)")
        follow_up_secret_key: str = Field(
            "is_secret", description="a follow-up's own confidentiality flag (sent as is_secret; read field not seen)"
        )
        follow_up_attachments_key: str = Field("attachments", description="a follow-up's files (not seen)")
        attachment_path: str | None = Field(
            "/complaints/file/{id}",
            pattern=r"^/",  # below base_url: 'http://127.0.0.1:8702@evil/x' would send the token elsewhere
            description="where a follow-up's file is downloaded, {id} its id (not seen; "
            "null: hub follow-ups reach the local app without files)",
        )
        status_note: str = Field(
            "Status di LAPOR!: {status}",
            description="the first line of the note written with a hub status in the local app",
        )

    settings: Settings

    def auth_headers(self) -> dict[str, str]:
        secrets = self.context.secrets
        return {self.settings.auth_header: secrets["authorization"], "token": secrets["token"]}

    def supports(self, capability: Capability) -> bool:
        # attachment_path: null says the hub's follow-up files cannot be downloaded.
        if capability is Capability.FETCH_ATTACHMENT and self.settings.attachment_path is None:
            return False
        return super().supports(capability)

    def status_note(self, status: RawStatus) -> str | None:
        return self.settings.status_note.replace("{status}", status.name or status.code)

    def describe_ref(self, gateway_ref: str) -> str:
        return f"the hashtag {self._hashtag(gateway_ref)} in tags_raw"

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _hashtag(gateway_ref: str) -> str:
        return "#" + re.sub(r"[^0-9A-Za-z_]", "_", gateway_ref)

    def _refused(self, operation: str, reason: str) -> PermanentPeerError:
        return PermanentPeerError(self.name, operation, reason)

    async def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One call; the decoded JSON object. A 2xx whose body says it failed is a refusal."""
        body = await self.http.request_json(method, path, operation=operation, **kwargs)
        if not isinstance(body, dict):
            if method == "GET" or kwargs.get("idempotent"):
                raise self._refused(operation, "answered JSON that is not an object")
            raise AmbiguousOutcomeError(
                self.name, operation, "answered JSON that is not an object; it may have been done"
            )
        if _says_failed(body):
            fields = body.get("errors")
            names = (
                f" (invalid fields: {', '.join(sorted(str(k) for k in fields)[:12])})"
                if isinstance(fields, dict) and all(_FIELD_NAME.fullmatch(str(k)) for k in fields)
                else ""
            )
            raise self._refused(operation, f"answered 2xx saying it failed{names}")
        return body

    def _parse_time(self, text: Any) -> datetime:
        if not isinstance(text, str):
            raise ValueError("not a string")
        for fmt in self.settings.time_formats:
            try:
                return parse_peer_time(text, fmt, self.context.timezone)
            except (ValueError, OverflowError):
                continue
        raise ValueError("no known time format")

    @staticmethod
    def _path_ref(ref: str) -> str:
        return quote(str(ref), safe="")

    # -- writes -------------------------------------------------------------------------------

    async def upload_attachments(self, files: Sequence[AttachmentContent]) -> list[str]:
        """All files of a complaint in one multipart request (``attachments[]``), as the public
        client sends them. Repeating an upload only leaves unused documents at the hub, so it is
        retried like a read."""
        if not files:
            return []
        multipart = [("attachments[]", (f.filename, f.data, f.content_type)) for f in files]
        body = await self._call("POST", "/complaints/complaint/file", OP_UPLOAD, files=multipart, idempotent=True)
        docs = _dig(body, ("results", "docs"))
        if not isinstance(docs, list) or not docs:
            raise TransientPeerError(self.name, OP_UPLOAD, "answered without results.docs")
        if len(docs) != len(files):
            raise TransientPeerError(self.name, OP_UPLOAD, f"answered {len(docs)} document ids for {len(files)} files")
        ids = [_proven_id(doc.get("id")) if isinstance(doc, dict) else None for doc in docs]
        if any(i is None for i in ids):
            raise TransientPeerError(self.name, OP_UPLOAD, "answered a document without an id")
        return [i for i in ids if i is not None]

    def _create_payload(self, draft: HubComplaintDraft) -> dict[str, Any]:
        complaint = draft.complaint
        content = complaint.body
        location = _location_line(complaint.location)
        if location:
            content = f"{content}\n\n{location}"
        incident = (
            format_peer_time(complaint.incident_at, self.settings.incident_date_format, self.context.timezone)
            if complaint.incident_at is not None
            else None
        )
        payload: dict[str, Any] = dict(CREATE_DEFAULTS)
        payload.update({key: value for key, value in draft.route_fields.items() if key not in OWN_CREATE_KEYS})
        if draft.disposition_id is not None:  # the agency the local app assigned wins over the route's default
            payload["disposition_id"] = draft.disposition_id
        # complaint.reporter is deliberately never read here (UU PDP 27/2022).
        payload.update(
            {
                "title": complaint.title,
                "content": content,
                "channel": draft.channel_id,
                "user_id": self.settings.user_id,
                "classification_id": draft.classification_id,
                "category_id": draft.category_id,
                "date_of_incident": incident,
                "tags_raw": self.settings.tags.replace("{tag}", self._hashtag(draft.gateway_ref).lstrip("#")),
                "is_anonymous": complaint.is_anonymous,
                "is_secret": complaint.is_secret,
                # The uploaded document ids as a JSON-encoded string, as the client sends them: "[12,13]".
                "attachments": json.dumps([_as_int(i) for i in draft.attachment_ids], separators=(",", ":")),
            }
        )
        for key in INTEGER_KEYS & payload.keys():
            payload[key] = _as_int(payload[key])
        return payload

    async def create_complaint(self, draft: HubComplaintDraft) -> str:
        body = await self._call("POST", self.settings.create_path, OP_CREATE, json=self._create_payload(draft))
        for path in COMPLAINT_ID_PATHS:
            found = _proven_id(_dig(body, path))
            if found is not None:
                return found
        # A 2xx that does not say it failed, without an id: the hub may well have created it.
        raise AmbiguousOutcomeError(
            self.name, OP_CREATE, "answered 2xx without a complaint id; it may have been created"
        )

    async def forward(self, ref: str, institution_ref: str, *, note: str | None = None) -> None:
        """ "Bukan wewenang": the reject call with ``not_authority: 1`` and the target
        institution's id in ``reason`` (``reason_description`` is the human reason)."""
        payload = {
            "is_request": 1,
            "reason": _as_int(institution_ref),
            "reason_description": note or "Bukan wewenang kami; diteruskan kepada instansi yang berwenang.",
            "not_authority": 1,
        }
        await self._call("POST", f"/complaints/process/{self._path_ref(ref)}/reject", OP_FORWARD, json=payload)

    async def add_follow_up(
        self,
        ref: str,
        content: str,
        *,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Sequence[AttachmentContent] = (),
    ) -> str | None:
        # The hub has no field for the gateway's mark; the engine recognises its own follow-ups
        # by the id returned here, else by their text.
        settings = self.settings
        to = settings.follow_up_institution_to_id or settings.institution_id
        fields = {
            "user_id": str(settings.user_id),
            "institution_from_id": str(settings.institution_id),
            "institution_to_id": str(to),
            "complaint_id": str(ref),
            "info_disposition": "",
            "template_code": settings.follow_up_template_code,
            "rating": "0",
            "is_secret": "1" if is_secret else "0",
            "content": content,
        }
        parts: list[tuple[str, Any]] = list(_form(fields))
        parts += [(f"attachment[{i}]", (f.filename, f.data, f.content_type)) for i, f in enumerate(attachments)]
        body = await self._call("POST", "/complaints/followup/add", OP_ADD_FOLLOW_UP, files=parts)
        for path in FOLLOW_UP_ID_PATHS:
            found = _proven_id(_dig(body, path))
            if found is not None:
                return found
        if _says_ok(body):
            return None  # an explicit ok without an id: done; the poll learns its id by its text
        raise AmbiguousOutcomeError(
            self.name, OP_ADD_FOLLOW_UP, "answered 2xx without an id or an ok; it may have been added"
        )

    # -- reference data -----------------------------------------------------------------------

    async def institutions(self) -> list[ReferenceItem]:
        """Every page of the external institutions (``page_size=1000``, as the public client asks)."""
        items: list[ReferenceItem] = []
        seen: set[str] = set()
        page = 1
        while True:
            body = await self._call(
                "GET",
                "/masters/institutions/external",
                OP_INSTITUTIONS,
                params={"page_size": MASTER_PAGE_SIZE, "page": page},
            )
            rows = _dig(body, ("results", "data"))
            if not isinstance(rows, list):
                raise self._refused(OP_INSTITUTIONS, "answered without results.data")
            unnamed = new = 0
            for row in rows:
                ident, name = _ident(_dig(row, ("id",))), _text(_dig(row, ("name",)))
                if ident is None or name is None or len(ident) > MAX_ID_LENGTH:
                    unnamed += 1  # an entry without id or name cannot be mapped to (nor one no store can key)
                    continue
                if ident in seen:
                    continue  # listed on an earlier page (or twice on this one): kept once
                seen.add(ident)
                new += 1
                items.append(
                    ReferenceItem(
                        ref=ident,
                        name=name,
                        code=_text(_dig(row, ("code",))),
                        parent_ref=_ident(_dig(row, ("parent_id",))),
                    )
                )
            if unnamed:
                log.warning("institutions without id or name passed over", peer=self.name, page=page, count=unnamed)
            total = _dig(body, ("results", "total"))
            if len(rows) < MASTER_PAGE_SIZE or not isinstance(total, int) or page * MASTER_PAGE_SIZE >= total:
                return items
            if new == 0 or page >= MASTER_MAX_PAGES:
                # A hub that ignores ?page= serves its first page again and again, and a total
                # that lies (10**12) would have it read for ever: a page with nothing new, or
                # the page bound, ends the read with what it has.
                log.warning(
                    "institutions list ended early: its pages repeat, or it is longer than the bound",
                    peer=self.name,
                    page=page,
                    read=len(items),
                )
                return items
            page += 1

    async def templates(self) -> list[ReferenceItem]:
        body = await self._call("GET", "/masters/templates", OP_TEMPLATES, params={"page_size": MASTER_PAGE_SIZE})
        rows = _dig(body, ("results", "data"))
        if not isinstance(rows, list):
            raise self._refused(OP_TEMPLATES, "answered without results.data")
        items = []
        for row in rows:
            code = _text(_dig(row, ("code",))) or _ident(_dig(row, ("id",)))
            if code is not None and len(code) <= MAX_ID_LENGTH:
                items.append(ReferenceItem(ref=code, name=_text(_dig(row, ("name",))) or code, code=code))
        return items

    # -- reads --------------------------------------------------------------------------------

    async def read_complaint(self, ref: str) -> HubComplaintState:
        body = await self._call("GET", f"/complaints/{self._path_ref(ref)}/complaint", OP_READ)
        data = _dig(body, ("results", "data"))
        if not isinstance(data, dict):
            raise self._refused(OP_READ, "answer had no results.data")
        code, name = _text(data.get("status_code")), _text(data.get("status_name"))
        if code is None and name is None:
            raise self._refused(OP_READ, "answer had neither status_code nor status_name")
        logs = _dig(body, ("results", "data_logs"))
        complete = isinstance(logs, list)
        changes: list[StatusChange] = []
        seen: dict[str, StatusChange] = {}
        for entry in logs if isinstance(logs, list) else []:
            try:
                read = self._log_entry(str(ref), entry)
            except Exception as exc:  # anything odd in one entry: the history is incomplete, the read goes on
                log.warning(
                    "status log unreadable",
                    peer=self.name,
                    operation=OP_READ,
                    reason=f"cannot be read ({type(exc).__name__})",
                )
                read = None
            if isinstance(read, StatusChange) and seen.setdefault(read.ref, read) != read:
                # One log id listed again with other contents: the engine takes an id once, so
                # this one would be dropped unseen; the history is not whole.
                log.warning("status log unreadable", peer=self.name, operation=OP_READ, reason="its id is listed twice")
                read = None
            if read is None:
                complete = False
            elif isinstance(read, StatusChange):
                changes.append(read)
        changes.sort(key=lambda c: c.changed_at)  # stable: the hub's order breaks ties
        if not complete:
            log.warning(
                "status history not read whole; the current status still goes on", peer=self.name, operation=OP_READ
            )
        return HubComplaintState(
            ref=str(ref),
            status=RawStatus(code=code or name or "", name=name),
            status_changes=tuple(changes),
            disposition_id=_ident(data.get("disposition_id")),
            disposition_name=_text(data.get("disposition_name")),
            history_complete=complete,
        )

    def _log_entry(self, complaint_ref: str, entry: Any) -> StatusChange | bool | None:
        """One ``data_logs`` entry: a status change, ``False`` for an entry that is not one, ``None``
        when it cannot be read (named by field in the log, never by value)."""
        settings = self.settings
        if not isinstance(entry, dict):
            return None
        raw = entry.get("data")
        decoded: Any
        if isinstance(raw, str):
            try:
                decoded = decode_json(raw) if raw.strip() else {}
            except ValueError:
                log.warning("status log unreadable", peer=self.name, operation=OP_READ, reason="'data' is not JSON")
                return None
        else:
            decoded = raw if isinstance(raw, dict) else {}
        if not isinstance(decoded, dict):
            decoded = {}
        try:
            when = self._parse_time(entry.get(settings.log_time_key))
        except ValueError:
            log.warning(
                "status log unreadable",
                peer=self.name,
                operation=OP_READ,
                reason=f"missing or unparseable field {settings.log_time_key!r}",
            )
            return None
        new_code, new_name = self._log_status(decoded.get("status_new"))
        old_code, old_name = self._log_status(decoded.get("status_old"))
        source, target = _text(entry.get("institution_from_name")), _text(entry.get("institution_to_name"))
        text = self._render(entry.get("content"), source, target, old_name, new_name)
        reason = next(
            (r for key in settings.log_reason_keys if (r := _text(decoded.get(key))) is not None and not r.isdigit()),
            None,
        )
        ref = _ident(entry.get(settings.log_id_key)) or "h-" + _digest(
            entry.get(settings.log_time_key), old_name, new_name, source, target, entry.get("content")
        )
        if new_name is None and new_code is None:
            # Not a status change: a note that a follow-up was added (the follow-up itself is read
            # from its own list), or a disposition without a change of status. Which is which is
            # not seen, so none of them is passed on (docs/lapor-sp4n.md).
            return False
        status = new_name or new_code or ""
        lines = [settings.status_note.replace("{status}", status)]
        if text and text != lines[0]:
            lines.append(text)
        if reason and reason not in lines:
            lines.append(f"Alasan: {reason}")
        return StatusChange(
            ref=str(ref),
            complaint_ref=complaint_ref,
            status=RawStatus(code=new_code or status, name=new_name),
            changed_at=when,
            previous=RawStatus(code=old_code or old_name or "", name=old_name) if (old_name or old_code) else None,
            note="\n".join(lines),
            reason=reason,
        )

    @staticmethod
    def _log_status(value: Any) -> tuple[str | None, str | None]:
        """(code, name) of ``status_old`` / ``status_new`` in a log's data: an object with a
        name (and perhaps a code or id), or a bare name."""
        if isinstance(value, dict):
            return _text(value.get("code") if value.get("code") is not None else value.get("id")), _text(
                value.get("name")
            )
        name = _text(value)
        return None, name

    @staticmethod
    def _render(template: Any, source: str | None, target: str | None, old: str | None, new: str | None) -> str | None:
        """A log's ``content`` with its placeholders filled (links become the plain names)."""
        if not isinstance(template, str) or not template.strip():
            return None
        values = {
            "institution_from": source,
            "institution_to": target,
            "institution_from_link": source,
            "institution_to_link": target,
            "status_old": old,
            "status_new": new,
        }
        text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or "", template)
        text = re.sub(r"<[^>]{0,200}>", "", text)  # a link rendered as HTML by the hub
        return " ".join(text.split()) or None

    async def follow_ups(self, ref: str) -> list[FollowUp | RecordError]:
        body = await self._call("GET", f"/complaints/{self._path_ref(ref)}/followups", OP_FOLLOW_UPS)
        records = _dig(body, ("results", "data"))
        if not isinstance(records, list):  # a 2xx without the path is a failure, not "none"
            raise self._refused(OP_FOLLOW_UPS, "answer had no results.data list")
        out: list[FollowUp | RecordError] = [self._read_follow_up(ref, record) for record in records]
        # One id listed again with other contents: the engine takes an id once, so the second
        # would be dropped unseen. It is set aside (under its id and a digest of its text, so that
        # the first, read fine, does not resolve it); an exact repeat is harmless and goes on.
        first: dict[str, FollowUp] = {}
        for i, item in enumerate(out):
            if isinstance(item, FollowUp) and first.setdefault(item.ref, item) != item:
                out[i] = RecordError(
                    self.name,
                    OP_FOLLOW_UPS,
                    "follow-up id listed twice with different contents",
                    record_ref=f"{item.ref}~{_digest(item.created_at, item.author, item.content)[:8]}",
                )
        # Oldest first; unreadable records keep their place.
        slots = [i for i, item in enumerate(out) if isinstance(item, FollowUp)]
        ordered = sorted((item for item in out if isinstance(item, FollowUp)), key=lambda f: f.created_at)
        for i, item in zip(slots, ordered, strict=True):
            out[i] = item
        return out

    def _read_follow_up(self, ref: str, record: Any) -> FollowUp | RecordError:
        try:
            return self._follow_up(ref, record)
        except Exception as exc:  # anything odd in one follow-up: it, not the list, is set aside
            record_ref = _ident(record.get(self.settings.follow_up_id_key)) if isinstance(record, dict) else None
            return RecordError(
                self.name, OP_FOLLOW_UPS, f"cannot be read ({type(exc).__name__})", record_ref=record_ref
            )

    def _follow_up(self, ref: str, record: Any) -> FollowUp | RecordError:
        settings = self.settings
        if not isinstance(record, dict):
            return RecordError(self.name, OP_FOLLOW_UPS, "follow-up is not an object")
        record_ref = _ident(record.get(settings.follow_up_id_key))

        def bad(reason: str) -> RecordError:
            return RecordError(self.name, OP_FOLLOW_UPS, reason, record_ref=record_ref)

        content = record.get(settings.follow_up_content_key)
        if not isinstance(content, str) or not content.strip():
            return bad(f"missing field {settings.follow_up_content_key!r}")
        if not _present(record.get("created_at")):
            return bad("missing field 'created_at'")
        try:
            created_at = self._parse_time(record.get("created_at"))
        except ValueError:
            return bad("unparseable field 'created_at' (expected d-m-Y H:i:s)")
        if record_ref is None:
            if settings.follow_up_id_key is not None:
                # The hub gives ids (the setting says so): one read without it must not make a second
                # follow-up of the same one under another ref. Quarantined; read again later.
                return bad(f"missing field {settings.follow_up_id_key!r}")
            # A hub without follow-up ids (follow_up_id_key: null): known by its time, author and text.
            record_ref = "h-" + _digest(record.get("created_at"), record.get(settings.follow_up_author_key), content)
        secret = record.get(settings.follow_up_secret_key)
        is_secret = False if secret is None else _flag(secret)
        if is_secret is None:
            return bad(f"field {settings.follow_up_secret_key!r} is not a flag")
        files = record.get(settings.follow_up_attachments_key)
        attachments: list[AttachmentRef] = []
        if files is not None:
            if not isinstance(files, list):
                return bad(f"field {settings.follow_up_attachments_key!r} is not a list")
            for index, item in enumerate(files):
                ident = _ident(item.get("id")) if isinstance(item, dict) else _ident(item)
                if ident is None:
                    return bad(f"field '{settings.follow_up_attachments_key}[{index}]' has no id")
                size = item.get("size") if isinstance(item, dict) else None
                attachments.append(
                    AttachmentRef(
                        ref=ident,
                        filename=(_text(item.get("filename")) if isinstance(item, dict) else None)
                        or f"lampiran-{ident}",
                        content_type=_text(item.get("mime")) if isinstance(item, dict) else None,
                        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                    )
                )
        return FollowUp(
            ref=record_ref,
            complaint_ref=str(ref),
            content=content,
            created_at=created_at,
            author=_text(record.get(settings.follow_up_author_key)),
            is_secret=is_secret,
            attachments=tuple(attachments),
        )

    async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> AttachmentContent:
        """A file listed on a hub follow-up (``attachment_path``; the real endpoint is not seen)."""
        if self.settings.attachment_path is None:  # supports() said so: the engine does not call it
            raise PermanentPeerError(self.name, OP_FILE, "settings.attachment_path is null: files are not downloaded")
        path = self.settings.attachment_path.replace("{id}", self._path_ref(attachment.ref))
        response = await self.http.request("GET", path, operation=OP_FILE, max_bytes=max_bytes)
        header = response.headers.get("Content-Type", "").split(";")[0].strip()
        return AttachmentContent(
            filename=attachment.filename,
            content_type=header or attachment.content_type or "application/octet-stream",
            data=response.content,
        )
