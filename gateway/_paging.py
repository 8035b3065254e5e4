"""Reading a list ordered by update time without skipping or repeating a record
while records change under it.

Local apps page by number through a list ordered by update time. Walking pages
1, 2, 3... of one query skips a record whenever one on an earlier page is updated
meanwhile (it moves to the end and everything after it shifts one place up).
:func:`walk_by_time` never walks far by page number: after each page it asks
again from the newest time it has read (the filter is inclusive, so that second
is read again and its records recognised by id), so a record that changes
during the walk only moves ahead of the walk, where it is read in its new version.

Page numbers are still needed within one second that holds more records than a
page (a bulk import, say). There a record that moves on during the walk shifts the
pages just the same, so such a second is read through again, from its first page,
until a read through it finds no record it had not seen.

A peer's page count is not trusted to end a walk: an empty page ends the query whatever
its ``meta`` says (a count of a million pages would otherwise be walked page by page),
and a page that answers the same records as the page before (a peer ignoring the page
number) raises :class:`gateway.PermanentPeerError`, as the other walks do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway._paging_styles import looping_error


@dataclass(frozen=True)
class TimePage:
    """One page as a peer answered it."""

    items: list[Any]  # raw records in the list's order: update time, then id
    total: int | None  # records matching the query (``meta.total``), when the peer says
    last: bool  # no page after this one for the same query


class WalkProgress(Protocol):
    """Told how far a walk has come (the backfill's progress bar)."""

    def started(self, total: int | None) -> None: ...

    def advanced(self, records: int) -> None: ...


#: Set by a caller that wants progress reports of the walks it starts (``gateway backfill``).
walk_progress: ContextVar[WalkProgress | None] = ContextVar("walk_progress", default=None)


# Read-throughs of one crowded second before the walk moves on regardless; each finds
# the records that a change during the one before hid (in practice one or two suffice).
MAX_ROUNDS = 5


async def walk_by_time(
    fetch: Callable[[datetime | None, int], Awaitable[TimePage]],
    key: Callable[[Any], tuple[str, datetime] | None],
    since: datetime | None,
    *,
    peer: str = "peer",
    stream: str = "list",
) -> AsyncIterator[Any]:
    """Every record updated at or after ``since``, each version once, oldest first.

    ``fetch(since, page_number)`` asks the peer for one page of records updated at or
    after ``since``; ``key(raw)`` reads a raw record's id and update time (None when it
    cannot: the record is passed on, for the caller to quarantine, and does not move
    the walk). ``peer`` and ``stream`` name the list in the error raised when the peer
    answers the same page for the next page number.
    """
    progress = walk_progress.get()
    boundary = since
    passed: set[tuple[str, datetime]] = set()  # versions passed on, from the boundary on
    unreadable: set[str] = set()  # unreadable records passed on (few: kept for the whole walk)
    page_number = 1
    crowded = False  # paging through one second that fills whole pages
    rounds, round_found = 0, False  # read-throughs of that second; whether this one found more
    first = True

    def move_on() -> None:
        nonlocal boundary, passed, page_number, crowded
        newest = max(when for _, when in passed)
        boundary, page_number, crowded = newest, 1, False
        passed = {v for v in passed if v[1] >= newest}

    before: tuple[datetime | None, int, list[Any]] | None = None  # the page fetched last
    while True:
        page = await fetch(boundary, page_number)
        if before is not None and page.items and before == (boundary, page_number - 1, page.items):
            raise looping_error(peer, stream, f"page {page_number} answered the same records as the page before")
        before = (boundary, page_number, page.items)
        last = page.last or not page.items  # nothing follows an empty page, whatever the page count says
        if first and progress is not None:
            progress.started(page.total)
        first = False
        fresh, later = 0, False  # later: the page reaches past the boundary's second
        for item in page.items:
            found = key(item)
            if found is None:
                fingerprint = repr(item)
                if fingerprint not in unreadable:
                    unreadable.add(fingerprint)
                    fresh += 1
                    yield item
                continue
            if boundary is None or found[1] > boundary:
                later = True
            if found in passed:
                continue  # read already, in this version
            passed.add(found)
            if boundary is not None and found[1] <= boundary:
                round_found = True
            fresh += 1
            yield item
        if progress is not None:
            progress.advanced(fresh)
        if not crowded:
            if last:
                return
            if later and passed:
                move_on()
            else:  # a whole page within the boundary's second (or unreadable): page on through it
                crowded, rounds, round_found, page_number = True, 1, False, 2
            continue
        if not later and not last:
            page_number += 1
            continue
        # One read through the crowded second is complete. A record that moved on meanwhile
        # shifted its pages: read it through again until a read-through finds nothing new.
        if round_found and rounds < MAX_ROUNDS:
            rounds, round_found, page_number = rounds + 1, False, 1
            continue
        if last or not passed:
            return
        move_on()
