"""The conformance kit for local-app adapters: the standard tests every adapter of a local
app must pass, run against the adapter and its peer (a simulator on loopback).

A test module subclasses :class:`LocalAppConformance`, says how to serve the peer and how to
build the adapter, and pytest collects the ``test_*`` methods. Each test serves a fresh
peer, fills it through the author's :class:`gateway.testing.PeerDriver`, reads it through
the adapter over real HTTP, and fails with what broke which rule. A test whose rule does not
apply (a write the adapter does not declare idempotent, a driver that cannot make a bad
record) is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import unittest
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx

from gateway._adapter import LocalApp
from gateway._model import Complaint, FollowUp, RawStatus, Reporter, StatusChange
from gateway.testing._capabilities import Write, declares_idempotent
from gateway.testing._driver import KIT_REPORTER, PeerDriver, ServedPeer, Stream
from gateway.testing._interrupt import InterruptingTransport
from gateway.testing._streams import Read, Record, read_stream, record_time

T = TypeVar("T")

#: Seconds between the records the kit makes, so that each has a time of its own.
STEP = 60.0
ECHO_TEXT = "Conformance kit: follow-up written by the gateway."


@dataclasses.dataclass
class _World:
    complaints: list[str]
    follow_ups: list[str]
    statuses: bool  # the driver can change a status (the peer has a status history)


def _personal_data(reporter: Reporter) -> dict[str, str]:
    """The reporter's fields that hold a value, by name."""
    return {f.name: v for f in dataclasses.fields(reporter) if (v := getattr(reporter, f.name))}


def _texts(value: Any) -> Iterator[str]:
    """Every string inside a record (dataclass fields, tuples), for the personal-data check."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _texts(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _texts(item)


def _describe(record: Record) -> str:
    """A record as a failure message may show it: kind, id and time, never content."""
    return f"{type(record).__name__} {record.ref!r} at {record_time(record).isoformat()}"


class LocalAppConformance:
    """Base class of a local-app adapter's conformance tests.

    Override :meth:`serve_peer` and :meth:`build_adapter`; set :attr:`status_to_write` to
    include the status writes. Every ``check_*`` method can also be called on its own
    (it raises ``AssertionError`` on a failure, ``unittest.SkipTest`` when it does not apply).
    """

    #: A status the adapter may write to a complaint just filed (echo and idempotency of
    #: status writes); None skips those tests.
    status_to_write: ClassVar[RawStatus | None] = None
    #: Complaints in the world each check builds (each gets follow-ups and status changes).
    world_complaints: ClassVar[int] = 3
    #: At most this many points of a walk at which the watermark check changes the world;
    #: each point is tried with the changes made in two orders, on a fresh peer each time.
    watermark_points: ClassVar[int] = 12
    #: How far a time the adapter reads may lie from the time the peer stamped (its precision).
    time_precision: ClassVar[timedelta] = timedelta(seconds=1)

    # --- what the author provides -----------------------------------------------------------

    def serve_peer(self) -> AbstractContextManager[ServedPeer]:
        """Start a fresh, empty peer on loopback (the adapter's simulator in a
        :class:`gateway.simulation.SimulatorServer`, with a clock that moves only when the
        driver says) and yield it with its driver; stop it on exit."""
        raise NotImplementedError(f"{type(self).__name__} must override serve_peer()")

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        """The adapter under test for the peer at ``base_url``, built with ``client`` (pass
        it as ``client=``: the kit's transport changes the world in the middle of a walk)."""
        raise NotImplementedError(f"{type(self).__name__} must override build_adapter()")

    # --- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _run(check: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run(check())

    @asynccontextmanager
    async def _adapter(
        self, peer: ServedPeer, transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncIterator[LocalApp]:
        client = httpx.AsyncClient(transport=transport or httpx.AsyncHTTPTransport())
        try:
            app = self.build_adapter(peer.base_url, client)
            assert isinstance(app, LocalApp), f"build_adapter() returned {type(app).__name__}, not a gateway.LocalApp"
            try:
                yield app
            finally:
                await app.aclose()
        finally:
            await client.aclose()

    def _populate(self, driver: PeerDriver) -> _World:
        """Complaints, then follow-ups and status changes in another order than the complaints',
        so that a stream ordered by complaint is not ordered by time."""
        world = _World([], [], statuses=True)
        for _ in range(self.world_complaints):
            world.complaints.append(driver.add_complaint(KIT_REPORTER))
            driver.advance(STEP)
        order = [*reversed(world.complaints), world.complaints[-1]]
        for i, ref in enumerate(order):
            world.follow_ups.append(driver.add_follow_up(ref))
            driver.advance(STEP)
            if world.statuses and i % 2 == 0:
                try:
                    driver.change_status(world.complaints[i % len(world.complaints)])
                except NotImplementedError:
                    world.statuses = False
                driver.advance(STEP)
        return world

    @staticmethod
    def _require(world: _World, stream: Stream) -> None:
        if stream == "status_changes" and not world.statuses:
            raise unittest.SkipTest("the driver cannot change a status (change_status raised NotImplementedError)")

    @staticmethod
    def _clean(read: Read) -> None:
        assert not read.strays, (
            f"{read.stream}: yielded {type(read.strays[0]).__name__}, neither a record of the stream nor a RecordError"
        )
        assert not read.errors, (
            f"{read.stream}: {len(read.errors)} RecordError(s) on records the driver made well-formed; "
            f"the first: {read.errors[0]}"
        )

    # --- ordering -----------------------------------------------------------------------------

    def check_ordering(self, stream: Stream) -> None:
        """Oldest first: the stream never yields a record newer than one it has not yet yielded."""

        async def check() -> Read:
            with self.serve_peer() as peer:
                world = self._populate(peer.driver)
                self._require(world, stream)
                async with self._adapter(peer) as app:
                    return await read_stream(app, stream, None)

        read = self._run(check)
        self._clean(read)
        assert read.records, f"{stream}: read nothing from a peer the driver filled"
        for before, after in zip(read.records, read.records[1:], strict=False):
            assert record_time(after) >= record_time(before), (
                f"{stream}: {_describe(after)} came after {_describe(before)}. A stream yields records oldest "
                "first: the engine's cursor moves to the newest time yielded, so an older record yielded later, "
                "or still to come when a walk stops, is behind it"
            )

    # --- watermark under change -------------------------------------------------------------------

    def _change(self, driver: PeerDriver, world: _World, stream: Stream) -> Callable[[str], object]:
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
                lost = [r for r in truth.records if not _found(r, walked, again)]
                if lost:
                    failures.append(
                        f"changed after response {after} of {responses}, complaints in "
                        f"{'their' if order == 1 else 'reverse'} order: "
                        + ", ".join(_describe(r) for r in lost[:3])
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
        missing = [r for r in everything.records if record_time(r) >= since and not _found(r, later)]
        assert not missing, (
            f"{stream}: reading since {since.isoformat()} missed "
            + ", ".join(_describe(r) for r in missing[:3])
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
            complaint = _one(complaints, ref)
            assert isinstance(complaint, Complaint)
            found.append(("complaint created_at", filed, complaint.created_at))
            if changed is not None:  # a status change is a change of the complaint on every peer
                found.append(("complaint updated_at", changed, complaint.updated_at))
            answer = _one(follow_ups, follow_up)
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

    # --- writes: echoes and idempotency ------------------------------------------------------------------

    async def _write(self, app: LocalApp, write: Write, ref: str, gateway_ref: str) -> str | None:
        if write == "follow_up":
            return await app.write_follow_up(ref, ECHO_TEXT, author=None, gateway_ref=gateway_ref)
        assert self.status_to_write is not None
        return await app.write_status(ref, self.status_to_write, note=None, gateway_ref=gateway_ref)

    def _written(
        self, write: Write, times: int, *, declared_idempotent: bool = False
    ) -> tuple[list[FollowUp | StatusChange], list[str | None], str]:
        """File a complaint, write ``write`` to it ``times`` times with one gateway_ref, and
        return the records of that complaint the adapter reads back that are such writes
        (skipped when ``declared_idempotent`` is asked and the adapter does not declare it)."""
        if write == "status" and self.status_to_write is None:
            raise unittest.SkipTest("status_to_write is not set: no status the kit may write")
        gateway_ref = f"gw-kit-{write}-1"

        async def check() -> tuple[list[FollowUp | StatusChange], list[str | None]]:
            with self.serve_peer() as peer:
                ref = peer.driver.add_complaint(KIT_REPORTER)
                peer.driver.advance(STEP)
                async with self._adapter(peer) as app:
                    if declared_idempotent and not declares_idempotent(app, write):
                        raise unittest.SkipTest(f"the adapter does not declare {write} writes idempotent")
                    ids = [await self._write(app, write, ref, gateway_ref) for _ in range(times)]
                    read = await read_stream(app, "follow_ups" if write == "follow_up" else "status_changes", None)
            self._clean(read)
            status = self.status_to_write
            mine = [
                r
                for r in read.records
                if isinstance(r, (FollowUp, StatusChange))
                and r.complaint_ref == ref
                and (
                    (isinstance(r, FollowUp) and r.content == ECHO_TEXT)
                    or (isinstance(r, StatusChange) and status is not None and r.status.code == status.code)
                )
            ]
            return mine, ids

        mine, ids = self._run(check)
        return mine, ids, gateway_ref

    def check_echo(self, write: Write) -> None:
        """A follow-up or status the adapter wrote comes back carrying its gateway_ref, so the
        engine knows it for its own and does not send it back where it came from."""
        mine, ids, gateway_ref = self._written(write, 1)
        assert mine, f"{write}: the write (id {ids[0]!r}) is not among the records read back"
        for record in mine:
            assert record.gateway_ref == gateway_ref, (
                f"{write}: {_describe(record)} written by the adapter came back with gateway_ref "
                f"{record.gateway_ref!r}, not {gateway_ref!r}: the engine would take it for the peer's own"
            )

    def check_idempotent(self, write: Write) -> None:
        """A write the adapter declares idempotent, sent twice with one gateway_ref (the engine
        resends one whose answer was lost), leaves one record at the peer."""
        mine, ids, _ = self._written(write, 2, declared_idempotent=True)
        assert len(mine) == 1, (
            f"{write}: the same write sent twice with one gateway_ref left {len(mine)} records at the peer "
            f"(ids {ids!r}), though the adapter declares it idempotent: a resent write would be doubled"
        )

    # --- bad records and personal data --------------------------------------------------------------------

    def check_bad_records(self, stream: Stream) -> None:
        """A record the adapter cannot read is yielded as a ``gateway.RecordError`` in its place
        (not raised: the records after it still come), and its reason holds no personal data."""

        async def check() -> tuple[Read, list[str], str]:
            with self.serve_peer() as peer:
                driver = peer.driver
                good = [driver.add_complaint(KIT_REPORTER)]
                driver.advance(STEP)
                try:
                    bad = driver.add_malformed_record(stream, KIT_REPORTER)
                except NotImplementedError:
                    raise unittest.SkipTest(f"the driver cannot make a malformed {stream} record") from None
                driver.advance(STEP)
                if stream == "complaints":
                    good.append(driver.add_complaint(KIT_REPORTER))
                elif stream == "follow_ups":
                    good = [driver.add_follow_up(good[0])]
                else:
                    driver.change_status(good[0])
                async with self._adapter(peer) as app:
                    try:
                        read = await read_stream(app, stream, None)
                    except Exception as exc:
                        raise AssertionError(
                            f"{stream}: raised {type(exc).__name__} on a malformed record instead of yielding a "
                            "gateway.RecordError in its place"
                        ) from exc
            return read, good, bad

        read, good, bad = self._run(check)
        assert read.errors, f"{stream}: the malformed record {bad!r} was not yielded as a gateway.RecordError"
        came = {r.ref for r in read.records} | {r.complaint_ref for r in read.records if not isinstance(r, Complaint)}
        assert set(good) <= came or stream == "status_changes", (
            f"{stream}: the records after the malformed one did not all come (missing {sorted(set(good) - came)})"
        )
        values = _personal_data(KIT_REPORTER).values()
        for error in read.errors:
            text = f"{error} {error.reason!r} {error!r}".lower()
            leaked = [v for v in values if v.lower() in text]
            assert not leaked, f"{stream}: a RecordError's text holds the reporter's personal data"

    def check_personal_data(self) -> None:
        """The reporter's identity is in ``Complaint.reporter`` only: in no title, body,
        location or other field of the complaint, and not in its ``repr``."""

        async def check() -> tuple[Complaint, str]:
            with self.serve_peer() as peer:
                ref = peer.driver.add_complaint(KIT_REPORTER)
                async with self._adapter(peer) as app:
                    read = await read_stream(app, "complaints", None)
            self._clean(read)
            complaint = _one(read, ref)
            assert isinstance(complaint, Complaint)
            return complaint, ref

        complaint, ref = self._run(check)
        values = _personal_data(KIT_REPORTER)
        assert complaint.reporter is not None, f"complaint {ref!r}: filed with a reporter, read with reporter=None"
        kept = _personal_data(complaint.reporter)
        assert kept and all(values.get(name) == value for name, value in kept.items()), (
            f"complaint {ref!r}: the Reporter read holds none of the reporter's fields, or other values in them"
        )
        outside = dataclasses.replace(complaint, reporter=None)
        for text in [*_texts(outside), repr(complaint)]:
            leaked = [name for name, value in values.items() if value.lower() in text.lower()]
            assert not leaked, (
                f"complaint {ref!r}: the reporter's {', '.join(leaked)} appear(s) outside Complaint.reporter"
            )

    # --- the tests pytest collects --------------------------------------------------------------------

    def test_complaints_oldest_first(self) -> None:
        self.check_ordering("complaints")

    def test_follow_ups_oldest_first(self) -> None:
        self.check_ordering("follow_ups")

    def test_status_changes_oldest_first(self) -> None:
        self.check_ordering("status_changes")

    def test_complaints_watermark_under_change(self) -> None:
        self.check_watermark("complaints")

    def test_follow_ups_watermark_under_change(self) -> None:
        self.check_watermark("follow_ups")

    def test_status_changes_watermark_under_change(self) -> None:
        self.check_watermark("status_changes")

    def test_complaints_since_inclusive(self) -> None:
        self.check_since_inclusive("complaints")

    def test_follow_ups_since_inclusive(self) -> None:
        self.check_since_inclusive("follow_ups")

    def test_status_changes_since_inclusive(self) -> None:
        self.check_since_inclusive("status_changes")

    def test_time_zones(self) -> None:
        self.check_time_zones()

    def test_follow_up_echo(self) -> None:
        self.check_echo("follow_up")

    def test_status_echo(self) -> None:
        self.check_echo("status")

    def test_follow_up_idempotent_as_declared(self) -> None:
        self.check_idempotent("follow_up")

    def test_status_idempotent_as_declared(self) -> None:
        self.check_idempotent("status")

    def test_complaints_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("complaints")

    def test_follow_ups_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("follow_ups")

    def test_status_changes_bad_record_is_a_record_error(self) -> None:
        self.check_bad_records("status_changes")

    def test_personal_data_kept_apart(self) -> None:
        self.check_personal_data()


def _found(record: Record, *reads: Read) -> bool:
    """Whether a read met the record: a follow-up or status change by id, a complaint in
    this version or a newer one."""
    for read in reads:
        for other in read.records:
            if other.ref == record.ref and record_time(other) >= record_time(record):
                return True
    return False


def _one(read: Read, ref: str) -> Record:
    found = [r for r in read.records if r.ref == ref]
    assert found, f"{read.stream}: the record {ref!r} the driver made was not read"
    return found[-1]
