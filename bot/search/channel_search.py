"""Searching channels as the channel log keeps them: this process's index, derived from the log
(the record, shared by every replica) and caught up before each search, so a message logged by
one replica is found by a question on another, and a deleted one stops being found."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.search.index import IndexedMessage, SearchIndex, TantivyIndex
from bot.search.retrieval import Retrieval, retrieve
from bot.summaries.channel_log import ChannelLog
from bot.summaries.sources import SourceMessage

MOST = 1_000_000  # messages read from a channel's log at once: the log's own cap bounds it
LATE = timedelta(minutes=10)  # how late a message may be logged after its time and still be seen


@dataclass(frozen=True, slots=True)
class Searched:
    """What a search covered, for the "not found" sentence: how many messages, since when."""

    messages: int
    since: datetime | None


def indexed(channel: str, message: SourceMessage) -> IndexedMessage:
    return IndexedMessage(
        message.message_id, channel, message.text, message.author, message.at.timestamp(),
        link=message.link,
    )  # fmt: skip


class ChannelSearch:
    def __init__(self, log: ChannelLog, index: SearchIndex | None = None) -> None:
        self.log = log
        self.index = index if index is not None else TantivyIndex()
        self._newest: dict[str, datetime] = {}  # channel -> the newest message time indexed
        self._since: dict[str, datetime | None] = {}  # channel -> the log is complete from
        self._counts: dict[str, dict[str, int]] = {}  # channel -> id indexed -> hash of its text
        self._imported: dict[str, str] = {}  # channel -> its log's import mark, as last seen
        self._lock = asyncio.Lock()

    async def catch_up(self, channels: Collection[str]) -> None:
        """Index what the log gained (and drop what it lost) since the last look."""
        async with self._lock:  # one catch-up at a time: two would read the same entries
            for channel in channels:
                newest = self._newest.get(channel)
                since = newest - LATE if newest is not None else None
                window, gone = await asyncio.gather(
                    self.log.read(channel, since=since, most=MOST), self.log.deleted(channel)
                )
                if since is not None and window.imported != self._imported.get(channel, ""):
                    # history was imported since the last look: older than anything seen
                    window = await self.log.read(channel, since=None, most=MOST)
                self._imported[channel] = window.imported
                self._since[channel] = window.covers_from
                known = self._counts.setdefault(channel, {})
                fresh = [m for m in window.messages if m.message_id not in gone]
                # new messages and edited ones (their text changed); those seen as they are
                # come again only because the read overlaps the last one
                changed = [m for m in fresh if known.get(m.message_id) != hash(m.text)]
                self.index.add(indexed(channel, m) for m in changed)
                known.update((m.message_id, hash(m.text)) for m in changed)
                dropped = known.keys() & gone
                if dropped:
                    self.index.remove(channel, dropped)
                    for message_id in dropped:
                        del known[message_id]
                if fresh:
                    latest = max(m.at for m in fresh)
                    self._newest[channel] = max(latest, newest) if newest else latest

    async def retrieve(
        self,
        question: str,
        channels: Collection[str],
        *,
        limit: int = 8,
        exclude: Collection[str] = (),
    ) -> Retrieval:
        await self.catch_up(channels)
        return retrieve(self.index, question, channels=channels, limit=limit, exclude=exclude)

    def searched(self, channels: Collection[str]) -> Searched:
        starts = [s for c in channels if (s := self._since.get(c)) is not None]
        count = sum(len(self._counts.get(c, ())) for c in channels)
        return Searched(count, min(starts) if starts else None)
