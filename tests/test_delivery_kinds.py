"""Delivery kinds and outbox states are enums whose values are the strings the store always held
(no schema change), each kind has one handler, and docs/architecture.md's table lists them all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway import Complaint, MappingError, RawStatus
from gateway._engine._delivery import HANDLERS, Deliveries, DeliveryResult
from gateway._store import (
    CREATE_COMPLAINT,
    FORWARD_COMPLAINT,
    HUB_FOLLOW_UP,
    LOCAL_FOLLOW_UP,
    LOCAL_HUB_REF,
    LOCAL_STATUS,
    DeliveryKind,
    EventKind,
    OutboxState,
    Side,
    Store,
)

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

# The strings already in every store: an enum value that changed would need a migration.
STORED = {
    DeliveryKind: {
        "create_complaint",
        "forward_complaint",
        "hub_follow_up",
        "local_follow_up",
        "local_status",
        "local_hub_ref",
    },
    OutboxState: {"pending", "parked", "needs_confirmation", "done", "skipped", "dropped"},
    EventKind: {"status_change", "follow_up", "agency_assigned"},
    Side: {"local", "hub"},
}


@pytest.mark.parametrize("enum", list(STORED), ids=lambda e: e.__name__)
def test_enum_values_are_the_stored_strings(enum):
    assert {member.value for member in enum} == STORED[enum]
    for member in enum:
        assert member == member.value and str(member) == member.value  # compared and written as the string


def test_the_old_names_are_the_enum_members():
    assert (CREATE_COMPLAINT, FORWARD_COMPLAINT, HUB_FOLLOW_UP, LOCAL_FOLLOW_UP, LOCAL_STATUS, LOCAL_HUB_REF) == (
        DeliveryKind.CREATE_COMPLAINT,
        DeliveryKind.FORWARD_COMPLAINT,
        DeliveryKind.HUB_FOLLOW_UP,
        DeliveryKind.LOCAL_FOLLOW_UP,
        DeliveryKind.LOCAL_STATUS,
        DeliveryKind.LOCAL_HUB_REF,
    )


def test_every_kind_has_a_handler_of_the_delivery_class():
    assert set(HANDLERS) == set(DeliveryKind)
    for kind, handler in HANDLERS.items():
        assert getattr(Deliveries, handler.deliver.__name__) is handler.deliver, kind
        assert handler.to is (
            Side.HUB
            if kind in (DeliveryKind.CREATE_COMPLAINT, DeliveryKind.FORWARD_COMPLAINT, DeliveryKind.HUB_FOLLOW_UP)
            else Side.LOCAL
        ), kind


@pytest.mark.anyio
async def test_a_kind_the_code_does_not_know_is_a_mapping_error():
    deliveries = Deliveries.__new__(Deliveries)
    deliveries.target = "sp4n"
    with pytest.raises(MappingError, match="outbox kinds value 'hub_reply'"):
        await deliveries._deliver(SimpleNamespace(kind="hub_reply"), False, DeliveryResult())  # type: ignore[arg-type]


def test_the_enums_go_into_the_store_as_plain_strings(store_url):
    store = Store(store_url)
    try:
        when = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
        [(complaint_id, _)] = store.take_in_complaints(
            "lapor_hendi",
            "sp4n",
            [
                (
                    Complaint(
                        ref="12",
                        title="Jalan berlubang",
                        body="Ada lubang besar.",
                        created_at=when,
                        updated_at=when,
                        status=RawStatus("baru"),
                    ),
                    None,
                )
            ],
        )
        [row] = store.claim_due("sp4n", "test", timedelta(minutes=5))
        assert row.kind == DeliveryKind.CREATE_COMPLAINT and row.state == OutboxState.PENDING
        assert store.finish_delivery(row.id, state=OutboxState.SKIPPED, note="kept off the hub", token=row.claim_token)
        with store.engine.connect() as conn:
            kind, state = conn.exec_driver_sql(
                f"SELECT kind, state FROM outbox WHERE complaint_id = {int(complaint_id)}"
            ).one()
        assert (type(kind), kind, type(state), state) == (str, "create_complaint", str, "skipped")
        assert store.create_skipped(complaint_id, "sp4n") == "kept off the hub"
    finally:
        store.close()


def test_the_architecture_table_lists_every_kind_with_its_direction_and_handler():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("### Delivery kinds", 1)[1].split("\n#", 1)[0]
    rows = {
        kind: (direction, handler)
        for kind, direction, handler in re.findall(
            r"^\| `(\w+)` \| (\w+ → \w+) \| `(\w+)` \| [^|]+ \|$", section, flags=re.M
        )
    }
    assert set(rows) == {kind.value for kind in DeliveryKind}
    for kind, handler in HANDLERS.items():
        to = "hub" if handler.to is Side.HUB else "local"
        assert rows[kind] == (f"{'local' if to == 'hub' else 'hub'} → {to}", handler.deliver.__name__), kind
