"""The declarative adapter: a local app described in YAML alone (``adapter: declarative``,
the description in the instance's ``settings:``; docs/adapters.md, "A local app in YAML").

What a Python adapter declares on its class (the capabilities, the idempotent writes)
depends here on the description, so each instance gets a class of its own, made from its
description when the instance is built: the engine and the conformance kit read them from
the class, as for any adapter.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import quote

import httpx

from gateway._adapter import InstanceContext, LocalApp
from gateway._auth import ApiKeyHeader, BasicAuth, OAuth2ClientCredentials
from gateway._capabilities import Capability, Write
from gateway._declarative._records import Reader, Unreadable, as_ref, complaint, follow_up, search, status_change
from gateway._declarative._schema import (
    ApiKeyAuth,
    BasicAuthSpec,
    Description,
    ListSpec,
    OAuth2Spec,
    StaticHeaders,
    WriteSpec,
    placeholders,
)
from gateway._declarative._walks import ListWalk
from gateway._errors import AmbiguousOutcomeError, ConfigError, ConfigIssue, PermanentPeerError, RecordError
from gateway._model import AttachmentContent, Complaint, FollowUp, RawStatus, StatusChange
from gateway._paging_children import walk_children
from gateway._position import PeerPosition

T = TypeVar("T")


def fill(template: Any, values: dict[str, Any]) -> Any:
    """A write's body: a string that is exactly ``{name}`` takes the value with its type (a
    key whose value is None is left out); other strings are formatted as text."""
    if isinstance(template, dict):
        out = {}
        for key, item in template.items():
            value = fill(item, values)
            if value is not None or not _whole_placeholder(item):
                out[key] = value
        return out
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, str):
        if _whole_placeholder(template):
            return values[template[1:-1]]
        return template.format_map({k: "" if v is None else v for k, v in values.items()})
    return template


def _whole_placeholder(item: Any) -> bool:
    return isinstance(item, str) and item.startswith("{") and item.endswith("}") and item[1:-1].isidentifier()


class DeclarativeApp(LocalApp):
    """A local app described in YAML alone."""

    description: ClassVar[str] = (
        "a local app described in YAML alone: auth, lists, paging, fields (JMESPath) and writes "
        "in the instance's settings (docs/adapters.md, 'A local app in YAML')"
    )
    Settings = Description
    # The most a description can declare; each instance's own class narrows it (see __new__).
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STATUS_HISTORY})
    settings: Description

    def __new__(cls, context: InstanceContext, *, client: httpx.AsyncClient | None = None) -> DeclarativeApp:
        if cls is not DeclarativeApp:
            return super().__new__(cls)
        described = context.settings
        if not isinstance(described, Description):
            raise TypeError(f"{context.name}: the declarative adapter's settings must be a Description")
        namespace: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "idempotent_writes": frozenset(
                write
                for write, spec in (
                    (Write.FOLLOW_UP, described.writes.follow_up),
                    (Write.STATUS, described.writes.status),
                )
                if spec is not None and spec.idempotent
            ),
            "capabilities": frozenset() if described.status_changes is None else cls.capabilities,
        }
        if described.status_changes is None:  # the app keeps the current status only
            namespace["status_changes_since"] = LocalApp.status_changes_since
        own = type(cls.__name__, (cls,), namespace)
        return cast(DeclarativeApp, super().__new__(own))

    # --- auth ---------------------------------------------------------------------------------

    def _secret(self, name: str) -> str:
        try:
            return self.context.secrets[name]
        except KeyError:
            # gateway config check reports it with its line; this is an instance built by hand.
            message = f"the description names the secret {name!r}, which is not set"
            raise ConfigError([ConfigIssue(self.name, None, f"secrets.{name}", message)]) from None

    def auth_headers(self) -> dict[str, str]:
        auth = self.settings.auth
        if not isinstance(auth, StaticHeaders):
            return {}
        return {h: v.format_map({n: self._secret(n) for n in placeholders(v)}) for h, v in auth.headers.items()}

    def auth(self) -> httpx.Auth | None:
        auth = self.settings.auth
        if isinstance(auth, ApiKeyAuth):
            return ApiKeyHeader(auth.header, self._secret(auth.key))
        if isinstance(auth, BasicAuthSpec):
            return BasicAuth(self._secret(auth.username), self._secret(auth.password))
        if isinstance(auth, OAuth2Spec):
            return OAuth2ClientCredentials(
                auth.token_url,
                self._secret(auth.client_id),
                self._secret(auth.client_secret),
                auth.scope,
                client_auth=auth.client_auth,
            )
        return None

    # --- reading ------------------------------------------------------------------------------

    def _walk(self, spec: ListSpec, stream: str, key: tuple[str, str]) -> ListWalk:
        return ListWalk(
            spec,
            self.http,
            base_url=self.context.base_url,
            peer=self.name,
            stream=stream,
            times=self.settings.times,
            zone=self.context.timezone,
            key=key,
        )

    def _complaints(self) -> ListWalk:
        spec = self.settings.complaints
        return self._walk(spec, "complaints", (spec.fields.ref, spec.fields.updated_at))

    def _read(self, raw: Any, operation: str, ref: str, translate: Callable[[Reader], T]) -> T | RecordError:
        try:
            return translate(Reader(raw, self.settings.times, self.context.timezone))
        except Unreadable as exc:
            return RecordError(self.name, operation, str(exc), record_ref=as_ref(search(ref, raw)))

    async def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError | PeerPosition]:
        walk, fields = self._complaints(), self.settings.complaints.fields
        async for raw in walk.walk(since, self.position("complaints")):
            if isinstance(raw, PeerPosition):
                yield raw
            else:
                yield self._read(raw, walk.operation, fields.ref, lambda r: complaint(r, fields))

    async def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError | PeerPosition]:
        stream, fields = self.settings.follow_ups, self.settings.follow_ups.fields
        if stream.list is not None:
            walk = self._walk(stream.list, "follow_ups", (fields.ref, fields.created_at))
            async for raw in walk.walk(since, self.position("follow_ups")):
                if isinstance(raw, PeerPosition):
                    yield raw
                else:
                    yield self._read(raw, walk.operation, fields.ref, lambda r: follow_up(r, fields, ""))
            return
        per = stream.per_complaint
        assert per is not None
        parents = self._complaints()
        operation = f"GET {per.request_path}" if per.request_path else parents.operation
        times, zone = self.settings.times, self.context.timezone

        async def children(parent: Any) -> list[tuple[str, Any]]:
            key = parents.key(parent)
            assert key is not None  # walk_children reads only parents with a key
            body = parent
            if per.request_path is not None:
                path = per.request_path.format(complaint_ref=quote(key[0], safe=""))
                body = await self.http.request_json("GET", path, operation=operation)
            items = search(per.records, body)
            if not isinstance(items, list):
                raise PermanentPeerError(self.name, operation, f"answered without a list at {per.records!r}")
            return [(key[0], item) for item in items]

        def child_time(pair: tuple[str, Any]) -> datetime | None:
            try:
                return Reader(pair[1], times, zone).time("created_at", fields.created_at)
            except Unreadable:
                return None

        read = walk_children(
            parents.walk(since, self.position("follow_ups")),
            parents.key,
            children,
            child_time,
            peer=self.name,
            stream="follow_ups",
        )
        async for item in read:
            if isinstance(item, (PeerPosition, RecordError)):
                yield item
            else:
                yield self._read(
                    item[1], operation, fields.ref, functools.partial(follow_up, f=fields, complaint_ref=item[0])
                )

    async def status_changes_since(
        self, since: datetime | None
    ) -> AsyncIterator[StatusChange | RecordError | PeerPosition]:
        spec = self.settings.status_changes
        assert spec is not None  # without one, the instance's class has no status_changes_since
        fields = spec.fields
        walk = self._walk(spec, "status_changes", (fields.ref, fields.changed_at))
        async for raw in walk.walk(since, self.position("status_changes")):
            if isinstance(raw, PeerPosition):
                yield raw
            else:
                yield self._read(raw, walk.operation, fields.ref, lambda r: status_change(r, fields))

    # --- writing ------------------------------------------------------------------------------

    async def _write(self, spec: WriteSpec | None, kind: str, values: dict[str, Any]) -> str | None:
        if spec is None:
            raise PermanentPeerError(
                self.name, f"write {kind}", f"the app has no call to write a {kind} (no writes.{kind})"
            )
        operation = f"{spec.method} {spec.path}"
        path = spec.path.format(complaint_ref=quote(values["complaint_ref"], safe=""))
        headers = {spec.idempotency_header: values["gateway_ref"]} if spec.idempotency_header else {}
        answer = await self.http.request_json(
            spec.method,
            path,
            json=fill(spec.body, values),
            headers=headers,
            operation=operation,
            # Repeating it within the call is safe when the app applies it once.
            idempotent=True if spec.idempotent else None,
        )
        if spec.refused is not None and search(spec.refused, answer):
            raise PermanentPeerError(self.name, operation, "answered that the write was not made (see refused:)")
        if spec.confirm is not None and not search(spec.confirm, answer):
            raise AmbiguousOutcomeError(self.name, operation, "answered without what proves the write (see confirm:)")
        if spec.id is None:
            return None
        written = as_ref(search(spec.id, answer))
        if written is None:
            raise AmbiguousOutcomeError(self.name, operation, f"answered without an id at {spec.id!r}")
        return written

    async def write_status(
        self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str
    ) -> str | None:
        values = _values(complaint_ref, gateway_ref, status=status.code, status_name=status.name, note=note)
        return await self._write(self.settings.writes.status, "status", values)

    async def write_follow_up(
        self,
        complaint_ref: str,
        content: str,
        *,
        author: str | None,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Sequence[AttachmentContent] = (),
    ) -> str | None:
        values = _values(complaint_ref, gateway_ref, content=content, author=author, is_secret=is_secret)
        return await self._write(self.settings.writes.follow_up, "follow_up", values)


def _values(complaint_ref: str, gateway_ref: str, **given: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(("content", "author", "status", "status_name", "note", "is_secret"), None)
    values.update(given, complaint_ref=complaint_ref, gateway_ref=gateway_ref)
    return values
