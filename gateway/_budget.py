"""A request budget per peer: how fast and how many at once the gateway may call it.

One :class:`RequestBudget` belongs to one adapter instance (so to one peer) and
is shared by every job that calls that peer. Each attempt of an HTTP call takes a
slot (``async with budget.slot():``) for the duration of its send: the slot waits
for a free place among ``concurrency``, then for its turn on an evenly spaced
schedule of ``requests_per_second`` (a token bucket of ``burst`` tokens).

When the peer answers 429 the budget adapts down. A single 429 cannot tell how
fast the peer lets requests through (what it accepted until then includes its
burst), so the first 429 starts a measurement: the peer's bucket is empty then,
and what it accepts from there on is its sustained rate. Meanwhile the budget
sends at most 1.25 times what the peer accepted in the second before, evenly
spaced (a burst would arrive in another order than it was sent; a crawl would
never meet the limit again). The next 429 of a request sent at least
``measure_seconds`` later ends the measurement, once the answers of the
requests sent before it are in (a 429 comes back sooner than an answer that
went through): the rate becomes 95% of the rate of accepted answers in between
(with fewer than 3 of them, half the rate at which requests went out), never
below ``min_requests_per_second``. Every 429 pushes the next send to the
``Retry-After`` the peer asked for. A 429 of a request sent before the last
adaptation is stale (it was in flight at the old rate) and changes nothing.
``recover_after_seconds`` after the last adaptation the rate creeps back up by
10% of the configured rate per period, never above it (with no configured rate,
by 10% of itself). A stray 429 that no second one follows within 10 s of
sending changes nothing.

The daemon runs in one event loop. Every change of state happens between two
awaits, so it is atomic without a lock; the budget binds to no loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("gateway.budget")

_NEVER = float("-inf")


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """What a peer allows: ``requests_per_second`` (``None``: no rate limit until the
    peer answers 429), ``concurrency`` requests at once, ``burst`` requests back to
    back after a pause (1: evenly spaced)."""

    requests_per_second: float | None = None
    concurrency: int = 8
    burst: int = 1
    min_requests_per_second: float = 0.2
    recover_after_seconds: float = 300.0
    measure_seconds: float = 1.0

    def __post_init__(self) -> None:
        rps = self.requests_per_second
        if rps is not None and not (rps > 0 and math.isfinite(rps)):
            raise ValueError("requests_per_second must be above 0 (or None for no limit)")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if not self.min_requests_per_second > 0:
            raise ValueError("min_requests_per_second must be above 0")
        if not self.recover_after_seconds > 0:
            raise ValueError("recover_after_seconds must be above 0")
        if not self.measure_seconds > 0:
            raise ValueError("measure_seconds must be above 0")


class _Slots:
    """A first-come first-served semaphore that binds to no event loop."""

    def __init__(self, size: int):
        self.size = size
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_use < self.size and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the slot, then cancelled: pass it on
            else:
                with suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next waiter
                return
        self.in_use -= 1


class RequestBudget:
    """The request budget of one peer (see the module's text)."""

    SAFETY = 0.95  # share of the measured accepted rate that is used
    RECOVER_STEP = 0.1  # share of the configured rate regained per quiet period
    MIN_SAMPLES = 3  # accepted answers needed to trust a measurement
    PROBE_FACTOR = 1.25  # while measuring, send at most this many times what the peer accepted just before
    MAX_EPISODE_SECONDS = 10.0  # a measurement without a 429 this long after a pause is dropped

    def __init__(
        self,
        peer: str,
        policy: BudgetPolicy = BudgetPolicy(),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ):
        self.peer = peer
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self._slots = _Slots(policy.concurrency)
        self._share = 1.0  # of the configured rate: several daemons of one store share it
        self._rate: float | None = policy.requests_per_second  # in force (None: no limit)
        self._tat = _NEVER  # theoretical time of the next send (GCRA)
        self._blocked_until = _NEVER  # Retry-After: nothing is sent before this
        self._epoch = 0  # changes when the schedule does: waiters take a new turn
        self._last_sent = _NEVER
        self._sent: deque[float] = deque()  # send times of recent requests
        self._accepted: deque[float] = deque()  # send times of recent requests answered other than 429
        self._outstanding: Counter[float] = Counter()  # send times of the requests awaiting their answer
        # The measurement started by a 429: from the send time of that request, sending
        # at most at _probe_rate; when closed, (start, end, closed at) until its answers are in.
        self._episode_from: float | None = None
        self._probe_rate: float | None = None
        self._pending: tuple[float, float, float] | None = None
        self._last_adapted_at: float | None = None
        self._recover_mark = _NEVER  # the last adaptation (or recovery step)
        self.requests = 0
        self.throttled_answers = 0
        self.stale_throttled_answers = 0
        self.adaptations = 0
        self.recoveries = 0

    # -- the state -------------------------------------------------------------------------

    @property
    def current_rps(self) -> float | None:
        """The rate in force (``None``: no limit), not counting a measurement under way."""
        self._recover(self.clock())
        return self._rate

    @property
    def last_adapted_at(self) -> float | None:
        """The clock's time of the last adaptation down (``None``: none yet)."""
        return self._last_adapted_at

    def snapshot(self) -> dict[str, Any]:
        """Counts and rates for operators and benchmarks (no personal data, no URL)."""
        return {
            "peer": self.peer,
            "configured_rps": self.policy.requests_per_second,
            "share": self._share,
            "current_rps": self.current_rps,
            "concurrency": self.policy.concurrency,
            "in_use": self._slots.in_use,
            "requests": self.requests,
            "throttled": self.throttled_answers,
            "stale_throttled": self.stale_throttled_answers,
            "adaptations": self.adaptations,
            "recoveries": self.recoveries,
            "last_adapted_at": self._last_adapted_at,
            "measuring": self._episode_from is not None or self._pending is not None,
        }

    def _configured(self) -> float | None:
        """This process's part of the configured rate."""
        rps = self.policy.requests_per_second
        return None if rps is None else rps * self._share

    @property
    def share(self) -> float:
        return self._share

    def set_share(self, share: float) -> None:
        """Take ``share`` (0 to 1) of the configured rate: with N live daemons on one store,
        each takes 1/N, so that together they keep the peer's budget. A rate lowered by 429s
        stays as low; one above the new part comes down to it; a daemon that leaves gives its
        part back to the others on their next heartbeat (up to the rate they measured)."""
        if not 0 < share <= 1:
            raise ValueError("share must be above 0 and at most 1")
        if share == self._share:
            return
        old_configured, self._share = self._configured(), share
        new_configured = self._configured()
        if new_configured is None or self._rate is None:
            return
        if self._rate > new_configured or (self._last_adapted_at is None and self._rate == old_configured):
            self._rate = new_configured
            self._reschedule()

    def _schedule_rate(self) -> float | None:
        rates = [r for r in (self._rate, self._probe_rate) if r is not None]
        return min(rates) if rates else None

    # -- taking a slot ---------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for a place and a turn; yields the send time (the clock's) to pass to
        :meth:`throttled` or :meth:`accepted`. Hold it only while the request is sent."""
        await self._slots.acquire()
        try:
            sent_at = await self._wait_turn()
            self.requests += 1
            self._last_sent = max(self._last_sent, sent_at)
            self._sent.append(sent_at)
            self._prune(self._sent, sent_at)
            self._outstanding[sent_at] += 1
            try:
                yield sent_at
            finally:
                self._outstanding[sent_at] -= 1
                if self._outstanding[sent_at] <= 0:
                    del self._outstanding[sent_at]
                self._maybe_finish()
        finally:
            self._slots.release()

    async def _wait_turn(self) -> float:
        while True:
            now = self.clock()
            self._recover(now)
            self._expire(now)
            epoch, tat_before = self._epoch, self._tat
            at = self._reserve(now)
            if at <= now:
                return now
            tat_after = self._tat
            try:
                await self.sleep(at - now)
            except BaseException:
                if self._epoch == epoch and self._tat == tat_after:
                    self._tat = tat_before  # the last turn given out was this one: give it back
                raise
            if self._epoch == epoch and self.clock() >= self._blocked_until:
                return self.clock()
            # The schedule changed while waiting (the peer said 429): take a new turn.

    def _reserve(self, now: float) -> float:
        at = max(now, self._blocked_until)
        rate = self._schedule_rate()
        if rate is not None:
            interval = 1.0 / rate
            at = max(at, self._tat - (self.policy.burst - 1) * interval)
            self._tat = max(self._tat, at) + interval
        return at

    def _reschedule(self) -> None:
        """Turns given out before are void: the waiters take new ones in their order."""
        self._epoch += 1
        rate = self._schedule_rate()
        self._tat = self._last_sent + 1.0 / rate if rate is not None else _NEVER

    # -- answers ---------------------------------------------------------------------------

    def accepted(self, sent_at: float) -> None:
        """The request sent at ``sent_at`` was answered, other than with 429."""
        self._accepted.append(sent_at)
        self._prune(self._accepted, self.clock())

    def throttled(self, retry_after: float | None, sent_at: float) -> None:
        """The request sent at ``sent_at`` was answered 429 (``retry_after``: seconds the
        peer asked to wait, if it said)."""
        now = self.clock()
        self.throttled_answers += 1
        if self._last_adapted_at is not None and sent_at < self._last_adapted_at:
            self.stale_throttled_answers += 1  # in flight at the old rate: already accounted for
            return
        self._recover(now)
        self._expire(now)
        if retry_after is not None and retry_after > 0 and now + retry_after > self._blocked_until:
            self._blocked_until = now + retry_after
            self._reschedule()
        if self._pending is not None:
            pending_start, end, closed_at = self._pending
            if end < sent_at <= closed_at:  # in flight when the measurement was closed: the bucket was empty then too
                self._pending = (pending_start, sent_at, closed_at)
            return
        start = self._episode_from
        if start is None:
            self._start_episode(now)
            return
        span = sent_at - start
        if span < self.policy.measure_seconds:
            return
        answered_or_not = self._count(self._accepted, start, sent_at) + sum(
            n for t, n in self._outstanding.items() if start <= t < sent_at
        )
        if answered_or_not < self.MIN_SAMPLES and span < self.MAX_EPISODE_SECONDS / 2:
            return  # too few to measure yet
        # Close the measurement once the requests sent before this one are answered: a
        # 429 comes back faster than the answers of requests that went through.
        self._pending = (start, sent_at, now)
        self._maybe_finish()

    def _start_episode(self, now: float) -> None:
        """The peer's bucket is empty now: what it accepts from here is its sustained rate.
        Requests in flight are left out of the measurement (the peer may take them in
        another order). Until it ends, send at most PROBE_FACTOR times what the peer accepted
        in the last second, evenly spaced, so that the measurement is neither a burst nor a crawl."""
        self._episode_from = now
        recent = self._count(self._accepted, now - 1.0, now)
        probe = max(self.policy.min_requests_per_second, self.PROBE_FACTOR * recent) if recent else None
        if probe is not None and (self._rate is None or probe < self._rate):
            self._probe_rate = probe
            self._reschedule()

    def _end_episode(self) -> None:
        self._episode_from = None
        if self._probe_rate is not None:
            self._probe_rate = None
            self._reschedule()

    def _expire(self, now: float) -> None:
        if (
            self._episode_from is not None
            and self._pending is None
            and now - max(self._episode_from, self._blocked_until) > self.MAX_EPISODE_SECONDS
        ):
            self._end_episode()  # no second 429: the demand fell, or the measurement rate is accepted

    def _maybe_finish(self) -> None:
        if self._pending is None:
            return
        start, end, _ = self._pending
        if any(t < end for t in self._outstanding):
            return
        self._pending = None
        self._adapt(start, end)

    def _adapt(self, start: float, end: float) -> None:
        span = end - start
        sent = self._count(self._sent, start, end)
        accepted = self._count(self._accepted, start, end)
        if accepted >= self.MIN_SAMPLES:
            # Half a token: what the peer's bucket held, on average, when it refused the
            # last request (a fraction of a token is not enough for a request).
            measured = (accepted + 0.5) / span
            new = self.SAFETY * measured
        else:  # too few to measure: half the rate at which requests went out
            measured = None
            new = 0.5 * sent / span
            if self._rate is not None:
                new = min(new, 0.5 * self._rate)
        if self._rate is not None:
            new = min(new, self._rate)
        new = max(self.policy.min_requests_per_second, new)
        old, self._rate = self._rate, new
        now = self.clock()
        self.adaptations += 1
        self._last_adapted_at = now
        self._recover_mark = now
        self._probe_rate = None
        self._episode_from = None
        self._reschedule()
        log.warning(
            "peer throttled; request budget lowered",
            peer=self.peer,
            old_rps=None if old is None else round(old, 3),
            new_rps=round(new, 3),
            accepted_rps=None if measured is None else round(measured, 3),
            window_seconds=round(span, 3),
        )

    @staticmethod
    def _count(times: deque[float], start: float, end: float) -> int:
        return sum(1 for t in times if start <= t <= end)

    def _recover(self, now: float) -> None:
        configured = self._configured()
        if self._last_adapted_at is None or self._rate is None:
            return
        if configured is not None and self._rate >= configured:
            return
        period = self.policy.recover_after_seconds
        periods = int((now - self._recover_mark) // period)
        if periods <= 0:
            return
        self._recover_mark += periods * period
        old = self._rate
        if configured is not None:
            self._rate = min(configured, old + periods * self.RECOVER_STEP * configured)
        else:  # no configured rate to return to: grow by 10% a period
            self._rate = old * (1 + self.RECOVER_STEP) ** min(periods, 200)
        self.recoveries += periods
        log.info("request budget raised", peer=self.peer, old_rps=round(old, 3), new_rps=round(self._rate, 3))

    def _prune(self, times: deque[float], now: float) -> None:
        horizon = now - self.MAX_EPISODE_SECONDS - 2.0
        while times and times[0] < horizon:
            times.popleft()
