"""The store's side of a peer's own cursor: the opaque position a stream yielded last,
kept per instance and stream (``peer_position``, revision 0002) beside the time cursor."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from gateway._store._store import Store
from gateway._store._tables import PeerPositionRow, table_of

_POSITION = sa_select(col(PeerPositionRow.position)).where(
    col(PeerPositionRow.instance) == bindparam("instance"), col(PeerPositionRow.stream) == bindparam("stream")
)
_MOVE = (
    update(PeerPositionRow)
    .where(
        col(PeerPositionRow.instance) == bindparam("of_instance"), col(PeerPositionRow.stream) == bindparam("of_stream")
    )
    .values(
        position=bindparam("new_position"),
        updated_at=bindparam("now", type_=table_of(PeerPositionRow).c.updated_at.type),
    )
)
_INSERT = insert(table_of(PeerPositionRow))


def peer_position(store: Store, instance: str, stream: str) -> str | None:
    with store.engine.begin() as conn:
        found: str | None = conn.execute(_POSITION, {"instance": instance, "stream": stream}).scalar()
        return found


def set_peer_position(store: Store, instance: str, stream: str, position: str) -> None:
    """One UPDATE, an INSERT the first time (or, when another daemon inserted it meanwhile,
    the UPDATE again: the later position wins, as with the time cursor)."""
    now = store.clock()
    move = {"of_instance": instance, "of_stream": stream, "new_position": position, "now": now}
    with store.engine.begin() as conn:
        if conn.execute(_MOVE, move).rowcount:
            return
    try:
        with store.engine.begin() as conn:
            conn.execute(_INSERT, {"instance": instance, "stream": stream, "position": position, "updated_at": now})
    except IntegrityError:
        with store.engine.begin() as conn:
            conn.execute(_MOVE, move)
