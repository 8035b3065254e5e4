"""The docs' picture of the dashboard, taken from the demo: ``make run``'s ``gateway demo`` is
started, the dashboard address it prints is read, and once complaints have crossed to the hub and
have deadlines the page is opened in Debian's headless Chromium (driven by Playwright) and saved,
full page and 1280 pixels wide, to docs/img/dashboard-demo.png. The non-zero series of /metrics are
printed at the same moment (for an issue's closing note).

    .venv/bin/python scripts/screenshot_dashboard.py [--seconds 90] [--lang en] [--out PATH]

The demo runs in a temporary folder (its store, data/demo.db, goes there) and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/test_dashboard_browser.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANNOUNCEMENT = re.compile(r"dashboard: (http://\S+/)dashboard")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90, help="how long the demo may run at most")
    parser.add_argument("--lang", choices=("en", "id"), default="en")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "dashboard-demo.png")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"Debian's Chromium is not installed ({CHROMIUM}): apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        demo = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(REPO / "config" / "gateway.yaml")]
            + ["demo", "--seconds", f"{args.seconds:g}"],
            cwd=folder,
            env={**os.environ, "COLUMNS": "200"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = _address(demo, timeout=60)
            _wait_for_deadlines(base, deadline=time.monotonic() + args.seconds - 10)
            _screenshot(f"{base}dashboard?lang={args.lang}", args.out)
            # The figures as the page showed them (the demo moves on, a little, meanwhile).
            summary = httpx.get(f"{base}dashboard/api/summary", timeout=10).json()
            scrape = httpx.get(f"{base}metrics", timeout=10).text
        finally:
            demo.send_signal(signal.SIGINT)  # as Ctrl-C: the demo stops its simulators and prints its report
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
    print(f"saved {args.out} ({args.out.stat().st_size} bytes) from {base}dashboard?lang={args.lang}")
    print(_figures(summary))
    print("\n/metrics, non-zero series (histogram buckets left out):")
    for line in _non_zero(scrape):
        print(line)
    return 0


def _address(demo: subprocess.Popen[str], timeout: float) -> str:
    """The dashboard's root, from the line the demo prints once its server listens."""
    lines: Queue[str | None] = Queue()

    def read() -> None:  # to the end: the demo's log must keep draining, or it blocks on a full pipe
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            line = lines.get(timeout=1)
        except Empty:
            continue
        if line is None:
            raise SystemExit(f"the demo ended (exit {demo.wait()}) before printing the dashboard's address")
        if found := ANNOUNCEMENT.search(line):
            return found.group(1)
    raise SystemExit(f"the demo printed no dashboard address within {timeout:g} s")


def _wait_for_deadlines(base: str, deadline: float) -> dict:
    """The dashboard's JSON once complaints were created at the hub and have deadlines, the hub's
    statuses came back to the local app, and every job of this daemon has run."""
    summary: dict = {}
    while time.monotonic() < deadline:
        summary = httpx.get(f"{base}dashboard/api/summary", timeout=10).json()
        flow = {key: n for i in summary.get("instances", []) for key, n in i["flow"].items()}
        back = flow.get("status_changes_from_hub", 0) + flow.get("status_notes_from_hub", 0)
        jobs = [j for i in (summary.get("daemon") or {}).get("instances", []) for j in i["jobs"]]
        if flow.get("complaints_created") and back and summary.get("deadlines") and all(j["runs"] for j in jobs):
            return summary
        time.sleep(1)
    raise SystemExit(f"no complaint with a deadline reached the hub in time; last summary: {json.dumps(summary)[:800]}")


def _screenshot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("#daemon table.daemon")
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


def _figures(summary: dict) -> str:
    flow = {i["name"]: i["flow"] for i in summary["instances"]}
    deadlines = [
        f"{d['agency']} {d['tier']}: {d['due_soon']} due soon, {d['overdue']} overdue" for d in summary["deadlines"]
    ]
    return f"flow: {json.dumps(flow)}\ndeadlines: " + "; ".join(deadlines)


def _non_zero(scrape: str) -> list[str]:
    shown = []
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if sample.value == 0 or sample.name.endswith("_bucket"):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            shown.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}")
    return shown


if __name__ == "__main__":
    sys.exit(main())
