"""Searching channels as the channel log keeps them: this process's index, derived from the log
(the record, shared by every replica) and caught up before each search, so a message logged by
one replica is found by a question on another, and a deleted one stops being found."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.search.index import Hit, IndexedMessage, SearchIndex, TantivyIndex, coverage
from bot.search.retrieval import Retrieval, retrieve
from bot.search.terms import terms
from bot.summaries.channel_log import ChangesRead, ChannelLog, LogChanges
from bot.summaries.sources import SourceMessage

if TYPE_CHECKING:
    from bot.search.dense import DenseSearch

EXPIRE_EVERY = 60.0  # seconds between looks for messages past the log's retention


@dataclass(frozen=True, slots=True)
class Searched:
    """What a search covered, for the "not found" sentence: how many messages, since when."""

    messages: int
    since: datetime | None


def _position(last: str) -> tuple[int, ...]:
    """A log position (a stream entry id "ms-seq", or a number) in the order entries came."""
    return tuple(int(part) for part in last.split("-"))


def indexed(channel: str, message: SourceMessage) -> IndexedMessage:
    return IndexedMessage(
        message.message_id, channel, message.text, message.author, message.at.timestamp(),
        link=message.link,
    )  # fmt: skip


class ChannelSearch:
    def __init__(
        self,
        log: ChannelLog,
        index: SearchIndex | None = None,
        clock: Callable[[], float] = time.time,
        dense: DenseSearch | None = None,
    ) -> None:
        self.log = log
        self.index = index if index is not None else TantivyIndex()
        self.dense = dense  # embeddings beside the lexical index (OPENAI_EMBEDDING_MODEL)
        self._clock = clock
        self._since: dict[str, datetime | None] = {}  # channel -> the log is complete from
        # channel -> id indexed -> (hash of its text, its log position): edits are seen by the
        # one, what the log trimmed away by the other
        self._counts: dict[str, dict[str, tuple[int, str]]] = {}
        self._imported: dict[str, str] = {}  # channel -> its log's import mark, as last seen
        self._last: dict[str, str] = {}  # channel -> the log position read up to
        self._expired: dict[str, float] = {}  # channel -> when old messages were last dropped
        self._looking: dict[str, asyncio.Lock] = {}  # channel -> its catch-ups, one at a time
        self._lock = asyncio.Lock()  # the index: changed on the loop, committed in a thread

    def prefetch(self, channel: str) -> ChangesRead:
        """The read the next catch-up of `channel` needs (what its log gained, or, if this
        process never read it, the whole log), to send in another call's round trip (the
        thread lock's)."""
        return self.log.changes(channel, self._last.get(channel))

    async def catch_up(
        self,
        channels: Collection[str],
        *,
        ready: Mapping[str, LogChanges] | None = None,
        thorough: bool = False,
    ) -> None:
        """Index what the log gained (and drop what it lost) since the last look: `ready`
        holds reads made already (`prefetch`); `thorough` also refreshes since when each log
        is complete (for a "not found" sentence). Channels are looked at side by side."""
        for channel in channels:
            # one look at a channel at a time: two would read the same entries
            async with self._looking.setdefault(channel, asyncio.Lock()):
                await self._look(channel, (ready or {}).get(channel), thorough)
        if self.dense is not None:
            await self.dense.refresh(channels)

    async def _look(self, channel: str, changes: LogChanges | None, thorough: bool) -> None:
        last = self._last.get(channel)
        if changes is not None and changes.after != last:  # read before another look
            changes = None
        if changes is None:
            changes = await self.log.changes(channel, last).alone()
        if changes.after is not None and changes.imported != self._imported.get(channel, ""):
            changes = await self.log.changes(channel, None).alone()  # imported into: read whole
        first = channel not in self._counts
        async with self._lock:  # the index changes: not while a commit runs (`_commit`)
            if changes.after is None:
                self._since[channel] = changes.covers_from
                self._imported[channel] = changes.imported
            self._apply(channel, changes.messages, changes.deleted, changes.positions)
            self._advance(channel, changes.last)
        if thorough and changes.after is not None:
            window = await self.log.read(channel, since=datetime.now(UTC), most=1)
            self._since[channel] = window.covers_from
        if first:  # all it holds was just read: nothing indexed that the log has lost
            self._expired[channel] = self._clock()
        await self._expire(channel)

    def _apply(
        self,
        channel: str,
        messages: list[SourceMessage],
        gone: set[str],
        positions: Mapping[str, str],
    ) -> None:
        known = self._counts.setdefault(channel, {})
        fresh = [m for m in messages if m.message_id not in gone]
        # new messages and edited ones (their text changed); the rest were seen as they are
        changed = {
            m.message_id: m
            for m in fresh
            if (seen := known.get(m.message_id)) is None or seen[0] != hash(m.text)
        }
        added = [indexed(channel, m) for m in changed.values()]
        self.index.add(added)
        if self.dense is not None:
            self.dense.saw(channel, added)
        for i, m in changed.items():
            known[i] = (hash(m.text), positions.get(i, "0"))
        self._drop(channel, known.keys() & gone)

    def _drop(self, channel: str, ids: Collection[str]) -> None:
        if not ids:
            return
        self.index.remove(channel, ids)
        if self.dense is not None:
            self.dense.dropped(channel, ids)
            self.dense.forget_later(channel, ids)
        known = self._counts.get(channel, {})
        for message_id in ids:
            known.pop(message_id, None)

    async def _expire(self, channel: str) -> None:
        """What the log trimmed away (by age or count) leaves the index too, a minute late at
        most: the retention is a privacy setting, not only the log's."""
        now = self._clock()
        if now - self._expired.get(channel, 0.0) < EXPIRE_EVERY:
            return
        self._expired[channel] = now
        oldest = await self.log.oldest(channel)
        known = self._counts.get(channel, {})
        async with self._lock:
            if oldest is None:
                self._drop(channel, list(known))
                return
            first = _position(oldest)
            self._drop(channel, [i for i, (_, at) in known.items() if _position(at) < first])

    def _advance(self, channel: str, last: str | None) -> None:
        before = self._last.get(channel)
        if last is not None and (before is None or _position(last) > _position(before)):
            self._last[channel] = last

    async def retrieve(
        self,
        question: str,
        channels: Collection[str],
        *,
        limit: int = 8,
        exclude: Collection[str] = (),
        ready: Mapping[str, LogChanges] | None = None,
        thorough: bool = False,
    ) -> Retrieval:
        if self.dense is None:
            await self.catch_up(channels, ready=ready, thorough=thorough)
            await self._commit(channels, exclude)
            return retrieve(self.index, question, channels=channels, limit=limit, exclude=exclude)
        # the question is embedded while the index catches up
        vector, _ = await asyncio.gather(
            self.dense.question(question), self.catch_up(channels, ready=ready, thorough=thorough)
        )
        near = self.dense.nearest(vector, channels, limit=3 * limit, skip=exclude)
        wanted = list(dict.fromkeys(terms(question)))
        dense = [
            Hit(message, n.similarity, coverage(wanted, message.text))
            for n in near
            if (message := self.index.message(n.channel, n.id)) is not None
        ]
        await self._commit(channels, exclude)
        return retrieve(self.index, question, channels=channels, limit=limit, exclude=exclude,
                        dense=dense, min_similarity=self.dense.min_similarity)  # fmt: skip

    async def _commit(self, channels: Collection[str], exclude: Collection[str]) -> None:
        """What the search needs committed, committed in a thread: in a busy channel a commit
        held the event loop 10 ms an answer. Catch-ups (which add and remove) wait meanwhile."""
        if self.index.stale(channels, exclude):
            async with self._lock:
                if self.index.stale(channels, exclude):
                    await asyncio.to_thread(self.index.commit)

    def searched(self, channels: Collection[str]) -> Searched:
        starts = [s for c in channels if (s := self._since.get(c)) is not None]
        count = sum(len(self._counts.get(c, ())) for c in channels)
        return Searched(count, min(starts) if starts else None)
