"""Time zone rules (invariant 4): store UTC; read a peer's offset-less time in
the zone its adapter instance declares, and a time with an offset by its offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")  # UTC+7, no daylight saving


#: Times outside these years are not a complaint's: a peer's placeholder (0001-01-01), a typo,
#: or a value that cannot even be moved to UTC. Reading one raises ValueError like a bad format.
MIN_YEAR, MAX_YEAR = 1900, 2200


def to_utc(value: datetime, peer_zone: tzinfo) -> datetime:
    """An aware time converted to UTC; a naive one is read in ``peer_zone`` first.
    Raises ``ValueError`` for a year outside :data:`MIN_YEAR`..:data:`MAX_YEAR`."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year {value.year} is outside {MIN_YEAR}-{MAX_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=peer_zone)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("time cannot be moved to UTC") from None


def parse_peer_time(text: str, fmt: str, peer_zone: tzinfo) -> datetime:
    """Parse ``text`` with ``fmt`` (strptime) and return UTC. A ``%z`` in ``fmt`` reads an offset
    (``+08:00``, ``+0800`` or ``Z``), which then wins over ``peer_zone``. Raises ``ValueError`` for
    anything that is not such a time (also a lone surrogate, or a year out of range)."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return _parse_peer_time(text, fmt, peer_zone)
    except TypeError:  # a zone that cannot be a cache key: parsed without the cache
        return _parse_uncached(text, fmt, peer_zone)


# A backfill parses every record's time twice (the walk's key, then the translation): the
# second parse of the same text is a cache hit. Failures are not cached (they raise).
@lru_cache(maxsize=4096)
def _parse_peer_time(text: str, fmt: str, peer_zone: tzinfo) -> datetime:
    return _parse_uncached(text, fmt, peer_zone)


# ``%Y-%m-%d %H:%M:%S`` written in full, ASCII digits: what datetime.fromisoformat reads
# exactly as strptime does, in a tenth of the time (strptime was the largest single cost of
# a backfill). Any other shape (no zero padding, other digits, a "T") goes to strptime.
_PLAIN_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# The same for a day alone (``%Y-%m-%d``, a complaint's incident date): midnight, as strptime gives.
_PLAIN_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_uncached(text: str, fmt: str, peer_zone: tzinfo) -> datetime:
    text = text.strip()
    try:
        if (fmt == "%Y-%m-%d %H:%M:%S" and _PLAIN_SECONDS.fullmatch(text)) or (
            fmt == "%Y-%m-%d" and _PLAIN_DAY.fullmatch(text)
        ):
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, fmt)
    except (ValueError, OverflowError, UnicodeError):
        raise ValueError("does not match the format") from None
    return to_utc(parsed, peer_zone)


def parse_iso_time(text: str, peer_zone: tzinfo) -> datetime:
    """An ISO-8601 time (``2026-11-29T10:00:00+08:00``, ``...Z``, ``...+0800``, fractions of a
    second, ``T`` or a space) returned in UTC. Its own offset wins; a time without one is read in
    ``peer_zone``. Raises ``ValueError`` for anything else: a date without a time, another
    layout, a year out of range."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    text = text.strip()
    # A date alone would silently be midnight: a time field that lost its time is an error.
    if len(text) < 16 or text[10:11] not in ("T", "t", " "):
        raise ValueError("not an ISO-8601 date and time")
    if text.endswith("z"):  # RFC 3339 allows a lower-case zone letter; fromisoformat does not
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except (ValueError, UnicodeError):
        raise ValueError("not an ISO-8601 date and time") from None
    return to_utc(parsed, peer_zone)


def format_iso_time(value: datetime, peer_zone: tzinfo, *, timespec: str = "seconds") -> str:
    """A UTC (or aware) time written in ISO-8601 in ``peer_zone``, with its offset
    (``2026-11-29T10:00:00+08:00``): for peers that take offsets in filters and writes.
    ``timespec`` as for ``datetime.isoformat``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(peer_zone).isoformat(timespec=timespec)
    except (OverflowError, ValueError):
        raise ValueError("time cannot be expressed in the peer's zone") from None


def format_peer_time(value: datetime, fmt: str, peer_zone: tzinfo) -> str:
    """Format a UTC (or aware) time in the peer's zone, with ``fmt`` (``%z`` writes the zone's
    offset, ``+0700``; without it the text has no offset). Raises
    ``ValueError`` when the time cannot be expressed there (a year at the edge of the calendar)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(peer_zone).strftime(fmt)
    except (OverflowError, ValueError):
        raise ValueError("time cannot be expressed in the peer's zone") from None


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def ensure_utc(value: datetime) -> datetime: ...
@overload
def ensure_utc(value: None) -> None: ...
@overload
def ensure_utc(value: datetime | None) -> datetime | None: ...
def ensure_utc(value: datetime | None) -> datetime | None:
    """Times read back from SQLite come without tzinfo; they were stored as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
