"""Contract tests: the ``sp4n`` hub adapter against the LAPOR! v3 integration API.

The authority is the reference (``lapor-v3.md``: the API as its one public client sends and
reads it, item by item, marked seen / inferred / unknown). ``recordings/`` holds, per call of
the reference and per odd case, one recording built from that page (never from the adapter):
the request the client sends (method, path under the SPLP prefix, the headers and their exact
values, the body's type, its exact keys with their JSON types, the values the reference fixes)
and a realistic answer in the seen shape, with what the adapter must make of it. Each
recording names its source section and marks its parts seen / inferred / unknown.

These tests run the adapter's method against a respx-mocked hub that answers as recorded and
compare what it sent and what it read. A test that fails here means the adapter will not work
against the real hub (on a seen item) or will misread it: fix the adapter, not the recording.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from structlog.testing import capture_logs

import gateway
from gateway import (
    AttachmentContent,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    HubComplaintState,
    InstanceContext,
    Location,
    RawStatus,
    ReferenceItem,
    Reporter,
    RetryPolicy,
)
from lapor_gateway_adapters.sp4n import Sp4nHub

RECORDINGS = Path(__file__).parent / "recordings"
MARKS = ("seen", "inferred", "unknown")


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))


INSTANCE = load("_instance")
BASE = INSTANCE["base_url"]
HOST = urlsplit(BASE).netloc
PREFIX = urlsplit(BASE).path.rstrip("/")  # /lapor/3.0.0: every path of a call is appended to it
PLANTED: tuple[str, ...] = tuple(INSTANCE["planted"])
SECRET_VALUES: tuple[str, ...] = tuple(INSTANCE["secrets"].values())

ALL = sorted(p.stem for p in RECORDINGS.glob("*.json") if not p.stem.startswith("_"))
#: Recordings of a request (one per call of the reference, plus request-side odd cases).
REQUESTS = [name for name in ALL if "request" in load(name)]
#: Recordings whose answer applies to the requests of other recordings (422, 302).
ACROSS = [name for name in ALL if "applies_to" in load(name)]


def call_recording(name: str) -> dict[str, Any]:
    """The recording that holds the request (and the adapter call) for recording ``name``."""
    rec = load(name)
    return rec if "request" in rec else load(rec["request_from"])


def answer_cases() -> list[Any]:
    """(recording, variant) for every recorded answer, except the ones applied across calls."""
    cases = []
    for name in ALL:
        rec = load(name)
        if "applies_to" in rec:
            continue
        if "answer" in rec:
            cases.append(pytest.param(name, None, id=name))
        for variant in rec.get("variants", []):
            cases.append(pytest.param(name, variant["name"], id=f"{name}:{variant['name']}"))
    return cases


# -- the adapter, its inputs, the mocked hub ----------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_hub(
    call_rec: dict[str, Any], *, settings: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> Sp4nHub:
    values = {**INSTANCE["settings"], **call_rec.get("settings", {}), **(settings or {})}
    context = InstanceContext(
        name="sp4n",
        base_url=BASE,
        timezone=ZoneInfo(INSTANCE["timezone"]),
        secrets={**INSTANCE["secrets"], **(secrets or {})},
        settings=Sp4nHub.Settings(**values),
        retry=RetryPolicy(attempts=1),
    )  # one request per call: what is recorded
    return Sp4nHub(context, client=httpx.AsyncClient())


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def build_draft(spec: dict[str, Any]) -> HubComplaintDraft:
    c = spec["complaint"]
    created = _time(c["created_at"])
    complaint = Complaint(
        ref=c["ref"],
        title=c["title"],
        body=c["body"],
        created_at=created,
        updated_at=created,
        status=RawStatus("belum terverifikasi"),
        category="Jalan",
        location=Location(**c["location"]) if c.get("location") else None,
        channel=c.get("channel"),
        incident_at=_time(c.get("incident_at")),
        is_anonymous=c["is_anonymous"],
        is_secret=c["is_secret"],
        reporter=Reporter(**c["reporter"]) if c.get("reporter") else None,
    )
    return HubComplaintDraft(
        complaint=complaint,
        gateway_ref=spec["gateway_ref"],
        category_id=spec["category_id"],
        classification_id=spec["classification_id"],
        channel_id=spec["channel_id"],
        attachment_ids=tuple(spec["attachment_ids"]),
        route_fields=dict(spec["route_fields"]),
        disposition_id=spec.get("disposition_id"),
    )


def build_files(specs: list[dict[str, str]]) -> list[AttachmentContent]:
    return [AttachmentContent(s["filename"], s["content_type"], s["text"].encode()) for s in specs]


async def run_call(hub: Sp4nHub, call_rec: dict[str, Any]) -> Any:
    """The adapter method the recording's call is, with the recording's input."""
    call, given = call_rec["call"], call_rec["input"]
    if call == "upload_attachments":
        return await hub.upload_attachments(build_files(given["files"]))
    if call == "create_complaint":
        return await hub.create_complaint(build_draft(given))
    if call == "forward":
        return await hub.forward(given["ref"], given["institution_ref"], note=given["note"])
    if call == "read_complaint":
        return await hub.read_complaint(given["ref"])
    if call == "follow_ups":
        return await hub.follow_ups(given["ref"])
    if call == "add_follow_up":
        return await hub.add_follow_up(
            given["ref"],
            given["content"],
            gateway_ref=given["gateway_ref"],
            is_secret=given["is_secret"],
            attachments=build_files(given["attachments"]),
        )
    if call == "institutions":
        return await hub.institutions()
    if call == "templates":
        return await hub.templates()
    raise AssertionError(f"recording names an unknown call {call!r}")


async def outcome(hub: Sp4nHub, call_rec: dict[str, Any]) -> tuple[Any, BaseException | None]:
    try:
        return await run_call(hub, call_rec), None
    except gateway.GatewayError as error:
        return None, error
    finally:
        await hub.aclose()


def to_response(answer: dict[str, Any]) -> httpx.Response:
    headers = answer.get("headers", {})
    if "json" in answer:
        return httpx.Response(answer["status"], json=answer["json"], headers=headers)
    return httpx.Response(answer["status"], text=answer.get("text", ""), headers=headers)


class MockedHub:
    """Answers every request with the recorded answer and keeps what was sent."""

    def __init__(self, router: respx.MockRouter):
        self.requests: list[httpx.Request] = []
        self.answer: dict[str, Any] | None = None
        router.route().mock(side_effect=self._serve)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answer is not None, "the test set no answer"
        return to_response(self.answer)


@pytest.fixture
def peer():
    with respx.mock(assert_all_called=False) as router:
        yield MockedHub(router)


# -- comparing a request with its recording ----------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def multipart_parts(request: httpx.Request) -> list[dict[str, Any]]:
    header = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = BytesParser(policy=email_policy).parsebytes(header + request.content)
    return [
        {
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "content_type": part.get("content-type"),
            "data": part.get_payload(decode=True),
        }
        for part in message.iter_parts()
    ]


def request_problems(request: httpx.Request, spec: dict[str, Any], headers: dict[str, str]) -> list[str]:
    """Every way ``request`` differs from the recorded request ``spec`` (empty: it matches)."""
    problems: list[str] = []
    if request.method != spec["method"]:
        problems.append(f"method {request.method}, the reference says {spec['method']}")
    if request.url.host != urlsplit(BASE).hostname or request.url.scheme != urlsplit(BASE).scheme:
        problems.append(f"sent to {request.url.scheme}://{request.url.host}, not the base URL's host")
    if request.url.path != PREFIX + spec["path"]:
        problems.append(
            f"path {request.url.path!r}, the reference says {PREFIX + spec['path']!r} "
            f"(the call's path under the base URL's prefix {PREFIX!r})"
        )
    params = request.url.params
    required, optional = spec.get("query", {}), spec.get("query_optional", {})
    for key, value in required.items():
        if params.get_list(key) != [value]:
            problems.append(f"query {key}={params.get_list(key)}, the reference says {key}={value}")
    for key in params:
        if key not in required and key not in optional:
            problems.append(f"query parameter {key!r} is not in the reference")
    for name, value in headers.items():
        sent = request.headers.get_list(name)
        if sent != [value]:
            problems.append(f"header {name}: {sent!r}, the reference says exactly {value!r}")

    body_type = spec["body_type"]
    content_type = request.headers.get("content-type", "")
    if body_type == "none":
        if request.content:
            problems.append(f"a body of {len(request.content)} bytes; the reference sends none")
        return problems
    if body_type == "json":
        if not content_type.startswith("application/json"):
            return problems + [f"Content-Type {content_type!r}; the reference sends JSON"]
        body = json.loads(request.content)
        if not isinstance(body, dict):
            return problems + ["the JSON body is not an object"]
        wanted = spec["body_keys"]
        missing, extra = sorted(set(wanted) - set(body)), sorted(set(body) - set(wanted))
        if missing:
            problems.append(f"body keys missing: {', '.join(missing)}")
        if extra:
            problems.append(f"body keys not in the reference: {', '.join(extra)}")
        for key, types in wanted.items():
            allowed = types if isinstance(types, list) else [types]
            if key in body and json_type(body[key]) not in allowed:
                problems.append(
                    f"body[{key!r}] is a JSON {json_type(body[key])} ({body[key]!r}); "
                    f"the reference says {' or '.join(allowed)}"
                )
        for key, value in spec.get("body_values", {}).items():
            if key in body and (body[key] != value or json_type(body[key]) != json_type(value)):
                problems.append(f"body[{key!r}] = {body[key]!r}; the reference says {value!r}")
        for key, prefix in spec.get("body_prefixes", {}).items():
            if key in body and not (isinstance(body[key], str) and body[key].startswith(prefix)):
                problems.append(f"body[{key!r}] = {body[key]!r} does not start with {prefix!r}")
        return problems
    assert body_type == "multipart", body_type
    if not content_type.startswith("multipart/form-data"):
        return problems + [f"Content-Type {content_type!r}; the reference sends multipart/form-data"]
    parts = multipart_parts(request)
    fields = [p for p in parts if p["filename"] is None]
    files = [
        {"name": p["name"], "filename": p["filename"], "content_type": p["content_type"]}
        for p in parts
        if p["filename"] is not None
    ]
    names = [p["name"] for p in fields]
    wanted = spec["fields"]
    missing, extra = sorted(set(wanted) - set(names)), sorted(set(names) - set(wanted))
    if missing:
        problems.append(f"multipart fields missing: {', '.join(missing)}")
    if extra:
        problems.append(f"multipart fields not in the reference: {', '.join(extra)}")
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        problems.append(f"multipart fields sent more than once: {', '.join(doubled)}")
    values: dict[str, str] = {}
    for part in fields:
        try:
            values[part["name"]] = part["data"].decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"multipart field {part['name']!r} is not a UTF-8 string")
    for key, value in spec.get("field_values", {}).items():
        if key in values and values[key] != value:
            problems.append(f"multipart field {key} = {values[key]!r}; the reference says {value!r}")
    if files != spec["files"]:
        problems.append(f"files {files}; the reference says {spec['files']}")
    return problems


def assert_request(request: httpx.Request, spec: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    problems = request_problems(request, spec, spec["headers"] if headers is None else headers)
    assert not problems, "the request differs from the reference:\n  " + "\n  ".join(problems)


def assert_transport_headers(requests: list[httpx.Request]) -> None:
    """§ Transport, on every call: the auth value as stored, token, Accept: application/json."""
    assert requests, "no request was sent"
    for request in requests:
        for name, value in INSTANCE["headers"].items():
            assert request.headers.get_list(name) == [value], f"{request.method} {request.url.path}: header {name}"


# -- comparing what the adapter read with the recording -----------------------------------------


def assert_error(error: BaseException | None, result: Any, expect: dict[str, Any], planted: tuple[str, ...]) -> None:
    wanted = getattr(gateway, expect["raises"])
    assert error is not None, f"returned {result!r}; the recording says the answer is a {expect['raises']}"
    assert isinstance(error, wanted), f"raised {type(error).__name__}; the recording says {expect['raises']}"
    text = str(error)
    if "status_code" in expect:
        assert error.status_code == expect["status_code"]
    for needle in expect.get("text_contains", []):
        assert needle in text, f"{needle!r} is not in the error text {text!r}"
    for needle in (*expect.get("text_excludes", []), *planted, *SECRET_VALUES):
        assert needle not in text, f"{needle!r} leaked into the error text {text!r}"


def assert_state(state: Any, want: dict[str, Any]) -> None:
    assert isinstance(state, HubComplaintState)
    assert state.ref == want["ref"]
    assert state.status == RawStatus(**want["status"])
    for key in ("disposition_id", "disposition_name", "history_complete"):
        if key in want:
            assert getattr(state, key) == want[key], key
    for change in state.status_changes:
        assert change.complaint_ref == state.ref and change.status.code, change
    if "status_changes" in want:
        got = [
            {
                "status_name": c.status.name,
                "previous_name": c.previous.name if c.previous else None,
                "changed_at": c.changed_at.isoformat(),
            }
            for c in state.status_changes
        ]
        assert got == want["status_changes"]
    if "status_changes_within" in want:
        assert {c.status.name for c in state.status_changes} <= set(want["status_changes_within"])
    if "notes" in want:
        assert len(state.notes) == len(want["notes"]), state.notes
        for note, wanted in zip(state.notes, want["notes"]):
            assert isinstance(note, FollowUp) and note.complaint_ref == state.ref
            assert note.created_at.isoformat() == wanted["created_at"]
            for needle in wanted.get("content_contains", []):
                assert needle in note.content, (needle, note.content)
            for needle in wanted.get("content_excludes", []):
                assert needle not in note.content, (needle, note.content)


def assert_result(result: Any, expect: dict[str, Any]) -> None:
    if "returns" in expect:
        assert result == expect["returns"]
    if "state" in expect:
        assert_state(result, expect["state"])
    if "follow_ups" in expect:
        assert all(isinstance(f, FollowUp) for f in result), result
        got = [
            {
                "ref": f.ref,
                "complaint_ref": f.complaint_ref,
                "content": f.content,
                "created_at": f.created_at.isoformat(),
                "is_secret": f.is_secret,
            }
            for f in result
        ]
        assert got == expect["follow_ups"]
    if "items" in expect:
        assert all(isinstance(i, ReferenceItem) for i in result), result
        got = [{key: getattr(item, key) for key in wanted} for item, wanted in zip(result, expect["items"])]
        assert len(result) == len(expect["items"]) and got == expect["items"]


# -- the recordings themselves ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_recording_names_its_source_and_marks_each_part(name):
    rec = load(name)
    assert rec["source"].startswith("lapor-v3.md §"), "name the section of the reference it is built from"
    assert rec["marks"], "mark which parts are seen / inferred / unknown"
    for item, mark in rec["marks"].items():
        assert mark.split(":")[0].split(" ")[0] in MARKS, f"{item}: {mark!r} is not seen / inferred / unknown"
    assert sum(key in rec for key in ("request", "request_from", "applies_to")) == 1
    if "request" in rec:
        assert rec["request"]["headers"] == INSTANCE["headers"]
    for variant in rec.get("variants", []):
        assert {"name", "answer", "expect"} <= set(variant)


def test_every_call_of_the_reference_has_a_recording():
    recorded = {(load(n)["call"], load(n)["request"]["method"], load(n)["request"]["path"]) for n in REQUESTS}
    paths = {(method, path) for _, method, path in recorded}
    for method, path in [
        ("POST", "/complaints/complaint/file"),
        ("POST", "/complaints/complaint"),
        ("POST", "/complaints/complaint-lmw"),
        ("POST", "/complaints/process/4127781/reject"),
        ("GET", "/complaints/4127781/complaint"),
        ("GET", "/complaints/4127781/followups"),
        ("POST", "/complaints/followup/add"),
        ("GET", "/masters/institutions/external"),
        ("GET", "/masters/templates"),
    ]:
        assert (method, path) in paths, f"no recording of {method} {path}"


# -- requests -----------------------------------------------------------------------------------

AUTH_HEADERS = [pytest.param(None, id="auth-header-default"), pytest.param("auth", id="auth-header-named-auth")]


@pytest.mark.anyio
@pytest.mark.parametrize("auth_header", AUTH_HEADERS)
@pytest.mark.parametrize("name", REQUESTS)
async def test_the_request_is_the_recorded_one(peer, name, auth_header):
    """Method, path under the prefix, headers with their exact values, body type, exact keys
    and JSON types, values the reference fixes; the auth header's name is a setting and its
    value goes out as stored."""
    rec = load(name)
    settings = {"auth_header": auth_header} if auth_header else {}
    headers = dict(rec["request"]["headers"])
    if auth_header:
        headers[auth_header] = headers.pop("Authorization")
    peer.answer = rec["answer"]
    result, error = await outcome(make_hub(rec, settings=settings), rec)
    assert error is None, f"the recorded answer was not accepted: {error}"
    assert len(peer.requests) == 1, [str(r.url) for r in peer.requests]
    [request] = peer.requests
    assert_request(request, rec["request"], headers)
    if auth_header:
        assert "Authorization" not in request.headers, "the auth value goes in the configured header only"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "stored",
    ["splp-ak-7Yq2Lw9pXe4Rt6Vb", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5MDAxIn0.c2ln", "Basic c3BscDpzZWNyZXQ="],
)
async def test_the_auth_value_is_sent_exactly_as_stored(peer, stored):
    rec = load("follow_ups")
    peer.answer = rec["answer"]
    _, error = await outcome(make_hub(rec, secrets={"authorization": stored}), rec)
    assert error is None
    [request] = peer.requests
    assert request.headers.get_list("Authorization") == [stored]  # nothing prefixed, nothing stripped
    assert request.headers["token"] == INSTANCE["secrets"]["token"]


@pytest.mark.anyio
@pytest.mark.parametrize("is_secret, flag", [(False, "0"), (True, "1")])
async def test_a_follow_up_carries_its_own_confidentiality_as_0_or_1(peer, is_secret, flag):
    rec = copy.deepcopy(load("add_follow_up"))
    rec["input"]["is_secret"] = is_secret
    rec["request"]["field_values"]["is_secret"] = flag
    peer.answer = rec["answer"]
    _, error = await outcome(make_hub(rec), rec)
    assert error is None
    assert_request(peer.requests[0], rec["request"])


@pytest.mark.anyio
async def test_a_follow_up_without_files_sends_no_file_part(peer):
    rec = copy.deepcopy(load("add_follow_up"))
    rec["input"]["attachments"] = []
    rec["request"]["files"] = []
    peer.answer = rec["answer"]
    _, error = await outcome(make_hub(rec), rec)
    assert error is None
    assert_request(peer.requests[0], rec["request"])


@pytest.mark.anyio
async def test_the_reporters_personal_data_never_appears_in_any_request(peer):
    sent: list[httpx.Request] = []
    for name in REQUESTS:
        rec = load(name)
        peer.answer = rec["answer"]
        peer.requests.clear()
        await outcome(make_hub(rec), rec)
        sent += peer.requests
    assert any(load(n)["input"].get("complaint", {}).get("reporter") for n in REQUESTS), "nothing was planted"
    for request in sent:
        raw = (str(request.url) + "\n" + "\n".join(f"{k}: {v}" for k, v in request.headers.items())).encode()
        raw += b"\n" + request.content
        for value in PLANTED:
            assert value.encode() not in raw, f"{request.method} {request.url.path} carries the reporter's {value!r}"
        if request.headers.get("content-type", "").startswith("application/json"):  # JSON may escape: decode it too
            text = json.dumps(json.loads(request.content), ensure_ascii=False)
            assert not [value for value in PLANTED if value in text]


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("name, variant", answer_cases())
async def test_the_answer_is_read_as_recorded(peer, name, variant):
    """The adapter's reading of each recorded answer (its odd cases included): what it returns,
    or which error it raises, with no planted value in the error text or a log line."""
    rec = load(name)
    call_rec = call_recording(name)
    case = rec if variant is None else next(v for v in rec["variants"] if v["name"] == variant)
    peer.answer = case["answer"]
    with capture_logs() as logs:
        result, error = await outcome(make_hub(call_rec), call_rec)
    assert_transport_headers(peer.requests)
    planted = PLANTED + tuple(rec.get("planted", ()))
    expect = case["expect"]
    if "raises" in expect:
        assert_error(error, result, expect, planted)
    else:
        assert error is None, f"raised {error!r}; the recording says the answer is read"
        assert_result(result, expect)
    logged = repr(logs)
    for needle in (*expect.get("logs_exclude", ()), *planted, *SECRET_VALUES):
        assert needle not in logged, f"{needle!r} leaked into a log line"


def _across_cases() -> list[Any]:
    return [pytest.param(name, target, id=f"{name}:{target}") for name in ACROSS for target in load(name)["applies_to"]]


@pytest.mark.anyio
@pytest.mark.parametrize("name, target", _across_cases())
async def test_an_error_answer_is_never_a_success(peer, name, target):
    """A 302 (Laravel's redirect of a client it takes for a browser) is an error for every call;
    a 422 names the invalid fields and none of their values."""
    rec, call_rec = load(name), load(target)
    peer.answer = rec["answer"]
    with capture_logs() as logs:
        result, error = await outcome(make_hub(call_rec), call_rec)
    assert len(peer.requests) == 1, "an error answer is not followed or repeated"
    assert_request(peer.requests[0], call_rec["request"])
    assert_error(error, result, rec["expect"], PLANTED + tuple(rec.get("planted", ())))
    for needle in (*PLANTED, *rec.get("planted", ()), *SECRET_VALUES):
        assert needle not in repr(logs)


@pytest.mark.anyio
async def test_a_create_whose_answer_proves_nothing_never_returns_an_id(peer):
    """The hub may have created it: the error says so, and no id (not even a falsy one) is made up."""
    rec = load("create_without_id")
    call_rec = call_recording("create_without_id")
    for variant in rec["variants"]:
        peer.answer = variant["answer"]
        result, error = await outcome(make_hub(call_rec), call_rec)
        assert result is None and isinstance(error, gateway.AmbiguousOutcomeError), variant["name"]
        assert not isinstance(error, gateway.PermanentPeerError)
        assert "created" in str(error), "the operator must be told it may have been created"
