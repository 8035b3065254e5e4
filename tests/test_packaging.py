"""What `pip install` puts into an environment: the adapters under a name of their own
(``lapor_gateway_adapters``; ``adapters`` belongs to a popular PyPI package), the
dependencies that the code imports (aiohttp among them: the daemon serves HTTP), and
one version, written once in ``gateway/__init__.py``."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import gateway

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
OWN = {"gateway": REPO / "gateway", "lapor_gateway_adapters": REPO / "adapters"}  # import name -> folder


def _requirement_name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path: Path, *, at_import_time: bool = False) -> set[str]:
    """The absolute module names a file imports: wherever the import stands, or only those that run
    when the module is imported (not inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = list(ast.walk(tree))
    if at_import_time:
        inside = {id(n) for f in nodes if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        nodes = [n for n in nodes if id(n) not in inside]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return done


# --- the declared dependencies ---------------------------------------------------------------------------


def test_every_third_party_import_is_a_declared_dependency():
    runtime = {_normalized(_requirement_name(r)) for r in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    optional = {
        _normalized(_requirement_name(r))
        for name, reqs in extras.items()
        if name != "test"
        for r in reqs
        if not r.startswith("lapor-gateway")
    }
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for folder in OWN.values():
        for path in sorted(folder.rglob("*.py")):
            for module in _imports(path):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in OWN:
                    continue
                dists = {_normalized(d) for d in providers.get(top, [top])}
                if not dists & (runtime | optional):
                    undeclared.append(f"{path.relative_to(REPO)} imports {module} (from {', '.join(sorted(dists))})")
    assert undeclared == [], "declare these in [project] dependencies of pyproject.toml"
    assert {"aiohttp", "prometheus-client"} <= runtime  # the daemon serves HTTP: /metrics, /healthz, the dashboard


def test_zero_x_dependencies_have_an_upper_bound():
    unbounded = [r for r in PYPROJECT["project"]["dependencies"] if re.search(r">=\s*0\.", r) and "<" not in r]
    assert unbounded == []


def test_nothing_imports_the_adapters_folder_under_its_folder_name():
    """`import adapters` would load the other package of that name, or a second copy of our modules."""
    offenders = []
    for folder in ("gateway", "adapters", "tests", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            offenders += [
                f"{path.relative_to(REPO)}: {m}" for m in _imports(path) if m == "adapters" or m.startswith("adapters.")
            ]
    assert offenders == []
    entry_points = PYPROJECT["project"]["entry-points"]
    targets = [t for group in entry_points.values() for t in group.values()]
    # The declarative adapter is part of the gateway itself (a local app described in YAML).
    assert targets and all(t.startswith(("lapor_gateway_adapters.", "gateway._declarative:")) for t in targets), targets


def test_this_process_holds_one_copy_of_each_adapter_module():
    import lapor_gateway_adapters.lapor_hendi.simulator
    import lapor_gateway_adapters.sp4n.simulator  # noqa: F401

    folder = str(REPO / "adapters")
    twins = [
        name
        for name, module in list(sys.modules.items())
        if str(getattr(module, "__file__", "") or "").startswith(folder)
        and not name.startswith("lapor_gateway_adapters")
    ]
    assert twins == []
    assert Path(sys.modules["lapor_gateway_adapters"].__file__) == REPO / "adapters" / "__init__.py"


# --- the version --------------------------------------------------------------------------------------------


def test_the_version_is_written_once_and_the_cli_prints_it():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gateway.__version__"}
    assert importlib.metadata.version("lapor-gateway") == gateway.__version__, (
        "the installed metadata is older than gateway/__init__.py: run make install"
    )
    done = _run([sys.executable, "-m", "gateway.cli", "--version"])
    assert done.stdout.strip() == f"lapor-gateway {gateway.__version__}"


# --- aiohttp is the simulators' extra -----------------------------------------------------------------------


def test_loading_the_adapters_imports_no_simulator():
    script = textwrap.dedent("""
        import sys
        import gateway, gateway.cli, gateway._daemon, gateway._engine
        from gateway._registry import installed_adapters
        adapters = installed_adapters()
        assert {a.name for a in adapters} >= {"sp4n", "lapor_hendi"}, adapters
        assert all(a.load_error is None for a in adapters), adapters
        print(sorted(m for m in sys.modules if m.startswith(("gateway.simulation", "lapor_gateway_adapters"))))
    """)
    done = _run([sys.executable, "-c", script], cwd=REPO)
    assert "simulat" not in done.stdout, done.stdout


# --- the wheel, installed beside a package that owns the import name `adapters` -----------------------------

OTHER_ADAPTERS_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "other-adapters"
version = "1.0"

[tool.setuptools]
packages = ["adapters"]
"""

CHECK_INSTALLED = """\
import importlib.metadata, json, sys
import adapters
import gateway, gateway.cli, gateway.simulation
import lapor_gateway_adapters, lapor_gateway_adapters.sp4n, lapor_gateway_adapters.lapor_hendi
from pathlib import Path
from gateway._registry import installed_adapters, load_simulator_factory, simulator_names
installed = installed_adapters()
factories = {name: load_simulator_factory(name).__module__ for name in simulator_names()}
print(json.dumps({
    "adapters_marker": getattr(adapters, "MARKER", None),
    "files": {m.__name__: m.__file__ for m in (adapters, gateway, lapor_gateway_adapters)},
    "adapters": {a.name: [a.target, a.load_error] for a in installed},
    "simulators": factories,
    "py_typed": [(Path(m.__file__).parent / "py.typed").is_file() for m in (gateway, lapor_gateway_adapters)],
    "version": [importlib.metadata.version("lapor-gateway"), gateway.__version__],
    "twins": sorted(m for m in sys.modules if m.startswith("adapters.")),
}))
"""


def test_the_wheel_installs_beside_a_package_that_owns_the_name_adapters(tmp_path):
    # Build from a copy: building in the repo would leave build/ and *.egg-info behind in the work tree.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("gateway", "adapters"):
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    other = tmp_path / "other"
    (other / "adapters").mkdir(parents=True)
    (other / "pyproject.toml").write_text(OTHER_ADAPTERS_PYPROJECT)
    (other / "adapters" / "__init__.py").write_text('MARKER = "the other package named adapters"\n')

    # No network: the build backend is the setuptools of this environment (the test extra installs it).
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            str(source),
            str(other),
        ],
        timeout=300,
    )
    ours = next(wheels.glob("lapor_gateway-*.whl"))
    _check_wheel_contents(ours)

    # A clean environment with both wheels; the dependencies come from this environment's site-packages,
    # after the clean one's own, so what the wheels install is what gets imported.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours_first = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "dependencies-from-the-test-environment.pth").write_text("\n".join(sorted(ours_first)) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(next(wheels.glob("other_adapters-*.whl"))),
            str(ours),
        ],
        timeout=300,
    )

    done = _run([str(python), "-I", "-c", CHECK_INSTALLED], cwd=tmp_path, timeout=120)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["adapters_marker"] == "the other package named adapters"
    for name, file in found["files"].items():
        assert Path(file).is_relative_to(site), f"{name} imported from {file}, not from the clean environment"
    assert found["adapters"] == {
        "declarative": ["gateway._declarative:DeclarativeApp", None],
        "lapor_hendi": ["lapor_gateway_adapters.lapor_hendi:LaporHendiApp", None],
        "sp4n": ["lapor_gateway_adapters.sp4n:Sp4nHub", None],
    }
    assert found["simulators"] == {
        "lapor_hendi": "lapor_gateway_adapters.lapor_hendi.simulator",
        "open311": "lapor_gateway_adapters.open311.simulator",
        "sp4n": "lapor_gateway_adapters.sp4n.simulator",
        "suara_arek": "lapor_gateway_adapters.suara_arek.simulator",
    }
    assert found["py_typed"] == [True, True]
    assert found["version"] == [gateway.__version__, gateway.__version__]
    assert found["twins"] == []


def _check_wheel_contents(wheel: Path) -> None:
    """Every module of the two folders is in the wheel under its import name (the package list in
    pyproject.toml is written out by hand), and aiohttp is required by the daemon itself."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    expected = {
        f"{package}/{path.relative_to(folder).as_posix()}"
        for package, folder in OWN.items()
        for path in folder.rglob("*.py")
    }
    assert expected - names == set(), "add the missing packages to [tool.setuptools] packages"
    assert {"gateway/py.typed", "lapor_gateway_adapters/py.typed"} <= names
    assert not any(n.startswith("adapters/") for n in names)
    aiohttp = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: aiohttp")]
    assert aiohttp and not any("extra ==" in line for line in aiohttp), aiohttp
    # The dashboard's templates and static files travel with the code.
    assert {"gateway/_web/templates/dashboard.html", "gateway/_web/static/dashboard.js"} <= names
    assert f"Version: {gateway.__version__}" in metadata.splitlines()
