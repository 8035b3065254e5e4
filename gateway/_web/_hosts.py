"""Which ``Host`` a request may name: the guard against DNS rebinding.

A hostile web page can have its own name (``evil.example``) resolve to 127.0.0.1 after it has
loaded; its scripts then read this server as if it were their own site, the browser's
same-origin rule notwithstanding. The request still says ``Host: evil.example``: so a request is
served only when its ``Host`` names this server. An IP address is always accepted (a page
cannot rebind an address, and Prometheus scrapes by IP:port); a name must be ``localhost``,
``web.host``, the host of ``dashboard.public_origin``, or one of ``web.allowed_hosts``. The port
is not compared: the name is what rebinding forges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway._config._schema import GatewaySettings


def host_names(settings: GatewaySettings) -> frozenset[str]:
    """The names (not addresses) a request may be addressed to, lower case."""
    names = {"localhost", settings.web.host.lower(), *settings.web.allowed_hosts}
    if settings.dashboard.public_origin:
        names.add((urlsplit(settings.dashboard.public_origin).hostname or "").lower())
    return frozenset(names)


def host_allowed(host: str, names: Iterable[str]) -> bool:
    """``host`` (a ``Host`` header: name or address, perhaps with a port) names this server."""
    host = host.strip().lower()
    if host.startswith("["):  # [IPv6]:port
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.rstrip(".") in names or f"[{name}]" in names
    return True


def host_guard(names: frozenset[str]) -> Middleware:
    """An aiohttp middleware that answers 421 to a request whose ``Host`` names another server."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        # No Host at all (HTTP/1.0, a hand-made probe): no browser sends that, so no rebinding.
        if host is not None and not host_allowed(host, names):
            return web.Response(
                status=421,
                text="this server is not addressed by that name; add it to web.allowed_hosts in gateway.yaml\n",
            )
        return await handler(request)

    return guard
