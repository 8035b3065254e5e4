"""The store, as the engine's async code calls it: off the event loop.

Every :class:`~gateway._store.Store` method is a synchronous SQLAlchemy transaction, and SQLite
waits up to 10 s for a lock (a backfill beside the daemon, an operator's command); PostgreSQL may
be slow. Made on the event loop, such a call froze every HTTP call in flight, and their timeouts
could fire on answers that had arrived. So async code calls the store through :class:`AsyncStore`:
``await db.claim_due(...)`` runs ``store.claim_due(...)`` in a small thread pool that the engine
owns (created with it, shut down by ``Engine.aclose``).

Workers: one, on every backend, so that this process's store calls run one after the other as
they did on the loop. SQLite has one writer at a time anyway, and its deferred transactions must
not meet inside the process (a read that turns into a write fails at once, without waiting, when
another connection wrote meanwhile). On PostgreSQL several workers would be faster, but some
store methods read, then insert, without handling a concurrent insert of the same row
(``quarantine``: two complaints' reads quarantining the same record at once), which the fuzzed
hub poll met at once with four workers; ``workers=`` raises it once they do. Each call opens its
own session, so no connection or ORM object is shared between threads while it is in use (rows
handed back are detached copies). An
in-memory SQLite database cannot be shared between threads (each connection has its own) and no
other process can hold its lock: calls to it are made inline.

Errors come back filed in the gateway's tree (:func:`~gateway._store.as_store_error`): a
database that is down or locked past its timeout is a ``StoreUnavailableError``, one refusing
a record's values a ``StoreRefusedError``; an ``IntegrityError`` (a concurrent write) stays as
it is, for the caller to resolve.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from gateway._errors import safe_text
from gateway._store import Store, as_store_error

log = structlog.get_logger("gateway.store")

T = TypeVar("T")

# Threads for a database server (see above for why not more).
POSTGRESQL_WORKERS = 1


class AsyncStore:
    """``await db.method(...)`` for ``store.method(...)``, run in the engine's store threads;
    ``await db.call(function, store, ...)`` for the store's module functions."""

    def __init__(self, store: Store, *, workers: int | None = None):
        """``workers``: threads (default: 1 on SQLite, :data:`POSTGRESQL_WORKERS` otherwise);
        0 makes every call inline, on the caller's thread (a tool or test without an engine)."""
        self.store = store
        url = store.engine.url
        if workers is None:
            sqlite = url.get_backend_name() == "sqlite"
            in_memory = sqlite and url.database in (None, "", ":memory:")
            workers = 0 if in_memory else 1 if sqlite else POSTGRESQL_WORKERS
        self.workers = workers
        self._executor = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway-store") if workers else None
        )
        # Writes nobody waits for (a breaker's state), in the order they were made.
        self._in_order = (
            self._executor
            if workers == 1
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store-ordered")
            if workers
            else None
        )

    async def call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a store thread, with the caller's log context."""
        try:
            if self._executor is None:
                return function(*args, **kwargs)
            context = contextvars.copy_context()  # structlog's bound fields go along
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(context.run, function, *args, **kwargs)
            )
        except Exception as exc:
            filed = as_store_error(exc, getattr(function, "__name__", "call").strip("_"))
            if filed is exc:
                raise
            raise filed from exc

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Looked up on the store at each call: a method replaced on the instance (a test's fault) counts.
        if name.startswith("_"):
            raise AttributeError(name)

        async def method(*args: Any, **kwargs: Any) -> Any:
            return await self.call(getattr(self.store, name), *args, **kwargs)

        method.__name__ = name
        return method

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``function`` in order with the other submitted calls, without waiting for it (from
        synchronous code on the loop, such as a circuit breaker's change). A failure is logged."""
        if self._in_order is None:
            try:
                function(*args, **kwargs)
            except Exception as exc:
                log.warning("store write failed", operation=function.__name__, error=safe_text(exc))
            return
        context = contextvars.copy_context()
        future = self._in_order.submit(context.run, function, *args, **kwargs)

        def done(f: Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                log.warning("store write failed", operation=function.__name__, error=safe_text(exc))

        future.add_done_callback(done)

    async def settled(self) -> None:
        """Wait until every write :meth:`submit` took before now is done."""
        if self._in_order is not None:
            await asyncio.wrap_future(self._in_order.submit(lambda: None))

    def close(self) -> None:
        """Wait for the calls under way and stop the threads."""
        for executor in {self._executor, self._in_order} - {None}:
            executor.shutdown(wait=True)  # type: ignore[union-attr]
