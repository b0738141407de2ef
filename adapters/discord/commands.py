"""Application commands: /summarize, /usage and /forget, and syncing them only when they change."""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands

from adapters.discord.mentions import FORGOTTEN, DiscordBot, failure_sentence
from adapters.discord.sink import MESSAGE_LIMIT, NO_PINGS
from adapters.discord.summaries import scope_of, thread_in
from adapters.rendering import split_message
from bot.conversation import ThreadRef
from bot.errors import BotError, InvalidRequest, StoreUnavailable
from bot.search.ask_args import parse_ask
from bot.store.kv import Notes
from bot.summaries.windows import parse_summary_args
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

ONLY_HERE = (
    "For now I search only the channel you ask in: run /ask there (searching another channel or "
    "everywhere needs checks of who may read what that are not built yet)."
)

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
        except InvalidRequest as exc:
            await interaction.response.send_message(exc.user_message(), ephemeral=True)
            return
        if request.everywhere or request.channel:
            await interaction.response.send_message(ONLY_HERE, ephemeral=True)
            return
        public = public or request.public
        await interaction.response.defer(thinking=True, ephemeral=not public)
        guild = interaction.guild_id if interaction.guild_id is not None else "@me"
        channel = interaction.channel
        name = getattr(channel, "name", None)
        try:
            answer = await bot.engine.ask(
                request.question, channels=[scope_of(guild, interaction.channel_id or 0)],
                where=f"#{name}" if name else "here", dialect="markdown",
                payer=payer_of(interaction),
            )  # fmt: skip
            text = answer.text
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
