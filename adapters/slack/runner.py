"""Running the Slack adapter: HTTP mode (POST /slack/events) or Socket Mode, plus /healthz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from adapters.quiet_log import QuietLog
from adapters.slack.budget import SlackBudget
from adapters.slack.files import SlackFiles
from adapters.slack.gate import Refused, screen
from adapters.slack.listeners import build_app
from adapters.slack.mentions import SlackBot
from adapters.slack.settings import SlackSettings, load_slack_settings
from adapters.slack.web import SlackWeb, make_client
from bot.assembly import Core
from bot.errors import ConfigError
from bot.readiness import Readiness

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


def events_handler(
    app: AsyncApp, signing_secret: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /slack/events`: screened (signature, size, shape), then handed to slack_bolt."""
    verifier = SignatureVerifier(signing_secret)
    refusals = QuietLog(log)

    async def events(request: web.Request) -> web.Response:
        try:
            body = screen(await request.read(), request.headers, verifier)
        except Refused as refused:
            refusals.say(logging.WARNING, "refused a request to %s: %s", EVENTS_PATH, refused)
            return web.Response(status=refused.status, text=str(refused))
        try:
            bolt_request = AsyncBoltRequest(
                body=body, query=request.query_string, headers=dict(request.headers)
            )
            return await to_aiohttp_response(await app.async_dispatch(bolt_request))
        except Exception as exc:  # signed, but a shape slack_bolt could not read
            refusals.say(logging.WARNING, "could not read a signed request (%s: %s)",
                         type(exc).__name__, exc)  # fmt: skip
            return web.Response(status=200)

    return events


def http_app(
    app: AsyncApp | None,
    ready: asyncio.Event,
    readiness: Readiness | None = None,
    signing_secret: str | None = None,
) -> web.Application:
    """The aiohttp application: Slack's endpoint (HTTP mode only), liveness and readiness."""

    async def health(_: web.Request) -> web.Response:
        if ready.is_set():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False}, status=503)

    async def readyz(_: web.Request) -> web.Response:
        report = readiness.report() if readiness is not None else {"ready": ready.is_set()}
        return web.json_response(report, status=200 if report["ready"] else 503)

    server = web.Application(client_max_size=2 * 1024 * 1024)
    if app is not None and signing_secret:
        server.router.add_post(EVENTS_PATH, events_handler(app, signing_secret))
    server.router.add_get("/healthz", health)
    server.router.add_get("/readyz", readyz)
    return server


async def start_bot(core: Core, settings: SlackSettings) -> tuple[SlackBot, AsyncApp]:
    assert settings.bot_token is not None
    client = make_client(settings.bot_token.get_secret_value(), settings.api_url)
    web_api = SlackWeb(client)
    try:
        identity = await web_api.identity()
    except SlackApiError as exc:
        await web_api.close()
        raise ConfigError(
            "SLACK_BOT_TOKEN", f"was rejected by Slack ({exc.response.get('error')})"
        ) from None
    web_api.budget = SlackBudget(core.budget, identity.team_id)
    core.engine.files.register("slack", SlackFiles(settings.bot_token.get_secret_value()))
    bot = SlackBot(core.engine, core.claims, web_api, identity, settings, core.channel_log,
                   core.readiness, core.feedback)  # fmt: skip
    secret = settings.signing_secret.get_secret_value() if settings.signing_secret else None
    app = build_app(bot, client, None if settings.socket_mode else secret, core.notes)
    log.info("Slack: signed in as %s in team %s", identity.user_id, identity.team_id)
    return bot, app


async def serve(core: Core, options: Mapping[str, str]) -> None:
    """Serve until `core.stopping`; then stop taking events (HTTP: 503 so Slack delivers
    them again elsewhere; Socket Mode: disconnect), drain within the grace period, return."""
    settings = load_slack_settings()
    bot, app = await start_bot(core, settings)
    ready = asyncio.Event()
    runner = web.AppRunner(
        http_app(
            None if settings.socket_mode else app,
            ready,
            core.readiness,
            settings.signing_secret.get_secret_value() if settings.signing_secret else None,
        ),
        access_log=None,
    )
    socket = None
    # With PORT equal to OPS_PORT, the operations server also serves Slack's endpoint.
    shared = core.ops is not None and core.ops.port == settings.port
    try:
        if shared and core.ops is not None:
            if not settings.socket_mode and settings.signing_secret is not None:
                secret = settings.signing_secret.get_secret_value()
                core.ops.mount("POST", EVENTS_PATH, events_handler(app, secret))
        else:
            await runner.setup()
            await web.TCPSite(runner, settings.host, settings.port).start()
        if settings.socket_mode:
            from adapters.slack.socket import SocketModeHandler

            assert settings.app_token is not None
            socket = SocketModeHandler(app, settings.app_token.get_secret_value(), bot)
            await socket.connect_async()  # type: ignore[no-untyped-call]
            core.readiness.watch("slack", _socket_probe(socket))
            log.info("Slack: connected in Socket Mode")
        else:
            core.readiness.up("slack")
            log.info("Slack: listening on %s:%d%s", settings.host, settings.port, EVENTS_PATH)
        if core.recovery is not None:
            core.recovery.register("slack", bot.settle)
        ready.set()
        await core.stopping.wait()
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
            socket = None
        await bot.tasks.drain(core.settings.shutdown_grace)
    finally:
        ready.clear()
        core.readiness.unwatch("slack")
        if core.recovery is not None:
            core.recovery.unregister("slack")
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        await bot.tasks.drain(0, last_words=2.0)
        await core.engine.files.unregister("slack")
        await bot.web.close()
        if core.ops is not None:
            core.ops.unmount("POST", EVENTS_PATH)
        await runner.cleanup()


def _socket_probe(socket: Any) -> Callable[[], str | None]:
    def probe() -> str | None:
        # the client's is_connected() is a coroutine; its current session says the same at once
        session = getattr(getattr(socket, "client", None), "current_session", None)
        if session is None or session.closed:
            return "the Socket Mode connection is down"
        return None

    return probe
