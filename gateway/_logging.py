"""Logging: structlog, readable on a terminal and JSON lines otherwise.

Every line carries what ``bind_contextvars`` bound (the adapter instance, the
gateway's complaint id, the job). A last line of defence drops keys that name
personal data or secrets and masks values that look like them (a NIK, a phone
number, an e-mail address, a bearer token); the first line of defence is that
the code never logs such values at all.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

SENSITIVE_KEYS = frozenset(
    {
        "name",
        "nama",
        "nik",
        "phone",
        "telepon",
        "email",
        "address",
        "alamat",
        "reporter",
        "pelapor",
        "authorization",
        "auth",
        "token",
        "api_key",
        "password",
        "secret",
        "secrets",
        "headers",
    }
)

_PATTERNS = [
    (re.compile(r"(?<!\d)\d{16}(?!\d)"), "<nik>"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<email>"),
    (re.compile(r"(?<![\w-])(?:\+62|62|0)[\s.-]?8\d{1,3}(?:[\s.-]?\d{2,5}){1,3}(?!\d)"), "<phone>"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer <secret>"),
]


# What each pattern above cannot match without (sixteen digits; an "@"; the start of a phone
# number, with its lookbehind; "bearer"): most logged values (event names, instance names, a
# record's id) have none of them, and are passed over with one search instead of four
# substitutions. A search for any digit let every id through to the substitutions, which were
# then half of a backfill's logging.
_MAYBE_SENSITIVE = re.compile(r"\d{16}|@|(?<![\w-])(?:\+62|62|0)[\s.-]?8\d|(?i:bearer)")


def scrub_text(text: str) -> str:
    """Mask values that look like personal data or secrets."""
    if not _MAYBE_SENSITIVE.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def printable(text: str) -> str:
    """A string any stream can write: a lone surrogate (from a peer's broken UTF-16) becomes U+FFFD."""
    if text.isascii():  # most values: encoding them only to find that out cost more than the check
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(printable(value))
    if isinstance(value, dict):
        return {k: "<redacted>" if str(k).lower() in SENSITIVE_KEYS else _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    return value


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "<redacted>"
        else:
            event_dict[key] = _clean(event_dict[key])
    return event_dict


def safe_traceback(exc: BaseException) -> str:
    """A traceback that shows where, never what: for each exception of the chain its class
    and the frames (file, line, function), and only a :class:`GatewayError`'s own text. The
    text of any other exception may quote what it was handed (SQLAlchemy's carries the SQL
    parameters: a reporter's name and address), so it is left out by construction."""
    import traceback

    from gateway._errors import safe_text

    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.extract_tb(current.__traceback__)
        lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
        parts.append("\n".join(["Traceback (most recent call last):", *lines, safe_text(current)]))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n\nwhich was caused by:\n\n".join(reversed(parts)) if len(parts) > 1 else parts[0]


def _safe_exc_info(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog's exception rendering, through :func:`safe_traceback`."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        exc = (
            exc_info if isinstance(exc_info, BaseException) else (exc_info[1] if isinstance(exc_info, tuple) else None)
        )
        if exc is not None:
            event_dict["exception"] = safe_traceback(exc)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> str:
    """``fmt`` is ``console``, ``json`` or ``auto`` (console on a terminal, JSON otherwise);
    returns the one chosen (``console`` or ``json``)."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _safe_exc_info,  # never an exception's text from a library: it may quote record data
        _redact,
        # After the redaction: a timestamp's digits are not personal data (".0812..." is not a phone).
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (APScheduler, aiohttp) go to the same stream
    # through the same processors: masked, their exceptions rendered the safe way (APScheduler logs
    # a job's exception with its whole chain), and as JSON lines when ours are, so that a pipeline
    # reading the journal line by line as JSON does not stop at theirs.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    return fmt


def get_logger(name: str = "gateway") -> Any:
    return structlog.get_logger(name)
