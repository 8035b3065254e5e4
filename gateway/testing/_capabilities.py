"""What an adapter declares it can do, read in one place each, so that a change of how
adapters declare it (capabilities up front, idempotency per write) changes one function."""

from __future__ import annotations

from typing import Literal

from gateway._adapter import Adapter, overrides

Write = Literal["status", "follow_up"]


def supports(adapter: Adapter, method: str) -> bool:
    """Whether the adapter implements an optional method of its base class."""
    return overrides(adapter, method)


def declares_idempotent(adapter: Adapter, write: Write) -> bool:
    """Whether the adapter declares that its peer applies ``write`` carrying the same
    gateway_ref only once (today one flag covers every write)."""
    return type(adapter).idempotent_writes
