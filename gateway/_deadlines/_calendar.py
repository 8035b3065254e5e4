"""Working days: Monday to Friday, except Indonesia's public holidays and its cuti bersama
(the joint leave days the government decrees around them), plus the region's own days and the
corrections an operator writes in YAML. Counted in the instance's own zone (WIB, WITA, WIT):
a complaint filed at 23:30 WITA on a Friday is a Friday complaint in Makassar and a Friday
complaint at 22:30 in Semarang, but one filed at 00:30 WITA on Saturday is Friday's in WIB.

The national days come from the ``holidays`` package (categories ``public`` and
``government``: the latter is cuti bersama), which its maintainers update as the decrees
(SKB) appear; a date the decree moves after the package was released is corrected in YAML.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from importlib.metadata import version

import holidays

#: The categories of the ``holidays`` package's Indonesia taken as days off: public holidays
#: (hari libur nasional) and government days (cuti bersama).
CATEGORIES = ("public", "government")


@lru_cache(maxsize=64)
def national_days(year: int) -> Mapping[date, str]:
    """Indonesia's public holidays and cuti bersama of ``year``, with their Indonesian names."""
    found = holidays.country_holidays("ID", years=year, categories=CATEGORIES, language="id")
    return dict(sorted(found.items()))


@lru_cache(maxsize=64)
def cuti_bersama_known(year: int) -> bool:
    """Whether the installed ``holidays`` package has any cuti bersama of ``year``: it gets them
    once the year's decree is out, and until then their days count as working days."""
    return bool(holidays.country_holidays("ID", years=year, categories=("government",)))


#: How days are counted, in the rules' fingerprint, so that deadlines stored by an earlier count are
#: computed again. 2: a filing at 00:00:00 counts from its own day (1 took it for the end of the day
#: before, and such a complaint lost a working day; a local app that sends dates alone files every
#: complaint at midnight).
COUNTING = 2

#: How far ahead a deadline of a complaint filed today may fall, about: the longest tier chains
#: (60 working days for a whistleblowing answer) reach three months and more.
HORIZON = timedelta(days=120)


def years_without_cuti_bersama(today: date, added: Iterable[date], horizon: timedelta = HORIZON) -> list[int]:
    """The years from ``today`` to ``horizon`` ahead with no cuti bersama known to the package
    and no day ``added`` in gateway.yaml's calendar (where the decree's days go until then)."""
    corrected = {day.year for day in added}
    years = range(today.year, (today + horizon).year + 1)
    return [year for year in years if year not in corrected and not cuti_bersama_known(year)]


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days in one zone. ``added``: days off beyond the national ones
    (a regional holiday, a decree the package does not know yet), by date with a name;
    ``removed``: national days that are working days after all (a holiday the government moved)."""

    zone: tzinfo
    added: Mapping[date, str] = field(default_factory=dict)
    removed: frozenset[date] = frozenset()

    def day_off(self, day: date) -> str | None:
        """Why ``day`` is not a working day (its holiday's name, or "weekend"); None if it is one."""
        if day in self.added:
            return self.added[day]
        if day.weekday() >= 5:
            return "weekend"
        if day in self.removed:
            return None
        return national_days(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        return self.day_off(day) is None

    def add_working_days(self, start: datetime, days: int, *, after_deadline: bool = False) -> datetime:
        """The end of the ``days``-th working day after ``start``'s own day, in this zone, as UTC:
        a complaint filed on Monday with 3 working days is due by the end of Thursday (its filing
        day does not count, whatever its hour, 00:00:00 included; a day is whole in the zone it is
        counted in). ``after_deadline``: ``start`` is another tier's deadline, the midnight that
        ends its last day, so the count goes on from that day: the day the midnight begins is
        the first one counted, not lost. Only the caller knows which a midnight is (a citizen
        files at 00:00:00 too), so it is told, not guessed from the hour."""
        local = start.astimezone(self.zone)
        day = local.date()
        if after_deadline and local.time() == datetime.min.time():
            day -= timedelta(days=1)
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        end = datetime.combine(day + timedelta(days=1), datetime.min.time()).replace(tzinfo=self.zone)
        return end.astimezone(UTC)

    def fingerprint_parts(self) -> Iterable[str]:
        """What decides this calendar, for the rules' fingerprint: the zone, how days are counted
        (:data:`COUNTING`), the corrections and the package's version (a new release may move a day)."""
        yield f"zone={self.zone}"
        yield f"counting={COUNTING}"
        yield f"holidays={version('holidays')}"
        yield "added=" + ",".join(f"{d.isoformat()}" for d in sorted(self.added))
        yield "removed=" + ",".join(d.isoformat() for d in sorted(self.removed))


def fingerprint(parts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
