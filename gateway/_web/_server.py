"""The daemon's HTTP server: an aiohttp application served in the daemon's own event loop.

Its routes come from route adders, functions ``add(app, context)`` that put their routes (and
their start-up and clean-up hooks) on the application; :data:`ROUTES` lists the daemon's. A
handler runs on the event loop beside the jobs, so it must not block: a store call goes
through ``context.db`` (the engine's store thread), like the jobs' own.

Loopback by default (``web.host`` in gateway.yaml): the server has no authentication of its
own, so another address is allowed but warned about.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from gateway._config._schema import WebSettings
from gateway._errors import ConfigError, ConfigIssue
from gateway._web._context import CONTEXT, WebContext
from gateway._web._dashboard import DashboardContext, add_dashboard_routes, runtime_state_of
from gateway._web._health import add_health_routes
from gateway._web._hosts import host_guard, host_names
from gateway._web._metrics import add_metrics_routes

log = structlog.get_logger("gateway.web")

AddRoutes = Callable[[web.Application, WebContext], None]


def add_daemon_dashboard(app: web.Application, context: WebContext) -> None:
    """The dashboard (``/``, ``/dashboard...``, ``/static/``) on this daemon's engine: its store
    thread, its clock, its breakers and budgets, its metrics, ``settings.dashboard`` of the config."""
    add_dashboard_routes(
        app,
        DashboardContext.from_config(
            context.config,
            context.store,
            clock=context.clock,
            runtime_state=runtime_state_of(context.engine),
            deadline_counts=context.deadline_counts,
            deadline_due_within=context.due_within,
            async_store=context.db,
            own_figures=context.metrics.own_figures,
        ),
    )


#: The daemon's routes: /healthz and /readyz, /metrics, the dashboard.
ROUTES: tuple[AddRoutes, ...] = (add_health_routes, add_metrics_routes, add_daemon_dashboard)


def build_app(context: WebContext, routes: Sequence[AddRoutes] = ROUTES) -> web.Application:
    """The application with each adder's routes; ``request.app[CONTEXT]`` is ``context``. A
    request naming another server in ``Host`` is refused (:mod:`gateway._web._hosts`)."""
    app = web.Application(middlewares=[host_guard(host_names(context.config.settings))])
    app[CONTEXT] = context
    for add in routes:
        add(app, context)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class WebServer:
    """Serves ``app`` on ``host``:``port`` (0: any free port) from :meth:`start` to :meth:`stop`,
    in the running event loop. ``config_path`` is named in the error when the address is taken."""

    def __init__(self, app: web.Application, host: str, port: int, *, config_path: Path | str = "gateway.yaml"):
        self.app = app
        self.host = host
        self.port = port
        self.config_path = str(config_path)
        self.address: tuple[str, int] | None = None  # as bound, once started
        self.fell_back = False  # the port asked for was taken and a free one was used instead
        self._runner: web.AppRunner | None = None

    @classmethod
    def for_settings(
        cls, context: WebContext, settings: WebSettings, *, routes: Sequence[AddRoutes] = ROUTES
    ) -> WebServer:
        return cls(build_app(context, routes), settings.host, settings.port, config_path=context.config.path)

    @property
    def url(self) -> str:
        """The server's root, such as ``http://127.0.0.1:8780/`` (once started)."""
        if self.address is None:
            raise RuntimeError("the server is not started")
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    async def start(self, *, any_port_if_taken: bool = False) -> None:
        """Listen. A port in use is a :class:`ConfigError` naming the address and the key
        (``any_port_if_taken``: take a free port instead, as the demo does)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await self._listen(runner, self.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and any_port_if_taken and self.port != 0:
                try:
                    await self._listen(runner, 0)
                except OSError as again:
                    await runner.cleanup()
                    raise self._refused(again) from None
                self.fell_back = True
            else:
                await runner.cleanup()
                raise self._refused(exc) from None
        self._runner = runner
        bound = runner.addresses[0]  # the port taken, when 0 was asked for
        self.address = (str(bound[0]), int(bound[1]))
        if not is_loopback(self.host):
            log.warning(
                "serving HTTP beyond this machine: the metrics and the dashboard have no authentication of their "
                "own; put a reverse proxy with authentication in front, or set web.host: 127.0.0.1",
                host=self.host,
            )
        log.info("serving HTTP", url=self.url)

    async def _listen(self, runner: web.AppRunner, port: int) -> None:
        await web.TCPSite(runner, self.host, port).start()

    def _refused(self, exc: OSError) -> ConfigError:
        where = f"{self.host}:{self.port}"
        reason = exc.strerror or type(exc).__name__
        if exc.errno == errno.EADDRINUSE:
            key, reason = (
                "web.port",
                (
                    "the address is in use (another gateway, or another program); choose another port, 0 for any "
                    "free one, or set web.enabled: false"
                ),
            )
        elif exc.errno == errno.EACCES:
            key, reason = "web.port", f"{reason} (a port below 1024 needs privileges)"
        else:  # not an address of this machine, or a name that does not resolve
            key = "web.host"
        what = f"cannot serve HTTP on {where}: {reason}"
        return ConfigError([ConfigIssue(self.config_path, None, key, what)])

    def announcement(self) -> str:
        """One line for the terminal: where to look (once started)."""
        dashboard = any(resource.canonical == "/" for resource in self.app.router.resources())
        line = (
            f"dashboard: {self.url}dashboard  (and /metrics, /healthz, /readyz)"
            if dashboard
            else f"metrics and health: {self.url}metrics  (/healthz, /readyz)"
        )
        if self.fell_back:
            line += f"; port {self.port} was taken, so a free one"
        return line

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
