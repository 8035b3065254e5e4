"""A peer's own cursor, kept by the engine for the adapter, on both stores: stored once the
records before it are stored, given back on the next intake, and never moved past a record
that must be read again."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_feed_app import LOCAL, ChangesFeedApp, Peer, connect, route

from gateway import PeerPosition, TransientPeerError
from gateway._engine._backfill import backfill
from gateway._engine._intake import Intake
from gateway._store import Store
from gateway._store._positions import peer_position
from gateway._store._tables import ComplaintRow, LinkRow

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def taken_in(store: Store) -> dict[str, str | None]:
    """Each local complaint's id and the status the gateway knows for it."""
    with store.session() as s:
        rows = s.exec(
            LinkRow.__table__.join(ComplaintRow.__table__, LinkRow.complaint_id == ComplaintRow.id)  # type: ignore[attr-defined]
            .select()
            .where(LinkRow.instance == LOCAL)
            .with_only_columns(LinkRow.external_ref, ComplaintRow.local_status_code)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def cursors_asked(peer: Peer) -> list[str | None]:
    return [r.url.params.get("cursor") for r in peer.asked if r.url.path == "/changes"]


async def test_the_position_is_stored_and_given_back_on_the_next_intake(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    peer = Peer(page_size=2)
    for ref in ("A", "B", "C"):
        peer.file(ref)
    app = connect(ChangesFeedApp, peer)
    intake = Intake(store, route(tmp_path, store_url), app)

    first = await intake.run()
    assert first.complaints_new == 3
    assert cursors_asked(peer) == [None, "c2"]
    assert peer_position(store, LOCAL, "complaints") == "c3"
    assert app.position("complaints") is None  # only while the engine reads the stream

    peer.asked.clear()
    peer.set_status("B", "dalam proses")
    second = await intake.run()
    assert cursors_asked(peer) == ["c3"]  # resumed where the last walk ended: nothing read twice
    assert (second.complaints_new, second.complaints_updated) == (0, 1)
    assert taken_in(store)["B"] == "dalam proses"
    assert peer_position(store, LOCAL, "complaints") == "c4"


async def test_a_walk_that_fails_keeps_the_position_of_what_it_stored(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    peer = Peer(page_size=2)
    for ref in ("A", "B", "C", "D", "E"):
        peer.file(ref)
    app = connect(ChangesFeedApp, peer)
    handle = peer.handle

    def fails_on_the_third_page(request):  # type: ignore[no-untyped-def]
        if request.url.params.get("cursor") == "c4":
            raise TransientPeerError(LOCAL, "GET /changes", "answered HTTP 503")
        return handle(request)

    peer.handle = fails_on_the_third_page  # type: ignore[method-assign]
    app = connect(ChangesFeedApp, peer)
    intake = Intake(store, route(tmp_path, store_url), app)
    with pytest.raises(TransientPeerError):
        await intake.run()
    assert sorted(taken_in(store)) == ["A", "B", "C", "D"]
    assert peer_position(store, LOCAL, "complaints") == "c4"

    peer.handle = handle  # type: ignore[method-assign]
    peer.asked.clear()
    await Intake(store, route(tmp_path, store_url), connect(ChangesFeedApp, peer)).run()
    assert cursors_asked(peer) == ["c4"]
    assert sorted(taken_in(store)) == ["A", "B", "C", "D", "E"]


async def test_the_position_waits_before_a_record_that_must_be_read_again(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    peer = Peer(page_size=2)
    peer.file("A")
    peer.file("B")
    peer.broken.add("C")
    peer.file("C")  # served without its title: quarantined, to be read again
    peer.file("D")
    intake = Intake(store, route(tmp_path, store_url), connect(ChangesFeedApp, peer))

    result = await intake.run()
    assert result.quarantined == 1
    assert peer_position(store, LOCAL, "complaints") == "c2"  # before C's page, not past it
    peer.asked.clear()
    await intake.run()
    assert cursors_asked(peer)[0] == "c2"  # C is read again (here: as served then, still broken)


async def test_a_backfill_keeps_positions_of_its_own_and_hands_them_over(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    peer = Peer(page_size=2)
    for ref in ("A", "B", "C"):
        peer.file(ref)
    intake = Intake(store, route(tmp_path, store_url), connect(ChangesFeedApp, peer))
    await backfill(store, intake, since=peer.now.replace(year=2020))
    assert peer_position(store, LOCAL, "complaints") == "c3"  # the daemon's intake goes on from there

    peer.asked.clear()
    peer.file("D")
    await Intake(store, route(tmp_path, store_url), connect(ChangesFeedApp, peer)).run()
    assert cursors_asked(peer) == ["c3"]
    assert sorted(taken_in(store)) == ["A", "B", "C", "D"]


def test_a_position_is_a_value_the_stream_may_yield() -> None:
    assert PeerPosition("c1") == PeerPosition("c1")
