"""Retrieval benchmark on real conversations other people wrote (../shared/corpora, see its
README): does search find the thread a question was answered in, and does it say "not found"
when the answer is not there?

    python -m bench.retrieval

1. Find the thread (Ubuntu IRC, 10 samples of ~1,000 annotated messages, Kummerfeld et al. 2019,
   CC-BY-4.0): each conversation's first message that asks something is the question; every
   other message of its conversation is a right source; everything but the question is indexed.
   hit@1/5/10 and MRR for plain BM25 (tantivy's default analysis of the raw text) and for the
   bot's lexical search (bot.search: its terms, CJK bigrams, stop words, plural folding).
2. The retrieval gate: the same questions with their whole conversation left out of the index
   (the right answer is "not found"), against the answerable ones.
3. QMSum's human questions with gold spans: recall@5 and recall@10.
4. Molweni's human unanswerables: the gate's "not found" on them and on the answerable ones.
5. Speed: indexing, and search p50/p95 at 10k, 100k and 1M messages (the IRC messages
   repeated under new ids and channels).
6. Import and grounding, on the local Redis (a prefix of its own, removed after): importing
   100,000 messages (`bot.history_import`, as `python -m bot import` does), and what grounding
   adds to a mention's answer in a channel of 10,000 messages (catching up with the log, where
   a message arrived since the last question, and searching it).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.harness import row
from bot.search.index import IndexedMessage, TantivyIndex
from bot.search.retrieval import retrieve

# beside the project, as the workplace lays it out; BENCH_CORPORA names another place
CORPORA = Path(
    os.environ.get("BENCH_CORPORA") or Path(__file__).resolve().parents[2] / "shared" / "corpora"
)
IRC = CORPORA / "irc-ubuntu" / "dev"
_LINE = re.compile(r"^\[(\d\d):(\d\d)\] <([^>]+)> (.*)$")


def irc_sample(raw: Path) -> tuple[list[IndexedMessage], dict[int, int]]:
    """A sample's messages (channel = the sample) and, for annotated lines, their conversation."""
    channel = raw.name.removesuffix(".raw.txt")
    messages = []
    for number, line in enumerate(raw.read_text(errors="replace").splitlines()):
        match = _LINE.match(line)
        author, text = (match.group(3), match.group(4)) if match else ("", line)
        messages.append(IndexedMessage(str(number), channel, text, author, at=float(number)))
    parent = {}

    def root(n: int) -> int:
        while parent.setdefault(n, n) != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    annotation = raw.with_name(channel + ".annotation.txt")
    for line in annotation.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            a, b = int(parts[0]), int(parts[1])
            parent[root(a)] = root(b)
    conversation = {n: root(n) for n in list(parent)}
    return messages, conversation


def questions(
    messages: list[IndexedMessage], conversation: dict[int, int]
) -> list[tuple[IndexedMessage, set[str]]]:
    """(question, the ids of the rest of its conversation) for conversations that ask."""
    members: dict[int, list[int]] = defaultdict(list)
    for line, root in conversation.items():
        members[root].append(line)
    found = []
    for lines in members.values():
        lines.sort()
        first = messages[lines[0]]
        rest = {str(n) for n in lines[1:]}
        if "?" in first.text and len(rest) >= 1 and len(first.text.split()) >= 4:
            found.append((first, rest))
    return found


class PlainBM25:
    """tantivy's default analysis of the raw text: the baseline."""

    def __init__(self, messages: list[IndexedMessage]) -> None:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("text", stored=False)
        builder.add_text_field("key", stored=True, tokenizer_name="raw")
        builder.add_text_field("channel", stored=False, tokenizer_name="raw")
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema)
        writer = self.index.writer(heap_size=32_000_000, num_threads=1)
        for m in messages:
            writer.add_document(tantivy.Document(text=m.text, key=m.key, channel=m.channel))
        writer.commit()
        self.index.reload()
        self.tantivy = tantivy

    def search(self, query: str, channel: str, limit: int) -> list[str]:
        Query, Occur = self.tantivy.Query, self.tantivy.Occur
        words = self.index.parse_query_lenient(re.sub(r"[^\w\s]", " ", query), ["text"])[0]
        where = Query.term_query(self.schema, "channel", channel)
        searcher = self.index.searcher()
        found = searcher.search(Query.boolean_query([(Occur.Must, words), (Occur.Must, where)]),
                                limit).hits  # fmt: skip
        return [searcher.doc(a)["key"][0].split("\x1f")[1] for _, a in found]


def ranks(results: list[list[str]], right: list[set[str]]) -> dict[str, float]:
    firsts = []
    for found, good in zip(results, right, strict=True):
        position = next((i for i, m in enumerate(found) if m in good), None)
        firsts.append(position)
    n = len(firsts)
    return {
        "hit@1": sum(p is not None and p < 1 for p in firsts) / n,
        "hit@5": sum(p is not None and p < 5 for p in firsts) / n,
        "hit@10": sum(p is not None and p < 10 for p in firsts) / n,
        "MRR": sum(1 / (p + 1) for p in firsts if p is not None) / n,
    }


def show(name: str, figures: dict[str, float]) -> None:
    row(name, "  ".join(f"{k} {v * 100:.1f}" if k != "MRR" else f"MRR {v:.3f}"
                        for k, v in figures.items()))  # fmt: skip


def find_the_thread() -> None:
    samples = [irc_sample(raw) for raw in sorted(IRC.glob("*.raw.txt"))]
    asked = [(q, rest) for messages, conv in samples for q, rest in questions(messages, conv)]
    every = [m for messages, _ in samples for m in messages]
    asking = {q.key for q, _ in asked}
    indexed = [m for m in every if m.key not in asking]
    plain = PlainBM25(indexed)
    ours = TantivyIndex()
    ours.add(indexed)
    print(f"1. Find the thread: Ubuntu IRC, {len(samples)} samples, {len(indexed):,} messages "
          f"indexed, {len(asked)} questions")  # fmt: skip
    right = [rest for _, rest in asked]
    show("plain BM25 (tantivy default analysis)",
         ranks([plain.search(q.text, q.channel, 10) for q, _ in asked], right))  # fmt: skip
    lexical = [retrieve(ours, q.text, channels={q.channel}, limit=10) for q, _ in asked]
    show("bot.search lexical", ranks([[h.message.id for h in r.hits] for r in lexical], right))
    hybrid(ours, indexed, asked, right)
    gate(samples, asked, lexical)


def hybrid(ours, indexed, asked, right) -> None:  # type: ignore[no-untyped-def]
    """Lexical and dense fused by rank, as answers search when OPENAI_EMBEDDING_MODEL is set:
    measured only against a real embedding model (a made-up one would measure nothing)."""
    import asyncio

    from bot.search.embeddings import build_embedder
    from bot.search.index import Hit
    from bot.search.vectors import VectorIndex
    from bot.settings import Settings

    settings = Settings()
    embedder = build_embedder(settings)
    if embedder is None:
        row("hybrid (lexical + dense)", "not measured: set OPENAI_EMBEDDING_MODEL (and "
            "OPENAI_BASE_URL or OPENAI_EMBEDDING_BASE_URL) to a server that serves it")  # fmt: skip
        return
    texts = [m.text for m in indexed] + [q.text for q, _ in asked]
    vectors = asyncio.run(embedder.embed(texts))
    dense = VectorIndex()
    for m, v in zip(indexed, vectors, strict=False):
        dense.add(m.channel, [(m.id, np.asarray(v))])
    questions = vectors[len(indexed) :]
    alone, fused_ = [], []
    for (q, _), v in zip(asked, questions, strict=True):
        near = [Hit(m, score, 0.0) for c, i, score in dense.search(v, [q.channel], limit=30)
                if (m := ours.message(c, i)) is not None]  # fmt: skip
        alone.append([h.message.id for h in near[:10]])
        found = retrieve(ours, q.text, channels={q.channel}, limit=10, dense=near,
                         min_similarity=settings.embedding_min_similarity)  # fmt: skip
        fused_.append([h.message.id for h in found.hits])
    show(f"dense alone ({embedder.model})", ranks(alone, right))
    show(f"hybrid: lexical + {embedder.model}, fused by rank", ranks(fused_, right))


def gate(samples, asked, answerable) -> None:  # type: ignore[no-untyped-def]
    """Each question again with its whole conversation left out: "not found" is right."""
    left_out_results = []
    for messages, _ in samples:
        channel = messages[0].channel
        for question, rest in [(q, r) for q, r in asked if q.channel == channel]:
            index = TantivyIndex()
            index.add(m for m in messages if m.id not in rest | {question.id})
            left_out_results.append(retrieve(index, question.text, channels={channel}))
    print("2. The lexical retrieval gate (before any model call)")
    row("'not found' when the conversation was left out (goal >= 80%)",
        f"{100 * sum(not r.found for r in left_out_results) / len(asked):.1f}%")  # fmt: skip
    row("'not found' when it is there (goal <= 10%)",
        f"{100 * sum(not r.found for r in answerable) / len(answerable):.1f}%")  # fmt: skip
    for share in (0.3, 0.5):  # what a stricter lexical gate would trade
        missed = sum(max((h.matched for h in r.hits[:5]), default=0) < share for r in answerable)
        caught = sum(
            max((h.matched for h in r.hits[:5]), default=0) < share for r in left_out_results
        )
        shares = f"{100 * caught / len(asked):.1f}% / {100 * missed / len(answerable):.1f}%"
        row(f"  a gate at {share:.0%} of the terms: left out / there", shares)
    # the best any share of the terms could do while refusing at most 10% of answerable ones
    best_in = [max((h.matched for h in r.hits[:5]), default=0) for r in answerable]
    best_out = [max((h.matched for h in r.hits[:5]), default=0) for r in left_out_results]
    caught = max(
        (sum(b < cut for b in best_out) for cut in sorted(set(best_in + best_out))
         if sum(b < cut for b in best_in) <= 0.10 * len(best_in)),
        default=0,
    )  # fmt: skip
    row("  the best share of terms at <= 10% refused: left out caught",
        f"{100 * caught / len(best_out):.1f}%")  # fmt: skip


def qmsum() -> None:
    """Human questions with gold spans: each meeting a channel, each turn a message; recall@k =
    a retrieved turn lies inside a gold span of the question."""
    import json

    index = TantivyIndex()
    asked: list[tuple[str, str, list[tuple[int, int]]]] = []
    for path in sorted((CORPORA / "qmsum" / "val").glob("*.json")):
        meeting = json.loads(path.read_text())
        channel = path.stem
        index.add(
            IndexedMessage(str(n), channel, turn["content"], turn["speaker"], float(n))
            for n, turn in enumerate(meeting["meeting_transcripts"])
        )
        for query in meeting["specific_query_list"]:
            spans = [(int(a), int(b)) for a, b in query["relevant_text_span"]]
            asked.append((channel, query["query"], spans))
    recalled = {5: 0, 10: 0}
    for channel, query, spans in asked:
        hits = retrieve(index, query, channels={channel}, limit=10).hits
        for k in recalled:
            if any(a <= int(h.message.id) <= b for h in hits[:k] for a, b in spans):
                recalled[k] += 1
    print(f"3. QMSum (35 meetings, {len(index):,} turns, {len(asked)} human questions with gold "
          "spans)")  # fmt: skip
    row("recall@5 / recall@10", " / ".join(f"{100 * v / len(asked):.1f}" for v in
                                           recalled.values()))  # fmt: skip


def molweni() -> None:
    """Human unanswerables: every dialogue in one channel; the lexical gate's verdict on the
    questions marked impossible against the answerable ones."""
    import json

    data = json.loads((CORPORA / "molweni" / "test.json").read_text())["data"]["dialogues"]
    index = TantivyIndex()
    questions: list[tuple[str, bool]] = []
    number = 0
    for dialogue in data:
        for edu in dialogue["edus"]:
            index.add([IndexedMessage(str(number), "molweni", edu["text"], edu["speaker"],
                                      float(number))])  # fmt: skip
            number += 1
        questions += [(qa["question"], bool(qa["is_impossible"])) for qa in dialogue["qas"]]
    verdicts = [(impossible, retrieve(index, q, channels={"molweni"}).found)
                for q, impossible in questions]  # fmt: skip
    impossible = [found for gone, found in verdicts if gone]
    possible = [found for gone, found in verdicts if not gone]
    print(f"4. Molweni ({len(data)} dialogues in one channel, {len(questions):,} questions, "
          f"{len(impossible)} unanswerable)")  # fmt: skip
    row("'not found' on unanswerable / on answerable",
        f"{100 * impossible.count(False) / len(impossible):.1f}% / "
        f"{100 * possible.count(False) / len(possible):.1f}%")  # fmt: skip


def speed() -> None:
    base = [m for raw in sorted(IRC.glob("*.raw.txt")) for m in irc_sample(raw)[0]]
    queries = [m.text for m in base if "?" in m.text][:200]
    print("5. Speed (one process, in memory)")
    for size in (10_000, 100_000, 1_000_000):
        copies = [
            IndexedMessage(f"{n}", f"c{n // 1000}", base[n % len(base)].text, at=float(n))
            for n in range(size)
        ]
        index = TantivyIndex()
        started = time.perf_counter()
        index.add(copies)
        index.search("warm up", channels={"c0"})
        seconds = time.perf_counter() - started
        channels = {f"c{n}" for n in range(size // 1000)}
        took = []
        for query in queries:
            began = time.perf_counter()
            index.search(query, channels=channels, limit=10)
            took.append((time.perf_counter() - began) * 1000)
        took.sort()
        row(f"{size:,} messages: indexed in", f"{seconds:.2f} s ({size / seconds:,.0f} a second)")
        row("  search over every channel p50 / p95",
            f"{statistics.median(took):.2f} / {took[int(len(took) * 0.95)]:.2f} ms")  # fmt: skip


def dense_speed() -> None:
    """The nearest-vector search answers add with embeddings on, on random vectors of a common
    size (768, as nomic-embed-text; text-embedding-3-small has 1536: twice the bytes and time)."""
    from bot.search.vectors import VectorIndex

    dims = 768
    rng = np.random.default_rng(7)
    print(f"5b. Dense search (one process, in memory, {dims} dimensions, random vectors)")
    for size in (10_000, 100_000):
        index = VectorIndex()
        per_channel = 10_000
        for start in range(0, size, per_channel):
            block = rng.standard_normal((per_channel, dims), dtype=np.float32)
            index.add(f"c{start // per_channel}",
                      ((str(n), block[n]) for n in range(per_channel)))  # fmt: skip
        channels = [f"c{n}" for n in range(size // per_channel)]
        index.search(rng.standard_normal(dims), channels, limit=30)  # stacks each channel once
        took = []
        for _ in range(100):
            query = rng.standard_normal(dims)
            began = time.perf_counter()
            index.search(query, channels, limit=30)
            took.append((time.perf_counter() - began) * 1000)
        took.sort()
        row(f"{size:,} messages: nearest 30 over every channel p50 / p95",
            f"{statistics.median(took):.2f} / {took[94]:.2f} ms")  # fmt: skip
        held = sum(rows.matrix.nbytes for rows in index._channels.values())
        row("  memory held (float32 rows, grown by half as needed)", f"{held / 1e6:,.0f} MB")
    row("Redis per 100,000 messages (float16 + an 8-byte digest)",
        f"{100_000 * (dims * 2 + 8) / 1e6:,.0f} MB")  # fmt: skip


async def import_and_grounding() -> None:
    import secrets
    from datetime import UTC, datetime, timedelta

    import redis.asyncio as aioredis

    from bot.conversation import IncomingMessage, ThreadRef
    from bot.engine import ConversationEngine
    from bot.history_import import Exported, ExportedHistory, import_history
    from bot.search.channel_search import ChannelSearch
    from bot.store.keys import channel_scope
    from bot.store.memory import InProcessMemory
    from bot.summaries.channel_log import RedisChannelLog
    from bot.summaries.sources import SourceMessage
    from bot.tokens import EstimatingCounter

    base = [m.text for raw in sorted(IRC.glob("*.raw.txt")) for m in irc_sample(raw)[0]]
    client = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix = f"bench-retrieval-{secrets.token_hex(4)}"
    log = RedisChannelLog(client, prefix=prefix, retention_seconds=30 * 86_400,
                          max_messages=200_000)  # fmt: skip
    now = datetime.now(UTC)
    print("6. Import and grounding (local Redis)")
    try:
        total = 100_000
        exported = [
            Exported(channel_scope("slack", "T1", f"C{n % 10}"), SourceMessage(
                f"{1_700_000_000 + n}.000100", "someone", base[n % len(base)],
                now - timedelta(days=20) + timedelta(seconds=10 * n), link=f"https://x/{n}"))
            for n in range(total)
        ]  # fmt: skip
        report = await import_history(
            log, ExportedHistory(iter(exported)), retention_seconds=30 * 86_400,
            max_messages=200_000, progress=lambda n: _Silent(),
        )  # fmt: skip
        row(f"import of {total:,} messages", f"{report.seconds:.1f} s "
            f"({report.imported / report.seconds:,.0f} a second)")  # fmt: skip
        again = await import_history(
            log, ExportedHistory(iter(exported)), retention_seconds=30 * 86_400,
            max_messages=200_000, progress=lambda n: _Silent(),
        )  # fmt: skip
        row("  the same again (adds nothing)", f"{again.imported} imported, {again.seconds:.1f} s")
        engine = ConversationEngine(InProcessMemory(), None, EstimatingCounter(),  # type: ignore[arg-type]
                                    search=ChannelSearch(log))  # fmt: skip
        channel = channel_scope("slack", "T1", "C1")
        thread = ThreadRef("slack", "T1", "C1", "1800000000.000100")
        questions = [m for m in base if "?" in m][:200]
        grounding = engine.grounding
        assert grounding is not None
        await grounding.context_for(IncomingMessage(thread, "warm up", "U1", "A"), [])  # rebuild
        took = []
        for n, question in enumerate(questions):
            said = SourceMessage(f"1800000001.{n:06d}", "someone", base[n], datetime.now(UTC))
            await log.record(channel, said)  # a message since the last question
            began = time.perf_counter()
            await grounding.context_for(IncomingMessage(thread, question, "U1", "A"), [])
            took.append((time.perf_counter() - began) * 1000)
        took.sort()
        row("grounding a mention (10,000 messages) p50 / p95",
            f"{statistics.median(took):.2f} / {took[int(len(took) * 0.95)]:.2f} ms")  # fmt: skip
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class _Silent:
    def update(self, done: int) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    import asyncio

    if not IRC.is_dir():
        raise SystemExit(f"the corpora are not at {CORPORA} (see DEVELOPERS' shared folder)")
    find_the_thread()
    qmsum()
    molweni()
    speed()
    dense_speed()
    asyncio.run(import_and_grounding())


if __name__ == "__main__":
    main()
