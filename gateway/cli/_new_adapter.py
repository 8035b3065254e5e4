"""``gateway new-adapter NAME``: a new local app's adapter as a package of its own, with a simulator,
an instance config and the conformance kit's tests, which installs and passes as generated."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gateway._registry import installed_adapters
from gateway.cli import _scaffold_local_app, _scaffold_yaml

NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
console = Console()


def _names(name: str) -> dict[str, str]:
    slug = name.replace("-", "_")
    words = slug.split("_")
    return {
        "slug": slug,
        "package": f"lapor_gateway_{slug}",
        "dist": f"lapor-gateway-{slug.replace('_', '-')}",
        "cls": "".join(w.capitalize() for w in words) + "App",
        "env": slug.upper(),
        "title": " ".join(w.capitalize() for w in words),
    }


def scaffold(name: str, target: Path, *, yaml: bool = False) -> list[Path]:
    """Write the package for ``name`` under ``target`` (``yaml``: the app described in YAML for
    the declarative adapter, not a Python adapter); returns the files written."""
    names = _names(name)
    package = target / names["package"]
    templates = _scaffold_yaml if yaml else _scaffold_local_app
    files = {
        target / "pyproject.toml": templates.PYPROJECT,
        target / "README.md": templates.README,
        package / "__init__.py": templates.INIT,
        package / "simulator.py": templates.SIMULATOR,
        target / "config" / f"{names['slug']}.yaml": templates.CONFIG,
        target / "tests" / "test_conformance.py": templates.TESTS,
    }
    if not yaml:
        files[package / "_adapter.py"] = _scaffold_local_app.ADAPTER
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(names))
    return list(files)


def _fail(message: str, code: int = 2) -> None:
    """Stop with ``message``: a bad argument (exit 2, as the other commands), else exit 1. The
    message quotes what was typed: printed as text, never read as markup ('[/]' in a name or a
    path ended in a MarkupError traceback)."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def new_adapter_command(
    name: Annotated[
        str, typer.Argument(help="the local app's name: lower case, words joined by - or _ (e.g. warga-kita)")
    ],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="where to write the package [./NAME]", show_default=False)
    ] = None,
    yaml: Annotated[
        bool,
        typer.Option("--yaml", help="describe the app in YAML for the declarative adapter instead of Python"),
    ] = False,
) -> None:
    """Start the adapter of a new local app: a package with the adapter (Python, or with --yaml an
    instance file for the declarative adapter), a simulator of the app, an instance config and the
    conformance kit's tests. It installs (pip install -e DIR) and passes its tests (pytest in DIR)
    as generated; then make it speak your app's API."""
    if not NAME.match(name) or len(name) > 40:
        _fail(
            f"{name!r} is not a usable adapter name: lower-case letters and digits, words joined by - or _, "
            "starting with a letter, at most 40 characters (e.g. warga-kita)"
        )
    slug = _names(name)["slug"]
    taken = {a.name for a in installed_adapters()}
    if slug in taken or slug == "declarative":
        _fail(f"an adapter named {slug!r} is installed already (gateway adapters lists them); choose another name")
    target = directory or Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        _fail(f"{target} exists and is not empty; choose another --dir")
    try:
        written = scaffold(name, target, yaml=yaml)
    except OSError as exc:
        _fail(f"cannot write under {target}: {exc.strerror or exc}", code=1)
    console.print(f"Wrote the adapter package for {name!r} in {target}:", markup=False)
    for path in written:
        console.print(f"  {path.relative_to(target)}", markup=False)
    console.print(
        f"\nNext:\n  cd {target}\n  pip install -e .\n  pytest            # the conformance kit against the simulator\n"
        f"  gateway simulate {slug}\n"
        "Then make the adapter and the simulator speak your app's API (docs/adapters.md).",
        markup=False,
    )
