"""What the dashboard shows, read from the store in one go: the figures of ``gateway status``
(:func:`~gateway._store._report.status_report`, one concept in one place), the deliveries
waiting for an operator, the files held back from the hub, deadlines by agency, breakers and
budgets, recent errors and the operators' recent actions; and beside them what this daemon
counted since it started (its metrics, :meth:`gateway._web._metrics.Metrics.own_figures`).

The result is plain data (JSON as it is served at ``/dashboard/api/summary``) with every time
given twice: in UTC (ISO-8601) and as the instance's local wall time with its zone's name
(``2026-11-30 09:41 WITA``). It holds counts, ids, states and error texts that the gateway
built itself from safe parts (:func:`gateway._errors.safe_text`): no record content.

Synchronous: it runs in a store thread, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway._config import GatewayConfig
from gateway._store import Store
from gateway._store._deadlines import DeadlineCounter
from gateway._store._held_back import list_held_back
from gateway._store._operator import STUCK_STATES, list_deliveries, recent_operator_actions
from gateway._store._report import status_report
from gateway._store._store import CREATE_COMPLAINT
from gateway._timezones import WIB, ensure_utc

#: Figures of ``status_report`` shown for each role, in order (their labels are in _texts).
FLOW_KEYS = {
    "local_app": (
        "complaints_seen",
        "complaints_created_at_hub",
        "follow_ups_to_hub",
        "follow_ups_from_hub",
        "status_changes_from_hub",
        "status_notes_from_hub",
    ),
    "hub": (
        "complaints_created",
        "complaints_open",
        "follow_ups_delivered",
        "follow_ups_received",
        "status_changes_received",
    ),
}
OWED_KEYS = (
    "deliveries_owed",
    "deliveries_failing",
    "deliveries_parked",
    "deliveries_needing_confirmation",
    "records_quarantined",
)
#: Owed figures that want an operator's eye when above 0.
ALARMING = frozenset(OWED_KEYS[1:])
WAITING_LIMIT = 200
ERRORS_LIMIT = 20


RuntimeState = Callable[[], Mapping[str, Mapping[str, object]]]
#: Per instance, what this daemon's metrics counted since it started (``Metrics.own_figures``).
OwnFigures = Callable[[], Mapping[str, Mapping[str, Any]]]
#: Where the daemon serves every series (the page links to it).
METRICS_PATH = "/metrics"


def local_time(value: str | datetime | None, zone: ZoneInfo) -> str | None:
    """``2026-11-30 09:41 WIB``: a stored (UTC) time on the wall clock of ``zone``."""
    if value is None:
        return None
    moment = ensure_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def build_summary(
    store: Store,
    config: GatewayConfig,
    now: datetime,
    *,
    runtime_state: RuntimeState | None = None,
    deadline_counts: DeadlineCounter | None = None,
    deadline_due_within: timedelta = timedelta(days=2),
    own_figures: OwnFigures | None = None,
) -> dict[str, Any]:
    instances = {name: inst for name, inst in config.instances.items() if inst.spec.enabled}
    zones = {name: ZoneInfo(inst.spec.timezone) for name, inst in instances.items()}
    report = status_report(store, {name: inst.role for name, inst in instances.items()})
    runtime = dict(runtime_state()) if runtime_state is not None else {}
    # The page's own times (its header) in the zone of the first instance: one region runs one gateway.
    home = next(iter(zones.values()), WIB)
    rows = [_instance(row, config, zones[row["name"]], runtime.get(row["name"], {})) for row in report["instances"]]
    return {
        "generated_at": ensure_utc(now).isoformat(),
        "generated_at_local": local_time(now, home),
        "store": report["store"],
        "schema_revision": report["schema_revision"],
        "instances": rows,
        "waiting": [_waiting(d, zones) for d in list_deliveries(store, states=STUCK_STATES, limit=WAITING_LIMIT)],
        # Files the hub did not get because they look like an identity document (UU PDP): the
        # operator decides at the local app; shown by their ids, never their names.
        "held_back": list_held_back(store, limit=WAITING_LIMIT),
        "deadlines": _deadlines(store, now, deadline_counts, deadline_due_within),
        "daemon": _daemon(list(instances), own_figures),
        "errors": _errors(report["instances"], zones),
        "audit": [
            {**a, "at_local": local_time(a["at"], _zone_of(a["detail"], zones, home))}
            for a in recent_operator_actions(store)
        ],
    }


def _zone_of(detail: str | None, zones: Mapping[str, ZoneInfo], home: ZoneInfo) -> ZoneInfo:
    """The zone of the instance an audit entry's detail names (``delivery 5 (kind to NAME)``)."""
    for name, zone in zones.items():
        if detail and f" to {name})" in detail:
            return zone
    return home


def _instance(
    row: dict[str, Any], config: GatewayConfig, zone: ZoneInfo, runtime: Mapping[str, object]
) -> dict[str, Any]:
    spec = config.instances[row["name"]].spec
    breaker = dict(row["breaker"])
    # This daemon's breaker is the freshest; the store's row is what every daemon of the store wrote.
    if isinstance(runtime.get("breaker_state"), str):
        breaker["state"] = runtime["breaker_state"]
    configured = runtime.get("budget_configured_rps", spec.budget.requests_per_second)
    polls = row.get("polls_due")
    return {
        "name": row["name"],
        "role": row["role"],
        "timezone": spec.timezone,
        "zone_name": datetime.now(zone).strftime("%Z"),
        "flow": {key: row[key] for key in FLOW_KEYS[row["role"]]},
        "owed": {key: row[key] for key in OWED_KEYS},
        "alarming": sorted(key for key in ALARMING if row[key]),
        "polls_due": (
            {
                "complaints": polls["complaints"],
                "oldest_due_since": polls["oldest_due_since"],
                "oldest_due_since_local": local_time(polls["oldest_due_since"], zone),
            }
            if polls
            else None
        ),
        "breaker": {
            "state": breaker["state"],
            "failures": breaker["failures"],
            "since": breaker["since"],
            "since_local": local_time(breaker["since"], zone),
        },
        "budget": {
            "configured_rps": configured,
            "current_rps": runtime.get("budget_current_rps"),
        },
        "last_successful_pass": row["last_successful_pass"],
        "last_successful_pass_local": local_time(row["last_successful_pass"], zone),
    }


def _waiting(view: dict[str, Any], zones: Mapping[str, ZoneInfo]) -> dict[str, Any]:
    zone = zones.get(view["target"], WIB)
    confirm = view["state"] == "needs_confirmation" or view["outcome_unknown"]
    hint = ("hint_confirm_create" if view["kind"] == CREATE_COMPLAINT else "hint_confirm") if confirm else "hint_parked"
    # What the store allows for each (see gateway/_store/_operator.py): a retry only of a parked
    # delivery known not to have been done; resend and link only of one that may have been.
    actions = (["resend", "link"] if confirm else ["retry"]) + ["drop"]
    return {
        "id": view["id"],
        "state": view["state"],
        "kind": view["kind"],
        "target": view["target"],
        "complaint_id": view["complaint_id"],
        "gateway_ref": view["gateway_ref"],
        "local_ref": view["local"]["ref"],
        "hub_ref": view["hub"]["ref"],
        "attempts": view["attempts"],
        "outcome_unknown": view["outcome_unknown"],
        "last_error": view["last_error"],
        "first_error_at": view["first_error_at"],
        "first_error_at_local": local_time(view["first_error_at"], zone),
        "last_error_at": view["last_error_at"],
        "last_error_at_local": local_time(view["last_error_at"], zone),
        "hint": hint,
        "actions": actions,
    }


def _deadlines(
    store: Store, now: datetime, counts: DeadlineCounter | None, due_within: timedelta
) -> list[dict[str, Any]] | None:
    """``None`` while no deadline figures are wired in (the page says "not available")."""
    if counts is None:
        return None
    rows = [
        {"instance": c.instance, "agency": c.agency, "tier": c.tier, "due_soon": c.due_soon, "overdue": c.overdue}
        for c in counts(store, now, due_within)
        if c.due_soon or c.overdue
    ]
    return sorted(rows, key=lambda r: (-r["overdue"], -r["due_soon"], r["instance"], r["agency"], r["tier"]))


def _daemon(names: list[str], own_figures: OwnFigures | None) -> dict[str, Any] | None:
    """``None`` without the daemon's metrics (a dashboard served alone: the page says "not available")."""
    if own_figures is None:
        return None
    figures = own_figures()
    empty = {"deliveries": {}, "requests": [], "rate_limited": 0, "jobs": []}
    return {"metrics_path": METRICS_PATH, "instances": [{"name": n, **figures.get(n, empty)} for n in names]}


def _errors(rows: list[dict[str, Any]], zones: Mapping[str, ZoneInfo]) -> list[dict[str, Any]]:
    """Each job's last error and each breaker's, newest first; ``current`` while not succeeded since."""
    found: list[dict[str, Any]] = []
    for row in rows:
        zone = zones[row["name"]]
        for job, info in row["jobs"].items():
            if info["last_error"] and info["last_error_at"]:
                current = not info["last_success"] or info["last_error_at"] > info["last_success"]
                found.append(_error(row["name"], job, info["last_error_at"], info["last_error"], current, zone))
        breaker = row["breaker"]
        if breaker["last_error"] and breaker["since"]:
            current = breaker["state"] != "closed"
            found.append(_error(row["name"], "breaker", breaker["since"], breaker["last_error"], current, zone))
    found.sort(key=lambda e: e["at"], reverse=True)
    return found[:ERRORS_LIMIT]


def _error(instance: str, where: str, at: str, error: str, current: bool, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "instance": instance,
        "where": where,
        "at": at,
        "at_local": local_time(at, zone),
        "error": error,
        "current": current,
    }
