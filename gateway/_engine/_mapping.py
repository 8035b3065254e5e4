"""A route's translation tables, read from the instances' YAML: statuses both
ways, and a local complaint's category, classification, channel and agency to hub ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from gateway._config import InstanceConfig
from gateway._config._schema import Deadlines
from gateway._deadlines import DeadlineRules
from gateway._deadlines._config import rules_for
from gateway._errors import MappingError
from gateway._model import Complaint, Status

#: The order in which a citizen sees canonical statuses move (the default of ``status_order``):
#: a hold is part of the work, and every way of closing is the end.
CANONICAL_RANK: dict[Status, int] = {
    Status.UNVERIFIED: 0,
    Status.VERIFIED: 1,
    Status.FORWARDED: 2,
    Status.ON_HOLD: 3,
    Status.IN_PROGRESS: 3,
    Status.DONE: 4,
    Status.REJECTED: 4,
    Status.ARCHIVED: 4,
}


def same_text(a: str | None, b: str | None) -> bool:
    """Whether two follow-up texts are the same, whitespace aside (peers trim and re-wrap)."""
    return " ".join((a or "").split()) == " ".join((b or "").split())


@dataclass(frozen=True)
class Route:
    local: InstanceConfig
    hub: InstanceConfig
    # gateway.yaml's ``deadlines:`` (the tiers and corrections every route starts from)
    deadline_defaults: Deadlines = field(default_factory=Deadlines)

    @cached_property
    def deadlines(self) -> DeadlineRules:
        """The working-day deadline rules of this app's complaints (docs/deadlines.md)."""
        return rules_for(self.local.spec, self.deadline_defaults)

    def local_status(self, code: str, name: str | None = None) -> Status | None:
        return self.local.spec.status_of(code, name)

    def hub_status(self, code: str | None, name: str | None = None) -> Status | None:
        return self.hub.spec.status_of(code, name)

    def status_rank(self, local_code: str | None) -> int | None:
        """Where a local status stands in the order the citizen sees statuses move
        (``status_order``; by default the canonical order); None when unknown."""
        if local_code is None:
            return None
        key = " ".join(local_code.split()).casefold()
        for rank, item in enumerate(self.local.spec.status_order):
            names = item if isinstance(item, list) else [item]
            if key in {" ".join(n.split()).casefold() for n in names}:
                return rank
        if self.local.spec.status_order:
            return None
        status = self.local_status(local_code)
        return None if status is None else CANONICAL_RANK[status]

    def create_at_hub(self, complaint: Complaint, status: Status | None, now: datetime) -> str | None:
        """Why a complaint is not created at the hub by the route's rule (None: it is)."""
        rule = self.local.spec.route.create_at_hub if self.local.spec.route else None
        if rule is None:
            return None
        if rule.statuses is not None:
            wanted = {" ".join(s.split()).casefold() for s in rule.statuses}
            if " ".join(complaint.status.code.split()).casefold() not in wanted:
                return f"local status {complaint.status.code!r} is not in route.create_at_hub.statuses"
        elif status is not None and status.is_closed:
            return f"closed in the local app ({complaint.status.code!r}); route.create_at_hub creates open ones"
        if rule.filed_within_days is not None and now - complaint.created_at > timedelta(days=rule.filed_within_days):
            return f"filed more than {rule.filed_within_days:g} days ago (route.create_at_hub.filed_within_days)"
        return None

    def local_status_to_write(self, status: Status) -> str:
        try:
            return self.local.spec.status_writes[status]
        except KeyError:
            raise MappingError(self.local.name, "status_writes", status.value) from None

    def hub_ids(self, complaint: Complaint) -> dict[str, str | None]:
        """category_id, classification_id and channel_id for the hub. An unmapped
        category or channel is an error (parked for the admin), never a guess."""
        category_id = None
        if complaint.category is not None:
            slug = self.local.spec.categories.get(complaint.category)
            if slug is None:
                raise MappingError(self.local.name, "categories", complaint.category)
            category_id = self.hub.spec.categories[slug]
        channel_id = None
        if complaint.channel is not None:
            canonical = self.local.spec.channels.get(complaint.channel)
            if canonical is None:
                raise MappingError(self.local.name, "channels", complaint.channel)
            channel_id = self.hub.spec.channels[canonical]
        classification_id = self.hub.spec.classifications.get(complaint.classification)
        if classification_id is None:
            raise MappingError(self.hub.name, "classifications", complaint.classification.value)
        return {
            "category_id": category_id,
            "channel_id": channel_id,
            "classification_id": classification_id,
            "disposition_id": self.hub_institution(complaint.agency),
        }

    def hub_institution(self, agency: str | None) -> str | None:
        """The hub institution of a local agency (OPD). None when the app has no agency
        for it, or when the route maps no agencies at all (forwarding is then off)."""
        if agency is None or not self.local.spec.agencies:
            return None
        found = self.local.spec.agencies.get(agency)
        if found is None:
            raise MappingError(self.local.name, "agencies", agency)
        return found
