"""The guards of the daemon's HTTP server against other sites' pages: a request must name this
server in ``Host`` (DNS rebinding), and behind a TLS reverse proxy ``dashboard.public_origin`` is
the page's own origin besides the direct one (``X-Forwarded-*`` is not trusted). Real HTTP over
loopback, a real store on both backends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from conftest import edit
from dashboard_kit import NOW, TOKEN, dashboard_config, served
from pydantic import ValidationError

from gateway._config import load_config
from gateway._config._schema import DashboardSettings, WebSettings
from gateway._engine import Engine
from gateway._errors import ConfigError
from gateway._store import Store
from gateway._web._context import WebContext
from gateway._web._dashboard import DashboardContext
from gateway._web._hosts import host_allowed, host_names
from gateway._web._metrics import Metrics
from gateway._web._server import WebServer, build_app
from gateway._web._texts import EN

PUBLIC = "https://gw.example.go.id"


def test_a_host_is_this_server_by_address_or_by_a_configured_name(tmp_path, store_url):
    config = dashboard_config(tmp_path, store_url)
    settings = config.settings.model_copy(
        update={
            "web": WebSettings(host="0.0.0.0", allowed_hosts=["Prometheus.internal"]),
            "dashboard": DashboardSettings(public_origin=PUBLIC),
        }
    )
    names = host_names(settings)
    for host in (
        "127.0.0.1:8780",
        "[::1]:8780",
        "localhost:8780",
        "LOCALHOST",
        "10.20.0.5:8780",  # Prometheus scraping by IP:port
        "gw.example.go.id",
        "gw.example.go.id:443",
        "prometheus.internal:8780",
    ):
        assert host_allowed(host, names), host
    for host in ("evil.example:8780", "evil.example", "gw.example.go.id.evil.example", "localhost.evil.example", ""):
        assert not host_allowed(host, names), host


def test_host_names_are_validated():
    with pytest.raises(ValidationError, match="is not a host name"):
        WebSettings(allowed_hosts=["prom.internal:9090"])
    with pytest.raises(ValidationError, match="is not a host name"):
        WebSettings(allowed_hosts=["http://prom.internal"])
    assert WebSettings(allowed_hosts=["::1", "Prom.Internal"]).allowed_hosts == ["[::1]", "prom.internal"]


@pytest.mark.anyio
async def test_the_daemon_refuses_a_request_naming_another_host(world, tmp_path: Path, store_url: str):
    config = world.config(tmp_path, store_url)
    settings = config.settings.model_copy(update={"web": WebSettings(allowed_hosts=["prometheus.internal"])})
    config = dataclasses.replace(config, settings=settings)
    store = Store(store_url)
    try:
        async with Engine(config, store) as engine:
            server = WebServer(build_app(WebContext(engine, config, Metrics(), lambda: True)), "127.0.0.1", 0)
            await server.start()
            port = server.address[1]
            try:
                async with httpx.AsyncClient(base_url=server.url) as client:
                    for path in ("/metrics", "/healthz", "/dashboard/api/summary", "/dashboard"):
                        # A page whose name was rebound to 127.0.0.1 sends its own name: refused.
                        rebound = await client.get(path, headers={"Host": f"evil.example:{port}"})
                        assert rebound.status_code == 421, path
                        assert "web.allowed_hosts" in rebound.text and "gateway_" not in rebound.text
                    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"prometheus.internal:{port}"):
                        scraped = await client.get("/metrics", headers={"Host": host})
                        assert scraped.status_code == 200 and "gateway_" in scraped.text, host
                    assert (await client.get("/dashboard/api/summary")).status_code == 200
            finally:
                await server.stop()
    finally:
        store.close()


def test_public_origin_is_validated_where_it_is_written(tmp_path, store_url):
    for good, kept in (
        (PUBLIC, PUBLIC),
        ("HTTPS://GW.example.go.id:443/", PUBLIC),
        ("http://gw:8080", "http://gw:8080"),
    ):
        assert DashboardSettings(public_origin=good).public_origin == kept
    for bad in ("gw.example.go.id", "https://gw.example.go.id/dashboard", "ftp://gw", "https://u@gw", "https://gw:0x"):
        with pytest.raises(ValidationError, match="is not an origin"):
            DashboardSettings(public_origin=bad)
    config = dashboard_config(tmp_path, store_url)
    with config.path.open("a") as yaml:
        yaml.write("dashboard:\n  public_origin: gw.example.go.id/x\n")
    with pytest.raises(ConfigError) as raised:
        load_config(config.path, check_secrets=False)
    assert "dashboard.public_origin" in str(raised.value) and "scheme://host" in str(raised.value)


@pytest.fixture
def store(store_url: str):
    s = Store(store_url, clock=lambda: NOW)
    yield s
    s.close()


def _proxied_sign_in(store: Store, config) -> int:
    """A sign-in as a browser sends it through a TLS proxy: its origin is the public one, the
    proxy passes the Host on, and this server sees plain HTTP."""
    context = DashboardContext.from_config(config, store, environ={"GATEWAY_DASHBOARD_TOKEN": TOKEN}, clock=lambda: NOW)
    headers = {"Origin": PUBLIC, "Host": "gw.example.go.id", "X-Forwarded-Proto": "https"}
    with served(context) as base, httpx.Client(base_url=base) as client:
        form = client.get("/dashboard/signin?lang=en", headers={"Host": "gw.example.go.id"})
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        answer = client.post(
            "/dashboard/signin",
            data={"csrf": csrf, "operator": "Sari", "token": TOKEN, "lang": "en"},
            headers=headers,
        )
        if answer.status_code == 403:
            assert EN["forbidden_origin"] in answer.text
        return answer.status_code


def test_behind_a_tls_proxy_the_public_origin_may_act(store, tmp_path):
    config = dashboard_config(tmp_path, store.url)
    with config.path.open("a") as yaml:
        yaml.write("dashboard:\n  operator_actions: true\n")
    # Without public_origin the forwarded headers alone do not make the page's origin https.
    assert _proxied_sign_in(store, load_config(config.path, check_secrets=False)) == 403
    edit(config.path, "  operator_actions: true\n", f"  operator_actions: true\n  public_origin: {PUBLIC}/\n")
    assert _proxied_sign_in(store, load_config(config.path, check_secrets=False)) == 303
