"""Running the Discord adapter: log in, connect to the gateway, serve until cancelled."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import discord

from adapters.discord.bot import DiscordBot
from adapters.discord.client import DiscordClient
from adapters.discord.settings import DiscordSettings, load_discord_settings
from bot.core import Core
from bot.errors import ConfigError
from bot.settings import read_settings

log = logging.getLogger(__name__)

INTENT_HELP = (
    "the Message Content intent is not enabled for this bot; turn it on in the Developer "
    "Portal under Bot → Privileged Gateway Intents → Message Content Intent"
)


def make_client(core: Core, settings: DiscordSettings, **options: Any) -> DiscordClient:
    if settings.api_url:
        discord.http.Route.BASE = settings.api_url.rstrip("/")
    bot = DiscordBot(
        core.engine,
        core.claims,
        core.notes,
        settings,
        core.settings.retention_seconds,
        channel_log=core.channel_log,
    )
    return DiscordClient(bot, api_url=settings.api_url, **options)


async def run_client(client: DiscordClient, token: str) -> None:
    try:
        async with client:
            await client.start(token)
    except discord.LoginFailure:
        raise ConfigError(
            "DISCORD_BOT_TOKEN", "was rejected by Discord (401 Unauthorized)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("DISCORD_BOT_TOKEN", INTENT_HELP) from None
    finally:
        await client.bot.tasks.idle()


class DiscordAdapter:
    name = "discord"
    interactive = False

    def configured(self) -> bool:
        try:
            return read_settings(DiscordSettings).bot_token is not None
        except Exception:
            return True  # let serve() report the invalid setting

    def requirement(self) -> str:
        return "set DISCORD_BOT_TOKEN for Discord"

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        settings = load_discord_settings()
        assert settings.bot_token is not None
        await run_client(make_client(core, settings), settings.bot_token.get_secret_value())


ADAPTER = DiscordAdapter()
