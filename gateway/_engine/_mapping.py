"""A route's translation tables, read from the instances' YAML: statuses both
ways, and a local complaint's category, classification, channel and agency to hub ids."""

from __future__ import annotations

from dataclasses import dataclass

from gateway._config import InstanceConfig
from gateway._errors import MappingError
from gateway._model import Complaint, Status


def same_text(a: str | None, b: str | None) -> bool:
    """Whether two follow-up texts are the same, whitespace aside (peers trim and re-wrap)."""
    return " ".join((a or "").split()) == " ".join((b or "").split())


@dataclass(frozen=True)
class Route:
    local: InstanceConfig
    hub: InstanceConfig

    def local_status(self, code: str) -> Status | None:
        return self.local.spec.statuses.get(code)

    def hub_status(self, code: str) -> Status | None:
        return self.hub.spec.statuses.get(code)

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
        return {"category_id": category_id, "channel_id": channel_id, "classification_id": classification_id,
                "disposition_id": self.hub_institution(complaint.agency)}

    def hub_institution(self, agency: str | None) -> str | None:
        """The hub institution of a local agency (OPD). None when the app has no agency
        for it, or when the route maps no agencies at all (forwarding is then off)."""
        if agency is None or not self.local.spec.agencies:
            return None
        found = self.local.spec.agencies.get(agency)
        if found is None:
            raise MappingError(self.local.name, "agencies", agency)
        return found
