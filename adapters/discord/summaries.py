"""The summary half of the Discord bot: the channel log, history for its gaps, summaries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import discord

from adapters.channel_window import window_messages
from adapters.discord.files import attachment_refs
from adapters.discord.sink import DiscordSink
from adapters.streaming import StreamingReply
from bot.conversation import ThreadRef
from bot.engine import ConversationEngine
from bot.errors import BotError
from bot.store.keys import channel_scope
from bot.summaries.channel_log import ChannelLog, ChannelLogEntry
from bot.summaries.sources import SourceMessage
from bot.summaries.windows import Window
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

HISTORY_MOST = 2000  # messages read for one summary at the most


def scope_of(guild_id: int | str, channel_id: int) -> str:
    """A channel's (or a thread's) name for its log and its messages' claims."""
    return channel_scope("discord", str(guild_id), str(channel_id))


def thread_in(
    guild_id: int | str | None, parent_id: int | str | None, thread_id: int | str
) -> ThreadRef:
    """A conversation in a Discord thread: a channel of its own under its parent channel, so its
    messages are logged (and its keys kept) with the thread, not the parent."""
    return ThreadRef("discord", str(guild_id), str(parent_id), str(thread_id), place=str(thread_id))


def thread_home(ref: ThreadRef) -> ThreadRef:
    """`ref` as this adapter makes it now, for a conversation stored before threads had a place
    (bot.store.migrate): a thread named by a snowflake is a Discord thread."""
    if ref.platform == "discord" and not ref.place and ref.thread.isdigit():
        return thread_in(ref.workspace, ref.channel, ref.thread)
    return ref


def is_thread(channel: object) -> bool:
    return isinstance(channel, discord.Thread)


def guild_id_of(message: discord.Message) -> int | None:
    """The server a message was sent in; None only for real DMs. A server discord.py has not
    cached (still loading, or too large) gives no `guild`, but its channel knows the id."""
    if message.guild is not None:
        return message.guild.id
    guild_id = getattr(message.channel, "guild_id", None)
    return int(guild_id) if guild_id else None


class ChannelSummaries:
    """Mixed into DiscordBot, which provides what is declared here."""

    engine: ConversationEngine
    channel_log: ChannelLog | None
    me: discord.ClientUser | None

    def text_of(self, message: discord.Message) -> str:
        raise NotImplementedError

    def reply(self, sink: DiscordSink, channel_id: int, placeholder: str) -> StreamingReply:
        raise NotImplementedError

    async def fail(self, reply: StreamingReply, error: BaseException) -> None:
        raise NotImplementedError

    def source_of(self, message: discord.Message) -> SourceMessage:
        me = self.me.id if self.me else 0
        mine = message.author.id == me
        return SourceMessage(
            message_id=str(message.id),
            author=self.engine.config.bot_name if mine else message.author.display_name,
            text=self.text_of(message),
            at=message.created_at,
            link=message.jump_url,
            author_id=str(message.author.id),
        )

    def log_entry(self, message: discord.Message) -> ChannelLogEntry | None:
        """A person's server message as an entry of its channel's log, for summaries later."""
        guild_id = guild_id_of(message)
        if self.channel_log is None or guild_id is None or not message.content.strip():
            return None
        scope = scope_of(guild_id, message.channel.id)
        return ChannelLogEntry(self.channel_log, scope, self.source_of(message))

    async def backfill_guild(self, guild: discord.Guild) -> int:
        """The bot joined a server: each text channel's recent history it may read, as far back
        as the log keeps (BOT_CHANNEL_LOG_DAYS, at most BOT_CHANNEL_LOG_MAX), read page by page
        (discord.py waits out the rate limits) into the channel logs, so /ask and grounded
        answers know it at once. People's messages only, each once. Returns how many."""
        log_ = self.channel_log
        if log_ is None:
            return 0
        after = datetime.now(UTC) - timedelta(seconds=log_.retention_seconds)
        added = 0
        for channel in guild.text_channels:
            if not channel.permissions_for(guild.me).read_message_history:
                continue
            scope = scope_of(guild.id, channel.id)
            try:
                sources = [
                    self.source_of(message)
                    async for message in channel.history(
                        limit=log_.max_messages, after=after, oldest_first=True
                    )
                    if not message.author.bot and message.content.strip()
                    and message.type in (discord.MessageType.default, discord.MessageType.reply)
                ]  # fmt: skip
            except discord.HTTPException as exc:
                log.warning("could not read the history of %s: %s", channel.id, exc)
                continue
            known = await log_.logged_ids(scope)
            fresh = [s for s in sources if s.message_id not in known]
            await log_.record_many(scope, fresh)
            added += len(fresh)
        log.info("joined %s: logged %d earlier messages", guild.id, added)
        return added

    async def log_message(self, message: discord.Message) -> None:
        """Keep a person's server message in the channel log, for summaries later."""
        entry = self.log_entry(message)
        if entry is None:
            return
        try:
            await entry.write()
        except BotError as exc:
            log.warning("could not log message %s: %s", message.id, exc)

    async def channel_sources(
        self, channel: discord.abc.Messageable, window: Window, *, since: datetime | None = None
    ) -> list[SourceMessage]:
        """Messages of a channel or thread in the window: the log first, history for the rest."""
        me = self.me.id if self.me else 0

        async def fetch(
            oldest: datetime | None, latest: datetime | None, most: int
        ) -> list[SourceMessage]:
            found = [
                m
                async for m in channel.history(
                    limit=most, after=oldest, before=latest, oldest_first=False
                )
            ]
            found.reverse()
            usable = [
                m for m in found if m.content.strip() and not (m.author.bot and m.author.id != me)
            ]
            return [self.source_of(m) for m in usable if m.author.id != me or is_thread(channel)]

        guild = getattr(channel, "guild", None)
        if guild is None:
            return await fetch(None, None, window.count or HISTORY_MOST)
        scope = scope_of(guild.id, getattr(channel, "id", 0))
        most = self.engine.summarizer.config.max_messages + 1  # so an over-long window says so
        return await window_messages(self.channel_log, scope, window, fetch, since=since, most=most)

    async def summary_of(
        self,
        channel: discord.abc.Messageable,
        ref: ThreadRef | None,
        window: Window,
        *,
        requester: str | None = None,
        since_last: bool = False,
    ) -> str:
        channel_id = getattr(channel, "id", 0)
        if ref is not None and await self.engine.knows(ref):
            prefix = f"https://discord.com/channels/{ref.workspace}/{channel_id}/"
            summary = await self.engine.summarize(
                ref, link_for=lambda message_id: prefix + message_id, requester=requester
            )
            return summary.text
        server = getattr(channel, "guild", None)
        scope = scope_of(server.id, channel_id) if server else f"discord:dm:{channel_id}"
        since = (
            await self.engine.summary_since(scope, requester) if since_last and requester else None
        )
        sources = await self.channel_sources(channel, window, since=since)
        if not sources:
            described = "what happened since your last summary" if since else window.describe()
            return f"Nobody wrote anything here in {described}."
        summary = await self.engine.summarize_sources(sources, scope=scope, requester=requester)
        return summary.text

    async def summarize_here(
        self, message: discord.Message, ref: ThreadRef, *, known: bool
    ) -> None:
        """`@bot summarize`: the documents attached to it or to the message it replies to, else
        the thread it is said in, or the channel's last day."""
        reply = self.reply(
            DiscordSink(message.channel, reply_to=message), message.channel.id, "*Summarizing…*"
        )
        resolved = message.reference.resolved if message.reference else None
        documents = attachment_refs(message) or (
            attachment_refs(resolved) if isinstance(resolved, discord.Message) else ()
        )
        asker = message.author
        payer = Payer("discord", ref.workspace, ref.channel, str(asker.id), asker.display_name)
        try:
            await reply.start()
            async with self.engine.counted_to(payer):
                if documents:
                    text = (await self.engine.summarize_files(documents)).text
                elif is_thread(message.channel) or guild_id_of(message) is None:
                    whole = Window(seconds=None, count=HISTORY_MOST)
                    text = await self.summary_of(message.channel, ref, whole)
                else:
                    text = await self.summary_of(message.channel, None, Window())
            await reply.feed(text)
            await reply.finish()
        except Exception as exc:
            await self.fail(reply, exc)
