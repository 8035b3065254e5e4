"""Time zone rules (invariant 4): store UTC; read a peer's offset-less time in
the zone its adapter instance declares."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")  # UTC+7, no daylight saving


def to_utc(value: datetime, peer_zone: tzinfo) -> datetime:
    """An aware time converted to UTC; a naive one is read in ``peer_zone`` first."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=peer_zone)
    return value.astimezone(timezone.utc)


def parse_peer_time(text: str, fmt: str, peer_zone: tzinfo) -> datetime:
    """Parse ``text`` with ``fmt`` (strptime) and return UTC. Raises ``ValueError``."""
    return to_utc(datetime.strptime(text.strip(), fmt), peer_zone)


def format_peer_time(value: datetime, fmt: str, peer_zone: tzinfo) -> str:
    """Format a UTC (or aware) time in the peer's zone, without an offset."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(peer_zone).strftime(fmt)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ensure_utc(value: datetime | None) -> datetime | None:
    """Times read back from SQLite come without tzinfo; they were stored as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def add_working_days(start: datetime, days: int, *, holidays: frozenset[date] = frozenset(),
                     zone: tzinfo = WIB) -> datetime:
    """``start`` plus ``days`` working days (Monday to Friday, not a listed holiday),
    counted in ``zone``: the deadlines of the brief ("answered within 7 working days")."""
    local = start.astimezone(zone)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(timezone.utc)
