"""The public face of `gateway` stays fixed, and the engine never imports a concrete adapter."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import gateway
import gateway.simulation
import gateway.testing

GATEWAY_ALL = [
    "Adapter",
    "AdapterNotFoundError",
    "AmbiguousOutcomeError",
    "ApiKeyHeader",
    "AttachmentContent",
    "AttachmentRef",
    "BasicAuth",
    "BreakerPolicy",
    "BudgetPolicy",
    "Capability",
    "CircuitBreaker",
    "Classification",
    "Complaint",
    "ConfigError",
    "ConfigIssue",
    "FatalError",
    "FollowUp",
    "GatewayError",
    "Hub",
    "HubComplaintDraft",
    "HubComplaintState",
    "InstanceContext",
    "LocalApp",
    "Location",
    "MappingError",
    "NoSettings",
    "OAuth2ClientCredentials",
    "OutcomeUnknownError",
    "PeerClient",
    "PeerError",
    "PeerPosition",
    "PeerUnavailableError",
    "PermanentPeerError",
    "RawStatus",
    "RecordError",
    "ReferenceItem",
    "RefusedError",
    "Reporter",
    "RequestBudget",
    "RetriableError",
    "RetryPolicy",
    "Status",
    "StatusChange",
    "StoreError",
    "StoreRefusedError",
    "StoreUnavailableError",
    "TimePage",
    "TokenPage",
    "TooLargeError",
    "TransientPeerError",
    "WIB",
    "Write",
    "decode_json",
    "format_iso_time",
    "format_peer_time",
    "parse_iso_time",
    "parse_peer_time",
    "to_utc",
    "walk_by_link",
    "walk_by_offset",
    "walk_by_time",
    "walk_by_token",
    "walk_children",
    "walk_list",
]
SIMULATION_ALL = [
    "FAULT_KINDS",
    "FaultSettings",
    "Faults",
    "SimClock",
    "Simulator",
    "SimulatorServer",
    "parse_fault_assignments",
]
TESTING_ALL = [
    "HubConformance",
    "HubDriver",
    "InterruptingTransport",
    "KIT_REPORTER",
    "LocalAppConformance",
    "PeerDriver",
    "STREAMS",
    "ServedHub",
    "ServedPeer",
    "Stream",
    "declarative_app",
    "kit_complaint",
]
GATEWAY_DIR = Path(gateway.__file__).resolve().parent


def test_gateway_all_is_fixed():
    assert sorted(GATEWAY_ALL) == GATEWAY_ALL
    # ruff keeps __all__ itself in isort order (RUF022); what is fixed is the set of names.
    assert sorted(gateway.__all__) == GATEWAY_ALL
    assert len(set(gateway.__all__)) == len(gateway.__all__)


def test_every_public_name_of_gateway_resolves():
    for name in GATEWAY_ALL:
        assert getattr(gateway, name, None) is not None, name
    namespace: dict = {}
    exec("from gateway import *", namespace)
    assert set(GATEWAY_ALL) <= set(namespace)


def test_simulation_all_is_fixed_and_resolves():
    assert sorted(SIMULATION_ALL) == SIMULATION_ALL
    assert list(gateway.simulation.__all__) == SIMULATION_ALL
    for name in SIMULATION_ALL:
        assert getattr(gateway.simulation, name, None) is not None, name
    for name in ("SimClock", "Simulator", "SimulatorServer"):
        assert isinstance(getattr(gateway.simulation, name), type), name


def test_testing_all_is_fixed_and_resolves():
    assert sorted(TESTING_ALL) == TESTING_ALL
    assert sorted(gateway.testing.__all__) == TESTING_ALL
    for name in TESTING_ALL:
        assert getattr(gateway.testing, name, None) is not None, name


def test_the_conformance_kit_imports_neither_pytest_nor_aiohttp():
    """An adapter package's tests may use the kit under any runner, without the simulators' extra."""
    for path in sorted((GATEWAY_DIR / "testing").glob("*.py")):
        imported = _imported_modules(path.read_text(encoding="utf-8"))
        assert not {m.split(".")[0] for m in imported} & {"pytest", "_pytest", "aiohttp"}, path.name
        assert "gateway.simulation" not in imported, path.name


def test_public_errors_share_one_base():
    for name in (
        "AdapterNotFoundError",
        "AmbiguousOutcomeError",
        "ConfigError",
        "FatalError",
        "MappingError",
        "OutcomeUnknownError",
        "PeerError",
        "PeerUnavailableError",
        "PermanentPeerError",
        "RecordError",
        "RefusedError",
        "RetriableError",
        "StoreError",
        "StoreRefusedError",
        "StoreUnavailableError",
        "TooLargeError",
        "TransientPeerError",
    ):
        assert issubclass(getattr(gateway, name), gateway.GatewayError), name


def _imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_gateway_never_imports_a_concrete_adapter():
    files = sorted(GATEWAY_DIR.rglob("*.py"))
    assert len(files) > 10  # the scan really sees the package
    offenders = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        for module in _imported_modules(source):
            if module == "lapor_gateway_adapters" or module.startswith("lapor_gateway_adapters."):
                offenders.append(f"{path.relative_to(GATEWAY_DIR)}: imports {module}")
        for line_number, line in enumerate(source.splitlines(), start=1):
            stripped = line.strip()
            if (
                stripped.startswith(("import lapor_gateway_adapters", "from lapor_gateway_adapters"))
                or 'import_module("lapor_gateway_adapters' in stripped
                or "import_module('lapor_gateway_adapters" in stripped
            ):
                offenders.append(f"{path.relative_to(GATEWAY_DIR)}:{line_number}: {stripped}")
    assert offenders == []


def test_the_scan_would_catch_an_adapter_import():
    assert "lapor_gateway_adapters.sp4n" in _imported_modules("import lapor_gateway_adapters.sp4n")
    assert "lapor_gateway_adapters.sp4n._adapter" in _imported_modules(
        "def f():\n    from lapor_gateway_adapters.sp4n._adapter import Sp4nHub\n"
    )


def test_every_gateway_module_imports():
    for path in sorted(GATEWAY_DIR.rglob("*.py")):
        parts = path.relative_to(GATEWAY_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        importlib.import_module(".".join(parts))
