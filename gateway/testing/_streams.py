"""Reading a local app's streams the way the engine does, for the kit's checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from gateway._adapter import LocalApp
from gateway._errors import RecordError
from gateway._model import Complaint, FollowUp, StatusChange
from gateway._position import PeerPosition
from gateway.testing._driver import Stream

Record = Complaint | FollowUp | StatusChange


def open_stream(
    app: LocalApp, stream: Stream, since: datetime | None
) -> AsyncIterator[Record | RecordError | PeerPosition]:
    if stream == "complaints":
        return app.complaints_since(since)
    if stream == "follow_ups":
        return app.follow_ups_since(since)
    return app.status_changes_since(since)


def record_time(record: Record) -> datetime:
    """The time a stream is ordered by and its cursor moves with."""
    if isinstance(record, Complaint):
        return record.updated_at
    if isinstance(record, FollowUp):
        return record.created_at
    return record.changed_at


def record_key(record: Record) -> tuple[str, str]:
    """What the engine must end up with: each follow-up and status change once, and each
    complaint in its newest version (a complaint read in an older version only is behind)."""
    if isinstance(record, Complaint):
        return record.ref, record.updated_at.isoformat()
    return record.ref, ""


@dataclass
class Read:
    """One walk of a stream, as it came."""

    stream: Stream
    since: datetime | None
    records: list[Record] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    strays: list[object] = field(default_factory=list)  # neither a record of the stream nor a RecordError

    @property
    def cursor(self) -> datetime | None:
        """Where the engine's cursor would stand after this walk: the newest time read
        (``since`` again, when nothing was)."""
        times = [record_time(r) for r in self.records]
        return max(times) if times else self.since

    def keys(self) -> set[tuple[str, str]]:
        return {record_key(r) for r in self.records}


async def read_stream(app: LocalApp, stream: Stream, since: datetime | None) -> Read:
    """Every item of one walk; an exception the stream raises goes to the caller."""
    expected = {"complaints": Complaint, "follow_ups": FollowUp, "status_changes": StatusChange}[stream]
    read = Read(stream, since)
    async for item in open_stream(app, stream, since):
        if isinstance(item, PeerPosition):
            continue  # the peer's own cursor, for the engine to keep: not a record
        if isinstance(item, RecordError):
            read.errors.append(item)
        elif isinstance(item, expected):
            read.records.append(item)
        else:
            read.strays.append(item)
    return read
