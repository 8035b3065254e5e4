"""What ships in deploy/: the systemd unit verified and scored by systemd itself, the Grafana
dashboard's queries against the metric names the daemon exposes, the environment file against the
secrets the shipped configs name."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway._web._metric_names import JOB_DURATION, METRIC_LABELS, METRIC_NAMES

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "lapor-gateway.service"
INSTALLED_GATEWAY = "/opt/lapor-gateway/venv/bin/gateway"

# The names and labels the daemon serves (tests/test_metrics.py checks a scrape against them).
LABELS = {name: {*labels, "le"} if name == JOB_DURATION else set(labels) for name, labels in METRIC_LABELS.items()}
HISTOGRAMS = ("lapor_gateway_job_duration_seconds",)  # exposed as _bucket, _sum and _count series


# -- the systemd unit ---------------------------------------------------------------------------------


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit as shipped, its commands pointed at this test's `gateway` (systemd-analyze refuses a
    unit whose commands are not there), under the same file name (the name is the unit's)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    gateway = Path(sys.executable).parent / "gateway"
    assert gateway.exists(), gateway
    text = UNIT.read_text()
    assert text.count(INSTALLED_GATEWAY) == 3  # config check, db upgrade, run
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_GATEWAY, str(gateway)))
    return copy


def test_systemd_verifies_the_unit_without_a_word(unit_here: Path):
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit_here)], capture_output=True, text=True, timeout=60, check=False
    )
    # An unknown or misspelt key is only a warning (exit 0): any line about the unit fails the test.
    assert done.returncode == 0, done.stderr
    assert UNIT.name not in done.stdout + done.stderr, done.stderr


def test_systemd_rates_the_units_exposure_ok(unit_here: Path):
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit_here)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline is not available here: {done.stderr.strip()[:200]}")
    score, verdict = float(found.group(1)), found.group(2)
    print(f"systemd-analyze security: {score} {verdict}")
    assert score < 2.0 and verdict == "OK", done.stdout


def test_the_unit_stops_the_daemon_gracefully_and_checks_before_starting():
    unit = _unit_settings(UNIT.read_text())
    assert int(unit["TimeoutStopSec"][0]) > 30  # the daemon lets running jobs finish for up to 30 s
    assert unit["ExecStartPre"] == [f"{INSTALLED_GATEWAY} config check", f"{INSTALLED_GATEWAY} db upgrade"]
    assert unit["ExecStart"] == [f"{INSTALLED_GATEWAY} run"]
    assert unit["User"] == ["lapor-gateway"] and unit["CapabilityBoundingSet"] == [""]
    assert unit["ReadWritePaths"] == ["/var/lib/lapor-gateway"] and unit["ProtectSystem"] == ["strict"]
    assert unit["EnvironmentFile"] == ["/etc/lapor-gateway/lapor-gateway.env"]


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


# -- the environment file -----------------------------------------------------------------------------


def test_the_environment_file_names_every_secret_the_shipped_configs_reference_and_holds_none():
    referenced = {
        name
        for path in (REPO / "config").rglob("*.yaml")
        for name in re.findall(r"\$\{([A-Z0-9_]+)\}", path.read_text())
    }
    assert referenced >= {"SP4N_AUTHORIZATION", "SP4N_TOKEN", "LAPOR_HENDI_API_KEY"}
    assigned = {}
    for line in (DEPLOY / "lapor-gateway.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            assigned[name] = value
    assert referenced <= set(assigned), referenced - set(assigned)
    assert all(value == "" for value in assigned.values()), assigned  # names only, never a value


def test_the_environment_file_names_the_gateways_own_optional_secrets_commented_out():
    """The variables the gateway reads itself (not through an instance file) are there too, as
    commented lines: the service reads only this file, so an operator who needs one must find it."""
    from gateway._config._schema import DashboardSettings

    text = (DEPLOY / "lapor-gateway.env.example").read_text()
    commented = set(re.findall(r"^#([A-Z][A-Z0-9_]*)=", text, re.M))
    assert {DashboardSettings().token_env, "GATEWAY_STORE_URL", "GATEWAY_PERSONAL_DATA_KEYS"} <= commented, commented
    assert "operator_actions" in text.split("#GATEWAY_DASHBOARD_TOKEN=")[0].rsplit("# ---", 1)[1]
    # The guides send the operator to the file, not to a shell's export.
    assert "GATEWAY_DASHBOARD_TOKEN" in (REPO / "docs" / "deploy.md").read_text()
    operations = (REPO / "docs" / "operations.md").read_text()
    assert "GATEWAY_DASHBOARD_TOKEN=the-printed-token" in operations
    assert 'export GATEWAY_DASHBOARD_TOKEN="$(' not in operations


# -- the Grafana dashboard ----------------------------------------------------------------------------


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana-dashboard.json").read_text())


def test_the_grafana_dashboard_is_a_dashboard_model_on_a_prometheus_variable():
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None  # importable anywhere
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]
        assert panel.get("description"), panel["title"]  # an operator hovers it to learn what it shows


def test_every_query_uses_only_the_daemons_metric_names_and_labels():
    dashboard = _dashboard()
    exprs = [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used: set[str] = set()
    for expr in exprs:
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        metrics = re.findall(r"\blapor_gateway_\w+", expr)
        assert metrics, expr
        allowed: set[str] = set()
        for metric in metrics:
            base = _base_name(metric)
            assert base in METRIC_NAMES, f"{metric} is not a metric the daemon exposes: {expr}"
            used.add(base)
            allowed |= LABELS[base]
        for label in _labels(expr):
            assert label in allowed, f"label {label!r} is not one of {sorted(allowed)}: {expr}"
    # Every figure issue 12 asks the dashboard for has a panel.
    assert used == set(METRIC_NAMES)
    assert any(expr.startswith("histogram_quantile(") for expr in exprs)


def _base_name(metric: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if metric.endswith(suffix) and metric.removesuffix(suffix) in HISTOGRAMS:
            return metric.removesuffix(suffix)
    return metric


def _labels(expr: str) -> set[str]:
    """The label names an expression uses: in selectors, `by (...)`, `without (...)`, and the
    label_values() of a variable."""
    names: set[str] = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        names |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        names |= {name.strip() for name in group.split(",") if name.strip()}
    names |= set(re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)", expr))
    return names


def test_the_label_check_sees_a_label_the_daemon_does_not_expose():
    """The check above would pass on an expression it cannot read: here it reads a bad one."""
    assert _labels('sum by (agency, tier) (lapor_gateway_complaints_overdue{adapter=~"$adapter"})') == {
        "agency",
        "tier",
        "adapter",
    }
    assert _base_name("lapor_gateway_job_duration_seconds_bucket") == "lapor_gateway_job_duration_seconds"
    assert _base_name("lapor_gateway_outbox_deliveries_count") == "lapor_gateway_outbox_deliveries_count"


def test_the_deploy_guide_names_only_metrics_the_daemon_exposes():
    """docs/deploy.md's metric table, scrape and alert examples drift with the names otherwise."""
    guide = (REPO / "docs" / "deploy.md").read_text()
    named = {_base_name(name) for name in re.findall(r"\blapor_gateway_\w+", guide)}
    assert named == set(METRIC_NAMES), named ^ set(METRIC_NAMES)
