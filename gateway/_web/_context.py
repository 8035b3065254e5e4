"""What the routes of the daemon's HTTP server are handed: the daemon's engine (its store, its
adapters' breakers and budgets), the configuration, the metrics and whether the scheduler runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from gateway._config import GatewayConfig
from gateway._engine import Engine
from gateway._engine._async_store import AsyncStore
from gateway._store import Store
from gateway._store._deadlines import DeadlineCounter

if TYPE_CHECKING:
    from gateway._web._metrics import Metrics


@dataclass(frozen=True)
class WebContext:
    engine: Engine
    config: GatewayConfig
    metrics: Metrics
    #: Whether the daemon's scheduler is running (starts jobs): false before it starts and once it stops.
    scheduling: Callable[[], bool]
    #: Where the deadline figures come from (the store's ``deadline_counts``; none: not shown), and
    #: how close a deadline counts as "due soon".
    deadline_counts: DeadlineCounter | None = None
    due_within: timedelta = timedelta(hours=48)

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def db(self) -> AsyncStore:
        """The store off the event loop: every store call of a handler goes through here."""
        return self.engine.db

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock (a test's fake one in tests): "now" for ages and deadlines."""
        return self.engine.store.clock


#: Where a handler finds the context: ``request.app[CONTEXT]``.
CONTEXT = web.AppKey("context", WebContext)
