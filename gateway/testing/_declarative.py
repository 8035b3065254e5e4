"""Building the declarative adapter from an instance file, for the tests of a local app
described in YAML (docs/adapters.md, "A local app in YAML")."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import httpx

from gateway._config._load import _load_instance
from gateway._config._yaml import load_yaml
from gateway._declarative import DeclarativeApp
from gateway._errors import ConfigError, ConfigIssue
from gateway._http import RetryPolicy


def declarative_app(
    path: Path | str,
    base_url: str,
    *,
    environ: Mapping[str, str],
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
) -> DeclarativeApp:
    """The adapter the instance file at ``path`` describes (``adapter: declarative``), read and
    checked as ``gateway config check`` does (its secrets from ``environ``), pointed at
    ``base_url`` (the simulator on loopback) and built with ``client``. ``retry`` replaces
    the file's retries (one attempt makes a failing test fail fast). Raises
    :class:`gateway.ConfigError` listing what is wrong in the file."""
    issues: list[ConfigIssue] = []
    instance = _load_instance(load_yaml(Path(path)), environ, True, issues)
    if instance is None or issues:
        raise ConfigError(issues or [ConfigIssue(str(path), None, "", "cannot be read")])
    if instance.adapter_class is not DeclarativeApp:
        raise ConfigError([ConfigIssue(str(path), None, "adapter", "is not the declarative adapter")])
    context = dataclasses.replace(instance.context(), base_url=base_url)
    if retry is not None:
        context = dataclasses.replace(context, retry=retry)
    return DeclarativeApp(context, client=client)
