"""Slack messages to core calls: a mention becomes `engine.answer`, streamed into the thread.

Listeners (adapters/slack/listeners.py) hand payloads to `SlackBot.accept`, which claims the
message and returns within milliseconds; the work runs in the background after Slack has its ack.
Reading threads and logging channels is in history.py, the summaries in summary_sources.py, the
assistant pane in assistant.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.intake import Intake
from adapters.intents import Route
from adapters.recent import RecentKeys
from adapters.slack.access import SlackAccess
from adapters.slack.assistant import NotesContextStore, Pane, pane_intent
from adapters.slack.events import (
    Deletion,
    Edit,
    Ignored,
    SlackMessage,
    read_event,
    readable_text,
    route,
    ts_time,
    workspace_of,
)
from adapters.slack.feedback import answer_blocks, feedback_blocks
from adapters.slack.files import complete_files
from adapters.slack.history import SlackHistory
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.native import NativeReply
from adapters.slack.settings import SlackSettings
from adapters.slack.web import Identity, SlackSink, SlackWeb, api_error_sentence
from adapters.streaming import (
    SETTLE_PATIENCE,
    Reply,
    StreamingReply,
    end_in_failure,
    expected_at,
    stream_answer,
    unfinished,
)
from adapters.tasks import BackgroundTasks
from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.errors import (
    AnswerCutOff,
    BotError,
    Fenced,
    Interrupted,
    StoreFull,
    StoreUnavailable,
    explain,
)
from bot.feedback import FeedbackStore, InProcessFeedback
from bot.logs import bind
from bot.metrics import EVENTS, answered
from bot.readiness import Readiness
from bot.store.claims import Claims, admit, claim_or_here, claim_probing
from bot.store.inflight import PendingAnswer
from bot.store.keys import channel_scope
from bot.summaries.channel_log import ChannelLog, ChannelLogEntry

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 3900  # Slack truncates at 40,000 but reads best under 4,000
PLACEHOLDER = "_Thinking…_"
FORGOTTEN = "I have forgotten this conversation. Mention me to start again."
FINAL_RETRY = 3  # Slack delivers an event at most three more times (X-Slack-Retry-Num 1..3)
SOCKET_RETRY_FOR = 300.0  # seconds an acked Socket Mode event's claim is retried (Slack's window)


EVENT_TYPES = frozenset({"message", "app_mention", "assistant_thread_started",
                         "assistant_thread_context_changed"})  # fmt: skip


def event_type(body: dict[str, Any]) -> str:
    """The event's type as a metric label: one of those subscribed to, else "other"."""
    event = body.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) and kind in EVENT_TYPES else "other"


def failure_sentence(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return api_error_sentence(error)
    return explain(error)


class SlackBot(SlackHistory):
    def __init__(
        self,
        engine: ConversationEngine,
        claims: Claims,
        web: SlackWeb,
        identity: Identity,
        settings: SlackSettings,
        channel_log: ChannelLog | None = None,
        readiness: Readiness | None = None,
        feedback: FeedbackStore | None = None,
    ) -> None:
        self.feedback: FeedbackStore = feedback or InProcessFeedback()
        self.readiness = readiness
        self.pane = Pane(self, settings.prompts)
        self.pane_contexts: NotesContextStore | None = None  # set when the pane is wired
        self.channel_log = channel_log
        self.engine = engine
        self.claims = claims
        self.web = web
        self.me = identity
        self.settings = settings
        self.tasks = BackgroundTasks()
        self.intake = Intake()
        self.strangers = RecentKeys()  # threads Slack showed without the bot
        self.access = SlackAccess(web)  # who may read which channel, for /ask

    # --- entry points (return within milliseconds) ----------------------------------------

    async def accept_pane_opened(self, body: dict[str, Any], retry_num: int = 0) -> bool:
        """Someone opened the assistant pane: greet them once (across replicas)."""
        event = body.get("event") or {}
        thread = event.get("assistant_thread") if isinstance(event, dict) else None
        if self.stopping:
            return False
        if (
            not isinstance(thread, dict)
            or not thread.get("channel_id")
            or not thread.get("thread_ts")
        ):
            log.info("assistant_thread_started without a thread: ignored")
            return True
        team = str(body.get("team_id") or "")
        name = f"pane:{thread['channel_id']}:{thread['thread_ts']}"
        claimed = await self.claim_delivery(f"slack:{team}", [name], retry_num)
        if claimed is None:
            return False
        if claimed[0]:
            given = thread.get("context")
            context: dict[str, Any] = given if isinstance(given, dict) else {}
            self.tasks.spawn(
                self.pane.greet(str(thread["channel_id"]), str(thread["thread_ts"]), context),
                name="slack-pane-greeting",
            )
        return True

    def take(self, body: dict[str, Any], retry_num: int = 0) -> bool:
        """Socket Mode: take a delivery without a round trip, so its ack is never queued behind
        Redis or a busy loop (an unacked envelope is sent again). The claim follows in the
        background (`accept`), tried again while Redis is down, as Slack would have re-sent
        it: within this process's life nothing is lost. False only while shutting down (the
        envelope, unacked, goes to another connection)."""
        if self.stopping:
            return False
        after = self.intake.arrived()  # the burst's other acks go out first
        self.tasks.spawn(self.accept_soon(body, retry_num, after), name="slack-socket-event")
        return True

    async def accept_soon(
        self, body: dict[str, Any], retry_num: int, after: Awaitable[None] | None = None
    ) -> None:
        if after is not None:
            await after
        waited, pause = 0.0, 0.5
        while not await self.accept(body, retry_num):
            if self.stopping:
                log.warning("shutting down: an acked event is left unhandled")
                return
            if waited >= SOCKET_RETRY_FOR:  # as Slack's last retry: claimed in this process
                await self.accept(body, FINAL_RETRY)
                return
            await asyncio.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 10.0)

    async def accept(self, body: dict[str, Any], retry_num: int = 0, *, pane: bool = False) -> bool:
        """Decide, before Slack gets its answer, whether this delivery is ours; the work runs in
        the background. False asks Slack to deliver it again later (HTTP 503 / no Socket Mode
        ack): while shutting down, or while Redis cannot say whether another process has it."""
        raw_id = body.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) and raw_id.isprintable() else ""
        EVENTS.labels("slack", event_type(body)).inc()
        if self.stopping:
            log.info("shutting down: event %s left for Slack to deliver again", event_id)
            return False
        read = read_event(body, bot_user_id=self.me.user_id, bot_id=self.me.bot_id)
        if isinstance(read, Ignored):
            log.info("event %s not handled: %s", event_id, read.reason)
            answered("slack", "ignored")
            return True
        if not self.settings.allows(read.team, read.channel):
            log.info("event from %s/%s outside the allowlists: ignored", read.team, read.channel)
            answered("slack", "ignored")
            return True
        if isinstance(read, Deletion):
            self.tasks.spawn(self.handle_deletion(read, event_id), name="slack-deletion")
            return True
        if isinstance(read, Edit):  # logged again as it reads now; edits never get answers
            self.tasks.spawn(self.log_message(read.message), name="slack-edit")
            return True
        if not (read.is_dm or read.mentions_bot or read.thread_ts):
            self.tasks.spawn(self.log_message(read), name="slack-log")
            log.debug("channel chatter %s/%s: logged only", read.channel, read.ts)
            return True
        names = [f"msg:{read.channel}:{read.ts}"] + ([f"event:{event_id}"] if event_id else [])
        scope = channel_scope("slack", read.team, read.channel)  # the slot of its thread and log
        thread = self.thread_of(read) if read.thread_ts else None
        # The channel log entry rides with the claim when the names are known.
        entry = self.log_entry_now(read)
        claimed = await self.claim_delivery(scope, names, retry_num, thread, entry)
        if claimed is None:
            return False
        won, known = claimed
        if not won:
            log.info("duplicate delivery of %s/%s dropped", read.channel, read.ts)
            answered("slack", "duplicate")
            return True
        if entry is None:
            self.tasks.spawn(self.log_message(read), name="slack-log")  # never delays an answer
        self.tasks.spawn(
            self.handle_message(read, pane=pane, event_id=event_id, known=known),
            name=f"slack-event-{event_id}",
        )
        return True

    def on_member_joined(self, body: dict[str, Any]) -> None:
        """Someone joined a channel; when it is the bot, the channel's recent history is read
        into its log in the background (bot.history_import's live counterpart)."""
        event = body.get("event")
        event = event if isinstance(event, dict) else {}
        channel, team = event.get("channel"), workspace_of(body)
        if event.get("user") != self.me.user_id or not isinstance(channel, str) or not channel:
            return
        if self.settings.allows(team, channel) and not channel.startswith("D"):
            self.tasks.spawn(self.joined(team, channel), name=f"slack-join-{channel}")

    async def joined(self, team: str, channel: str) -> None:
        try:
            await self.backfill_channel(team, channel)
        except BotError as exc:
            log.warning("could not log the history of %s: %s", channel, exc)

    async def claim_delivery(
        self,
        scope: str,
        names: list[str],
        retry_num: int,
        thread: ThreadRef | None = None,
        entry: ChannelLogEntry | None = None,
    ) -> tuple[bool, bool] | None:
        """Claim a delivery across processes and, for a message in a thread, learn whether the
        bot is part of it, in one round trip: (won, known). None while Redis is down and Slack
        will deliver it again (another process may have it); Slack's last retry is claimed here
        instead."""
        if retry_num >= FINAL_RETRY:
            return await admit(self.claims, self.engine.memory, scope, names, thread, entry)
        try:
            return await claim_probing(self.claims, self.engine.memory, scope, names, thread, entry)
        except StoreFull as exc:
            # No replica can write a claim either: handle it here, where the user is told why.
            log.warning("Redis is full (%s): %s claimed in this process only", exc, names[0])
            return await self.claims.claim_here(scope, *names), False
        except StoreUnavailable as exc:
            log.warning("Redis is down (%s): asking Slack to deliver %s again", exc, names[0])
            return None

    @property
    def stopping(self) -> bool:
        return self.readiness is not None and self.readiness.stopping

    # --- events -----------------------------------------------------------------------------

    async def handle_deletion(self, read: Deletion, event_id: str) -> None:
        if self.channel_log is not None:
            try:
                await self.channel_log.remove(self.scope(read.team, read.channel), read.deleted_ts)
            except BotError as exc:
                log.warning("could not drop a deleted message from the log: %s", exc)
        scope = channel_scope("slack", read.team, read.channel)  # as the message's own claim
        names = (f"event:{event_id}", f"deleted:{read.channel}:{read.deleted_ts}")
        won = await claim_or_here(self.claims, scope, *names)
        # Slack does not order events: if the message itself comes after this, it finds itself
        # claimed and is never answered.
        await claim_or_here(self.claims, scope, f"msg:{read.channel}:{read.deleted_ts}")
        if won:
            await self.forget_message(read)

    async def handle_message(
        self,
        read: SlackMessage,
        *,
        pane: bool = False,
        event_id: str = "",
        known: bool = False,  # the bot is part of the thread: learnt with the claim
    ) -> None:
        thread = self.thread_of(read)
        bind(platform="slack", event=event_id, thread_key=str(thread))  # on every line from here
        action = route(read, bot_user_id=self.me.user_id, thread_known=known)
        read_thread: list[dict[str, Any]] | None = None
        if action is Route.IGNORE and read.thread_ts and not read.is_dm:
            # Memory does not know the thread; Slack may (Redis lost its data): ask it once.
            read_thread = await self.bot_replied_in(read)
            if read_thread is not None:
                action = route(read, bot_user_id=self.me.user_id, thread_known=True)
        if action is Route.ANSWER and read.wordless and read.files and not read.mentions_bot:
            # Files dropped without a word in the bot's thread or DM: acknowledged, no model call
            # (with a mention they mean "describe this", which the engine does).
            if read.attachments:
                await self.acknowledge_files(read, thread)
            else:
                log.info("%s/%s has only files it cannot fetch: remembered", read.channel, read.ts)
                await self.observe(read, thread)
            return
        if action is Route.ANSWER and pane and (intent := pane_intent(read.text)):
            await self.pane.thinking(read, first=not known)
            if intent == "ask":
                await self.pane.ask_channel(read, read.text)
            else:
                await self.pane.summarize(read, intent)
        elif action is Route.ANSWER:
            await self.answer(read, thread, known=known, pane=pane, read_thread=read_thread)
        elif action is Route.OBSERVE:
            await self.observe(read, thread)
        elif action is Route.FORGET:
            await self.forget(read, thread)
        elif action is Route.SUMMARIZE:
            await self.summarize_here(read, thread, known=known)
        else:
            log.info(
                "%s/%s is in a thread the bot is not part of: not answered", read.channel, read.ts
            )
            answered("slack", "ignored")

    def thread_of(self, message: SlackMessage) -> ThreadRef:
        return ThreadRef("slack", message.team, message.channel, message.conversation)

    async def incoming(self, message: SlackMessage, thread: ThreadRef) -> IncomingMessage:
        names = await self.web.names_of({message.user, *message.mentioned_users})
        return IncomingMessage(
            thread=thread,
            text=readable_text(message, bot_user_id=self.me.user_id, names=names, list_files=False),
            author_id=message.user,
            author_name=names[message.user],
            message_id=message.ts,
            at=ts_time(message.ts),
            files=await complete_files(self.web.client, message.attachments),
        )

    def preview(self, message: SlackMessage, thread: ThreadRef) -> IncomingMessage:
        """The message as `incoming` makes it, before anything is read from Slack (names, files):
        what an answer's record says until the answer begins."""
        return IncomingMessage(
            thread=thread,
            text=readable_text(message, bot_user_id=self.me.user_id, names={}),
            author_id=message.user,
            author_name=message.user,
            message_id=message.ts,
            at=ts_time(message.ts),
        )

    def reply_for(self, message: SlackMessage, placeholder: str = PLACEHOLDER) -> StreamingReply:
        """A reply shown by a placeholder and its edits."""
        blocks = answer_blocks if self.settings.feedback else None
        sink = SlackSink(self.web, message.channel, message.reply_thread_ts, final_blocks=blocks)
        return StreamingReply(
            sink,
            limit=MESSAGE_LIMIT,
            interval=self.settings.edit_interval,
            render=to_mrkdwn,
            placeholder=placeholder,
        )

    def answer_reply(self, message: SlackMessage) -> Reply:
        """How an answer is shown: streamed natively where Slack allows it (SLACK_STREAMING),
        else a placeholder and its edits. Native streams are replies in a thread."""
        where = message.reply_thread_ts
        if self.settings.streaming == "edits" or where is None:
            return self.reply_for(message)
        native = NativeReply(
            self.web.no_wait_client,  # a 429 means "use edits now", not "wait 30 s"
            channel=message.channel,
            thread_ts=where,
            recipient_user_id=message.user,
            recipient_team_id=message.author_team or message.team or self.me.team_id,
            fallback=lambda: self.reply_for(message),
            final_blocks=feedback_blocks if self.settings.feedback else None,
            budget=self.web.budget if self.settings.streaming == "auto" else None,
        )  # fmt: skip
        return native

    async def bot_replied_in(self, message: SlackMessage) -> list[dict[str, Any]] | None:
        """The thread's messages if the bot has replied in it (read from Slack once), else
        None. Threads found without the bot are remembered for an hour, so chatter in them
        costs no further calls."""
        assert message.thread_ts is not None
        key = (message.team, message.channel, message.thread_ts)
        since = self.engine.memory.remembers_since
        if self.strangers.seen(key) or (since is not None and ts_time(key[2]).timestamp() > since):
            # Begun since the store's data did: had the bot replied, memory would know.
            return None
        try:
            messages = await self.web.thread(message.channel, message.thread_ts)
        except SlackApiError as exc:
            log.warning(
                "could not read thread %s: %s", message.thread_ts, exc.response.get("error")
            )
            return None
        if any(self.is_mine(m) for m in messages):
            log.info("memory had lost thread %s, where the bot replied: read it again", key[2])
            return messages
        self.strangers.add(key)
        return None

    async def answer(
        self,
        message: SlackMessage,
        thread: ThreadRef,
        *,
        known: bool,
        pane: bool = False,
        read_thread: list[dict[str, Any]] | None = None,  # the thread, when read already
    ) -> None:
        if pane:
            await self.pane.thinking(message, first=not known)
        if message.thread_ts:  # the bot is part of it from now on
            self.strangers.discard((message.team, message.channel, message.thread_ts))
        reply = self.answer_reply(message)
        where = {"channel": message.channel, "thread_ts": message.reply_thread_ts}
        try:
            if message.thread_ts and not message.is_dm and not known:
                # The thread is read from Slack first: the placeholder shows meanwhile, under a
                # record of its own, so a crash while reading is settled too.
                expected = expected_at(reply, where)
                async with self.engine.expecting(self.preview(message, thread), expected):
                    try:
                        await reply.start()
                    except SlackApiError as exc:
                        log.error(
                            "cannot post in %s: %s", message.channel, exc.response.get("error")
                        )
                        return
                    shown = {**where, "ids": reply.message_ids}
                    read_first = functools.partial(self.backfill, message, thread, read_thread)
                    await self.answer_in(
                        reply, message, thread, where, shown, pane=pane, before=read_first
                    )
            else:  # the placeholder is posted once the answer's record is (one round trip)
                shown = expected_at(reply, where) or {**where, "ids": []}
                await self.answer_in(reply, message, thread, where, shown, pane=pane, show=True)
        except StoreUnavailable as exc:  # the answer could not even be recorded
            await self.fail(reply, exc)

    async def answer_in(
        self,
        reply: Reply,
        message: SlackMessage,
        thread: ThreadRef,
        where: dict[str, Any],
        shown: dict[str, Any],
        *,
        pane: bool,
        show: bool = False,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Stream the answer into `reply`, recorded as shown at `shown`; with `show`, the
        engine posts the placeholder once that record is written."""
        try:
            if before is not None:
                await before()
            incoming = await self.incoming(message, thread)
            await stream_answer(self.engine, reply, incoming, where, shown, show=show)
        except AnswerCutOff as exc:
            await self.finish_cut_off(reply, exc)
        except Fenced as exc:
            log.warning("answer abandoned: %s", exc)
        except asyncio.CancelledError:
            await self.fail(reply, Interrupted("shut down before the answer was finished"))
            raise
        except Exception as exc:
            if pane:
                await self.pane.clear(message)
            await self.fail(reply, exc)

    async def finish_cut_off(self, reply: Reply, cut_off: AnswerCutOff) -> None:
        try:
            await reply.finish(note=explain(cut_off))
        except Fenced as exc:
            log.warning("answer abandoned: %s", exc)

    async def settle(self, pending: PendingAnswer) -> None:
        """End a reply that a stopped process left half-written (bot.recovery)."""
        where = pending.reply
        channel = str(where.get("channel", ""))
        if where.get("native") and where.get("ids"):
            try:  # a stream left open: stop it first, so the message takes the sentence
                await self.web.client.chat_stopStream(channel=channel, ts=str(where["ids"][0]))
            except SlackApiError as exc:
                log.info("could not stop the interrupted stream: %s", exc.response.get("error"))
        ids = [str(i) for i in where.get("ids", [])]
        if where.get("posting"):
            ids += await self.unrecorded(pending, ids)
        sink = SlackSink(self.web, channel, where.get("thread_ts"), patience=SETTLE_PATIENCE)
        reply = StreamingReply.resume(sink, ids, MESSAGE_LIMIT, patience=SETTLE_PATIENCE)
        await reply.fail(Interrupted().user_message())

    async def unrecorded(self, pending: PendingAnswer, ids: list[str]) -> list[str]:
        """The answer's messages that were posted as its process died, before their ids were
        recorded: the bot's unfinished messages in the thread after the question."""
        where = pending.reply
        channel, thread_ts = str(where["channel"]), where.get("thread_ts")
        after = float(pending.message.message_id or 0)
        try:
            if thread_ts:
                messages = await self.web.thread(channel, str(thread_ts))
            else:  # a DM answered at its top level
                messages = await self.web.history(channel, oldest=after, most=50)
        except SlackApiError as exc:
            log.warning("could not read the interrupted thread: %s", exc.response.get("error"))
            return []
        return [
            str(m["ts"])
            for m in messages
            if self.is_mine(m)
            and float(m.get("ts", 0)) > after
            and str(m["ts"]) not in ids
            and (m.get("streaming") or unfinished(str(m.get("text", "")), PLACEHOLDER))
        ]

    async def fail(self, reply: Reply, error: BaseException) -> None:
        await end_in_failure(
            reply, error, failure_sentence(error), expected=(BotError, SlackApiError)
        )

    async def observe(self, message: SlackMessage, thread: ThreadRef) -> None:
        try:
            await self.engine.observe(await self.incoming(message, thread))
        except BotError as exc:
            log.warning("could not observe %s/%s: %s", message.channel, message.ts, exc)

    async def acknowledge_files(self, message: SlackMessage, thread: ThreadRef) -> None:
        try:
            text = await self.engine.acknowledge_files(await self.incoming(message, thread))
        except BotError as exc:
            text = explain(exc)
        await self.post_quietly(message, to_mrkdwn(text))

    async def forget(self, message: SlackMessage, thread: ThreadRef) -> None:
        try:
            await self.engine.forget(thread)
            text = FORGOTTEN
        except BotError as exc:
            text = explain(exc)
        await self.post_quietly(message, text)

    async def forget_message(self, deletion: Deletion) -> None:
        candidates = {deletion.thread_ts or deletion.deleted_ts, "dm"}
        for conversation in candidates:
            thread = ThreadRef("slack", deletion.team, deletion.channel, conversation)
            try:
                if await self.engine.remove(thread, deletion.deleted_ts):
                    log.info("removed deleted message %s from %s", deletion.deleted_ts, thread)
            except BotError as exc:
                log.warning("could not remove deleted message: %s", exc)

    async def post_quietly(self, message: SlackMessage, text: str) -> None:
        try:
            await self.web.post(message.channel, text, message.reply_thread_ts)
        except SlackApiError as exc:
            log.error("cannot post in %s: %s", message.channel, exc.response.get("error"))
