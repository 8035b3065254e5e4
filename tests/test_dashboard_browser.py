"""The dashboard in a real headless browser: Debian's Chromium (/usr/bin/chromium) driven by
Playwright, never a browser Playwright downloads. The store is filled by a real sync against
both simulators over loopback: a complaint whose category has no mapping (its create parked)
and one whose create answer the hub lost (waiting for confirmation). The operator reads the page,
switches language, signs in and retries the parked delivery by clicking; the audit shows their
name, and the page picks up a change made elsewhere without a reload. It takes a screenshot every
run (in its temporary folder); the docs' picture is the demo's, from scripts/screenshot_dashboard.py.

Without Chromium the test is skipped with the reason, except in CI (CI=true), where it fails:
CI installs Chromium (.ci/run) and must run it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import JumpClock
from dashboard_kit import TOKEN, served

from gateway._engine import Engine
from gateway._store import CREATE_COMPLAINT, Store
from gateway._store._operator import drop_delivery, list_deliveries, show_delivery
from gateway._web._dashboard import DashboardContext
from gateway._web._texts import EN, ID

pytestmark = [pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
OPERATOR = "Sari Operator"


def _browser_or_skip():
    """Playwright's sync API, or a skip (a failure in CI) saying what is missing."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"Debian's Chromium is not installed ({CHROMIUM}): apt-get install -y chromium"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            missing = "Playwright for Python is not installed: pip install -e '.[test]'"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    return sync_api


@dataclass(frozen=True)
class Deadline:  # stands in for the deadlines branch's DeadlineCount in this world
    instance: str
    agency: str
    tier: str
    due_soon: int
    overdue: int


async def _sync(world, config, store: Store, clock: JumpClock) -> tuple[int, int]:
    """Real passes against the simulators; returns the parked delivery's id and the one that
    waits for confirmation."""
    world.local.officers_active = False
    world.hub.quiesce()
    async with Engine(config, store, owner="daemon-1", seed=7) as engine:
        await engine.run_pass()  # the initial complaints cross
        for category in ("Pohon Tumbang", "Reklame Liar"):  # not in the YAML
            world.local.submit_complaint(kategori=category, lampiran=0, anonim=False)
        await engine.intake(LOCAL)
        await engine.deliver(HUB)
        parked, _other = list_deliveries(store, states=("parked",))
        world.local.submit_complaint(kategori="Jalan Rusak", lampiran=0, anonim=False)
        await engine.intake(LOCAL)
        world.hub.faults.configure(lost_answer_rate=1.0)
        try:
            await engine.deliver(HUB)
        finally:
            world.hub.faults.configure(lost_answer_rate=0.0)
        clock.advance(3 * 3600)
        await engine.deliver(HUB)
        (waiting,) = list_deliveries(store, states=("needs_confirmation",))
        assert waiting["kind"] == CREATE_COMPLAINT
    return parked["id"], waiting["id"]


def test_an_operator_reads_the_page_switches_language_signs_in_and_retries_by_clicking(world, tmp_path):
    screenshot = tmp_path / "dashboard.png"
    sync_api = _browser_or_skip()
    store_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path, store_url)
    clock = JumpClock()
    store = Store(store_url, clock=clock)
    try:
        parked, waiting = asyncio.run(_sync(world, config, store, clock))
        context = DashboardContext(
            store=store,
            config=config,
            clock=clock,
            operator_actions=True,
            token=TOKEN,
            language="id",
            refresh_seconds=1,
            deadline_counts=lambda *_: [
                Deadline(LOCAL, "DPU", "answer", 2, 1),
                Deadline(LOCAL, "DISHUB", "answer", 1, 0),
                Deadline(HUB, "100234", "verify", 1, 0),
            ],
        )
        with served(context) as base, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                _read_sign_in_and_retry(sync_api, page, base, parked, waiting, screenshot)
                # A change made elsewhere (the CLI) shows without a reload.
                drop_delivery(store, waiting, "checked at the hub by phone", actor="operator:Budi")
                sync_api.expect(page.locator(f"#delivery-{waiting}")).to_have_count(0, timeout=10_000)
                sync_api.expect(page.locator("td.actor", has_text="operator:Budi")).to_have_count(1)
            finally:
                browser.close()
        (entry,) = show_delivery(store, parked)["audit"][-1:]
        assert (entry["actor"], entry["action"]) == (f"operator:{OPERATOR}", "delivery_retried")
    finally:
        store.close()


def _read_sign_in_and_retry(sync_api, page, base: str, parked: int, waiting: int, screenshot: Path) -> None:
    expect = sync_api.expect
    page.goto(f"{base}/dashboard")
    # The instances, each with its flow; Indonesian by default.
    expect(page.locator("html")).to_have_attribute("lang", "id")
    for name in (LOCAL, HUB):
        expect(page.locator(f"th.instance[data-instance='{name}']")).to_have_count(1)
    seen = page.locator("table[data-role='local_app'] tr[data-key='complaints_seen'] td")
    assert int(seen.inner_text()) == 15  # the 12 initial complaints and the 3 the test submitted
    # The parked delivery with its reason and what to do; the one waiting for confirmation says
    # what to look for at the hub.
    row = page.locator(f"#delivery-{parked}")
    expect(row).to_contain_text("Pohon Tumbang")
    expect(row).to_contain_text(ID["hint_parked"])
    expect(page.locator(f"#delivery-{waiting}")).to_contain_text("#lg_")
    expect(page.locator(f"#delivery-{waiting}")).to_contain_text(ID["hint_confirm_create"])
    assert page.locator(f"#delivery-{parked} form").count() == 0  # read-only until signed in

    page.click("a[data-lang='en']")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#waiting h2")).to_contain_text(EN["section_waiting"])
    expect(page.locator(f"#delivery-{parked}")).to_contain_text(EN["hint_parked"])

    page.click("#sign-in")
    page.fill("input[name='operator']", OPERATOR)
    page.fill("input[name='token']", TOKEN)
    page.click("form.signin button[type='submit']")
    expect(page.locator(".who .operator")).to_have_text(OPERATOR)

    page.locator(f"#delivery-{parked} form[data-action='retry'] button").click()
    expect(page.locator(".flash.done")).to_have_text(EN["done"].format(id=parked, action=EN["action_retry"]))
    expect(page.locator(f"#delivery-{parked}")).to_have_count(0)  # owed again, no longer waiting
    audit = page.locator("#audit tbody tr").first
    expect(audit.locator("td.actor")).to_have_text(f"operator:{OPERATOR}")
    expect(audit).to_contain_text("delivery_retried")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000


def test_without_chromium_the_browser_test_is_skipped_but_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _browser_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        _browser_or_skip()
