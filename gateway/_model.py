"""The canonical model: what a complaint is, independent of any peer's dialect.

Adapters translate their peer's records into these types and back. All times are
timezone-aware UTC; an adapter reads its peer's offset-less times in the zone its
instance declares (see ``gateway._timezones``).

The reporter's personal data (UU PDP 27/2022) lives in :class:`Reporter`, apart
from the content, and its ``repr`` never shows the values, so that a stray log
call or traceback cannot leak them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

#: The largest integer a JSON number carries exactly through every sender: JavaScript's and any
#: parser that reads numbers as IEEE doubles (2**53 - 1). A NIK has 16 digits and those of Papua's
#: provinces (codes 91-96) lie above it: sent as a number, such a NIK may have been rounded on its
#: way, and a wrong NIK kept is worse than none (UU PDP's accuracy principle).
EXACT_JSON_INTEGER = 2**53 - 1

#: The reporter's fields a peer may send as a number and that are read as its digits.
_DIGIT_FIELDS = frozenset({"nik", "phone"})


class Status(str, enum.Enum):  # noqa: UP042 (StrEnum would change format() and str() of members)
    """The canonical lifecycle of a complaint. Each peer's own code and name are
    kept beside it as a :class:`RawStatus`; mappings live in the instance YAML."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    FORWARDED = "forwarded"
    ON_HOLD = "on_hold"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    REJECTED = "rejected"
    ARCHIVED = "archived"

    @property
    def is_closed(self) -> bool:
        return self in (Status.DONE, Status.REJECTED, Status.ARCHIVED)

    def __str__(self) -> str:  # so that f-strings and logs show "done", not "Status.DONE"
        return self.value


class Classification(str, enum.Enum):  # noqa: UP042 (see Status)
    """LAPOR! classifies a report as one of these."""

    COMPLAINT = "pengaduan"
    ASPIRATION = "aspirasi"
    INFORMATION_REQUEST = "permintaan_informasi"
    WHISTLEBLOWING = "whistleblowing"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RawStatus:
    """A status exactly as a peer spells it: its code and, where it has one, its name."""

    code: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Reporter:
    """Personal data of the person who reported. Never logged, never put into
    a complaint's text, never sent to the hub (the hub receives only the
    gateway's own account id). ``None`` on an anonymous complaint."""

    name: str | None = None
    nik: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None

    def __repr__(self) -> str:
        present = [f.name for f in fields(self) if getattr(self, f.name)]
        return f"Reporter(<redacted: {', '.join(present) or 'empty'}>)"

    @classmethod
    def from_peer(cls, values: Mapping[str, Any], *, where: Mapping[str, str], record: str | None = None) -> Reporter:
        """A reporter from the values a peer sent (``name``, ``nik``, ``phone``, ``email``,
        ``address``: any left out is absent), read so that the complaint is never lost to them.

        Nothing of the reporter is needed to pass a complaint on (the hub never gets it, and by
        default it is not kept at all), so a malformed field must not stop the complaint: a NIK
        or phone sent as a whole JSON number is read as its digits (up to
        :data:`EXACT_JSON_INTEGER`; above it the number may have been rounded by its sender); any
        other value that is not a text (a bool, a fraction, an object, a negative number, a
        number where a name belongs) is taken as absent. Each field so dropped is logged as a
        warning with ``where[field]`` (the peer's name for it) and ``record``, never the value.
        A leading 0 a phone lost by being sent as a number is not put back (the gateway does not
        guess a number)."""
        read: dict[str, str | None] = {}
        for name in (f.name for f in fields(cls)):
            value = values.get(name)
            problem = None
            if value is None or isinstance(value, str):
                read[name] = value
                continue
            if name in _DIGIT_FIELDS and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                if value <= EXACT_JSON_INTEGER:
                    read[name] = str(value)
                    continue
                problem = "a number above 2^53, which its sender may have rounded: send it as a text"
            read[name] = None
            _warn_dropped(where.get(name, name), problem or f"not a text ({_json_kind(value)})", record)
        return cls(**read)

    __str__ = __repr__


def _json_kind(value: Any) -> str:
    """The JSON type of a value, to say what arrived without saying the value."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _warn_dropped(field_name: str, problem: str, record: str | None) -> None:
    import structlog  # here: the model is imported by everything, and logs only on this path

    structlog.get_logger("gateway.adapter").warning(
        "reporter field not read, taken as absent", field=field_name, problem=problem, record=record
    )


@dataclass(frozen=True, slots=True)
class Location:
    """Where the incident happened (a public place, not the reporter's address)."""

    description: str | None = None
    subdistrict: str | None = None  # kelurahan
    district: str | None = None  # kecamatan
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """Metadata of an attachment as a peer lists it; the bytes are fetched on demand."""

    ref: str
    filename: str
    content_type: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class AttachmentContent:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint as read from a local app."""

    ref: str  # the local app's id
    title: str
    body: str
    created_at: datetime
    updated_at: datetime
    status: RawStatus
    category: str | None = None  # the local app's own category name
    classification: Classification = Classification.COMPLAINT
    location: Location | None = None
    channel: str | None = None  # web, android, whatsapp, sms, twitter ...
    incident_at: datetime | None = None
    is_anonymous: bool = False
    is_secret: bool = False
    agency: str | None = None  # the local app's agency (OPD) code, if assigned
    attachments: tuple[AttachmentRef, ...] = ()
    reporter: Reporter | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A follow-up (tindak lanjut / tanggapan) as read from either side."""

    ref: str  # the id on the side it was read from
    complaint_ref: str  # that side's id of the complaint
    content: str
    created_at: datetime
    author: str | None = None  # an institution or role, never a citizen's name
    gateway_ref: str | None = None  # set when the peer echoes a mark the gateway wrote
    # The follow-up's own confidentiality (rahasia): kept off public pages on both sides.
    is_secret: bool = False
    # Evidence the officer attached (bukti tindak lanjut); fetched on demand like a complaint's.
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One transition of a complaint's status on one side."""

    ref: str
    complaint_ref: str
    status: RawStatus
    changed_at: datetime
    previous: RawStatus | None = None
    gateway_ref: str | None = None
    # What the side that changed it said with it, ready to show the citizen on the other side:
    # the status in that side's words, the new agency, the reason. Built by the adapter of that
    # side: the engine passes it on unchanged (with the status, or as a follow-up when the
    # status itself is not written because the other side shows it already).
    note: str | None = None
    # The reason the side gave, verbatim (a hold asking for more data, why it was rejected).
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HubComplaintDraft:
    """What the engine asks a hub to create: the complaint, already mapped to the
    hub's ids by the route's tables, plus the gateway's own reference so the
    created record can be recognised later."""

    complaint: Complaint
    gateway_ref: str
    category_id: str | None
    classification_id: str | None
    channel_id: str | None
    attachment_ids: tuple[str, ...] = ()
    route_fields: dict[str, bool | int | float | str | None] = field(default_factory=dict)  # as the YAML gives them
    # The hub institution of the agency (OPD) the local app assigned, when it has one.
    disposition_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceItem:
    """One entry of a hub's reference data (an institution, a template), as the hub names it."""

    ref: str
    name: str
    code: str | None = None
    parent_ref: str | None = None


@dataclass(frozen=True, slots=True)
class HubComplaintState:
    """A complaint as the hub sees it now: its status and its status history."""

    ref: str
    status: RawStatus
    status_changes: tuple[StatusChange, ...] = ()
    disposition_id: str | None = None
    disposition_name: str | None = None
    # False when the history could not be read whole (a log entry unreadable, or none served):
    # the engine then still passes the current ``status`` on by itself.
    history_complete: bool = True
    # History entries that are not status changes but news for the citizen (a new disposition),
    # passed on to the local app as follow-ups.
    notes: tuple[FollowUp, ...] = ()
