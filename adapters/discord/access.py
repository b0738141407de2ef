"""Who may read which Discord channel or thread, for `/ask in:#channel` and `/ask everywhere`:
the asker's `view_channel` and `read_message_history` there, from the guild's roles and the
channel's overwrites (the GUILDS intent keeps both), with the member fetched over REST when it is
not cached (no privileged members intent). A private thread also needs the asker among its
members (or Manage Threads). Answers are trusted a minute at most."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import discord

log = logging.getLogger(__name__)

TTL = 60.0  # seconds an answer about a member or a channel is trusted
MOST = 50_000  # answers kept before the expired ones are dropped

Readable = discord.abc.GuildChannel | discord.Thread


async def may_read(
    member: discord.Member, channel: Readable, parent: discord.abc.GuildChannel | None = None
) -> bool:
    """The member may read the channel's (or thread's) history: `view_channel` and
    `read_message_history` there (a thread's are its parent's: `parent`, when the guild's
    cache does not hold it), and a private thread's membership (or Manage Threads)."""
    place = parent if parent is not None and isinstance(channel, discord.Thread) else channel
    allowed = place.permissions_for(member)
    if not (allowed.view_channel and allowed.read_message_history):
        return False
    if isinstance(channel, discord.Thread) and channel.is_private():
        if allowed.manage_threads:
            return True
        try:
            await channel.fetch_member(member.id)
        except discord.NotFound:
            return False
    return True


class DiscordAccess:
    def __init__(self, client: discord.Client, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._clock = clock
        self._members: dict[tuple[int, int], tuple[discord.Member | None, float]] = {}
        self._reads: dict[tuple[int, int], tuple[bool, float]] = {}
        self._fetching: dict[tuple[int, int], asyncio.Future[discord.Member | None]] = {}

    def remember(self, person: discord.abc.User) -> None:
        """An interaction's member (with its roles, as Discord sent them) for its guild."""
        if isinstance(person, discord.Member):
            self._members[(person.guild.id, person.id)] = (person, self._clock() + TTL)

    async def member(self, guild: discord.Guild, user_id: int) -> discord.Member | None:
        """The person as a member of `guild` (None: not in it), cached or fetched."""
        cached = guild.get_member(user_id)
        if cached is not None:
            return cached
        now = self._clock()
        known = self._members.get((guild.id, user_id))
        if known is not None and known[1] > now:
            return known[0]
        key = (guild.id, user_id)
        fetching = self._fetching.get(key)
        if fetching is None:  # one fetch for every check waiting on the same member
            fetching = self._fetching[key] = asyncio.ensure_future(self._fetch(guild, user_id))
            fetching.add_done_callback(lambda _: self._fetching.pop(key, None))
        found = await asyncio.shield(fetching)
        if len(self._members) > MOST:
            self._members = {k: v for k, v in self._members.items() if v[1] > now}
        self._members[(guild.id, user_id)] = (found, now + TTL)
        return found

    @staticmethod
    async def _fetch(guild: discord.Guild, user_id: int) -> discord.Member | None:
        try:
            return await guild.fetch_member(user_id)
        except discord.NotFound:
            return None

    def guilds(self) -> list[discord.Guild]:
        return list(self._client.guilds)

    def channel(self, guild_id: int | str, channel_id: int) -> Readable | None:
        if not str(guild_id).isdigit():  # "@me": a DM, no server's channel
            return None
        guild = self._client.get_guild(int(guild_id))
        return guild.get_channel_or_thread(channel_id) if guild is not None else None

    async def can_read(self, user_id: int, guild_id: int | str, channel_id: int) -> bool:
        """The person can read the channel's (or thread's) history now."""
        now = self._clock()
        known = self._reads.get((user_id, channel_id))
        if known is not None and known[1] > now:
            return known[0]
        readable = await self._can_read(user_id, guild_id, channel_id)
        if len(self._reads) > MOST:
            self._reads = {k: v for k, v in self._reads.items() if v[1] > now}
        self._reads[(user_id, channel_id)] = (readable, now + TTL)
        return readable

    async def _can_read(self, user_id: int, guild_id: int | str, channel_id: int) -> bool:
        channel = self.channel(guild_id, channel_id)
        if channel is None:  # gone, or not one the bot can see: nobody is shown it
            return False
        member = await self.member(channel.guild, user_id)
        return member is not None and await may_read(member, channel)

    async def readable(
        self, user_id: int, guild_id: int | str, channels: Sequence[int]
    ) -> list[int]:
        answers = await asyncio.gather(*(self.can_read(user_id, guild_id, c) for c in channels))
        return [c for c, ok in zip(channels, answers, strict=True) if ok]

    def is_public(self, guild_id: int | str, channel_id: int) -> bool:
        """Everyone in the server can read it (@everyone may view it and read its history)."""
        channel = self.channel(guild_id, channel_id)
        if channel is None:
            return False
        if isinstance(channel, discord.Thread) and channel.is_private():
            return False
        allowed = channel.permissions_for(channel.guild.default_role)
        return allowed.view_channel and allowed.read_message_history


async def readable_scopes(user: str, scopes: Sequence[str]) -> list[str]:
    """The channel scopes (discord:GUILD:CHANNEL) the Discord user with id `user` can read now:
    `python -m bot search --as USER`. No gateway here: each server (its roles), the member and
    each channel (its overwrites) are fetched over REST with the bot's token."""
    from adapters.discord.settings import load_discord_settings
    from bot.errors import ConfigError

    if not user.isdigit():
        raise ConfigError("--as", "on Discord it takes a user id (Developer Mode: Copy User ID)")
    settings = load_discord_settings()
    if settings.bot_token is None:
        raise ConfigError("DISCORD_BOT_TOKEN", "--as asks Discord who may read what; set it")
    if settings.api_url:
        discord.http.Route.BASE = settings.api_url.rstrip("/")
    client = discord.Client(intents=discord.Intents.none())
    await client.login(settings.bot_token.get_secret_value())
    by_guild: dict[str, list[str]] = {}
    for scope in scopes:
        _, guild_id, _ = scope.split(":", 2)
        if guild_id.isdigit():  # direct messages are never logged
            by_guild.setdefault(guild_id, []).append(scope)
    readable: list[str] = []
    try:
        for guild_id, mine in by_guild.items():
            readable += await _readable_in(client, int(guild_id), int(user), mine)
    finally:
        await client.close()
    return [scope for scope in scopes if scope in readable]


async def _readable_in(
    client: discord.Client, guild_id: int, user_id: int, scopes: Sequence[str]
) -> list[str]:
    try:
        guild = await client.fetch_guild(guild_id)
        member = await guild.fetch_member(user_id)
    except (discord.NotFound, discord.Forbidden):
        return []  # the bot left the server, or the person is not in it
    readable = []
    for scope in scopes:
        try:
            channel = await guild.fetch_channel(int(scope.rsplit(":", 1)[-1]))
            parent = None
            if isinstance(channel, discord.Thread):
                fetched = await guild.fetch_channel(channel.parent_id)
                parent = fetched if not isinstance(fetched, discord.Thread) else None
        except (discord.NotFound, discord.Forbidden, discord.InvalidData):
            continue  # gone, hidden from the bot, or not this server's: nobody is shown it
        if isinstance(channel, discord.Thread) and parent is None:
            continue
        if await may_read(member, channel, parent):
            readable.append(scope)
    return readable
