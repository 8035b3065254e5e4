"""What an adapter author gives the conformance kit: the peer, served, and a driver that
changes the peer's world the way its own people would (a citizen files, an officer
answers or moves a status on, a record goes bad, time passes).

The driver is the only peer-specific code a kit run needs besides the adapter itself.
Its methods are called from the test's thread, between and during the adapter's
requests, so they must act on the peer's world at once and return (a simulator's
method that takes its lock is right; sleeping or polling is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from gateway._model import Reporter

__all__ = ["KIT_REPORTER", "STREAMS", "PeerDriver", "ServedPeer", "Stream"]

#: The three streams a local app is read through (the names of the methods without ``_since``).
Stream = Literal["complaints", "follow_ups", "status_changes"]
STREAMS: tuple[Stream, ...] = ("complaints", "follow_ups", "status_changes")

#: The identity the kit files its complaints with: made-up values, distinctive enough that
#: finding one of them in a text field, an error or a ``repr`` cannot be chance.
KIT_REPORTER = Reporter(
    name="Sulastri Kitwidodo",
    nik="3374094512880007",
    phone="081298765431",
    email="sulastri.kitwidodo@contoh.test",
    address="Jl. Kitwidodo Raya No. 17, RT 03/RW 05",
)


class PeerDriver(Protocol):
    """Changes the peer's world. A method the peer cannot do (a peer without status history
    has no ``change_status``) raises ``NotImplementedError``: the tests that need it are
    skipped with that reason."""

    def now(self) -> datetime:
        """The peer's clock (timezone-aware): what it stamps a record made now with, before
        it shows that time in its own zone and precision."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the peer's clock on. The kit steps by whole seconds at least, so that
        records it makes one after the other have distinct times (but for the crowded-second
        check, which files several complaints at one instant, as a bulk import does)."""
        ...

    def add_complaint(self, reporter: Reporter) -> str:
        """A citizen files a complaint now, not anonymous and not confidential, with the
        reporter's identity in whichever fields the peer keeps it; returns the peer's id."""
        ...

    def add_follow_up(self, complaint_ref: str) -> str:
        """One of the app's officers answers the complaint now (any text); returns the
        follow-up's id."""
        ...

    def change_status(self, complaint_ref: str) -> None:
        """One of the app's officers moves the complaint to another status now. It is a
        new entry of the status changes and moves the complaint's update time."""
        ...

    def add_malformed_record(self, stream: Stream, reporter: Reporter) -> str:
        """Make one record of ``stream`` that a correct adapter cannot read (a required field
        missing, or of the wrong type), on a complaint filed by ``reporter``, now; returns the
        bad record's id. The peer serves it in its list as it would a good one."""
        ...


@dataclass(frozen=True)
class ServedPeer:
    """A peer running for one check: where the adapter reaches it, and its driver."""

    base_url: str
    driver: PeerDriver
