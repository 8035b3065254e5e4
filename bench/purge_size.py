"""Store size before and after the retention purge (issue 13): the demo's history purged with
``closed_days: 0``.

1. ``gateway demo --seconds S`` (default 60 s at 720x: half a simulated day of the Lapor Hendi and
   SP4N simulators' people filing, answering and closing) in a subprocess, in a temporary folder:
   it leaves its SQLite store in data/demo.db.
2. A copy of that store, VACUUMed (so both sides are compared without free pages), is measured.
3. Every local app's complaints closed at the hub are purged with a window of 0 days
   (``gateway privacy purge`` with ``privacy.retention.closed_days: 0``, run in-process here: the
   same function), then VACUUM, and measured again. For scale, a second copy has every complaint
   purged (as if all were closed past the window): the most a purge can free in this store.

    .venv/bin/python bench/purge_size.py                 # 60 s of demo
    .venv/bin/python bench/purge_size.py --seconds 120 --speed 2880
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, emit, gateway_command, print_machine, table

from gateway._store import Store
from gateway._store._privacy import PurgeCounts, purge_closed


def vacuumed_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def counts_of(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("complaint", "event", "attachment", "reporter", "outbox")
        } | {"closed": conn.execute("SELECT count(*) FROM complaint WHERE closed_at IS NOT NULL").fetchone()[0]}


def purge(path: Path, *, everything: bool) -> list[PurgeCounts]:
    """Purge every local app's closed complaints (``everything``: every complaint, closed now)."""
    if everything:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE complaint SET closed_at = first_seen_at, next_poll_at = NULL")
            conn.execute("UPDATE outbox SET state = 'done' WHERE state IN ('pending', 'parked', 'needs_confirmation')")
    store = Store(f"sqlite:///{path}")
    try:
        with sqlite3.connect(path) as conn:
            apps = [row[0] for row in conn.execute("SELECT DISTINCT local_instance FROM complaint")]
        return [purge_closed(store, app, 0, actor="bench") for app in apps]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the demo runs (real seconds)")
    parser.add_argument("--speed", type=float, default=720.0, help="the demo's simulated seconds per real second")
    parser.add_argument("--json-out", help="also write the figures as JSON to this file")
    args = parser.parse_args()
    machine = print_machine()
    with tempfile.TemporaryDirectory(prefix="purge-size-") as tmp:
        folder = Path(tmp)
        started = time.monotonic()
        print(f"gateway demo --seconds {args.seconds:g} --speed {args.speed:g} ...", flush=True)
        subprocess.run(
            [
                *gateway_command(),
                "--config",
                str(REPO / "config" / "gateway.yaml"),
                "demo",
                "--seconds",
                str(args.seconds),
                "--speed",
                str(args.speed),
            ],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            timeout=args.seconds + 120,
        )
        demo = folder / "data" / "demo.db"
        print(f"demo done in {time.monotonic() - started:.0f} s", flush=True)
        rows: list[list[Any]] = []
        figures: dict[str, Any] = {"machine": machine, "seconds": args.seconds, "speed": args.speed}
        for label, everything in (("closed ones (closed_days 0)", False), ("every complaint", True)):
            copy = folder / f"copy-{int(everything)}.db"
            shutil.copy(demo, copy)
            before_rows = counts_of(copy)
            before = vacuumed_size(copy)
            purged = purge(copy, everything=everything)
            after = vacuumed_size(copy)
            total = PurgeCounts("all")
            for c in purged:
                for key in ("complaints", "events", "attachments", "reporters", "held_back"):
                    setattr(total, key, getattr(total, key) + getattr(c, key))
            rows.append(
                [
                    label,
                    before_rows["complaint"],
                    before_rows["closed"],
                    total.complaints,
                    total.events,
                    total.attachments,
                    total.reporters,
                    before,
                    after,
                    round(100 * (before - after) / before, 1),
                ]
            )
            figures[label] = {
                "rows": before_rows,
                "purged": total.as_dict(),
                "bytes_before": before,
                "bytes_after": after,
            }
    print(
        table(
            [
                "purged",
                "complaints",
                "closed",
                "purged c.",
                "events",
                "attachments",
                "reporters",
                "bytes before",
                "bytes after",
                "% freed",
            ],
            rows,
        )
    )
    emit("purge_size", figures, args.json_out)


if __name__ == "__main__":
    main()
