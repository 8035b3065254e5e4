"""A peer's own cursor: an opaque place in its feed that the engine keeps for the adapter.

Some peers order a feed by a token of their own (``GET /changes?cursor=abc`` answering
``next_cursor``) rather than by a time the gateway can ask ``since``. A stream of such
a peer yields a :class:`PeerPosition` between its records; the engine stores it once
the records before it are stored, and gives it back on the next intake as
``LocalApp.position(stream)``. Until one is stored, ``position`` is None and the stream
walks from ``since`` (or from the start).

The engine sets the positions for the task that reads the streams (a context variable,
so that a backfill and the daemon's intake of one instance never see each other's).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerPosition:
    """Yielded by a stream between records: everything before it has been passed on, and a
    walk that starts again from ``value`` misses nothing after it."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise ValueError("a PeerPosition is a non-empty string")

    def __repr__(self) -> str:  # a peer's token may encode anything: keep it out of logs
        return "PeerPosition(...)"


#: The stored positions of the streams being read, by stream name (set by the intake).
stored_positions: ContextVar[dict[str, str] | None] = ContextVar("stored_positions", default=None)
