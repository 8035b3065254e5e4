"""`gateway run --demo`: the schedule a newcomer gets against `gateway simulate` runs 60 times
faster (a minute becomes a second), and nothing else of the configuration changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway._config import load_config
from gateway._config._demo import DEMO_SPEED, MIN_SECONDS, speed_up
from gateway._daemon import Daemon
from gateway.cli import app

ENV = {"LAPOR_HENDI_API_KEY": "x", "SP4N_AUTHORIZATION": "y", "SP4N_TOKEN": "z"}
LOCAL, HUB = "lapor-hendi-semarang", "sp4n"


def test_speed_up_divides_every_interval_and_keeps_a_floor(repo_config_dir: Path):
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    other = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    before = {
        (name, key): config.schedule_seconds(name, key)
        for name in (LOCAL, HUB)
        for key in ("intake_seconds", "hub_poll_seconds", "deliver_seconds", "reference_seconds")
    }
    polling = config.instances[HUB].spec.polling.model_copy()
    # The shipped files: the hub's own 20 s polling, gateway.yaml's daily reference read.
    assert before[(HUB, "hub_poll_seconds")] == 20 and before[(HUB, "reference_seconds")] == 86400

    speed_up(config, DEMO_SPEED)

    for (name, key), seconds in before.items():
        assert config.schedule_seconds(name, key) == max(MIN_SECONDS, seconds / DEMO_SPEED), (name, key)
    assert config.schedule_seconds(HUB, "reference_seconds") == 1440
    assert config.schedule_seconds(HUB, "hub_poll_seconds") == MIN_SECONDS  # 20 s: not below the floor
    scaled = config.instances[HUB].spec.polling
    assert scaled.min_interval_minutes == polling.min_interval_minutes / DEMO_SPEED  # 10 min: 10 s
    assert scaled.sweep_bound_hours == polling.sweep_bound_hours / DEMO_SPEED
    assert scaled.deadline_share == polling.deadline_share  # deadlines are the citizen's
    assert config.settings.delivery.backoff_max_seconds == 3600 / DEMO_SPEED
    assert config.settings.delivery.lease_seconds == other.settings.delivery.lease_seconds
    # Another configuration loaded in the same process is untouched (no shared default changed).
    assert other.schedule_seconds(HUB, "reference_seconds") == 86400
    assert other.instances[HUB].spec.polling.min_interval_minutes == polling.min_interval_minutes


def test_speed_up_refuses_a_factor_that_is_not_positive(repo_config_dir: Path):
    with pytest.raises(ValueError, match="positive"):
        speed_up(load_config(repo_config_dir / "gateway.yaml", environ=ENV), 0)


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "real-time"])
def test_gateway_run_demo_schedules_the_jobs_faster(repo_config_dir: Path, tmp_path: Path, monkeypatch, demo: bool):
    scheduled: dict[tuple[str, str], float] = {}

    async def record_and_stop(self: Daemon, *args: object, **kwargs: object) -> None:
        scheduled.update({(instance, job): seconds for instance, job, seconds, _ in self.jobs()})

    monkeypatch.setattr(Daemon, "run_until_signalled", record_and_stop)
    args = ["--config", str(repo_config_dir / "gateway.yaml"), "--store", f"sqlite:///{tmp_path / 'g.db'}", "run"]
    result = CliRunner().invoke(app, args + (["--demo"] if demo else []), env=ENV)
    assert result.exit_code == 0, result.output
    config = load_config(repo_config_dir / "gateway.yaml", environ=ENV)
    factor = DEMO_SPEED if demo else 1.0
    for (instance, job), key in {
        (LOCAL, "intake"): "intake_seconds",
        (HUB, "hub_poll"): "hub_poll_seconds",
        (HUB, "deliver"): "deliver_seconds",
        (HUB, "reference"): "reference_seconds",
    }.items():
        seconds = config.schedule_seconds(instance, key)
        assert scheduled[(instance, job)] == (max(MIN_SECONDS, seconds / factor) if demo else seconds), job
    assert (scheduled[(HUB, "reference")] == 1440) is demo
    assert ("demo profile: intervals divided by 60" in result.output) is demo


def test_gateway_run_help_explains_the_demo_profile():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "--demo" in result.output and "gateway simulate" in result.output
