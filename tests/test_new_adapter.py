"""``gateway new-adapter NAME``: the package it writes installs, is found by the gateway through its
entry points, and passes the conformance kit against its simulator, as generated."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gateway.cli


def _new(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(gateway.cli.app, ["new-adapter", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.e2e
@pytest.mark.parametrize("flavour", ["python", "yaml"])
def test_the_generated_adapter_installs_and_passes_its_conformance_tests(tmp_path: Path, flavour: str) -> None:
    target = tmp_path / "warga-kita"
    code, output = _new("warga-kita", "--dir", str(target), *(["--yaml"] if flavour == "yaml" else []))
    assert code == 0, output
    # The Python flavour writes an adapter class; the YAML one describes the app for the declarative adapter.
    assert (target / "lapor_gateway_warga_kita" / "_adapter.py").is_file() == (flavour == "python")
    assert ("adapter: declarative" in (target / "config" / "warga_kita.yaml").read_text()) == (flavour == "yaml")

    # Installed as a user would (no network: this environment's setuptools builds it).
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    subprocess.run([*pip, str(target)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}

    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gateway._registry import load_adapter, load_simulator_factory;"
            f"print(load_adapter('{'warga_kita' if flavour == 'python' else 'declarative'}').__name__,"
            " callable(load_simulator_factory('warga_kita')))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    adapter_class = "WargaKitaApp" if flavour == "python" else "DeclarativeApp"
    assert found.stdout.split() == [adapter_class, "True"], found.stderr[-2000:]

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    summary = tests.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary, summary
    # The kit's checks ran, not only skipped: ordering, since, time zones, echoes, bad records, personal data.
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) >= 10, summary


def test_a_bad_name_an_installed_name_and_a_full_directory_are_refused_clearly(tmp_path: Path) -> None:
    code, output = _new("Warga Kita!", "--dir", str(tmp_path / "x"))
    assert code == 2 and "not a usable adapter name" in output
    # review-fuzz: a name with markup ended in a rich.MarkupError traceback
    code, output = _new("[/]", "--dir", str(tmp_path / "z"))
    assert code == 2 and "'[/]' is not a usable adapter name" in output and "Traceback" not in output
    code, output = _new("lapor_hendi", "--dir", str(tmp_path / "y"))
    assert code == 2 and "installed already" in output
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    code, output = _new("warga-kita", "--dir", str(full))
    assert code == 2 and "not empty" in output
    assert (full / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    code, output = _new("warga-kita", "--dir", str(tmp_path / "[/]"))  # review-fuzz: was a MarkupError
    assert code == 0 and "Wrote the adapter package for 'warga-kita'" in output and "[/]" in output
