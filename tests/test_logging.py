"""Logs and error texts carry context but never personal data or secrets (invariant 5)."""

from __future__ import annotations

import io
import json
import logging
import random
from datetime import UTC, datetime

import httpx
import pytest
import respx
import structlog

from gateway import (
    Complaint,
    PeerClient,
    PeerError,
    PermanentPeerError,
    RawStatus,
    Reporter,
    RetryPolicy,
    TransientPeerError,
)
from gateway._logging import _PATTERNS, configure_logging, scrub_text

NIK = "3374012345678901"
EMAIL = "budi.santoso@example.co.id"
PHONE = "081234567890"
INTL_PHONE = "+6281234567890"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-part"


@pytest.fixture
def log_stream():
    """structlog configured for JSON lines into a buffer; everything restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.contextvars.clear_contextvars()
    yield stream
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def only_line(stream: io.StringIO) -> dict:
    found = lines(stream)
    assert len(found) == 1, found
    return found[0]


# -- context and levels -------------------------------------------------------------------


def test_json_line_carries_bound_context(log_stream):
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(adapter="lapor-hendi-semarang", complaint_id=42):
        log.info("complaint taken in", attachments=2)
    log.info("pass finished")

    first, second = lines(log_stream)
    assert first["event"] == "complaint taken in"
    assert first["adapter"] == "lapor-hendi-semarang"
    assert first["complaint_id"] == 42
    assert first["attachments"] == 2
    assert first["level"] == "info"
    parsed = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert parsed.utcoffset().total_seconds() == 0
    assert "adapter" not in second and "complaint_id" not in second  # unbound after the block


def test_level_filters_lower_lines(log_stream):
    log = structlog.get_logger("test")
    log.debug("noise")
    log.warning("kept")

    assert [line["event"] for line in lines(log_stream)] == ["kept"]


def test_standard_library_warnings_are_json_lines_on_the_same_stream(log_stream):
    # A plain-text line here stopped a `jq` pipeline reading the journal as JSON lines.
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)', "sp4n:deliver", 1
    )

    line = only_line(log_stream)
    assert line["level"] == "warning" and line["logger"] == "apscheduler.scheduler"
    assert line["event"] == 'Execution of job "sp4n:deliver" skipped: maximum number of running instances reached (1)'
    parsed = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert parsed.utcoffset().total_seconds() == 0


def test_standard_library_lines_carry_the_bound_context_and_below_warning_are_dropped(log_stream):
    with structlog.contextvars.bound_contextvars(adapter="sp4n"):
        logging.getLogger("aiohttp.access").info("GET /metrics 200")
        logging.getLogger("aiohttp.server").error("Error handling request")

    assert only_line(log_stream) | {"timestamp": None} == {
        "event": "Error handling request",
        "logger": "aiohttp.server",
        "level": "error",
        "adapter": "sp4n",
        "timestamp": None,
    }


def test_standard_library_lines_are_masked_and_their_exceptions_rendered_safely(log_stream):
    try:
        raise ValueError(f"bad record: nik={NIK}")
    except ValueError:
        logging.getLogger("apscheduler.executors.default").exception("Job %s raised, pelapor %s", "x", EMAIL)

    line = only_line(log_stream)
    assert line["event"] == "Job x raised, pelapor <email>"
    assert "ValueError" in line["exception"] and "test_logging.py" in line["exception"]
    assert NIK not in log_stream.getvalue() and EMAIL not in log_stream.getvalue()


def test_standard_library_lines_in_console_format_are_masked_too():
    stream = io.StringIO()
    configure_logging("info", "console", stream=stream)
    logging.getLogger("apscheduler.scheduler").warning("NIK %s", NIK)

    assert "apscheduler.scheduler" in stream.getvalue() and "NIK <nik>" in stream.getvalue()
    assert NIK not in stream.getvalue()


# -- redaction by key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "nik",
        "nama",
        "email",
        "phone",
        "telepon",
        "alamat",
        "token",
        "authorization",
        "Authorization",
        "api_key",
        "password",
        "reporter",
    ],
)
def test_sensitive_keys_are_redacted(log_stream, key):
    structlog.get_logger("test").info("sent", **{key: "rahasia-value-1"})

    line = only_line(log_stream)
    assert line[key] == "<redacted>"
    assert "rahasia-value-1" not in log_stream.getvalue()


def test_sensitive_keys_bound_as_context_are_redacted(log_stream):
    with structlog.contextvars.bound_contextvars(token="rahasia-token", complaint_id=7):
        structlog.get_logger("test").info("call")

    line = only_line(log_stream)
    assert line["token"] == "<redacted>" and line["complaint_id"] == 7


def test_ordinary_values_are_left_alone(log_stream):
    structlog.get_logger("test").info(
        "complaint created at hub", hub_ref="123456789012345", note="17 complaints in 3 pages", status="in_progress"
    )

    line = only_line(log_stream)
    assert line["hub_ref"] == "123456789012345"  # 15 digits: not a NIK
    assert line["note"] == "17 complaints in 3 pages"
    assert line["status"] == "in_progress"


# -- redaction by value ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "mask"),
    [
        (f"pelapor NIK {NIK} mengeluh", NIK, "<nik>"),
        (f"balas ke {EMAIL} segera", EMAIL, "<email>"),
        (f"hubungi {PHONE} (WA)", PHONE, "<phone>"),
        (f"hubungi {INTL_PHONE}", INTL_PHONE, "<phone>"),
        ("hubungi 6281234567890", "6281234567890", "<phone>"),
        (f"Authorization: Bearer {TOKEN}", TOKEN, "Bearer <secret>"),
        (f"header bearer {TOKEN}", TOKEN, "Bearer <secret>"),
    ],
)
def test_values_that_look_like_personal_data_are_masked(log_stream, text, secret, mask):
    structlog.get_logger("test").info("peer said", detail=text)

    line = only_line(log_stream)
    assert secret not in log_stream.getvalue()
    assert mask in line["detail"]


def test_the_message_itself_is_masked(log_stream):
    structlog.get_logger("test").warning(f"could not read record of {EMAIL} ({NIK})")

    line = only_line(log_stream)
    assert line["event"] == "could not read record of <email> (<nik>)"


def test_exception_text_is_masked(log_stream):
    try:
        raise ValueError(f"bad record: nik={NIK} phone={PHONE}")
    except ValueError:
        structlog.get_logger("test").exception("record skipped")

    line = only_line(log_stream)
    assert "ValueError" in line["exception"]
    assert NIK not in log_stream.getvalue() and PHONE not in log_stream.getvalue()


def test_nested_values_are_redacted(log_stream):
    structlog.get_logger("test").info("record", record={"judul": "Jalan rusak", "nik": NIK}, notes=[f"telepon {PHONE}"])

    assert NIK not in log_stream.getvalue()
    assert PHONE not in log_stream.getvalue()


@pytest.mark.parametrize("phone", ["0812-3456-7890", "+62 812 3456 7890", "0812 3456 7890"])
def test_phone_numbers_with_separators_are_masked(log_stream, phone):
    structlog.get_logger("test").info("peer said", detail=f"hubungi {phone} segera")

    assert "3456" not in only_line(log_stream)["detail"]


def _all_masks(text: str) -> str:
    """The four masks applied to every value, as before values were passed over by a search."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def test_values_passed_over_are_exactly_those_no_mask_changes():
    """``scrub_text`` skips the masks for a value its search finds nothing in: that search must
    never miss a value that one of the masks would change, whatever the digits around it."""
    rng = random.Random(10)
    pieces = [
        NIK,
        EMAIL,
        PHONE,
        INTL_PHONE,
        "6281234567890",
        "0812-3456-7890",
        "+62 812 3456 7890",
        "0812 3456 7890",
        "Bearer x",
        "BEARER y",
        "bearer",
        "@",
        "8",
        "08",
        "62",
        "+62",
        "0-8",
        "0.81",
        "088",
        "80",
        "1",
        "0",
        "9",
        "-",
        ".",
        " ",
        "\t",
        "a",
        "_",
        "id_",
        "\u0668",
        "\u0660\u0668\u0661\u0662\u0663\u0664",
        "x@y.id",
        "\n",
    ]
    texts = [str(n) for n in range(0, 200_000, 7)] + [f"{n:016d}" for n in range(0, 10**16, 10**14)]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(20_000)]
    texts += ["".join(rng.choice("0123456789862+-. @abB") for _ in range(rng.randint(1, 20))) for _ in range(20_000)]
    for text in texts:
        assert scrub_text(text) == _all_masks(text), text


# -- reprs and error texts ----------------------------------------------------------------------


def test_reporter_repr_shows_none_of_its_values():
    values = {"name": "Budi Santoso", "nik": NIK, "phone": PHONE, "email": EMAIL, "address": "Jl. Pemuda No. 1"}
    reporter = Reporter(**values)

    for text in (repr(reporter), str(reporter), f"{reporter}", f"{reporter!r}"):
        for value in values.values():
            assert value not in text
    assert "nik" in repr(reporter)  # says which fields are present, not what they hold


def test_complaint_repr_does_not_show_its_reporter():
    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    complaint = Complaint(
        ref="LH-1",
        title="Jalan rusak",
        body="Lubang besar",
        created_at=at,
        updated_at=at,
        status=RawStatus("baru"),
        reporter=Reporter(name="Budi Santoso", nik=NIK),
    )

    assert "Budi Santoso" not in repr(complaint) and NIK not in repr(complaint)


BASE = "https://hub.example.go.id/api"
SECRET_QUERY = {"api_key": "s3cr3t-key", "nik": NIK}


async def _error_of(route_response, *, method: str = "GET", path: str = "/complaints", **kwargs) -> PeerError:
    async with httpx.AsyncClient() as client:
        peer = PeerClient("sp4n", BASE, client=client, retry=RetryPolicy(attempts=1))
        with respx.mock:
            respx.route(method=method, url__startswith=BASE).mock(side_effect=route_response)
            with pytest.raises(PeerError) as caught:
                await peer.request(method, path, **kwargs)
    return caught.value


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(503, text=f"down; nik={NIK}"), TransientPeerError),
        (httpx.Response(422, json={"message": f"email {EMAIL} tidak valid"}), PermanentPeerError),
        (httpx.ConnectError(f"cannot connect to {BASE}/complaints?api_key=s3cr3t-key"), TransientPeerError),
        (httpx.ReadTimeout(f"timeout on {BASE}/complaints?api_key=s3cr3t-key"), TransientPeerError),
        (httpx.RemoteProtocolError(f"bad answer from {BASE}/complaints?api_key=s3cr3t-key"), TransientPeerError),
    ],
)
async def test_peer_error_texts_carry_no_query_string_body_or_peer_text(answer, kind):
    error = await _error_of(answer, params=SECRET_QUERY)

    assert isinstance(error, kind)
    text = str(error)
    assert text.startswith("sp4n: GET /complaints: ")
    for leak in ("?", "s3cr3t-key", NIK, EMAIL, "api_key"):
        assert leak not in text


@pytest.mark.anyio
async def test_query_string_in_the_path_stays_out_of_the_error_text():
    error = await _error_of(httpx.Response(503), path="/complaints?api_key=s3cr3t-key")

    assert "s3cr3t-key" not in str(error)
