"""One exception tree for the whole gateway, sorted by how an error is treated.

The class says what to do; four treatments, siblings under :class:`GatewayError`,
so that catching one never catches another by accident:

===========================  ===================================================================
treatment (base class)       what the catcher does
===========================  ===================================================================
:class:`RetriableError`      try again later: nothing was done, or doing it again is harmless
                             (:class:`TransientPeerError`, :class:`PeerUnavailableError`,
                             :class:`StoreUnavailableError`)
:class:`OutcomeUnknownError` a write may have been done: never repeated blindly; look it up,
                             or park it for an operator's confirmation
                             (:class:`AmbiguousOutcomeError`)
:class:`RefusedError`        this call or record will fail the same way again: set it aside
                             with its reason (park, quarantine, skip) and go on with the rest
                             (:class:`PermanentPeerError`, :class:`TooLargeError`,
                             :class:`RecordError`, :class:`MappingError`,
                             :class:`StoreRefusedError`)
:class:`FatalError`          nothing can go on until an operator fixes the setup
                             (:class:`ConfigError`, :class:`AdapterNotFoundError`,
                             :class:`StoreError`)
===========================  ===================================================================

:class:`PeerError` is no treatment: it is the family of errors about a call to a peer and
carries ``peer``, ``operation``, ``reason`` and ``status_code``; each concrete peer error
is a :class:`PeerError` *and* one treatment. In particular :class:`AmbiguousOutcomeError`
and :class:`PeerUnavailableError` are not :class:`TransientPeerError`: ``except
TransientPeerError: retry`` never repeats a write that may have happened, nor calls a peer
whose circuit breaker is open.

Database errors: SQLAlchemy raises its own classes inside the store. Where async code
calls the store (the engine's store facade), :func:`gateway._store.as_store_error` files
them in this tree: the database refusing one record's values is a
:class:`StoreRefusedError` (set that record aside), a database that is down, locked or
broken is a :class:`StoreUnavailableError` (the job fails and runs again later). An
``IntegrityError`` stays SQLAlchemy's: it means another daemon wrote the same row at the
same moment, and each caller resolves that on the spot.

Every message is built by the gateway itself from safe parts (peer name, method,
path template, status code, field names, a library error's class name). Response
bodies, query strings, headers, SQL parameters and record contents never go into an
error text: they may hold secrets or personal data.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


# -- the four treatments ---------------------------------------------------------------------


class RetriableError(GatewayError):
    """Try again later: nothing was done, or doing it again is harmless."""


class OutcomeUnknownError(GatewayError):
    """A write may have been done: never repeated blindly. Look it up at the peer, or park it
    for an operator's confirmation."""


class RefusedError(GatewayError):
    """This call or record will fail the same way again: set it aside with its reason (park,
    quarantine, skip) and go on with the rest."""


class FatalError(GatewayError):
    """Nothing can go on until an operator fixes the setup (configuration, installation, store)."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(FatalError):
    """The configuration is wrong; ``issues`` says where and how."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class StoreError(FatalError):
    """The store cannot be used as it is (for example a schema newer than this code)."""


class StoreUnavailableError(RetriableError):
    """The database is down, locked past its timeout, or failing: the job stops and runs again
    later (its claims and cursors are where the last commit left them)."""

    def __init__(self, operation: str, cause: BaseException):
        self.operation = operation
        self.cause_name = type(cause).__name__
        super().__init__(f"store: {operation}: the database failed ({self.cause_name})")


class StoreRefusedError(RefusedError):
    """The database refused one statement for the values in it (a text it cannot hold, a number
    out of range, a value too long for an index): the record at fault is set aside, the rest
    stored."""

    def __init__(self, operation: str, cause: BaseException):
        self.operation = operation
        self.cause_name = type(cause).__name__
        super().__init__(f"store: {operation}: the database refused the values ({self.cause_name})")


class AdapterNotFoundError(FatalError):
    """No installed adapter has the name a config asks for."""


class PeerError(GatewayError):
    """A call to a peer (a local app or the hub) failed."""

    def __init__(self, peer: str, operation: str, reason: str, *, status_code: int | None = None):
        self.peer = peer
        self.operation = operation
        self.reason = reason
        self.status_code = status_code
        super().__init__(f"{peer}: {operation}: {reason}")


class _RetryAfter(PeerError):
    """A peer error that may carry the peer's Retry-After (seconds)."""

    def __init__(
        self,
        peer: str,
        operation: str,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(peer, operation, reason, status_code=status_code)
        self.retry_after = retry_after


class TransientPeerError(_RetryAfter, RetriableError):
    """Worth retrying: the peer was unreachable, slow, overloaded or rate limiting, and the
    call changed nothing (a read, an idempotent write, or a write the peer says it did not
    process)."""


class AmbiguousOutcomeError(_RetryAfter, OutcomeUnknownError):
    """A call that changes something failed after it may have reached the peer (a
    timeout, a dropped connection, a 500): the peer may have done it. Never
    repeated blindly; the engine looks it up, or parks it for confirmation."""


class PeerUnavailableError(_RetryAfter, RetriableError):
    """The peer's circuit breaker is open: no call was made. Retriable, but not an attempt:
    wait for the breaker's probe rather than calling again at once."""


class PermanentPeerError(PeerError, RefusedError):
    """Retrying the same call will fail the same way (bad payload, refused credentials)."""


class TooLargeError(PermanentPeerError):
    """An answer (an attachment's bytes) is larger than the receiving side accepts; it was not
    read further. The engine leaves that file out with the reason and goes on."""


class RecordError(PeerError, RefusedError):
    """One record a peer returned cannot be read; the rest of the page goes on."""

    def __init__(self, peer: str, operation: str, reason: str, *, record_ref: str | None = None):
        super().__init__(peer, operation, reason)
        self.record_ref = record_ref


class MappingError(RefusedError):
    """A value (status, category, channel) has no mapping in the instance's YAML."""

    def __init__(self, instance: str, table: str, value: str, *, problem: str | None = None):
        self.instance = instance
        self.table = table
        self.value = value
        if problem is None:
            super().__init__(
                f"{instance}: no mapping for {table} value {value!r}; add it to the "
                f"'{table}' table of this instance's YAML"
            )
        else:
            super().__init__(
                f"{instance}: {table} value {value!r} {problem}; fix the '{table}' table of this instance's YAML"
            )


def safe_text(exc: BaseException) -> str:
    """What may be logged or stored of an exception: a :class:`GatewayError`'s own text (built
    by the gateway from safe parts), else only its class. A library's exception text may quote
    what it was handed (SQL parameters, a URL with a query string, a record's field), so it
    never goes into a log line, an error column or a CLI message."""
    if isinstance(exc, GatewayError):
        return str(exc)
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"
