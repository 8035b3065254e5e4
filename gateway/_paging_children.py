"""Reading lists that a peer keeps per complaint (follow-ups under ``/complaints/{id}``)
without losing one that is added during the walk.

The peer lists the complaints modified since T, oldest modification first, and each
complaint's children on its own. The naive walk (list the complaints, read each one's
children, pass on those written since T) loses children: a follow-up added to a complaint
already passed, older than one on a complaint read after it, lies behind the newest time
passed on, which becomes the stream's cursor, and the next walk, from that cursor, no
longer lists its complaint.

The rule :func:`walk_children` keeps: **a child is passed on only when its complaint's
modification time, as the listing gave it, is at or after the child's time** (the listing
"covers" it). So no child passed on is newer than the complaint being walked, hence newer
than any complaint not yet walked (they come in order of modification): the cursor never
passes a complaint whose children are not all passed on, even if the walk stops there.
A child newer than its complaint's listed time was added after the listing; adding it
moved the complaint's modification time to the child's time or later, so the complaint is
listed again, later in this walk (``walk_by_time`` lists a record again when it moves on)
or in the next one, which starts at a cursor no later than the listed time: there it is
covered. And every child of a listed complaint is passed on, however old (the engine
recognises the ones it has by their id): filtering by ``since`` would lose the older
children of a complaint a stopped walk did not reach.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from gateway._errors import RecordError
from gateway._position import PeerPosition


async def walk_children(
    parents: AsyncIterator[Any],
    parent_key: Callable[[Any], tuple[str, datetime] | None],
    children: Callable[[Any], Awaitable[list[Any]]],
    child_time: Callable[[Any], datetime | None],
    *,
    peer: str,
    stream: str,
) -> AsyncIterator[Any]:
    """The children of every parent in ``parents`` that the parent's listed modification
    time covers, each parent's oldest first.

    ``parents``: the raw parents modified at or after ``since``, oldest modification first,
    listed by a walk that keeps the stream rule itself (``walk_by_time``, or one answer
    sorted by ``walk_list``). ``parent_key(raw)``: its id and modification time (UTC),
    None when unreadable. ``children(raw_parent)``: all its children. ``child_time(raw)``: a
    child's time (UTC), None when unreadable: such a child is passed on first, for the
    adapter to turn into a :class:`gateway.RecordError`. A parent that cannot be read is
    passed on as a :class:`gateway.RecordError` (the engine then holds the stream's cursor).
    A :class:`gateway.PeerPosition` among the parents (a feed ordered by modification, walked
    with ``walk_by_token(..., positions=True)``) is passed on where it stands: every child
    before it is passed on or, added after its parent was listed, has moved that parent past it.
    """
    async for parent in parents:
        if isinstance(parent, PeerPosition):
            yield parent
            continue
        key = parent_key(parent)
        if key is None:
            yield RecordError(peer, stream, "a parent's id or modification time cannot be read: its list is not read")
            continue
        _, modified = key
        found = await children(parent)
        timed = [(child_time(child), n, child) for n, child in enumerate(found)]
        for when, _, child in timed:
            if when is None:
                yield child
        covered = [(when, n, child) for when, n, child in timed if when is not None and when <= modified]
        for _, _, child in sorted(covered, key=lambda k: (k[0], k[1])):
            yield child
