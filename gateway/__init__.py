"""lapor-gateway: keeps local complaint apps and the LAPOR!-SP4N hub in agreement.

This module is the public face that adapters and third-party code may rely on;
everything else lives in private modules and may change. ``tests/test_public_api.py``
keeps this list fixed.
"""

from gateway._adapter import Adapter, Hub, InstanceContext, LocalApp, NoSettings
from gateway._auth import ApiKeyHeader, BasicAuth, OAuth2ClientCredentials
from gateway._budget import BudgetPolicy, RequestBudget
from gateway._capabilities import Capability, Write
from gateway._errors import (
    AdapterNotFoundError,
    AmbiguousOutcomeError,
    ConfigError,
    ConfigIssue,
    FatalError,
    GatewayError,
    MappingError,
    OutcomeUnknownError,
    PeerError,
    PeerUnavailableError,
    PermanentPeerError,
    RecordError,
    RefusedError,
    RetriableError,
    StoreError,
    StoreRefusedError,
    StoreUnavailableError,
    TooLargeError,
    TransientPeerError,
)
from gateway._http import BreakerPolicy, CircuitBreaker, PeerClient, RetryPolicy, decode_json
from gateway._model import (
    AttachmentContent,
    AttachmentRef,
    Classification,
    Complaint,
    FollowUp,
    HubComplaintDraft,
    HubComplaintState,
    Location,
    RawStatus,
    ReferenceItem,
    Reporter,
    Status,
    StatusChange,
)
from gateway._paging import TimePage, walk_by_time
from gateway._paging_children import walk_children
from gateway._paging_styles import TokenPage, walk_by_link, walk_by_offset, walk_by_token, walk_list
from gateway._position import PeerPosition
from gateway._timezones import WIB, format_iso_time, format_peer_time, parse_iso_time, parse_peer_time, to_utc

__version__ = "0.1.0"

__all__ = [
    "WIB",
    "Adapter",
    "AdapterNotFoundError",
    "AmbiguousOutcomeError",
    "ApiKeyHeader",
    "AttachmentContent",
    "AttachmentRef",
    "BasicAuth",
    "BreakerPolicy",
    "BudgetPolicy",
    "Capability",
    "CircuitBreaker",
    "Classification",
    "Complaint",
    "ConfigError",
    "ConfigIssue",
    "FatalError",
    "FollowUp",
    "GatewayError",
    "Hub",
    "HubComplaintDraft",
    "HubComplaintState",
    "InstanceContext",
    "LocalApp",
    "Location",
    "MappingError",
    "NoSettings",
    "OAuth2ClientCredentials",
    "OutcomeUnknownError",
    "PeerClient",
    "PeerError",
    "PeerPosition",
    "PeerUnavailableError",
    "PermanentPeerError",
    "RawStatus",
    "RecordError",
    "ReferenceItem",
    "RefusedError",
    "Reporter",
    "RequestBudget",
    "RetriableError",
    "RetryPolicy",
    "Status",
    "StatusChange",
    "StoreError",
    "StoreRefusedError",
    "StoreUnavailableError",
    "TimePage",
    "TokenPage",
    "TooLargeError",
    "TransientPeerError",
    "Write",
    "decode_json",
    "format_iso_time",
    "format_peer_time",
    "parse_iso_time",
    "parse_peer_time",
    "to_utc",
    "walk_by_link",
    "walk_by_offset",
    "walk_by_time",
    "walk_by_token",
    "walk_children",
    "walk_list",
]
