"""The summary half of the Slack bot: messages with permalinks, from the channel log, from
conversations.history for the log's gaps, or from a thread; and `@bot summarize`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.channel_window import window_messages
from adapters.slack.events import SlackMessage
from adapters.slack.files import file_refs
from adapters.slack.web import Identity, SlackWeb
from adapters.streaming import StreamingReply
from bot.conversation import ThreadRef, Turn
from bot.engine import ConversationEngine
from bot.files.refs import FileRef
from bot.store.keys import channel_scope
from bot.summaries.channel_log import ChannelLog
from bot.summaries.sources import SourceMessage
from bot.summaries.summarizer import Summary
from bot.summaries.windows import Window
from bot.usage.tally import Payer

SUMMARY_PLACEHOLDER = "_Summarizing…_"


class SummarySources:
    """Mixed into SlackBot, which provides what is declared here."""

    engine: ConversationEngine
    web: SlackWeb
    me: Identity
    channel_log: ChannelLog | None

    async def turns_from(self, messages: list[dict[str, Any]]) -> list[Turn]:
        raise NotImplementedError

    def reply_for(self, message: SlackMessage, placeholder: str) -> StreamingReply:
        raise NotImplementedError

    async def fail(self, reply: StreamingReply, error: BaseException) -> None:
        raise NotImplementedError

    def scope(self, team: str, channel: str) -> str:
        return channel_scope("slack", team, channel)

    def payer(self, message: SlackMessage) -> Payer:
        """Who a summary asked for in `message` is counted to."""
        return Payer("slack", message.team, message.channel, message.user)

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        if not self.me.url or not ts:
            return ""
        link = f"{self.me.url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return link

    async def sources_from(
        self, channel: str, messages: list[dict[str, Any]], *, thread_ts: str | None = None
    ) -> list[SourceMessage]:
        """Slack API messages as summary sources, each with its permalink."""
        turns = await self.turns_from(messages)
        return [
            SourceMessage(
                message_id=t.message_id,
                author=t.author_name,
                text=t.text,
                at=t.at,
                link=self.permalink(channel, t.message_id, thread_ts),
                author_id=t.author_id,
            )
            for t in turns
            if thread_ts or t.role == "user"  # a channel summary is about what people said
        ]

    async def channel_sources(
        self, team: str, channel: str, window: Window, *, since: datetime | None = None
    ) -> list[SourceMessage]:
        """A channel's messages in the window: the log first, conversations.history for the rest."""

        async def fetch(
            oldest: datetime | None, latest: datetime | None, most: int
        ) -> list[SourceMessage]:
            messages = await self.web.history(
                channel,
                oldest=oldest.timestamp() if oldest else None,
                latest=latest.timestamp() if latest else None,
                most=most,
            )
            return await self.sources_from(channel, messages)

        return await window_messages(
            self.channel_log, self.scope(team, channel), window, fetch, since=since,
            most=self.engine.summarizer.config.max_messages + 1,
        )  # fmt: skip

    async def documents_here(self, message: SlackMessage) -> tuple[FileRef, ...]:
        """The files `@bot summarize` is about: its own, else (in a thread) the documents of the
        latest message in the thread that has any."""
        if message.attachments:
            return message.attachments
        if not message.thread_ts or message.is_dm:
            return ()
        for raw in reversed(await self.web.thread(message.channel, message.thread_ts)):
            documents = tuple(f for f in file_refs(raw) if f.kind not in ("image", "unsupported"))
            if documents:
                return documents
        return ()

    async def thread_summary(self, team: str, channel: str, root: str, *, known: bool) -> Summary:
        thread = ThreadRef("slack", team, channel, root)
        if known:
            return await self.engine.summarize(
                thread, link_for=lambda ts: self.permalink(channel, ts, root)
            )
        messages = await self.web.thread(channel, root)
        sources = await self.sources_from(channel, messages, thread_ts=root)
        return await self.engine.summarize_sources(sources, scope=str(thread))

    async def summarize_here(
        self, message: SlackMessage, thread: ThreadRef, *, known: bool
    ) -> None:
        """`@bot summarize`: the thread it is said in, or in a DM the DM conversation."""
        reply = self.reply_for(message, SUMMARY_PLACEHOLDER)
        try:
            await reply.start()
            async with self.engine.counted_to(self.payer(message)):
                summary = await self._summary_here(message, thread, known=known)
            await reply.feed(summary.text)
            await reply.finish()
        except Exception as exc:
            await self.fail(reply, exc)

    async def _summary_here(
        self, message: SlackMessage, thread: ThreadRef, *, known: bool
    ) -> Summary:
        documents = await self.documents_here(message)
        if documents:
            return await self.engine.summarize_files(documents)
        if message.thread_ts and not message.is_dm:
            return await self.thread_summary(
                message.team, message.channel, message.thread_ts, known=known
            )
        if message.is_dm:
            return await self.engine.summarize(thread)
        sources = await self.channel_sources(message.team, message.channel, Window())
        return await self.engine.summarize_sources(
            sources, scope=self.scope(message.team, message.channel)
        )
