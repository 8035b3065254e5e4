"""The sync engine: intake, hub polling and delivery."""

from gateway._engine._delivery import DeliveryResult
from gateway._engine._engine import BACKFILL, DELIVER, HUB_POLL, INTAKE, PRIVACY_PURGE, REFERENCE, Engine
from gateway._engine._hub_poll import PollResult
from gateway._engine._intake import IntakeResult

__all__ = [
    "BACKFILL",
    "DELIVER",
    "HUB_POLL",
    "INTAKE",
    "PRIVACY_PURGE",
    "REFERENCE",
    "DeliveryResult",
    "Engine",
    "IntakeResult",
    "PollResult",
]
