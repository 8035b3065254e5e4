"""A local app that keeps only each complaint's current status (no Capability.STATUS_HISTORY), on
both stores: the engine records a status change when a complaint read shows another status
than the gateway knew, once however often it is read, recognises a status it wrote itself,
and the conflict rule sees the app's change as it sees one from a status history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from fake_feed_app import LOCAL, CurrentStateApp, Peer, connect, route
from sqlmodel import select

from gateway import Capability, LocalApp, RawStatus, StatusChange
from gateway._engine._intake import Intake
from gateway._model import Status
from gateway._store import Store
from gateway._store._tables import EventRow, LinkRow, OutboxRow

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def status_events(store: Store) -> list[tuple[str | None, str | None, str]]:
    """The app's status changes in the timeline: (raw code, canonical status, origin)."""
    with store.session() as s:
        rows = s.exec(select(EventRow).where(EventRow.kind == "status_change").order_by(EventRow.id)).all()
        return [(r.raw_status_code, r.status, r.origin) for r in rows]


def complaint_id_of(store: Store, ref: str) -> int:
    with store.session() as s:
        return s.exec(select(LinkRow.complaint_id).where(LinkRow.instance == LOCAL, LinkRow.external_ref == ref)).one()


async def test_a_status_changed_at_the_app_is_recorded_once(store: Store, store_url: str, tmp_path: Path) -> None:
    peer = Peer()
    peer.file("A")
    peer.file("B")
    app = connect(CurrentStateApp, peer)
    intake = Intake(store, route(tmp_path, store_url), app)

    first = await intake.run()
    assert (first.complaints_new, first.status_changes) == (2, 0)  # the status filed in is no change
    assert not [r for r in peer.asked if "status" in r.url.path]  # and no status stream is asked for

    peer.set_status("A", "dalam proses")
    second = await intake.run()
    assert second.status_changes == 1
    assert status_events(store) == [("dalam proses", Status.IN_PROGRESS.value, LOCAL)]

    for _ in range(2):  # read again (the cursor is inclusive): known, not recorded twice
        again = await intake.run()
        assert again.status_changes == 0
    await Intake(store, route(tmp_path, store_url), app, cursor_prefix="again:").run()  # from the start
    assert status_events(store) == [("dalam proses", Status.IN_PROGRESS.value, LOCAL)]

    peer.set_status("A", "selesai")
    await intake.run()
    assert [code for code, _, _ in status_events(store)] == ["dalam proses", "selesai"]


async def test_a_status_the_gateway_wrote_is_not_read_back_as_the_apps(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    peer = Peer()
    peer.file("A")
    app = connect(CurrentStateApp, peer)
    intake = Intake(store, route(tmp_path, store_url), app)
    await intake.run()
    complaint_id = complaint_id_of(store, "A")

    # What the delivery of a hub status does: the write, then the store's note of it.
    await app.write_status("A", RawStatus("terverifikasi", "terverifikasi"), note=None, gateway_ref="lg-ev-1")
    store.set_local_status(complaint_id, "terverifikasi", Status.VERIFIED)

    result = await intake.run()
    assert (result.complaints_updated, result.status_changes) == (1, 0)
    assert status_events(store) == []
    assert store.last_local_status_change(complaint_id, LOCAL) is None  # no conflict with our own write


async def test_the_conflict_rule_sees_the_apps_change(store: Store, store_url: str, tmp_path: Path) -> None:
    peer = Peer()
    peer.file("A")
    intake = Intake(store, route(tmp_path, store_url), connect(CurrentStateApp, peer))
    await intake.run()
    peer.set_status("A", "ditolak")
    await intake.run()
    complaint_id = complaint_id_of(store, "A")
    change = store.last_local_status_change(complaint_id, LOCAL)
    complaint = store.complaint(complaint_id)
    # What Deliveries._local_side_wins needs: the app's own change, after the complaint was filed,
    # and still the status the gateway knows (it has not written over it).
    assert change is not None and change.raw_status_code == "ditolak"
    assert change.occurred_at > complaint.local_created_at
    assert complaint.local_status_code == change.raw_status_code


def test_an_app_declaring_status_history_must_read_it() -> None:
    with pytest.raises(TypeError, match="does not implement status_changes_since"):

        class Forgetful(CurrentStateApp):
            capabilities = frozenset({Capability.STATUS_HISTORY})

    class Keeps(CurrentStateApp):
        capabilities = frozenset({Capability.STATUS_HISTORY})

        async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange]:
            for item in ():
                yield item

    assert issubclass(Keeps, LocalApp)


async def test_the_gateways_write_read_back_before_the_store_notes_it_is_no_change(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    """The intake reads the complaint between the delivery's write and its set_local_status."""
    peer = Peer()
    peer.file("A")
    app = connect(CurrentStateApp, peer)
    intake = Intake(store, route(tmp_path, store_url), app)
    await intake.run()
    complaint_id = complaint_id_of(store, "A")
    now = store.clock()
    with store.session() as s:  # a local status delivery under way (sending_at set, still pending)
        s.add(
            OutboxRow(
                complaint_id=complaint_id,
                kind="local_status",
                target=LOCAL,
                next_attempt_at=now,
                sending_at=now,
                created_at=now,
            )
        )
    await app.write_status("A", RawStatus("terverifikasi", "terverifikasi"), note=None, gateway_ref="lg-ev-2")

    result = await intake.run()
    assert (result.complaints_updated, result.status_changes) == (1, 0)
    assert status_events(store) == []
