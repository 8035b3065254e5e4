"""The pagination trap: a list ordered by update time, paged by number, changing
while it is read. walk_by_time must pass on every record in its newest version and
no version twice; a plain page-number walk over the same peer skips records."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gateway import PermanentPeerError, TimePage, walk_by_time
from gateway._paging import MAX_ROUNDS, walk_progress

pytestmark = [pytest.mark.anyio]

T0 = datetime(2026, 11, 1, tzinfo=UTC)
S = timedelta(seconds=1)


class ChangingList:
    """A peer's list: records (id -> update time), served ordered by (time, id), filtered
    by an inclusive ``since``, paged by number. ``between`` runs before each page is
    served: the world changing under the walk."""

    def __init__(self, times: dict[str, datetime], page_size: int, between: Callable[[int], None] = lambda n: None):
        self.times = times
        self.page_size = page_size
        self.between = between
        self.requests = 0

    def rows(self, since: datetime | None) -> list[tuple[str, datetime]]:
        return sorted(
            ((ref, t) for ref, t in self.times.items() if since is None or t >= since), key=lambda r: (r[1], int(r[0]))
        )

    async def fetch(self, since: datetime | None, page: int) -> TimePage:
        self.between(self.requests)
        self.requests += 1
        rows = self.rows(since)
        start = (page - 1) * self.page_size
        items = [{"id": ref, "t": t} for ref, t in rows[start : start + self.page_size]]
        return TimePage(items=items, total=len(rows), last=start + self.page_size >= len(rows))


def key(item: dict) -> tuple[str, datetime]:
    return item["id"], item["t"]


async def walk(peer: ChangingList, since: datetime | None = None) -> list[tuple[str, datetime]]:
    return [key(item) async for item in walk_by_time(peer.fetch, key, since)]


async def page_number_walk(peer: ChangingList) -> list[tuple[str, datetime]]:
    """What the gateway did before: pages 1, 2, 3... of one query."""
    seen, page = [], 1
    while True:
        answer = await peer.fetch(None, page)
        seen += [key(i) for i in answer.items]
        if answer.last:
            return seen
        page += 1


def _moving_world(seed: int) -> tuple[dict[str, datetime], Callable[[int], None]]:
    times = {str(i): T0 + i * S for i in range(1, 201)}
    rng = random.Random(seed)
    clock = [T0 + 1000 * S]

    def between(_request: int) -> None:  # officers update a few records between two page reads
        for _ in range(rng.randint(0, 3)):
            clock[0] += S
            times[str(rng.randint(1, 200))] = clock[0]

    return times, between


async def test_a_page_number_walk_skips_records_that_move_under_it():
    times = {str(i): T0 + i * S for i in range(1, 11)}
    peer = ChangingList(times, page_size=3, between=lambda n: times.update({"2": T0 + 100 * S}) if n == 1 else None)
    refs = {ref for ref, _ in await page_number_walk(peer)}
    assert "4" not in refs  # record 2 moved to the end after page 1; record 4 shifted into page 1


async def test_walk_by_time_passes_on_every_record_while_the_list_changes():
    times = {str(i): T0 + i * S for i in range(1, 11)}
    peer = ChangingList(times, page_size=3, between=lambda n: times.update({"2": T0 + 100 * S}) if n == 1 else None)
    seen = await walk(peer)
    assert {ref for ref, _ in seen} == set(times)
    assert ("2", T0 + 100 * S) in seen  # the moved record, in its new version
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("seed", range(8))
async def test_under_random_changes_every_newest_version_once(seed: int):
    times, between = _moving_world(seed)
    peer = ChangingList(times, page_size=7, between=between)
    seen = await walk(peer)
    counts = Counter(seen)
    assert max(counts.values()) == 1, "a version passed on twice"
    assert set(times.items()) <= set(seen), "a record's newest version was missed"
    # Each version is read once, at the price of the boundary second read again per page.
    assert peer.requests <= len(seen) // 6 + 2


async def test_a_second_holding_more_records_than_a_page_is_paged_through():
    times = {str(i): T0 + S for i in range(1, 24)} | {"99": T0 + 5 * S}
    peer = ChangingList(times, page_size=5)
    seen = await walk(peer, since=T0)
    assert sorted(ref for ref, _ in seen) == sorted(times)
    assert len(seen) == len(times)


async def test_a_busy_second_that_changes_while_paged_is_read_again_without_repeats():
    times = {str(i): T0 + S for i in range(1, 13)} | {"50": T0 + 9 * S}

    def between(n: int) -> None:
        if n == 1:  # between page 1 and page 2 of the busy second, record 3 moves on
            times["3"] = T0 + 20 * S

    peer = ChangingList(times, page_size=5, between=between)
    seen = await walk(peer, since=T0)
    assert {ref for ref, _ in seen} == set(times)
    assert len(seen) == len(set(seen))
    assert ("3", T0 + 20 * S) in seen


async def test_unreadable_records_are_passed_on_and_do_not_move_the_walk():
    times = {str(i): T0 + i * S for i in range(1, 8)}
    peer = ChangingList(times, page_size=3)

    def fussy(item: dict) -> tuple[str, datetime] | None:
        return None if item["id"] == "3" else key(item)

    items = [item async for item in walk_by_time(peer.fetch, fussy, None)]
    assert [i["id"] for i in items].count("3") == 1
    assert {i["id"] for i in items} == set(times)


async def test_progress_is_reported_to_whoever_asked():
    class Progress:
        total, records = None, 0

        def started(self, total):
            self.total = total

        def advanced(self, records):
            self.records += records

    progress = Progress()
    token = walk_progress.set(progress)
    try:
        seen = await walk(ChangingList({str(i): T0 + i * S for i in range(1, 12)}, page_size=4))
    finally:
        walk_progress.reset(token)
    assert progress.total == 11 and progress.records == len(seen) == 11


@pytest.mark.parametrize("seed", range(6))
async def test_a_crowded_second_changing_while_paged_loses_nothing(seed: int):
    """More records in one second than a page holds (a bulk import), some of them
    moving on while the pages of that second are read: the pages shift under the walk
    just as in a page-number walk, and reading the second through again finds them."""
    rng = random.Random(seed)
    times = {str(i): T0 + S for i in range(1, 41)} | {str(i): T0 + i * S for i in range(41, 60)}
    clock = [T0 + 500 * S]

    def between(_request: int) -> None:
        if rng.random() < 0.5:
            clock[0] += S
            times[str(rng.randint(1, 40))] = clock[0]

    peer = ChangingList(times, page_size=6, between=between)
    seen = await walk(peer, since=T0)
    assert max(Counter(seen).values()) == 1
    assert set(times.items()) <= set(seen)


async def test_a_page_number_ignored_in_a_crowded_second_raises_instead_of_walking_for_ever():
    """A fetch that forgets to send the page number (or a peer that ignores it) answers page 1
    for every page; in a second holding more records than a page the walk asked page after page
    for ever. It raises PermanentPeerError naming the peer and the stream instead."""
    peer = ChangingList({str(i): T0 for i in range(5)}, page_size=2)

    async def ignores_the_page(since: datetime | None, page: int) -> TimePage:
        return await peer.fetch(since, 1)

    walked = []
    with pytest.raises(PermanentPeerError, match="lh: GET /aduan: page 2 answered the same records"):
        async for item in walk_by_time(ignores_the_page, key, None, peer="lh", stream="GET /aduan"):
            walked.append(item)
    assert peer.requests <= 4
    assert [item["id"] for item in walked] == ["0", "1"]


class LyingPageCount(ChangingList):
    """A peer whose page count says a million pages whatever it holds (review-fuzz)."""

    async def fetch(self, since: datetime | None, page: int) -> TimePage:
        answer = await super().fetch(since, page)
        return TimePage(items=answer.items, total=answer.total, last=page >= 1_000_000)


class IgnoringPageNumber(ChangingList):
    """A peer that answers page 1 for every page number (a misnamed page parameter), with a
    page count that never ends."""

    async def fetch(self, since: datetime | None, page: int) -> TimePage:
        answer = await super().fetch(since, 1)
        return TimePage(items=answer.items, total=answer.total, last=False)


@pytest.mark.parametrize("crowded", [False, True])
async def test_an_empty_page_ends_the_walk_whatever_the_page_count_says(crowded: bool):
    """Found by review-fuzz: ``meta.total_halaman: 1000000`` with empty pages after the data
    made the walk ask for every page number up to a million, so the app's intake never ended."""
    times = {str(i): (T0 if crowded else T0 + i * S) for i in range(1, 8)}
    peer = LyingPageCount(times, page_size=3)
    seen = await walk(peer)
    assert {ref for ref, _ in seen} == set(times)
    assert peer.requests < 20


async def test_a_peer_answering_the_same_page_for_every_number_is_an_error_not_an_endless_walk():
    """Found by review-fuzz: a peer ignoring the page number, with more records in one second
    than a page, was paged through for ever. Now the walk stops with an error naming the peer
    and the list, after passing on the records it read."""
    peer = IgnoringPageNumber({str(i): T0 for i in range(1, 8)}, page_size=3)
    seen = []
    with pytest.raises(PermanentPeerError, match=r"^lapor-hendi-semarang: GET /api/v1/aduan: page 2 answered"):
        async for item in walk_by_time(peer.fetch, key, None, peer="lapor-hendi-semarang", stream="GET /api/v1/aduan"):
            seen.append(item["id"])
    assert seen == ["1", "2", "3"]
    assert peer.requests == 3


@pytest.mark.parametrize("seed", range(40))
async def test_a_walk_over_a_lying_peer_always_ends(seed: int):
    """review-fuzz, seeded: lists of random size, with random crowded seconds and page sizes, served
    by a peer whose page count never ends (empty pages after its data) or that answers page 1 for
    every page number. The walk always ends within a bounded number of requests: with all records
    when the peer pages properly, with all records or PermanentPeerError when it ignores the page."""
    rng = random.Random(seed)
    size, page_size = rng.randint(0, 40), rng.randint(1, 7)
    seconds = rng.randint(1, 6)  # few distinct seconds: crowded ones, fuller than a page
    times = {str(i): T0 + rng.randrange(seconds) * S for i in range(1, size + 1)}
    ignoring = rng.random() < 0.5
    peer = (IgnoringPageNumber if ignoring else LyingPageCount)(times, page_size=page_size)
    bound = 10 + 4 * (size + 1) * (MAX_ROUNDS + 2)

    async def fetch(since: datetime | None, page: int) -> TimePage:
        assert peer.requests < bound, f"{peer.requests} requests for {size} records: the walk does not end"
        return await peer.fetch(since, page)

    seen: list[str] = []
    try:
        async for item in walk_by_time(fetch, key, None, peer="p", stream="s"):
            seen.append(item["id"])
    except PermanentPeerError as exc:
        assert ignoring, exc
        assert "answered the same records as the page before" in str(exc)
    else:
        assert set(seen) == set(times)
    assert len(seen) == len(set(seen))
