"""Records an adapter built with values their fields cannot hold (an id as a number, a naive
time, a latitude of 999, a negative file size): each is quarantined with the field named and
never its value, and the rest of the stream is taken in. Before, they were taken in as they
were: a naive time read as UTC (seven hours off for a WIB peer), a number id beside a text one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_feed_app import CurrentStateApp, Peer, connect, route
from sqlmodel import select

from gateway import AttachmentRef, Complaint, FollowUp, Location, RawStatus, Reporter, StatusChange
from gateway._engine._intake import Intake
from gateway._record_values import value_problem
from gateway._store import Store
from gateway._store._tables import LinkRow, QuarantineRow

T = datetime(2026, 11, 2, 8, tzinfo=UTC)
GOOD = Complaint(ref="LH-1", title="Lampu mati", body="Gelap.", created_at=T, updated_at=T, status=RawStatus("baru"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ref": 1017}, "ref is not text"),
        ({"ref": "  "}, "ref is empty"),
        ({"created_at": datetime(2026, 11, 2, 8)}, "created_at is a time without a time zone"),
        ({"updated_at": "2026-11-02T08:00:00+07:00"}, "updated_at is not a time"),
        ({"status": "baru"}, "status is not a RawStatus"),
        ({"status": RawStatus(3)}, "status.code is not text"),
        ({"location": Location(latitude=999.0)}, "location.latitude is outside -90 to 90"),
        ({"location": Location(latitude=-6.99, longitude=-181)}, "location.longitude is outside -180 to 180"),
        ({"location": Location(latitude=float("nan"))}, "location.latitude is not a finite number"),
        ({"location": Location(latitude="-6.99")}, "location.latitude is not a number"),
        ({"attachments": (AttachmentRef("f1", "foto.jpg", "image/jpeg", -5),)}, "attachments[0].size is below 0"),
        ({"attachments": [AttachmentRef("f1", "foto.jpg")]}, "attachments is not a tuple"),
        ({"attachments": (AttachmentRef("f1", None),)}, "attachments[0].filename is not text"),
        ({"is_secret": 1}, "is_secret is not true or false"),
        ({"classification": "complaint"}, "classification is not a Classification"),
        ({"reporter": Reporter(nik=3374012345678901)}, "reporter.nik is not text"),
        ({"incident_at": datetime(2026, 11, 1)}, "incident_at is a time without a time zone"),
    ],
)
def test_a_value_its_field_cannot_hold_is_named_by_its_field(change: dict[str, Any], problem: str):
    assert value_problem(GOOD) is None
    found = value_problem(dataclasses.replace(GOOD, **change))
    assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize(
    "record",
    [
        dataclasses.replace(GOOD, location=Location(latitude=-90, longitude=180.0), incident_at=T),
        dataclasses.replace(GOOD, attachments=(AttachmentRef("f1", "foto.jpg", None, 0),), reporter=Reporter("A")),
        FollowUp(ref="t1", complaint_ref="LH-1", content="", created_at=T),
        StatusChange(ref="s1", complaint_ref="LH-1", status=RawStatus("baru"), changed_at=T, previous=None),
    ],
)
def test_records_as_the_model_says_pass(record: Any):
    assert value_problem(record) is None


def test_follow_ups_and_status_changes_are_checked_too():
    assert value_problem(FollowUp(ref="t1", complaint_ref="", content="x", created_at=T)) == "complaint_ref is empty"
    change = StatusChange(ref="s1", complaint_ref="LH-1", status=RawStatus("a"), changed_at=T, previous=RawStatus(2))
    assert value_problem(change) == "previous.code is not text"


NIK = "3374012345678901"


class OddValuesApp(CurrentStateApp):
    """Builds complaint "odd-lat" with a latitude of 999 and "odd-time" with a naive time, as an
    adapter author might by mistake; the others as the model says."""

    def _complaint(self, raw: Any) -> Complaint:
        complaint = super()._complaint(raw)
        assert isinstance(complaint, Complaint)
        if raw["id"] == "odd-lat":
            return dataclasses.replace(complaint, location=Location(description=NIK, latitude=999.0))
        if raw["id"] == "odd-time":
            return dataclasses.replace(complaint, created_at=complaint.created_at.replace(tzinfo=None))
        return complaint


@pytest.mark.anyio
async def test_a_record_with_an_odd_value_waits_in_quarantine_and_the_rest_is_taken_in(store_url: str, tmp_path: Path):
    peer = Peer()
    for ref in ("A", "odd-lat", "B", "odd-time", "C"):
        peer.file(ref)
    store = Store(store_url)
    try:
        result = await Intake(store, route(tmp_path, store_url), connect(OddValuesApp, peer)).run()
        with store.session() as s:
            taken = set(s.exec(select(LinkRow.external_ref)).all())
            quarantined = {r.record_ref: r.reason for r in s.exec(select(QuarantineRow)).all()}
    finally:
        store.close()
    assert taken == {"A", "B", "C"}
    assert result.quarantined == 2
    assert quarantined["odd-lat"] == "location.latitude is outside -90 to 90"
    assert quarantined["odd-time"].startswith("created_at is a time without a time zone")
    assert all(NIK not in reason for reason in quarantined.values())
