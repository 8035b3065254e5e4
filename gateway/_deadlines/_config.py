"""The deadline rules of a local app's route, from its YAML (``route.deadlines``, its
``timezone``) over gateway.yaml's ``deadlines:`` over LAPOR!'s rule."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway._config._schema import Deadlines, InstanceSettings
from gateway._deadlines._calendar import WorkingCalendar
from gateway._deadlines._rules import LAPOR_RULE, DeadlineRules, Tier


def rules_for(local: InstanceSettings, defaults: Deadlines | None = None) -> DeadlineRules:
    defaults = defaults or Deadlines()
    route = local.route.deadlines if local.route else None
    tiers = dict(LAPOR_RULE)
    tiers.update({Tier(t): d for t, d in defaults.tiers.given().items()})
    added = {d.day: d.name for d in defaults.calendar.add}
    removed = set(defaults.calendar.remove)
    by_classification = {}
    if route is not None:
        tiers.update({Tier(t): d for t, d in route.tiers.given().items()})
        by_classification = {
            c.value: {Tier(t): d for t, d in given.given().items()} for c, given in route.classifications.items()
        }
        # The region's days come on top of the national corrections; a region may also work on a
        # national day (removed) or take one back that gateway.yaml removed (added).
        added.update({d.day: d.name for d in route.calendar.add})
        removed = (removed - set(added)) | set(route.calendar.remove)
        for day in route.calendar.remove:
            added.pop(day, None)
    calendar = WorkingCalendar(zone=ZoneInfo(local.timezone), added=added, removed=frozenset(removed))
    return DeadlineRules(calendar=calendar, tiers=tiers, by_classification=by_classification)
