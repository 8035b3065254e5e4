"""The CLI writes who acted into the audit trail: ``--operator NAME``, else ``GATEWAY_OPERATOR``,
else the OS user; ``gateway deliveries show`` shows it with each audit entry."""

from __future__ import annotations

import getpass
import json

import pytest
from dashboard_kit import NOW, dashboard_config, seed
from typer.testing import CliRunner

import gateway.cli
from gateway._store import Store


@pytest.fixture
def setup(store_url, tmp_path):
    store = Store(store_url, clock=lambda: NOW)
    seeded = seed(store)
    config = dashboard_config(tmp_path, store_url)
    yield store, seeded, config.path
    store.close()


def _cli(config_path, *args, env=None):
    result = CliRunner().invoke(gateway.cli.app, ["--config", str(config_path), *args], env=env or {})
    assert result.exit_code == 0, result.output
    return result


def _audit(config_path, outbox_id):
    return json.loads(_cli(config_path, "deliveries", "show", str(outbox_id)).stdout)["audit"]


def test_the_operator_option_wins_over_the_environment(setup):
    store, seeded, config_path = setup
    _cli(config_path, "--operator", "Sari", "deliveries", "retry", str(seeded.parked), env={"GATEWAY_OPERATOR": "Env"})
    (entry,) = _audit(config_path, seeded.parked)
    assert (entry["actor"], entry["action"]) == ("operator:Sari", "delivery_retried")


def test_the_environment_names_the_operator_without_the_option(setup):
    store, seeded, config_path = setup
    _cli(config_path, "deliveries", "link", str(seeded.needs_confirmation), "4000123", env={"GATEWAY_OPERATOR": "Budi"})
    (entry,) = _audit(config_path, seeded.needs_confirmation)
    assert (entry["actor"], entry["action"]) == ("operator:Budi", "delivery_linked")


def test_else_the_os_user(setup, monkeypatch):
    store, seeded, config_path = setup
    monkeypatch.delenv("GATEWAY_OPERATOR", raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "diskominfo")
    _cli(config_path, "deliveries", "drop", str(seeded.parked), "--reason", "sent by hand")
    (entry,) = _audit(config_path, seeded.parked)
    assert (entry["actor"], entry["action"]) == ("operator:diskominfo", "delivery_dropped")
    assert entry["detail"].endswith("sent by hand")
