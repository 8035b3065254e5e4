"""Shared fixtures: the store backends (SQLite always, PostgreSQL when
GATEWAY_TEST_DATABASE_URL is set), the simulators on loopback with a fake clock,
and a configuration pointing at them."""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text

from gateway._config import GatewayConfig, load_config
from gateway._timezones import utcnow
from gateway.simulation import SimClock, SimulatorServer


@pytest.fixture(autouse=True)
def _logging_left_as_found():
    """A command run in-process (typer's CliRunner) configures logging to the runner's captured
    stream, which is closed once the command returns: a later test of the same process would log
    into a closed file and its jobs fail. Each test leaves structlog at its defaults and the root
    logger without the stream handlers it added."""
    handlers = list(logging.getLogger().handlers)
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if handler not in handlers and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)


REPO = Path(__file__).resolve().parent.parent
SEED = 20261127


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("GATEWAY_TEST_DATABASE_URL is not set")
    return reset_postgres(url)


#: The tests' own schema in the PostgreSQL database GATEWAY_TEST_DATABASE_URL names: they empty it
#: before each test and never touch anything else there (not even the public schema).
TEST_SCHEMA = "lapor_gateway_test"


def reset_postgres(url: str) -> str:
    """An empty :data:`TEST_SCHEMA` in the database ``url`` names, and the URL that uses it (as
    its search_path, so that a daemon started with the URL in a subprocess uses it too)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {TEST_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {TEST_SCHEMA}"))
    engine.dispose()
    if "search_path" in url:
        return url
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{TEST_SCHEMA}"


TEST_POLLING = (
    "polling:\n  min_interval_minutes: 0\n  sweep_bound_hours: 0\n  quiet_factor: 0\n  reopen_window_days: 0\n"
)


def write_config(
    folder: Path, store_url: str, base_urls: dict[str, str], *, schedule: str = "", polling: str = TEST_POLLING
) -> Path:
    """The shipped config/ with each adapter pointed at ``base_urls[adapter]`` and the given store."""
    (folder / "adapters").mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO / "config" / "adapters").glob("*.yaml")):
        content = source.read_text()
        adapter = re.search(r"^adapter:\s*(\S+)", content, re.M).group(1)
        if adapter in base_urls:
            content = re.sub(r"^base_url:.*$", f"base_url: {base_urls[adapter]}", content, flags=re.M)
        # No rate limit: the simulators set none, and the shipped one would only make the tests slow.
        content = re.sub(r"^budget:.*?(?=^\S|\Z)", "", content, flags=re.M | re.S)
        content += "budget:\n  requests_per_second: null\n"
        if adapter == "sp4n":  # the tests' clock is the simulators': read every open complaint every pass
            content = re.sub(r"^polling:\n(  .*\n)*", "", content, flags=re.M) + polling
        (folder / "adapters" / source.name).write_text(content)
    path = folder / "gateway.yaml"
    # web.port 0: a daemon of a test serves HTTP on a free port, never on one another test (or process) holds.
    path.write_text(f"store:\n  url: {store_url}\nlog:\n  format: json\nweb:\n  port: 0\n{schedule}")
    return path


class JumpClock:
    """A store's clock: real time plus an offset the test jumps forward. Never behind
    real time, so what the CLI writes with its own (real) clock is due for the engine too."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class World:
    clock: SimClock
    local: object  # the Lapor Hendi simulator
    hub: object  # the SP4N simulator
    local_server: SimulatorServer
    hub_server: SimulatorServer
    environ: dict[str, str]

    def config(self, folder: Path, store_url: str, **kwargs: str) -> GatewayConfig:
        path = write_config(
            folder, store_url, {"lapor_hendi": self.local_server.base_url, "sp4n": self.hub_server.base_url}, **kwargs
        )
        return load_config(path, environ=self.environ)

    def step(self, hours: float = 2.0) -> None:
        """Simulated people act once, after ``hours`` of simulated time."""
        self.clock.advance(hours * 3600)
        self.local.tick()
        self.hub.tick()


@pytest.fixture
def world() -> World:
    from lapor_gateway_adapters.lapor_hendi.simulator import create_simulator as local_sim
    from lapor_gateway_adapters.sp4n.simulator import create_simulator as hub_sim

    clock = SimClock(speed=0)
    local = local_sim(seed=SEED, clock=clock, initial_complaints=12)
    hub = hub_sim(seed=SEED, clock=clock)
    with SimulatorServer(local) as local_server, SimulatorServer(hub) as hub_server:
        yield World(clock, local, hub, local_server, hub_server, {**local.demo_environment(), **hub.demo_environment()})


@pytest.fixture
def repo_config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config/ to break in tests."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


def edit(path: Path, old: str, new: str) -> str:
    """Replace the one occurrence of ``old`` in ``path``; return the new text."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {path.name}"
    text = text.replace(old, new)
    path.write_text(text)
    return text


def set_privacy(path: Path, block: str) -> str:
    """Put ``block`` (a whole ``privacy:`` block) in the instance file ``path`` in place of the
    file's own (the shipped local app has one: its retention); return the new text."""
    kept: list[str] = []
    inside = False
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("privacy:"):
            inside = True
            continue
        if inside and (line.startswith((" ", "#")) or not line.strip()):
            continue  # a line of the old block (its comments too)
        inside = False
        kept.append(line)
    text = "".join(kept)
    text = (text if text.endswith("\n") else text + "\n") + block
    path.write_text(text)
    return text


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    found = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) == 1, f"{needle!r} is on lines {found}"
    return found[0]
