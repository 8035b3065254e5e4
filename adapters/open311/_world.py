"""The simulated Open311 server's state: Kota Makassar's service list, its service
requests, the tokens of batch services and the people who submitted them, in memory.

The world knows nothing of HTTP and takes no lock: :class:`Open311Simulator` holds
``Simulator.lock`` around every call. Times are kept as aware UTC datetimes to the
second and shown in WITA (Asia/Makassar, +08:00) with their offset, as GeoReport v2
asks. The submitter's name, e-mail, phone, device and account are kept apart from
the request and are never shown by any answer (the spec's GET answers have no such
fields).
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lapor_gateway_adapters.lapor_hendi._world import poisson
from lapor_gateway_adapters.open311._data import (
    AGENCIES,
    ATTRIBUTES,
    CENTRE,
    CLOSING_NOTES,
    DISTRICTS,
    FIRST_NAMES,
    LAST_NAMES,
    OFFICER_NOTES,
    SERVICE_NOTICES,
    SERVICES,
)

WITA = ZoneInfo("Asia/Makassar")  # UTC+8, no daylight saving
JURISDICTION = "makassarkota.go.id"
MAX_DESCRIPTION_CHARS = 4000  # from the spec
FIRST_ID = 260001

UNKNOWN_STATUS = "acknowledged"  # served under the unknown_status_codes fault: not open, not closed


class WorldError(Exception):
    """A request the server refuses: its HTTP status and the error's description."""

    def __init__(self, http_status: int, description: str):
        super().__init__(description)
        self.http_status = http_status
        self.description = description


def show_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(WITA).isoformat()


def read_time(text: str, name: str) -> datetime:
    """A W3C/ISO 8601 time with its offset (``Z`` or ``+08:00``), to UTC; ``WorldError`` (400) otherwise."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WorldError(400, f"{name} is not a W3C datetime, e.g. 2026-11-29T10:00:00+08:00") from None
    if value.tzinfo is None:
        raise WorldError(400, f"{name} must carry its offset (Z or +08:00)")
    return value.astimezone(UTC)


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


class Open311World:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self._requests: dict[int, dict[str, Any]] = {}
        self._order: list[int] = []  # ids by requested_datetime (ids grow with time)
        self._times: list[float] = []  # their requested_datetime timestamps, for bisect
        self._submitters: dict[int, dict[str, Any]] = {}  # personal data, never served
        self._tokens: dict[str, int | None] = {}  # token -> the id once the batch run made it
        self._pending: list[tuple[str, dict[str, Any]]] = []  # batch submissions waiting for the run
        self._next_id = FIRST_ID
        self._counts = {"requests_from_api": 0, "closed_by_officers": 0, "notes_by_officers": 0}

    # --- citizens ---------------------------------------------------------------------

    def create(self, form: Mapping[str, str], attributes: Mapping[str, list[str]], now: datetime) -> dict[str, Any]:
        """A POST Service Request's form, checked as the spec says; the answer's one item:
        ``service_request_id`` (realtime services) or ``token`` (batch ones)."""
        code = (form.get("service_code") or "").strip()
        if not code:
            raise WorldError(400, "service_code was not provided")
        if code not in SERVICES:
            raise WorldError(404, f"service_code {code} was not found")
        lat, lng = form.get("lat") or "", form.get("long") or ""
        address, address_id = (form.get("address_string") or "").strip(), (form.get("address_id") or "").strip()
        if bool(lat) != bool(lng):
            raise WorldError(400, "lat and long must be sent together")
        point = None
        if lat:
            try:
                point = (float(lat), float(lng))
            except ValueError:
                raise WorldError(400, "lat and long must be numbers (WGS84)") from None
            if not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
                raise WorldError(400, "lat and long are out of range")
        if point is None and not address and not address_id:
            raise WorldError(400, "a location is required: lat and long, address_string or address_id")
        description = form.get("description") or ""
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise WorldError(400, f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
        given = self._attributes(code, attributes)
        fields = {
            "service_code": code,
            "description": description or None,
            "address": address or None,
            "address_id": address_id or None,
            "lat": point[0] if point else None,
            "long": point[1] if point else None,
            "media_url": (form.get("media_url") or "").strip() or None,
            "attributes": given,
        }
        personal = {k: form[k] for k in ("email", "first_name", "last_name", "phone", "device_id") if form.get(k)}
        account = (form.get("account_id") or "").strip() or None
        self._counts["requests_from_api"] += 1
        notice = self._notice(code)
        if SERVICES[code][3] == "batch":
            token = f"tkn-{self.rng.getrandbits(48):012x}"
            self._tokens[token] = None
            self._pending.append((token, {"fields": fields, "personal": personal, "now": _second(now)}))
            return {"token": token, "service_notice": notice, "account_id": account}
        new_id = self._store(fields, personal, _second(now))
        return {"service_request_id": str(new_id), "service_notice": notice, "account_id": account}

    @staticmethod
    def _attributes(code: str, attributes: Mapping[str, list[str]]) -> dict[str, list[str]]:
        known = {a["code"]: a for a in ATTRIBUTES.get(code, [])}
        for name in attributes:
            if name not in known:
                raise WorldError(400, f"attribute[{name}] is not an attribute of service {code}")
        for name, attribute in known.items():
            values = [v for v in attributes.get(name, []) if v]
            if attribute["required"] and not values:
                raise WorldError(400, f"attribute[{name}] is required for service {code}")
            keys = {str(v["key"]) for v in attribute["values"]}
            if attribute["datatype"].endswith("valuelist") and any(v not in keys for v in values):
                raise WorldError(400, f"attribute[{name}] must be one of: {', '.join(sorted(keys))}")
        return {name: list(values) for name, values in attributes.items()}

    def _notice(self, code: str) -> str:
        kind, agency = SERVICES[code][3], AGENCIES[SERVICES[code][4]]
        return SERVICE_NOTICES[kind].format(agency=agency)

    def _store(self, fields: dict[str, Any], personal: dict[str, Any], now: datetime) -> int:
        new_id, self._next_id = self._next_id, self._next_id + 1
        code = fields["service_code"]
        record = {
            "service_request_id": new_id,
            "status": "open",
            "status_notes": None,
            **fields,
            "agency_responsible": AGENCIES[SERVICES[code][4]],
            "service_notice": self._notice(code),
            "requested_datetime": now,
            "updated_datetime": now,
            "expected_datetime": now + timedelta(days=3),
            "zipcode": None,
        }
        self._requests[new_id] = record
        at = bisect_right(self._times, now.timestamp())  # normally the end: requests come in time order
        self._times.insert(at, now.timestamp())
        self._order.insert(at, new_id)
        self._submitters[new_id] = personal
        return new_id

    def submit(self, now: datetime, **overrides: Any) -> int:
        """A citizen reports through the city's own app (a realtime request); returns its id."""
        rng = self.rng
        code = overrides.pop("service_code", None) or rng.choice([c for c, s in SERVICES.items() if s[3] == "realtime"])
        district = rng.choice(tuple(DISTRICTS))
        streets, zipcode = DISTRICTS[district]
        street = rng.choice(streets)
        fields: dict[str, Any] = {
            "service_code": code,
            "description": rng.choice(SERVICES[code][6]).format(jalan=street),
            "address": f"{street} No. {rng.randrange(1, 200)}, {district}, Kota Makassar",
            "address_id": None,
            "lat": round(CENTRE[0] + rng.uniform(-0.03, 0.03), 6),
            "long": round(CENTRE[1] + rng.uniform(-0.03, 0.03), 6),
            "media_url": None,
            "attributes": {"TINGKAT": [rng.choice(("ringan", "sedang", "berat"))]} if code == "JLN-01" else {},
        }
        has_photo = rng.random() < 0.3
        fields.update(overrides)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        personal = {
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 100)}@example.id",
            "phone": "08" + "".join(str(rng.randrange(10)) for _ in range(10)),
        }
        new_id = self._store(fields, personal, _second(now))
        self._requests[new_id]["zipcode"] = zipcode
        if has_photo and self._requests[new_id]["media_url"] is None:
            self._requests[new_id]["media_url"] = f"/media/{new_id}.png"  # made absolute when shown
        return new_id

    # --- the city's back office ---------------------------------------------------------

    def run_batch(self, now: datetime) -> int:
        """The nightly (here: every tick) batch run: pending batch submissions become requests."""
        done = 0
        for token, pending in self._pending:
            self._tokens[token] = self._store(pending["fields"], pending["personal"], pending["now"])
            done += 1
        self._pending.clear()
        return done

    def note(self, request_id: int, notes: str, now: datetime, *, status: str = "open") -> None:
        record = self._get(request_id)
        record["status"], record["status_notes"], record["updated_datetime"] = status, notes, _second(now)
        self._counts["notes_by_officers"] += 1

    def close(self, request_id: int, notes: str, now: datetime) -> None:
        record = self._get(request_id)
        record["status"], record["status_notes"], record["updated_datetime"] = "closed", notes, _second(now)
        record["expected_datetime"] = None
        self._counts["closed_by_officers"] += 1

    def tick(
        self, now: datetime, *, requests_per_tick: float, close_probability: float, unknown_status: bool = False
    ) -> None:
        """Officers note or close some open requests (in id order), then citizens report new ones."""
        rng = self.rng
        for request_id in sorted(self._requests):
            record = self._requests[request_id]
            if record["status"] == "closed" or rng.random() >= close_probability:
                continue
            agency = record["agency_responsible"]
            if record["status_notes"] is None:
                status = UNKNOWN_STATUS if unknown_status else "open"
                self.note(request_id, rng.choice(OFFICER_NOTES).format(agency=agency), now, status=status)
            else:
                self.close(request_id, rng.choice(CLOSING_NOTES), now)
        for _ in range(poisson(rng, requests_per_tick)):
            self.submit(now)

    # --- reading --------------------------------------------------------------------------

    def _get(self, request_id: int) -> dict[str, Any]:
        record = self._requests.get(request_id)
        if record is None:
            raise WorldError(404, f"service_request_id {request_id} was not found")
        return record

    def find(self, ids: list[str]) -> list[dict[str, Any]]:
        """The requests of these ids, in the order asked; unknown ids are left out."""
        found = []
        for text in ids:
            if text.isdigit() and int(text) in self._requests:
                found.append(self._requests[int(text)])
        return found

    def query(
        self, start: datetime, end: datetime, statuses: set[str] | None, codes: set[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Requests whose requested_datetime is in [start, end] (both inclusive), by
        requested_datetime then id, filtered, the first ``limit`` of them."""
        first, last = bisect_left(self._times, start.timestamp()), bisect_right(self._times, end.timestamp())
        found = []
        for request_id in self._order[first:last]:
            record = self._requests[request_id]
            if statuses is not None and record["status"] not in statuses:
                continue
            if codes is not None and record["service_code"] not in codes:
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def token(self, token: str) -> tuple[bool, int | None]:
        """(known, the id the batch run made or None while it waits)."""
        return token in self._tokens, self._tokens.get(token)

    def submitter(self, request_id: int) -> dict[str, Any]:
        return dict(self._submitters.get(request_id, {}))

    def all(self) -> list[dict[str, Any]]:
        return [dict(self._requests[i]) for i in self._order]

    def counts(self) -> dict[str, int]:
        open_ = sum(1 for r in self._requests.values() if r["status"] != "closed")
        return {
            "requests": len(self._requests),
            "open_requests": open_,
            "pending_tokens": len(self._pending),
            **self._counts,
        }
