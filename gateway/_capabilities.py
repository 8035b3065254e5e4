"""What an adapter declares up front: the optional methods it implements (capabilities)
and the writes its peer applies only once when repeated (idempotent writes).

The engine asks ``adapter.supports(Capability.X)`` before it calls an optional method,
and ``Write.X in adapter.idempotent_writes`` before it resends a write whose answer was
lost; it never calls a method to find out whether it exists.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """An optional method of :class:`gateway.LocalApp` or :class:`gateway.Hub`. The value is the
    method's name, except ``STATUS_HISTORY``, which stands for ``status_changes_since``."""

    #: local app and hub: ``fetch_attachment`` downloads a listed file.
    FETCH_ATTACHMENT = "fetch_attachment"
    #: local app: ``write_hub_ref`` keeps the hub's tracking id in the app.
    WRITE_HUB_REF = "write_hub_ref"
    #: local app: ``status_changes_since`` lists every status transition (not only the current state).
    STATUS_HISTORY = "status_history"
    #: hub: ``institutions`` lists the institutions complaints can go to.
    INSTITUTIONS = "institutions"
    #: hub: ``templates`` lists the follow-up templates.
    TEMPLATES = "templates"
    #: hub: ``forward`` hands a complaint to another institution.
    FORWARD = "forward"
    #: hub: ``find_complaint`` finds a complaint by the gateway's reference after a lost create answer.
    FIND_COMPLAINT = "find_complaint"

    @property
    def method(self) -> str:
        """The name of the adapter method this capability stands for."""
        return "status_changes_since" if self is Capability.STATUS_HISTORY else self.value


class Write(StrEnum):
    """A kind of write to a local app. An adapter lists in ``idempotent_writes`` those its app
    applies once however often they are sent with the same ``gateway_ref`` (it answers the
    existing record): only those are resent after a lost answer. The hub's writes are never
    resent blindly: a create is looked up with ``find_complaint``, a follow-up in ``follow_ups``."""

    #: ``LocalApp.write_status``
    STATUS = "status"
    #: ``LocalApp.write_follow_up`` (also a hub status passed on as a follow-up)
    FOLLOW_UP = "follow_up"
    #: ``LocalApp.write_hub_ref``
    HUB_REF = "hub_ref"


LOCAL_APP_CAPABILITIES = frozenset({Capability.FETCH_ATTACHMENT, Capability.WRITE_HUB_REF, Capability.STATUS_HISTORY})
HUB_CAPABILITIES = frozenset(
    {
        Capability.FETCH_ATTACHMENT,
        Capability.INSTITUTIONS,
        Capability.TEMPLATES,
        Capability.FORWARD,
        Capability.FIND_COMPLAINT,
    }
)
