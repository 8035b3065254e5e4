"""The multi-daemon chaos case: three real `gateway run` daemons on one PostgreSQL store with a
2 s lease, a hub whose writes take 0.5-2.5 s (so calls outlive a lease), hub and local faults on,
the simulated people filing complaints and follow-ups, and one daemon SIGKILLed mid-call (while it
holds claims, one of them being sent) and NOT restarted: the other two must take its claims over.

Then the faults and the people are quietened, the two survivors converge, the test acts as the
operator for creates whose outcome is unknown, and asserts: each complaint once at the hub (by its
#lg_ hashtag), none missing, every follow-up once on the other side matched by identity (the
store's event rows pair a local tanggapan id with a hub follow-up id, both ways), no echo, nothing
owed or blocked; and that the faults, the slow writes and the kill really happened, and that the
dead daemon's claims were taken over within a few leases.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select
from test_chaos import (
    HUB_FAULTS,
    LOCAL_FAULTS,
    NOTE,
    Daemon,
    _chaos_config,
    _cli,
    _problems,
    _rank,
    _refs,
)

from gateway._store import Store
from gateway._store._tables import DaemonRow, EventRow, LinkRow, OutboxRow

pytestmark = [pytest.mark.chaos, pytest.mark.postgres]

LEASE = 2.0  # delivery.lease_seconds in _chaos_config
LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
SLOW_WRITES_MS = (500, 2500)  # the hub's latency_ms fault, kept on its writes (the test keeps reads fast)
DAEMONS, ROUNDS, KILL_AT = 3, 14, 5
# A claim whose call was under way is taken over only once that call cannot land any more
# (Deliveries.in_flight: attempts x (timeout + max wait) + 30 s, with _chaos_config's 3, 3 s, 0.3 s);
# a claim that was only waiting, after its lease.
IN_FLIGHT = 3 * (3 + 0.3) + 30
TAKEOVER_BOUND = LEASE + IN_FLIGHT + 4 * LEASE
OPERATOR_GRACE = 15.0  # seconds a needs_confirmation row waits before the operator looks


@pytest.fixture
def pg_store_url(store_url: str) -> str:
    if not store_url.startswith("postgresql"):
        pytest.skip("the multi-daemon case needs PostgreSQL (GATEWAY_TEST_DATABASE_URL)")
    return store_url


def _act_as_operator_later(world, store: Store, decisions: Counter, grace: float = OPERATOR_GRACE) -> None:
    """As test_chaos._act_as_operator, but only on rows that have waited ``grace`` seconds: a call
    by a daemon whose lease ran out may still land at the (slow) hub meanwhile, as a real operator,
    acting minutes later, would see."""
    from datetime import datetime

    from gateway._store._operator import link_delivery, resend_delivery

    now = datetime.now(UTC)
    with store.session() as s:
        ready = [
            r
            for r in s.exec(select(OutboxRow).where(OutboxRow.state == "needs_confirmation")).all()
            if r.last_error_at is None
            or (now - r.last_error_at.replace(tzinfo=r.last_error_at.tzinfo or UTC)).total_seconds() > grace
        ]
    if not ready:
        return
    by_tag = {ref: c["id"] for c in world.hub.complaints() for ref in _refs(c["tags_raw"])}
    for row in ready:
        assert row.kind == "create_complaint", row
        with store.session() as s:
            from gateway._store._tables import ComplaintRow

            gateway_ref = s.get(ComplaintRow, row.complaint_id).gateway_ref
        found = by_tag.get(gateway_ref)
        if found is not None:
            link_delivery(store, row.id, str(found))
            decisions["linked"] += 1
        else:
            resend_delivery(store, row.id)
            decisions["resent"] += 1


def _slow_writes_only(faults) -> dict:
    """Keep the latency_ms fault on the hub's writes (its commit-then-drop routes: create,
    follow-up add) and cut it to 1 % on reads, so that polling stays quick; count the writes
    delayed longer than a lease; lose the answers of writes until one is lost."""
    seen = {"writes": 0, "over_lease": 0, "longest_s": 0.0}
    original = faults.plan

    def plan(commit_then_drop: bool):
        p = original(commit_then_drop)
        if commit_then_drop and p.before is None and faults.settings.lost_answer_rate > 0:
            # At least one lost answer for sure: the writes made while the faults are on are
            # few when the machine is loaded (0 of them lost in one CI run at 8 %), and the
            # test must see one. Random ones follow at the configured rate.
            with faults._lock:
                if faults.injected.get("lost_answers", 0) == 0:
                    p.after = "lost_answers"
        if commit_then_drop:
            with faults._lock:
                seen["writes"] += 1
                seen["longest_s"] = max(seen["longest_s"], p.delay)
                seen["over_lease"] += p.delay > LEASE
        else:
            p.delay /= 100
        return p

    faults.plan = plan  # the middleware calls self.plan for each request
    return seen


class TakeoverWatch(threading.Thread):
    """Watches the rows a killed daemon had claimed: when each was taken from it (its claim
    token changed: another daemon claimed it, or an operator resolved it)."""

    def __init__(self, store_url: str, claims: dict[int, str], killed_at: float):
        super().__init__(daemon=True)
        self.store, self.claims, self.killed_at = Store(store_url), dict(claims), killed_at
        self.taken: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and len(self.taken) < len(self.claims):
                with self.store.session() as s:
                    rows = s.exec(
                        select(OutboxRow.id, OutboxRow.claim_token).where(OutboxRow.id.in_(list(self.claims)))
                    ).all()
                now = time.monotonic()
                for row_id, token in rows:
                    if row_id not in self.taken and token != self.claims[row_id]:
                        self.taken[row_id] = now - self.killed_at
                time.sleep(0.05)
        finally:
            self.store.close()


def _identity_problems(world, store: Store) -> tuple[list[str], dict[str, int]]:
    """Every follow-up at the other side exactly once, paired by ids through the event table."""
    problems: list[str] = []
    figures = Counter()
    with store.session() as s:
        links: dict[int, dict[str, str]] = {}
        for link in s.exec(select(LinkRow)).all():
            links.setdefault(link.complaint_id, {})[link.instance] = link.external_ref
        events = s.exec(select(EventRow).where(EventRow.kind == "follow_up")).all()
        skipped = {
            r.event_id
            for r in s.exec(
                select(OutboxRow).where(OutboxRow.state == "skipped", OutboxRow.event_id.is_not(None))
            ).all()
        }
    by_complaint: dict[int, list[EventRow]] = {}
    for e in events:
        by_complaint.setdefault(e.complaint_id, []).append(e)
    for cid, refs in links.items():
        if LOCAL not in refs or HUB not in refs:
            continue
        local_id, hub_id = refs[LOCAL], refs[HUB]
        local_fus = world.local.follow_ups(int(local_id))
        hub_fus = world.hub.follow_ups(hub_id)
        local_officer = {str(t["id_tanggapan"]) for t in local_fus if t["sumber"] == "lapor_hendi"}
        local_copies = {
            str(t["id_tanggapan"]) for t in local_fus if t["sumber"] == "eksternal" and not t["isi"].startswith(NOTE)
        }
        hub_officer = {str(f["id"]) for f in hub_fus if f["source"] == "officer"}
        hub_copies = {str(f["id"]) for f in hub_fus if f["source"] == "api"}
        mine = by_complaint.get(cid, [])
        up = [e for e in mine if e.origin == LOCAL]
        down = [e for e in mine if e.origin == HUB]
        figures["local_follow_ups"] += len(local_officer)
        figures["hub_follow_ups"] += len(hub_officer)
        figures["events_up"] += len(up)
        figures["events_down"] += len(down)
        tag = f"complaint {cid} (local {local_id}, hub {hub_id})"

        def once(what: str, refs_seen: list[str | None], expected: set[str]) -> None:
            count = Counter(refs_seen)
            for ref in expected:
                if count[ref] != 1:
                    problems.append(f"{tag}: {what} {ref} paired {count[ref]} times")
            for ref, n in count.items():
                if ref not in expected:
                    problems.append(f"{tag}: {what}: event ref {ref!r} ({n}x) is no such follow-up")

        # Local officer tanggapan -> one event each (no echo of our own copies) -> one hub copy each.
        once("local tanggapan (read)", [e.local_ref for e in up], local_officer)
        once("hub copy", [e.hub_ref for e in up], hub_copies)
        # Hub officer follow-ups -> one event each (no echo) -> one local copy each.
        once("hub follow-up (read)", [e.hub_ref for e in down], hub_officer)
        once("local copy", [e.local_ref for e in down if e.id not in skipped], local_copies)
    return problems, dict(figures)


def test_three_daemons_short_lease_slow_hub_one_killed(world, tmp_path: Path, pg_store_url: str):
    started = time.monotonic()
    store_url = pg_store_url
    world.local.faults.configure(**LOCAL_FAULTS)
    world.hub.faults.configure(
        **{**HUB_FAULTS, "error_rate": 0.1, "lost_answer_rate": 0.08, "latency_ms": SLOW_WRITES_MS}
    )
    slow = _slow_writes_only(world.hub.faults)
    config = _chaos_config(
        tmp_path / "config", store_url, {"lapor_hendi": world.local_server.base_url, "sp4n": world.hub_server.base_url}
    )
    assert f"lease_seconds: {LEASE:g}" in config.read_text()
    env = {**os.environ, **world.environ, "PYTHONUNBUFFERED": "1"}
    daemons = [Daemon(config, env, tmp_path / f"daemon{i}.log") for i in range(DAEMONS)]
    store = Store(store_url)
    from gateway._config import load_config

    loaded = load_config(config, environ=world.environ)
    local_spec, hub_spec = loaded.instances[LOCAL].spec, loaded.instances[HUB].spec
    writes = {name: local_spec.status_writes[status] for name, status in hub_spec.statuses.items()}
    rank = _rank(local_spec)
    decisions: Counter = Counter()
    victim = daemons[0]
    watch: TakeoverWatch | None = None
    claims_at_kill: dict[int, str] = {}
    sending_at_kill = 0
    try:
        for d in daemons:
            d.start()
        owner = f"{socket.gethostname()}:{victim.proc.pid}"
        owners = {f"{socket.gethostname()}:{d.proc.pid}" for d in daemons}
        deadline = time.monotonic() + 90  # all three up (a heartbeat each) before the world starts
        while True:
            with store.session() as s:
                alive = set(s.exec(select(DaemonRow.owner)).all())
            if owners <= alive:
                break
            assert time.monotonic() < deadline and all(d.proc.poll() is None for d in daemons), (
                f"the daemons did not all start: {alive} of {owners}"
            )
            time.sleep(0.2)
        startup_s = time.monotonic() - started
        for round_ in range(1, ROUNDS + 1):
            for _ in range(3):
                world.step(hours=0.4)
            time.sleep(0.4)  # pacing of the simulated world against the daemons
            if round_ == KILL_AT:
                # Kill the victim in the middle of a call: when it holds claims, one being sent.
                deadline = time.monotonic() + 20
                while True:
                    with store.session() as s:
                        now = s.execute(text("SELECT now()")).scalar_one()
                        held = s.exec(
                            select(OutboxRow).where(OutboxRow.claimed_by == owner, OutboxRow.claim_expires_at > now)
                        ).all()
                    if any(r.sending_at is not None for r in held):
                        break
                    if time.monotonic() >= deadline:
                        with store.session() as s:
                            seen = Counter(
                                (r.claimed_by, r.state, r.sending_at is not None)
                                for r in s.exec(select(OutboxRow)).all()
                            )
                        pytest.fail(
                            f"the victim ({owner}) never held a claim in a call; "
                            f"alive: {[d.proc.poll() for d in daemons]}; outbox: {dict(seen)}"
                        )
                    world.step(hours=0.1)
                    time.sleep(0.05)
                victim.kill9()
                killed_at = time.monotonic()
                with store.session() as s:  # every claim it still held (expired ones included)
                    held = s.exec(
                        select(OutboxRow).where(OutboxRow.claimed_by == owner, OutboxRow.state == "pending")
                    ).all()
                claims_at_kill = {r.id: r.claim_token for r in held}
                sending_at_kill = sum(1 for r in held if r.sending_at is not None)
                watch = TakeoverWatch(store_url, claims_at_kill, killed_at)
                watch.start()
        # Quiet: the hub's officers answer what reached them, then the people stop and the faults go.
        world.local.officers_active = False
        for _ in range(4):
            world.clock.advance(2 * 3600)
            world.hub.tick()
            time.sleep(0.4)
        world.hub.quiesce()
        world.hub.faults.reset()
        world.local.faults.reset()
        deadline = time.monotonic() + 120
        while True:
            _act_as_operator_later(world, store, decisions)
            problems = _problems(world, store, writes, rank)
            identity, follow_up_figures = _identity_problems(world, store)
            problems += identity
            if not problems:
                break
            assert time.monotonic() < deadline, f"no convergence ({tmp_path}):\n" + "\n".join(problems[:30])
            time.sleep(0.5)
        watch.stop.set()
        watch.join(timeout=10)
        for d in daemons[1:]:
            assert d.stop() == 0
        assert json.loads(_cli(config, env, "deliveries", "list", "--json")) == []
        with store.session() as s:
            rows = s.exec(select(OutboxRow)).all()
        hub_tags = Counter(t for c in world.hub.complaints() for t in _refs(c["tags_raw"]))
        longest_wait = max(watch.taken.values()) if watch.taken else None
        figures = {
            "seconds": round(time.monotonic() - started, 1),
            "daemons": DAEMONS,
            "startup_seconds": round(startup_s, 1),
            "complaints": len(world.local.complaints()),
            "complaints_at_hub": len(world.hub.complaints()),
            "duplicates_at_hub": sum(n - 1 for n in hub_tags.values() if n > 1),
            **follow_up_figures,
            "hub_status_changes": world.hub.counts()["status_changes"],
            "deliveries": len(rows),
            "failed_attempts": sum(r.attempts for r in rows),
            "operator": dict(decisions),
            "faults_injected": {"hub": dict(world.hub.faults.injected), "local": dict(world.local.faults.injected)},
            "hub_writes": slow["writes"],
            "hub_writes_slower_than_lease": slow["over_lease"],
            "slowest_hub_write_s": round(slow["longest_s"], 2),
            "kills": 1,
            "killed_returncode": victim.proc.returncode,
            "restarted": False,
            "claims_held_at_kill": len(claims_at_kill),
            "of_which_in_a_call": sending_at_kill,
            "claims_taken_over": len(watch.taken),
            "longest_claim_wait_s": round(longest_wait, 2) if longest_wait is not None else None,
        }
        print("\nCHAOS-DAEMONS", json.dumps(figures))
    finally:
        if watch is not None:
            watch.stop.set()
        for d in daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
        store.close()
    # The faults, the slow calls and the kill really happened.
    assert victim.proc.returncode == -signal.SIGKILL
    assert world.hub.faults.injected["errors"] > 0 and world.hub.faults.injected["lost_answers"] > 0
    assert sum(world.local.faults.injected.values()) > 0
    assert slow["over_lease"] > 0 and slow["longest_s"] > LEASE
    assert sending_at_kill >= 1
    # Its claims were all taken over, each within a few leases.
    assert set(watch.taken) == set(claims_at_kill)
    assert longest_wait <= TAKEOVER_BOUND, f"a dead daemon's claim waited {longest_wait:.1f} s"
    # Busy enough to mean something, and nothing twice (the loop above asserted the rest).
    assert figures["complaints"] >= 60 and figures["complaints_at_hub"] == figures["complaints"]
    assert figures["duplicates_at_hub"] == 0
    assert figures["local_follow_ups"] >= 50 and figures["hub_follow_ups"] >= 5
    for d in daemons:
        assert "complaint created at hub" in d.log.read_text() or d is victim
