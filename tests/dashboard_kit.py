"""What the dashboard's tests share: the dashboard served on a loopback port from a thread of its
own (so that a synchronous client, a browser driver included, can talk to it), and a store
seeded through the store's own functions with deliveries waiting for an operator, errors, an
open breaker and personal data planted as markers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from conftest import write_config

from gateway import Classification, Complaint, Location, RawStatus, Reporter, Status
from gateway._config import GatewayConfig, load_config
from gateway._store import Store
from gateway._web._dashboard import DashboardContext, add_dashboard_routes

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"
NOW = datetime(2026, 11, 30, 2, 41, tzinfo=UTC)  # Monday 09:41 WIB
TOKEN = "tok-0123456789abcdef-test"
#: Personal data planted in every field that holds some; none may reach a page or the JSON.
MARKERS = {
    "name": "ZQXNAME001Q",
    "nik": "ZQXNIK002Q",
    "phone": "ZQXPHONE003Q",
    "email": "zqxemail004q@example.org",
    "address": "ZQXADDRESS005Q",
    "title": "ZQXTITLE006Q",
    "body": "ZQXBODY007Q",
    "location": "ZQXLOCATION008Q",
}
PARKED_ERROR = "sp4n: POST /complaints/complaint: answered HTTP 422 (invalid fields: location_id)"
CONFIRM_ERROR = (
    "sp4n: POST /complaints/complaint: the answer was lost (timed out); sp4n offers no search by reference: "
    "look for the hashtag #lg_a1b2 in tags_raw; then `gateway deliveries link` or `gateway deliveries resend`"
)


def dashboard_config(folder: Path, store_url: str, *, local_zone: str | None = None) -> GatewayConfig:
    """The shipped config (peers on an unused loopback port: nothing is called), optionally with the
    local app in another zone."""
    path = write_config(folder, store_url, {"lapor_hendi": "http://127.0.0.1:9", "sp4n": "http://127.0.0.1:9"})
    if local_zone:
        yaml = folder / "adapters" / f"{LOCAL}.yaml"
        text = yaml.read_text()
        yaml.write_text(text.replace("timezone: Asia/Jakarta", f"timezone: {local_zone}", 1))
    return load_config(path, check_secrets=False)


def complaint(ref: str) -> Complaint:
    m = MARKERS
    return Complaint(
        ref=ref,
        title=f"{m['title']} jalan berlubang",
        body=f"{m['body']} lubang besar",
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=3),
        status=RawStatus("belum terverifikasi", "Belum Terverifikasi"),
        category="Jalan Rusak",
        classification=Classification.COMPLAINT,
        location=Location(description=m["location"], district="Semarang Selatan"),
        channel="web",
        reporter=Reporter(name=m["name"], nik=m["nik"], phone=m["phone"], email=m["email"], address=m["address"]),
    )


@dataclass
class Seeded:
    parked: int  # outbox ids
    needs_confirmation: int


def seed(store: Store) -> Seeded:
    """Three complaints taken in: one create parked, one waiting for confirmation, one owed;
    a failing job and an open breaker at the hub."""
    for ref in ("LH-1", "LH-2", "LH-3"):
        store.take_in_complaint(LOCAL, HUB, complaint(ref), Status.UNVERIFIED)
    parked, confirm, _owed = store.claim_due(HUB, "daemon-1", timedelta(minutes=5))
    store.fail_delivery(parked.id, PARKED_ERROR, retry_at=None, token=parked.claim_token)
    store.fail_delivery(
        confirm.id,
        CONFIRM_ERROR,
        retry_at=None,
        state="needs_confirmation",
        outcome_unknown=True,
        token=confirm.claim_token,
    )
    store.job_started(HUB, "deliver")
    store.job_finished(HUB, "deliver", error="sp4n: POST /complaints/complaint: timed out")
    store.set_peer_health(HUB, "open", 5, "sp4n: GET /complaints/{id}: answered HTTP 503")
    return Seeded(parked.id, confirm.id)


@contextmanager
def served(context: DashboardContext) -> Iterator[str]:
    """The dashboard on 127.0.0.1, a free port, from a thread with its own loop; yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> web.AppRunner:
        app = web.Application()
        add_dashboard_routes(app, context)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["port"] = runner.addresses[0][1]
        return runner

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["runner"] = loop.run_until_complete(start())
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="dashboard", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        runner = box["runner"]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
