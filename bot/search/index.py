"""The search index port, and its embedded implementation on tantivy (BM25, in memory).

A process's index is derived from what Redis keeps (the channel log), never the record itself:
it can be rebuilt at start and caught up at any time. `SearchIndex` is small on purpose, so a
server engine (OpenSearch, Qdrant) can take over behind it when a workspace outgrows one process.

Every call is synchronous and CPU-bound (microseconds to a few milliseconds); callers with an
event loop run large batches, and commits, in a thread.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.search.terms import terms

HEAP = 32_000_000  # bytes tantivy's writer buffers before it flushes a segment
FEW_CHANNELS = 32  # up to this many, a search filters by one term query per channel


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    """A message as search knows it: where it was said, by whom, when, and its text."""

    id: str  # the platform's message id (Slack: the message ts)
    channel: str  # the channel's scope (platform:workspace:channel, bot.store.keys)
    text: str
    author: str = ""
    at: float = 0.0  # seconds since the epoch
    thread: str = ""  # the thread it belongs to ("" at the top level)
    link: str = ""  # a permalink or jump URL, when the platform gave one
    by_bot: bool = False  # the bot's own answers are never sources

    @property
    def key(self) -> str:
        return f"{self.channel}\x1f{self.id}"


@dataclass(frozen=True, slots=True)
class Hit:
    message: IndexedMessage
    score: float
    matched: float  # the share of the question's distinct terms the message contains, 0..1


class SearchIndex(Protocol):
    def add(self, messages: Iterable[IndexedMessage]) -> None:
        """Index messages; one already indexed (same channel and id) is replaced (an edit)."""

    def remove(self, channel: str, ids: Iterable[str]) -> None:
        """Forget deleted messages."""

    def search(
        self,
        query: str,
        *,
        channels: Collection[str],
        limit: int = 10,
        exclude_thread: tuple[str, str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """The best `limit` messages for `query` among `channels` only, the bot's own answers,
        the asking thread (`(channel, thread)`) and the messages `exclude` names (ids) left
        out."""

    def stale(self, channels: Collection[str], exclude: Collection[str] = ()) -> bool:
        """Whether a search of `channels` (`exclude` left out) must first `commit`."""

    def commit(self) -> None:
        """Make what was added searchable (safe in a thread while searches run, not while
        messages are added or removed)."""

    def message(self, channel: str, message_id: str) -> IndexedMessage | None:
        """The message indexed under that channel and id, if any."""

    def __len__(self) -> int: ...


class TantivyIndex:
    """BM25 over `bot.search.terms` (CJK as bigrams), in RAM; the messages themselves are kept
    beside it, keyed by channel and id, to be returned with their hits.

    A commit (a new segment, and the reader reloaded) costs a millisecond or two, so it is made
    only when a search could see what it adds: not for messages only in other channels or only
    among those the search leaves out (usually the question itself, the newest message). A
    removal needs none: a hit whose message is gone is dropped when the hits are read.
    """

    def __init__(self) -> None:
        import tantivy

        self._tantivy = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("terms", stored=False, tokenizer_name="whitespace")
        builder.add_text_field("key", stored=True, tokenizer_name="raw")
        builder.add_text_field("channel", stored=False, tokenizer_name="raw")
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)
        # Reloaded by `_fresh` after each commit, when a search needs it: tantivy's default
        # (a watcher reloading on commit) makes that explicit reload wait 100 ms for it.
        self._index.config_reader(reload_policy="manual")
        self._writer = self._index.writer(heap_size=HEAP, num_threads=1)
        self._messages: dict[str, IndexedMessage] = {}
        self._searchable: dict[str, int] = {}  # per channel: messages a search may return
        self._unseen: dict[str, set[str]] = {}  # per channel: ids added since the last commit
        self.commits = 0

    def add(self, messages: Iterable[IndexedMessage]) -> None:
        Document, writer = self._tantivy.Document, self._writer
        for message in messages:
            if (before := self._messages.get(message.key)) is not None:
                writer.delete_documents_by_term("key", message.key)
                self._count(before, -1)
            self._messages[message.key] = message
            if message.by_bot:
                continue  # kept for context, never searched
            indexed = " ".join(terms(message.text))
            writer.add_document(Document(terms=indexed, key=message.key, channel=message.channel))
            self._count(message, 1)
            self._unseen.setdefault(message.channel, set()).add(message.id)

    def remove(self, channel: str, ids: Iterable[str]) -> None:
        for message_id in ids:
            key = f"{channel}\x1f{message_id}"
            if (gone := self._messages.pop(key, None)) is not None:
                self._writer.delete_documents_by_term("key", key)
                self._count(gone, -1)

    def _count(self, message: IndexedMessage, step: int) -> None:
        if not message.by_bot:
            self._searchable[message.channel] = self._searchable.get(message.channel, 0) + step

    def _others(self, channels: Collection[str], exclude: Collection[str]) -> bool:
        """Whether `channels` hold a searchable message that `exclude` does not name."""
        for channel in channels:
            left_out = sum(
                1
                for i in exclude
                if (m := self._messages.get(f"{channel}\x1f{i}")) is not None and not m.by_bot
            )
            if self._searchable.get(channel, 0) > left_out:
                return True
        return False

    def stale(self, channels: Collection[str], exclude: Collection[str] = ()) -> bool:
        """Whether a search of `channels` must commit first to see what was added there."""
        left_out = set(exclude)
        return any(self._unseen.get(c, left_out) - left_out for c in channels)

    def commit(self) -> None:
        """Make every message added so far searchable: 2 to 20 ms in a channel of thousands.
        tantivy lets go of the GIL meanwhile, so an event loop may run this in a thread, while
        searches go on, as long as nothing is added or removed until it returns."""
        self._writer.commit()
        self._index.reload()
        self._unseen.clear()
        self.commits += 1

    def _fresh(self, channels: Collection[str], exclude: Collection[str]) -> Any:
        """A searcher that sees every message added in `channels`, save those in `exclude`."""
        if self.stale(channels, exclude):
            self.commit()
        return self._index.searcher()

    def _within(self, channels: Collection[str]) -> Any:
        """A filter to `channels`, scoring a constant 1.0. tantivy's term set query is seven to
        ten times slower than one term query a channel for a few channels (0.4 against 0.05 ms
        in a channel of hundreds), and faster past about a hundred."""
        Query, Occur = self._tantivy.Query, self._tantivy.Occur
        if len(channels) > FEW_CHANNELS:
            return Query.term_set_query(self._schema, "channel", sorted(channels))
        each = [(Occur.Should, Query.term_query(self._schema, "channel", c)) for c in channels]
        return Query.const_score_query(Query.boolean_query(each), 1.0)

    def search(
        self,
        query: str,
        *,
        channels: Collection[str],
        limit: int = 10,
        exclude_thread: tuple[str, str] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted or not channels or limit <= 0 or not self._others(channels, exclude):
            return []
        Query, Occur = self._tantivy.Query, self._tantivy.Occur
        words = Query.boolean_query(
            [(Occur.Should, Query.term_query(self._schema, "terms", t)) for t in wanted]
        )
        where = self._within(channels)
        searcher = self._fresh(channels, exclude)
        # A few more than asked: the asking thread's own messages are dropped below.
        found = searcher.search(Query.boolean_query([(Occur.Must, words), (Occur.Must, where)]),
                                limit + 20 + len(exclude)).hits  # fmt: skip
        hits: list[Hit] = []
        for score, address in found:
            message = self._messages.get(searcher.doc(address)["key"][0])
            if message is None or message.id in exclude:
                continue
            if exclude_thread is not None and (message.channel, message.thread or message.id) == (
                exclude_thread
            ):
                continue
            hits.append(Hit(message, float(score), coverage(wanted, message.text)))
            if len(hits) == limit:
                break
        return hits

    def message(self, channel: str, message_id: str) -> IndexedMessage | None:
        return self._messages.get(f"{channel}\x1f{message_id}")

    def __len__(self) -> int:
        return len(self._messages)


def coverage(wanted: Sequence[str], text: str) -> float:
    """The share of `wanted` (distinct query terms) that `text` contains."""
    if not wanted:
        return 0.0
    have = set(terms(text))
    return sum(1 for t in wanted if t in have) / len(wanted)
