"""Discord messages to core calls: a mention opens a thread and becomes `engine.answer`.

`DiscordClient` (client.py) hands each gateway message to `DiscordBot.on_message`, which
returns at once; the work runs in the background so the gateway keeps flowing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord.conversations import Conversations
from adapters.discord.files import attachment_refs
from adapters.discord.routing import (
    MessageFacts,
    mentions,
    other_mentions,
    route,
    thread_name,
)
from adapters.discord.settings import DiscordSettings
from adapters.discord.sink import MESSAGE_LIMIT, NO_PINGS, DiscordSink, PartialSink
from adapters.discord.summaries import (
    ChannelSummaries,
    guild_id_of,
    is_thread,
    scope_of,
    thread_in,
)
from adapters.intents import Route
from adapters.quiet_log import QuietLog
from adapters.recent import RecentKeys
from adapters.rendering import split_message
from adapters.streaming import (
    SETTLE_PATIENCE,
    ChannelPace,
    StreamingReply,
    end_in_failure,
    expected_at,
    stream_answer,
    unfinished,
)
from adapters.tasks import BackgroundTasks
from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.errors import AnswerCutOff, BotError, Fenced, Interrupted, StoreUnavailable, explain
from bot.logs import bind
from bot.metrics import EVENTS, answered
from bot.readiness import Readiness
from bot.store.claims import Claims, admit, claim_or_here
from bot.store.inflight import PendingAnswer
from bot.store.kv import Notes
from bot.summaries.channel_log import ChannelLog

log = logging.getLogger(__name__)

PLACEHOLDER = "*Thinking…*"
# Messages people write; every other type (pins, joins, thread created, boosts) is a notice.
PERSON_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
FORGOTTEN = "I have forgotten this conversation. Mention me to start again."
NO_THREADS_PAUSE = 600.0  # seconds before trying threads again where they were refused
CHAIN_TTL = 30 * 86_400


def failure_sentence(error: BaseException) -> str:
    if isinstance(error, discord.Forbidden):
        return "I lack a Discord permission for this here; an admin needs to check my role."
    if isinstance(error, discord.HTTPException):
        return f"Discord refused my request ({error.status}); please try again."
    return explain(error)


def well_shaped(message: discord.Message) -> bool:
    """discord.py keeps some fields as the gateway sent them; the bot reads these as text."""
    return (
        isinstance(message.content, str)
        and isinstance(getattr(message.author, "id", None), int)
        and isinstance(getattr(message.type, "value", None), int)  # unknown types keep any value
    )


class DiscordBot(Conversations, ChannelSummaries):
    def __init__(
        self,
        engine: ConversationEngine,
        claims: Claims,
        notes: Notes,
        settings: DiscordSettings,
        retention_seconds: int = CHAIN_TTL,
        channel_log: ChannelLog | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self.readiness = readiness
        self.client: discord.Client | None = None  # set by the client that serves this bot
        self.channel_log = channel_log
        self.engine = engine
        self.claims = claims
        self.notes = notes
        self.settings = settings
        self.retention = retention_seconds
        self.tasks = BackgroundTasks()
        self.odd = QuietLog(log)
        self.pace = ChannelPace(burst=5, period=5.0)
        self.me: discord.ClientUser | None = None
        self.no_threads = RecentKeys(ttl=NO_THREADS_PAUSE)  # channels that refused a thread

    # --- entry points ---------------------------------------------------------------------------

    def on_message(self, message: discord.Message) -> None:
        EVENTS.labels("discord", "message").inc()
        if message.author.bot or message.webhook_id is not None:
            return  # other bots, webhooks and our own echoes: never a loop
        if not well_shaped(message):
            self.odd.say(logging.WARNING, "a message with fields of unexpected types: skipped")
            return
        if message.type not in PERSON_TYPES:
            log.info("system message %s (%s): not a question", message.id, message.type.name)
            return
        if self.stopping:
            log.info("shutting down: message %s not handled", message.id)
            return
        self.tasks.spawn(self.handle(message), name=f"discord-message-{message.id}")

    @property
    def stopping(self) -> bool:
        return self.readiness is not None and self.readiness.stopping

    def on_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        EVENTS.labels("discord", "message_delete").inc()
        self.tasks.spawn(self.forget_message(event), name=f"discord-delete-{event.message_id}")

    def on_guild_join(self, guild: discord.Guild) -> None:
        self.tasks.spawn(self.joined(guild), name=f"discord-join-{guild.id}")

    async def joined(self, guild: discord.Guild) -> None:
        try:
            await self.backfill_guild(guild)
        except BotError as exc:
            log.warning("could not log the history of server %s: %s", guild.id, exc)

    def on_edit(self, event: discord.RawMessageUpdateEvent) -> None:
        """An edited message is logged again with its new text, so search finds what it says
        now (a change that leaves the text as it was, such as an embed appearing, is not)."""
        EVENTS.labels("discord", "message_edit").inc()
        before = event.cached_message
        message = event.message
        if message.author.bot or (before is not None and before.content == message.content):
            return
        self.tasks.spawn(self.log_message(message), name=f"discord-edit-{event.message_id}")

    def facts(self, message: discord.Message, *, known: bool) -> MessageFacts:
        me = self.me.id if self.me else 0
        resolved = message.reference.resolved if message.reference else None
        replied_author = resolved.author if isinstance(resolved, discord.Message) else None
        return MessageFacts(
            content=message.content,
            author_is_bot=message.author.bot,
            is_dm=guild_id_of(message) is None,
            in_thread=is_thread(message.channel),
            mentions_me=mentions(message.content, me),
            replies_to_me=replied_author is not None and replied_author.id == me,
            addressed_to_others=other_mentions(message.content, me)
            or (replied_author is not None and replied_author.id != me),
            thread_known=known,
        )

    async def owns_thread(self, channel: object) -> bool:
        """Whether the bot opened this thread and was not told to forget it. The platform is the
        truth when memory is lost (Redis came back empty): Discord says who opened a thread."""
        if not (
            isinstance(channel, discord.Thread)
            and self.me is not None
            and channel.owner_id == self.me.id
        ):
            return False
        try:
            return await self.notes.get(f"discord:forgotten:{channel.id}") is None
        except BotError:
            return True

    def allowed(self, message: discord.Message) -> bool:
        channel = message.channel
        ids = (channel.id,) + (
            (channel.parent_id,)
            if isinstance(channel, discord.Thread) and channel.parent_id
            else ()
        )
        return self.settings.allows(guild_id_of(message), ids)

    async def handle(self, message: discord.Message) -> None:
        bind(platform="discord", event=str(message.id))
        if not self.allowed(message):
            log.info("message in %s outside the allowlists: ignored", message.channel.id)
            answered("discord", "ignored")
            return
        quick = self.facts(message, known=False)
        if not (quick.is_dm or quick.mentions_me or quick.replies_to_me or quick.in_thread):
            self.tasks.spawn(self.log_message(message), name="discord-log")  # never delays
            return  # channel chatter: logged, nothing to answer
        scope = scope_of(guild_id_of(message) or "@me", message.channel.id)  # its thread's slot
        ref = self.thread_ref(message)
        # Claimed, the log entry and, in a thread, whether the bot is part of it: one trip.
        won, known = await admit(
            self.claims, self.engine.memory, scope, [f"msg:{message.id}"],
            ref if quick.in_thread else None, self.log_entry(message),
        )  # fmt: skip
        if not won:
            log.info("duplicate delivery of message %s dropped", message.id)
            answered("discord", "duplicate")
            return
        if quick.in_thread and not known:
            known = await self.owns_thread(message.channel)
        bind(thread_key=str(ref))
        action = route(self.facts(message, known=known), self.me.id if self.me else 0)
        files = attachment_refs(message)
        if action is Route.ANSWER and self.wordless(message) and not quick.mentions_me:
            if files:  # files dropped in the bot's thread or DM: acknowledged, no model call
                await self.acknowledge_files(message, ref)
                return
            if message.stickers:
                log.info("message %s has only stickers: remembered, not answered", message.id)
                action = Route.OBSERVE
        if action is Route.ANSWER:
            await self.answer(message, known=known)
        elif action is Route.OBSERVE:
            await self.observe(message, ref)
        elif action is Route.FORGET:
            await self.forget(message, ref)
        elif action is Route.SUMMARIZE:
            await self.summarize_here(message, ref, known=known)
        else:
            log.info("message %s is in a thread the bot is not part of: not answered", message.id)
            answered("discord", "ignored")

    # --- answering ------------------------------------------------------------------------------

    def reply(
        self, sink: DiscordSink, channel_id: int, placeholder: str = PLACEHOLDER
    ) -> StreamingReply:
        return StreamingReply(
            sink,
            limit=MESSAGE_LIMIT,
            interval=self.settings.edit_interval,
            placeholder=placeholder,
            gate=self.pace.gate(str(channel_id)),
        )

    async def destination(
        self, message: discord.Message, *, known: bool
    ) -> tuple[ThreadRef, DiscordSink, int]:
        """Where the answer goes: a new thread on a channel mention, else in place."""
        facts = self.facts(message, known=known)
        guild_id = guild_id_of(message)
        channel_id = message.channel.id
        if (
            message.guild is not None
            and not is_thread(message.channel)
            and facts.mentions_me
            and not self.no_threads.seen(channel_id)
        ):
            try:
                thread = await message.create_thread(
                    name=thread_name(self.text_of(message)), auto_archive_duration=1440
                )
                ref = thread_in(guild_id, channel_id, thread.id)
                return ref, DiscordSink(thread), thread.id
            except discord.HTTPException as exc:  # no permission, or a channel without threads
                # Not asked again for a while: each refused call counts against the rate limit.
                self.no_threads.add(channel_id)
                log.info("could not open a thread in %s (%s); replying in place", channel_id, exc)
        if guild_id is not None and not is_thread(message.channel):
            ref = await self.chain_ref(message)
            sink = DiscordSink(
                message.channel,
                reply_to=message,
                on_post=lambda sent: self.remember_chain(ref, sent),
            )
            await self.remember_chain(ref, message)
            return ref, sink, message.channel.id
        return (
            self.thread_ref(message),
            DiscordSink(message.channel, reply_to=message),
            message.channel.id,
        )

    async def answer(self, message: discord.Message, *, known: bool) -> None:
        try:
            ref, sink, channel_id = await self.destination(message, known=known)
        except BotError as exc:
            log.warning("no destination for %s: %s", message.id, exc)
            return
        bind(thread_key=str(ref))  # the thread opened for the answer
        reply = self.reply(sink, channel_id)
        incoming = self.incoming(message, ref)
        where = {"channel": channel_id}
        try:
            # asked before the answer is recorded: a record makes the thread known
            if ref.thread.startswith("reply-") and not await self.engine.knows(ref):
                # The reply chain is read first: the placeholder shows meanwhile, under a
                # record of its own, so a crash while reading is settled too.
                async with self.engine.expecting(incoming, expected_at(reply, where)):
                    try:
                        await reply.start()
                    except discord.HTTPException as exc:
                        log.error("cannot post in %s: %s", channel_id, exc)
                        return
                    shown = {**where, "ids": reply.message_ids}
                    seed = functools.partial(self.seed_chain, message, ref)
                    await self.answer_in(reply, incoming, where, shown, before=seed)
            else:  # the placeholder is posted once the answer's record is (one round trip)
                shown = expected_at(reply, where) or {**where, "ids": []}
                await self.answer_in(reply, incoming, where, shown, show=True)
        except StoreUnavailable as exc:  # the answer could not even be recorded
            await self.fail(reply, exc)

    async def answer_in(
        self,
        reply: StreamingReply,
        incoming: IncomingMessage,
        where: dict[str, Any],
        shown: dict[str, Any],
        *,
        show: bool = False,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Stream the answer into `reply`, recorded as shown at `shown`; with `show`, the
        engine posts the placeholder once that record is written."""
        try:
            if before is not None:
                await before()
            await stream_answer(self.engine, reply, incoming, where, shown, show=show)
        except AnswerCutOff as exc:
            try:
                await reply.finish(note=explain(exc))
            except Fenced as fenced:
                log.warning("answer abandoned: %s", fenced)
        except Fenced as exc:
            log.warning("answer abandoned: %s", exc)
        except asyncio.CancelledError:
            await self.fail(reply, Interrupted("shut down before the answer was finished"))
            raise
        except Exception as exc:
            await self.fail(reply, exc)

    async def settle(self, pending: PendingAnswer) -> None:
        """End a reply that a stopped process left half-written (bot.recovery)."""
        assert self.client is not None
        await asyncio.wait_for(self.client.wait_until_ready(), timeout=60)
        channel = self.client.get_partial_messageable(int(pending.reply.get("channel", 0)))
        ids = [str(i) for i in pending.reply.get("ids", [])]
        if pending.reply.get("posting"):
            ids += await self.unrecorded(channel, pending, ids)
        reply = StreamingReply.resume(
            PartialSink(channel), ids, MESSAGE_LIMIT, patience=SETTLE_PATIENCE
        )
        await reply.fail(Interrupted().user_message())

    async def unrecorded(
        self, channel: discord.PartialMessageable, pending: PendingAnswer, ids: list[str]
    ) -> list[str]:
        """The answer's messages posted as its process died, before their ids were recorded:
        the bot's unfinished messages in the channel after the question."""
        me = self.me.id if self.me else 0
        question = int(pending.message.message_id or 0)
        found = []
        try:
            async for message in channel.history(limit=50, after=discord.Object(question)):
                mine = message.author.id == me and str(message.id) not in ids
                if mine and unfinished(message.content, PLACEHOLDER):
                    found.append(str(message.id))
        except discord.HTTPException as exc:
            log.warning("could not read the interrupted channel: %s", exc)
        return found

    async def fail(self, reply: StreamingReply, error: BaseException) -> None:
        await end_in_failure(
            reply, error, failure_sentence(error), expected=(BotError, discord.HTTPException)
        )

    async def observe(self, message: discord.Message, ref: ThreadRef) -> None:
        try:
            await self.engine.observe(self.incoming(message, ref))
        except BotError as exc:
            log.warning("could not observe %s: %s", message.id, exc)

    async def acknowledge_files(self, message: discord.Message, ref: ThreadRef) -> None:
        try:
            text = await self.engine.acknowledge_files(self.incoming(message, ref))
        except BotError as exc:
            text = explain(exc)
        await self.say(message, text)

    async def say(self, message: discord.Message, text: str) -> None:
        try:
            for chunk in split_message(text, MESSAGE_LIMIT):
                await message.channel.send(chunk, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.error("cannot post in %s: %s", message.channel.id, exc)

    async def forget(self, message: discord.Message, ref: ThreadRef) -> None:
        try:
            await self.engine.forget(
                await self.chain_ref(message) if ref.thread.startswith("reply-") else ref
            )
            if is_thread(message.channel):  # its own thread no longer counts as known
                ttl = self.retention
                await self.notes.put(f"discord:forgotten:{message.channel.id}", "1", ttl=ttl)
            await self.say(message, FORGOTTEN)
        except BotError as exc:
            await self.say(message, explain(exc))

    async def forget_message(self, event: discord.RawMessageDeleteEvent) -> None:
        guild = str(event.guild_id) if event.guild_id else "@me"
        scope = scope_of(event.guild_id or "@me", event.channel_id)  # as the message's claim
        # a deleted message that is still to be handled never is
        await claim_or_here(self.claims, scope, f"msg:{event.message_id}")
        if self.channel_log is not None and event.guild_id:
            try:
                await self.channel_log.remove(
                    scope_of(event.guild_id, event.channel_id), str(event.message_id)
                )
            except BotError as exc:
                log.warning(
                    "could not drop deleted message %s from the log: %s", event.message_id, exc
                )
        candidates = []
        cached = event.cached_message
        if cached is not None and isinstance(cached.channel, discord.Thread):
            candidates.append(thread_in(guild, cached.channel.parent_id, event.channel_id))
        if event.guild_id is None:
            candidates.append(ThreadRef("discord", guild, str(event.channel_id), "dm"))
        try:
            chain = await self.notes.get(f"discord:chain:{event.message_id}")
            if chain:
                candidates.append(ThreadRef("discord", guild, str(event.channel_id), chain))
            for ref in candidates:
                if await self.engine.remove(ref, str(event.message_id)):
                    log.info("removed deleted message %s from %s", event.message_id, ref)
        except BotError as exc:
            log.warning("could not remove deleted message %s: %s", event.message_id, exc)
