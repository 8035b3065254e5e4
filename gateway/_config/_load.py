"""Load and check the whole configuration: ``gateway.yaml`` plus one YAML file per
adapter instance. Every problem found is reported at once, each with its file,
line and key, before anything starts."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from gateway._adapter import Adapter, InstanceContext
from gateway._budget import BudgetPolicy
from gateway._config._schema import ENV_REFERENCE, GatewaySettings, InstanceSettings
from gateway._config._yaml import LocatedYaml, load_yaml
from gateway._errors import AdapterNotFoundError, ConfigError, ConfigIssue
from gateway._http import BreakerPolicy, RetryPolicy
from gateway._model import Classification, Status
from gateway._personal_data import KeysError, PersonalDataKeys, ReporterKeeping
from gateway._registry import load_adapter

DEFAULT_CONFIG = Path("config/gateway.yaml")


@dataclass
class InstanceConfig:
    """One adapter instance, validated: its YAML, its adapter class, its settings and secrets."""

    path: Path
    spec: InstanceSettings
    adapter_class: type[Adapter]
    settings: BaseModel
    secrets: dict[str, str] = field(repr=False)
    # The keys that seal the reporter data this app keeps (privacy.reporter); None when it keeps
    # none, or when the config was loaded without checking secrets and they are not usable.
    personal_data_keys: PersonalDataKeys | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def reporter_keeping(self) -> ReporterKeeping | None:
        """What this app keeps of its reporters, sealed with which keys; None: nothing (the
        default, and also the answer when the keys are missing: never kept in plain text)."""
        keep = self.spec.privacy.reporter.keep
        if not keep or self.personal_data_keys is None:
            return None
        return ReporterKeeping(tuple(keep), self.personal_data_keys)

    @property
    def role(self) -> str:
        return self.adapter_class.role

    def context(self) -> InstanceContext:
        retries, breaker, budget = self.spec.http_retries, self.spec.breaker, self.spec.budget
        return InstanceContext(
            name=self.spec.name,
            base_url=self.spec.base_url,
            timezone=ZoneInfo(self.spec.timezone),
            secrets=self.secrets,
            settings=self.settings,
            timeout_seconds=self.spec.timeout_seconds,
            retry=RetryPolicy(
                attempts=retries.attempts,
                initial_wait=retries.initial_wait_seconds,
                max_wait=retries.max_wait_seconds,
                max_retry_after=retries.max_retry_after_seconds,
            ),
            breaker=BreakerPolicy(failure_threshold=breaker.failure_threshold, reset_seconds=breaker.reset_seconds),
            budget=BudgetPolicy(
                requests_per_second=budget.requests_per_second,
                concurrency=budget.concurrency,
                recover_after_seconds=budget.recover_after_seconds,
            ),
        )


@dataclass
class GatewayConfig:
    path: Path
    settings: GatewaySettings
    instances: dict[str, InstanceConfig]

    def local_apps(self) -> list[InstanceConfig]:
        return [i for i in self.instances.values() if i.role == "local_app" and i.spec.enabled]

    def hubs(self) -> list[InstanceConfig]:
        return [i for i in self.instances.values() if i.role == "hub" and i.spec.enabled]

    def schedule_seconds(self, instance: str, key: str) -> float:
        """Seconds between runs of a job (``intake_seconds``, ...): the instance's own, else gateway.yaml's."""
        seconds: float = getattr(self.instances[instance].spec.schedule, key) or getattr(self.settings.schedule, key)
        return seconds


def _issues_from(error: ValidationError, doc: LocatedYaml, prefix: tuple[Any, ...] = ()) -> list[ConfigIssue]:
    issues = []
    for err in error.errors(include_input=False, include_url=False):
        loc = prefix + tuple(err["loc"])
        if err["type"] == "union_tag_invalid":  # the wrong value is under the tag's own key (type: ...)
            loc += (str(err.get("ctx", {}).get("discriminator", "")).strip("'"),)
        key = ".".join(str(p) for p in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and indentation)"
        elif err["type"] == "enum" and "expected" in err.get("ctx", {}):
            message = f"expected one of {err['ctx']['expected']}"
        issues.append(ConfigIssue(str(doc.path), doc.line(loc), key, message))
    return issues


def load_config(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None, check_secrets: bool = True
) -> GatewayConfig:
    """Read and check everything; raise :class:`ConfigError` listing every problem."""
    path = Path(path or os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG)
    environ = os.environ if environ is None else environ
    doc = load_yaml(path)
    issues: list[ConfigIssue] = []
    try:
        settings = GatewaySettings.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc, doc)) from None

    folder = path.parent / settings.adapters_dir
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        issues.append(
            ConfigIssue(str(path), doc.line(("adapters_dir",)), "adapters_dir", f"no *.yaml files in {folder}")
        )
    instances: dict[str, InstanceConfig] = {}
    docs: dict[str, LocatedYaml] = {}
    broken: set[str] = set()  # names of instances whose own file has problems (reported already)
    for file in files:
        try:
            idoc = load_yaml(file)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        before = len(issues)
        instance = _load_instance(idoc, environ, check_secrets, issues)
        if instance is None or len(issues) > before:
            broken.add(str(idoc.data.get("name")))
        if instance is None:
            continue
        if instance.name in instances:
            issues.append(
                ConfigIssue(
                    str(file),
                    idoc.line(("name",)),
                    "name",
                    f"instance {instance.name!r} is already defined in {instances[instance.name].path}",
                )
            )
            continue
        instances[instance.name] = instance
        docs[instance.name] = idoc
    _check_routes(instances, docs, issues, broken)
    if check_secrets:
        _check_dashboard_token(settings, doc, environ, issues)
    if issues:
        raise ConfigError(issues)
    return GatewayConfig(path=path, settings=settings, instances=instances)


#: Shorter tokens are refused: the token is all that stands between the page and the operator actions.
MIN_DASHBOARD_TOKEN_CHARS = 16


def _check_dashboard_token(
    settings: GatewaySettings, doc: LocatedYaml, environ: Mapping[str, str], issues: list[ConfigIssue]
) -> None:
    """Operator actions on the dashboard need their sign-in token in the environment."""
    dashboard = settings.dashboard
    if not dashboard.operator_actions:
        return
    token = environ.get(dashboard.token_env, "")
    if len(token.strip()) < MIN_DASHBOARD_TOKEN_CHARS:
        issues.append(
            ConfigIssue(
                str(doc.path),
                doc.line(("dashboard", "operator_actions")),
                "dashboard.operator_actions",
                f"operator actions need a sign-in token of at least {MIN_DASHBOARD_TOKEN_CHARS} characters in the "
                f"environment variable {dashboard.token_env} ({'too short' if token.strip() else 'not set'})",
            )
        )


def _load_instance(
    doc: LocatedYaml, environ: Mapping[str, str], check_secrets: bool, issues: list[ConfigIssue]
) -> InstanceConfig | None:
    file = str(doc.path)
    written = doc.data.get("secrets")
    if isinstance(written, dict):
        literal = [key for key, ref in written.items() if not (isinstance(ref, str) and ENV_REFERENCE.match(ref))]
        for key in literal:
            # The literal is not repeated: it may be the secret itself.
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("secrets", key)),
                    f"secrets.{key}",
                    f"secret {key!r} must be an environment variable reference such as "
                    f"${{{key.upper()}}}, never the secret itself",
                )
            )
        if literal:
            return None
    try:
        spec = InstanceSettings.model_validate(doc.data)
    except ValidationError as exc:
        issues.extend(_issues_from(exc, doc))
        return None
    try:
        adapter_class = load_adapter(spec.adapter)
    except AdapterNotFoundError as exc:
        issues.append(ConfigIssue(file, doc.line(("adapter",)), "adapter", str(exc)))
        return None
    try:
        settings = adapter_class.Settings.model_validate(spec.settings)
    except ValidationError as exc:
        issues.extend(_issues_from(exc, doc, ("settings",)))
        return None
    secrets: dict[str, str] = {}
    # A disabled instance runs nothing and calls nobody: it needs no secrets set (an admin
    # disables an app before its credentials exist). Literal secrets are still refused above.
    check_secrets = check_secrets and spec.enabled
    for required in adapter_class.secret_names if spec.enabled else ():
        if required not in spec.secrets:
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("secrets",)),
                    f"secrets.{required}",
                    f"missing; the {spec.adapter} adapter needs it (an ${{ENV_VAR}} reference)",
                )
            )
    # Settings that name secrets themselves (the declarative adapter's auth:), each at its line.
    named = getattr(settings, "required_secrets", None)
    for required, where in named().items() if callable(named) and spec.enabled else ():
        if required not in spec.secrets:
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("settings", *where)),
                    "settings." + ".".join(where),
                    f"names the secret {required!r}, which is not under secrets: (add {required}: ${{ENV_VAR}})",
                )
            )
    for key, ref in spec.secrets.items():
        variable = ENV_REFERENCE.match(ref).group(1)  # type: ignore[union-attr]  # validated by the schema
        value = environ.get(variable)
        if value and check_secrets and any(unicodedata.category(c) == "Cc" for c in value):
            # Most often a carriage return or a line break carried over from the file the value
            # came from: sent as a header it is refused at every request, after start-up.
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("secrets", key)),
                    f"secrets.{key}",
                    f"environment variable {variable} holds a control character (a line break, a carriage "
                    "return, a tab...), which no secret has; set it again without it",
                )
            )
        elif value and check_secrets and value != value.strip():
            # A space at an end (`SP4N_TOKEN= tok...` in an env file, a value pasted with one):
            # a header may not start or end with one, so every request would be refused after
            # start-up, as for a control character; a blank value is no secret either.
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("secrets", key)),
                    f"secrets.{key}",
                    f"environment variable {variable} starts or ends with a space (or is only spaces), which "
                    "no secret does; set it again without it",
                )
            )
        elif value:
            secrets[key] = value
        elif check_secrets:
            issues.append(
                ConfigIssue(
                    file, doc.line(("secrets", key)), f"secrets.{key}", f"environment variable {variable} is not set"
                )
            )
    role = adapter_class.role
    keys = _reporter_privacy(spec, doc, environ, check_secrets, issues) if role == "local_app" else None
    if role == "local_app":
        if spec.route is None:
            issues.append(ConfigIssue(file, 1, "route", "a local app needs a route: {hub: <hub instance name>}"))
        known = {" ".join(k.split()).casefold() for k in (*spec.statuses, *spec.status_writes.values())}
        for index, item in enumerate(spec.status_order):
            for name in item if isinstance(item, list) else [item]:
                if " ".join(name.split()).casefold() not in known:
                    issues.append(
                        ConfigIssue(
                            file,
                            doc.line(("status_order", index)),
                            f"status_order.{index}",
                            f"{name!r} is not a status of this app (in 'statuses' or 'status_writes')",
                        )
                    )
        wanted = spec.route.create_at_hub.statuses if spec.route else None
        for index, name in enumerate(wanted or []):
            if " ".join(name.split()).casefold() not in known:
                issues.append(
                    ConfigIssue(
                        file,
                        doc.line(("route", "create_at_hub", "statuses", index)),
                        f"route.create_at_hub.statuses.{index}",
                        f"{name!r} is not a status of this app (in 'statuses')",
                    )
                )
        missing = [s.value for s in Status if s not in spec.status_writes]
        if missing:
            issues.append(
                ConfigIssue(
                    file,
                    doc.line(("status_writes",)),
                    "status_writes",
                    f"no local status to write for: {', '.join(missing)}",
                )
            )
    elif role == "hub":
        if spec.route is not None:
            issues.append(
                ConfigIssue(file, doc.line(("route",)), "route", "a hub has no route; routes belong to local apps")
            )
        _hub_privacy(doc, issues)
        missing = [c.value for c in Classification if c not in spec.classifications]
        if missing:
            issues.append(
                ConfigIssue(
                    file, doc.line(("classifications",)), "classifications", f"no hub id for: {', '.join(missing)}"
                )
            )
    if not spec.statuses:
        issues.append(
            ConfigIssue(file, 1, "statuses", "add the table of the peer's status codes to canonical statuses")
        )
    return InstanceConfig(
        path=doc.path,
        spec=spec,
        adapter_class=adapter_class,
        settings=settings,
        secrets=secrets,
        personal_data_keys=keys,
    )


# Why each part of ``privacy:`` means nothing in a hub's file: the gateway applies a local app's
# block to its complaints on both sides (the files it sends to the hub are cleaned by that app's
# privacy.attachments, its texts purged by its privacy.retention).
_HUB_PRIVACY = {
    "reporter": "a hub takes in no reporters (the gateway never sends them one)",
    "retention": "the gateway keeps a complaint's texts under its local app's privacy.retention",
    "attachments": "the files sent to the hub follow their local app's privacy.attachments",
}


def _hub_privacy(doc: LocatedYaml, issues: list[ConfigIssue]) -> None:
    """A ``privacy:`` block in a hub's file: reported, since nothing reads it (it would seem to apply)."""
    block = doc.data.get("privacy") if isinstance(doc.data, dict) else None
    if block is None:
        return
    for key in block if isinstance(block, dict) and block else [None]:
        where = ("privacy",) if key is None else ("privacy", key)
        why = _HUB_PRIVACY.get(str(key), "a hub keeps no complaints, reporters or files of its own")
        issues.append(
            ConfigIssue(
                str(doc.path),
                doc.line(where),
                ".".join(map(str, where)),
                f"privacy applies to local apps: {why}; move it to the local app's file",
            )
        )


def _reporter_privacy(
    spec: InstanceSettings,
    doc: LocatedYaml,
    environ: Mapping[str, str],
    check_secrets: bool,
    issues: list[ConfigIssue],
) -> PersonalDataKeys | None:
    """``privacy.reporter``: a field kept needs a purpose, a purpose needs a field to keep, and
    what is kept needs its keys in the environment. Returns the keys (None: nothing is kept)."""
    file, reporter = str(doc.path), spec.privacy.reporter
    where = ("privacy", "reporter")
    if reporter.keep and reporter.purpose is None:
        issues.append(
            ConfigIssue(
                file,
                doc.line((*where, "keep")),
                "privacy.reporter.keep",
                "keeping a reporter's data needs a purpose: add privacy.reporter.purpose (why it is kept, "
                "in a sentence), or remove keep",
            )
        )
    if reporter.purpose is not None and not reporter.keep:
        issues.append(
            ConfigIssue(
                file,
                doc.line((*where, "purpose")),
                "privacy.reporter.purpose",
                "a purpose that keeps nothing: list the fields it needs under privacy.reporter.keep "
                "(name, nik, phone, email, address), or remove purpose",
            )
        )
    if not reporter.keep:
        return None
    try:
        return PersonalDataKeys.from_environment(reporter.key_env, environ)
    except KeysError as exc:
        if check_secrets:  # (off for a disabled app: like its secrets, its keys need not be set yet)
            key = "key_env" if "key_env" in reporter.model_fields_set else "keep"
            issues.append(ConfigIssue(file, doc.line((*where, key)), f"privacy.reporter.{key}", str(exc)))
        return None


def _check_routes(
    instances: dict[str, InstanceConfig], docs: dict[str, LocatedYaml], issues: list[ConfigIssue], broken: set[str]
) -> None:
    for name, inst in instances.items():
        if inst.role != "local_app" or inst.spec.route is None or inst.spec.route.hub in broken - set(instances):
            continue
        doc = docs[name]
        hub = instances.get(inst.spec.route.hub)
        if hub is None or hub.role != "hub":
            hubs = ", ".join(n for n, i in instances.items() if i.role == "hub") or "none defined"
            issues.append(
                ConfigIssue(
                    str(inst.path),
                    doc.line(("route", "hub")),
                    "route.hub",
                    f"{inst.spec.route.hub!r} is not a hub instance (hubs: {hubs})",
                )
            )
            continue
        reserved: frozenset[str] = getattr(hub.adapter_class, "route_fields_reserved", frozenset())
        required: frozenset[str] = getattr(hub.adapter_class, "route_fields_required", frozenset())
        for key in sorted(required - set(inst.spec.route.fields)):
            issues.append(
                ConfigIssue(
                    str(inst.path),
                    doc.line(("route", "fields")) or doc.line(("route",)),
                    f"route.fields.{key}",
                    f"missing; the {hub.spec.adapter} adapter needs it (see docs/lapor-sp4n.md)",
                )
            )
        for key in inst.spec.route.fields:
            if key in reserved:
                issues.append(
                    ConfigIssue(
                        str(inst.path),
                        doc.line(("route", "fields", key)),
                        f"route.fields.{key}",
                        f"set by the {hub.spec.adapter} adapter itself; remove it here",
                    )
                )
        for category, slug in inst.spec.categories.items():
            if slug not in hub.spec.categories:
                issues.append(
                    ConfigIssue(
                        str(inst.path),
                        doc.line(("categories", category)),
                        f"categories.{category}",
                        f"{slug!r} is not in the categories of hub {hub.name} ({hub.path.name})",
                    )
                )
        for channel, canonical in inst.spec.channels.items():
            if canonical not in hub.spec.channels:
                issues.append(
                    ConfigIssue(
                        str(inst.path),
                        doc.line(("channels", channel)),
                        f"channels.{channel}",
                        f"{canonical!r} is not in the channels of hub {hub.name} ({hub.path.name})",
                    )
                )
