"""The operations endpoint of `python -m bot run`, whichever platforms run: `/healthz`
(liveness), `/readyz` (readiness, naming what is down) and `/metrics` (Prometheus).

Served on OPS_PORT. Slack's HTTP mode keeps `/slack/events` on PORT; when the two ports are the
same, Slack mounts its endpoint here instead of opening a second server.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bot.errors import ConfigError
from bot.readiness import Readiness

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OpsServer:
    def __init__(self, readiness: Readiness, host: str, port: int) -> None:
        self.readiness = readiness
        self.host = host
        self.port = port
        self._mounted: dict[tuple[str, str], Handler] = {}
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_route("*", "/{path:.*}", self._other)
        return app

    def mount(self, method: str, path: str, handler: Handler) -> None:
        """Serve `handler` at `path` too (an adapter sharing this port); `unmount` when it stops."""
        self._mounted[(method.upper(), path)] = handler

    def unmount(self, method: str, path: str) -> None:
        self._mounted.pop((method.upper(), path), None)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self.stop()
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    "OPS_PORT",
                    f"port {self.port} on {self.host} is in use (another bot on this host?); "
                    "set OPS_PORT to a free port, or 0 to serve no operations endpoint",
                ) from None
            raise ConfigError("OPS_HOST", f"cannot listen on {self.host}: {exc.strerror}") from None
        log.info("operations endpoint on %s:%d (/healthz, /readyz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _ready(self, _: web.Request) -> web.Response:
        report = self.readiness.report()
        return web.json_response(report, status=200 if report["ready"] else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _other(self, request: web.Request) -> web.StreamResponse:
        handler = self._mounted.get((request.method, request.path))
        if handler is None:
            if not self.readiness.report()["ready"]:  # an adapter may not have mounted it yet:
                # a platform retries a 503 (Slack re-sends the event), not a 404
                return web.Response(status=503, text="starting", headers={"Retry-After": "1"})
            return web.Response(status=404, text="not found")
        return await handler(request)
