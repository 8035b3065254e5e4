"""What an adapter declares it can do, read in one place each."""

from __future__ import annotations

from typing import Literal

from gateway._adapter import Adapter
from gateway._capabilities import Capability
from gateway._capabilities import Write as _Write

#: The writes the kit makes to a local app.
Write = Literal["status", "follow_up"]


def supports(adapter: Adapter, method: str) -> bool:
    """Whether the adapter declares the optional method (``Capability`` by its method's name)."""
    capability = next((c for c in Capability if c.method == method), None)
    return capability is not None and adapter.supports(capability)


def declares_idempotent(adapter: Adapter, write: Write) -> bool:
    """Whether the adapter declares that its peer applies ``write`` (``"status"``,
    ``"follow_up"``) carrying the same gateway_ref only once."""
    return _Write(write) in type(adapter).idempotent_writes
