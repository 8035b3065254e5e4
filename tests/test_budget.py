"""The request budget per peer: rate, concurrency, adapting down on 429 and back up.

Almost everything runs on a fake clock: :class:`FakeTime` advances to the next
sleeper only when every task waits, so a test of "N requests at 10/s" takes no
real time and its outcome is certain. One test talks to the SP4N simulator on
loopback with its rate limit switched on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import edit, line_of
from structlog.testing import capture_logs

import gateway
from gateway import InstanceContext, PeerClient, RetryPolicy, TransientPeerError
from gateway._budget import BudgetPolicy, RequestBudget
from gateway._config import load_config
from gateway.simulation import SimClock, SimulatorServer

ENV = {"LAPOR_HENDI_API_KEY": "x", "SP4N_AUTHORIZATION": "y", "SP4N_TOKEN": "z"}


# -- a fake clock that advances when every task waits -------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._timers, (self.now + max(0.0, delay), self._seq, future))
        await future

    async def run(self, *coroutines: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every task that can go on run up to its next wait
                await asyncio.sleep(0)
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            if all(t.done() for t in tasks):
                break
            assert self._timers, "every task waits, and no one will wake them"
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            future.set_result(None)
        return [t.result() for t in tasks]


def budget_on(fake: FakeTime, **policy: Any) -> RequestBudget:
    return RequestBudget("sp4n", BudgetPolicy(**policy), clock=fake.clock, sleep=fake.sleep)


class FakePeer:
    """A peer limiting at ``rate`` per second with a token bucket of ``rate`` tokens (like the
    simulators): over it, 429 with Retry-After 1. Each answer takes ``latency`` seconds."""

    def __init__(self, fake: FakeTime, rate: float, latency: float = 0.005):
        self.fake, self.rate, self.latency = fake, rate, latency
        self.tokens, self.stamp = rate, 0.0
        self.log: list[tuple[float, int]] = []  # (send time, status)

    def arrive(self) -> int:
        now = self.fake.now
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 200
        return 429

    async def call(self, budget: RequestBudget) -> int:
        async with budget.slot() as sent_at:
            status = self.arrive()
            await self.fake.sleep(self.latency)
            self.log.append((sent_at, status))
            if status == 429:
                budget.throttled(1.0, sent_at)
            else:
                budget.accepted(sent_at)
            return status


async def keep_calling(fake: FakeTime, peer: FakePeer, budget: RequestBudget, until: float, workers: int = 12) -> None:
    async def worker() -> None:
        while fake.now < until:
            await peer.call(budget)

    await asyncio.gather(*(worker() for _ in range(workers)))


def adapted_budget(
    rate: float = 10.0, configured: float = 30.0, seconds: float = 20.0, **policy: Any
) -> tuple[FakeTime, FakePeer, RequestBudget]:
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=configured, concurrency=8, **policy)
    peer = FakePeer(fake, rate)
    asyncio.run(fake.run(keep_calling(fake, peer, budget, until=seconds)))
    return fake, peer, budget


# -- rate and concurrency -----------------------------------------------------------------------


def test_requests_are_evenly_spaced_at_the_configured_rate():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=10, concurrency=4)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)
            await fake.sleep(0.05)

    asyncio.run(fake.run(*(one() for _ in range(50))))

    sent.sort()
    assert sent[0] == 0.0
    assert sent[-1] == pytest.approx(4.9)  # 50 requests at 10/s: 4.9 s from the first to the last
    assert min(b - a for a, b in itertools.pairwise(sent)) == pytest.approx(0.1)
    assert budget.snapshot()["requests"] == 50


def test_a_burst_lets_that_many_go_at_once_then_spaces_the_rest():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=2, concurrency=8, burst=3)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)

    asyncio.run(fake.run(*(one() for _ in range(5))))

    assert sorted(sent) == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])


def test_concurrency_never_exceeds_the_limit_and_slots_go_first_come_first_served():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=None, concurrency=3)
    in_flight, most, order = 0, 0, []

    async def one(i: int) -> None:
        nonlocal in_flight, most
        async with budget.slot():
            order.append(i)
            in_flight += 1
            most = max(most, in_flight)
            await fake.sleep(1.0)
            in_flight -= 1

    asyncio.run(fake.run(*(one(i) for i in range(20))))

    assert most == 3
    assert order == list(range(20))
    assert fake.now == pytest.approx(7.0)  # 20 requests, 3 at a time, 1 s each
    assert budget.snapshot()["in_use"] == 0


def test_a_cancelled_waiter_gives_its_place_and_its_turn_back():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=1, concurrency=1)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)

    async def scenario() -> None:
        await one()  # at 0
        waiting = asyncio.ensure_future(one())  # its turn is at 1
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await one()  # takes the turn at 1 that the cancelled one gave back

    asyncio.run(fake.run(scenario()))

    assert sent == [0.0, 1.0]
    assert budget.snapshot()["in_use"] == 0


# -- adapting down on 429 -----------------------------------------------------------------------


def test_a_rate_limited_peer_lowers_the_rate_to_95_percent_of_what_it_accepts():
    with capture_logs() as logs:
        fake, peer, budget = adapted_budget(rate=10.0, configured=30.0, seconds=30.0)

    snapshot = budget.snapshot()
    assert snapshot["adaptations"] == 1
    assert 0.9 * 10 <= snapshot["current_rps"] <= 0.97 * 10  # about 0.95 x 10
    adapted = budget.last_adapted_at
    assert [s for s, status in peer.log if status == 429 and s >= adapted] == []  # none after it
    accepted_after = [s for s, status in peer.log if status == 200 and s >= adapted + 1]
    assert len(accepted_after) / (30.0 - adapted - 1) > 0.9 * 10
    warnings = [e for e in logs if e["event"] == "peer throttled; request budget lowered"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["peer"] == "sp4n" and warnings[0]["old_rps"] == 30.0
    assert warnings[0]["new_rps"] == pytest.approx(snapshot["current_rps"], abs=0.001)


@pytest.mark.parametrize("rate", [3.0, 20.0, 50.0])
def test_the_adapted_rate_is_close_below_the_peers_limit_whatever_the_limit(rate: float):
    fake, peer, budget = adapted_budget(rate=rate, configured=None, seconds=20.0)

    assert budget.adaptations == 1
    assert 0.88 * rate <= budget.current_rps <= rate
    assert [s for s, status in peer.log if status == 429 and s >= budget.last_adapted_at] == []


def test_stale_429s_of_requests_sent_before_the_adaptation_change_nothing():
    fake, peer, budget = adapted_budget()
    rate, adapted_at = budget.current_rps, budget.last_adapted_at
    fake.now += 0.5

    for _ in range(5):  # answers that were in flight at the old rate come back late
        budget.throttled(1.0, adapted_at - 0.01)

    snapshot = budget.snapshot()
    assert snapshot["adaptations"] == 1 and snapshot["current_rps"] == rate
    assert snapshot["stale_throttled"] == 5

    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)

    start = fake.now
    asyncio.run(fake.run(one()))
    assert sent[0] - start < 1.0  # their Retry-After did not hold the next request back


def test_retry_after_pushes_the_next_send():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=None, concurrency=4)
    sent: list[float] = []

    async def scenario() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)
            await fake.sleep(0.1)
            budget.throttled(2.0, sent_at)
        async with budget.slot() as sent_at:  # from 0.1, the peer asked for 2 s
            sent.append(sent_at)
            budget.accepted(sent_at)

    asyncio.run(fake.run(scenario()))

    assert sent == pytest.approx([0.0, 2.1])
    assert budget.snapshot()["throttled"] == 1


def test_retry_after_also_holds_back_requests_already_waiting_for_their_turn():
    fake = FakeTime()
    budget = budget_on(fake, requests_per_second=10, concurrency=8)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)

    async def scenario() -> None:
        async with budget.slot() as first:
            waiting = [asyncio.ensure_future(one()) for _ in range(3)]  # turns at 0.1, 0.2, 0.3
            await asyncio.sleep(0)
            await fake.sleep(0.05)
            budget.throttled(1.0, first)  # at 0.05: wait 1 s
        await asyncio.gather(*waiting)

    asyncio.run(fake.run(scenario()))

    assert sorted(sent) == pytest.approx([1.05, 1.15, 1.25])


# -- recovering ---------------------------------------------------------------------------------


def test_after_a_quiet_period_the_rate_creeps_back_up_to_the_configured_rate_never_above():
    fake, _, budget = adapted_budget(rate=10.0, configured=30.0, recover_after_seconds=60)
    lowered, adapted_at = budget.current_rps, budget.last_adapted_at

    fake.now = adapted_at + 59
    assert budget.current_rps == lowered
    fake.now = adapted_at + 60
    assert budget.current_rps == pytest.approx(lowered + 3.0)  # 10% of the configured 30 per period
    fake.now = adapted_at + 120
    assert budget.current_rps == pytest.approx(lowered + 6.0)
    fake.now = adapted_at + 3600
    assert budget.current_rps == 30.0
    assert budget.snapshot()["recoveries"] >= 7


def test_without_a_configured_rate_the_lowered_rate_grows_by_a_tenth_per_period():
    fake, _, budget = adapted_budget(rate=10.0, configured=None, recover_after_seconds=60)
    lowered = budget.current_rps

    fake.now = budget.last_adapted_at + 120
    assert budget.current_rps == pytest.approx(lowered * 1.1 * 1.1)


def test_an_unlimited_budget_changes_nothing_until_a_429():
    fake = FakeTime()
    budget = budget_on(fake)
    assert budget.policy == BudgetPolicy(requests_per_second=None, concurrency=8)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as sent_at:
            sent.append(sent_at)
            budget.accepted(sent_at)

    asyncio.run(fake.run(*(one() for _ in range(100))))
    assert sent == [0.0] * 100
    assert budget.snapshot()["current_rps"] is None


@pytest.mark.parametrize(
    "policy",
    [
        dict(requests_per_second=0),
        dict(requests_per_second=float("inf")),
        dict(concurrency=0),
        dict(burst=0),
        dict(min_requests_per_second=0),
        dict(recover_after_seconds=0),
    ],
)
def test_a_policy_refuses_values_that_make_no_sense(policy: dict[str, Any]):
    with pytest.raises(ValueError, match=next(iter(policy))):
        BudgetPolicy(**policy)


# -- in PeerClient ------------------------------------------------------------------------------


def client_with(
    handler: Callable[[httpx.Request], httpx.Response],
    budget: RequestBudget,
    retry: RetryPolicy = RetryPolicy(initial_wait=0.001, max_wait=0.01),
) -> PeerClient:
    return PeerClient(
        "sp4n",
        "https://hub.example.go.id/api",
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=retry,
        budget=budget,
    )


class Recording(RequestBudget):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.answers: list[tuple[str, float | None]] = []
        self.slept: list[float] = []

    def accepted(self, sent_at: float) -> None:
        self.answers.append(("accepted", None))
        super().accepted(sent_at)

    def throttled(self, retry_after: float | None, sent_at: float) -> None:
        self.answers.append(("throttled", retry_after))
        super().throttled(retry_after, sent_at)


def test_every_attempt_takes_a_slot_and_reports_its_answer():
    answers = iter([httpx.Response(503), httpx.Response(500), httpx.Response(200, json={"ok": True})])
    budget = Recording("sp4n", BudgetPolicy())
    http = client_with(lambda request: next(answers), budget)

    async def call() -> Any:
        return await http.request_json("GET", "/complaints/1/complaint")

    assert asyncio.run(call()) == {"ok": True}
    assert budget.requests == 3
    assert budget.answers == [("accepted", None)] * 3  # answered, even if with an error: not refused for the rate


def test_a_transport_error_is_neither_accepted_nor_throttled():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    budget = Recording("sp4n", BudgetPolicy())
    http = client_with(handler, budget, RetryPolicy(attempts=2, initial_wait=0.001, max_wait=0.001))

    with pytest.raises(TransientPeerError):
        asyncio.run(http.request("GET", "/x"))
    assert budget.requests == 2 and budget.answers == []


def test_a_429_with_retry_after_is_waited_for_once_in_the_budget_not_again_by_the_retry():
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={"ok": True})])
    fake = FakeTime()
    slept: list[float] = []

    async def sleep(delay: float) -> None:  # the budget's waits take no real time
        slept.append(delay)
        fake.now += delay

    budget = Recording("sp4n", BudgetPolicy(), clock=fake.clock, sleep=sleep)
    http = client_with(lambda request: next(answers), budget, RetryPolicy(initial_wait=5, max_wait=5))

    started = time.monotonic()
    assert asyncio.run(http.request_json("POST", "/complaints/complaint")) == {"ok": True}

    assert time.monotonic() - started < 0.5  # the retry did not sleep the Retry-After (nor its backoff)
    assert slept == [pytest.approx(1.0)]  # the budget did
    assert budget.answers == [("throttled", 1.0), ("accepted", None)]


def test_the_slot_is_not_held_during_the_wait_between_attempts():
    calls: list[str] = []
    first = {"done": False}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/a" and not first["done"]:
            first["done"] = True
            return httpx.Response(503)
        return httpx.Response(200, json={})

    budget = RequestBudget("sp4n", BudgetPolicy(concurrency=1))
    http = client_with(handler, budget, RetryPolicy(attempts=2, initial_wait=0.2, max_wait=0.2))

    async def both() -> None:
        a = asyncio.ensure_future(http.request("GET", "/a"))
        await asyncio.sleep(0.05)  # a is in its backoff now
        await http.request("GET", "/b")
        await a

    asyncio.run(both())
    assert calls == ["/api/a", "/api/b", "/api/a"]


def test_an_adapter_builds_one_budget_from_its_context():
    from lapor_gateway_adapters.sp4n import Sp4nHub

    policy = BudgetPolicy(requests_per_second=7, concurrency=3)
    context = InstanceContext(
        name="sp4n",
        base_url="http://127.0.0.1:1",
        timezone=gateway.WIB,
        secrets={"authorization": "a", "token": "t"},
        settings=Sp4nHub.Settings(user_id=1, institution_id=2, follow_up_template_code="reply_gateway"),
        budget=policy,
    )
    hub = Sp4nHub(context)

    assert hub.http.budget is not None
    assert hub.http.budget.peer == "sp4n" and hub.http.budget.policy is policy
    default = Sp4nHub(
        InstanceContext(
            name="sp4n",
            base_url="http://127.0.0.1:1",
            timezone=gateway.WIB,
            secrets={"authorization": "a", "token": "t"},
            settings=Sp4nHub.Settings(user_id=1, institution_id=2, follow_up_template_code="reply_gateway"),
        )
    )
    assert default.http.budget.policy == BudgetPolicy(requests_per_second=None, concurrency=8)


# -- config -------------------------------------------------------------------------------------


def test_the_shipped_budgets_reach_the_adapters(repo_config_dir: Path):
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)

    hub = config.instances["sp4n"].context().budget
    assert hub.requests_per_second == 5 and hub.concurrency == 4 and hub.recover_after_seconds == 300
    adapter = config.instances["sp4n"].adapter_class(config.instances["sp4n"].context())
    assert adapter.http.budget.policy == hub


def test_an_instance_without_a_budget_block_keeps_no_rate_limit(repo_config_dir: Path):
    path = repo_config_dir / "adapters" / "sp4n.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("budget:")])

    policy = load_config(repo_config_dir / "gateway.yaml", environ=ENV).instances["sp4n"].context().budget
    assert policy == BudgetPolicy(requests_per_second=None, concurrency=8, recover_after_seconds=300)


def test_requests_per_second_may_be_null(repo_config_dir: Path):
    edit(repo_config_dir / "adapters" / "sp4n.yaml", "  requests_per_second: 5", "  requests_per_second: null")

    policy = load_config(repo_config_dir / "gateway.yaml", environ=ENV).instances["sp4n"].context().budget
    assert policy.requests_per_second is None and policy.concurrency == 4


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ("  requests_per_second: 5", "  requests_per_second: 0", "budget.requests_per_second", "greater than 0"),
        ("  requests_per_second: 5", "  requests_per_second: fast", "budget.requests_per_second", "number"),
        ("  concurrency: 4", "  concurrency: 65", "budget.concurrency", "less than or equal to 64"),
        ("  concurrency: 4", "  concurrency: 0", "budget.concurrency", "greater than or equal to 1"),
        (
            "  concurrency: 4",
            "  concurrency: 4\n  recover_after_seconds: -1",
            "budget.recover_after_seconds",
            "greater than 0",
        ),
        ("  concurrency: 4", "  concurency: 4", "budget.concurency", "unknown key"),
    ],
)
def test_a_bad_budget_is_reported_with_file_line_and_key(
    repo_config_dir: Path, old: str, new: str, key: str, message: str
):
    path = repo_config_dir / "adapters" / "sp4n.yaml"
    text = edit(path, old, new)

    with pytest.raises(gateway.ConfigError) as caught:
        load_config(repo_config_dir / "gateway.yaml", environ=ENV)

    matching = [i for i in caught.value.issues if i.key == key]
    assert len(matching) == 1, caught.value.issues
    assert matching[0].file == str(path)
    assert matching[0].line == line_of(text, new.strip().splitlines()[-1])
    assert message in matching[0].message


# -- on loopback, against the simulator's rate limit ----------------------------------------------


def test_against_a_rate_limited_simulator_429s_stop_after_the_first_adaptation():
    from lapor_gateway_adapters.sp4n.simulator import create_simulator

    rate = 20.0
    sim = create_simulator(seed=3, clock=SimClock())
    sim.quiesce()
    server = SimulatorServer(sim, port=0).start()
    try:
        sim.faults.configure(rate_limit_rps=rate)
        outcome = asyncio.run(_hammer(server.base_url, sim, rate))
    finally:
        server.stop()

    budget, answers, adapted_at, stop = outcome
    assert budget.adaptations == 1, budget.snapshot()
    assert 0.85 * rate <= budget.current_rps <= rate
    grace = 0.2  # answers of requests sent just before the adaptation may still be on the way
    assert [s for s, status in answers if status == 429 and s > adapted_at + grace] == []
    steady = [s for s, status in answers if status == 200 and s > adapted_at + 1.0]
    assert len(steady) / (stop - adapted_at - 1.0) > 0.8 * rate
    assert sim.faults.injected["rate_limited"] >= 1


async def _hammer(base_url: str, sim: Any, rate: float) -> tuple[RequestBudget, list[tuple[float, int]], float, float]:
    budget = RequestBudget("sp4n", BudgetPolicy(requests_per_second=3 * rate, concurrency=8))
    answers: list[tuple[float, int]] = []
    accepted, throttled = budget.accepted, budget.throttled

    def on_accepted(sent_at: float) -> None:
        answers.append((sent_at, 200))
        accepted(sent_at)

    def on_throttled(retry_after: float | None, sent_at: float) -> None:
        answers.append((sent_at, 429))
        throttled(retry_after, sent_at)

    budget.accepted, budget.throttled = on_accepted, on_throttled  # type: ignore[method-assign]
    headers = {"Authorization": sim.authorization, "token": sim.token}
    async with httpx.AsyncClient(headers=headers) as client:
        http = PeerClient("sp4n", base_url, client=client, retry=RetryPolicy(attempts=1), budget=budget)
        give_up = time.monotonic() + 15
        stop = give_up

        async def worker() -> None:
            nonlocal stop
            while time.monotonic() < min(stop, give_up):
                try:
                    await http.request("GET", "/masters/templates")
                except TransientPeerError:
                    pass
                if budget.last_adapted_at is not None and stop == give_up:
                    stop = budget.last_adapted_at + 3.0  # three seconds of traffic after it

        await asyncio.gather(*(worker() for _ in range(16)))
    assert budget.last_adapted_at is not None, budget.snapshot()
    return budget, answers, budget.last_adapted_at, stop
