"""The deadlines of a complaint, by tier, and the rules that set them.

Three tiers, after LAPOR!'s own rule: the hub verifies and forwards a complaint within 3 working
days (``verify``), the agency answers within 5 (``answer``), and a complaint answered closes after
10 working days without a reply (``close``). Each tier counts from the step before it: ``verify``
from when the citizen filed the complaint at the local app; ``answer`` from when the hub verified
it (until then, from the ``verify`` deadline); ``close`` from the agency's answer (until then, from
the ``answer`` deadline). A route may set other numbers, and other numbers per classification
(Semarang's Perwal 5/2023: 5, 14 or 60 working days by kind of complaint).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway._deadlines._calendar import WorkingCalendar, fingerprint


class Tier(str, enum.Enum):  # noqa: UP042 (as gateway._model.Status)
    VERIFY = "verify"
    ANSWER = "answer"
    CLOSE = "close"

    def __str__(self) -> str:
        return self.value


#: The tiers in the order a complaint meets them; each counts from the one before.
TIERS = (Tier.VERIFY, Tier.ANSWER, Tier.CLOSE)

#: LAPOR!'s rule: working days per tier.
LAPOR_RULE: Mapping[Tier, int] = MappingProxyType({Tier.VERIFY: 3, Tier.ANSWER: 5, Tier.CLOSE: 10})


@dataclass(frozen=True)
class DeadlineRules:
    """The deadline rules of one local app's route: working days per tier (``tiers``), other
    numbers per classification (``by_classification``: only the tiers it names), and the
    calendar they are counted in."""

    calendar: WorkingCalendar
    tiers: Mapping[Tier, int] = field(default_factory=lambda: dict(LAPOR_RULE))
    by_classification: Mapping[str, Mapping[Tier, int]] = field(default_factory=dict)
    # fingerprints by classification, computed once (read for every complaint at a refresh)
    _fingerprints: dict[str | None, str] = field(default_factory=dict, init=False, compare=False, repr=False)

    def days(self, classification: str | None) -> dict[Tier, int]:
        days = dict(self.tiers)
        days.update(self.by_classification.get(str(classification), {}))
        return days

    def fingerprint(self, classification: str | None) -> str:
        """Changes when anything that decides this classification's deadlines changes: stored
        deadlines with another fingerprint are computed again."""
        found = self._fingerprints.get(classification)
        if found is None:
            days = self.days(classification)
            parts = [*self.calendar.fingerprint_parts(), *(f"{t}={days[t]}" for t in TIERS)]
            found = self._fingerprints[classification] = fingerprint(parts)
        return found

    def due(self, tier: Tier, classification: str | None, start: datetime, *, after_deadline: bool = False) -> datetime:
        """``after_deadline``: ``start`` is the tier before's deadline, not a time something
        happened (see :meth:`WorkingCalendar.add_working_days`)."""
        return self.calendar.add_working_days(start, self.days(classification)[tier], after_deadline=after_deadline)

    def schedule(
        self, classification: str | None, filed_at: datetime, met: Mapping[Tier, datetime | None]
    ) -> dict[Tier, tuple[datetime, datetime]]:
        """(start, due) of each tier: each counts from when the tier before it was met, or,
        while it is not, from the tier before's deadline."""
        out: dict[Tier, tuple[datetime, datetime]] = {}
        start, after_deadline = filed_at, False
        for tier in TIERS:
            due = self.due(tier, classification, start, after_deadline=after_deadline)
            out[tier] = (start, due)
            reached = met.get(tier)
            start, after_deadline = (reached, False) if reached is not None else (due, True)
        return out
