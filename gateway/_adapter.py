"""The adapter interface: the one stable surface an adapter developer writes against.

An adapter translates one peer's dialect (fields, statuses, time zone, paging,
auth) to the canonical model and back. It holds no sync logic and no retry
loop: the engine owns cursors, the store, ordering and retries across passes;
:class:`gateway.PeerClient` owns retries within a call.

A local app is read through three streams since a cursor (complaints,
follow-ups, status changes) and written to with a status or a follow-up. A hub
is written to (attachments, complaint, follow-up) and read per complaint (state
and follow-ups), because the real hub has no change feed.

Streams yield records in the order of their update time. A record that cannot
be read is yielded as a :class:`gateway.RecordError` instead of being raised,
so that the rest of the page goes on and the engine can quarantine it.

A write counts as done only when the peer's answer proves it (an id, an explicit ok).
An answer that says it failed raises :class:`gateway.PermanentPeerError` (refused); one
that proves nothing raises :class:`gateway.AmbiguousOutcomeError` (it may have been done).
Never return normally from a write on an answer that does not prove it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from gateway._budget import BudgetPolicy, RequestBudget
from gateway._capabilities import HUB_CAPABILITIES, LOCAL_APP_CAPABILITIES, Capability, Write
from gateway._errors import RecordError
from gateway._http import BreakerPolicy, CircuitBreaker, PeerClient, RetryPolicy
from gateway._model import (
    AttachmentContent,
    AttachmentRef,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    HubComplaintState,
    RawStatus,
    ReferenceItem,
    StatusChange,
)
from gateway._position import PeerPosition, stored_positions

Role = Literal["local_app", "hub"]


class NoSettings(BaseModel):
    """Adapters without settings of their own accept none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class InstanceContext:
    """What an adapter receives of its instance's config: name, peer address, zone,
    resolved secrets and its own validated settings block."""

    name: str
    base_url: str
    timezone: tzinfo
    secrets: dict[str, str] = field(repr=False, default_factory=dict)
    settings: BaseModel = field(default_factory=NoSettings)
    timeout_seconds: float = 15.0
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    budget: BudgetPolicy = BudgetPolicy()


class Adapter(ABC):
    """Base of both sides. Subclasses declare ``role``, ``Settings`` (a pydantic model
    for the ``settings:`` block of the YAML) and ``secret_names`` (keys that must
    appear under ``secrets:``), and build their auth headers."""

    role: ClassVar[Role]
    Settings: ClassVar[type[BaseModel]] = NoSettings
    secret_names: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: The kinds of write the peer applies only once when sent again with the same gateway_ref
    #: (it answers with the existing record): only those are resent after a lost answer.
    idempotent_writes: ClassVar[frozenset[Write]] = frozenset()
    #: The optional methods this class implements. Declared, not discovered: the engine asks
    #: :meth:`supports` and never calls a method to see whether it exists.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The capabilities a role offers (set by LocalApp and Hub).
    _role_capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "_role_capabilities" in cls.__dict__:  # LocalApp, Hub: the bases the others are checked against
            return
        base = next((b for b in cls.__mro__[1:] if "_role_capabilities" in b.__dict__), None)
        if base is None or not issubclass(base, Adapter):
            return
        where = f"{cls.__module__}.{cls.__name__}"
        _check_idempotent_writes(cls, where)
        # A mismatch would only show when the engine first needs the method, perhaps weeks
        # later on a rare path (a lost answer): it is an error when the class is made.
        for capability in sorted(cls.capabilities - base._role_capabilities):
            raise TypeError(
                f"{where} declares Capability.{capability.name}, which a {base.role} does not "
                f"have (its capabilities: {', '.join(sorted(c.name for c in base._role_capabilities))})"
            )
        for capability in sorted(base._role_capabilities):
            declared = capability in cls.capabilities
            implemented = getattr(cls, capability.method) is not getattr(base, capability.method)
            if declared and not implemented:
                raise TypeError(
                    f"{where} declares Capability.{capability.name} but does not implement "
                    f"{capability.method}(): implement it or leave the capability out"
                )
            if implemented and not declared:
                raise TypeError(
                    f"{where} implements {capability.method}() but does not declare "
                    f"Capability.{capability.name}: add it to {cls.__name__}.capabilities"
                )

    def supports(self, capability: Capability) -> bool:
        """Whether this adapter offers ``capability``: the class declares it. An adapter whose
        settings can switch a capability off overrides this to say so, and never answers True
        for one its class does not declare."""
        return capability in type(self).capabilities

    def __init__(self, context: InstanceContext, *, client: httpx.AsyncClient | None = None):
        self.context = context
        self.name = context.name
        self.settings = context.settings
        self.http = PeerClient(
            context.name,
            context.base_url,
            headers=self.auth_headers(),
            timeout=context.timeout_seconds,
            client=client,
            retry=context.retry,
            breaker=CircuitBreaker(context.name, context.breaker),
            # One budget per instance, so per peer: every job calling it shares it.
            budget=RequestBudget(context.name, context.budget),
            auth=self.auth(),
        )

    def auth_headers(self) -> dict[str, str]:
        """Static headers sent on every call (built from ``self.context.secrets``)."""
        return {}

    def auth(self) -> httpx.Auth | None:
        """An ``httpx.Auth`` applied to every request, retries included, for credentials that
        change: ``gateway.OAuth2ClientCredentials`` (a token renewed before it expires and after
        a 401), ``gateway.BasicAuth``, ``gateway.ApiKeyHeader``, or your own flow. Called once,
        in ``__init__`` after ``auth_headers()``; the object it returns keeps the token, so the
        adapter keeps none."""
        return None

    async def aclose(self) -> None:
        await self.http.aclose()


class LocalApp(Adapter):
    """A local complaint app (Lapor Hendi, WargaKu, Sambat Online, ...)."""

    role: ClassVar[Role] = "local_app"
    _role_capabilities: ClassVar[frozenset[Capability]] = LOCAL_APP_CAPABILITIES

    def position(self, stream: str) -> str | None:
        """The last :class:`gateway.PeerPosition` the engine stored for ``stream``
        (``"complaints"``, ``"follow_ups"``, ``"status_changes"``) while it reads that stream;
        None before the first one is stored (walk from ``since`` then)."""
        return (stored_positions.get() or {}).get(stream)

    @abstractmethod
    def complaints_since(self, since: datetime | None) -> AsyncIterator[Complaint | RecordError | PeerPosition]:
        """Complaints created or updated at or after ``since`` (UTC), oldest update first."""

    @abstractmethod
    def follow_ups_since(self, since: datetime | None) -> AsyncIterator[FollowUp | RecordError | PeerPosition]:
        """Follow-ups written at or after ``since``, oldest first, including the
        ones the gateway wrote (they carry its ``gateway_ref`` where the app keeps it)."""

    def status_changes_since(self, since: datetime | None) -> AsyncIterator[StatusChange | RecordError | PeerPosition]:
        """Status transitions at or after ``since``, oldest first (``Capability.STATUS_HISTORY``).
        An app that keeps only each complaint's current status leaves this out, and the engine
        records a status change whenever a complaint read shows another status than it knew."""
        raise NotImplementedError

    @abstractmethod
    async def write_status(
        self, complaint_ref: str, status: RawStatus, *, note: str | None, gateway_ref: str
    ) -> str | None:
        """Set a complaint's status; return the app's id of the change, if it gives one."""

    @abstractmethod
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
        """Add a follow-up (``is_secret``: not for public pages; ``attachments``: the officer's
        evidence); return the app's id of it, if it gives one."""

    async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> AttachmentContent:
        """The bytes of one attachment listed on a complaint or a follow-up
        (``Capability.FETCH_ATTACHMENT``). Pass ``max_bytes`` on to
        ``self.http.request(..., max_bytes=...)``: a larger file raises ``TooLargeError``
        without being read whole. An app without files keeps this default: the engine
        then records each listed file as refused and never calls it."""
        raise _not_declared(self, Capability.FETCH_ATTACHMENT)

    async def write_hub_ref(self, complaint_ref: str, hub_ref: str, *, gateway_ref: str) -> None:
        """Store the hub's tracking id of a complaint in the app, so that nobody retypes it
        (``Capability.WRITE_HUB_REF``). An app that cannot keep it keeps this default, and
        the write is skipped."""
        raise _not_declared(self, Capability.WRITE_HUB_REF)


class Hub(Adapter):
    """The national hub (LAPOR!-SP4N)."""

    role: ClassVar[Role] = "hub"
    _role_capabilities: ClassVar[frozenset[Capability]] = HUB_CAPABILITIES
    #: Keys of the create a route's ``fields:`` may not set, because the adapter sets them itself
    #: (``gateway config check`` reports them with file and line).
    route_fields_reserved: ClassVar[frozenset[str]] = frozenset()
    #: Keys every route to this hub must set in its ``fields:`` (checked the same way).
    route_fields_required: ClassVar[frozenset[str]] = frozenset()

    def status_note(self, status: RawStatus) -> str | None:
        """The note written with a hub status in the local app when the hub gave none with it
        (the engine passed the hub's current status on by itself)."""
        return None

    def describe_ref(self, gateway_ref: str) -> str:
        """How an operator finds, at the hub, the complaint created with ``gateway_ref`` (for the
        messages of a create whose answer was lost)."""
        return f"reference {gateway_ref}"

    @abstractmethod
    async def upload_attachments(self, files: Sequence[AttachmentContent]) -> list[str]:
        """Upload files before the create; return the hub's document ids in order."""

    @abstractmethod
    async def create_complaint(self, draft: HubComplaintDraft) -> str:
        """Create the complaint; return the hub's id of it."""

    @abstractmethod
    async def read_complaint(self, ref: str) -> HubComplaintState:
        """The complaint's current status and its status history."""

    @abstractmethod
    async def follow_ups(self, ref: str) -> list[FollowUp | RecordError]:
        """All follow-ups of one complaint, oldest first."""

    @abstractmethod
    async def add_follow_up(
        self,
        ref: str,
        content: str,
        *,
        gateway_ref: str,
        is_secret: bool = False,
        attachments: Sequence[AttachmentContent] = (),
    ) -> str | None:
        """Add a follow-up (``is_secret``: the follow-up's own confidentiality; ``attachments``:
        the officer's evidence); return the hub's id of it, if it gives one."""

    async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> AttachmentContent:
        """The bytes of an attachment listed on one of the hub's follow-ups (``max_bytes`` as for
        :meth:`LocalApp.fetch_attachment`). A hub that does not list them keeps this default
        (follow-ups then reach the local app without files)."""
        raise _not_declared(self, Capability.FETCH_ATTACHMENT)

    async def institutions(self) -> list[ReferenceItem]:
        """The institutions (agencies) complaints can be forwarded to. A hub without
        reference data keeps this default: mappings are then not checked against it."""
        raise _not_declared(self, Capability.INSTITUTIONS)

    async def templates(self) -> list[ReferenceItem]:
        """The hub's follow-up templates (``code`` is what a follow-up may carry)."""
        raise _not_declared(self, Capability.TEMPLATES)

    async def forward(self, ref: str, institution_ref: str, *, note: str | None = None) -> None:
        """Hand the complaint to another institution ("not our authority"). A hub that
        cannot keeps this default, and forwarding deliveries are parked with the reason."""
        raise _not_declared(self, Capability.FORWARD)

    async def find_complaint(self, gateway_ref: str) -> str | None:
        """The hub's id of the complaint created with ``gateway_ref`` (None: there is
        none). Used when a create's answer was lost. A hub that offers no such lookup
        keeps this default, and the engine asks an operator instead of creating again."""
        raise _not_declared(self, Capability.FIND_COMPLAINT)


def _check_idempotent_writes(cls: type[Adapter], where: str) -> None:
    writes = cls.idempotent_writes
    if not isinstance(writes, frozenset) or not all(isinstance(w, Write) for w in writes):
        # The flag of earlier versions (True/False) said nothing about which write.
        raise TypeError(
            f"{where}.idempotent_writes must be a frozenset of gateway.Write "
            f"(for example frozenset({{Write.STATUS}})), not {type(writes).__name__}"
        )
    if cls.role == "hub" and writes:
        raise TypeError(
            f"{where} declares idempotent_writes, which a hub does not have: a hub's write of "
            "unknown outcome is looked up (find_complaint, follow_ups), never resent blindly"
        )
    if Write.HUB_REF in writes and Capability.WRITE_HUB_REF not in cls.capabilities:
        raise TypeError(f"{where} declares Write.HUB_REF idempotent but not Capability.WRITE_HUB_REF")


def _not_declared(adapter: Adapter, capability: Capability) -> NotImplementedError:
    """The default of an optional method: the engine never calls it (it asks ``supports``
    first), so reaching it is a bug of the caller."""
    return NotImplementedError(f"{type(adapter).__name__} does not offer Capability.{capability.name}")
