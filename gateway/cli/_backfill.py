"""``gateway backfill``: read a local app's history into the store, with a progress
bar (or, when the output is not a terminal, a line every few seconds)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from gateway._errors import GatewayError
from gateway._timezones import WIB

if TYPE_CHECKING:
    from gateway._engine._backfill import BackfillResult


class WalkBar:
    """A :class:`gateway._paging.WalkProgress`: one bar per stream walked (also the bar of other
    long walks through the store, such as `gateway privacy rotate-keys`)."""

    def __init__(
        self,
        progress: Progress | None,
        instance: str,
        *,
        every: float = 5.0,
        streams: tuple[str, ...] = ("complaints", "status changes", "follow-ups"),
    ):
        self.progress = progress
        self.instance = instance
        self.every = every
        self.streams = iter(streams)
        self.task: TaskID | None = None
        self.stream = ""
        self.total: int | None = None
        self.done = 0
        self.last_line = 0.0

    def started(self, total: int | None) -> None:
        self.stream = next(self.streams, "records")
        self.total, self.done = total, 0
        if self.progress is not None:
            self.task = self.progress.add_task(f"{self.instance} {self.stream}", total=total)
        else:
            print(f"{self.instance}: {self.stream}: {total if total is not None else '?'} to read", flush=True)
            self.last_line = time.monotonic()

    def advanced(self, records: int) -> None:
        self.done += records
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=records)
        elif time.monotonic() - self.last_line >= self.every:
            self.last_line = time.monotonic()
            print(
                f"{self.instance}: {self.stream}: {self.done} of {self.total if self.total is not None else '?'}",
                flush=True,
            )


def bar_progress(console: Console) -> Progress:
    """The progress display of :class:`WalkBar` on a terminal: what, a bar, how many of how many, time left."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=False)


def _since(text: str) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise typer.BadParameter("expected a date as YYYY-MM-DD, e.g. 2023-01-01") from None
    return day.replace(tzinfo=WIB)  # a day in Indonesia starts at midnight WIB


def backfill_command(
    since: Annotated[str, typer.Option(help="read what changed on or after this day (YYYY-MM-DD, WIB)")],
    app_name: Annotated[
        str | None, typer.Option("--app", help="the local app instance to read (default: every enabled one)")
    ] = None,
) -> None:
    """Read a local app's history since a date, for its first connection.

    Complaints, then status changes, then follow-ups are read into the store within the
    app's request budget; the complaints are then owed to the hub like any other, and the
    daemon delivers them. Stopped (Ctrl-C, a failure), it resumes where it was when run
    again with the same --since. The daemon may run meanwhile."""
    from gateway._engine import Engine
    from gateway.cli._context import _load, _open_store, _setup_logging, err, out

    start = _since(since)
    config = _load()
    _setup_logging(config)
    locals_ = [i.name for i in config.local_apps() if i.spec.route]
    if app_name is not None:
        if app_name not in locals_:
            err.print(
                f"[red]--app: no enabled local app instance named {app_name!r}; there are: "
                f"{', '.join(locals_) or 'none'}[/red]",
                highlight=False,
            )
            raise typer.Exit(2)
        locals_ = [app_name]
    store = _open_store(config)

    async def main() -> list[tuple[str, BackfillResult]]:
        done = []
        async with Engine(config, store) as engine:
            for name in locals_:
                if out.is_terminal:
                    with bar_progress(out) as progress:
                        result = await engine.backfill(name, start, progress=WalkBar(progress, name))
                else:
                    result = await engine.backfill(name, start, progress=WalkBar(None, name))
                done.append((name, result))
        return done

    try:
        results = asyncio.run(main())
    except GatewayError as exc:
        err.print(
            f"[red]backfill stopped: {exc}[/red]\nWhat was read is kept: run the same command again to resume.",
            highlight=False,
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("backfill stopped; run the same command again to resume.")
        raise typer.Exit(130) from None
    finally:
        store.close()
    for name, result in results:
        r = result.intake
        out.print(
            f"{name}: {r.complaints_new} complaints new, {r.complaints_updated} known, "
            f"{r.status_changes} status changes, {r.follow_ups} follow-ups, {r.quarantined} quarantined "
            f"in {result.seconds:.1f} s ({result.complaints_per_second:.0f} complaints/s)"
            + (" (resumed)" if result.resumed else ""),
            highlight=False,
        )
