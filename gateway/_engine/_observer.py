"""What the engine tells as it happens: a delivery ended, a peer answered, a job ran.

The engine knows nothing of Prometheus: it calls an :class:`Observer`, which ignores everything;
the daemon hands it one that counts (``gateway._web._metrics.Metrics``). The values passed are
instance names, delivery kinds, outcomes, HTTP methods and status codes: never a record's
content, a reference or a URL, so whatever an observer does with them leaks no personal data.
"""

from __future__ import annotations

from typing import Final

from gateway._http import NO_ANSWER

# How a delivery attempt ended (the label ``outcome`` of lapor_gateway_deliveries_total).
DELIVERED: Final = "delivered"  # done, or found unnecessary (skipped: nothing to write)
RETRIED: Final = "retried"  # failed for now; tried again on a later pass
REFUSED: Final = "refused"  # parked at once: cannot succeed as it stands (refused by the peer, a value unmapped)
PARKED: Final = "parked"  # parked after giving up on retries, or after an internal error
NEEDS_CONFIRMATION: Final = "needs_confirmation"  # may have been done; an operator decides
OUTCOMES: Final = (DELIVERED, RETRIED, REFUSED, PARKED, NEEDS_CONFIRMATION)

__all__ = ["NO_ANSWER", "OUTCOMES", "Observer"]


class Observer:
    """Ignores everything; a subclass counts what it needs. Called on the event loop, between
    awaits: a method must return at once (no I/O)."""

    def delivery_ended(self, instance: str, kind: str, outcome: str) -> None:
        """A delivery to ``instance`` of outbox ``kind`` ended one attempt with ``outcome``."""

    def peer_answered(self, instance: str, method: str, code: str) -> None:
        """One HTTP attempt to ``instance``'s peer ended: ``code`` is the HTTP status, or
        :data:`NO_ANSWER`."""

    def job_ran(self, instance: str, job: str, seconds: float) -> None:
        """A run of ``job`` for ``instance`` ended (failed or not) after ``seconds``."""
