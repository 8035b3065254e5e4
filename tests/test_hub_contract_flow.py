"""What the real hub contract asks of the engine, over real HTTP to both simulators with a real
store (SQLite, and PostgreSQL when configured): statuses never move back, the hub's reasons
reach the citizen, confidentiality and evidence files travel both ways, the route decides which
complaints go to the hub, imported pairs of ids are linked instead of created, the current status
goes on when the history cannot be read, and a 2xx that proves nothing is never taken as done.

The simulated people do not act on their own here (no tick): each test makes the one change it is
about, on the simulators' clock, and runs passes of the engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from image_kit import pixels, png
from sqlmodel import select
from typer.testing import CliRunner

import gateway.cli
from gateway import PermanentPeerError
from gateway._config import GatewayConfig
from gateway._engine import Engine
from gateway._store import CREATE_COMPLAINT, HUB_FOLLOW_UP, LOCAL_STATUS, Store
from gateway._store._operator import retry_delivery
from gateway._store._tables import AuditRow, OutboxRow
from gateway._timezones import utcnow

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"


class JumpClock:
    """The store's clock: real time plus an offset the passes move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class Flow:
    world: Any
    config: GatewayConfig
    store: Store
    engine: Engine
    store_clock: JumpClock

    async def passes(self, n: int = 2) -> None:
        """Passes an hour apart on the store's clock (past any backoff); a minute on the peers'."""
        for _ in range(n):
            self.world.clock.advance(60)
            self.store_clock.offset += timedelta(hours=1)
            await self.engine.run_pass()

    def complaint_id(self, local_id: int) -> int:
        found = self.store.complaint_id_for(LOCAL, str(local_id))
        assert found is not None
        return found

    def hub_id(self, local_id: int) -> int:
        ref = self.store.external_ref(self.complaint_id(local_id), HUB)
        assert ref is not None, "not created at the hub"
        return int(ref)

    def outbox(self, local_id: int, kind: str) -> list[OutboxRow]:
        with self.store.session() as s:
            return list(
                s.exec(
                    select(OutboxRow)
                    .where(OutboxRow.complaint_id == self.complaint_id(local_id), OutboxRow.kind == kind)
                    .order_by(OutboxRow.id)
                ).all()
            )

    def audit(self, action: str) -> list[AuditRow]:
        with self.store.session() as s:
            return list(s.exec(select(AuditRow).where(AuditRow.action == action)).all())

    def local_status(self, local_id: int) -> str:
        return next(c for c in self.world.local.complaints() if c["id_aduan"] == local_id)["status"]

    def set_local_status(self, local_id: int, status: str) -> None:
        sim = self.world.local
        with sim.lock:
            sim.world.set_status(
                local_id, status, oleh="Admin Lapor Hendi", sumber="lapor_hendi", ref=None, now=sim.clock.now()
            )

    def at_hub(self, local_id: int) -> list[dict[str, Any]]:
        """The hub's complaints carrying this complaint's reference (its hashtag)."""
        tag = "#" + self.store.complaint(self.complaint_id(local_id)).gateway_ref.replace("-", "_")
        return [c for c in self.world.hub.complaints() if tag in (c["tags_raw"] or "").split()]

    def written_locally(self, local_id: int) -> list[dict[str, Any]]:
        return [t for t in self.world.local.follow_ups(local_id) if t["sumber"] == "eksternal"]


@asynccontextmanager
async def flow(world, tmp_path: Path, store_url: str, tweak=None) -> AsyncIterator[Flow]:
    world.local.officers_active = False
    world.hub.quiesce()
    config = world.config(tmp_path, store_url)
    if tweak is not None:
        tweak(config)
    clock = JumpClock()
    store = Store(store_url, clock=clock)
    try:
        async with Engine(config, store, seed=3) as engine:
            yield Flow(world, config, store, engine, clock)
    finally:
        store.close()


def _without_history(read: Any) -> Any:
    """``read_complaint`` as when the hub's data_logs is missing or its data is not JSON: the
    current status only, the history not read whole."""

    async def without_history(ref: str) -> Any:
        return replace(await read(ref), status_changes=(), history_complete=False)

    return without_history


async def new_complaint(f: Flow, **fields: Any) -> int:
    local_id = f.world.local.submit_complaint(**fields)
    await f.passes()
    return local_id


# -- statuses ------------------------------------------------------------------------------------


async def test_a_hub_status_never_moves_the_citizens_status_back(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        world.hub.act(f.hub_id(local_id), "Terverifikasi")
        await f.passes()
        assert f.local_status(local_id) == "terverifikasi"
        f.set_local_status(local_id, "selesai")  # the city closed it by itself
        await f.passes()
        world.hub.act(f.hub_id(local_id), "Dalam Proses")
        await f.passes()

        assert f.local_status(local_id) == "selesai"
        [backwards] = f.audit("status_backwards")
        assert "dalam proses" in backwards.detail and "selesai" in backwards.detail
        # The citizen still learns what the hub says, as a follow-up (in progress there, done here).
        [note] = f.written_locally(local_id)
        assert note["isi"].startswith("Status di LAPOR!: Dalam Proses")
        [row] = [
            r
            for r in f.outbox(local_id, LOCAL_STATUS)
            if "Dalam Proses" in (r.last_error or "")
            or (r.state == "done" and "note went as a follow-up" in (r.last_error or ""))
        ]
        assert row.state == "done"


async def test_the_old_rule_hub_wins_still_writes_a_status_back(world, tmp_path, store_url):
    def hub_wins(config: GatewayConfig) -> None:
        config.instances[LOCAL].spec.route.conflict = "hub_wins"  # type: ignore[union-attr]

    async with flow(world, tmp_path, store_url, hub_wins) as f:
        local_id = await new_complaint(f)
        world.hub.act(f.hub_id(local_id), "Terverifikasi")
        await f.passes()
        f.set_local_status(local_id, "selesai")
        await f.passes()
        world.hub.act(f.hub_id(local_id), "Dalam Proses")
        await f.passes()
        assert f.local_status(local_id) == "dalam proses"
        assert f.audit("status_backwards") == []


async def test_a_hold_asking_for_more_data_reaches_the_citizen_with_its_reason(world, tmp_path, store_url):
    reason = "Mohon lengkapi nomor rumah dan foto lokasi kejadian."
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub_id = f.hub_id(local_id)
        for status in ("Terverifikasi", "Didisposisi", "Dalam Proses"):
            world.hub.act(hub_id, status)
        await f.passes()
        assert f.local_status(local_id) == "dalam proses"
        world.hub.act(hub_id, "Ditunda", reason=reason)
        await f.passes()

        # On hold at the hub is "dalam proses" in Lapor Hendi: the status is not written again,
        # the hold and its reason go as a follow-up the citizen reads.
        assert f.local_status(local_id) == "dalam proses"
        [note] = f.written_locally(local_id)
        assert note["isi"].splitlines()[0] == "Status di LAPOR!: Ditunda"
        assert reason in note["isi"]


async def test_a_rejection_carries_its_reason_with_the_status(world, tmp_path, store_url):
    reason = "Laporan bukan kewenangan pemerintah daerah."
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        world.hub.act(f.hub_id(local_id), "Ditolak", reason=reason)
        await f.passes()
        assert f.local_status(local_id) == "ditolak"
        [written] = [h for h in world.local.status_history(local_id) if h["sumber"] == "eksternal"]
        assert written["keterangan"].startswith("Status di LAPOR!: Ditolak") and reason in written["keterangan"]


@pytest.mark.parametrize("status_old", ["null", "left out", "without a name"])
async def test_a_status_change_whose_log_names_no_old_status_still_reaches_the_local_app(
    world, tmp_path, store_url, status_old
):
    """The reference shows status_old.name in a status change's data, and the hub's views show a
    default (Belum Terverifikasi) for a complaint without a status: a log may well carry no old
    status. Such a change was taken as the status the hub received the complaint in, kept and
    never passed on, and the current status (the same) did not pass it on either."""
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub_id = f.hub_id(local_id)
        world.hub.act(hub_id, "Terverifikasi")
        with world.hub.lock:  # the log as the hub might serve it
            data = world.hub.world.complaints[hub_id].logs[-1]["data"]
            if status_old == "null":
                data["status_old"] = None
            elif status_old == "left out":
                del data["status_old"]
            else:
                data["status_old"] = {"name": None}
        await f.passes()
        assert f.local_status(local_id) == "terverifikasi"


async def test_the_status_goes_on_when_the_follow_ups_cannot_be_read(world, tmp_path, store_url):
    """A 2xx without results.data is a failure of the follow-ups call (the reference); it held back
    the status that the same read had taken, at every read, for as long as the list stayed so."""
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub_id = f.hub_id(local_id)
        hub = f.engine.adapters[HUB]
        read = hub.follow_ups

        async def unreadable(ref: str) -> Any:
            raise PermanentPeerError(HUB, "GET /complaints/{id}/followups", "answer had no results.data list")

        hub.follow_ups = unreadable  # type: ignore[method-assign]
        world.hub.act(hub_id, "Terverifikasi")
        world.hub.officer_follow_up(hub_id, "Laporan sudah kami terima.")
        await f.passes()
        assert f.local_status(local_id) == "terverifikasi"
        assert f.store.quarantined(HUB, "follow_ups", f"list:{hub_id}") >= 1  # for an operator to see
        assert f.written_locally(local_id) == []

        hub.follow_ups = read  # type: ignore[method-assign]
        f.store_clock.offset += timedelta(days=1)  # past the next read
        await f.passes()
        assert [t["isi"] for t in f.written_locally(local_id)] == ["Laporan sudah kami terima."]
        assert f.store.quarantined(HUB, "follow_ups", f"list:{hub_id}") == 0


async def test_the_current_status_goes_on_when_the_history_cannot_be_read(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub = f.engine.adapters[HUB]
        read = hub.read_complaint
        hub.read_complaint = _without_history(read)  # type: ignore[method-assign]
        world.hub.act(f.hub_id(local_id), "Terverifikasi")
        await f.passes()
        assert f.local_status(local_id) == "terverifikasi"
        await f.passes(3)  # read again and again: the same status is not passed on twice
        assert [h["status_baru"] for h in world.local.status_history(local_id) if h["sumber"] == "eksternal"] == [
            "terverifikasi"
        ]

        hub.read_complaint = read  # type: ignore[method-assign]
        await f.passes()  # the history is readable again: its older entry is recognised, not written
        assert [h["status_baru"] for h in world.local.status_history(local_id) if h["sumber"] == "eksternal"] == [
            "terverifikasi"
        ]


async def test_a_status_after_one_taken_from_the_current_status_still_reaches_the_local_app(world, tmp_path, store_url):
    """The store's clock runs weeks ahead of the hub's here (a skew, as between two real clocks).
    A status taken from the complaint's current status, because its history could not be read,
    was stamped with the gateway's clock: every later change at the hub then looked older than it
    and was skipped as outdated, and the local app kept the old status (found by the chaos suite)."""
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub = f.engine.adapters[HUB]
        read = hub.read_complaint
        hub.read_complaint = _without_history(read)  # type: ignore[method-assign]
        world.hub.act(f.hub_id(local_id), "Terverifikasi")
        await f.passes()
        assert f.local_status(local_id) == "terverifikasi"

        hub.read_complaint = read  # type: ignore[method-assign]
        world.hub.act(f.hub_id(local_id), "Selesai")
        await f.passes()
        assert f.local_status(local_id) == "selesai"
        assert not f.audit("status_outdated")


async def test_a_complaint_first_read_past_its_received_status_gets_that_status(world, tmp_path, store_url):
    """The first read of a complaint at the hub can come after the hub moved it on (a create
    whose answer was lost, linked by an operator later), with a history that cannot be read: its
    current status was taken as the one it was received in and never delivered, and the complaint,
    closed, was not read again (found by the chaos suite)."""
    async with flow(world, tmp_path, store_url) as f:
        local_id = f.world.local.submit_complaint()
        await f.engine.intake(LOCAL)
        await f.engine.deliver(HUB)  # created at the hub, not read yet
        hub = f.engine.adapters[HUB]
        read = hub.read_complaint
        hub.read_complaint = _without_history(read)  # type: ignore[method-assign]
        world.hub.act(f.hub_id(local_id), "Selesai")
        await f.passes()
        assert f.local_status(local_id) == "selesai"


# -- follow-ups ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["private", "skip"])
async def test_a_confidential_hub_follow_up_is_never_written_as_a_public_answer(world, tmp_path, store_url, rule):
    def secret_rule(config: GatewayConfig) -> None:
        config.instances[LOCAL].spec.route.secret_follow_ups = rule  # type: ignore[union-attr]

    async with flow(world, tmp_path, store_url, secret_rule) as f:
        local_id = await new_complaint(f)
        world.hub.officer_follow_up(f.hub_id(local_id), "Data pelapor sudah kami cocokkan.", is_secret=True)
        world.hub.officer_follow_up(f.hub_id(local_id), "Tim akan ke lokasi besok.")
        await f.passes()
        written = {t["isi"]: t for t in f.written_locally(local_id)}
        assert written["Tim akan ke lokasi besok."]["rahasia"] is False
        if rule == "private":
            assert written["Data pelapor sudah kami cocokkan."]["rahasia"] is True
        else:
            assert "Data pelapor sudah kami cocokkan." not in written
            [skipped] = f.audit("secret_follow_up_not_written")
            assert "skip" in skipped.detail


async def test_confidential_local_follow_ups_are_confidential_at_the_hub(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        world.local.answer(local_id, "Mohon maaf, data identitas akan kami verifikasi.", rahasia=True)
        world.local.answer(local_id, "Petugas sudah dijadwalkan.")
        await f.passes()
        at_hub = {x["content"]: x for x in world.hub.follow_ups(f.hub_id(local_id)) if x["source"] == "api"}
        assert at_hub["Mohon maaf, data identitas akan kami verifikasi."]["is_secret"] == 1
        assert at_hub["Petugas sudah dijadwalkan."]["is_secret"] == 0


async def test_evidence_files_travel_with_follow_ups_both_ways(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        hub_id = f.hub_id(local_id)
        world.local.answer(local_id, "Lubang sudah ditambal, foto terlampir.", lampiran=1)
        photo = png(8, 6)
        world.hub.officer_follow_up(
            hub_id, "Bukti perbaikan dari dinas.", attachments=[("bukti.png", "image/png", photo)]
        )
        await f.passes()

        # Up: the local officer's photo is at the hub with the follow-up, pixel for pixel (its
        # metadata removed on the way: tests/test_attachment_privacy.py).
        [local_answer] = [t for t in world.local.follow_ups(local_id) if t["sumber"] == "lapor_hendi"]
        [(_, _, local_bytes)] = world.local.follow_up_files(local_answer["id_tanggapan"])
        [up] = [x for x in world.hub.follow_ups(hub_id) if x["source"] == "api"]
        [doc_id] = up["attachments"]
        assert pixels(world.hub.document(doc_id)) == pixels(local_bytes)
        # Down: the hub officer's photo is in Lapor Hendi with the follow-up.
        [down] = f.written_locally(local_id)
        assert [pixels(data) for _, _, data in world.local.follow_up_files(down["id_tanggapan"])] == [pixels(photo)]


# -- which complaints go to the hub --------------------------------------------------------------


async def test_closed_complaints_are_not_created_at_the_hub_until_they_reopen(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = world.local.submit_complaint()
        f.set_local_status(local_id, "selesai")  # closed before the gateway saw it (a backfill's history)
        world.local.answer(local_id, "Sudah selesai ditangani.")
        await f.passes()
        [create] = f.outbox(local_id, CREATE_COMPLAINT)
        assert create.state == "skipped" and "create_at_hub" in create.last_error
        assert f.at_hub(local_id) == []
        assert [r.state for r in f.outbox(local_id, HUB_FOLLOW_UP)] == ["skipped"]

        f.set_local_status(local_id, "dalam proses")  # reopened: now it belongs at the hub
        await f.passes()
        assert f.outbox(local_id, CREATE_COMPLAINT)[0].state == "done"
        assert len(f.at_hub(local_id)) == 1
        assert world.local.nomor_lapor(local_id) == str(f.hub_id(local_id))


async def test_imported_pairs_are_linked_not_created_again(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        first, second = world.local.submit_complaint(), world.local.submit_complaint()
        [hub_first] = world.hub.preload(["#dari_petugas"])  # typed into LAPOR! by hand before the gateway
        pairs = tmp_path / "pairs.csv"
        pairs.write_text(f"local_id,hub_id\n{first},{hub_first}\n{second},\n")
        runner = CliRunner()
        args = ["--config", str(f.config.path), "--store", store_url, "links", "import", str(pairs), "--json"]
        result = runner.invoke(gateway.cli.app, args, env=world.environ)
        assert result.exit_code == 1, result.output  # the bad line is reported
        report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
        assert report["waiting"] == 1 and report["linked"] == 0
        assert any(f"{pairs}:3" in p for p in report["problems"])

        before = world.hub.counts()["complaints"]
        await f.passes()
        assert f.hub_id(first) == hub_first and f.at_hub(first) == []  # linked, never created
        assert len(f.at_hub(second)) == 1
        assert world.local.nomor_lapor(first) == str(hub_first)
        assert world.hub.counts()["complaints"] == before + 1 + 12  # the second, and the fixture's own 12

        # Importing again is harmless, and a conflicting pair is refused with its line.
        pairs.write_text(f"{first},{hub_first}\n{second},{hub_first}\n")
        result = runner.invoke(gateway.cli.app, args, env=world.environ)
        report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
        assert report["already"] == 1 and len(report["problems"]) == 1 and f"{pairs}:2" in report["problems"][0]


async def test_an_import_links_a_complaint_whose_create_waits_for_an_operator(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        world.hub.set_quirks(no_id_rate=1.0)  # the hub creates it and answers without its id
        local_id = await new_complaint(f)
        await f.passes()
        [hub_c] = f.at_hub(local_id)  # created once, never twice
        [create] = f.outbox(local_id, CREATE_COMPLAINT)
        assert create.state == "needs_confirmation"
        world.hub.set_quirks(no_id_rate=0.0)
        pairs = tmp_path / "pairs.csv"
        pairs.write_text(f"{local_id},{hub_c['id']}\n")
        result = CliRunner().invoke(
            gateway.cli.app,
            ["--config", str(f.config.path), "--store", store_url, "links", "import", str(pairs)],
            env=world.environ,
        )
        assert result.exit_code == 0, result.output
        await f.passes()
        assert f.outbox(local_id, CREATE_COMPLAINT)[0].state == "done"
        assert f.hub_id(local_id) == hub_c["id"] and world.local.nomor_lapor(local_id) == str(hub_c["id"])
        assert len(f.at_hub(local_id)) == 1


# -- a 2xx that proves nothing -------------------------------------------------------------------


async def test_a_follow_up_the_hub_answered_false_to_is_parked_not_lost(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        world.hub.set_quirks(false_success_rate=1.0)
        world.local.answer(local_id, "Sudah kami tinjau ke lokasi.")
        await f.passes()
        [row] = f.outbox(local_id, HUB_FOLLOW_UP)
        assert row.state == "parked" and "saying it failed" in row.last_error
        assert [x for x in world.hub.follow_ups(f.hub_id(local_id)) if x["source"] == "api"] == []

        world.hub.set_quirks(false_success_rate=0.0)
        retry_delivery(f.store, row.id)
        await f.passes()
        assert [x["content"] for x in world.hub.follow_ups(f.hub_id(local_id)) if x["source"] == "api"] == [
            "Sudah kami tinjau ke lokasi."
        ]


async def test_a_local_write_answered_with_an_error_body_is_refused_then_written_once(world, tmp_path, store_url):
    async with flow(world, tmp_path, store_url) as f:
        local_id = await new_complaint(f)
        world.local.set_error_body_rate(1.0)
        world.hub.officer_follow_up(f.hub_id(local_id), "Laporan diteruskan ke UPTD.")
        await f.passes()
        assert f.written_locally(local_id) == []
        with f.store.session() as s:
            [row] = s.exec(select(OutboxRow).where(OutboxRow.target == LOCAL, OutboxRow.state == "parked")).all()
        assert "not written" in row.last_error
        world.local.set_error_body_rate(0.0)
        retry_delivery(f.store, row.id)
        await f.passes()
        assert [t["isi"] for t in f.written_locally(local_id)] == ["Laporan diteruskan ke UPTD."]
