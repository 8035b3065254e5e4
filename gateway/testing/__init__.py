"""The conformance kit: the standard tests an adapter must pass, for adapter authors' test suites.

Subclass :class:`LocalAppConformance` in a test module, say how to serve the peer (its
simulator on loopback) and how to build the adapter, write a small :class:`PeerDriver`
that changes the peer's world, and pytest runs the standard tests: each stream's order and
watermark while records change during a walk, inclusive ``since``, time zones, echoes of
the adapter's own writes, declared idempotency, bad records as ``RecordError``, personal
data kept apart. :class:`HubConformance` does the same for a hub adapter: create and read
back, the follow-up echo, the lookup after a lost create answer. See "The conformance kit" in ``docs/adapters.md``.
:func:`declarative_app` builds the adapter of a local app described in YAML from its instance file.

It imports neither pytest nor aiohttp: skips are ``unittest.SkipTest``, which pytest reports
as skipped, and the peer is whatever the author's ``serve_peer`` starts.
"""

from gateway.testing._declarative import declarative_app
from gateway.testing._driver import KIT_REPORTER, STREAMS, PeerDriver, ServedPeer, Stream
from gateway.testing._hub import HubConformance, HubDriver, ServedHub, kit_complaint
from gateway.testing._interrupt import InterruptingTransport
from gateway.testing._local_app import LocalAppConformance

__all__ = [
    "KIT_REPORTER",
    "STREAMS",
    "HubConformance",
    "HubDriver",
    "InterruptingTransport",
    "LocalAppConformance",
    "PeerDriver",
    "ServedHub",
    "ServedPeer",
    "Stream",
    "declarative_app",
    "kit_complaint",
]
