"""Application commands: /summarize, /usage and /forget, and syncing them only when they change."""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands

from adapters.discord.access import DiscordAccess
from adapters.discord.mentions import FORGOTTEN, DiscordBot, failure_sentence
from adapters.discord.sink import MESSAGE_LIMIT, NO_PINGS
from adapters.discord.summaries import scope_of, thread_in
from adapters.rendering import split_message
from bot.conversation import ThreadRef
from bot.errors import BotError, InvalidRequest, StoreUnavailable
from bot.search.ask_args import AskRequest, parse_ask
from bot.store.kv import Notes
from bot.summaries.windows import parse_summary_args
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

NOT_READABLE = "You cannot read {where}, so I will not search it for you."
NAME_IT = "Name the channel as a link (type # and pick it), so I know which one you mean."
NOTHING_READABLE = "There is no channel I keep a history of that you can read."
ONLY_YOU = "*Only you see this: it draws on channels not everyone here can read.*\n\n"

USAGE = (
    "Usage: /summarize window:<30m | 2h | 3d | 200> public:<True | False> — the window is a time "
    "or a number of messages (default: 24h); public posts the summary for everyone (default: "
    "only you see it)."
)
SYNC_TTL = 365 * 86_400


def payer_of(interaction: discord.Interaction) -> Payer:
    """Who a command's model calls are counted to, in the channel answers count to (a thread's
    parent; a DM's own channel)."""
    ref = conversation_of(interaction)
    workspace = str(interaction.guild_id) if interaction.guild_id is not None else "@me"
    channel = ref.channel if ref is not None else str(interaction.channel_id or "")
    user = interaction.user
    return Payer("discord", workspace, channel, str(user.id), user.display_name)


def conversation_of(interaction: discord.Interaction) -> ThreadRef | None:
    channel = interaction.channel
    if interaction.guild_id is None and interaction.channel_id is not None:
        return ThreadRef("discord", "@me", str(interaction.channel_id), "dm")
    if isinstance(channel, discord.Thread):
        return thread_in(interaction.guild_id, channel.parent_id, channel.id)
    return None


async def ask_targets(
    bot: DiscordBot, access: DiscordAccess, interaction: discord.Interaction, request: AskRequest
) -> tuple[list[tuple[int | str, int]], str]:
    """The (guild, channel) pairs to search and how to name them; InvalidRequest when the asker
    may not. The channel asked in is readable by whoever asked there (Discord let them)."""
    here, guild = interaction.channel_id or 0, interaction.guild_id
    user = interaction.user.id
    access.remember(interaction.user)
    name = getattr(interaction.channel, "name", None)
    if request.everywhere:
        guilds = [guild] if guild is not None else [g.id for g in access.guilds()]
        found: list[tuple[int | str, int]] = [(guild, here)] if guild is not None else []
        for server in guilds:
            logged = await bot.engine.logged_channels(f"{scope_of(server, 0).rsplit(':', 1)[0]}:")
            ids = [int(s.rsplit(":", 1)[-1]) for s in logged if s.rsplit(":", 1)[-1].isdigit()]
            readable = await access.readable(user, server, [c for c in ids if c != here])
            found += [(server, c) for c in readable]
        if not found:
            raise InvalidRequest(NOTHING_READABLE)
        count = len(found)
        return found, f"the {count} channel{'s' if count != 1 else ''} you can read"
    if request.channel and request.channel != str(here):
        if not request.channel.isdigit():
            raise InvalidRequest(NAME_IT)
        where = f"<#{request.channel}>"
        if guild is None or not await access.can_read(user, guild, int(request.channel)):
            raise InvalidRequest(NOT_READABLE.format(where=where))
        return [(guild, int(request.channel))], where
    return [(guild if guild is not None else "@me", here)], f"#{name}" if name else "here"


async def readable_channel(
    client: discord.Client, interaction: discord.Interaction
) -> discord.abc.Messageable:
    """The interaction's channel, fetched when the payload only carried a partial one."""
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable) and not isinstance(
        channel, discord.PartialMessageable
    ):
        return channel
    assert interaction.channel_id is not None
    fetched = await client.fetch_channel(interaction.channel_id)
    if not isinstance(fetched, discord.abc.Messageable):
        raise InvalidRequest("I cannot read messages in this kind of channel.")
    return fetched


def build_tree(client: discord.Client, bot: DiscordBot) -> app_commands.CommandTree[discord.Client]:
    """The commands of `bot`, on `client`'s tree."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    access = DiscordAccess(client)

    @tree.command(name="summarize", description="Summarize the recent conversation here")
    @app_commands.describe(
        window="How far back: 30m, 2h, 3d, or a number of messages such as 200 (default 24h)",
        public="Post the summary for everyone (default: only you see it)",
    )
    async def summarize(
        interaction: discord.Interaction, window: str | None = None, public: bool = False
    ) -> None:
        try:
            request = parse_summary_args(window or "", usage=USAGE)
        except InvalidRequest as exc:
            await interaction.response.send_message(exc.user_message(), ephemeral=True)
            return
        public = public or request.public
        await interaction.response.defer(thinking=True, ephemeral=not public)
        try:
            channel = await readable_channel(client, interaction)
            async with bot.engine.counted_to(payer_of(interaction)):
                text = await bot.summary_of(channel, conversation_of(interaction), request.window)
        except Exception as exc:
            log.warning("summary failed: %s", exc)
            text = failure_sentence(exc)
            public = False
        for chunk in split_message(text, MESSAGE_LIMIT):
            await interaction.followup.send(chunk, ephemeral=not public, allowed_mentions=NO_PINGS)

    @tree.command(name="usage", description="Your token usage and what is left today")
    async def usage(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        try:
            text = await bot.engine.quotas.report(
                payer_of(interaction), channel_label=lambda channel: f"<#{channel}>"
            )
        except Exception as exc:
            log.warning("usage report failed: %s", exc)
            text = failure_sentence(exc)
        for chunk in split_message(text, MESSAGE_LIMIT):
            await interaction.followup.send(chunk, ephemeral=True, allowed_mentions=NO_PINGS)

    @tree.command(name="ask", description="Answer from this channel's history, citing it")
    @app_commands.describe(
        question="What to look for in what was said here",
        public="Post the answer for everyone (default: only you see it)",
    )
    async def ask(interaction: discord.Interaction, question: str, public: bool = False) -> None:
        try:
            request = parse_ask(question)
            channels, where = await ask_targets(bot, access, interaction, request)
        except InvalidRequest as exc:
            await interaction.response.send_message(exc.user_message(), ephemeral=True)
            return
        except discord.HTTPException as exc:
            log.warning("/ask could not check who may read what: %s", exc)
            await interaction.response.send_message(failure_sentence(exc), ephemeral=True)
            return
        public, prefix = public or request.public, ""
        here = interaction.channel_id or 0
        others = [c for _, c in channels if c != here]
        if public and not all(access.is_public(g, c) for g, c in channels if c in others):
            # The audience rule: posted here, it may cite only what everyone here can read.
            public, prefix = False, ONLY_YOU
        await interaction.response.defer(thinking=True, ephemeral=not public)
        try:
            answer = await bot.engine.ask(
                request.question, channels=[scope_of(g, c) for g, c in channels], where=where,
                dialect="markdown", payer=payer_of(interaction),
            )  # fmt: skip
            text = prefix + answer.text
        except Exception as exc:
            log.warning("/ask failed: %s", exc)
            text, public = failure_sentence(exc), False
        for chunk in split_message(text, MESSAGE_LIMIT):
            await interaction.followup.send(chunk, ephemeral=not public, allowed_mentions=NO_PINGS)

    @tree.command(name="forget", description="Clear my memory of this thread or DM")
    async def forget(interaction: discord.Interaction) -> None:
        ref = conversation_of(interaction)
        if ref is None:
            await interaction.response.send_message(
                "Use /forget inside a thread I am part of, or in our DM.", ephemeral=True
            )
            return
        try:
            await bot.engine.forget(ref)
            text = FORGOTTEN
        except BotError as exc:
            text = exc.user_message()
        await interaction.response.send_message(text, allowed_mentions=NO_PINGS)

    return tree


def commands_hash(tree: app_commands.CommandTree[discord.Client]) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


async def sync_if_changed(
    tree: app_commands.CommandTree[discord.Client], application_id: int | None, notes: Notes
) -> bool:
    """Sync the command set only when it differs from the last one synced (creates are capped)."""
    digest = commands_hash(tree)
    key = f"discord:commands:{application_id}"
    try:
        if await notes.get(key) == digest:
            log.info("Discord: application commands unchanged (%s); not syncing", digest)
            return False
    except StoreUnavailable as exc:
        log.warning("could not read the synced command set (%s); syncing", exc)
    await tree.sync()
    try:
        await notes.put(key, digest, ttl=SYNC_TTL)
    except StoreUnavailable as exc:
        log.warning("could not remember the synced command set: %s", exc)
    log.info("Discord: application commands synced (%s)", digest)
    return True
