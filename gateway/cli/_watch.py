"""``gateway status --watch``: the status tables read again every interval until Ctrl-C.

On a terminal a live view (rich's Live) redrawn in place, what moved since the previous refresh
highlighted; piped, a plain snapshot per interval (no escape codes); with ``--json``, one JSON
line per interval. A store that cannot be read is one line in the view, and the next refresh
tries again: a watch runs for hours and a database restart must not end it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from gateway._config import GatewayConfig
from gateway._errors import safe_text
from gateway._store import Store
from gateway._store._report import _safe_url, status_report
from gateway._timezones import utcnow
from gateway.cli._render import disabled_instances, status_view


def watch_status(
    config: GatewayConfig,
    store: Store,
    *,
    console: Console,
    interval: float = 2.0,
    as_json: bool = False,
    refreshes: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Refresh every ``interval`` seconds until Ctrl-C (a KeyboardInterrupt, also from ``sleep``)
    or, for tests, after ``refreshes`` refreshes. Returns normally either way."""
    watch = _Watch(config, store, interval, clock)
    try:
        if as_json:
            _loop(refreshes, sleep, interval, lambda: _json_line(console, watch.refresh_json()))
        elif console.is_terminal:
            with Live(console=console, auto_refresh=False) as live:
                _loop(refreshes, sleep, interval, lambda: live.update(Group(*watch.refresh()), refresh=True))
        else:
            _loop(refreshes, sleep, interval, lambda: _snapshot(console, watch.refresh()))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: exit 0, the terminal as it was (Live's exit restores it)


def _loop(refreshes: int | None, sleep: Callable[[float], None], interval: float, refresh: Callable[[], None]) -> None:
    done = 0
    while True:
        refresh()
        done += 1
        if refreshes is not None and done >= refreshes:
            return
        sleep(interval)


def _snapshot(console: Console, view: list[RenderableType]) -> None:
    for part in view:
        console.print(part)
    console.print()  # a blank line between snapshots, for a reader of the piped stream
    console.file.flush()


def _json_line(console: Console, line: dict[str, Any]) -> None:
    console.file.write(json.dumps(line) + "\n")
    console.file.flush()


class _Watch:
    """What one refresh reads and shows, and what it remembers for the next (the previous report,
    to show what moved; the last one read, to keep showing while the store cannot be read)."""

    def __init__(self, config: GatewayConfig, store: Store, interval: float, clock: Callable[[], datetime]):
        self.store = store
        self.store_name = _safe_url(store.url)  # no password
        self.interval = interval
        self.clock = clock
        self.roles = {name: inst.role for name, inst in config.instances.items()}
        self.disabled = disabled_instances(config)
        # The instances' own zones (WIB, WITA, WIT), each once, beside UTC in the header.
        zones = {inst.spec.timezone for inst in config.instances.values() if inst.spec.enabled}
        self.zones = [ZoneInfo(name) for name in sorted(zones)]
        self.previous: dict[str, Any] | None = None
        self.read_at: datetime | None = None

    def read(self) -> tuple[datetime, dict[str, Any] | None, str | None]:
        """The report now, or why it cannot be read: only the gateway's own text or the exception's
        class (a driver's text may quote the URL with its password)."""
        now = self.clock()
        try:
            return now, status_report(self.store, self.roles), None
        except Exception as exc:
            return now, None, safe_text(exc)

    def refresh(self) -> list[RenderableType]:
        now, report, error = self.read()
        view: list[RenderableType] = [self.header(now)]
        if report is None:
            view.append(Text(self.unreachable(error), style="bold red"))
            if self.previous is not None and self.read_at is not None:
                view.append(Text(f"last read at {self.read_at:%H:%M:%S} UTC:", style="dim"))
                view.extend(status_view(self.previous, self.disabled, store_line=False))
            return view
        view.extend(status_view(report, self.disabled, self.previous, store_line=False))
        self.previous, self.read_at = report, now
        return view

    def refresh_json(self) -> dict[str, Any]:
        now, report, error = self.read()
        if report is None:
            return {"at": now.isoformat(), "error": self.unreachable(error)}
        return {"at": now.isoformat(), **report}

    def unreachable(self, error: str | None) -> str:
        return f"store unreachable ({error}); trying again every {self.interval:g} s"

    def header(self, now: datetime) -> Text:
        local = "".join(f" · {now.astimezone(zone):%H:%M:%S %Z}" for zone in self.zones)
        return Text(
            f"store: {self.store_name}\n"
            f"{now:%Y-%m-%d %H:%M:%S} UTC{local} · every {self.interval:g} s · Ctrl-C to stop",
            style="bold",
        )
