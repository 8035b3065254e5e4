"""Fuzzing what the HUB sends back: hostile but plausible answers of LAPOR!-SP4N, served to the
REAL sp4n adapter through an injected ``httpx.AsyncClient`` (``httpx.MockTransport``: no server,
no sleep), and through the REAL hub poll into a real store (SQLite; PostgreSQL too when
GATEWAY_TEST_DATABASE_URL is set).

Every case comes from ``random.Random(seed)`` with a fixed list of seeds: it reproduces (a failing
seed is in the test's id). The answers mix wrong JSON types, missing keys, empty and huge
strings, control characters and escape codes, ids as ``7``, ``"7"`` and ``7.0``, repeated ids,
odd times, unknown statuses, pagination that lies, HTML with 200, empty 204 bodies, and the
reporter's personal data in fields that could reach a log line, an error text, a quarantine
reason or a parked reason.

The properties:

- no exception but the gateway's own escapes the adapter (a peer error, with a text the gateway
  built), and the poll logs no internal error;
- nothing the hub said is silently dropped: every follow-up listed becomes a follow-up or a
  record error (quarantined), one id listed twice with different contents included;
- no personal data or secret in an error text, a record error's reason, a parked or quarantined
  reason, or a rendered log line;
- a read is bounded: a reference list whose pages repeat, or whose ``total`` lies, ends;
- a complaint is not closed on a read that was not whole (an unreadable follow-up or history
  entry);
- the newest hub status the read leaves owed to the local app is the hub's current status (a
  garbled history does not leave the local app behind it).
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from structlog.testing import capture_logs
from test_fuzz_intake import FakeHub, linked_complaints, make_config, reset_polling

import gateway
from gateway import (
    AmbiguousOutcomeError,
    AttachmentContent,
    Complaint,
    FollowUp,
    GatewayError,
    HubComplaintDraft,
    InstanceContext,
    PeerError,
    RawStatus,
    RecordError,
    RetryPolicy,
)
from gateway._auth import OAuth2ClientCredentials
from gateway._engine import Engine
from gateway._http import PeerClient
from gateway._logging import configure_logging
from gateway._store import Store
from gateway._store._reference import reference
from gateway._store._tables import AuditRow, ComplaintRow, EventRow, JobRunRow, OutboxRow, QuarantineRow
from gateway._timezones import ensure_utc
from lapor_gateway_adapters.sp4n import Sp4nHub

HUB_NAME = "sp4n"
BASE = "http://sp4n.fuzz"
SECRETS = {"authorization": "fuzz-authorization-value", "token": "fuzz-token-value"}
NAME, NIK, PHONE, EMAIL = "Siti Rahmawati", "3374012345670001", "081234567890", "siti.r@example.id"
PII = (NAME, NIK, PHONE, EMAIL)
# What the log's last line of defence masks (a name it cannot know): a rendered line must not hold these.
MASKED = (NIK, PHONE, EMAIL)
PII_TEXT = f"Pelapor {NAME}, NIK {NIK}, HP {PHONE}, {EMAIL}"
SEEDS = range(60)  # adapter-level cases per call
ENGINE_SEEDS = range(3)  # whole-path cases: each a store with linked complaints read several times
ROUNDS = 3
COMPLAINTS = 4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- hostile values ---------------------------------------------------------------------------------

HUGE = "x" * 200_000
ODD_SCALARS: list[Any] = [
    None,
    "",
    " ",
    0,
    -1,
    1,
    1.0,
    1.5,
    True,
    False,
    10**30,
    float("nan"),
    "null",
    "\x1b[31mmerah\x1b[0m",
    "a\x00b",
    "\ud800",
    "\r\n\t",
    "<script>alert(1)</script>",
    "{{status_new}}",
    "\u202eRTL",
    HUGE,
    PII_TEXT,
    NIK,
    [],
    {},
    [1, 2],
    {"name": PII_TEXT},
]
ODD_TIMES: list[Any] = [
    "02-11-2026 10:00:00",
    "2026-11-02 10:00:00",
    "2026-11-02T10:00:00Z",
    "02-11-2026 10:00:00 +0800",
    "01-01-1970 00:00:00",
    "31-12-9999 23:59:59",
    "30-02-2026 10:00:00",
    "0000-00-00 00:00:00",
    1_700_000_000,
    "1700000000",
    "",
    None,
    PII_TEXT,
]
STATUSES = ["Belum Terverifikasi", "Terverifikasi", "Ditunda", "Dalam Proses", "Selesai", "Ditolak", "Diarsipkan"]
ODD_STATUSES: list[Any] = ["Status Baru", "SELESAI ", "selesai", PII_TEXT, "", None, 3, 3.0, {"name": "Selesai"}]


def odd(rng: random.Random) -> Any:
    return rng.choice(ODD_SCALARS)


def some_id(rng: random.Random, n: int) -> Any:
    """One id in one of the spellings a hub may use for it."""
    return rng.choice([n, str(n), float(n), f" {n} "])


def hostile_follow_up(rng: random.Random, n: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": some_id(rng, n),
        "content": rng.choice(["Sudah ditindaklanjuti.", PII_TEXT, "\x1b[2J" + HUGE[:5000]]),
        "created_at": rng.choice(ODD_TIMES[:4]),
        "institution_from_name": rng.choice(["Dinas PU", None, odd(rng)]),
        "is_secret": rng.choice([0, 1, "0", True, None]),
        "attachments": rng.choice([None, [], [{"id": n * 10, "filename": "a.jpg", "size": 12}]]),
    }
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(list(record))
        if rng.random() < 0.3:
            del record[key]
        else:
            record[key] = rng.choice(ODD_TIMES) if key == "created_at" else odd(rng)
    return record


def hostile_log(rng: random.Random, n: int) -> Any:
    if rng.random() < 0.05:
        return odd(rng)
    data: Any = {
        "status_old": {"name": rng.choice(STATUSES)},
        "status_new": {"name": rng.choice(STATUSES + ODD_STATUSES)},
        "reason_description": rng.choice([None, "Mohon lengkapi data.", PII_TEXT]),
    }
    entry: dict[str, Any] = {
        "id": some_id(rng, n),
        "created_at": rng.choice(ODD_TIMES),
        "content": rng.choice(["Status {{status_old}} menjadi {{status_new}}", "<a href='x'>{{institution_to}}</a>"]),
        "institution_from_name": "Kementerian PANRB",
        "institution_to_name": rng.choice(["Kota Semarang", odd(rng)]),
        "data": json.dumps(data) if rng.random() < 0.8 else odd(rng),
    }
    if rng.random() < 0.3:
        entry[rng.choice(list(entry))] = odd(rng)
    return entry


def hostile_read(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.1:
        return rng.choice([[], "ok", 1, None, {"results": None}, {"results": {"data": []}}, {"success": "false"}])
    data: dict[str, Any] = {
        "id": some_id(rng, 4_000_001),
        "status_code": rng.choice([2, "2", 2.0, None, odd(rng)]),
        "status_name": rng.choice(STATUSES + ODD_STATUSES),
        "disposition_id": rng.choice([100234, "100234", None, odd(rng)]),
        "disposition_name": rng.choice(["Kota Semarang", odd(rng)]),
    }
    logs: Any = [hostile_log(rng, 500 + i) for i in range(rng.randint(0, 6))]
    if rng.random() < 0.1:
        logs = odd(rng)
    return {"success": rng.choice([True, 1, "true", None]), "results": {"data": data, "data_logs": logs}}


def hostile_body(rng: random.Random, body: Any) -> httpx.Response:
    """``body`` as JSON, or now and then what a proxy or a sick hub answers with 2xx instead."""
    roll = rng.random()
    if roll < 0.05:
        return httpx.Response(
            200, content=b"<html><body>Maintenance</body></html>", headers={"Content-Type": "text/html"}
        )
    if roll < 0.08:
        return httpx.Response(204)
    if roll < 0.1:
        return httpx.Response(200, content=b"[" * 100_000)
    if roll < 0.12:
        return httpx.Response(200, content=json.dumps(body).encode()[: rng.randint(0, 40)])
    return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


# -- checks -----------------------------------------------------------------------------------------


def no_personal_data(text: str | None, where: str, values: tuple[str, ...] = PII) -> None:
    if not text:
        return
    for value in (*values, *SECRETS.values()):
        assert value not in text, f"{where} holds {value!r}: {text[:300]!r}"


def safe_failure(exc: BaseException, where: str) -> None:
    """The only failure an adapter may raise: the gateway's own, with a text it built."""
    assert isinstance(exc, GatewayError), f"{where}: {type(exc).__name__} escaped: {exc!r}"[:500]
    no_personal_data(str(exc), where)
    assert len(str(exc)) < 2000, f"{where}: an error text of {len(str(exc))} characters"


class Rendered:
    """Log lines as the product writes them (its own processors, JSON to a stream)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def __enter__(self) -> Rendered:
        configure_logging("debug", "json", stream=self.stream)
        return self

    def __exit__(self, *exc: Any) -> None:
        pass  # conftest puts structlog back as it found it

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.startswith("{")]


# -- the adapter --------------------------------------------------------------------------------------


def make_hub(handler: Any, **settings: Any) -> Sp4nHub:
    context = InstanceContext(
        name=HUB_NAME,
        base_url=BASE,
        timezone=gateway.WIB,
        secrets=dict(SECRETS),
        retry=RetryPolicy(attempts=1),
        settings=Sp4nHub.Settings(user_id=9001, institution_id=100234, follow_up_template_code="reply_gw", **settings),
    )
    return Sp4nHub(context, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def attempt(hub: Sp4nHub, call: Any, where: str) -> Any:
    """``call()``'s result, or None after a failure that is the gateway's own."""
    try:
        return await asyncio.wait_for(call(), timeout=20)
    except TimeoutError:
        pytest.fail(f"{where}: did not end")
    except Exception as exc:
        safe_failure(exc, where)
        return None
    finally:
        await hub.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS)
async def test_a_hostile_complaint_read_gives_a_state_or_a_peer_error(seed: int) -> None:
    rng = random.Random(seed)
    body = hostile_read(rng)
    answer = hostile_body(rng, body)
    hub = make_hub(lambda request: answer)
    with Rendered() as logs:
        state = await attempt(hub, lambda: hub.read_complaint("4000001"), f"read seed {seed}")
    for line in logs.lines:
        no_personal_data(json.dumps(line), f"log line, read seed {seed}", MASKED)
    if state is None:
        return
    assert state.status.code, f"seed {seed}: a state without a status"
    logs_sent = body.get("results", {}).get("data_logs") if isinstance(body, dict) else None
    if not isinstance(logs_sent, list):
        assert not state.history_complete, f"seed {seed}: no history list, yet complete"
    refs = [c.ref for c in state.status_changes]
    assert len(refs) == len(set(refs)), f"seed {seed}: one log id read as two status changes"
    for ref in refs:
        assert not ref.endswith(".0"), f"seed {seed}: a log id {ref!r} read as a float's text"


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS)
async def test_every_hostile_follow_up_listed_is_read_or_set_aside_by_name(seed: int) -> None:
    rng = random.Random(seed)
    records: list[Any] = [hostile_follow_up(rng, 600 + i) for i in range(rng.randint(0, 8))]
    if records and rng.random() < 0.3:
        records.insert(rng.randint(0, len(records)), odd(rng))  # an entry that is no object
    answer = hostile_body(rng, {"success": True, "results": {"data": records}})
    hub = make_hub(lambda request: answer)
    with Rendered() as logs:
        listed = await attempt(hub, lambda: hub.follow_ups("4000001"), f"follow-ups seed {seed}")
    for line in logs.lines:
        no_personal_data(json.dumps(line), f"log line, follow-ups seed {seed}", MASKED)
    if listed is None:
        return
    assert len(listed) == len(records), f"seed {seed}: {len(records)} listed, {len(listed)} read"
    for item in listed:
        assert isinstance(item, (FollowUp, RecordError)), f"seed {seed}: {type(item).__name__}"
        if isinstance(item, RecordError):
            safe_failure(item, f"record error, seed {seed}")
        else:
            assert not item.ref.endswith(".0") and item.ref.strip() == item.ref, f"seed {seed}: ref {item.ref!r}"
    # One id read twice with different contents: one of them would be dropped unseen.
    read = [f for f in listed if isinstance(f, FollowUp)]
    by_ref: dict[str, FollowUp] = {}
    for item in read:
        first = by_ref.setdefault(item.ref, item)
        assert first == item, f"seed {seed}: id {item.ref} read twice with different contents"


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS)
async def test_a_hostile_reference_list_ends_and_keeps_each_institution_once(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([0, 3, 1000])
    total = rng.choice([None, size, 10**12, "2500", -1, 3.5, PII_TEXT])
    repeat = rng.random() < 0.5  # a hub that ignores ?page= serves its first page every time
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        calls.append(page)
        if len(calls) > 500:
            return httpx.Response(599)  # the read did not end by itself
        base = 0 if repeat else (page - 1) * size
        rows: list[Any] = [
            {"id": some_id(rng, base + i + 1), "name": rng.choice([f"Dinas {base + i}", odd(rng)])} for i in range(size)
        ]
        body = {"success": True, "results": {"data": rows, "total": total}}
        # The first page as hostile as the others; the later ones well formed, so that the lie is
        # in the paging alone.
        return hostile_body(rng, body) if page == 1 else httpx.Response(200, content=json.dumps(body).encode())

    hub = make_hub(handler)
    with Rendered() as logs:
        items = await attempt(hub, hub.institutions, f"institutions seed {seed}")
    assert len(calls) <= 200, f"seed {seed}: {len(calls)} page requests for one read"
    for line in logs.lines:
        no_personal_data(json.dumps(line), f"log line, institutions seed {seed}", MASKED)
    if items is None:
        return
    refs = [i.ref for i in items]
    assert len(refs) == len(set(refs)), f"seed {seed}: an institution listed more than once"
    assert all(not r.endswith(".0") for r in refs), f"seed {seed}: an id read as a float's text"


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS)
async def test_a_hostile_template_list_gives_items_or_a_peer_error(seed: int) -> None:
    rng = random.Random(seed)
    rows = [{"id": odd(rng), "code": rng.choice(["reply_gw", odd(rng)]), "name": odd(rng)} for _ in range(5)]
    answer = hostile_body(rng, rng.choice([{"results": {"data": rows}}, {"results": {"data": odd(rng)}}, rows]))
    hub = make_hub(lambda request: answer)
    items = await attempt(hub, hub.templates, f"templates seed {seed}")
    for item in items or []:
        assert item.ref and item.name, f"seed {seed}: {item!r}"


def draft() -> HubComplaintDraft:
    when = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    complaint = Complaint(
        ref="LH-1",
        title="Jalan rusak",
        body="Lubang besar.",
        created_at=when,
        updated_at=when,
        status=RawStatus("baru"),
    )
    return HubComplaintDraft(
        complaint=complaint,
        gateway_ref="gw-1",
        category_id="41",
        classification_id="1",
        channel_id="2",
        route_fields={"location_id": 11, "disposition_id": 100234},
    )


WRITE_ANSWERS: list[Any] = [
    {"complaint_id": 0},
    {"complaint_id": "0"},
    {"complaint_id": False},
    {"complaint_id": None},
    {"complaint_id": -5},
    {"complaint_id": 1.5},
    {"complaint_id": [1]},
    {"data": {"complaint_id": {"id": 9}}},
    {"data": "ok"},
    {"success": "true"},
    {"success": True, "message": PII_TEXT},
    {"success": False, "errors": {PII_TEXT: ["x"], "title": [PII_TEXT]}},
    {"success": False, "errors": {NIK: ["x"], PHONE: ["y"]}},
    {"success": 0, "message": PII_TEXT},
    {"status": "gagal"},
    {"results": {"id": "\x1b[31m"}},
    {"id": HUGE},
    {"complaint_id": HUGE},
    {"data": {"complaint_id": "12\n34"}},
    [],
    "created",
]


def proves(ident: Any) -> bool:
    """An id a write's answer may be taken as proof by: a short printable text, not zero or false."""
    return (
        isinstance(ident, str)
        and 0 < len(ident) <= 100
        and ident.isprintable()
        and ident.strip() == ident
        and ident.lower() not in ("0", "false", "null", "none")
    )


@pytest.mark.anyio
@pytest.mark.parametrize("seed", SEEDS)
async def test_a_hostile_answer_to_a_write_proves_it_or_fails_safely(seed: int) -> None:
    rng = random.Random(seed)
    answer = hostile_body(rng, rng.choice(WRITE_ANSWERS))
    status = rng.choice([200, 200, 201, 202, 422, 500])
    response = httpx.Response(status, content=answer.content, headers=answer.headers)
    hub = make_hub(lambda request: response)
    which = rng.choice(["create", "follow_up", "upload"])
    if which == "create":
        done = await attempt(hub, lambda: hub.create_complaint(draft()), f"create seed {seed}")
        assert done is None or proves(done), f"seed {seed}: {done[:80]!r}"
    elif which == "follow_up":
        done = await attempt(
            hub, lambda: hub.add_follow_up("4000001", "Sudah.", gateway_ref="gw-1-1"), f"follow-up seed {seed}"
        )
        assert done is None or proves(done), f"seed {seed}: {done[:80]!r}"
    else:
        files = [AttachmentContent("a.jpg", "image/jpeg", b"x")]
        done = await attempt(hub, lambda: hub.upload_attachments(files), f"upload seed {seed}")
        assert done is None or (len(done) == 1 and proves(done[0])), f"seed {seed}: {done!r}"[:200]


TOKEN_ANSWERS: list[tuple[int, Any]] = [
    (200, {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}),
    (200, {"access_token": "", "token_type": "Bearer"}),
    (200, {"access_token": None}),
    (200, {"access_token": ["tok"]}),
    (200, {"access_token": "tok-1", "token_type": "mac"}),
    (200, {"access_token": "tok-1", "expires_in": "soon"}),
    (200, {"access_token": "tok-1", "expires_in": -1}),
    (200, {"access_token": "tok-1", "expires_in": [1]}),
    (200, {"access_token": "tok\r\nX-Evil: 1"}),
    (200, {"access_token": "tök-ü"}),
    (200, []),
    (200, "<html>login</html>"),
    (400, {"error": "invalid_client", "error_description": PII_TEXT}),
    (401, {"error": PII_TEXT}),
    (500, {"error": "server_error"}),
    (204, None),
]


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(len(TOKEN_ANSWERS)))
async def test_a_hostile_token_answer_fails_as_a_peer_error_naming_no_secret(seed: int) -> None:
    status, token_body = TOKEN_ANSWERS[seed]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            if token_body is None:
                return httpx.Response(status)
            content = token_body if isinstance(token_body, str) else json.dumps(token_body)
            return httpx.Response(status, content=content.encode())
        return httpx.Response(200, json={"results": {"data": []}})

    client = PeerClient(
        HUB_NAME,
        BASE,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(attempts=1),
        auth=OAuth2ClientCredentials("/oauth/token", "client-id", SECRETS["token"]),
    )
    try:
        await asyncio.wait_for(client.request_json("GET", "/masters/templates"), timeout=20)
    except PeerError as exc:
        safe_failure(exc, f"token seed {seed}")
    finally:
        await client.aclose()


# -- the whole path: the hub poll into a real store ---------------------------------------------------


@dataclass
class Expected:
    """What one complaint's read must leave: follow-up ids taken in, ids set aside, whether the
    read was whole, and the hub's current status."""

    taken: set[str] = field(default_factory=set)
    set_aside: set[str] = field(default_factory=set)
    whole: bool = True
    current: str | None = None
    repaired: Any = None  # the complaint's read with every history entry readable


def engine_read(rng: random.Random, round_: int, k: int) -> tuple[Any, Any, Expected]:
    """One complaint's two answers, and what they must leave in the store."""
    expected = Expected()
    base = 10_000 * (round_ + 1) + 100 * k
    follow_ups: list[Any] = []
    for i in range(rng.randint(0, 4)):
        n = base + i
        record = {
            "id": some_id(rng, n),
            "content": rng.choice(["Sudah ditindaklanjuti petugas.", f"Tindak lanjut {n}", PII_TEXT]),
            "created_at": f"0{round_ + 2}-11-2026 1{i}:00:00",
        }
        if rng.random() < 0.35:
            key = rng.choice(["content", "created_at", "is_secret", "attachments"])
            record[key] = rng.choice(
                {
                    "content": [None, "", " \r\n", [], {"x": PII_TEXT}, 7],
                    "created_at": [None, "", PII_TEXT, 1_700_000_000, "30-02-2026 10:00:00", "31-12-9999 23:59:59"],
                    "is_secret": ["", "maybe", 2, [], {"x": PII_TEXT}, PII_TEXT],
                    "attachments": ["", PII_TEXT, {"x": 1}, [{"filename": PII_TEXT}], [None]],
                }[key]
            )
            expected.set_aside.add(str(n))
            expected.whole = False
        else:
            expected.taken.add(str(n))
            if rng.random() < 0.2:  # the same id listed again with another text
                follow_ups.append(record)
                record = {**record, "content": record["content"] + " (diubah)"}
                expected.set_aside.add(str(n))
                expected.whole = False
        follow_ups.append(record)
    rng.shuffle(follow_ups)
    current = rng.choice(STATUSES)
    expected.current = current
    logs: list[Any] = []
    names = ["Belum Terverifikasi", *rng.sample(STATUSES[1:], rng.randint(0, 3)), current]
    for i, (old, new) in enumerate(pairwise(names)):
        logs.append(
            {
                "id": some_id(rng, base + 50 + i),
                "created_at": f"0{round_ + 2}-11-2026 0{i}:30:00",
                "content": "Status {{status_old}} menjadi {{status_new}}",
                "data": json.dumps({"status_old": {"name": old}, "status_new": {"name": new}}),
            }
        )
    served = list(logs)
    if logs and rng.random() < 0.4:  # one entry unreadable at this read (readable at the next)
        j = rng.randrange(len(logs))
        # (A null ``data`` is an entry that is no status change, readable as such: not used here.)
        key = rng.choice(["created_at", "data"])
        broken = rng.choice(["kemarin", "{not json", PII_TEXT] + ([None] if key == "created_at" else []))
        served[j] = {**logs[j], key: broken}
        expected.whole = False
    if rng.random() < 0.3:  # an unmapped status name carrying personal data, as the current one
        expected.current = PII_TEXT
    data = {"status_code": 2, "status_name": expected.current}
    expected.repaired = {"success": True, "results": {"data": data, "data_logs": logs}}
    read = {"success": True, "results": {"data": data, "data_logs": served}}
    return read, {"success": True, "results": {"data": follow_ups}}, expected


async def _poll(config: Any, store: Store, hub: FakeHub) -> Any:
    clients = {HUB_NAME: httpx.AsyncClient(transport=httpx.MockTransport(hub.handler))}
    async with Engine(config, store, clients=clients, seed=1) as engine:
        return await engine.poll_hub(HUB_NAME)


def newest_status(store: Store, complaint_id: int) -> tuple[str | None, datetime | None]:
    """The hub status the timeline holds last (by the hub's time), and its time."""
    with store.session() as s:
        row = s.exec(
            select(EventRow.raw_status_name, EventRow.occurred_at)
            .where(EventRow.complaint_id == complaint_id, EventRow.origin == HUB_NAME, EventRow.kind == "status_change")
            .order_by(col(EventRow.occurred_at).desc(), col(EventRow.id).desc())
        ).first()
    return (row[0], ensure_utc(row[1])) if row else (None, None)


def count_events(store: Store) -> int:
    with store.session() as s:
        return len(s.exec(select(EventRow.id)).all())


def stored_texts(store: Store) -> list[tuple[str, str | None]]:
    with store.session() as s:
        return [
            *(("outbox.last_error", t) for t in s.exec(select(OutboxRow.last_error)).all()),
            *(("quarantine.reason", t) for t in s.exec(select(QuarantineRow.reason)).all()),
            *(("audit.detail", t) for t in s.exec(select(AuditRow.detail)).all()),
            *(("job_run.last_error", t) for t in s.exec(select(JobRunRow.last_error)).all()),
        ]


@pytest.mark.parametrize("seed", ENGINE_SEEDS)
def test_the_hub_poll_keeps_its_invariants_on_hostile_reads(seed: int, store_url: str, tmp_path: Path) -> None:
    rng = random.Random(seed)
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    try:
        complaints = linked_complaints(config, store, COMPLAINTS)
        for round_ in range(ROUNDS):
            reset_polling(store)
            hub, expected = FakeHub(), {}
            for k, (cid, ref) in enumerate(complaints):
                hub.reads[ref], hub.follow_ups[ref], expected[cid] = engine_read(rng, round_, k)
            with Rendered() as logs:
                asyncio.run(_poll(config, store, hub))
                events_after_read = count_events(store)
                reset_polling(store)
                asyncio.run(_poll(config, store, hub))  # the same answers again: nothing new
                assert count_events(store) == events_after_read, f"seed {seed} round {round_}: a read repeated"
            where = f"seed {seed} round {round_}"
            for line in logs.lines:
                no_personal_data(json.dumps(line), f"log line, {where}", MASKED)
                assert "exception" not in line and "internal error" not in line.get("event", ""), f"{where}: {line}"
            for column, text in stored_texts(store):
                no_personal_data(text, f"{column}, {where}", MASKED)
            with store.session() as s:
                for cid, want in expected.items():
                    events = s.exec(
                        select(EventRow)
                        .where(EventRow.complaint_id == cid, EventRow.origin == HUB_NAME)
                        .order_by(col(EventRow.occurred_at), col(EventRow.id))
                    ).all()
                    refs = {e.hub_ref for e in events if e.kind == "follow_up"}
                    quarantined = {
                        q.record_ref.split("~")[0]
                        for q in s.exec(
                            select(QuarantineRow).where(
                                QuarantineRow.stream == "follow_ups", col(QuarantineRow.resolved_at).is_(None)
                            )
                        ).all()
                    }
                    assert want.taken <= refs, f"{where}: follow-ups {sorted(want.taken - refs)} not taken in"
                    missing = want.set_aside - quarantined
                    assert not missing, f"{where}: follow-ups {sorted(missing)} neither taken in nor set aside"
                    row = s.get(ComplaintRow, cid)
                    assert row is not None
                    if not want.whole:
                        assert row.closed_at is None, f"{where}: complaint {cid} closed on a read that was not whole"
                    statuses = [e for e in events if e.kind == "status_change"]
                    assert statuses and statuses[-1].raw_status_name == want.current, (
                        f"{where}: complaint {cid} ends at {statuses[-1].raw_status_name if statuses else None!r}, "
                        f"the hub at {want.current!r}"
                    )
            # The history readable whole at the next read. Where the timeline already ends in the
            # hub's current status and what the history adds is older, nothing is a change: the
            # current status is not taken as one again (it would reach the citizen twice).
            newest = {cid: newest_status(store, cid) for cid, _ in complaints}
            before = count_events(store)
            for cid, ref in complaints:
                hub.reads[ref] = expected[cid].repaired
            reset_polling(store)
            with Rendered():
                asyncio.run(_poll(config, store, hub))
            with store.session() as s:
                again = s.exec(select(EventRow).where(col(EventRow.id) > before)).all()
            for cid, (name, at) in newest.items():
                if name != expected[cid].current or at is None:
                    continue
                added = [e for e in again if e.complaint_id == cid and e.kind == "status_change"]
                if all(ensure_utc(e.occurred_at) < at for e in added if not e.hub_ref.startswith("current-")):
                    assert not [e for e in added if e.hub_ref.startswith("current-")], (
                        f"{where}: complaint {cid}: its current status written again once its history was readable"
                    )
    finally:
        store.close()


# -- what the fuzzing found, one minimal case each ----------------------------------------------------


def poll_once(config: Any, store: Store, answers: dict[str, tuple[Any, Any]]) -> None:
    reset_polling(store)
    hub = FakeHub()
    for ref, (read, listed) in answers.items():
        hub.reads[ref], hub.follow_ups[ref] = read, {"success": True, "results": {"data": listed}}
    asyncio.run(_poll(config, store, hub))


def read_answer(name: str, logs: list[Any]) -> dict[str, Any]:
    return {"success": True, "results": {"data": {"status_code": 2, "status_name": name}, "data_logs": logs}}


def status_log(ident: Any, when: str, old: str, new: str) -> dict[str, Any]:
    return {
        "id": ident,
        "created_at": when,
        "content": "Status {{status_old}} menjadi {{status_new}}",
        "data": json.dumps({"status_old": {"name": old}, "status_new": {"name": new}}),
    }


def follow_up_record(ident: Any, content: str = "Sudah diperbaiki petugas.", when: str = "03-11-2026 09:00:00") -> Any:
    return {"id": ident, "content": content, "created_at": when}


def hub_events(store: Store, complaint_id: int, kind: str) -> list[EventRow]:
    with store.session() as s:
        return list(
            s.exec(
                select(EventRow)
                .where(EventRow.complaint_id == complaint_id, EventRow.origin == HUB_NAME, EventRow.kind == kind)
                .order_by(col(EventRow.id))
            ).all()
        )


@pytest.fixture
def linked(store_url: str, tmp_path: Path) -> Any:
    """A config and a store with a complaint created at the hub: (config, store, [(id, hub id)])."""
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    yield config, store, linked_complaints(config, store, 1)
    store.close()


@pytest.mark.anyio
async def test_an_id_written_7_7point0_or_quoted_is_one_id() -> None:
    listed = [follow_up_record(7), follow_up_record("7"), follow_up_record(7.0), follow_up_record(True)]
    hub = make_hub(lambda request: httpx.Response(200, json={"results": {"data": listed}}))
    read = await hub.follow_ups("4000001")
    assert [getattr(f, "ref", None) or f.record_ref for f in read[:3]] == ["7", "7", "7"]
    assert isinstance(read[3], RecordError)  # a boolean is no id
    logs = [status_log(503.0, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi")]
    hub = make_hub(lambda request: httpx.Response(200, json=read_answer("Terverifikasi", logs)))
    state = await hub.read_complaint("4000001")
    assert [c.ref for c in state.status_changes] == ["503"]
    await hub.aclose()


def test_a_follow_up_read_as_7_then_as_7point0_reaches_the_local_app_once(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    poll_once(config, store, {ref: (read_answer("Terverifikasi", []), [follow_up_record(7)])})
    poll_once(config, store, {ref: (read_answer("Terverifikasi", []), [follow_up_record(7.0)])})
    assert [e.hub_ref for e in hub_events(store, cid, "follow_up")] == ["7"]


@pytest.mark.anyio
async def test_one_follow_up_id_listed_twice_with_other_texts_is_set_aside_not_dropped() -> None:
    listed = [follow_up_record(7, "Pertama."), follow_up_record(7, "Kedua."), follow_up_record(8), follow_up_record(8)]
    hub = make_hub(lambda request: httpx.Response(200, json={"results": {"data": listed}}))
    read = await hub.follow_ups("4000001")
    await hub.aclose()
    assert [type(f).__name__ for f in read] == ["FollowUp", "RecordError", "FollowUp", "FollowUp"]
    error = read[1]
    assert isinstance(error, RecordError) and error.record_ref and error.record_ref.startswith("7~")
    assert "listed twice" in error.reason


def test_a_follow_up_id_listed_twice_is_quarantined_and_keeps_the_complaint_open(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    listed = [follow_up_record(7, "Pertama."), follow_up_record(7, "Kedua.")]
    poll_once(config, store, {ref: (read_answer("Selesai", []), listed)})
    assert [e.content for e in hub_events(store, cid, "follow_up")] == ["Pertama."]
    with store.session() as s:
        quarantined = s.exec(select(QuarantineRow).where(QuarantineRow.stream == "follow_ups")).all()
        assert [q.record_ref.split("~")[0] for q in quarantined] == ["7"]
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.closed_at is None


@pytest.mark.anyio
async def test_one_log_id_listed_twice_with_other_statuses_leaves_the_history_incomplete() -> None:
    logs = [
        status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi"),
        status_log(501, "02-11-2026 11:00:00", "Terverifikasi", "Ditolak"),
    ]
    hub = make_hub(lambda request: httpx.Response(200, json=read_answer("Ditolak", logs)))
    state = await hub.read_complaint("4000001")
    await hub.aclose()
    assert [c.status.name for c in state.status_changes] == ["Terverifikasi"] and not state.history_complete


@pytest.mark.anyio
@pytest.mark.parametrize("repeat", [True, False], ids=["page-ignored", "total-lies"])
async def test_a_reference_list_whose_paging_lies_ends(repeat: bool) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        calls.append(page)
        if len(calls) > 1000:
            return httpx.Response(599)
        first = 1 if repeat else (page - 1) * 1000 + 1
        rows: list[Any] = [{"id": i, "name": f"Dinas {i}"} for i in range(first, first + 999)]
        rows.append({"id": None, "name": PII_TEXT})  # no id: cannot be mapped to, and said so
        return httpx.Response(200, json={"results": {"data": rows, "total": 10**12}})

    hub = make_hub(handler)
    with capture_logs() as logs:
        items = await hub.institutions()
    await hub.aclose()
    if repeat:
        assert len(calls) == 2 and len(items) == 999
    else:
        assert len(calls) == 100 and len({i.ref for i in items}) == len(items) == 99_900
    passed_over = [e for e in logs if e["event"] == "institutions without id or name passed over"]
    assert [e["count"] for e in passed_over] == [1] * len(calls)
    assert any("ended early" in e["event"] for e in logs)


def test_a_parked_reason_quoting_the_hubs_status_masks_personal_data(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    logs = [status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", PII_TEXT)]
    poll_once(config, store, {ref: (read_answer(PII_TEXT, logs), [])})
    with store.session() as s:
        parked = s.exec(select(OutboxRow).where(OutboxRow.complaint_id == cid, OutboxRow.state == "parked")).all()
    assert parked, "the unmapped status is parked"
    for row in parked:
        assert row.last_error and "no mapping for statuses" in row.last_error and "<nik>" in row.last_error
        no_personal_data(row.last_error, "outbox.last_error", MASKED)


def test_a_complaint_is_not_closed_on_a_read_whose_history_was_not_whole(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    good = status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Selesai")
    unreadable = {**status_log(502, "02-11-2026 11:00:00", "Selesai", "Ditolak"), "data": "{not json"}
    poll_once(config, store, {ref: (read_answer("Selesai", [good, unreadable]), [])})
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.hub_status == "done" and row.closed_at is None
    poll_once(config, store, {ref: (read_answer("Selesai", [good]), [])})  # readable again: closed now
    with store.session() as s:
        row = s.get(ComplaintRow, cid)
        assert row is not None and row.closed_at is not None


def test_a_log_readable_only_at_a_later_read_does_not_write_the_current_status_again(linked: Any) -> None:
    config, store, complaints = linked
    ((cid, ref),) = complaints
    verified = status_log(501, "02-11-2026 10:00:00", "Belum Terverifikasi", "Terverifikasi")
    in_progress = status_log(502, "02-11-2026 11:00:00", "Terverifikasi", "Dalam Proses")
    poll_once(config, store, {ref: (read_answer("Dalam Proses", [{**verified, "data": "{not json"}, in_progress]), [])})
    poll_once(config, store, {ref: (read_answer("Dalam Proses", [verified, in_progress]), [])})
    assert [e.hub_ref for e in hub_events(store, cid, "status_change")] == ["502", "501"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "ident", [random.Random(1).randbytes(3000).hex(), "4127\x1b[2J781", "41\n27"], ids=["6000", "escape", "newline"]
)
async def test_a_create_answered_with_an_id_no_hub_gives_is_of_unknown_outcome(ident: str) -> None:
    """On PostgreSQL, a create answered with a 6,000-character id was parked as refused by the store
    ('finish_delivery: the database refused the values'), not as possibly created: an operator's
    resend created the complaint twice. Such an id proves nothing; the create waits for an operator."""
    hub = make_hub(lambda request: httpx.Response(200, json={"success": True, "complaint_id": ident}))
    with pytest.raises(AmbiguousOutcomeError):
        await hub.create_complaint(draft())
    hub = make_hub(lambda request: httpx.Response(200, json={"results": {"id": ident}}))
    with pytest.raises(AmbiguousOutcomeError):
        await hub.add_follow_up("4127781", "Sudah.", gateway_ref="gw-1-1")
    await hub.aclose()


def test_a_far_future_time_in_the_history_does_not_hold_the_next_status_back(linked: Any) -> None:
    """A log dated 2099 (a typo at the hub) is the newest status the timeline holds: a later change
    whose log has its true time is older than it, and would be skipped at delivery as outdated.
    The current status is then taken as a change of its own, stamped no earlier than that log."""
    config, store, complaints = linked
    ((cid, ref),) = complaints
    verified = status_log(501, "02-11-2099 10:00:00", "Belum Terverifikasi", "Terverifikasi")
    done = status_log(502, "10-11-2026 09:00:00", "Terverifikasi", "Selesai")
    poll_once(config, store, {ref: (read_answer("Terverifikasi", [verified]), [])})
    poll_once(config, store, {ref: (read_answer("Selesai", [verified, done]), [])})
    name, at = newest_status(store, cid)
    assert name == "Selesai" and at is not None and at.year == 2099


def refresh_reference(config: Any, store: Store, handler: Any) -> Any:
    async def run() -> Any:
        clients = {HUB_NAME: httpx.AsyncClient(transport=httpx.MockTransport(handler))}
        async with Engine(config, store, clients=clients, seed=1) as engine:
            return await engine.refresh_reference(HUB_NAME)

    return asyncio.run(run())


def test_one_institution_the_store_cannot_hold_does_not_stop_the_reference_refresh(
    store_url: str, tmp_path: Path
) -> None:
    """A NUL in one institution's name (PostgreSQL refuses it), a lone surrogate (SQLite's driver
    refuses it) or an id of 3,000 characters (over PostgreSQL's index limit) failed the whole daily
    refresh: no institution was cached, every day."""
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    rows = [
        {"id": 1, "name": "Dinas PU"},
        {"id": 2, "name": "Dinas\x00 Kesehatan"},
        {"id": 3, "name": "Bappeda \ud800"},
        {"id": random.Random(1).randbytes(1500).hex(), "name": "Dinas Sosial"},
    ]
    body = json.dumps({"results": {"data": rows, "total": len(rows)}}).encode()
    try:
        result = refresh_reference(config, store, lambda request: httpx.Response(200, content=body))
        assert result is not None and result.institutions == 3
        names = {item.ref: item.name for item in reference(store, HUB_NAME, "institutions")}
        assert names == {"1": "Dinas PU", "2": "Dinas Kesehatan", "3": "Bappeda \ufffd"}
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(4))
def test_a_hostile_reference_list_is_cached_or_fails_as_the_hubs_fault(
    seed: int, store_url: str, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    config = make_config(tmp_path / "config", store_url)
    store = Store(store_url)
    rows = [{"id": rng.choice([i, odd(rng)]), "name": odd(rng), "parent_id": odd(rng)} for i in range(1, 40)]
    rows += [{"id": 1000 + i, "name": f"Dinas {i}"} for i in range(5)]
    answer = hostile_body(rng, {"results": {"data": rows, "total": len(rows)}})
    try:
        with Rendered() as logs:
            refresh_reference(config, store, lambda request: answer)
        for line in logs.lines:
            no_personal_data(json.dumps(line), f"log line, reference seed {seed}", MASKED)
            assert "exception" not in line, f"seed {seed}: {line.get('event')}"
        with store.session() as s:
            row = s.get(JobRunRow, (HUB_NAME, "reference"))
            error = row.last_error if row is not None else None
        assert error is None or error.startswith(f"{HUB_NAME}: GET "), f"seed {seed}: {error}"
        if error is None:
            refs = {item.ref for item in reference(store, HUB_NAME, "institutions")}
            assert {str(1000 + i) for i in range(5)} <= refs, f"seed {seed}: well-formed institutions missing"
    finally:
        store.close()


@pytest.mark.anyio
@pytest.mark.parametrize("key", [NIK, PHONE, "62812345678901"])
async def test_a_refusal_naming_its_fields_by_personal_data_names_none(key: str) -> None:
    """A 2xx saying it failed names the invalid fields (Laravel's ``errors`` keys) in the parked
    reason; keys of digits (a NIK, a phone number) were taken for field names and shown."""
    answer = {"success": False, "errors": {key: ["tidak valid"], "title": ["wajib"]}}
    hub = make_hub(lambda request: httpx.Response(200, json=answer))
    with pytest.raises(PeerError) as refused:
        await hub.create_complaint(draft())
    await hub.aclose()
    assert "answered 2xx saying it failed" in str(refused.value)
    no_personal_data(str(refused.value), "the refusal", (key,))
