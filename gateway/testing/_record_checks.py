"""The conformance kit's checks of single records: echoes of the adapter's own writes,
declared idempotency, bad records, personal data."""

from __future__ import annotations

import dataclasses
import functools
import unittest
from collections.abc import Callable

import httpx

from gateway._adapter import LocalApp
from gateway._errors import PeerError
from gateway._model import Complaint, FollowUp, StatusChange
from gateway.testing._capabilities import Write, declares_idempotent
from gateway.testing._driver import KIT_REPORTER, PeerDriver, Stream
from gateway.testing._interrupt import FailingTransport
from gateway.testing._kit import STEP, KitBase, describe, personal_data, record_of, texts_of
from gateway.testing._streams import Read, read_stream

ECHO_TEXT = "Conformance kit: follow-up written by the gateway."


class RecordChecks(KitBase):
    """Echoes, idempotency, bad records and personal data."""

    # --- writes: echoes and idempotency ------------------------------------------------------------------

    async def _write(self, app: LocalApp, write: Write, ref: str, gateway_ref: str) -> str | None:
        if write == "follow_up":
            return await app.write_follow_up(ref, ECHO_TEXT, author=None, gateway_ref=gateway_ref)
        assert self.status_to_write is not None
        return await app.write_status(ref, self.status_to_write, note=None, gateway_ref=gateway_ref)

    def _written(
        self, write: Write, times: int, *, declared_idempotent: bool = False
    ) -> tuple[list[FollowUp | StatusChange], list[str | None], str]:
        """File a complaint, write ``write`` to it ``times`` times with one gateway_ref, and
        return the records of that complaint the adapter reads back that are such writes
        (skipped when ``declared_idempotent`` is asked and the adapter does not declare it)."""
        if write == "status" and self.status_to_write is None:
            raise unittest.SkipTest("status_to_write is not set: no status the kit may write")
        gateway_ref = f"gw-kit-{write}-1"

        async def check() -> tuple[list[FollowUp | StatusChange], list[str | None]]:
            with self.serve_peer() as peer:
                ref = peer.driver.add_complaint(KIT_REPORTER)
                peer.driver.advance(STEP)
                async with self._adapter(peer) as app:
                    if declared_idempotent and not declares_idempotent(app, write):
                        raise unittest.SkipTest(f"the adapter does not declare {write} writes idempotent")
                    ids = [await self._write(app, write, ref, gateway_ref) for _ in range(times)]
                    read = await read_stream(app, "follow_ups" if write == "follow_up" else "status_changes", None)
            self._clean(read)
            status = self.status_to_write
            mine = [
                r
                for r in read.records
                if isinstance(r, (FollowUp, StatusChange))
                and r.complaint_ref == ref
                and (
                    (isinstance(r, FollowUp) and r.content == ECHO_TEXT)
                    or (isinstance(r, StatusChange) and status is not None and r.status.code == status.code)
                )
            ]
            return mine, ids

        mine, ids = self._run(check)
        return mine, ids, gateway_ref

    def check_echo(self, write: Write) -> None:
        """A follow-up or status the adapter wrote comes back carrying its gateway_ref, so the
        engine knows it for its own and does not send it back where it came from."""
        mine, ids, gateway_ref = self._written(write, 1)
        assert mine, f"{write}: the write (id {ids[0]!r}) is not among the records read back"
        for record in mine:
            assert record.gateway_ref == gateway_ref, (
                f"{write}: {describe(record)} written by the adapter came back with gateway_ref "
                f"{record.gateway_ref!r}, not {gateway_ref!r}: the engine would take it for the peer's own"
            )

    def check_idempotent(self, write: Write) -> None:
        """A write the adapter declares idempotent, sent twice with one gateway_ref (the engine
        resends one whose answer was lost), leaves one record at the peer."""
        mine, ids, _ = self._written(write, 2, declared_idempotent=True)
        assert len(mine) == 1, (
            f"{write}: the same write sent twice with one gateway_ref left {len(mine)} records at the peer "
            f"(ids {ids!r}), though the adapter declares it idempotent: a resent write would be doubled"
        )

    def check_write_failure_raises(self, write: Write) -> None:
        """A write the peer answers with HTTP 500 (it may have been done) or 422 (refused)
        raises a ``gateway.PeerError``: a write that returns is taken for done, and what it
        carried never reaches the app."""
        if write == "status" and self.status_to_write is None:
            raise unittest.SkipTest("status_to_write is not set: no status the kit may write")

        async def attempt(status: int) -> str | None:
            with self.serve_peer() as peer:
                ref = peer.driver.add_complaint(KIT_REPORTER)
                peer.driver.advance(STEP)
                transport = FailingTransport(httpx.AsyncHTTPTransport(), after=0, status=status, writes_only=True)
                async with self._adapter(peer, transport) as app:
                    try:
                        returned = await self._write(app, write, ref, f"gw-kit-{write}-failed")
                    except PeerError:
                        return None
                    return f"returned {returned!r}"

        for status in (500, 422):
            outcome = self._run(functools.partial(attempt, status))
            assert outcome is None, (
                f"{write}: the peer answered HTTP {status} to the write, and the adapter {outcome} instead of "
                "raising a PeerError (AmbiguousOutcomeError, PermanentPeerError: self.http raises them; let them "
                "out): the engine takes a write that returns for done"
            )

    # --- bad records and personal data --------------------------------------------------------------------

    def check_bad_records(self, stream: Stream) -> None:
        """A record the adapter cannot read is yielded as a ``gateway.RecordError`` in its place
        (not raised: the records after it still come), and its reason holds no personal data."""

        async def check() -> tuple[Read, list[str], str]:
            with self.serve_peer() as peer:
                driver = peer.driver
                good = [driver.add_complaint(KIT_REPORTER)]
                driver.advance(STEP)
                try:
                    bad = driver.add_malformed_record(stream, KIT_REPORTER)
                except NotImplementedError:
                    raise unittest.SkipTest(f"the driver cannot make a malformed {stream} record") from None
                driver.advance(STEP)
                if stream == "complaints":
                    good.append(driver.add_complaint(KIT_REPORTER))
                elif stream == "follow_ups":
                    good = [driver.add_follow_up(good[0])]
                else:
                    try:
                        driver.change_status(good[0])
                    except NotImplementedError:
                        raise unittest.SkipTest("the driver cannot change a status") from None
                async with self._adapter(peer) as app:
                    try:
                        read = await read_stream(app, stream, None)
                    except Exception as exc:
                        raise AssertionError(
                            f"{stream}: raised {type(exc).__name__} on a malformed record instead of yielding a "
                            "gateway.RecordError in its place"
                        ) from exc
            return read, good, bad

        read, good, bad = self._run(check)
        assert read.errors, f"{stream}: the malformed record {bad!r} was not yielded as a gateway.RecordError"
        came = {r.ref for r in read.records} | {r.complaint_ref for r in read.records if not isinstance(r, Complaint)}
        assert set(good) <= came, (
            f"{stream}: the records after the malformed one did not all come (missing {sorted(set(good) - came)})"
        )
        values = personal_data(KIT_REPORTER).values()
        for error in read.errors:
            text = f"{error} {error.reason!r} {error!r}".lower()
            leaked = [v for v in values if v.lower() in text]
            assert not leaked, f"{stream}: a RecordError's text holds the reporter's personal data"

    def _read_filed(self, file: Callable[[PeerDriver], str]) -> tuple[Complaint, str]:
        """The complaint ``file(driver)`` files on a fresh peer, as a walk from the start reads it,
        and its ref."""

        async def check() -> tuple[Complaint, str]:
            with self.serve_peer() as peer:
                ref = file(peer.driver)
                async with self._adapter(peer) as app:
                    read = await read_stream(app, "complaints", None)
            self._clean(read)
            complaint = record_of(read, ref)
            assert isinstance(complaint, Complaint)
            return complaint, ref

        return self._run(check)

    def check_anonymous(self) -> None:
        """A complaint filed anonymously comes with ``is_anonymous`` and ``reporter=None``, and
        none of the identity the app keeps for it anywhere else, even when the app serves it.
        Skipped when the driver has no ``add_anonymous_complaint`` (an optional method)."""

        def file(driver: PeerDriver) -> str:
            add = getattr(driver, "add_anonymous_complaint", None)
            if add is None:
                raise unittest.SkipTest("the driver has no add_anonymous_complaint")
            try:
                return str(add(KIT_REPORTER))
            except NotImplementedError as exc:
                raise unittest.SkipTest(f"the driver cannot file an anonymous complaint: {exc}") from None

        complaint, ref = self._read_filed(file)
        assert complaint.is_anonymous, (
            f"complaint {ref!r}: filed anonymously, read with is_anonymous=False: the hub would show it as a "
            "named complaint"
        )
        assert complaint.reporter is None, (
            f"complaint {ref!r}: anonymous, read with a Reporter: an anonymous complaint passes on no identity at all"
        )
        values = personal_data(KIT_REPORTER)
        for text in [*texts_of(complaint), repr(complaint)]:
            leaked = [name for name, value in values.items() if value.lower() in text.lower()]
            assert not leaked, f"complaint {ref!r}: anonymous, yet the reporter's {', '.join(leaked)} appear(s) in it"

    def check_personal_data(self) -> None:
        """The reporter's identity is in ``Complaint.reporter`` only: in no title, body,
        location or other field of the complaint, and not in its ``repr``."""

        complaint, ref = self._read_filed(lambda driver: driver.add_complaint(KIT_REPORTER))
        values = personal_data(KIT_REPORTER)
        assert complaint.reporter is not None, f"complaint {ref!r}: filed with a reporter, read with reporter=None"
        kept = personal_data(complaint.reporter)
        assert kept and all(values.get(name) == value for name, value in kept.items()), (
            f"complaint {ref!r}: the Reporter read holds none of the reporter's fields, or other values in them"
        )
        outside = dataclasses.replace(complaint, reporter=None)
        for text in [*texts_of(outside), repr(complaint)]:
            leaked = [name for name, value in values.items() if value.lower() in text.lower()]
            assert not leaked, (
                f"complaint {ref!r}: the reporter's {', '.join(leaked)} appear(s) outside Complaint.reporter"
            )
