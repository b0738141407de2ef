"""Reading Slack into the core's terms: a thread as turns (for late joins and summaries), and a
person's channel message into the channel log."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack.events import PERSON_SUBTYPES, SlackMessage, plain_text, readable_text, ts_time
from adapters.slack.summary_sources import SummarySources
from bot.conversation import ThreadRef, Turn
from bot.errors import BotError
from bot.summaries.channel_log import ChannelLogEntry
from bot.summaries.sources import SourceMessage

log = logging.getLogger(__name__)


class SlackHistory(SummarySources):
    """Mixed into SlackBot, which provides what SummarySources declares."""

    async def thread_turns(
        self, channel: str, thread_ts: str, *, before: str | None = None
    ) -> list[Turn]:
        """A thread as turns, read once from conversations.replies (for late joins, summaries)."""
        messages = await self.web.thread(channel, thread_ts)
        if before is not None:
            messages = [m for m in messages if float(m.get("ts", 0)) < float(before)]
        return await self.turns_from(messages)

    async def turns_from(self, messages: list[dict[str, Any]]) -> list[Turn]:
        people: set[str] = set()
        usable = []
        for m in messages:
            if m.get("subtype") not in PERSON_SUBTYPES and m.get("subtype") != "bot_message":
                continue
            if not isinstance(m.get("text"), str) or not m["text"].strip():
                continue
            usable.append(m)
            if m.get("user"):
                people.add(str(m["user"]))
        names = await self.web.names_of(people)
        turns = []
        for m in usable:
            mine = self.is_mine(m)
            if m.get("bot_id") and not mine:
                continue  # other bots' chatter is not part of the conversation
            user = str(m.get("user") or "")
            turns.append(
                Turn(
                    role="assistant" if mine else "user",
                    text=plain_text(m["text"], bot_user_id=self.me.user_id, names=names),
                    author_id=user,
                    author_name=self.engine.config.bot_name if mine else names.get(user, user),
                    message_id=str(m.get("ts", "")),
                    at=ts_time(str(m.get("ts", ""))),
                )
            )
        return turns

    def is_mine(self, message: dict[str, Any]) -> bool:
        """Whether the bot wrote this message of the Web API."""
        return message.get("user") == self.me.user_id or bool(
            self.me.bot_id and message.get("bot_id") == self.me.bot_id
        )

    async def backfill(
        self,
        message: SlackMessage,
        thread: ThreadRef,
        messages: list[dict[str, Any]] | None = None,  # the thread, if read already
    ) -> None:
        assert message.thread_ts is not None
        if messages is None:
            turns = await self.thread_turns(message.channel, message.thread_ts, before=message.ts)
        else:
            earlier = [m for m in messages if float(m.get("ts", 0)) < float(message.ts)]
            turns = await self.turns_from(earlier)
        kept = await self.engine.seed(thread, turns)
        log.info("read %d earlier messages of %s, kept %d", len(turns), thread, kept)

    async def backfill_channel(self, team: str, channel: str) -> int:
        """The bot joined `channel`: its recent top-level messages, as far back as the log keeps
        (BOT_CHANNEL_LOG_DAYS, at most BOT_CHANNEL_LOG_MAX), read through conversations.history
        a page at a time (the client waits out Slack's 429s) into the log, so /ask and grounded
        answers know them at once. Messages logged already are not logged twice. Returns how
        many were added."""
        log_ = self.channel_log
        if log_ is None:
            return 0
        oldest = time.time() - log_.retention_seconds
        try:
            messages = await self.web.history(channel, oldest=oldest, most=log_.max_messages)
        except SlackApiError as exc:
            log.warning("could not read the history of %s: %s", channel, exc.response.get("error"))
            return 0
        sources = await self.sources_from(channel, messages)
        scope = self.scope(team, channel)
        known = await log_.logged_ids(scope)
        fresh = [s for s in sources if s.message_id not in known]
        await log_.record_many(scope, fresh)
        log.info("joined %s: logged %d earlier messages", channel, len(fresh))
        return len(fresh)

    def log_entry(self, message: SlackMessage, names: dict[str, str]) -> ChannelLogEntry | None:
        """A person's channel message as an entry of the channel log, for summaries later."""
        if self.channel_log is None or message.is_dm:
            return None
        source = SourceMessage(
            message_id=message.ts,
            author=names[message.user],
            text=readable_text(message, bot_user_id=self.me.user_id, names=names),
            at=ts_time(message.ts),
            link=self.permalink(message.channel, message.ts, message.thread_ts),
            author_id=message.user,
        )
        return ChannelLogEntry(self.channel_log, self.scope(message.team, message.channel), source)

    def log_entry_now(self, message: SlackMessage) -> ChannelLogEntry | None:
        """`log_entry` when every name it needs is already known (no Slack call), else None."""
        names = self.web.known_names({message.user, *message.mentioned_users})
        return self.log_entry(message, names) if names is not None else None

    async def log_message(self, message: SlackMessage) -> None:
        """Keep a person's channel message in the channel log, for summaries later."""
        if self.channel_log is None or message.is_dm:
            return
        try:
            names = await self.web.names_of({message.user, *message.mentioned_users})
            entry = self.log_entry(message, names)
            if entry is not None:
                await entry.write()
        except (BotError, SlackApiError) as exc:
            log.warning("could not log %s/%s: %s", message.channel, message.ts, exc)
