"""One bad record never stops a city; several daemons on one store never undo each other.

Regression tests of the findings of an independent audit, one each (numbers as in the audit):
1. an odd date stopped all intake of a local app;
2. a NUL byte or a lone surrogate in a complaint blocked intake (and leaked into logs);
3. a lease that ran out mid-round sent a create twice;
4. leases compared each daemon's own clock (tests/test_store.py);
5. attachments were read whole before their size was checked;
6. quarantine rows stayed unresolved for records another daemon took in;
7. config: a non-UTF-8 file, a bad store.url, ``enabled: "no"`` (tests/test_config.py);
8. the request budget and the breaker lived in each process.

Real parts: both simulators over loopback HTTP, the real engine, a real store (SQLite, and
PostgreSQL when GATEWAY_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from conftest import edit
from sqlmodel import select

from gateway import AttachmentRef, PermanentPeerError, TooLargeError
from gateway._config import load_config
from gateway._engine import Engine
from gateway._store import Store
from gateway._store._operator import list_quarantine
from gateway._store._tables import ComplaintRow, LinkRow, QuarantineRow

pytestmark = [pytest.mark.anyio]

LOCAL, HUB = "lapor-hendi-semarang", "sp4n"


def quiet(world) -> None:
    world.local.officers_active = False
    world.hub.quiesce()


def taken_in(store: Store) -> set[str]:
    with store.session() as s:
        return set(s.exec(select(LinkRow.external_ref).where(LinkRow.instance == LOCAL)).all())


# -- 1. an odd value ------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_complaint_dated_year_one_is_quarantined_and_the_others_are_taken_in(world, tmp_path, store_url):
    quiet(world)
    bad = world.local.submit_complaint(tanggal_kejadian="0001-01-01")
    good = [world.local.submit_complaint() for _ in range(6)]
    store = Store(store_url)
    try:
        async with Engine(world.config(tmp_path, store_url), store) as engine:
            assert await engine.intake(LOCAL) is not None  # the run goes on and succeeds
        assert {str(i) for i in good} <= taken_in(store) and str(bad) not in taken_in(store)
        [row] = [q for q in list_quarantine(store) if q["record_ref"] == str(bad)]
        assert "tanggal_kejadian" in row["reason"] and "0001" not in row["reason"]
    finally:
        store.close()


# -- 2. text a database cannot hold ----------------------------------------------------------------


@pytest.mark.e2e
async def test_nul_bytes_and_lone_surrogates_are_cleaned_on_both_stores(world, tmp_path, store_url):
    quiet(world)
    odd = world.local.submit_complaint(judul="Jalan\x00 rusak", isi="Lubang besar \ud800 di depan pasar")
    store = Store(store_url)
    try:
        async with Engine(world.config(tmp_path, store_url), store) as engine:
            await engine.run_pass()
        cid = store.complaint_id_for(LOCAL, str(odd))
        assert cid is not None, "the complaint was not taken in"
        row = store.complaint(cid)
        assert (row.title, row.body) == ("Jalan rusak", "Lubang besar \ufffd di depan pasar")
        assert store.external_ref(cid, HUB) is not None  # and it went on to the hub
    finally:
        store.close()


# -- 3. a lease that runs out mid-round ----------------------------------------------------------


@pytest.mark.e2e
async def test_two_daemons_with_a_short_lease_and_a_slow_hub_create_each_complaint_once(world, tmp_path, store_url):
    quiet(world)
    world.hub.faults.configure(latency_ms=(400, 1200))  # slower than the lease
    config = world.config(tmp_path, store_url, schedule="delivery:\n  lease_seconds: 1\n")
    stores = [Store(store_url), Store(store_url)]
    try:
        for _ in range(24):
            world.local.submit_complaint()
        async with Engine(config, stores[0], owner="daemon-a") as a, Engine(config, stores[1], owner="daemon-b") as b:
            await a.intake(LOCAL)

            async def daemon(engine: Engine, pause: float) -> None:  # its delivery job, run every `pause` s
                for _ in range(12):
                    await engine.deliver(HUB)
                    await asyncio.sleep(pause)

            await asyncio.gather(daemon(a, 0.25), daemon(b, 0.3))
        tags = Counter(
            tag for c in world.hub.complaints() for tag in (c["tags_raw"] or "").split() if tag.startswith("#lg_")
        )
        assert tags and max(tags.values()) == 1, "a complaint was created twice"
        with stores[0].session() as s:
            refs = s.exec(select(ComplaintRow.gateway_ref)).all()
        assert len(tags) == len(refs) == world.hub.counts()["complaints"]
    finally:
        for store in stores:
            store.close()


# -- 5. attachments are streamed, their size checked while reading ------------------------------


async def test_an_attachment_over_the_limit_is_not_read_whole():
    from gateway import WIB, InstanceContext
    from lapor_gateway_adapters.lapor_hendi import LaporHendiApp

    served = 0

    async def huge_body():
        nonlocal served
        for _ in range(300):  # 300 MiB if read whole
            served += 1024 * 1024
            yield b"\0" * (1024 * 1024)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/declared"):
            return httpx.Response(200, headers={"Content-Length": str(300 * 1024 * 1024)}, content=b"x")
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=huge_body())

    context = InstanceContext(
        name=LOCAL,
        base_url="http://app.test",
        timezone=WIB,
        secrets={"api_key": "k"},
        settings=LaporHendiApp.Settings(),
    )
    app = LaporHendiApp(context, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    with pytest.raises(TooLargeError) as caught:
        await app.fetch_attachment(AttachmentRef("1", "foto.png", "image/png", 1000), max_bytes=10 * 1024 * 1024)
    assert served <= 12 * 1024 * 1024, f"{served} bytes were read for a limit of 10 MiB"
    assert isinstance(caught.value, PermanentPeerError) and "10485760" in str(caught.value)
    with pytest.raises(TooLargeError):  # a declared length over the limit: refused before reading
        await app.fetch_attachment(AttachmentRef("declared", "foto.png", "image/png", None), max_bytes=1024)
    await app.aclose()


# -- 6. quarantine across daemons ----------------------------------------------------------------


@pytest.mark.e2e
async def test_a_record_another_daemon_quarantined_is_resolved_when_this_one_reads_it_fine(world, tmp_path, store_url):
    quiet(world)
    local_id = world.local.submit_complaint()
    store = Store(store_url)
    try:
        async with Engine(world.config(tmp_path, store_url), store, owner="daemon-b") as b:
            app = b.adapters[LOCAL]
            read = app.complaints_since

            async def racing(since):
                # Daemon A, at the same time, read a drifted version and quarantined it: after this
                # daemon's run started, before this daemon reads it fine.
                store.quarantine(LOCAL, "complaints", str(local_id), "field 'judul' is missing")
                async for record in read(since):
                    yield record

            app.complaints_since = racing  # type: ignore[method-assign]
            await b.intake(LOCAL)
        with store.session() as s:
            row = s.exec(select(QuarantineRow).where(QuarantineRow.record_ref == str(local_id))).one()
        assert row.resolved_at is not None
    finally:
        store.close()


# -- 8. one budget and one breaker per peer, across the daemons of a store -----------------------


@pytest.mark.e2e
async def test_daemons_of_one_store_share_each_peers_budget(world, tmp_path, store_url):
    config = world.config(tmp_path, store_url)
    config.instances[HUB].spec.budget.requests_per_second = 6
    stores = [Store(store_url) for _ in range(3)]
    try:
        engines = [Engine(config, store, owner=f"daemon-{i}") for i, store in enumerate(stores)]
        assert [await e.heartbeat() for e in engines] == [1, 2, 3]
        assert await engines[0].heartbeat() == 3
        budgets = [e.adapters[HUB].http.budget for e in engines]
        assert budgets[0].current_rps == pytest.approx(2.0)  # a third of 6 each: together 6
        await engines[2].aclose()  # a clean stop gives its share back at once
        assert await engines[0].heartbeat() == 2
        assert budgets[0].current_rps == pytest.approx(3.0)
        assert engines[0].poll_batch(HUB) == int(3.0 * config.schedule_seconds(HUB, "hub_poll_seconds") / 2)
        for e in engines[:2]:
            await e.aclose()
    finally:
        for store in stores:
            store.close()


@pytest.mark.e2e
async def test_a_peer_another_daemon_found_down_is_left_alone(world, tmp_path, store_url):
    config = world.config(tmp_path, store_url)
    stores = [Store(store_url), Store(store_url)]
    try:
        async with Engine(config, stores[0], owner="daemon-a") as a, Engine(config, stores[1], owner="daemon-b") as b:
            breaker = a.adapters[HUB].http.breaker
            for _ in range(breaker.policy.failure_threshold):
                breaker.record_failure("sp4n: GET /complaints/{id}/complaint: answered HTTP 503")
            assert breaker.state == breaker.OPEN
            await a.db.settled()  # the change goes to the store from the engine's store thread
            before = world.hub.counts()["requests"]
            await b.poll_hub(HUB)  # daemon-b reads the store first: no call to a peer found down
            assert b.adapters[HUB].http.breaker.state == breaker.OPEN
            assert world.hub.counts()["requests"] == before
    finally:
        for store in stores:
            store.close()


# -- 7. configuration ------------------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_reported_with_its_line(repo_config_dir: Path):
    path = repo_config_dir / "adapters" / "sp4n.yaml"
    path.write_bytes(path.read_bytes().replace(b"Belum Terverifikasi", b"Belum Terverifikas\xe9"))
    from gateway import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(
            repo_config_dir / "gateway.yaml",
            environ={"LAPOR_HENDI_API_KEY": "x", "SP4N_AUTHORIZATION": "y", "SP4N_TOKEN": "z"},
        )
    [issue] = [i for i in caught.value.issues if i.file == str(path)]
    text = path.read_bytes()
    assert issue.file == str(path) and "UTF-8" in issue.message
    assert issue.line == text[: text.index(b"\xe9")].count(b"\n") + 1


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@localhost/gateway", "unsupported database"),
        ("postgresql+nosuchdriver://u@h/db", "no driver"),
        ("not a url", "not a database URL"),
        ("postgresql+psycopg://u@h", "name the database"),
    ],
)
def test_config_check_checks_the_store_url(repo_config_dir: Path, url: str, says: str):
    text = edit(repo_config_dir / "gateway.yaml", "url: sqlite:///data/gateway.db", f"url: {url}")
    from gateway import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(repo_config_dir / "gateway.yaml", environ={})
    [issue] = [i for i in caught.value.issues if i.key == "store.url"]
    assert says in issue.message and url not in issue.message  # a URL may carry a password
    assert issue.line == next(n for n, line in enumerate(text.splitlines(), 1) if "url:" in line)
