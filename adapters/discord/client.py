"""The discord.py client: gateway events in, `DiscordBot` calls out."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import yarl

from adapters.discord.bot import DiscordBot
from adapters.discord.commands import build_tree, sync_if_changed
from adapters.discord.sink import NO_PINGS

log = logging.getLogger(__name__)

# Exactly what the bot needs, for the invite URL logged at start-up.
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
)


def intents() -> discord.Intents:
    wanted = discord.Intents.default()
    wanted.message_content = True  # privileged: enable it in the Developer Portal
    return wanted


class DiscordClient(discord.Client):
    def __init__(self, bot: DiscordBot, *, api_url: str | None = None, **options: Any) -> None:
        super().__init__(intents=intents(), allowed_mentions=NO_PINGS, **options)
        self.bot = bot
        self.api_url = api_url
        self.tree = build_tree(self)
        self.ready = asyncio.Event()

    async def setup_hook(self) -> None:
        if self.api_url:
            # A Discord-compatible server names its own gateway, as Discord does.
            _, url, _ = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.bot.me = self.user
        await sync_if_changed(self)
        if self.application_id:
            invite = discord.utils.oauth_url(
                self.application_id,
                permissions=PERMISSIONS,
                scopes=("bot", "applications.commands"),
            )
            log.info("Discord: invite the bot with %s", invite)

    async def on_ready(self) -> None:
        self.bot.me = self.user
        self.ready.set()
        log.info("Discord: connected as %s to %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        self.bot.on_message(message)

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        self.bot.on_delete(event)
