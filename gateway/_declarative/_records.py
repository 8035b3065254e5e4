"""Reading one raw record with the description's JMESPath fields into the canonical model.

A field that is missing or of the wrong type raises :class:`Unreadable` naming the
field (never its value), which the app turns into a :class:`gateway.RecordError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from gateway._declarative._schema import (
    ComplaintFields,
    FollowUpFields,
    LocationFields,
    ReporterFields,
    StatusChangeFields,
    Times,
)
from gateway._model import Complaint, FollowUp, Location, RawStatus, Reporter, StatusChange
from gateway._timezones import format_iso_time, format_peer_time, parse_iso_time, parse_peer_time


class Unreadable(Exception):
    """A record's field cannot be read; the message names the field only."""


@lru_cache(maxsize=512)
def compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


def search(expression: str, data: Any) -> Any:
    """The expression's value on ``data``; None when it cannot apply (a function given a value of
    the wrong type: ``join`` over a null), as for a field that is not there."""
    try:
        return compiled(expression).search(data)
    except JMESPathError:
        return None


def read_time(text: Any, times: Times, zone: tzinfo) -> datetime | None:
    """A peer's time in UTC, None when it is not a readable time."""
    if not isinstance(text, str):
        return None
    try:
        if times.format == "iso":
            return parse_iso_time(text, zone)
        return parse_peer_time(text, times.format, zone)
    except ValueError:
        return None


def write_time(value: datetime, times: Times, zone: tzinfo) -> str:
    if times.query_format == "iso":
        return format_iso_time(value, zone)
    return format_peer_time(value, times.query_format, zone)


def as_ref(value: Any) -> str | None:
    """An id as text: a string that is not blank, or a whole number (never a bool)."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class Reader:
    """Reads the fields of one raw record."""

    def __init__(self, raw: Any, times: Times, zone: tzinfo):
        self.raw, self.times, self.zone = raw, times, zone

    def _value(self, name: str, expression: str | None) -> Any:
        return None if expression is None else search(expression, self.raw)

    def ref(self, name: str, expression: str | None) -> str:
        value = as_ref(self._value(name, expression))
        if value is None:
            raise Unreadable(f"{name} is missing or not an id")
        return value

    def text(self, name: str, expression: str | None, *, required: bool = False) -> str | None:
        value = self._value(name, expression)
        if value is None and not required:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not required:
            return str(value)  # a code sent as a number (an agency 12)
        if not isinstance(value, str) or (required and not value.strip()):
            raise Unreadable(f"{name} is missing or not a text" if required else f"{name} is not a text")
        return value

    def required(self, name: str, expression: str) -> str:
        value = self.text(name, expression, required=True)
        assert value is not None
        return value

    def time(self, name: str, expression: str | None, *, required: bool = True) -> datetime | None:
        value = self._value(name, expression)
        if value is None and not required:
            return None
        found = read_time(value, self.times, self.zone)
        if found is None:
            raise Unreadable(f"{name} is missing or not a time in the described format")
        return found

    def flag(self, name: str, expression: str | None) -> bool:
        value = self._value(name, expression)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise Unreadable(f"{name} is not true or false")
        return value

    def number(self, name: str, expression: str | None) -> float | None:
        value = self._value(name, expression)
        if value is None:
            return None
        # NaN and Infinity: Python's JSON reads them (and 1e400 as Infinity); no place has them,
        # and httpx refuses to send them on.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Unreadable(f"{name} is not a number")
        return float(value)


def _location(r: Reader, f: LocationFields) -> Location | None:
    location = Location(
        description=r.text("location.description", f.description),
        subdistrict=r.text("location.subdistrict", f.subdistrict),
        district=r.text("location.district", f.district),
        latitude=r.number("location.latitude", f.latitude),
        longitude=r.number("location.longitude", f.longitude),
    )
    return None if location == Location() else location


def _reporter(r: Reader, f: ReporterFields, ref: str) -> Reporter | None:
    """Read as Reporter.from_peer reads: a malformed field is taken as absent with a warning,
    never a reason to lose the complaint (nothing of the reporter is needed to pass it on)."""
    names = ("name", "nik", "phone", "email", "address")
    reporter = Reporter.from_peer(
        {name: r._value(f"reporter.{name}", getattr(f, name)) for name in names},
        where={name: f"reporter.{name}" for name in names},
        record=ref,
    )
    return None if reporter == Reporter() else reporter


def complaint(r: Reader, f: ComplaintFields) -> Complaint:
    anonymous = r.flag("is_anonymous", f.is_anonymous)
    updated = r.time("updated_at", f.updated_at)
    assert updated is not None
    created = r.time("created_at", f.created_at)
    assert created is not None
    ref = r.ref("ref", f.ref)
    return Complaint(
        ref=ref,
        title=r.required("title", f.title),
        body=r.required("body", f.body),
        created_at=created,
        updated_at=updated,
        status=RawStatus(r.required("status", f.status), r.text("status_name", f.status_name)),
        category=r.text("category", f.category),
        channel=r.text("channel", f.channel),
        agency=r.text("agency", f.agency),
        incident_at=r.time("incident_at", f.incident_at, required=False),
        is_anonymous=anonymous,
        is_secret=r.flag("is_secret", f.is_secret),
        location=_location(r, f.location) if f.location else None,
        # An anonymous complaint passes on no identity at all, whatever the app sends.
        reporter=_reporter(r, f.reporter, ref) if f.reporter and not anonymous else None,
    )


def follow_up(r: Reader, f: FollowUpFields, complaint_ref: str) -> FollowUp:
    """``complaint_ref``: the complaint whose list it came from (per complaint), used when the
    fields do not say."""
    created = r.time("created_at", f.created_at)
    assert created is not None
    return FollowUp(
        ref=r.ref("ref", f.ref),
        complaint_ref=r.ref("complaint_ref", f.complaint_ref)
        if f.complaint_ref or not complaint_ref
        else complaint_ref,
        content=r.required("content", f.content),
        created_at=created,
        author=r.text("author", f.author),
        gateway_ref=r.text("gateway_ref", f.gateway_ref),
        is_secret=r.flag("is_secret", f.is_secret),
    )


def status_change(r: Reader, f: StatusChangeFields) -> StatusChange:
    changed = r.time("changed_at", f.changed_at)
    assert changed is not None
    previous = r.text("previous", f.previous)
    return StatusChange(
        ref=r.ref("ref", f.ref),
        complaint_ref=r.ref("complaint_ref", f.complaint_ref),
        status=RawStatus(r.required("status", f.status), r.text("status_name", f.status_name)),
        changed_at=changed,
        previous=RawStatus(previous) if previous else None,
        gateway_ref=r.text("gateway_ref", f.gateway_ref),
        note=r.text("note", f.note),
    )


def record_key(
    ref_expr: str, time_expr: str, times: Times, zone: tzinfo
) -> Callable[[Any], tuple[str, datetime] | None]:
    """A raw record's id and the time its list is ordered by, None when either is unreadable."""

    def key(raw: Any) -> tuple[str, datetime] | None:
        ref = as_ref(search(ref_expr, raw))
        when = read_time(search(time_expr, raw), times, zone)
        return None if ref is None or when is None else (ref, when)

    return key
