"""The conformance kit's checks of the three streams: order, watermark under change,
inclusive ``since``, time zones."""

from __future__ import annotations

import functools
import sys
import unittest
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from gateway._errors import PeerError
from gateway._model import Complaint, FollowUp, StatusChange
from gateway.testing._driver import KIT_REPORTER, PeerDriver, Stream
from gateway.testing._interrupt import FailingTransport, InterruptingTransport
from gateway.testing._kit import STEP, KitBase, World, describe, found_in, record_of
from gateway.testing._streams import Read, Record, open_stream, read_stream, record_time


class StreamChecks(KitBase):
    """Order, watermark, inclusive since and time zones of the three streams."""

    # --- ordering -----------------------------------------------------------------------------

    def check_ordering(self, stream: Stream) -> None:
        """Oldest first: the stream never yields a record newer than one it has not yet yielded
        and a walk from that newer one's time would not read again. A list kept per complaint
        (``walk_children``) yields a complaint's older follow-ups after a newer one of the
        complaint before it: that is allowed, since the next walk from the cursor lists the
        complaint again (stream rule 2), and the check reads again from that cursor to see it."""

        async def check() -> tuple[Read, list[tuple[Record, datetime, bool]]]:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                self._require(world, stream)
                async with self._adapter(peer) as app:
                    read = await read_stream(app, stream, None)
                    self._clean(read)
                    behind: list[tuple[Record, datetime]] = []
                    cursor: datetime | None = None
                    for record in read.records:
                        if cursor is not None and record_time(record) < cursor:
                            behind.append((record, cursor))
                        cursor = record_time(record) if cursor is None else max(cursor, record_time(record))
                    again: dict[datetime, Read] = {}
                    for _, at in behind:
                        if at not in again:
                            again[at] = await read_stream(app, stream, at)
                    return read, [(record, at, found_in(record, again[at])) for record, at in behind]

        read, behind = self._run(check)
        assert read.records, f"{stream}: read nothing from a peer the driver filled"
        for record, cursor, read_again in behind:
            assert read_again, (
                f"{stream}: {describe(record)} came after a record at {cursor.isoformat()}, and a walk from that "
                "time does not read it again. A stream yields records oldest first: the engine's cursor moves to "
                "the newest time yielded, so an older record yielded later, or still to come when a walk stops, "
                "is behind it"
            )

    # --- completeness ---------------------------------------------------------------------------

    def check_complete(self, stream: Stream) -> None:
        """Nothing the driver made is missing: a walk from ``since=None`` yields every complaint
        and follow-up by the id the driver returned, and every status change the driver made
        (counted per complaint against a read before the changes: an app may list the status a
        complaint was filed in, or not). The other checks compare the adapter's reads with each
        other, so an adapter that always leaves the same record out passes them."""
        if stream == "status_changes":
            self._check_status_changes_complete()
            return

        async def check() -> tuple[World, Read]:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                async with self._adapter(peer) as app:
                    return world, await read_stream(app, stream, None)

        world, read = self._run(check)
        self._clean(read)
        made = world.complaints if stream == "complaints" else world.follow_ups
        refs = {r.ref for r in read.records}
        missing = [ref for ref in made if ref not in refs]
        assert not missing, (
            f"{stream}: the record(s) {', '.join(repr(m) for m in missing[:3])} the driver made were not read "
            f"(of {len(made)} made). A stream yields every record of the peer, none left out"
        )
        if stream == "follow_ups":
            owner = dict(zip(world.follow_ups, world.follow_up_complaints, strict=True))
            astray = [
                r
                for r in read.records
                if isinstance(r, FollowUp) and owner.get(r.ref, r.complaint_ref) != r.complaint_ref
            ]
            assert not astray, (
                f"follow_ups: {describe(astray[0])} came with complaint_ref {astray[0].complaint_ref!r}, but the "
                f"driver added it to complaint {owner[astray[0].ref]!r}: the engine would attach it to another one"
            )

    def _check_status_changes_complete(self) -> None:
        async def check() -> tuple[list[str], Read, Read]:
            with self.serve_peer() as peer:
                driver = peer.driver
                probe = driver.add_complaint(KIT_REPORTER)  # not counted: whether the peer has status changes
                driver.advance(STEP)
                try:
                    driver.change_status(probe)
                except NotImplementedError as exc:
                    raise unittest.SkipTest(
                        "the driver cannot change a status (change_status raised NotImplementedError)"
                    ) from exc
                driver.advance(STEP)
                complaints = []
                for _ in range(self.world_complaints):
                    complaints.append(driver.add_complaint(KIT_REPORTER))
                    driver.advance(STEP)
                async with self._adapter(peer) as app:
                    before = await read_stream(app, "status_changes", None)
                for i, ref in enumerate(complaints):
                    for _ in range(1 + i % 2):  # one change on some complaints, two on others
                        driver.change_status(ref)
                        driver.advance(STEP)
                async with self._adapter(peer) as app:
                    return complaints, before, await read_stream(app, "status_changes", None)

        complaints, before, after = self._run(check)
        self._clean(before)
        self._clean(after)
        counted_before = Counter(r.complaint_ref for r in before.records if isinstance(r, StatusChange))
        counted_after = Counter(r.complaint_ref for r in after.records if isinstance(r, StatusChange))
        short = [
            f"complaint {ref!r}: {counted_after[ref] - counted_before[ref]} read of {1 + i % 2} made"
            for i, ref in enumerate(complaints)
            if counted_after[ref] - counted_before[ref] < 1 + i % 2
        ]
        assert not short, (
            "status_changes: fewer status changes read than the driver made ("
            + "; ".join(short[:3])
            + "). Every status change the app lists must come, none left out"
        )

    def check_crowded_second(self) -> None:
        """More complaints than a page filed at one instant (a bulk import) all come: a walk
        that moves on past the newest time read (``since`` plus a second, or an exclusive
        filter, to get out of a full page of one time) loses the rest of that time."""

        async def check() -> tuple[list[str], Read]:
            with self.serve_peer() as peer:
                driver = peer.driver
                driver.add_complaint(KIT_REPORTER)
                driver.advance(STEP)
                burst = [driver.add_complaint(KIT_REPORTER) for _ in range(self.crowded_complaints)]
                driver.advance(STEP)
                driver.add_complaint(KIT_REPORTER)
                async with self._adapter(peer) as app:
                    return burst, await read_stream(app, "complaints", None)

        burst, read = self._run(check)
        self._clean(read)
        refs = {r.ref for r in read.records}
        missing = [ref for ref in burst if ref not in refs]
        assert not missing, (
            f"complaints: {len(missing)} of {len(burst)} complaints filed at one instant were not read (e.g. "
            f"{missing[0]!r}). More records than a page may share one time; read such a list with "
            "gateway.walk_by_time, which pages through that time by number"
        )

    def check_status_agrees(self) -> None:
        """Each complaint's status is the status of its newest status change: the engine maps
        both through the one ``statuses:`` table, and passes on whichever it reads, so a
        complaint read with another status (its first, its previous, a label for a code)
        carries a wrong status on without any error."""

        async def check() -> tuple[Read, Read]:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                self._require(world, "status_changes")
                async with self._adapter(peer) as app:
                    return await read_stream(app, "complaints", None), await read_stream(app, "status_changes", None)

        complaints, changes = self._run(check)
        self._clean(complaints)
        self._clean(changes)
        newest: dict[str, StatusChange] = {}
        for change in changes.records:
            if isinstance(change, StatusChange):
                before = newest.get(change.complaint_ref)
                if before is None or change.changed_at >= before.changed_at:
                    newest[change.complaint_ref] = change
        latest: dict[str, Complaint] = {}
        for complaint in complaints.records:
            if isinstance(complaint, Complaint):
                latest[complaint.ref] = complaint  # a newer version of it comes later in the stream
        for ref, complaint in latest.items():
            last = newest.get(ref)
            assert last is None or last.status.code == complaint.status.code, (
                f"complaint {ref!r}: read with status {complaint.status.code!r}, but its newest status change "
                f"({describe(last)}) is to {last.status.code!r}: the complaint's status must be read from the "
                "same field and in the same words as its status changes"
            )

    # --- a failing peer -------------------------------------------------------------------------

    def check_failure_raises(self, stream: Stream) -> None:
        """A walk whose peer goes down part way (every call from the k-th on answered HTTP
        503) raises a ``gateway.PeerError`` out of the stream, at the first call, in the
        middle and at the last: never ends as if the list were over."""

        async def walk(after: int) -> tuple[int, int, PeerError | None]:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                self._require(world, stream)
                transport = FailingTransport(httpx.AsyncHTTPTransport(), after=after)
                yielded = 0
                async with self._adapter(peer, transport) as app:
                    try:
                        async for _ in open_stream(app, stream, None):
                            yielded += 1
                    except PeerError as exc:
                        return transport.requests, yielded, exc
                return transport.requests, yielded, None

        calls, _, _ = self._run(lambda: walk(sys.maxsize))
        for after in sorted({0, calls // 2, max(0, calls - 1)}):
            _, yielded, error = self._run(functools.partial(walk, after))
            assert error is not None, (
                f"{stream}: the peer answered HTTP 503 to every call from call {after + 1} of {calls} on, and the "
                f"walk ended without raising (after {yielded} items). A failed call must raise a PeerError "
                "(self.http does it; let it out): a walk that ends quietly reads to the engine as a list read "
                "to its end, and what the failed call would have brought falls behind the cursor"
            )

    # --- watermark under change -------------------------------------------------------------------

    def _change(self, driver: PeerDriver, world: World, stream: Stream) -> Callable[[str], object]:
        if stream == "follow_ups" or (stream == "complaints" and not world.statuses):
            return driver.add_follow_up
        return driver.change_status

    def check_watermark(self, stream: Stream) -> None:
        """Records that change during a walk do not fall behind the cursor.

        A walk is interrupted after its k-th response: the driver changes every complaint of
        the world, one second apart, in the complaints' order or the reverse (some the walk
        has passed, some still to come). Then reading again from the cursor the engine would
        keep (the newest time the walk yielded; ``since`` is inclusive) must find every
        record that is at the peer: whatever neither read finds is lost for good."""

        async def walk(after: int, order: int) -> tuple[Read, Read, Read, int]:
            with self.serve_peer() as peer:
                driver = peer.driver
                world = self._populate(driver)
                self._require(world, stream)
                change = self._change(driver, world, stream)

                def disturb() -> None:
                    for ref in world.complaints[::order]:
                        change(ref)
                        driver.advance(1)
                    if stream == "complaints":
                        driver.add_complaint(KIT_REPORTER)

                transport = InterruptingTransport(httpx.AsyncHTTPTransport(), after=after, action=disturb)
                async with self._adapter(peer, transport) as app:
                    walked = await read_stream(app, stream, None)
                async with self._adapter(peer) as app:
                    again = await read_stream(app, stream, walked.cursor)
                    truth = await read_stream(app, stream, None)
                return walked, again, truth, transport.responses

        _, _, _, responses = self._run(lambda: walk(0, 1))
        if responses < 2:
            raise unittest.SkipTest(f"{stream}: a walk of the kit's world takes one request; nothing to change between")
        last = responses - 1  # after the last response the walk is over: nothing to interrupt
        count = min(self.watermark_points, last)
        points = sorted({1 + round(i * (last - 1) / max(1, count - 1)) for i in range(count)})
        failures = []
        for order in (1, -1):
            for after in points:
                walked, again, truth, _ = self._run(functools.partial(walk, after, order))
                for read in (walked, again, truth):
                    self._clean(read)
                lost = [r for r in truth.records if not found_in(r, walked, again)]
                if lost:
                    failures.append(
                        f"changed after response {after} of {responses}, complaints in "
                        f"{'their' if order == 1 else 'reverse'} order: "
                        + ", ".join(describe(r) for r in lost[:3])
                        + f" neither yielded by the walk nor read again from its cursor "
                        f"{walked.cursor.isoformat() if walked.cursor else None}"
                    )
        assert not failures, (
            f"{stream}: records fell behind the cursor in {len(failures)} of {2 * len(points)} walks, e.g. "
            f"{failures[0]}. A stream must never yield a record newer than one it has not yet yielded, "
            "also while records change during the walk (for per-complaint lists: read the newest "
            "time of every list before moving on, or walk a list ordered by time)"
        )

    # --- inclusive since ------------------------------------------------------------------------

    def check_since_inclusive(self, stream: Stream) -> None:
        """A walk from ``since`` returns every record at or after it, one at exactly ``since``
        included (a ``since`` sent in another zone than the one times are read in misses
        records)."""

        async def check() -> tuple[Read, Read]:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                self._require(world, stream)
                async with self._adapter(peer) as app:
                    everything = await read_stream(app, stream, None)
                    self._clean(everything)
                    assert everything.records, f"{stream}: read nothing from a peer the driver filled"
                    middle = sorted(everything.records, key=record_time)[len(everything.records) // 2]
                    return everything, await read_stream(app, stream, record_time(middle))

        everything, later = self._run(check)
        self._clean(later)
        since = later.since
        assert since is not None
        missing = [r for r in everything.records if record_time(r) >= since and not found_in(r, later)]
        assert not missing, (
            f"{stream}: reading since {since.isoformat()} missed "
            + ", ".join(describe(r) for r in missing[:3])
            + (" (exactly at since: the filter must be inclusive)" if record_time(missing[0]) == since else "")
        )

    # --- time zones -----------------------------------------------------------------------------

    def check_time_zones(self) -> None:
        """Every time comes back timezone-aware in UTC and equal to the moment the peer
        stamped (which it shows in its own zone, the instance's ``timezone``)."""

        async def check() -> list[tuple[str, datetime, datetime | None]]:
            with self.serve_peer() as peer:
                driver = peer.driver
                filed = driver.now()
                ref = driver.add_complaint(KIT_REPORTER)
                driver.advance(STEP)
                answered = driver.now()
                follow_up = driver.add_follow_up(ref)
                driver.advance(STEP)
                changed: datetime | None = driver.now()
                try:
                    driver.change_status(ref)
                except NotImplementedError:
                    changed = None
                async with self._adapter(peer) as app:
                    complaints = await read_stream(app, "complaints", None)
                    follow_ups = await read_stream(app, "follow_ups", None)
                    statuses = await read_stream(app, "status_changes", None) if changed else None
            found: list[tuple[str, datetime, datetime | None]] = []
            complaint = record_of(complaints, ref)
            assert isinstance(complaint, Complaint)
            found.append(("complaint created_at", filed, complaint.created_at))
            if changed is not None:  # a status change is a change of the complaint on every peer
                found.append(("complaint updated_at", changed, complaint.updated_at))
            answer = record_of(follow_ups, follow_up)
            assert isinstance(answer, FollowUp)
            found.append(("follow-up created_at", answered, answer.created_at))
            if statuses is not None and changed is not None:
                mine = [s for s in statuses.records if isinstance(s, StatusChange) and s.complaint_ref == ref]
                assert mine, "status_changes: no status change of the complaint the driver changed"
                found.append(("status change changed_at", changed, max(s.changed_at for s in mine)))
            return found

        for what, stamped, read in self._run(check):
            assert read is not None and read.tzinfo is not None and read.utcoffset() == timedelta(0), (
                f"{what}: {read!r} is not a timezone-aware UTC time"
            )
            assert abs(read - stamped) <= self.time_precision, (
                f"{what}: read {read.isoformat()} for a record the peer stamped at {stamped.isoformat()} "
                f"({(read - stamped).total_seconds() / 3600:+.2f} h): is the peer's time read in the "
                "instance's timezone?"
            )
