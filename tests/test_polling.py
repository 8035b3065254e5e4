"""Adaptive polling of the hub: each complaint is read again when its policy says,
a changed one soon, a quiet one rarely, every open one within the sweep bound, a
closed one through the reopen window and then never. The store's clock is a fake
one; the hub is the simulator over loopback HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlmodel import select

from gateway._engine import Engine
from gateway._engine._hub_poll import HubPoll, PollPolicy
from gateway._store import Store
from gateway._store._hub_reads import complaints_due, poll_backlog
from gateway._store._tables import ComplaintRow, LinkRow, OutboxRow
from gateway._timezones import ensure_utc

pytestmark = [pytest.mark.anyio]

HOUR = timedelta(hours=1)
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # a Monday, 08:00 WIB
DEFAULT_POLLING = "polling:\n  min_interval_minutes: 10\n  sweep_bound_hours: 6\n  deadline_soon_hours: 0\n"


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- the policy alone -------------------------------------------------------------------------


def test_interval_follows_how_long_the_complaint_has_been_quiet():
    policy = PollPolicy(deadline_soon=timedelta(0))
    assert policy.next_read(T0, T0, None) == T0 + timedelta(minutes=10)  # just changed: min interval
    assert policy.next_read(T0, T0 - 2 * HOUR, None) == T0 + HOUR  # quiet 2 h: read in 1 h
    assert policy.next_read(T0, T0 - 30 * 24 * HOUR, None) == T0 + 6 * HOUR  # quiet a month: the sweep bound


def test_a_closed_complaint_is_read_through_the_reopen_window_then_never():
    policy = PollPolicy()
    assert policy.next_read(T0, T0 - HOUR, T0 - 13 * 24 * HOUR) == T0 + 6 * HOUR
    assert policy.next_read(T0, T0 - HOUR, T0 - 14 * 24 * HOUR) is None


def test_a_near_deadline_is_read_at_a_rate_and_once_just_after_it():
    policy = PollPolicy(deadline_soon=timedelta(hours=24), deadline_share=0.5)
    deadline = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # the end of a working day in WIB
    quiet_since = deadline - 30 * 24 * HOUR  # quiet for long: the sweep bound, away from deadlines
    far = deadline - 3 * 24 * HOUR
    assert policy.next_read(far, quiet_since, None, deadlines=[deadline]) == far + 6 * HOUR
    # Within a day of it: after half the time left, down to the min interval, never every 10 minutes.
    near = deadline - 5 * HOUR
    assert policy.next_read(near, quiet_since, None, deadlines=[deadline]) == near + 2.5 * HOUR
    close = deadline - 15 * timedelta(minutes=1)
    assert policy.next_read(close, quiet_since, None, deadlines=[deadline]) == deadline + timedelta(minutes=1)
    # A sweep that would pass the deadline stops just after it instead.
    assert policy.next_read(deadline - 26 * HOUR, quiet_since, None, deadlines=[deadline]) == deadline - 20 * HOUR
    # Past it, the next open one counts (a deadline already passed does not hold reads close).
    later = deadline + 5 * 24 * HOUR
    after = deadline + 2 * timedelta(minutes=1)
    assert policy.next_read(after, quiet_since, None, deadlines=[deadline, later]) == after + 6 * HOUR


def test_reads_near_a_deadline_are_few_over_the_last_day():
    """From a day before to just after it, about eight reads where every 10 minutes took 144;
    the last one lands after the deadline, also with jitter."""
    policy, rng = PollPolicy(), random.Random(3)
    deadline = T0 + 24 * HOUR
    at, reads = T0, []
    while at <= deadline:
        at = policy.next_read(at, T0 - 30 * 24 * HOUR, None, deadlines=[deadline], rng=rng)
        reads.append(at)
    assert 6 <= len(reads) <= 10, reads
    assert deadline < reads[-1] <= deadline + timedelta(minutes=1)
    assert all(b - a >= timedelta(minutes=1) for a, b in pairwise(reads))


def test_jitter_only_shortens_intervals():
    policy, rng = PollPolicy(), random.Random(7)
    reads = [policy.next_read(T0, T0 - 30 * 24 * HOUR, None, rng=rng) for _ in range(50)]
    assert all(T0 + 5.4 * HOUR <= r <= T0 + 6 * HOUR for r in reads)
    assert len(set(reads)) > 1


# -- the engine against the simulated hub -----------------------------------------------------


async def _linked_world(world, tmp_path: Path, store_url: str, clock: FakeClock, *, complaints: int = 4):
    """A store with ``complaints`` complaints created at the hub, on the fake clock."""
    config = world.config(tmp_path / "config", store_url, polling=DEFAULT_POLLING)
    store = Store(store_url, clock=clock)
    world.local.officers_active = False
    world.hub.quiesce()
    for _ in range(complaints):
        world.local.submit_complaint()
    engine = Engine(config, store, seed=3)
    await engine.intake("lapor-hendi-semarang")
    await engine.deliver("sp4n")
    return engine, store, len(world.hub.complaints())


def _next_reads(store: Store) -> dict[int, datetime | None]:
    with store.session() as s:
        return {r.id: ensure_utc(r.next_poll_at) for r in s.exec(select(ComplaintRow)).all()}


async def test_a_read_complaint_waits_its_interval_and_a_quiet_one_waits_longer(world, tmp_path, store_url):
    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock)
    async with engine:
        assert (await engine.poll_hub("sp4n")).polled == n  # never read: due at once
        assert (await engine.poll_hub("sp4n")).polled == 0  # just read: not due
        # The first read found the hub's first status, a change: read again within 10 minutes.
        assert all(T0 + timedelta(minutes=9) <= r <= T0 + timedelta(minutes=10) for r in _next_reads(store).values())
        clock.now = T0 + 3 * 24 * HOUR  # three quiet days
        assert (await engine.poll_hub("sp4n")).polled == n
        assert all(clock.now + 5.4 * HOUR <= r <= clock.now + 6 * HOUR for r in _next_reads(store).values())
        clock.now += 5 * HOUR
        assert (await engine.poll_hub("sp4n")).polled == 0
        assert poll_backlog(store, "sp4n") == (0, None)
    store.close()


async def test_a_change_on_a_quiet_complaint_is_found_within_the_sweep_bound(world, tmp_path, store_url):
    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock)
    async with engine:
        await engine.poll_hub("sp4n")
        clock.now = T0 + 10 * 24 * HOUR
        await engine.poll_hub("sp4n")  # quiet for ten days: next read in at most 6 h
        hub_complaint = world.hub.complaints()[0]
        with world.hub.lock:
            sim = world.hub.world.get(hub_complaint["id"])
            world.hub.world.add_follow_up(
                sim,
                institution_from="100234",
                institution_to=None,
                content="Sudah kami tinjau ke lokasi.",
                now=world.clock.now(),
                source="officer",
            )
        clock.now += 6 * HOUR
        result = await engine.poll_hub("sp4n")
        assert result.polled == n and result.follow_ups == 1
        with store.session() as s:
            owed = s.exec(select(OutboxRow).where(OutboxRow.kind == "local_follow_up")).all()
        assert len(owed) == 1
        # It changed: read again soon, while the others keep their quiet pace.
        reads = _next_reads(store)
        assert reads[owed[0].complaint_id] <= clock.now + timedelta(minutes=10)
        assert sorted(reads.values())[1] >= clock.now + 5.4 * HOUR
    store.close()


async def test_a_closed_complaint_is_read_until_the_reopen_window_ends(world, tmp_path, store_url):
    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock, complaints=2)
    async with engine:
        await engine.poll_hub("sp4n")
        closed_id = world.hub.complaints()[0]["id"]
        with world.hub.lock:
            sim = world.hub.world.get(closed_id)
            world.hub.world.reject(sim, world.clock.now(), None)
        clock.now += HOUR
        await engine.poll_hub("sp4n")
        with store.session() as s:
            closed = s.exec(select(ComplaintRow).where(ComplaintRow.closed_at.is_not(None))).one()
        assert ensure_utc(closed.next_poll_at) == clock.now + 6 * HOUR  # in the window: once per sweep
        clock.now += 15 * 24 * HOUR
        assert (await engine.poll_hub("sp4n")).polled == n
        clock.now += 7 * HOUR
        assert (await engine.poll_hub("sp4n")).polled == n - 1  # the closed one is no longer read
        assert _next_reads(store)[closed.id] is None
        assert closed.id not in {d.complaint_id for d in complaints_due(store, "sp4n", ["lapor-hendi-semarang"], 10)}
    store.close()


async def test_a_run_reads_at_most_its_batch_most_overdue_first(world, tmp_path, store_url):
    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock, complaints=5)
    async with engine:
        await engine.poll_hub("sp4n")
        with store.session() as s:  # make complaint 3 the most overdue
            s.get(ComplaintRow, 3).next_poll_at = T0 - HOUR
        clock.now = T0 + HOUR
        hub = engine.adapters["sp4n"]
        routes = dict(engine.routes)
        due = complaints_due(store, "sp4n", list(routes), 100)
        assert due[0].complaint_id == 3 and len(due) == n
        result = await HubPoll(store, hub, routes, batch=2).run()
        assert result.polled == 2
        assert poll_backlog(store, "sp4n")[0] == n - 2
    store.close()


async def test_a_follow_up_sent_to_the_hub_brings_its_complaint_read_forward(world, tmp_path, store_url):
    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock, complaints=1)
    async with engine:
        await engine.poll_hub("sp4n")
        clock.now = T0 + 10 * 24 * HOUR
        await engine.poll_hub("sp4n")
        assert _next_reads(store)[1] >= clock.now + 5.4 * HOUR
        with store.session() as s:
            local_id = int(
                s.exec(
                    select(LinkRow.external_ref).where(
                        LinkRow.complaint_id == 1, LinkRow.instance == "lapor-hendi-semarang"
                    )
                ).one()
            )
        world.local.answer(local_id, "Petugas kelurahan akan datang besok.")
        await engine.intake("lapor-hendi-semarang")
        assert (await engine.deliver("sp4n")).delivered == 1
        assert _next_reads(store)[1] == clock.now + timedelta(minutes=10)
    store.close()


async def test_a_poll_that_falls_behind_the_sweep_bound_says_so(world, tmp_path, store_url):
    from structlog.testing import capture_logs

    clock = FakeClock(T0)
    engine, store, n = await _linked_world(world, tmp_path, store_url, clock, complaints=3)
    async with engine:
        await engine.poll_hub("sp4n")
        clock.now = T0 + 2 * 24 * HOUR  # everything is a day and more overdue
        routes = dict(engine.routes)
        with capture_logs() as logs:
            await HubPoll(store, engine.adapters["sp4n"], routes, batch=2).run()
        behind = [entry for entry in logs if entry["event"].startswith("hub reads are behind the sweep bound")]
        assert behind and behind[0]["due"] == n and behind[0]["behind_minutes"] > 6 * 60
        with capture_logs() as logs:
            await HubPoll(store, engine.adapters["sp4n"], routes, batch=100).run()
        assert not [e for e in logs if e["event"].startswith("hub reads are behind")]
    store.close()
