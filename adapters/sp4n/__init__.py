"""LAPOR!-SP4N, the national complaint hub: the built-in ``sp4n`` hub adapter.

Its simulator lives in :mod:`lapor_gateway_adapters.sp4n.simulator` (imported on demand, so
that the daemon does not load aiohttp's server side unless it runs one).
"""

from lapor_gateway_adapters.sp4n._adapter import Sp4nHub

__all__ = ["Sp4nHub"]
