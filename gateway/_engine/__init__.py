"""The sync engine: intake, hub polling and delivery."""

from gateway._engine._delivery import DeliveryResult
from gateway._engine._engine import DELIVER, HUB_POLL, INTAKE, Engine
from gateway._engine._hub_poll import PollResult
from gateway._engine._intake import IntakeResult

__all__ = ["DELIVER", "HUB_POLL", "INTAKE", "DeliveryResult", "Engine", "IntakeResult", "PollResult"]
