"""Running the Discord adapter: log in, connect to the gateway, serve until cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import discord

from adapters.discord.client import DiscordClient
from adapters.discord.files import DiscordFiles
from adapters.discord.mentions import DiscordBot
from adapters.discord.settings import DiscordSettings, load_discord_settings
from bot.assembly import Core
from bot.errors import ConfigError

log = logging.getLogger(__name__)

INTENT_HELP = (
    "the Message Content intent is not enabled for this bot; turn it on in the Developer "
    "Portal under Bot → Privileged Gateway Intents → Message Content Intent"
)


def make_client(core: Core, settings: DiscordSettings, **options: Any) -> DiscordClient:
    if settings.api_url:
        discord.http.Route.BASE = settings.api_url.rstrip("/")
    core.engine.files.register("discord", DiscordFiles())
    bot = DiscordBot(
        core.engine,
        core.claims,
        core.notes,
        settings,
        core.settings.retention_seconds,
        channel_log=core.channel_log,
        readiness=core.readiness,
    )
    if settings.shard_count is not None:
        options.setdefault("shard_count", settings.shard_count)
        options.setdefault("shard_ids", settings.shard_ids)
    # A text bot joins no voice channel: discord.py's warnings about voice libraries are noise.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    return DiscordClient(bot, api_url=settings.api_url, **options)


async def run_client(
    client: DiscordClient, token: str, *, stopping: asyncio.Event | None = None, grace: float = 8.0
) -> None:
    """Run until the gateway ends for good or `stopping` is set; then drain within `grace`."""
    stop = stopping or asyncio.Event()
    try:
        async with client:
            gateway = asyncio.create_task(client.start(token), name="discord-gateway")
            waiter = asyncio.create_task(stop.wait(), name="discord-stop")
            try:
                await asyncio.wait({gateway, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if gateway.done():
                    gateway.result()  # raises what ended the connection
                    return
                # Stop taking work (on_message drops it), let answers finish, then disconnect.
                await client.bot.tasks.drain(grace)
            finally:
                waiter.cancel()
                if not gateway.done():
                    await client.close()
                    await asyncio.wait({gateway}, timeout=5)
    except discord.LoginFailure:
        raise ConfigError(
            "DISCORD_BOT_TOKEN", "was rejected by Discord (401 Unauthorized)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("DISCORD_BOT_TOKEN", INTENT_HELP) from None
    finally:
        await client.bot.tasks.drain(0, last_words=2.0)


async def serve(core: Core, options: Mapping[str, str]) -> None:
    settings = load_discord_settings()
    assert settings.bot_token is not None
    client = make_client(core, settings)
    core.readiness.watch("discord", client.down_reason)
    if core.recovery is not None:
        core.recovery.register("discord", client.bot.settle)
    try:
        await run_client(
            client,
            settings.bot_token.get_secret_value(),
            stopping=core.stopping,
            grace=core.settings.shutdown_grace,
        )
    finally:
        await core.engine.files.unregister("discord")
        core.readiness.unwatch("discord")
        if core.recovery is not None:
            core.recovery.unregister("discord")
