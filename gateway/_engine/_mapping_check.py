"""``gateway mapping check``: the values the gateway has seen that its YAML does not
map (categories, channels, agencies, statuses), and agencies mapped to institutions
the hub does not list. Read from the store: it needs no call to either peer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import col, func, select

from gateway._config import GatewayConfig
from gateway._store import EventKind, Store
from gateway._store._reference import reference, reference_fetched_at
from gateway._store._tables import ComplaintRow, EventRow


@dataclass(frozen=True)
class Finding:
    instance: str  # whose YAML the fix goes into
    file: str
    table: str  # the YAML table: categories, channels, agencies, statuses
    value: str
    seen: int  # complaints (or status changes) that carried it
    problem: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def mapping_check(config: GatewayConfig, store: Store) -> list[Finding]:
    findings: list[Finding] = []
    hubs = {h.name: h for h in config.hubs()}
    with store.session() as s:
        for local in config.local_apps():
            spec, file = local.spec, str(local.path)

            def seen(column: Any, instance: str = local.name) -> list[tuple[str, int]]:
                """(value, complaints) of a column of the instance's complaints, where set."""
                rows = s.exec(
                    select(column, func.count())
                    .where(ComplaintRow.local_instance == instance, col(column).is_not(None))
                    .group_by(column)
                ).all()
                return [(str(value), int(n)) for value, n in rows]

            for value, n in seen(ComplaintRow.category):
                if value not in spec.categories:
                    findings.append(Finding(local.name, file, "categories", value, n, "no mapping"))
            for value, n in seen(ComplaintRow.channel):
                if value not in spec.channels:
                    findings.append(Finding(local.name, file, "channels", value, n, "no mapping"))
            # Looked up as the sync looks it up (case and spacing do not matter): an exact
            # comparison reported values that map fine.
            for value, n in seen(ComplaintRow.local_status_code):
                if spec.status_of(value) is None:
                    findings.append(Finding(local.name, file, "statuses", value, n, "no mapping"))
            route_hub = hubs.get(spec.route.hub) if spec.route else None
            institutions = {i.ref: i for i in reference(store, route_hub.name, "institutions")} if route_hub else {}
            agencies = seen(ComplaintRow.agency)
            if spec.agencies:
                for value, n in agencies:
                    if value not in spec.agencies:
                        findings.append(Finding(local.name, file, "agencies", value, n, "no mapping"))
                for value, institution in spec.agencies.items():
                    if route_hub is not None and institutions and institution not in institutions:
                        findings.append(
                            Finding(
                                local.name,
                                file,
                                "agencies",
                                value,
                                0,
                                (f"maps to institution {institution}, which {route_hub.name} does not list"),
                            )
                        )
        for hub in hubs.values():
            # A hub's status maps by its name first, then its code (``status_of``, as the sync
            # maps it): comparing the code alone reported every status of the shipped sp4n.yaml,
            # a table of names, as unmapped. The name is what the YAML's row is written with.
            unmapped: dict[str, int] = {}
            for code, name, n in s.exec(
                select(EventRow.raw_status_code, EventRow.raw_status_name, func.count())
                .where(
                    EventRow.origin == hub.name,
                    EventRow.kind == EventKind.STATUS_CHANGE,
                    col(EventRow.raw_status_code).is_not(None),
                )
                .group_by(col(EventRow.raw_status_code), col(EventRow.raw_status_name))
            ).all():
                if hub.spec.status_of(code, name) is None:
                    value = str(name or code)
                    unmapped[value] = unmapped.get(value, 0) + n
            for value, n in unmapped.items():
                findings.append(Finding(hub.name, str(hub.path), "statuses", value, n, "no mapping"))
    return findings


def reference_age(config: GatewayConfig, store: Store) -> dict[str, str | None]:
    """When each hub's institutions were last read (ISO time), None for never."""
    return {
        h.name: (lambda t: t.isoformat() if t else None)(reference_fetched_at(store, h.name, "institutions"))
        for h in config.hubs()
    }
