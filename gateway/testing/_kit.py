"""The plumbing the conformance kit's checks share: the author's two hooks, a fresh peer
filled through the driver, the adapter over a client the kit controls, and how a failure
names a record (kind, id, time: never its content)."""

from __future__ import annotations

import asyncio
import dataclasses
import unittest
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import httpx

from gateway._adapter import LocalApp
from gateway._model import RawStatus, Reporter
from gateway._record_values import value_problem
from gateway.testing._driver import KIT_REPORTER, PeerDriver, ServedPeer, Stream
from gateway.testing._streams import Read, Record, record_time

T = TypeVar("T")

#: Seconds between the records the kit makes, so that each has a time of its own.
STEP = 60.0


@dataclasses.dataclass
class World:
    complaints: list[str]
    follow_ups: list[str]
    follow_up_complaints: list[str]  # the complaint each of follow_ups was added to, in the same order
    statuses: bool  # the driver can change a status (the peer has a status history)


def personal_data(reporter: Reporter) -> dict[str, str]:
    """The reporter's fields that hold a value, by name."""
    return {f.name: v for f in dataclasses.fields(reporter) if (v := getattr(reporter, f.name))}


def texts_of(value: Any) -> Iterator[str]:
    """Every string inside a record (dataclass fields, tuples), for the personal-data check."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from texts_of(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from texts_of(item)


def describe(record: Record) -> str:
    """A record as a failure message may show it: kind, id and time, never content."""
    return f"{type(record).__name__} {record.ref!r} at {record_time(record).isoformat()}"


class KitBase:
    """What every check needs; :class:`gateway.testing.LocalAppConformance` is the public face."""

    #: A status the adapter may write to a complaint just filed (echo and idempotency of
    #: status writes); None skips those tests.
    status_to_write: ClassVar[RawStatus | None] = None
    #: Complaints in the world each check builds (each gets follow-ups and status changes).
    world_complaints: ClassVar[int] = 3
    #: Complaints the crowded-second check files at one instant: more than the adapter's page
    #: size in :meth:`build_adapter`, or that check proves nothing.
    crowded_complaints: ClassVar[int] = 5
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
            # Without the kit's client the watermark checks never change the world mid-walk and
            # skip as if a walk took one request: a false pass, so refuse it here.
            assert app.http._client is client, (
                f"build_adapter() built {type(app).__name__} without the client the kit handed it: pass it on "
                "(client=client), or the kit cannot change the world in the middle of a walk"
            )
            try:
                yield app
            finally:
                await app.aclose()
        finally:
            await client.aclose()

    def _populate(self, driver: PeerDriver) -> World:
        """Complaints, then follow-ups and status changes in another order than the complaints',
        so that a stream ordered by complaint is not ordered by time."""
        world = World([], [], [], statuses=True)
        for _ in range(self.world_complaints):
            world.complaints.append(driver.add_complaint(KIT_REPORTER))
            driver.advance(STEP)
        order = [*reversed(world.complaints), world.complaints[-1]]
        for i, ref in enumerate(order):
            world.follow_ups.append(driver.add_follow_up(ref))
            world.follow_up_complaints.append(ref)
            driver.advance(STEP)
            if world.statuses and i % 2 == 0:
                try:
                    driver.change_status(world.complaints[i % len(world.complaints)])
                except NotImplementedError:
                    world.statuses = False
                driver.advance(STEP)
        return world

    @staticmethod
    def _require(world: World, stream: Stream) -> None:
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
        for record in read.records:
            problem = value_problem(record)
            assert problem is None, (
                f"{read.stream}: record {record.ref!r}: {problem}; the engine would quarantine it "
                "(the model's types and ranges: gateway/_record_values.py)"
            )


def found_in(record: Record, *reads: Read) -> bool:
    """Whether a read met the record: a follow-up or status change by id, a complaint in
    this version or a newer one."""
    for read in reads:
        for other in read.records:
            if other.ref == record.ref and record_time(other) >= record_time(record):
                return True
    return False


def record_of(read: Read, ref: str) -> Record:
    found = [r for r in read.records if r.ref == ref]
    assert found, f"{read.stream}: the record {ref!r} the driver made was not read"
    return found[-1]
