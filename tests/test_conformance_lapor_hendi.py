"""The conformance kit (gateway.testing) against the built-in Lapor Hendi adapter and its
simulator over loopback HTTP, and against the lost-follow-up mistake of issue 11, which the
kit's watermark check must catch.

Deterministic: a seeded simulator whose clock moves only when the driver says.
"""

from __future__ import annotations

import dataclasses
import unittest
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import gateway
from gateway import (
    Complaint,
    FollowUp,
    InstanceContext,
    LocalApp,
    RawStatus,
    RecordError,
    Reporter,
    RetryPolicy,
    StatusChange,
    format_peer_time,
)
from gateway.simulation import SimClock, SimulatorServer
from gateway.testing import LocalAppConformance, ServedPeer, Stream
from lapor_gateway_adapters.lapor_hendi import LaporHendiApp
from lapor_gateway_adapters.lapor_hendi._adapter import OP_COMPLAINTS, TIME_FMT
from lapor_gateway_adapters.lapor_hendi._world import SOURCE_APP
from lapor_gateway_adapters.lapor_hendi.simulator import LaporHendiSimulator, create_simulator

NO_RETRY = RetryPolicy(attempts=1, initial_wait=0.001, max_wait=0.001)
OFFICER_STATUSES = ("terverifikasi", "dalam proses")


class LaporHendiDriver:
    """The kit's PeerDriver for the Lapor Hendi simulator: citizens and officers act through
    the simulator's own methods; a bad record is a stored record spoiled in place."""

    def __init__(self, sim: LaporHendiSimulator):
        self.sim = sim

    def now(self) -> datetime:
        return self.sim.clock.now()

    def advance(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def add_complaint(self, reporter: Reporter, **fields: object) -> str:
        pelapor = {
            "nama": reporter.name,
            "nik": reporter.nik,
            "telepon": reporter.phone,
            "email": reporter.email,
            "alamat": reporter.address,
        }
        return str(self.sim.submit_complaint(anonim=False, rahasia=False, pelapor=pelapor, lampiran=0, **fields))

    def add_anonymous_complaint(self, reporter: Reporter) -> str:
        ref = self.sim.submit_complaint(anonim=True, rahasia=False, lampiran=0)
        with self.sim.lock:  # the app keeps the identity of an anonymous complaint, and here serves it too
            self.sim.world._aduan[ref]["pelapor"] = {"nama": reporter.name, "nik": reporter.nik}
        return str(ref)

    def add_follow_up(self, complaint_ref: str) -> str:
        return str(self.sim.answer(int(complaint_ref), "Sudah kami cek ke lokasi, segera ditindaklanjuti."))

    def change_status(self, complaint_ref: str) -> None:
        with self.sim.lock:
            world = self.sim.world
            current = world.list_riwayat(id_aduan=int(complaint_ref))[-1]["status_baru"]
            new = OFFICER_STATUSES[1] if current == OFFICER_STATUSES[0] else OFFICER_STATUSES[0]
            world.set_status(
                int(complaint_ref), new, oleh="Admin Kota", sumber=SOURCE_APP, ref=None, now=self.sim.clock.now()
            )

    def add_malformed_record(self, stream: Stream, reporter: Reporter) -> str:
        if stream == "complaints":
            return self.add_complaint(reporter, judul=20261129)  # a number where the app sends a text
        complaint = int(self.add_complaint(reporter))
        if stream == "follow_ups":
            answer = self.sim.answer(complaint, "Akan kami tindak lanjuti.")
            with self.sim.lock:
                self.sim.world.tanggapan(answer).isi = None  # type: ignore[assignment]
            return str(answer)
        self.change_status(str(complaint))
        with self.sim.lock:
            entry = self.sim.world.list_riwayat(id_aduan=complaint)[-1]
            entry.status_baru = 7  # type: ignore[assignment]
            return str(entry.id_riwayat)


class TestLaporHendiConformance(LocalAppConformance):
    status_to_write = RawStatus("dalam proses", "dalam proses")

    @contextmanager
    def serve_peer(self) -> Iterator[ServedPeer]:
        sim = create_simulator(seed=29, clock=SimClock())
        sim.officers_active = False  # only the driver acts
        with SimulatorServer(sim, port=0) as server:
            yield ServedPeer(server.base_url, LaporHendiDriver(sim))

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        context = InstanceContext(
            name="lapor-hendi-kit",
            base_url=base_url,
            timezone=gateway.WIB,
            secrets={"api_key": "demo-lapor-hendi-key"},
            settings=LaporHendiApp.Settings(page_size=2),  # several pages: the walk can be interrupted between them
            retry=NO_RETRY,
        )
        return LaporHendiApp(context, client=client)


# --- the lost-follow-up mistake (issue 11) -----------------------------------------------------------------


class PerComplaintFollowUps(LaporHendiApp):
    """The first version of issue 11's third app: follow-ups read per complaint, for the
    complaints modified since the cursor, sorted by time before they are yielded. Each
    complaint's follow-ups are a walk of their own (Lapor Hendi has no per-complaint list, so
    the global one is filtered): a follow-up added meanwhile on a complaint already read, older
    than one on a complaint read after it, falls behind the cursor."""

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        modified = []
        async for complaint in self.complaints_since(since):
            if isinstance(complaint, Complaint) and complaint.ref not in modified:
                modified.append(complaint.ref)
        found: list[FollowUp] = []
        for ref in modified:
            async for item in super().follow_ups_since(since):
                if isinstance(item, FollowUp) and item.complaint_ref == ref:
                    found.append(item)
        for item in sorted(found, key=lambda f: (f.created_at, f.ref)):
            yield item


class NaiveLaporHendiKit(TestLaporHendiConformance):
    """The kit pointed at the naive adapter (not collected: no Test prefix)."""

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        app = super().build_adapter(base_url, client)
        return PerComplaintFollowUps(app.context, client=client)


def test_the_lost_follow_up_mistake_fails_the_watermark_check():
    with pytest.raises(AssertionError, match="follow_ups: records fell behind the cursor") as failed:
        NaiveLaporHendiKit().check_watermark("follow_ups")
    assert "neither yielded by the walk nor read again from its cursor" in str(failed.value)


def test_the_naive_adapter_passes_the_checks_without_change_so_only_the_watermark_check_catches_it():
    kit = NaiveLaporHendiKit()
    kit.check_ordering("follow_ups")
    kit.check_since_inclusive("follow_ups")
    kit.check_echo("follow_up")


# --- each check fails the mistake it is there for ------------------------------------------------------------


class ReadsTimesAsUtc(LaporHendiApp):
    """Reads and sends the app's WIB times as if they were UTC."""

    def __init__(self, context: InstanceContext, *, client: httpx.AsyncClient | None = None):
        super().__init__(dataclasses.replace(context, timezone=UTC), client=client)


class ForgetsItsEcho(LaporHendiApp):
    """Does not map ref_eksternal back to gateway_ref on follow-ups."""

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        async for item in super().follow_ups_since(since):
            yield dataclasses.replace(item, gateway_ref=None) if isinstance(item, FollowUp) else item


class NewestFirst(LaporHendiApp):
    """Yields the follow-ups newest first."""

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        items = [item async for item in super().follow_ups_since(since)]
        for item in reversed(items):
            yield item


class PagesByNumber(LaporHendiApp):
    """Walks the complaints by page number alone: a complaint updated during the walk moves to
    the end of the list and shifts the ones after it onto pages already read."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        page = 1
        while True:
            params: dict[str, Any] = {"per_halaman": self.settings.page_size, "halaman": page}
            if since is not None:
                params["diperbarui_sejak"] = format_peer_time(since, TIME_FMT, self.context.timezone)
            body = await self.http.request_json("GET", "/api/v1/aduan", params=params, operation=OP_COMPLAINTS)
            for raw in body["data"]:
                yield self._read(raw, OP_COMPLAINTS, "id_aduan", self._complaint)
            if page >= body["meta"]["total_halaman"]:
                return
            page += 1


class RaisesOnBadRecords(LaporHendiApp):
    """Lets a record it cannot read stop the walk."""

    def _read(self, raw: Any, operation: str, id_key: str, translate: Any) -> Any:
        read = super()._read(raw, operation, id_key, translate)
        if isinstance(read, RecordError):
            raise read
        return read


class SignsTheBody(LaporHendiApp):
    """Appends the reporter's name to the complaint's text."""

    def _complaint(self, r: Any) -> Complaint:
        complaint = super()._complaint(r)
        name = complaint.reporter.name if complaint.reporter else None
        return dataclasses.replace(complaint, body=f"{complaint.body}\n-- {name}")


class DropsTheLastComplaint(LaporHendiApp):
    """An off-by-one: the walk's last complaint is never yielded, in every walk alike, so the
    checks that compare the adapter's reads with each other cannot see it."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        items = [item async for item in super().complaints_since(since)]
        for item in items[:-1]:
            yield item


class DedupesFollowUpsByText(LaporHendiApp):
    """Takes a second follow-up with the same text on the same complaint for a repeat of the first."""

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        seen: set[tuple[str, str]] = set()
        async for item in super().follow_ups_since(since):
            if isinstance(item, FollowUp):
                if (item.complaint_ref, item.content) in seen:
                    continue
                seen.add((item.complaint_ref, item.content))
            yield item


class PassesOnOnlyItsOwnStatuses(LaporHendiApp):
    """Leaves out the status changes to 'terverifikasi', a status its author did not expect."""

    async def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError]:
        async for item in super().status_changes_since(since):
            if isinstance(item, StatusChange) and item.status.code == OFFICER_STATUSES[0]:
                continue
            yield item


class EndsQuietlyOnAFailedPage(LaporHendiApp):
    """Takes a page it could not fetch for the end of the list."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        try:
            async for item in super().complaints_since(since):
                yield item
        except gateway.PeerError:
            return


class ReturnsAfterAFailedWrite(LaporHendiApp):
    """Logs a follow-up write the app did not take and returns as if it had."""

    async def write_follow_up(self, complaint_ref: str, content: str, **kwargs: Any) -> str | None:
        try:
            return await super().write_follow_up(complaint_ref, content, **kwargs)
        except gateway.PeerError:
            return None


class AsksFromTheNextSecond(LaporHendiApp):
    """Walks by time by hand: page 1 again from a second after the newest time read, to get out
    of a page full of one second; the rest of a crowded second is lost."""

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError]:
        while True:
            params: dict[str, Any] = {"per_halaman": self.settings.page_size, "halaman": 1}
            if since is not None:
                params["diperbarui_sejak"] = format_peer_time(since, TIME_FMT, self.context.timezone)
            body = await self.http.request_json("GET", "/api/v1/aduan", params=params, operation=OP_COMPLAINTS)
            read = [self._read(raw, OP_COMPLAINTS, "id_aduan", self._complaint) for raw in body["data"]]
            for item in read:
                yield item
            times = [item.updated_at for item in read if isinstance(item, Complaint)]
            if body["meta"]["total_halaman"] <= 1 or not times:
                return
            since = max(times) + timedelta(seconds=1)


class AttachesFollowUpsToTheNewestComplaint(LaporHendiApp):
    """Gives every follow-up of a walk the complaint of the last one read (a closure over a loop
    variable, say): each still comes, on the wrong complaint."""

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError]:
        items = [item async for item in super().follow_ups_since(since)]
        last = [item.complaint_ref for item in items if isinstance(item, FollowUp)][-1:]
        for item in items:
            yield dataclasses.replace(item, complaint_ref=last[0]) if isinstance(item, FollowUp) else item


class IgnoresTheAnonymousFlag(LaporHendiApp):
    """Reads every complaint as named, with the pelapor the app serves."""

    def _complaint(self, r: Any) -> Complaint:
        complaint = super()._complaint(r)
        pelapor = r.raw.get("pelapor") or {}
        reporter = Reporter(name=pelapor.get("nama"), nik=pelapor.get("nik"))
        return dataclasses.replace(complaint, is_anonymous=False, reporter=reporter)


class ReadsTheStatusItWasFiledIn(LaporHendiApp):
    """Reads a complaint's status from a field that keeps the status it was filed in."""

    def _complaint(self, r: Any) -> Complaint:
        complaint = super()._complaint(r)
        return dataclasses.replace(complaint, status=RawStatus("belum terverifikasi", "belum terverifikasi"))


class SwapsLatitudeAndLongitude(LaporHendiApp):
    """Reads ``lat`` into the longitude and ``lng`` into the latitude: Semarang's 110.4 east
    becomes a latitude no place has."""

    def _complaint(self, r: Any) -> Complaint:
        complaint = super()._complaint(r)
        where = complaint.location
        if where is None:
            return complaint
        swapped = dataclasses.replace(where, latitude=where.longitude, longitude=where.latitude)
        return dataclasses.replace(complaint, location=swapped)


class DeclaresIdempotencyItDoesNotHave(LaporHendiApp):
    """Declares idempotent writes but sends a new ref_eksternal on every attempt."""

    attempts = 0

    async def write_follow_up(self, complaint_ref: str, content: str, **kwargs: Any) -> str | None:
        DeclaresIdempotencyItDoesNotHave.attempts += 1
        kwargs["gateway_ref"] = f"{kwargs['gateway_ref']}-{self.attempts}"
        return await super().write_follow_up(complaint_ref, content, **kwargs)


def kit_for(adapter: type[LaporHendiApp]) -> TestLaporHendiConformance:
    class Kit(TestLaporHendiConformance):
        def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
            return adapter(super().build_adapter(base_url, client).context, client=client)

    return Kit()


@pytest.mark.parametrize(
    ("adapter", "check", "args", "message"),
    [
        (ReadsTimesAsUtc, "check_time_zones", (), r"\+7\.00 h\): is the peer's time read in the instance's timezone"),
        (ForgetsItsEcho, "check_echo", ("follow_up",), "came back with gateway_ref None"),
        (NewestFirst, "check_ordering", ("follow_ups",), "A stream yields records oldest first"),
        (PagesByNumber, "check_watermark", ("complaints",), "complaints: records fell behind the cursor"),
        (RaisesOnBadRecords, "check_bad_records", ("complaints",), "raised RecordError on a malformed record"),
        (SignsTheBody, "check_personal_data", (), "the reporter's name appear"),
        (DeclaresIdempotencyItDoesNotHave, "check_idempotent", ("follow_up",), "left 2 records at the peer"),
        (DropsTheLastComplaint, "check_complete", ("complaints",), "the driver made were not read"),
        (DedupesFollowUpsByText, "check_complete", ("follow_ups",), "the driver made were not read"),
        (EndsQuietlyOnAFailedPage, "check_failure_raises", ("complaints",), "walk ended without raising"),
        (ReturnsAfterAFailedWrite, "check_write_failure_raises", ("follow_up",), "answered HTTP 500 to the write"),
        (AsksFromTheNextSecond, "check_crowded_second", (), "complaints filed at one instant were not read"),
        (AttachesFollowUpsToTheNewestComplaint, "check_complete", ("follow_ups",), "the engine would attach it"),
        (IgnoresTheAnonymousFlag, "check_anonymous", (), "filed anonymously, read with is_anonymous=False"),
        (ReadsTheStatusItWasFiledIn, "check_status_agrees", (), "but its newest status change"),
        (PassesOnOnlyItsOwnStatuses, "check_complete", ("status_changes",), "fewer status changes read than"),
        (SwapsLatitudeAndLongitude, "check_complete", ("complaints",), "location.latitude is outside -90 to 90"),
    ],
)
def test_each_check_fails_the_mistake_it_is_for(adapter, check, args, message):
    with pytest.raises(AssertionError, match=message):
        getattr(kit_for(adapter), check)(*args)
    getattr(TestLaporHendiConformance(), check)(*args)  # and the adapter without the mistake passes it


class LeavesTheKitsClientOut(TestLaporHendiConformance):
    """An author's build_adapter that does not pass the kit's client on (not collected)."""

    def build_adapter(self, base_url: str, client: httpx.AsyncClient) -> LocalApp:
        return LaporHendiApp(super().build_adapter(base_url, client).context)


def test_an_adapter_built_without_the_kits_client_fails_instead_of_skipping_the_watermark_checks():
    # The kit's transport is what changes the world mid-walk: without it the watermark checks
    # counted no response and skipped as if a walk took one request.
    try:
        with pytest.raises(AssertionError, match=r"without the client the kit handed it: pass it on \(client=client\)"):
            LeavesTheKitsClientOut().check_watermark("complaints")
    except unittest.SkipTest as skipped:  # what it did before: a false pass
        pytest.fail(f"the watermark check skipped: {skipped}")
