"""Dense retrieval beside the lexical index (optional: OPENAI_EMBEDDING_MODEL).

Each message is embedded once, whichever replica logged it: a channel's messages that have no
stored vector are embedded in batches, in the background, by the one process holding that
channel's embedding lease, and the vectors are stored in Redis (bot.search.vectors); every other
process reads them there. A question is embedded when it is asked; the nearest messages are
fused with the lexical ranking by bot.search.retrieval. When the embedding server fails, answers
go on with the lexical search alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from bot.errors import BotError
from bot.search.embeddings import BATCH, Embedder
from bot.search.index import IndexedMessage
from bot.search.vectors import VectorIndex, VectorStore, digest, pack, unpack

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0  # renewed before every batch; a crashed holder's lease lapses
QUESTION_SECONDS = 5.0  # a question's embedding waits no longer: lexical search goes on
RETRY_AFTER = 30.0  # seconds before embedding again after the server failed
LOOK_AGAIN = 2.0  # seconds before reading vectors again that another process is making


@dataclass(frozen=True, slots=True)
class Near:
    channel: str
    id: str
    similarity: float  # cosine, -1..1


class DenseSearch:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        min_similarity: float = 0.5,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.min_similarity = min_similarity  # the nearest at least this close: "found"
        self.index = VectorIndex()
        self._owner = owner or secrets.token_hex(6)
        # channel -> id -> (digest, text) of messages indexed lexically with no vector here yet
        self._wanted: dict[str, dict[str, tuple[bytes, str]]] = {}
        self._working: dict[str, asyncio.Task[None]] = {}  # channel -> its fill running
        self._next_fill: dict[str, float] = {}  # channel -> no fill before (loop time)
        self._failed_at: float = float("-inf")
        self.made = 0  # vectors this process embedded (and stored)
        self.failure = ""  # why embedding last failed, if it did

    def saw(self, channel: str, messages: Iterable[IndexedMessage]) -> None:
        """New or edited messages of `channel`: each needs the vector of its current text."""
        wanted = self._wanted.setdefault(channel, {})
        stale = []
        for m in messages:
            if m.by_bot or not m.text.strip():
                continue
            wanted[m.id] = (digest(m.text, self.embedder.model), m.text)
            stale.append(m.id)
        self.index.remove(channel, stale)  # an edit's old vector no longer says what it says

    def dropped(self, channel: str, ids: Collection[str]) -> None:
        for message_id in ids:
            self._wanted.get(channel, {}).pop(message_id, None)
        self.index.remove(channel, ids)

    async def refresh(self, channels: Collection[str]) -> None:
        """Start filling in what this process lacks, in the background (a question never
        waits for it): the vectors other processes stored, then, holding the channel's lease,
        embedding what nobody has."""
        now = asyncio.get_running_loop().time()
        for channel in channels:
            if (
                self._wanted.get(channel)
                and channel not in self._working
                and now >= self._next_fill.get(channel, float("-inf"))
            ):
                task = asyncio.create_task(self._fill(channel))
                self._working[channel] = task
                task.add_done_callback(partial(self._finished, channel))

    def _finished(self, channel: str, _: asyncio.Task[None]) -> None:
        self._working.pop(channel, None)

    def _take(self, channel: str, stored: dict[str, bytes]) -> None:
        wanted = self._wanted.get(channel, {})
        matching = []
        for message_id, raw in stored.items():
            made_from, vector = unpack(raw)
            if message_id in wanted and wanted[message_id][0] == made_from:
                matching.append((message_id, vector))
                del wanted[message_id]
        self.index.add(channel, matching)

    async def _fill(self, channel: str) -> None:
        wanted = self._wanted.get(channel, {})
        loop = asyncio.get_running_loop()
        try:
            self._take(channel, await self.store.get(channel, list(wanted)))
            if wanted and loop.time() - self._failed_at >= RETRY_AFTER:
                if await self.store.lease(channel, self._owner, LEASE_SECONDS):
                    await self._embed(channel, wanted)
                else:  # another process is embedding them: look for its vectors again soon
                    self._next_fill[channel] = loop.time() + LOOK_AGAIN
            elif wanted:  # the embedding server failed lately: no store reads per question
                self._next_fill[channel] = self._failed_at + RETRY_AFTER
        except BotError as exc:
            self._next_fill[channel] = loop.time() + LOOK_AGAIN
            log.warning("reading %s's message vectors failed: %s", channel, exc)

    async def _embed(self, channel: str, wanted: dict[str, tuple[bytes, str]]) -> None:
        try:
            while wanted:
                if not await self.store.lease(channel, self._owner, LEASE_SECONDS):
                    return  # another process holds it now: it embeds the rest
                batch = list(wanted.items())[: BATCH * 4]
                vectors = await self.embedder.embed([text for _, (_, text) in batch])
                packed = {
                    message_id: pack(made_from, vector)
                    for (message_id, (made_from, _)), vector in zip(batch, vectors, strict=True)
                }
                await self.store.put(channel, packed)
                self.made += len(packed)
                self._take(channel, packed)  # one edited meanwhile stays wanted: embedded again
        except BotError as exc:
            self._failed_at = asyncio.get_running_loop().time()
            self._next_fill[channel] = self._failed_at + RETRY_AFTER
            self.failure = str(exc)
            log.warning("embedding %s's messages failed, searching it lexically: %s", channel, exc)
        finally:
            with contextlib.suppress(BotError):  # it lapses by itself
                await self.store.release(channel, self._owner)

    async def settled(self) -> None:
        """Every fill this process started has finished (an import, tests, benchmarks)."""
        while self._working:
            await asyncio.gather(*self._working.values(), return_exceptions=True)

    async def question(self, text: str) -> list[float] | None:
        """The question's embedding; None when the server fails (lexical search goes on)."""
        try:
            async with asyncio.timeout(QUESTION_SECONDS):
                [vector] = await self.embedder.embed([text])
        except (BotError, TimeoutError) as exc:
            log.warning("searching without embeddings: %s", exc or "the embedding timed out")
            return None
        return vector

    def nearest(
        self,
        vector: Sequence[float] | None,
        channels: Collection[str],
        *,
        limit: int,
        skip: Collection[str] = (),
    ) -> list[Near]:
        """The messages nearest the question's `vector` in meaning, best first."""
        if vector is None:
            return []
        found = self.index.search(vector, channels, limit=limit, skip=skip)
        return [Near(channel, message_id, score) for channel, message_id, score in found]

    def forget_later(self, channel: str, ids: Collection[str]) -> None:
        """Deleted messages' stored vectors go too (best effort: they expire with the log)."""
        if ids:
            task = asyncio.get_running_loop().create_task(self.store.forget(channel, list(ids)))
            task.add_done_callback(_quiet)

    async def aclose(self) -> None:
        for task in list(self._working.values()):
            task.cancel()
        close = getattr(self.embedder, "aclose", None)
        if close is not None:
            await close()


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("forgetting vectors failed: %s", task.exception())
