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


# -- the name is cleaned by the dashboard's rule (found by a review of issue 13) ---------------------


def _invoke(config_path, *args, env):
    return CliRunner().invoke(gateway.cli.app, ["--config", str(config_path), *args], env=env)


def test_a_blank_name_falls_back_to_the_next_source(setup, monkeypatch):
    store, seeded, config_path = setup
    monkeypatch.setattr(getpass, "getuser", lambda: "diskominfo")
    _cli(config_path, "--operator", "   ", "deliveries", "retry", str(seeded.parked), env={"GATEWAY_OPERATOR": "Budi"})
    _cli(config_path, "deliveries", "drop", str(seeded.parked), "--reason", "x", env={"GATEWAY_OPERATOR": " \t "})
    assert [e["actor"] for e in _audit(config_path, seeded.parked)] == ["operator:Budi", "operator:diskominfo"]


def test_spaces_inside_a_name_are_made_one(setup):
    store, seeded, config_path = setup
    _cli(config_path, "--operator", "  Sari \t Dewi ", "deliveries", "retry", str(seeded.parked))
    assert [e["actor"] for e in _audit(config_path, seeded.parked)] == ["operator:Sari Dewi"]


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("--operator", "Siti\nactor=operator:Budi"),
        ("--operator", "Siti\r\nBudi"),
        ("--operator", "\x1b[31mSiti\x1b[0m"),
        ("GATEWAY_OPERATOR", "Siti\u2028Budi"),
        ("GATEWAY_OPERATOR", "Siti\x1b[2K"),
        ("GATEWAY_OPERATOR", "S" * 65),
    ],
)
def test_a_name_that_breaks_the_rule_stops_the_command_naming_its_source(setup, where, name):
    store, seeded, config_path = setup
    args = ["--operator", name] if where == "--operator" else []
    result = _invoke(
        config_path, *args, "deliveries", "retry", str(seeded.parked), env={"GATEWAY_OPERATOR": None if args else name}
    )
    assert result.exit_code == 2, result.output
    assert f"{where}: not a usable operator name" in result.stderr
    assert "Siti" not in result.output and "Traceback" not in result.output
    assert _audit(config_path, seeded.parked) == []  # nothing was done


def test_a_privacy_request_never_records_a_forged_actor(setup):
    store, seeded, config_path = setup
    bad = _invoke(
        config_path,
        "--operator",
        "Siti\nactor=operator:Budi",
        "privacy",
        "erase",
        "--app",
        "lapor-hendi-semarang",
        "--ref",
        "1",
        env={},
    )
    assert bad.exit_code == 2 and "--operator: not a usable operator name" in bad.stderr, bad.output
    listed = json.loads(_invoke(config_path, "privacy", "requests", "--json", env={}).stdout or "[]")
    assert all("\n" not in r["operator"] and "Budi" not in r["operator"] for r in listed)


def test_the_cli_and_the_dashboard_share_one_rule():
    from gateway._operator_name import clean_operator_name
    from gateway._web import _dashboard

    assert _dashboard.clean_operator_name is clean_operator_name
    assert clean_operator_name("  Sari  ") == "Sari"
    for bad in ("", "   ", "Siti\nBudi", "\x1b[31mSiti", "S" * 65):
        assert clean_operator_name(bad) is None
