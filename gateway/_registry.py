"""Adapters (and their simulators) are found through entry points, so that a
third-party package adds one by declaring it in its own ``pyproject.toml``::

    [project.entry-points."lapor_gateway.adapters"]
    sambat_online = "sambat_gateway:SambatOnlineApp"

``gateway`` never imports a concrete adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gateway._adapter import Adapter
from gateway._errors import AdapterNotFoundError

ADAPTER_GROUP = "lapor_gateway.adapters"
SIMULATOR_GROUP = "lapor_gateway.simulators"


@dataclass(frozen=True)
class InstalledAdapter:
    name: str
    target: str  # module:attribute
    distribution: str | None
    role: str | None
    description: str
    load_error: str | None = None


def _group(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def load_adapter(name: str) -> type[Adapter]:
    found = _group(ADAPTER_GROUP)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise AdapterNotFoundError(f"no adapter named {name!r} is installed (installed: {known})")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise AdapterNotFoundError(f"entry point {name!r} ({found[name].value}) is not a gateway.Adapter subclass")
    return cls


def load_simulator_factory(name: str) -> Any:
    found = _group(SIMULATOR_GROUP)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise AdapterNotFoundError(f"no simulator named {name!r} is installed (installed: {known})")
    return found[name].load()


def simulator_names() -> list[str]:
    return sorted(_group(SIMULATOR_GROUP))


def installed_adapters() -> list[InstalledAdapter]:
    result = []
    for name, ep in sorted(_group(ADAPTER_GROUP).items()):
        dist = ep.dist.name if ep.dist else None
        try:
            cls = load_adapter(name)
        except Exception as exc:  # an adapter that fails to load is listed with why
            result.append(InstalledAdapter(name, ep.value, dist, None, "", f"{type(exc).__name__}: {exc}"))
            continue
        doc = (cls.__doc__ or "").strip().splitlines()
        description = cls.description or (doc[0] if doc else "")
        result.append(InstalledAdapter(name, ep.value, dist, cls.role, description))
    return result
