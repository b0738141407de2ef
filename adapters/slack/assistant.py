"""Slack's assistant pane (slack_bolt's AsyncAssistant): a greeting with suggested prompts, the
channel the person is looking at kept per assistant thread in Redis, a "thinking" status and a
title, answers streamed natively, and "summarize this channel" / "what did I miss?" for that
channel, for channels both the person and the bot can read, and no others.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any, Protocol

from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import (
    AsyncAssistantThreadContextStore,
)
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from adapters.slack.events import SlackMessage
from adapters.slack.summary_sources import SUMMARY_PLACEHOLDER
from adapters.slack.web import SlackWeb
from adapters.streaming import Reply, StreamingReply
from bot.engine import ConversationEngine
from bot.errors import BotError, InvalidRequest
from bot.store.kv import Notes
from bot.summaries.sources import SourceMessage
from bot.summaries.windows import Window
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

CONTEXT_TTL = 30 * 86_400
GREETING = (
    "Hi! Ask me anything, or pick a suggestion below. "
    "I can also summarize the channel you are looking at."
)
LOADING = ["Thinking…", "Reading the conversation…", "Putting it into words…"]
NO_CHANNEL = "Open me from a channel and ask again: I summarize the channel you are looking at."
NOT_READABLE = (
    "I can only summarize a channel that both you and I are members of; "
    "invite me there (or ask someone who is in it)."
)
NOTHING_TODAY = "Nobody wrote anything in that channel in the last day."
_SUMMARIZE = re.compile(r"\bsummar(?:ize|ise|y)\b.*\bchannel\b|\bchannel\b.*\bsummar", re.I)
_MISSED = re.compile(r"\bwhat did i miss\b|\bcatch me up\b", re.I)
_THIS_CHANNEL = re.compile(r"\b(?:this|the) channel\b", re.I)
NO_CHANNEL_TO_SEARCH = (
    "Open me from a channel and ask again: I search the channel you are looking at."
)
SEARCH_PLACEHOLDER = "_Searching the channel…_"


class NotesContextStore(AsyncAssistantThreadContextStore):
    """Which channel each assistant thread looks at, in Redis (bot.store.kv notes), not in message
    metadata that costs a history call to read back."""

    def __init__(self, notes: Notes) -> None:
        self._notes = notes

    @staticmethod
    def _key(channel_id: str, thread_ts: str) -> str:
        return f"slack:pane:{channel_id}:{thread_ts}"

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        value = json.dumps({k: v for k, v in context.items() if isinstance(v, str)})
        await self._notes.put(self._key(channel_id, thread_ts), value, ttl=CONTEXT_TTL)

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        raw = await self._notes.get(self._key(channel_id, thread_ts))
        context = json.loads(raw) if raw else None
        # A pane opened from the app's Home or a DM has no channel in view ("context": {}).
        if not isinstance(context, dict) or not context.get("channel_id"):
            return None
        return AssistantThreadContext(context)


def pane_intent(text: str) -> str | None:
    """What a pane message asks for: "summarize" (this channel), "missed" (since my last
    summary), "ask" (a question about this channel: answered from its history), or None (a
    question for the model)."""
    if _MISSED.search(text):
        return "missed"
    if _SUMMARIZE.search(text):
        return "summarize"
    if _THIS_CHANNEL.search(text):
        return "ask"
    return None


class PaneHost(Protocol):
    """What the pane needs of the Slack bot (adapters.slack.mentions.SlackBot is one)."""

    web: SlackWeb
    engine: ConversationEngine
    pane_contexts: NotesContextStore | None

    def reply_for(self, message: SlackMessage, placeholder: str) -> StreamingReply: ...

    def scope(self, team: str, channel: str) -> str: ...

    def payer(self, message: SlackMessage) -> Payer: ...

    async def channel_sources(
        self, team: str, channel: str, window: Window, *, since: datetime | None = None
    ) -> list[SourceMessage]: ...

    async def fail(self, reply: Reply, error: BaseException) -> None: ...

    async def accept(
        self, body: dict[str, Any], retry_num: int = 0, *, pane: bool = False
    ) -> bool: ...

    async def accept_pane_opened(self, body: dict[str, Any], retry_num: int = 0) -> bool: ...


def build_assistant(bot: PaneHost, notes: Notes, retry_number: Any) -> AsyncAssistant:
    store = NotesContextStore(notes)
    bot.pane_contexts = store
    assistant = AsyncAssistant(thread_context_store=store, logger=logging.getLogger("slack_bolt"))

    async def started(body: dict[str, Any], request: AsyncBoltRequest) -> BoltResponse | None:
        if await bot.accept_pane_opened(body, retry_number(request.headers)):
            return None
        return BoltResponse(status=503, body="")

    async def context_changed(body: dict[str, Any]) -> None:
        thread = (body.get("event") or {}).get("assistant_thread") or {}
        context = thread.get("context")
        if isinstance(context, dict) and thread.get("channel_id") and thread.get("thread_ts"):
            await store.save(channel_id=str(thread["channel_id"]),
                             thread_ts=str(thread["thread_ts"]), context=context)  # fmt: skip

    async def user_message(body: dict[str, Any], request: AsyncBoltRequest) -> BoltResponse | None:
        if await bot.accept(body, retry_number(request.headers), pane=True):
            return None
        return BoltResponse(status=503, body="")

    assistant.thread_started(started)
    assistant.thread_context_changed(context_changed)
    assistant.user_message(user_message)
    return assistant


class Pane:
    """The pane's half of the Slack bot: greeting, status, title, channel summaries."""

    def __init__(self, bot: PaneHost, prompts: list[str]) -> None:
        self.bot = bot
        self.prompts = prompts

    async def greet(self, channel: str, thread_ts: str, context: dict[str, Any]) -> None:
        client = self.bot.web.client
        if self.bot.pane_contexts is not None and isinstance(context, dict):
            await self.bot.pane_contexts.save(channel_id=channel, thread_ts=thread_ts,
                                              context=context)  # fmt: skip
        await self.bot.web.post(channel, GREETING, thread_ts)
        if self.prompts:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts,
                prompts=[{"title": p, "message": p} for p in self.prompts],
            )  # fmt: skip

    async def thinking(self, message: SlackMessage, *, first: bool) -> None:
        client = self.bot.web.client
        assert message.thread_ts is not None
        try:
            if first:  # the pane lists threads by title: the first question names it
                title = " ".join(message.text.split())[:60] or "New conversation"
                await client.assistant_threads_setTitle(
                    channel_id=message.channel, thread_ts=message.thread_ts, title=title
                )
            await client.assistant_threads_setStatus(
                channel_id=message.channel, thread_ts=message.thread_ts,
                status="is thinking…", loading_messages=LOADING,
            )  # fmt: skip
        except SlackApiError as exc:
            log.info("could not set the pane's status or title: %s", exc.response.get("error"))

    async def clear(self, message: SlackMessage) -> None:
        assert message.thread_ts is not None
        try:
            await self.bot.web.client.assistant_threads_setStatus(
                channel_id=message.channel, thread_ts=message.thread_ts, status=""
            )
        except SlackApiError as exc:
            log.info("could not clear the pane's status: %s", exc.response.get("error"))

    async def summarize(self, message: SlackMessage, intent: str) -> None:
        """Summarize the channel the person is looking at, if both of them can read it."""
        bot = self.bot
        reply = bot.reply_for(message, SUMMARY_PLACEHOLDER)
        try:
            await reply.start()
            channel = await self.channel_in_view(message, NO_CHANNEL)
            scope = bot.scope(message.team, channel)
            since = (
                await bot.engine.summary_since(scope, message.user) if intent == "missed" else None
            )
            sources = await bot.channel_sources(message.team, channel, Window(), since=since)
            if not sources:
                quiet = "Nothing new there since your last summary." if since else NOTHING_TODAY
                await reply.feed(quiet)
                await reply.finish()
                return
            summary = await bot.engine.summarize_sources(
                sources, scope=scope, requester=message.user, payer=bot.payer(message)
            )
            await reply.feed(summary.text)
            await reply.finish()
        except (BotError, SlackApiError) as exc:
            await self.clear(message)
            await bot.fail(reply, exc)

    async def ask_channel(self, message: SlackMessage, question: str) -> None:
        """Answer a question about the channel the person is looking at from its history,
        citing it, if both of them can read it (bot.search)."""
        bot = self.bot
        reply = bot.reply_for(message, SEARCH_PLACEHOLDER)
        try:
            await reply.start()
            channel = await self.channel_in_view(message, NO_CHANNEL_TO_SEARCH)
            answer = await bot.engine.ask(
                question, channels=[bot.scope(message.team, channel)],
                where="the channel you are looking at", payer=bot.payer(message),
            )  # fmt: skip
            await reply.feed(answer.text)
            await reply.finish()
        except (BotError, SlackApiError) as exc:
            await self.clear(message)
            await bot.fail(reply, exc)

    async def channel_in_view(self, message: SlackMessage, none_in_view: str) -> str:
        """The channel the person is looking at, if both of them can read it; else the sentence
        saying why not (InvalidRequest)."""
        channel = await self.context_channel(message)
        if channel is None:
            raise InvalidRequest(none_in_view)
        if not await self.bot.web.both_can_read(channel, message.user):
            raise InvalidRequest(NOT_READABLE)
        return channel

    async def context_channel(self, message: SlackMessage) -> str | None:
        store = self.bot.pane_contexts
        if store is None or message.thread_ts is None:
            return None
        context = await store.find(channel_id=message.channel, thread_ts=message.thread_ts)
        channel = context.get("channel_id") if context else None
        return str(channel) if channel else None
