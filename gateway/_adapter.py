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
    # True when the peer applies a write carrying the same gateway_ref only once (it
    # answers with the existing record): a write whose outcome is unknown may be resent.
    idempotent_writes: ClassVar[bool] = False

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
        )

    def auth_headers(self) -> dict[str, str]:
        """Headers sent on every call (built from ``self.context.secrets``)."""
        return {}

    async def aclose(self) -> None:
        await self.http.aclose()


class LocalApp(Adapter):
    """A local complaint app (Lapor Hendi, WargaKu, Sambat Online, ...)."""

    role: ClassVar[Role] = "local_app"
    #: False for an app that keeps only each complaint's current status, not its transitions:
    #: it does not implement :meth:`status_changes_since`, and the engine records a status change
    #: whenever a complaint read shows another status than the gateway last knew for it.
    #: (To become ``Capability.STATUS_HISTORY`` in ``capabilities`` when those are declared.)
    status_history: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        concrete = not any(getattr(getattr(cls, name, None), "__isabstractmethod__", False) for name in dir(cls))
        if concrete and cls.status_history and cls.status_changes_since is LocalApp.status_changes_since:
            raise TypeError(
                f"{cls.__name__} does not implement status_changes_since: implement it, or set "
                "status_history = False if the app keeps only the current status (the engine then "
                "records the changes it sees in the complaints)"
            )

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
        """Status transitions at or after ``since``, oldest first. Not called (nor implemented)
        when ``status_history`` is False."""
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

    @abstractmethod
    async def fetch_attachment(self, attachment: AttachmentRef, *, max_bytes: int | None = None) -> AttachmentContent:
        """The bytes of one attachment listed on a complaint or a follow-up. Pass ``max_bytes`` on
        to ``self.http.request(..., max_bytes=...)``: a larger file raises ``TooLargeError``
        without being read whole."""

    async def write_hub_ref(self, complaint_ref: str, hub_ref: str, *, gateway_ref: str) -> None:
        """Store the hub's tracking id of a complaint in the app, so that nobody retypes it.
        An app that cannot keep it keeps this default, and the write is skipped."""
        raise NotImplementedError


class Hub(Adapter):
    """The national hub (LAPOR!-SP4N)."""

    role: ClassVar[Role] = "hub"
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
        raise NotImplementedError

    async def institutions(self) -> list[ReferenceItem]:
        """The institutions (agencies) complaints can be forwarded to. A hub without
        reference data keeps this default: mappings are then not checked against it."""
        raise NotImplementedError

    async def templates(self) -> list[ReferenceItem]:
        """The hub's follow-up templates (``code`` is what a follow-up may carry)."""
        raise NotImplementedError

    async def forward(self, ref: str, institution_ref: str, *, note: str | None = None) -> None:
        """Hand the complaint to another institution ("not our authority"). A hub that
        cannot keeps this default, and forwarding deliveries are parked with the reason."""
        raise NotImplementedError

    async def find_complaint(self, gateway_ref: str) -> str | None:
        """The hub's id of the complaint created with ``gateway_ref`` (None: there is
        none). Used when a create's answer was lost. A hub that offers no such lookup
        keeps this default, and the engine asks an operator instead of creating again."""
        raise NotImplementedError


def overrides(adapter: Adapter, method: str) -> bool:
    """Whether ``adapter`` implements an optional method of its base class (one that raises
    NotImplementedError there)."""
    base = Hub if isinstance(adapter, Hub) else LocalApp
    return getattr(type(adapter), method) is not getattr(base, method)
