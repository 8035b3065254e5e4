"""Delivery guarantees, one failure at a time: lost answers, a daemon that died
mid-call, an open circuit breaker, permanent errors, conflicting status changes,
refused attachments, malformed records and row claims.

Everything is real: both simulators over loopback HTTP (the ``world`` fixture),
the real engine driven pass by pass, a real store (SQLite, and PostgreSQL when
GATEWAY_TEST_DATABASE_URL is set). Faults are switched on at rate 1.0 for
exactly the call under test and back to 0 after, so every run is the same. The
store runs on a clock that the tests jump forward (real time plus an offset), so
that a delivery's backoff or a claim's lease passes without waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import JumpClock
from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

import gateway.cli
from gateway import Write
from gateway._config import GatewayConfig
from gateway._engine import Engine
from gateway._engine._hub_poll import HubPoll, PollResult, poll_policy
from gateway._errors import StoreRefusedError
from gateway._model import Complaint, RawStatus, Status
from gateway._store import CREATE_COMPLAINT, HUB_FOLLOW_UP, LOCAL_FOLLOW_UP, LOCAL_HUB_REF, LOCAL_STATUS, Store
from gateway._store._hub_reads import UNCHECKED
from gateway._store._operator import (
    OperatorError,
    link_delivery,
    list_deliveries,
    list_quarantine,
    resend_delivery,
    retry_delivery,
)
from gateway._store._report import status_report
from gateway._store._tables import AttachmentRow, AuditRow, OutboxRow
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
ADMIN = "100234"  # the gateway's institution at the simulated hub
LATER = 3 * 3600  # seconds: past any backoff of the first attempts and any lease


# -- the harness ---------------------------------------------------------------------------------


@dataclass
class Harness:
    world: Any
    config: GatewayConfig
    store: Store
    engine: Engine
    clock: JumpClock

    async def passes(self, n: int = 1) -> None:
        for _ in range(n):
            await self.engine.run_pass()

    def later(self, seconds: float = LATER) -> None:
        """Jump the store's clock: backoffs and leases pass (no simulated person acts)."""
        self.clock.advance(seconds)

    # -- the store -------------------------------------------------------------------------

    def complaint_id(self, local_id: int) -> int:
        found = self.store.complaint_id_for(LOCAL, str(local_id))
        assert found is not None, f"local complaint {local_id} was not taken in"
        return found

    def gateway_ref(self, local_id: int) -> str:
        return self.store.complaint(self.complaint_id(local_id)).gateway_ref

    def hub_id(self, local_id: int) -> str | None:
        return self.store.external_ref(self.complaint_id(local_id), HUB)

    def outbox(self, local_id: int, kind: str | None = None) -> list[OutboxRow]:
        cid = self.complaint_id(local_id)
        with self.store.session() as s:
            query = select(OutboxRow).where(OutboxRow.complaint_id == cid)
            if kind:
                query = query.where(OutboxRow.kind == kind)
            return list(s.exec(query.order_by(OutboxRow.id)).all())

    def audit(self, action: str, local_id: int | None = None) -> list[AuditRow]:
        with self.store.session() as s:
            query = select(AuditRow).where(AuditRow.action == action)
            if local_id is not None:
                query = query.where(AuditRow.complaint_id == self.complaint_id(local_id))
            return list(s.exec(query.order_by(AuditRow.id)).all())

    def stuck(self, state: str = "needs_confirmation") -> list[dict[str, Any]]:
        return list_deliveries(self.store, states=(state,))

    # -- the simulators ----------------------------------------------------------------------

    def at_hub(self, local_id: int) -> list[dict[str, Any]]:
        """The hub's complaints carrying this complaint's gateway reference (its hashtag)."""
        tag = hashtag(self.gateway_ref(local_id))
        return [c for c in self.world.hub.complaints() if tag in (c["tags_raw"] or "").split()]

    def hub_follow_ups(self, local_id: int, source: str | None = None) -> list[dict[str, Any]]:
        (hub_c,) = self.at_hub(local_id)
        return [f for f in self.world.hub.follow_ups(hub_c["id"]) if source is None or f["source"] == source]

    def local_complaint(self, local_id: int) -> dict[str, Any]:
        return next(c for c in self.world.local.complaints() if c["id_aduan"] == local_id)

    def local_follow_ups(self, local_id: int, sumber: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.world.local.follow_ups(local_id) if sumber is None or t["sumber"] == sumber]

    def local_history(self, local_id: int, sumber: str | None = None) -> list[dict[str, Any]]:
        return [h for h in self.world.local.status_history(local_id) if sumber is None or h["sumber"] == sumber]

    def hub_officer_sets_status(self, hub_id: str, name: str, reason: str | None = None) -> dict[str, Any]:
        """An officer at the hub changes a complaint's status to the status named ``name``
        (now, on the simulated clock); returns the hub's log entry."""
        entry = self.world.hub.act(hub_id, name, reason=reason)
        assert entry["kind"] == "status" and entry["status_new"] == name
        return entry

    def hub_officer_answers(self, hub_id: str, text: str) -> None:
        """An officer of the gateway's institution at the hub writes a follow-up (no file, not secret)."""
        self.world.hub.officer_follow_up(hub_id, text, is_secret=False, photo=False, institution_from=ADMIN)

    def local_officer_sets_status(self, local_id: int, status: str) -> None:
        """An officer in Lapor Hendi changes a complaint's status by hand."""
        sim = self.world.local
        with sim.lock:
            sim.world.set_status(
                local_id,
                status,
                oleh=sim.world.officer_name(local_id),
                sumber="lapor_hendi",
                ref=None,
                now=sim.clock.now(),
            )


@asynccontextmanager
async def harness(
    world, tmp_path: Path, store_url: str, *, tweak=None, owner: str = "daemon-1"
) -> AsyncIterator[Harness]:
    """A config pointing at the simulators (``tweak(config)`` may change it before the
    engine is built), a store on a jump clock and an engine."""
    config = world.config(tmp_path, store_url)
    if tweak is not None:
        tweak(config)
    clock = JumpClock()
    store = Store(store_url, clock=clock)
    try:
        async with Engine(config, store, owner=owner, seed=7) as engine:
            yield Harness(world, config, store, engine, clock)
    finally:
        store.close()


def _quiet(world) -> None:
    """No simulated person acts on their own: the tests make every change themselves."""
    world.local.officers_active = False
    world.hub.quiesce()


async def _started(h: Harness) -> None:
    """The world's initial complaints taken in and created at the hub, with no fault."""
    await h.passes(1)
    assert world_is_in_sync(h), "the initial complaints should all be at the hub once"


def hashtag(gateway_ref: str) -> str:
    """How a complaint's gateway reference appears in the hub's tags_raw: ``lg-<hex>`` as ``#lg_<hex>``."""
    return "#" + gateway_ref.replace("-", "_")


def world_is_in_sync(h: Harness) -> bool:
    tags = Counter(
        tag for c in h.world.hub.complaints() for tag in (c["tags_raw"] or "").split() if tag.startswith("#lg_")
    )
    locals_ = [c["id_aduan"] for c in h.world.local.complaints()]
    return all(tags[hashtag(h.gateway_ref(i))] == 1 for i in locals_) and len(h.world.hub.complaints()) == len(locals_)


def _invoke(h: Harness, *args: str):
    return CliRunner().invoke(gateway.cli.app, ["--config", str(h.config.path), *args], env=h.world.environ)


# -- 1. a create whose answer is lost -----------------------------------------------------------


async def _lost_create(h: Harness, fault: dict[str, float]) -> tuple[int, dict[str, Any]]:
    """A new local complaint whose create hits ``fault`` at the hub; returns its local id and
    its delivery, once it waits for an operator's confirmation."""
    local_id = h.world.local.submit_complaint(kategori="Jalan Rusak", lampiran=0, anonim=False)
    await h.engine.intake(LOCAL)
    h.world.hub.faults.configure(**fault)
    try:
        first = await h.engine.deliver(HUB)
    finally:
        h.world.hub.faults.configure(**{name: 0.0 for name in fault})
    assert first.retrying == 1 and first.delivered == 0
    (row,) = h.outbox(local_id, CREATE_COMPLAINT)
    assert row.state == "pending" and row.outcome_unknown, "a write whose answer was lost is of unknown outcome"
    assert row.sending_at is None and row.attempts == 1

    h.later()
    second = await h.engine.deliver(HUB)
    assert second.needs_confirmation == 1 and second.delivered == 0
    (waiting,) = h.stuck()
    assert waiting["complaint_id"] == h.complaint_id(local_id) and waiting["kind"] == CREATE_COMPLAINT
    assert waiting["outcome_unknown"] is True
    # The reason tells the operator what to look for and what to do, and holds no personal data.
    assert hashtag(h.gateway_ref(local_id)) in waiting["last_error"]
    assert "deliveries link" in waiting["last_error"] and "deliveries resend" in waiting["last_error"]
    reporter = h.local_complaint(local_id)["pelapor"]
    assert all(value not in waiting["last_error"] for value in reporter.values())
    assert h.audit("delivery_needs_confirmation", local_id)
    return local_id, waiting


async def test_lost_create_answer_waits_for_confirmation_then_link_and_everything_flows(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id, waiting = await _lost_create(h, {"lost_answer_rate": 1.0})

        # The hub committed it once; later passes never create it again.
        (hub_c,) = h.at_hub(local_id)
        # A local officer answers meanwhile: the follow-up waits behind the create.
        h.world.clock.advance(600)
        h.world.local.answer(local_id, "Tim kami akan meninjau lokasi besok pagi.")
        for _ in range(3):
            h.later()
            await h.passes(1)
        assert len(h.at_hub(local_id)) == 1
        assert h.hub_id(local_id) is None
        assert [r.state for r in h.outbox(local_id)] == ["needs_confirmation", "pending"]
        assert h.world.hub.follow_ups(hub_c["id"]) == []

        # The CLI shows what waits, with what to look for.
        shown = _invoke(h, "deliveries", "list", "--json")
        assert shown.exit_code == 0, shown.output
        (listed,) = json.loads(shown.stdout)
        assert listed["id"] == waiting["id"] and listed["state"] == "needs_confirmation"
        assert listed["gateway_ref"] == h.gateway_ref(local_id)

        # The operator finds it at the hub by its tag and links it.
        link_delivery(h.store, waiting["id"], str(hub_c["id"]))
        assert h.stuck() == []
        assert h.hub_id(local_id) == str(hub_c["id"])
        assert h.audit("delivery_linked", local_id)

        await h.passes(1)
        # The local follow-up that waited goes up once; hub status and follow-up come down once.
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [
            "Tim kami akan meninjau lokasi besok pagi."
        ]
        h.world.clock.advance(3600)
        h.hub_officer_sets_status(str(hub_c["id"]), "Terverifikasi")
        h.hub_officer_answers(str(hub_c["id"]), "Laporan sudah diverifikasi dan diteruskan ke dinas terkait.")
        await h.passes(3)
        assert len(h.at_hub(local_id)) == 1 and world_is_in_sync(h)
        assert h.local_complaint(local_id)["status"] == "terverifikasi"
        assert [t["isi"] for t in h.local_follow_ups(local_id, "eksternal")] == [
            "Laporan sudah diverifikasi dan diteruskan ke dinas terkait."
        ]
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [
            "Tim kami akan meninjau lokasi besok pagi."
        ], "nothing echoed back to the hub"
        assert all(r.state in ("done", "skipped") for r in h.outbox(local_id))
        # The hub's tracking id reached the local app, as after any create.
        assert world.local.nomor_lapor(local_id) == str(hub_c["id"])


async def test_create_reset_before_processing_resent_by_operator_is_created_exactly_once(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        before = world.hub.counts()["complaints"]
        local_id, waiting = await _lost_create(h, {"reset_rate": 1.0})
        assert h.at_hub(local_id) == [] and world.hub.counts()["complaints"] == before

        for _ in range(2):
            h.later()
            await h.passes(1)
        assert h.at_hub(local_id) == [] and len(h.stuck()) == 1

        # The operator checked the hub: it is not there. Resend (through the CLI).
        done = _invoke(h, "deliveries", "resend", str(waiting["id"]))
        assert done.exit_code == 0, done.output
        await h.passes(1)
        assert len(h.at_hub(local_id)) == 1
        assert h.hub_id(local_id) == str(h.at_hub(local_id)[0]["id"])
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert len(h.at_hub(local_id)) == 1 and world.hub.counts()["complaints"] == before + 1
        assert h.stuck() == [] and h.stuck("parked") == []
        assert h.audit("delivery_resent", local_id)
        assert world.local.nomor_lapor(local_id) == h.hub_id(local_id)  # the tracking id written back once
        assert [r.state for r in h.outbox(local_id, LOCAL_HUB_REF)] == ["done"]


async def test_cli_refuses_wrong_ids_and_states_with_a_clear_error(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id, waiting = await _lost_create(h, {"lost_answer_rate": 1.0})
        done_id = h.outbox(
            next(c["id_aduan"] for c in world.local.complaints() if c["id_aduan"] != local_id), CREATE_COMPLAINT
        )[0].id
        wid = str(waiting["id"])
        cases = [
            (("deliveries", "link", "999999", "4000001"), "no delivery 999999"),
            (("deliveries", "resend", "999999"), "no delivery 999999"),
            (("deliveries", "retry", "999999"), "no delivery 999999"),
            (("deliveries", "drop", "999999", "--reason", "duplikat"), "no delivery 999999"),
            (("deliveries", "show", "999999"), "no delivery 999999"),
            (("deliveries", "retry", wid), "needs_confirmation"),  # retry is for parked ones
            (("deliveries", "resend", str(done_id)), "is done"),
            (("deliveries", "link", str(done_id), "4000001"), "is done"),
            (("deliveries", "drop", str(done_id), "--reason", "duplikat"), "is done"),
            (("deliveries", "drop", wid, "--reason", "  "), "--reason"),
            # the hub id of another complaint, already linked
            (
                (
                    "deliveries",
                    "link",
                    wid,
                    h.hub_id(next(c["id_aduan"] for c in world.local.complaints() if c["id_aduan"] != local_id)),
                ),
                "already linked",
            ),
        ]
        for args, expected in cases:
            result = _invoke(h, *args)
            assert result.exit_code == 1, (args, result.output)
            assert expected in result.output, (args, result.output)
            assert "Traceback" not in result.output, (args, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        # Nothing was changed by the refused commands.
        assert [d["id"] for d in h.stuck()] == [waiting["id"]]

        # A parked delivery whose outcome is unknown cannot be retried blindly either.
        with h.store.session() as s:
            s.get(OutboxRow, waiting["id"]).state = "parked"
        result = _invoke(h, "deliveries", "retry", wid)
        assert result.exit_code == 1 and "may already have been done" in result.output

        # And the right command works: drop with a reason.
        result = _invoke(h, "deliveries", "drop", wid, "--reason", "dibuat manual oleh operator")
        assert result.exit_code == 0, result.output
        assert h.outbox(local_id, CREATE_COMPLAINT)[0].state == "dropped"
        assert "dibuat manual oleh operator" in h.audit("delivery_dropped", local_id)[0].detail


# -- 2. a hub follow-up whose answer is lost ----------------------------------------------------------


async def test_lost_hub_follow_up_answer_is_resolved_by_lookup(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.complaints()[3]["id_aduan"]
        text = "Petugas sudah menambal jalan berlubang di lokasi."
        world.clock.advance(600)
        world.local.answer(local_id, text)
        await h.engine.intake(LOCAL)

        world.hub.faults.configure(lost_answer_rate=1.0)
        try:
            first = await h.engine.deliver(HUB)
        finally:
            world.hub.faults.configure(lost_answer_rate=0.0)
        assert first.retrying == 1
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [text]  # committed, answer lost
        (row,) = h.outbox(local_id, HUB_FOLLOW_UP)
        assert row.state == "pending" and row.outcome_unknown

        h.later()
        second = await h.engine.deliver(HUB)
        assert second.resolved_by_lookup == 1 and second.needs_confirmation == 0
        (row,) = h.outbox(local_id, HUB_FOLLOW_UP)
        assert row.state == "done" and not row.outcome_unknown
        follow_ups = h.hub_follow_ups(local_id, "api")
        assert h.store.event(row.event_id).hub_ref == str(follow_ups[0]["id"])

        for _ in range(2):
            h.later()
            await h.passes(1)
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [text], "exactly one copy at the hub"
        assert h.local_follow_ups(local_id, "eksternal") == [], "never echoed back to the local app"
        assert h.stuck() == [] and h.stuck("parked") == []


async def _follow_up_sent_answer_lost(h: Harness, complaint_index: int, text: str) -> int:
    """A local officer's follow-up, taken in and sent to the hub, which commits it and loses the
    answer; returns the local complaint's id."""
    local_id = h.world.local.complaints()[complaint_index]["id_aduan"]
    h.world.clock.advance(600)
    h.world.local.answer(local_id, text)
    await h.engine.intake(LOCAL)
    h.world.hub.faults.configure(lost_answer_rate=1.0)
    try:
        first = await h.engine.deliver(HUB)
    finally:
        h.world.hub.faults.configure(lost_answer_rate=0.0)
    assert first.retrying == 1
    assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [text]  # committed, answer lost
    return local_id


async def test_lost_hub_follow_up_answer_is_recognised_by_the_hub_poll_in_the_same_pass(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        text = "Saluran sudah dibersihkan oleh petugas kelurahan."
        local_id = await _follow_up_sent_answer_lost(h, 5, text)
        await h.engine.poll_hub(HUB)  # sees the follow-up the hub committed: our own, not a new one
        await h.engine.deliver(LOCAL)
        h.later()
        await h.passes(2)
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [text]
        assert h.local_follow_ups(local_id, "eksternal") == []
        assert [r.state for r in h.outbox(local_id, HUB_FOLLOW_UP)] == ["done"]
        assert h.stuck() == []


@pytest.mark.parametrize("poll_before_call", [1, 2, 3])
async def test_a_lost_follow_up_recognised_by_the_hub_poll_during_the_lookup_is_not_sent_again(
    world, tmp_path, store_url, poll_before_call
):
    """The store runs in a thread, so the hub poll's write (recognising our follow-up, whose
    answer was lost, under its hub id) can land between any two store calls of the delivery's
    lookup. Here it lands before the n-th store call made after the lookup read the hub's list.
    When the lookup took two calls ("our hub id is unknown", then "that hub id is an event's
    already"), the poll landing between them made the delivery send the follow-up again, and the
    first copy, no longer any event's, was echoed back to the local app (the chaos suite, on
    PostgreSQL)."""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        text = "Petugas sudah menambal jalan berlubang di lokasi."
        local_id = await _follow_up_sent_answer_lost(h, 3, text)

        # What the hub poll reads of the complaint now, and the poll that will record it.
        hub = h.engine.adapters[HUB]
        hub_ref, complaint_id = h.hub_id(local_id), h.complaint_id(local_id)
        state, listed = await hub.read_complaint(hub_ref), await hub.follow_ups(hub_ref)
        poll = HubPoll(
            h.store,
            hub,
            {LOCAL: h.engine.routes[LOCAL]},
            policy=poll_policy(h.config.instances[HUB].spec.polling),
            batch=10,
            rng=h.engine.rng,
        )
        lookup_done, calls = False, 0
        real_follow_ups, real_call = hub.follow_ups, h.engine.db.call

        async def follow_ups(ref: str):
            nonlocal lookup_done
            items = await real_follow_ups(ref)
            lookup_done = True
            return items

        async def call(function, /, *args, **kwargs):
            nonlocal calls
            if lookup_done:
                calls += 1
                if calls == poll_before_call:  # the hub poll's write lands here
                    await real_call(poll._record, complaint_id, state, listed, PollResult(), UNCHECKED)
            return await real_call(function, *args, **kwargs)

        hub.follow_ups = follow_ups  # type: ignore[method-assign]
        h.engine.db.call = call  # type: ignore[method-assign]
        try:
            h.later()
            second = await h.engine.deliver(HUB)
        finally:
            hub.follow_ups = real_follow_ups  # type: ignore[method-assign]
            h.engine.db.call = real_call  # type: ignore[method-assign]
        assert calls >= poll_before_call, "the poll's write landed during the lookup"
        assert second.resolved_by_lookup == 1
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [text], "exactly one copy at the hub"
        assert h.local_follow_ups(local_id, "eksternal") == [], "never echoed back to the local app"


async def test_a_hub_officer_follow_up_with_the_same_text_as_a_pending_local_one_is_not_taken_for_an_echo(
    world, tmp_path, store_url
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.complaints()[3]["id_aduan"]
        text = "Terima kasih, laporan Anda sudah kami terima dan sedang kami pelajari."  # a hub template
        world.clock.advance(600)
        world.local.answer(local_id, text)
        await h.engine.intake(LOCAL)
        world.hub.faults.configure(throttle_rate=1.0, retry_after_seconds=0)
        try:
            first = await h.engine.deliver(HUB)  # refused with 429: surely not at the hub
        finally:
            world.hub.faults.configure(throttle_rate=0.0)
        assert first.retrying == 1 and h.hub_follow_ups(local_id) == []
        world.clock.advance(60)
        h.hub_officer_answers(h.hub_id(local_id), text)  # an officer uses the same template
        await h.engine.poll_hub(HUB)
        h.later()
        await h.passes(2)
        assert [f["source"] for f in h.hub_follow_ups(local_id)] == ["officer", "api"], (
            "the local officer's follow-up reaches the hub"
        )
        assert [t["isi"] for t in h.local_follow_ups(local_id, "eksternal")] == [text], (
            "the hub officer's follow-up reaches the local app"
        )


# -- 3. local writes whose answer is lost -------------------------------------------------------------


async def test_lost_local_write_answers_are_resent_safely(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        # Two complaints (a complaint's deliveries go one after the other): one gets a
        # status change at the hub, the other a follow-up.
        status_id, follow_up_id = world.local.complaints()[2]["id_aduan"], world.local.complaints()[6]["id_aduan"]
        world.clock.advance(3600)
        h.hub_officer_sets_status(h.hub_id(status_id), "Terverifikasi")
        text = "Laporan Anda sedang kami koordinasikan dengan perangkat daerah terkait."
        h.hub_officer_answers(h.hub_id(follow_up_id), text)
        await h.engine.poll_hub(HUB)
        assert [r.kind for r in h.outbox(status_id) if r.state == "pending"] == [LOCAL_STATUS]
        assert [r.kind for r in h.outbox(follow_up_id) if r.state == "pending"] == [LOCAL_FOLLOW_UP]

        world.local.faults.configure(lost_answer_rate=1.0)
        try:
            first = await h.engine.deliver(LOCAL)
        finally:
            world.local.faults.configure(lost_answer_rate=0.0)
        assert first.retrying == 2 and first.delivered == 0
        assert world.local.faults.snapshot()["injected"]["lost_answers"] == 2
        # Both writes were committed in the app, their answers lost.
        assert [x["status_baru"] for x in h.local_history(status_id, "eksternal")] == ["terverifikasi"]
        assert [t["isi"] for t in h.local_follow_ups(follow_up_id, "eksternal")] == [text]
        owed = [r for i in (status_id, follow_up_id) for r in h.outbox(i) if r.state == "pending"]
        assert len(owed) == 2 and all(r.outcome_unknown for r in owed)

        for _ in range(3):
            h.later()
            await h.passes(1)
        assert [x["status_baru"] for x in h.local_history(status_id, "eksternal")] == ["terverifikasi"], (
            "exactly one copy"
        )
        assert h.local_complaint(status_id)["status"] == "terverifikasi"
        assert [t["isi"] for t in h.local_follow_ups(follow_up_id, "eksternal")] == [text], "exactly one copy"
        (status_row,) = [
            r for r in h.outbox(status_id, LOCAL_STATUS) if h.store.event(r.event_id).raw_status_name == "Terverifikasi"
        ]
        (follow_up_row,) = h.outbox(follow_up_id, LOCAL_FOLLOW_UP)
        # The status may be found already written (the app shows it): done or skipped, never twice.
        assert status_row.state in ("done", "skipped") and follow_up_row.state == "done"
        written = h.local_follow_ups(follow_up_id, "eksternal")[0]
        assert h.store.event(follow_up_row.event_id).local_ref == str(written["id_tanggapan"])
        assert h.stuck() == [] and h.stuck("parked") == []
        # Nothing the gateway wrote to the local app went back up to the hub.
        assert h.hub_follow_ups(follow_up_id, "api") == [] and h.hub_follow_ups(status_id, "api") == []


async def test_idempotency_is_per_write_a_lost_status_is_resent_a_lost_follow_up_waits_for_an_operator(
    world, tmp_path, store_url, monkeypatch
):
    """An app that applies a repeated status write once but not a repeated follow-up: after lost
    answers, the status is sent again (and lands once), the follow-up goes to an operator."""
    monkeypatch.setattr(LaporHendiApp, "idempotent_writes", frozenset({Write.STATUS}))
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        status_id, follow_up_id = world.local.complaints()[2]["id_aduan"], world.local.complaints()[6]["id_aduan"]
        world.clock.advance(3600)
        h.hub_officer_sets_status(h.hub_id(status_id), "Terverifikasi")
        text = "Laporan Anda sedang kami koordinasikan dengan perangkat daerah terkait."
        h.hub_officer_answers(h.hub_id(follow_up_id), text)
        await h.engine.poll_hub(HUB)

        world.local.faults.configure(lost_answer_rate=1.0)
        try:
            first = await h.engine.deliver(LOCAL)
        finally:
            world.local.faults.configure(lost_answer_rate=0.0)
        assert first.retrying == 2 and world.local.faults.snapshot()["injected"]["lost_answers"] == 2

        h.later()
        second = await h.engine.deliver(LOCAL)
        assert second.needs_confirmation == 1
        (status_row,) = [
            r for r in h.outbox(status_id, LOCAL_STATUS) if h.store.event(r.event_id).raw_status_name == "Terverifikasi"
        ]
        assert status_row.state in ("done", "skipped"), "a status write of unknown outcome is resent"
        assert [x["status_baru"] for x in h.local_history(status_id, "eksternal")] == ["terverifikasi"]
        (follow_up_row,) = h.outbox(follow_up_id, LOCAL_FOLLOW_UP)
        assert follow_up_row.state == "needs_confirmation", "a follow-up write of unknown outcome is not resent"
        (waiting,) = h.stuck()
        assert waiting["id"] == follow_up_row.id
        assert "does not apply a repeated follow_up write once" in waiting["last_error"]
        assert h.store.event(follow_up_row.event_id).gateway_ref in waiting["last_error"]
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert [t["isi"] for t in h.local_follow_ups(follow_up_id, "eksternal")] == [text], "never written twice"
        assert h.outbox(follow_up_id, LOCAL_FOLLOW_UP)[0].state == "needs_confirmation"


# -- 4. a daemon that died mid-call -------------------------------------------------------------------


async def _died_after_mark_sending(h: Harness) -> tuple[int, OutboxRow]:
    """A new complaint taken in; a daemon claimed its create (and the others owed), marked it
    as sending, and died: its lease has run out."""
    local_id = h.world.local.submit_complaint(kategori="Sampah", lampiran=0)
    await h.engine.intake(LOCAL)
    claimed = h.store.claim_due(HUB, "dead-daemon", timedelta(seconds=60))
    (victim,) = [r for r in claimed if r.complaint_id == h.complaint_id(local_id)]
    assert h.store.mark_sending(victim.id, token=victim.claim_token)
    h.later(600)  # past its lease, and past the time its call could still have been under way
    return local_id, victim


@pytest.mark.parametrize("hub_got_it", [True, False], ids=["hub-committed", "never-arrived"])
async def test_daemon_died_after_mark_sending_needs_confirmation_not_a_second_create(
    world, tmp_path, store_url, hub_got_it
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id, victim = await _died_after_mark_sending(h)
        if hub_got_it:  # the dead daemon's request reached the hub before it died
            with world.hub.lock:
                world.hub.world.create(
                    {
                        "title": "Sampah menumpuk",
                        "content": "isi",
                        "user_id": 58231,
                        "category_id": 43,
                        "classification_id": 1,
                        "location_id": 11,
                        "disposition_id": 100234,
                        "attachments": "[]",
                        "tags_raw": f"#lapor_gateway {hashtag(h.gateway_ref(local_id))}",
                    },
                    world.clock.now(),
                    user_id=world.hub.user_id,
                )
        before = world.hub.counts()["complaints"]

        result = await h.engine.deliver(HUB)
        assert result.needs_confirmation == 1 and result.delivered == 0
        assert world.hub.counts()["complaints"] == before, "a create of unknown outcome is never repeated blindly"
        (waiting,) = h.stuck()
        assert waiting["id"] == victim.id and waiting["outcome_unknown"]
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert world.hub.counts()["complaints"] == before and len(h.stuck()) == 1

        if hub_got_it:
            (hub_c,) = h.at_hub(local_id)
            link_delivery(h.store, victim.id, str(hub_c["id"]))
        else:
            assert h.at_hub(local_id) == []
            resend_delivery(h.store, victim.id)
        await h.passes(2)
        assert len(h.at_hub(local_id)) == 1 and world_is_in_sync(h)
        assert h.hub_id(local_id) == str(h.at_hub(local_id)[0]["id"])
        assert h.stuck() == []


async def test_daemon_cancelled_during_the_create_call_is_not_repeated_by_the_next_daemon(world, tmp_path, store_url):
    """A real death mid-call: the engine's task is cancelled while its create is at the hub
    (which is slow to answer). A second daemon on the same store waits out the first one's
    lease, then asks for confirmation instead of creating again; the operator looks at the
    hub and links or resends. (The simulated hub drops a request whose client went away, so
    it is not there; either way it ends at the hub exactly once.)"""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.submit_complaint(kategori="Sampah", lampiran=0)
        await h.engine.intake(LOCAL)
        before = world.hub.counts()
        world.hub.faults.configure(latency_ms=(500, 500))
        try:
            task = asyncio.ensure_future(h.engine.deliver(HUB))
            for _ in range(500):  # until the create has reached the hub
                await asyncio.sleep(0.01)
                if world.hub.counts()["requests"] > before["requests"]:
                    break
            (row,) = h.outbox(local_id, CREATE_COMPLAINT)
            assert row.sending_at is not None and row.claimed_by == "daemon-1"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.7)  # past the hub's latency: it would have answered by now
        finally:
            world.hub.faults.configure(latency_ms=(0, 0))
        (row,) = h.outbox(local_id, CREATE_COMPLAINT)
        assert row.state == "pending" and row.sending_at is not None, "the dead daemon left its mark"
        committed = world.hub.counts()["complaints"] - before["complaints"]
        assert committed in (0, 1)

        async with Engine(h.config, h.store, owner="daemon-2", seed=8) as second:
            result = await second.deliver(HUB)
            assert result.needs_confirmation == 0 and result.delivered == 0, "the first daemon's lease still holds"
            h.later(h.config.settings.delivery.lease_seconds + 1)
            result = await second.deliver(HUB)
            assert result.needs_confirmation == 1 and result.delivered == 0
            for _ in range(2):
                h.later()
                await second.run_pass()
            assert world.hub.counts()["complaints"] == before["complaints"] + committed
            (waiting,) = h.stuck()
            assert waiting["complaint_id"] == h.complaint_id(local_id)
            assert len(h.at_hub(local_id)) == committed
            if committed:
                link_delivery(h.store, waiting["id"], str(h.at_hub(local_id)[0]["id"]))
            else:
                resend_delivery(h.store, waiting["id"])
            await second.run_pass()
        assert len(h.at_hub(local_id)) == 1 and world_is_in_sync(h) and h.stuck() == []


# -- 5. the circuit breaker ------------------------------------------------------------------------


def _fast_breaker(config: GatewayConfig) -> None:
    hub = config.instances[HUB].spec
    hub.breaker.reset_seconds = 0.2
    hub.http_retries.attempts = 1  # one request per call: failures are counted one by one


class Monotonic:
    """The breaker's clock, moved by the test: a pass takes longer than 0.2 s of real time,
    and the breaker must stay open for exactly as long as the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_stops_calls_keeps_local_jobs_going_and_closes_after_a_probe(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url, tweak=_fast_breaker) as h:
        await _started(h)
        breaker = h.engine.adapters[HUB].http.breaker
        breaker.clock = monotonic = Monotonic()
        threshold = h.config.instances[HUB].spec.breaker.failure_threshold
        roles = {n: i.role for n, i in h.config.instances.items()}

        world.hub.faults.configure(error_rate=1.0)
        await h.passes(1)  # the hub poll fails on every complaint
        assert breaker.state == "open" and breaker.failures >= threshold
        assert world.hub.faults.snapshot()["injected"]["errors"] >= threshold
        report = {r["name"]: r for r in status_report(h.store, roles)["instances"]}
        assert report[HUB]["breaker"]["state"] == "open"
        assert "answered HTTP" in report[HUB]["breaker"]["last_error"]

        # While it is open: no request reaches the hub, and the local app's jobs go on.
        requests = world.hub.counts()["requests"]
        local_requests = world.local.counts()["requests"]
        new_id = world.local.submit_complaint(kategori="Lampu PJU Mati", lampiran=0)
        results = await h.engine.run_pass()
        assert results[f"{LOCAL}:intake"].complaints_new == 1
        assert results[f"{LOCAL}:deliver"] is not None
        assert results[f"{HUB}:deliver"].retrying == 1 and results[f"{HUB}:deliver"].delivered == 0
        h.later()
        await h.passes(2)
        assert world.hub.counts()["requests"] == requests, "an open breaker makes no calls"
        assert world.local.counts()["requests"] > local_requests
        (row,) = h.outbox(new_id, CREATE_COMPLAINT)
        assert row.state == "pending" and row.attempts == 0 and not row.outcome_unknown, (
            "a call the breaker refused is not an attempt"
        )
        report = {r["name"]: r for r in status_report(h.store, roles)["instances"]}
        assert report[HUB]["breaker"]["state"] == "open"
        assert report[LOCAL]["complaints_seen"] == len(world.local.complaints())
        assert report[LOCAL]["jobs"]["intake"]["last_error"] is None

        # The errors stop; after the configured reset time one probe closes it.
        world.hub.faults.configure(error_rate=0.0)
        monotonic.now += h.config.instances[HUB].spec.breaker.reset_seconds
        h.later()
        await h.passes(1)
        assert breaker.state == "closed"
        report = {r["name"]: r for r in status_report(h.store, roles)["instances"]}
        assert report[HUB]["breaker"]["state"] == "closed"
        assert len(h.at_hub(new_id)) == 1 and world_is_in_sync(h)
        assert h.outbox(new_id, CREATE_COMPLAINT)[0].state == "done"
        assert h.stuck() == [] and h.stuck("parked") == []


# -- 6. permanent errors are parked with their reason ------------------------------------------------


async def test_unmapped_category_is_parked_with_its_reason_and_later_deliveries_wait_behind_it(
    world, tmp_path, store_url
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        local_id = world.local.submit_complaint(kategori="Kategori Baru", lampiran=0)
        await h.passes(1)
        (create,) = h.outbox(local_id, CREATE_COMPLAINT)
        assert create.state == "parked" and not create.outcome_unknown
        assert "MappingError" not in create.last_error  # a sentence for an operator, not a class name
        assert "'categories'" in create.last_error and "Kategori Baru" in create.last_error
        assert LOCAL in create.last_error
        assert h.audit("delivery_parked", local_id)
        # One complaint's failure stops no other.
        others = [c["id_aduan"] for c in world.local.complaints() if c["id_aduan"] != local_id]
        assert all(len(h.at_hub(i)) == 1 for i in others)

        # Later deliveries of that complaint wait behind it, in order.
        world.clock.advance(600)
        world.local.answer(local_id, "Laporan sedang kami pelajari.")
        world.clock.advance(60)
        world.local.answer(local_id, "Petugas dijadwalkan datang hari Kamis.")
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert [(r.kind, r.state) for r in h.outbox(local_id)] == [
            (CREATE_COMPLAINT, "parked"),
            (HUB_FOLLOW_UP, "pending"),
            (HUB_FOLLOW_UP, "pending"),
        ]
        assert h.at_hub(local_id) == []
        (parked,) = h.stuck("parked")
        assert parked["id"] == create.id and "'categories'" in parked["last_error"]

        # The admin adds the mapping; the operator retries; it goes out, and the rest follow in order.
        h.config.instances[LOCAL].spec.categories["Kategori Baru"] = "lainnya"
        retry_delivery(h.store, create.id)
        await h.passes(1)
        (hub_c,) = h.at_hub(local_id)
        assert hub_c["category_id"] == "49"
        assert [f["content"] for f in h.hub_follow_ups(local_id, "api")] == [
            "Laporan sedang kami pelajari.",
            "Petugas dijadwalkan datang hari Kamis.",
        ]
        assert [(r.kind, r.state) for r in h.outbox(local_id) if r.target == HUB] == [
            (CREATE_COMPLAINT, "done"),
            (HUB_FOLLOW_UP, "done"),
            (HUB_FOLLOW_UP, "done"),
        ]
        assert h.stuck("parked") == [] and h.audit("delivery_retried", local_id)


async def test_unmapped_hub_status_is_parked_then_delivered_once_the_mapping_is_added(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.complaints()[1]["id_aduan"]
        world.clock.advance(3600)
        h.hub_officer_sets_status(h.hub_id(local_id), "Koordinasi")  # seen in the wild; not in the shipped YAML
        world.clock.advance(60)
        h.hub_officer_answers(h.hub_id(local_id), "Laporan sedang dikoordinasikan dengan OPD terkait.")
        await h.passes(2)
        (parked,) = h.stuck("parked")
        assert parked["kind"] == LOCAL_STATUS and parked["complaint_id"] == h.complaint_id(local_id)
        assert "'statuses'" in parked["last_error"] and "Koordinasi" in parked["last_error"]
        # The follow-up after it waits in order.
        assert [r.state for r in h.outbox(local_id, LOCAL_FOLLOW_UP)] == ["pending"]
        assert h.local_follow_ups(local_id, "eksternal") == []

        h.config.instances[HUB].spec.statuses["Koordinasi"] = Status.IN_PROGRESS
        retry_delivery(h.store, parked["id"])
        await h.passes(2)
        assert h.stuck("parked") == []
        assert h.local_complaint(local_id)["status"] == "dalam proses"
        assert [t["isi"] for t in h.local_follow_ups(local_id, "eksternal")] == [
            "Laporan sedang dikoordinasikan dengan OPD terkait."
        ]


# -- 7. conflict rules per route ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, local_later, final",
    [
        ("hub_wins", True, "terverifikasi"),
        ("local_wins", True, "dalam proses"),
        ("latest_wins", True, "dalam proses"),
        ("latest_wins", False, "terverifikasi"),
    ],
)
async def test_status_conflict_rules(world, tmp_path, store_url, rule, local_later, final):
    """Both sides changed the status; the route's explicit rule (not the default
    forward_only, see below) decides, even when that moves the local status back."""
    _quiet(world)

    def tweak(config: GatewayConfig) -> None:
        config.instances[LOCAL].spec.route.conflict = rule

    async with harness(world, tmp_path, store_url, tweak=tweak) as h:
        await _started(h)
        local_id = world.local.complaints()[4]["id_aduan"]
        hub_id = h.hub_id(local_id)
        world.clock.advance(3600)
        if local_later:
            h.hub_officer_sets_status(hub_id, "Terverifikasi")
            world.clock.advance(600)
            h.local_officer_sets_status(local_id, "dalam proses")
        else:
            h.local_officer_sets_status(local_id, "dalam proses")
            world.clock.advance(600)
            h.hub_officer_sets_status(hub_id, "Terverifikasi")
        await h.passes(3)

        assert h.local_complaint(local_id)["status"] == final
        written = [x["status_baru"] for x in h.local_history(local_id, "eksternal")]
        assert written == (["terverifikasi"] if final == "terverifikasi" else [])
        (conflict,) = h.audit("status_conflict", local_id)
        assert rule in conflict.detail and "Terverifikasi" in conflict.detail and "dalam proses" in conflict.detail
        assert ("kept the local status" in conflict.detail) == (final == "dalam proses")
        (status_row,) = [
            r for r in h.outbox(local_id, LOCAL_STATUS) if h.store.event(r.event_id).raw_status_name == "Terverifikasi"
        ]
        assert status_row.state == ("done" if final == "terverifikasi" else "skipped")
        # The explicit rule decided: forward_only's check did not run, and no note went instead.
        assert h.audit("status_backwards") == []
        assert h.local_follow_ups(local_id, "eksternal") == []
        # Other complaints saw no conflict.
        assert len(h.audit("status_conflict")) == 1


@pytest.mark.parametrize("local_later", [True, False], ids=["local-later", "hub-later"])
async def test_forward_only_never_moves_the_local_status_back_and_says_what_the_hub_said(
    world, tmp_path, store_url, local_later
):
    """The default rule (route.conflict: forward_only, the shipped config's): a hub status
    that would move the citizen's status back in status_order is not written, whichever side
    changed last; the skip is in the audit trail, and since the hub's status means something
    else than the local one, its note reaches the citizen as a follow-up, once."""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        assert h.config.instances[LOCAL].spec.route.conflict == "forward_only"
        await _started(h)
        local_id = world.local.complaints()[4]["id_aduan"]
        hub_id = h.hub_id(local_id)
        world.clock.advance(3600)
        if local_later:
            h.hub_officer_sets_status(hub_id, "Terverifikasi")
            world.clock.advance(600)
            h.local_officer_sets_status(local_id, "dalam proses")
        else:
            h.local_officer_sets_status(local_id, "dalam proses")
            world.clock.advance(600)
            h.hub_officer_sets_status(hub_id, "Terverifikasi")
        await h.passes(3)

        assert h.local_complaint(local_id)["status"] == "dalam proses"
        assert h.local_history(local_id, "eksternal") == [], "no status written backwards"
        (backwards,) = h.audit("status_backwards", local_id)
        assert "Terverifikasi" in backwards.detail and "dalam proses" in backwards.detail
        assert "forward_only" in backwards.detail
        assert h.audit("status_conflict") == [], "forward_only is no conflict rule: nothing to arbitrate"
        (status_row,) = [
            r for r in h.outbox(local_id, LOCAL_STATUS) if h.store.event(r.event_id).raw_status_name == "Terverifikasi"
        ]
        assert status_row.state == "done"
        (note,) = h.local_follow_ups(local_id, "eksternal")
        assert note["isi"].splitlines()[0] == "Status di LAPOR!: Terverifikasi"
        assert h.store.event(status_row.event_id).local_ref == str(note["id_tanggapan"])
        # Nothing went back up to the hub, and no other complaint moved back.
        assert h.hub_follow_ups(local_id, "api") == []
        assert len(h.audit("status_backwards")) == 1
        # Later passes repeat nothing.
        for _ in range(2):
            h.later()
            await h.passes(1)
        assert len(h.local_follow_ups(local_id, "eksternal")) == 1 and h.local_history(local_id, "eksternal") == []


async def test_no_conflict_when_only_the_hub_changed(world, tmp_path, store_url):
    _quiet(world)

    def tweak(config: GatewayConfig) -> None:
        config.instances[LOCAL].spec.route.conflict = "local_wins"

    async with harness(world, tmp_path, store_url, tweak=tweak) as h:
        await _started(h)
        local_id = world.local.complaints()[4]["id_aduan"]
        world.clock.advance(3600)
        h.hub_officer_sets_status(h.hub_id(local_id), "Terverifikasi")
        await h.passes(2)
        assert h.local_complaint(local_id)["status"] == "terverifikasi"
        assert h.audit("status_conflict") == []


# -- 8. attachments the hub would refuse -----------------------------------------------------------


@pytest.mark.parametrize("limit", ["max_bytes", "allowed_types"])
async def test_refused_attachments_are_quarantined_with_their_reason_and_the_complaint_goes_on(
    world, tmp_path, store_url, limit
):
    _quiet(world)

    def tweak(config: GatewayConfig) -> None:
        if limit == "max_bytes":
            config.instances[HUB].spec.attachments.max_bytes = 10
        else:
            config.instances[HUB].spec.attachments.allowed_types = ["application/pdf"]

    async with harness(world, tmp_path, store_url, tweak=tweak) as h:
        local_id = world.local.submit_complaint(kategori="Banjir dan Drainase", lampiran=2)
        photos = world.local.complaints()[-1]["lampiran"]
        assert len(photos) == 2 and all(p["tipe_mime"] == "image/png" for p in photos)
        uploads_before = len(world.hub.documents())
        await h.passes(2)

        (hub_c,) = h.at_hub(local_id)
        assert hub_c["attachments"] == [] and len(world.hub.documents()) == uploads_before
        quarantined = {q["record_ref"]: q for q in list_quarantine(h.store) if q["stream"] == "attachments"}
        for photo in photos:
            entry = quarantined[str(photo["id_lampiran"])]
            assert entry["instance"] == LOCAL
            if limit == "max_bytes":
                assert f"{photo['ukuran_byte']} bytes is over the hub's limit of 10" == entry["reason"]
            else:
                assert "type image/png is not accepted" in entry["reason"]
        # Nothing silently dropped: every local attachment of every complaint is at the hub or refused with a reason.
        with h.store.session() as s:
            rows = s.exec(select(AttachmentRow)).all()
        local_attachments = sum(len(c["lampiran"]) for c in world.local.complaints())
        assert len(rows) == local_attachments
        assert all(r.refused_reason and r.hub_doc_id is None for r in rows)
        assert len(quarantined) == local_attachments
        assert len(h.audit("attachment_refused")) == local_attachments
        assert world_is_in_sync(h) and h.stuck("parked") == []


async def test_allowed_attachments_reach_the_hub(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        local_id = world.local.submit_complaint(kategori="Banjir dan Drainase", lampiran=2)
        await h.passes(1)
        (hub_c,) = h.at_hub(local_id)
        assert len(hub_c["attachments"]) == 2
        assert [q for q in list_quarantine(h.store) if q["stream"] == "attachments"] == []


async def test_an_upload_failing_before_the_create_does_not_make_the_create_of_unknown_outcome(
    world, tmp_path, store_url
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = world.local.submit_complaint(kategori="Sampah", lampiran=1)
        await h.engine.intake(LOCAL)
        before = world.hub.counts()["complaints"]
        world.hub.faults.configure(reset_rate=1.0)
        try:
            first = await h.engine.deliver(HUB)
        finally:
            world.hub.faults.configure(reset_rate=0.0)
        assert first.retrying == 1 and world.hub.counts()["complaints"] == before
        (row,) = h.outbox(local_id, CREATE_COMPLAINT)
        assert "complaint/file" in row.last_error and row.sending_at is None
        h.later()
        second = await h.engine.deliver(HUB)
        assert second.needs_confirmation == 0 and second.delivered == 1
        (hub_c,) = h.at_hub(local_id)
        assert len(hub_c["attachments"]) == 1


# -- 9. malformed local records --------------------------------------------------------------------


class FieldDrift:
    """The simulator's drift choice, made to spoil a field (missing, or a time of the wrong
    type) rather than serve an unknown status, which is a different matter (see below)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, options):
        fields = [o for o in options if o != "status"]
        self.n += 1
        return fields[self.n % len(fields)]


async def test_drifted_records_are_quarantined_then_taken_in_when_they_read_fine(
    world, tmp_path, store_url, monkeypatch
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        world.clock.advance(600)
        new_ids = [world.local.submit_complaint(kategori="Sampah", lampiran=0) for _ in range(4)]
        world.clock.advance(60)
        world.local.answer(world.local.complaints()[0]["id_aduan"], "Sudah kami teruskan ke kelurahan.")

        monkeypatch.setattr(world.local.faults, "choice", FieldDrift())
        world.local.faults.configure(drift_rate=1.0)
        try:
            result = await h.engine.intake(LOCAL)
        finally:
            world.local.faults.configure(drift_rate=0.0)
        assert result is not None, "a malformed record never fails the whole job"
        assert world.local.faults.snapshot()["injected"]["drifted"] > 0
        quarantined = list_quarantine(h.store)
        assert {q["stream"] for q in quarantined} == {"complaints", "status_changes", "follow_ups"}
        assert {q["record_ref"] for q in quarantined if q["stream"] == "complaints"} >= {str(i) for i in new_ids}
        for q in quarantined:
            # The reason names the field, never the record's content.
            assert q["instance"] == LOCAL and q["reason"].startswith("field '"), q
        for c in world.local.complaints():
            assert all(c["judul"] not in q["reason"] and c["isi"] not in q["reason"] for q in quarantined)
        assert all(h.store.complaint_id_for(LOCAL, str(i)) is None for i in new_ids)

        await h.passes(2)
        assert list_quarantine(h.store) == [], "each entry is resolved once its record reads fine"
        assert all(q["resolved_at"] for q in list_quarantine(h.store, include_resolved=True))
        assert all(len(h.at_hub(i)) == 1 for i in new_ids) and world_is_in_sync(h)
        for i in new_ids:
            row = h.store.complaint(h.complaint_id(i))
            assert (row.title, row.local_status_code) == (h.local_complaint(i)["judul"], "belum terverifikasi")
        answered = world.local.complaints()[0]["id_aduan"]
        assert [f["content"] for f in h.hub_follow_ups(answered, "api")] == ["Sudah kami teruskan ke kelurahan."]


async def test_a_complaint_served_once_with_an_unknown_status_is_corrected_when_read_fine(
    world, tmp_path, store_url, monkeypatch
):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        world.clock.advance(600)
        new_id = world.local.submit_complaint(kategori="Sampah", lampiran=0)
        monkeypatch.setattr(
            world.local.faults, "choice", lambda options: "status" if "status" in options else options[-1]
        )
        world.local.faults.configure(drift_rate=1.0)
        try:
            await h.engine.intake(LOCAL)
        finally:
            world.local.faults.configure(drift_rate=0.0)
        assert {q["stream"] for q in list_quarantine(h.store)} >= {"statuses"}

        await h.passes(2)
        row = h.store.complaint(h.complaint_id(new_id))
        assert (row.local_status_code, row.local_status) == ("belum terverifikasi", "unverified")
        assert list_quarantine(h.store) == [], "every record read fine again has no open quarantine entry"


async def test_malformed_record_in_the_middle_of_a_page_is_quarantined_and_the_rest_goes_on(world, tmp_path, store_url):
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        world.clock.advance(600)
        ids = []
        for _ in range(3):
            ids.append(world.local.submit_complaint(kategori="Jalan Rusak", lampiran=0))
            world.clock.advance(60)
        bad = ids[1]
        with world.local.lock:
            real_title = world.local.world._aduan[bad].pop("judul")
        await h.passes(1)

        (q,) = list_quarantine(h.store)
        assert (q["instance"], q["stream"], q["record_ref"]) == (LOCAL, "complaints", str(bad))
        assert "judul" in q["reason"] and real_title not in q["reason"]
        assert h.store.complaint_id_for(LOCAL, str(bad)) is None
        assert all(len(h.at_hub(i)) == 1 for i in (ids[0], ids[2])), "the rest of the page went on"

        with world.local.lock:
            world.local.world._aduan[bad]["judul"] = real_title
        await h.passes(1)
        assert list_quarantine(h.store) == []
        (resolved,) = list_quarantine(h.store, include_resolved=True)
        assert resolved["resolved_at"] is not None
        assert len(h.at_hub(bad)) == 1 and world_is_in_sync(h)


# -- 10. row claims ------------------------------------------------------------------------------


def _owe_creates(store: Store, n: int) -> list[int]:
    """``n`` complaints taken in, each owing a create to the hub; their outbox ids."""
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    for i in range(n):
        store.take_in_complaint(
            LOCAL,
            HUB,
            Complaint(
                ref=str(100 + i),
                title=f"Aduan {i}",
                body="isi",
                created_at=now,
                updated_at=now,
                status=RawStatus("belum terverifikasi"),
            ),
            None,
        )
    with store.session() as s:
        return list(s.exec(select(OutboxRow.id).order_by(OutboxRow.id)).all())


def test_claims_hold_for_their_lease_and_expire(store_url):
    clock = JumpClock()
    first, second = Store(store_url, clock=clock), Store(store_url, clock=clock)
    try:
        owed = _owe_creates(first, 6)
        lease = timedelta(seconds=60)
        a = first.claim_due(HUB, "daemon-a", lease, limit=4)
        assert [r.id for r in a] == owed[:4] and all(r.claimed_by == "daemon-a" for r in a)
        b = second.claim_due(HUB, "daemon-b", lease)
        assert [r.id for r in b] == owed[4:], "rows claimed by another owner are not handed out"
        assert second.claim_due(HUB, "daemon-b", lease) == []
        assert first.claim_due(HUB, "daemon-a", lease) == []
        clock.advance(30)
        assert second.claim_due(HUB, "daemon-b", lease) == [], "the lease still holds"
        # daemon-a finishes one; the others it held die with it.
        first.finish_delivery(a[0].id, link=(a[0].complaint_id, HUB, "4000001"), token=a[0].claim_token)
        clock.advance(31)
        again = second.claim_due(HUB, "daemon-b", lease)
        assert sorted(r.id for r in again) == sorted(owed[1:]), "expired leases are claimable"
        assert all(r.claimed_by == "daemon-b" for r in again)
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_claim_due_skips_rows_locked_by_another_session_on_postgres(store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are a PostgreSQL matter; SQLite has one writer")
    clock = JumpClock()
    first, second = Store(store_url, clock=clock), Store(store_url, clock=clock)
    try:
        owed = _owe_creates(first, 20)
        # Another daemon is in the middle of its claim transaction, holding rows 1-5.
        conn = first.engine.connect()
        tx = conn.begin()
        conn.execute(text("SELECT id FROM outbox WHERE id = ANY(:ids) FOR UPDATE"), {"ids": owed[:5]})
        got: list[OutboxRow] = []
        claimer = threading.Thread(target=lambda: got.extend(second.claim_due(HUB, "daemon-b", timedelta(seconds=60))))
        started = time.monotonic()
        claimer.start()
        claimer.join(timeout=10)
        waited = claimer.is_alive()
        tx.rollback()  # frees a claim that waited for the lock, so that the test cannot hang
        conn.close()
        claimer.join(timeout=10)
        assert not waited and time.monotonic() - started < 10, "claim_due waited for a lock instead of skipping"
        assert [r.id for r in got] == owed[5:]
        assert [r.id for r in first.claim_due(HUB, "daemon-a", timedelta(seconds=60))] == owed[:5]

        # Two daemons claiming at the same moment never get the same row.
        clock.advance(120)
        barrier = threading.Barrier(2)
        results: dict[str, list[int]] = {}

        def claim(store: Store, owner: str) -> None:
            barrier.wait()
            results[owner] = [r.id for r in store.claim_due(HUB, owner, timedelta(seconds=60), limit=12)]

        threads = [threading.Thread(target=claim, args=(st, name)) for st, name in ((first, "a"), (second, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not set(results["a"]) & set(results["b"])
        assert sorted(results["a"] + results["b"]) == owed
    finally:
        first.close()
        second.close()


def test_link_trims_the_peer_id_and_refuses_a_blank_one(store_url):
    """Found by the operator review: `gateway deliveries link ID ' '` (or an id pasted with a line
    break) marked the create done, linked to a hub id no read can find; the dashboard's form
    trimmed and refused it, the CLI did not."""
    store = Store(store_url)
    try:
        first, second = _owe_creates(store, 2)
        with store.session() as s:
            for outbox_id in (first, second):
                s.get(OutboxRow, outbox_id).state = "needs_confirmation"
        for blank in ("", "  ", "\n"):
            with pytest.raises(OperatorError, match="blank"):
                link_delivery(store, first, blank)
        with store.session() as s:
            assert s.get(OutboxRow, first).state == "needs_confirmation"
        link_delivery(store, second, " 4000123\n")
        assert store.complaint_id_for(HUB, "4000123") is not None
    finally:
        store.close()


async def test_a_stopping_daemon_claims_no_new_delivery(world, tmp_path, store_url):
    """Found by the operator review: after SIGTERM ('daemon stopping') a delivery run went on
    claiming due rows, creating complaints at the hub for the whole 30 s of the stop, until the
    stop cancelled it mid-call and left a create of unknown outcome. A stopping engine's runs
    finish the calls they started and take no more."""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = h.world.local.submit_complaint(kategori="Jalan Rusak", lampiran=0, anonim=False)
        await h.engine.intake(LOCAL)

        h.engine.stopping = True
        stopped = await h.engine.deliver(HUB)
        assert stopped is not None and stopped.delivered == 0
        (row,) = h.outbox(local_id, CREATE_COMPLAINT)
        assert (row.state, row.attempts, row.claimed_by) == ("pending", 0, None)
        assert h.at_hub(local_id) == []

        h.engine.stopping = False  # started again: the create goes out once
        assert (await h.engine.deliver(HUB)).delivered == 1
        assert len(h.at_hub(local_id)) == 1


async def test_a_follow_up_the_hub_took_whose_answer_the_store_refuses_is_parked_as_maybe_done(
    world, tmp_path, store_url
):
    """The hub added the follow-up; the store then refused to keep what the answer brought. The
    delivery is parked for an operator, as of unknown outcome: parked as never sent, a resend made
    a second copy at the hub."""
    _quiet(world)
    async with harness(world, tmp_path, store_url) as h:
        await _started(h)
        local_id = h.world.local.complaints()[2]["id_aduan"]
        h.world.clock.advance(600)
        h.world.local.answer(local_id, "Lampu sudah diganti petugas.")
        await h.engine.intake(LOCAL)
        real = h.store.set_event_ref

        def refuse(*args, **kwargs):
            raise StoreRefusedError("set_event_ref", ValueError("a value the store cannot hold"))

        h.store.set_event_ref = refuse  # type: ignore[method-assign]
        try:
            result = await h.engine.deliver(HUB)
        finally:
            h.store.set_event_ref = real  # type: ignore[method-assign]
        assert result.parked == 1
        assert len(h.hub_follow_ups(local_id, "api")) == 1  # the hub has it
        with h.store.session() as s:
            [row] = s.exec(select(OutboxRow).where(OutboxRow.kind == HUB_FOLLOW_UP, OutboxRow.state == "parked")).all()
        assert row.outcome_unknown
