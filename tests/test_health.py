"""The daemon's HTTP server: /healthz, /readyz and each check that makes it fail, the address it
listens on (a port in use is a clear error, the demo takes a free one instead), and the server
started and stopped with the daemon. Real HTTP over loopback, a real store (SQLite file;
PostgreSQL too when configured)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import edit
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from gateway._config import load_config
from gateway._config._schema import WebSettings
from gateway._daemon import Daemon
from gateway._engine import Engine
from gateway._errors import ConfigError
from gateway._store import Store
from gateway._store._migrations import head_revision, script_directory
from gateway._web._context import WebContext
from gateway._web._metric_names import BUILD_INFO
from gateway._web._metrics import Metrics
from gateway._web._server import WebServer, build_app

pytestmark = pytest.mark.anyio

GATEWAY = [sys.executable, "-m", "gateway.cli"]


class Served:
    """A web server on a free loopback port for an engine; ``scheduling`` says what the
    scheduler check sees."""

    def __init__(self, engine: Engine, config, *, scheduling: bool = True):
        self.scheduling = scheduling
        context = WebContext(engine, config, Metrics(), lambda: self.scheduling)
        self.server = WebServer(build_app(context), "127.0.0.1", 0)

    async def __aenter__(self) -> Served:
        await self.server.start()
        self.client = httpx.AsyncClient(base_url=self.server.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.server.stop()

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)


@pytest.fixture
def config(world, tmp_path: Path, store_url: str):
    return world.config(tmp_path, store_url)


async def _ask(config, store: Store, *paths: str, scheduling: bool = True, pause: float = 0) -> list[httpx.Response]:
    """GET each of ``paths`` (``pause`` seconds apart) from a server for an engine on ``store``,
    which is closed afterwards."""
    answers = []
    try:
        async with Engine(config, store) as engine, Served(engine, config, scheduling=scheduling) as served:
            for n, path in enumerate(paths):
                if n:
                    await asyncio.sleep(pause)
                answers.append(await served.get(path))
    finally:
        store.close()
    return answers


async def test_healthz_answers_from_the_event_loop_with_its_lag(config, store_url: str):
    response, later = await _ask(config, Store(store_url), "/healthz", "/healthz", scheduling=False, pause=1.2)
    later = later.json()  # after one period of the loop watch
    assert response.status_code == 200  # even with the scheduler stopped: the process answers
    assert response.json()["status"] == "ok"
    assert isinstance(later["loop_lag_seconds"], float) and 0 <= later["loop_lag_seconds"] < 1


async def test_readyz_is_ready_when_the_store_answers_its_schema_is_current_and_the_scheduler_runs(
    config, store_url: str
):
    [response] = await _ask(config, Store(store_url), "/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "store": True,
        "schema": True,
        "scheduler": True,
    }
    assert body["checks"]["schema"]["detail"] == f"revision {head_revision()}"


async def test_readyz_fails_while_the_scheduler_does_not_run(config, store_url: str):
    [response] = await _ask(config, Store(store_url), "/readyz", scheduling=False)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["scheduler"]["ok"] is False and "not running" in checks["scheduler"]["detail"]
    assert checks["store"]["ok"] and checks["schema"]["ok"]


async def test_readyz_fails_on_a_schema_this_gateway_is_not_built_for(config, store_url: str):
    store = Store(store_url)
    older = script_directory().get_revision(head_revision()).down_revision
    assert isinstance(older, str)
    with store.engine.begin() as conn:  # as if a gateway of another version had migrated the store
        conn.execute(text("UPDATE alembic_version SET version_num = :older"), {"older": older})
    [response] = await _ask(config, store, "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["schema"]["ok"] is False
    assert f"revision {older}" in checks["schema"]["detail"] and head_revision() in checks["schema"]["detail"]
    assert checks["store"]["ok"] and checks["scheduler"]["ok"]


async def test_readyz_fails_when_the_store_does_not_answer_and_names_no_url_or_password(config, store_url: str):
    store = Store(store_url)
    working = store.engine
    # Nothing listens on port 1: the connection is refused at once. The URL carries a password
    # and a user name that the answer must not show.
    store.engine = create_engine("postgresql+psycopg://gateway-user:s3cret-pw@127.0.0.1:1/gateway")
    try:
        async with Engine(config, store) as engine, Served(engine, config) as served:
            response = await served.get("/readyz")
    finally:
        store.engine.dispose()
        store.engine = working
        store.close()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["store"]["ok"] is False and "unreachable" in checks["store"]["detail"]
    assert checks["schema"] == {"ok": False, "detail": "not checked: the store did not answer"}
    for secret in ("s3cret-pw", "gateway-user", "127.0.0.1:1", "postgresql"):
        assert secret not in response.text


def _taken_port() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


async def test_a_port_in_use_is_an_error_naming_the_address_and_the_key(config, store_url: str):
    store = Store(store_url)
    holder = _taken_port()
    port = holder.getsockname()[1]
    try:
        async with Engine(config, store) as engine:
            context = WebContext(engine, config, Metrics(), lambda: True)
            server = WebServer(build_app(context), "127.0.0.1", port, config_path=config.path)
            with pytest.raises(ConfigError) as caught:
                await server.start()
            # The demo's way: a free port instead, and it says so.
            fallback = WebServer(build_app(context), "127.0.0.1", port)
            await fallback.start(any_port_if_taken=True)
            try:
                assert fallback.fell_back and fallback.address[1] not in (0, port)
                assert f"port {port} was taken" in fallback.announcement()
                async with httpx.AsyncClient() as client:
                    assert (await client.get(fallback.url + "healthz")).status_code == 200
            finally:
                await fallback.stop()
    finally:
        holder.close()
        store.close()
    [issue] = caught.value.issues
    assert issue.key == "web.port" and issue.file == str(config.path)
    assert f"127.0.0.1:{port}" in issue.message and "in use" in issue.message


async def test_a_host_beyond_loopback_is_served_but_warned_about(config, store_url: str):
    store = Store(store_url)
    try:
        async with Engine(config, store) as engine:
            server = WebServer(build_app(WebContext(engine, config, Metrics(), lambda: True)), "0.0.0.0", 0)
            with capture_logs() as logs:
                await server.start()
            await server.stop()
    finally:
        store.close()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and "authentication" in warnings[0]["event"] and warnings[0]["host"] == "0.0.0.0"


@pytest.mark.e2e
async def test_the_daemon_serves_while_it_runs_and_stops_serving_when_it_stops(world, tmp_path: Path):
    world.step()
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = world.config(tmp_path, url)
    store = Store(url)
    listening: list[WebServer] = []
    stop = asyncio.Event()
    try:
        async with Engine(config, store) as engine, httpx.AsyncClient() as client:
            daemon = Daemon(engine, config, on_listening=listening.append)
            task = asyncio.create_task(daemon.run_until_signalled(stop))
            while not listening or not daemon.is_scheduling():
                assert not task.done(), task
                await asyncio.sleep(0.01)
            root = listening[0].url
            assert listening[0].address[1] != 0
            ready = await client.get(root + "readyz")
            scrape = await client.get(root + "metrics")
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            with pytest.raises(httpx.ConnectError):
                await client.get(root + "healthz")
    finally:
        store.close()
    assert ready.status_code == 200, ready.text
    assert scrape.status_code == 200 and BUILD_INFO in scrape.text
    assert daemon.web is None and daemon.scheduler is None
    assert "dashboard: " + root + "dashboard" in listening[0].announcement()


def test_a_disabled_server_is_not_started(world, tmp_path: Path):
    config = world.config(tmp_path, f"sqlite:///{tmp_path / 'gateway.db'}")
    config.settings.web.enabled = False
    store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")

    async def main() -> Daemon:
        async with Engine(config, store) as engine:
            daemon = Daemon(engine, config)
            await daemon.start_web()
            return daemon

    try:
        assert asyncio.run(main()).web is None
    finally:
        store.close()


@pytest.mark.e2e
def test_gateway_run_on_a_port_in_use_stops_with_the_address_and_the_key(world, tmp_path: Path):
    config_path = tmp_path / "config" / "gateway.yaml"
    world.config(config_path.parent, f"sqlite:///{tmp_path / 'gateway.db'}")
    holder = _taken_port()
    port = holder.getsockname()[1]
    config_path.write_text(config_path.read_text().replace("  port: 0\n", f"  port: {port}\n"))
    try:
        done = subprocess.run(
            GATEWAY + ["run"],
            env={**os.environ, **world.environ, "GATEWAY_CONFIG": str(config_path)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    assert f"gateway.yaml: web.port: cannot serve HTTP on 127.0.0.1:{port}: the address is in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert world.hub.complaints() == []  # no job ran


def test_web_settings_are_checked_with_the_file_and_the_key(repo_config_dir: Path):
    path = repo_config_dir / "gateway.yaml"
    edit(path, "  port: 8780 ", "  port: 87800 ")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "b", "LAPOR_HENDI_API_KEY": "c"})
    assert any(issue.key == "web.port" and issue.line is not None for issue in caught.value.issues), caught.value


@pytest.mark.parametrize("host", ["300.1.1.1", "127.0.0.1:8780", "http://127.0.0.1", "[::1"])
def test_a_listen_address_that_is_not_one_is_caught_with_the_file_and_line(repo_config_dir: Path, host: str):
    """Not left for ``gateway run`` to fail on when it binds, without a line."""
    path = repo_config_dir / "gateway.yaml"
    edit(path, "  host: 127.0.0.1", f"  host: '{host}'")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SP4N_AUTHORIZATION": "a", "SP4N_TOKEN": "b", "LAPOR_HENDI_API_KEY": "c"})
    [issue] = [i for i in caught.value.issues if i.key == "web.host"]
    assert issue.line is not None and "not an address to listen on" in issue.message


@pytest.mark.parametrize(
    ("given", "bound"), [("0.0.0.0", "0.0.0.0"), ("::", "::"), ("[::1]", "::1"), ("gw.local", "gw.local")]
)
def test_listen_addresses_and_names_are_taken(given: str, bound: str):
    assert WebSettings(host=given).host == bound
