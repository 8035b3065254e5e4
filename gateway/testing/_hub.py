"""The conformance kit for hub adapters: the round trips the engine relies on, run against the
adapter and its hub (a simulator on loopback).

A hub has no streams: the engine creates a complaint, reads it back by id, adds follow-ups and
recognises its own among the hub's by the id the add returned or by their text, and after a
create whose answer was lost asks the hub for the complaint by the gateway's reference.
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from gateway._adapter import Hub
from gateway._errors import GatewayError, RecordError
from gateway._model import Complaint, FollowUp, HubComplaintDraft, Location, RawStatus
from gateway.testing._capabilities import supports
from gateway.testing._driver import KIT_REPORTER
from gateway.testing._interrupt import InterruptingTransport
from gateway.testing._kit import personal_data

FOLLOW_UP_TEXT = "Conformance kit: follow-up the gateway adds at the hub."


class HubDriver(Protocol):
    """What the kit needs to see of the hub beside the adapter."""

    def stored_complaint(self, ref: str) -> str:
        """The complaint ``ref`` as the hub keeps it, as text (its JSON, say): the kit checks
        that none of the reporter's personal data reached the hub."""
        ...


@dataclass(frozen=True)
class ServedHub:
    """A hub running for one check: where the adapter reaches it, and its driver."""

    base_url: str
    driver: HubDriver


def kit_complaint() -> Complaint:
    """The local complaint the kit sends to the hub, filed by :data:`KIT_REPORTER`."""
    filed = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    return Complaint(
        ref="kit-1",
        title="Lampu penerangan jalan mati",
        body="Lampu penerangan jalan di depan balai warga mati sejak tiga hari.",
        created_at=filed,
        updated_at=filed,
        status=RawStatus("baru"),
        location=Location(description="depan balai warga", subdistrict="Kit", district="Kit"),
        channel="web",
        reporter=KIT_REPORTER,
    )


def _lose_answer() -> None:
    raise httpx.ReadError("the answer was lost (conformance kit)")


class HubConformance:
    """Base class of a hub adapter's conformance tests: override :meth:`serve_hub`,
    :meth:`build_adapter` and :meth:`make_draft`."""

    def serve_hub(self) -> AbstractContextManager[ServedHub]:
        """Start a fresh hub on loopback and yield it; stop it on exit."""
        raise NotImplementedError(f"{type(self).__name__} must override serve_hub()")

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> Hub:
        """The hub adapter for the hub at ``base_url``, built with ``client`` (pass it as ``client=``)."""
        raise NotImplementedError(f"{type(self).__name__} must override build_adapter()")

    def make_draft(self, complaint: Complaint, gateway_ref: str) -> HubComplaintDraft:
        """The create the engine would send for ``complaint``: the hub's ids of its category,
        classification and channel, and the route's fields, as an instance's YAML maps them."""
        raise NotImplementedError(f"{type(self).__name__} must override make_draft()")

    @asynccontextmanager
    async def _adapter(self, hub: ServedHub, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Hub]:
        client = httpx.AsyncClient(transport=transport or httpx.AsyncHTTPTransport())
        try:
            adapter = self.build_adapter(hub.base_url, client)
            assert isinstance(adapter, Hub), f"build_adapter() returned {type(adapter).__name__}, not a gateway.Hub"
            assert adapter.http._client is client, (
                f"build_adapter() built {type(adapter).__name__} without the client the kit handed it: pass it on "
                "(client=client), or the kit cannot lose a create's answer"
            )
            try:
                yield adapter
            finally:
                await adapter.aclose()
        finally:
            await client.aclose()

    @staticmethod
    def _utc(what: str, value: datetime) -> None:
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (
            f"{what}: {value!r} is not a timezone-aware UTC time"
        )

    def check_create_read_back(self) -> None:
        """A created complaint reads back by the id the create returned, with times in UTC, and
        none of the reporter's personal data reached the hub."""

        async def check() -> None:
            with self.serve_hub() as served:
                async with self._adapter(served) as hub:
                    ref = await hub.create_complaint(self.make_draft(kit_complaint(), "gw-kit-create-1"))
                    assert ref, "create_complaint returned an empty id"
                    state = await hub.read_complaint(ref)
                stored = served.driver.stored_complaint(ref).lower()
            assert state.ref == ref, f"read_complaint({ref!r}) answered for complaint {state.ref!r}"
            assert state.status.code or state.status.name, f"complaint {ref!r}: read back without a status"
            for change in state.status_changes:
                self._utc(f"status change {change.ref!r}", change.changed_at)
            leaked = [name for name, value in personal_data(KIT_REPORTER).items() if value.lower() in stored]
            assert not leaked, f"complaint {ref!r}: the reporter's {', '.join(leaked)} reached the hub"

        asyncio.run(check())

    def check_follow_up_echo(self) -> None:
        """A follow-up the adapter added is among the complaint's follow-ups, found by the id the
        add returned (or, when it returns none, by its text): how the engine knows its own."""

        async def check() -> None:
            with self.serve_hub() as served:
                async with self._adapter(served) as hub:
                    ref = await hub.create_complaint(self.make_draft(kit_complaint(), "gw-kit-create-2"))
                    added = await hub.add_follow_up(ref, FOLLOW_UP_TEXT, gateway_ref="gw-kit-fu-2")
                    read = await hub.follow_ups(ref)
            errors = [r for r in read if isinstance(r, RecordError)]
            assert not errors, f"follow_ups: {len(errors)} RecordError(s), the first: {errors[0]}"
            mine = [
                f
                for f in read
                if isinstance(f, FollowUp) and (f.ref == added if added is not None else f.content == FOLLOW_UP_TEXT)
            ]
            how = f"the id {added!r} add_follow_up returned" if added is not None else "its text"
            assert len(mine) == 1, f"follow_ups: {len(mine)} follow-ups found by {how}, not 1"
            for follow_up in read:
                assert isinstance(follow_up, FollowUp)
                self._utc(f"follow-up {follow_up.ref!r}", follow_up.created_at)

        asyncio.run(check())

    def check_lost_create_answer(self) -> None:
        """After a create whose answer was lost (the hub created it), ``find_complaint`` finds
        the complaint by the gateway's reference, so the engine does not create it twice."""

        async def check() -> None:
            with self.serve_hub() as served:
                async with self._adapter(served) as hub:
                    if not supports(hub, "find_complaint"):
                        raise unittest.SkipTest("the adapter has no find_complaint: the engine asks an operator")
                counting = InterruptingTransport(httpx.AsyncHTTPTransport())
                async with self._adapter(served, counting) as hub:
                    await hub.create_complaint(self.make_draft(kit_complaint(), "gw-kit-create-3"))
                # The same create on a fresh adapter, its last answer (the create's) lost.
                losing = InterruptingTransport(
                    httpx.AsyncHTTPTransport(), after=counting.responses, action=_lose_answer
                )
                async with self._adapter(served, losing) as hub:
                    try:
                        await hub.create_complaint(self.make_draft(kit_complaint(), "gw-kit-create-4"))
                    except GatewayError:
                        pass
                    else:
                        raise AssertionError("create_complaint returned normally although its answer was lost")
                async with self._adapter(served) as hub:
                    found = await hub.find_complaint("gw-kit-create-4")
                    assert found, "find_complaint found nothing for a create the hub had done"
                    await hub.read_complaint(found)

        asyncio.run(check())

    def test_create_reads_back(self) -> None:
        self.check_create_read_back()

    def test_follow_up_echo(self) -> None:
        self.check_follow_up_echo()

    def test_find_complaint_after_a_lost_answer(self) -> None:
        self.check_lost_create_answer()
