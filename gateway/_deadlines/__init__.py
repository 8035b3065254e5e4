"""Working-day deadlines of complaints: the calendar (national holidays, cuti bersama, regional
days, corrections) and the tiers (verify, answer, close). See docs/deadlines.md."""

from gateway._deadlines._calendar import CATEGORIES, WorkingCalendar, national_days, years_without_cuti_bersama
from gateway._deadlines._rules import LAPOR_RULE, TIERS, DeadlineRules, Tier

__all__ = [
    "CATEGORIES",
    "LAPOR_RULE",
    "TIERS",
    "DeadlineRules",
    "Tier",
    "WorkingCalendar",
    "national_days",
    "years_without_cuti_bersama",
]
