"""One exception tree for the whole gateway.

Errors say how to treat them by their class (as in the Singer SDK):

- :class:`TransientPeerError`: retry later (connect errors, timeouts, 5xx, 429);
  its subclass :class:`AmbiguousOutcomeError`: a write that may have been done,
  never repeated blindly; :class:`PeerUnavailableError`: the breaker is open;
- :class:`PermanentPeerError`: do not retry blindly; park for an operator;
- :class:`RecordError`: one record from a peer is malformed; skip it with its
  reason and go on with the rest of the page;
- :class:`MappingError`: a status or category with no mapping in the YAML.

Every message is built by the gateway itself from safe parts (peer name, method,
path template, status code, field names). Response bodies, query strings, headers
and record contents never go into an error text: they may hold secrets or
personal data.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(GatewayError):
    """The configuration is wrong; ``issues`` says where and how."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class StoreError(GatewayError):
    """The store cannot be used as it is (for example a schema newer than this code)."""


class AdapterNotFoundError(GatewayError):
    """No installed adapter has the name a config asks for."""


class PeerError(GatewayError):
    """A call to a peer (a local app or the hub) failed."""

    def __init__(self, peer: str, operation: str, reason: str, *, status_code: int | None = None):
        self.peer = peer
        self.operation = operation
        self.reason = reason
        self.status_code = status_code
        super().__init__(f"{peer}: {operation}: {reason}")


class TransientPeerError(PeerError):
    """Worth retrying: the peer was unreachable, slow, overloaded or rate limiting."""

    def __init__(self, peer: str, operation: str, reason: str, *, status_code: int | None = None,
                 retry_after: float | None = None):
        super().__init__(peer, operation, reason, status_code=status_code)
        self.retry_after = retry_after


class AmbiguousOutcomeError(TransientPeerError):
    """A call that changes something failed after it may have reached the peer (a
    timeout, a dropped connection, a 500): the peer may have done it. Never
    repeated blindly; the engine looks it up, or parks it for confirmation."""


class PeerUnavailableError(TransientPeerError):
    """The peer's circuit breaker is open: no call was made."""


class PermanentPeerError(PeerError):
    """Retrying the same call will fail the same way (bad payload, refused credentials)."""


class TooLargeError(PermanentPeerError):
    """An answer (an attachment's bytes) is larger than the receiving side accepts; it was not
    read further. The engine leaves that file out with the reason and goes on."""


class RecordError(PeerError):
    """One record a peer returned cannot be read; the rest of the page goes on."""

    def __init__(self, peer: str, operation: str, reason: str, *, record_ref: str | None = None):
        super().__init__(peer, operation, reason)
        self.record_ref = record_ref


class MappingError(GatewayError):
    """A value (status, category, channel) has no mapping in the instance's YAML."""

    def __init__(self, instance: str, table: str, value: str, *, problem: str | None = None):
        self.instance = instance
        self.table = table
        self.value = value
        if problem is None:
            super().__init__(f"{instance}: no mapping for {table} value {value!r}; add it to the "
                             f"'{table}' table of this instance's YAML")
        else:
            super().__init__(f"{instance}: {table} value {value!r} {problem}; fix the '{table}' table of "
                             f"this instance's YAML")


def safe_text(exc: BaseException) -> str:
    """What may be logged or stored of an exception: a :class:`GatewayError`'s own text (built
    by the gateway from safe parts), else only its class. A library's exception text may quote
    what it was handed (SQL parameters, a URL with a query string, a record's field), so it
    never goes into a log line, an error column or a CLI message."""
    if isinstance(exc, GatewayError):
        return str(exc)
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"
