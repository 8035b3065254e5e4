"""Several daemons on one store: who is alive (heartbeats, so that each takes its share of
every peer's request budget), and which peer another daemon found down (its breaker), so that
a daemon does not hammer a peer the others already stopped calling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select

from gateway._store._store import Store
from gateway._store._tables import DaemonRow, PeerHealthRow
from gateway._timezones import ensure_utc

#: A daemon whose last heartbeat is older than this is taken for dead (three missed beats).
LIVE_WINDOW = timedelta(seconds=30)
HEARTBEAT_SECONDS = LIVE_WINDOW.total_seconds() / 3


def heartbeat(store: Store, owner: str) -> int:
    """Record that ``owner`` is alive now (on the leases' clock); return how many daemons are."""
    with store.session() as s:
        now = store.lease_now(s)
        row = s.get(DaemonRow, owner)
        if row is None:
            s.add(DaemonRow(owner=owner, started_at=now, heartbeat_at=now))
        else:
            row.heartbeat_at = now
        s.flush()
        recent = col(DaemonRow.heartbeat_at) > now - LIVE_WINDOW
        live = s.exec(select(func.count()).select_from(DaemonRow).where(recent)).one()
        return max(1, int(live))


def leave(store: Store, owner: str) -> None:
    """A daemon that stops cleanly gives its share back at once."""
    with store.session() as s:
        s.execute(delete(DaemonRow).where(col(DaemonRow.owner) == owner))


@dataclass(frozen=True)
class PeerDown:
    owner: str
    seconds_ago: float  # since the breaker opened
    last_error: str | None


def peer_down(store: Store, instance: str, *, besides: str) -> PeerDown | None:
    """The peer's breaker as another daemon than ``besides`` left it, when that one opened it."""
    with store.session() as s:
        row = s.get(PeerHealthRow, instance)
        if row is None or row.state != "open" or row.owner in (None, besides):
            return None
        now: datetime = store.lease_now(s)
        age = (now - ensure_utc(row.changed_at)).total_seconds()
        return PeerDown(owner=row.owner, seconds_ago=max(0.0, age), last_error=row.last_error)
