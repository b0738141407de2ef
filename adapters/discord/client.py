"""The discord.py client: gateway events in, `DiscordBot` calls out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import discord
import yarl

from adapters.api_metrics import api_trace, discord_route
from adapters.discord.commands import build_tree, sync_if_changed
from adapters.discord.mentions import DiscordBot
from adapters.discord.ratelimits import amortize_bucket_sweep
from adapters.discord.sink import NO_PINGS
from adapters.quiet_log import QuietLog

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


def guard_parsers(parsers: dict[str, Callable[[Any], None]]) -> None:
    """A gateway payload discord.py fails to parse (a new field shape, a library bug) would end
    the connection and with it the whole process: log it once per event type and skip it."""
    quiet = QuietLog(log)

    def guarded(event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(data: Any) -> None:
            try:
                parse(data)
            except Exception as exc:
                # One short line now and then, no traceback: odd payloads must not flood the log.
                shape = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
                quiet.say(logging.ERROR, "skipped a %s dispatch discord.py could not read "
                          "(%s: %s; fields %s)", event, type(exc).__name__, exc, shape)  # fmt: skip
                log.debug("the unreadable %s dispatch", event, exc_info=exc)

        return run

    for event, parse in list(parsers.items()):
        parsers[event] = guarded(event, parse)


class DiscordClient(discord.AutoShardedClient):
    """Runs the shards DISCORD_SHARD_IDS names out of DISCORD_SHARD_COUNT, or (neither set) the
    count Discord recommends for the bot's size: one shard for a small bot."""

    def __init__(self, bot: DiscordBot, *, api_url: str | None = None, **options: Any) -> None:
        options.setdefault("http_trace", api_trace("discord", discord_route))  # /metrics
        super().__init__(intents=intents(), allowed_mentions=NO_PINGS, **options)
        amortize_bucket_sweep(self.http)
        self.bot = bot
        bot.client = self
        self.api_url = api_url
        self.tree = build_tree(self, bot)
        self.ready = asyncio.Event()
        self.connected = False
        guard_parsers(self._connection.parsers)

    async def on_connect(self) -> None:
        self.connected = True

    async def on_resumed(self) -> None:
        self.connected = True

    async def on_disconnect(self) -> None:
        self.connected = False

    def down_reason(self) -> str | None:
        """For readiness: None while every shard's gateway connection is up."""
        if self.is_closed():
            return "the gateway connection is closed"
        down = sorted(i for i, shard in self.shards.items() if shard.is_closed())
        if down:
            return f"gateway shard(s) {', '.join(map(str, down))} down"
        return None if self.connected else "the gateway connection is down"

    async def setup_hook(self) -> None:
        if self.api_url:
            # A Discord-compatible server names its own gateway, as Discord does.
            _, url, _ = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.bot.me = self.user
        await sync_if_changed(self.tree, self.application_id, self.bot.notes)
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
        shards = sorted(self.shards) if self.shards else [0]
        log.info("Discord: connected as %s to %d servers (shards %s of %s)", self.user,
                 len(self.guilds), ",".join(map(str, shards)), self.shard_count)  # fmt: skip

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.bot.on_guild_join(guild)

    async def on_message(self, message: discord.Message) -> None:
        self.bot.on_message(message)

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        self.bot.on_delete(event)

    async def on_raw_message_edit(self, event: discord.RawMessageUpdateEvent) -> None:
        self.bot.on_edit(event)
