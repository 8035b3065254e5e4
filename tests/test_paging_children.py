"""Follow-ups kept per complaint, read while officers add more: the lost follow-up of issue 11.

A fake peer lists the complaints modified since T (oldest modification first) and each
complaint's follow-ups on its own; adding a follow-up moves its complaint's modification
time. Walks are driven like the engine drives a stream: from a cursor that is the newest
time passed on. The naive walk loses a follow-up; walk_children does not."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway import RecordError, walk_children, walk_list

pytestmark = [pytest.mark.anyio]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
S = timedelta(seconds=1)


class Peer:
    """Complaints (id -> modification time) and their follow-ups (id, time). ``between(n)``
    runs before the peer answers its n-th request: officers at work during the walk."""

    def __init__(self, between: Callable[[Peer, int], None] = lambda peer, n: None):
        self.modified: dict[str, datetime] = {}
        self.follow_ups: dict[str, list[dict[str, Any]]] = {}
        self.between = between
        self.requests = 0
        self.clock = T0

    def add(self, complaint: str, follow_up: str) -> None:
        self.clock += S
        self.follow_ups.setdefault(complaint, []).append({"id": follow_up, "t": self.clock})
        self.modified[complaint] = self.clock

    def _answer(self) -> None:
        self.between(self, self.requests)
        self.requests += 1

    async def complaints(self, since: datetime | None) -> list[dict[str, Any]]:
        self._answer()
        return [{"id": ref, "t": t} for ref, t in self.modified.items() if since is None or t >= since]

    async def children(self, complaint: dict[str, Any]) -> list[dict[str, Any]]:
        self._answer()
        return list(self.follow_ups.get(complaint["id"], []))

    def all_follow_ups(self) -> set[str]:
        return {f["id"] for fs in self.follow_ups.values() for f in fs}


def listed(peer: Peer, since: datetime | None) -> AsyncIterator[Any]:
    return walk_list(lambda: peer.complaints(since), order_by=lambda c: c["t"])


async def naive(peer: Peer, since: datetime | None) -> AsyncIterator[Any]:
    """The issue's first version: each listed complaint's follow-ups written since the cursor."""
    async for complaint in listed(peer, since):
        for follow_up in await peer.children(complaint):
            if since is None or follow_up["t"] >= since:
                yield follow_up


def safe(peer: Peer, since: datetime | None) -> AsyncIterator[Any]:
    return walk_children(
        listed(peer, since),
        lambda c: (c["id"], c["t"]),
        peer.children,
        lambda f: f["t"],
        peer="kelurahan",
        stream="follow_ups",
    )


Walk = Callable[[Peer, datetime | None], AsyncIterator[Any]]


async def read_as_the_engine(
    peer: Peer, walk: Walk, passes: int, since: datetime | None = None, stop_after: int | None = None
) -> tuple[set[str], datetime | None]:
    """``passes`` walks, each from the newest time the ones before passed on (the cursor);
    ``stop_after``: the first ten walks fail after that many records (the engine keeps
    the cursor of what it stored)."""
    read: set[str] = set()
    cursor = since
    for walk_number in range(passes):
        n = 0
        if walk_number == 10:
            stop_after = None
        async for follow_up in walk(peer, cursor):
            read.add(follow_up["id"])
            cursor = max(cursor, follow_up["t"]) if cursor else follow_up["t"]
            n += 1
            if stop_after is not None and n >= stop_after:
                break
    return read, cursor


def the_issue() -> Peer:
    """Complaints A and B each have a follow-up. While the walk reads A's follow-ups, an
    officer answers on A (a2), and then one on B (b2), before B's list is read."""

    def between(peer: Peer, request: int) -> None:
        if request == 2:  # after the listing and A's follow-ups, before B's
            peer.add("A", "a2")
            peer.add("B", "b2")

    peer = Peer(between)
    peer.add("A", "a1")
    peer.add("B", "b1")
    return peer


async def test_the_naive_walk_loses_the_follow_up_added_during_the_walk() -> None:
    peer = the_issue()
    read, cursor = await read_as_the_engine(peer, naive, passes=3)
    assert peer.all_follow_ups() - read == {"a2"}  # lost for good: A's time is behind the cursor
    assert cursor == peer.modified["B"] > peer.modified["A"]


async def test_walk_children_does_not_lose_it() -> None:
    peer = the_issue()
    read, cursor = await read_as_the_engine(peer, safe, passes=1)
    assert read == {"a1", "b1"}  # b2 is newer than B as listed: left for the next walk
    assert cursor is not None and cursor <= peer.modified["A"]  # the cursor has not passed A
    read2, _ = await read_as_the_engine(peer, safe, passes=1, since=cursor)
    assert read | read2 == peer.all_follow_ups()


@pytest.mark.parametrize("seed", range(20))
async def test_walk_children_loses_nothing_while_officers_answer_during_walks(seed: int) -> None:
    rng = random.Random(seed)
    counter = [0]

    def between(peer: Peer, request: int) -> None:
        if request < 100:  # officers work for a while, then the peer is quiet
            for _ in range(rng.randint(0, 2)):
                counter[0] += 1
                peer.add(rng.choice("ABCDEFGH"), f"f{counter[0]}")

    peer = Peer(between)
    for n, complaint in enumerate("ABCDEFGH"):
        peer.add(complaint, f"start{n}")
    stop_after = rng.choice([None, 1, 3])  # also walks that fail part way
    read, _ = await read_as_the_engine(peer, safe, passes=300, stop_after=stop_after)
    assert peer.requests > 100
    assert read == peer.all_follow_ups()


async def test_a_complaint_that_cannot_be_read_is_passed_on_as_a_record_error() -> None:
    peer = Peer()
    peer.add("A", "a1")

    async def parents() -> AsyncIterator[Any]:
        yield {"id": None, "t": None}
        yield {"id": "A", "t": peer.modified["A"]}

    walked = [
        item
        async for item in walk_children(
            parents(),
            lambda c: (c["id"], c["t"]) if c["id"] else None,
            peer.children,
            lambda f: f.get("t"),
            peer="kelurahan",
            stream="follow_ups",
        )
    ]
    assert isinstance(walked[0], RecordError) and walked[0].peer == "kelurahan"
    assert [f["id"] for f in walked[1:]] == ["a1"]


async def test_children_come_oldest_first_and_unreadable_times_first_of_all() -> None:
    async def parents() -> AsyncIterator[Any]:
        yield {"id": "A", "t": T0 + 10 * S}

    async def children(_: Any) -> list[Any]:
        return [{"id": "late", "t": T0 + 5 * S}, {"id": "bad", "t": None}, {"id": "early", "t": T0 + S}]

    walked = [
        f["id"]
        async for f in walk_children(
            parents(), lambda c: (c["id"], c["t"]), children, lambda f: f["t"], peer="p", stream="follow_ups"
        )
    ]
    assert walked == ["bad", "early", "late"]
