"""Dense retrieval (OPENAI_EMBEDDING_MODEL): the vector store's contract, the in-memory nearest
search, rank fusion, and replicas that embed each message once through the real openai SDK
against the fake server's /v1/embeddings."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import openai
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from bot.search.channel_search import ChannelSearch
from bot.search.dense import DenseSearch
from bot.search.embeddings import BATCH, OpenAIEmbedder, build_embedder
from bot.search.index import Hit, IndexedMessage
from bot.search.retrieval import fused, recent_first
from bot.search.vectors import (
    InProcessVectorStore,
    RedisVectorStore,
    VectorIndex,
    VectorStore,
    digest,
    pack,
    unpack,
)
from bot.settings import Settings
from bot.summaries.channel_log import RedisChannelLog
from bot.summaries.sources import SourceMessage
from tests.fakes.openai_server import FakeOpenAI

C1 = "slack:T1:C1"
NOW = datetime.now(UTC)
OWNS = "Priya owns the staging database since March"
QUESTION = "which person is responsible for the db"


@pytest.fixture(params=["inprocess", "redis"])
def vector_store(request: pytest.FixtureRequest) -> VectorStore:
    if request.param == "inprocess":
        return InProcessVectorStore()
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("clean_prefix")
    return RedisVectorStore(client, prefix=prefix, retention_seconds=3600)


async def test_the_store_keeps_a_vector_with_the_digest_of_its_text(
    vector_store: VectorStore,
) -> None:
    await vector_store.put(C1, {"1": pack(digest("hello"), [0.5, -1.0, 2.0])})
    got = await vector_store.get(C1, ["1", "2"])
    assert list(got) == ["1"]
    made_from, vector = unpack(got["1"])
    assert made_from == digest("hello") != digest("hello!")
    assert vector.tolist() == [0.5, -1.0, 2.0]
    await vector_store.forget(C1, ["1"])
    assert await vector_store.get(C1, ["1"]) == {}


async def test_one_process_at_a_time_holds_a_channels_embedding_lease(
    vector_store: VectorStore,
) -> None:
    assert await vector_store.lease(C1, "a", 30)
    assert not await vector_store.lease(C1, "b", 30)
    assert await vector_store.lease(C1, "a", 30)  # kept by its holder
    assert await vector_store.lease("slack:T1:C2", "b", 30)  # another channel is free
    await vector_store.release(C1, "b")  # not b's to release
    assert not await vector_store.lease(C1, "b", 30)
    await vector_store.release(C1, "a")
    assert await vector_store.lease(C1, "b", 30)


def test_the_nearest_messages_come_first_and_skipped_or_removed_ones_never() -> None:
    index = VectorIndex()
    index.add(C1, [("x", np.array([1.0, 0.0])), ("y", np.array([0.7, 0.7])),
                   ("z", np.array([0.0, 1.0]))])  # fmt: skip
    index.add("slack:T1:C2", [("w", np.array([1.0, 0.0]))])
    found = index.search([1.0, 0.1], [C1], limit=2)
    assert [(c, i) for c, i, _ in found] == [(C1, "x"), (C1, "y")]
    assert found[0][2] == pytest.approx(0.995, abs=0.001)
    assert [i for _, i, _ in index.search([1.0, 0.1], [C1], limit=2, skip={"x"})] == ["y", "z"]
    index.remove(C1, ["x"])
    assert [i for _, i, _ in index.search([1.0, 0.1], [C1], limit=1)] == ["y"]
    assert index.search([0.0, 0.0], [C1], limit=3) == []  # a zero question matches nothing


def test_rows_grow_past_the_first_matrix_and_a_deleted_messages_row_is_reused() -> None:
    index = VectorIndex()
    rng = np.random.default_rng(3)
    vectors = {str(n): rng.standard_normal(8) for n in range(40)}  # the matrix grows twice
    index.add(C1, vectors.items())
    for n in (5, 33):
        [(channel, found, score)] = index.search(vectors[str(n)], [C1], limit=1)
        assert (channel, found) == (C1, str(n)) and score == pytest.approx(1.0, abs=1e-5)
    index.remove(C1, ["5"])
    index.add(C1, [("new", vectors["5"])])  # takes the freed row
    assert len(index) == 40
    assert [i for _, i, _ in index.search(vectors["5"], [C1], limit=1)] == ["new"]
    assert "5" not in {i for _, i, _ in index.search(vectors["5"], [C1], limit=40)}
    index.add(C1, [("wide", np.ones(16))])  # another model's width: the channel starts over
    assert len(index) == 1 and index.search(np.ones(8), [C1], limit=3) == []


def test_a_vector_another_model_made_does_not_pass_for_this_ones() -> None:
    assert digest("the text", "text-embedding-3-small") != digest("the text", "nomic-embed-text")


def _hit(message_id: str, score: float = 1.0, at: float = 0.0) -> Hit:
    return Hit(IndexedMessage(message_id, C1, f"text {message_id}", at=at), score, 1.0)


def test_fusion_ranks_a_message_both_searches_found_above_one_either_found() -> None:
    lexical = [_hit("a", 12.0), _hit("both", 9.0), _hit("c", 3.0)]
    dense = [_hit("d", 0.9), _hit("both", 0.8)]
    order = [h.message.id for h in fused(lexical, dense)]
    assert order[0] == "both" and set(order) == {"a", "both", "c", "d"}
    assert order.index("a") < order.index("c")  # each ranking's order kept between its own


@given(st.lists(st.floats(0, 10), min_size=1, max_size=20), st.floats(0, 5e9))
def test_recency_never_turns_a_clearly_better_match_into_a_worse_one(scores, now) -> None:
    hits = [_hit(str(n), s, at=now - n * 86_400) for n, s in enumerate(scores)]
    ranked = recent_first(hits, now)
    assert sorted(h.score for h in ranked) == sorted(scores)  # nothing gained or lost
    for better, worse in itertools.pairwise(ranked):
        assert better.score * 1.1 >= worse.score  # at most a 10% lift


async def test_the_embedder_batches_and_keeps_the_order(fake_openai: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(lambda: openai.AsyncOpenAI(api_key="k", base_url=fake_openai.url),
                              "fake-embedding")  # fmt: skip
    texts = [f"message number {n}" for n in range(BATCH + 3)]
    vectors = await embedder.embed(texts)
    await embedder.aclose()
    assert fake_openai.embedding_requests == 2 and fake_openai.embedded == texts
    assert vectors[5] == fake_openai.embedding(texts[5])
    assert vectors[BATCH + 1] == fake_openai.embedding(texts[BATCH + 1])


def test_embeddings_are_off_unless_a_model_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert build_embedder(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
    made = build_embedder(Settings(_env_file=None))  # type: ignore[call-arg]
    assert made is not None and made.model == "text-embedding-3-small"
    monkeypatch.setenv("OPENAI_EMBEDDING_BASE_URL", "localhost:11434")
    with pytest.raises(ValueError, match="http:// or https://"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def said(n: int, text: str) -> SourceMessage:
    return SourceMessage(f"1700000000.{n:06d}", "Mina", text, NOW - timedelta(hours=10 - n),
                         link=f"https://team.slack.com/archives/C1/p{n}")  # fmt: skip


def replica(
    server: FakeOpenAI, client: aioredis.Redis, prefix: str, log: RedisChannelLog
) -> ChannelSearch:
    embedder = OpenAIEmbedder(lambda: openai.AsyncOpenAI(api_key="k", base_url=server.url),
                              "fake-embedding")  # fmt: skip
    store = RedisVectorStore(client, prefix=prefix, retention_seconds=3600)
    return ChannelSearch(log, dense=DenseSearch(store, embedder, min_similarity=0.4))


async def test_a_paraphrase_is_found_and_each_message_embedded_once_across_replicas(
    fake_openai: FakeOpenAI, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    fake_openai.synonyms = {"db": "database", "responsible": "owns"}
    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    for n, text in enumerate([OWNS, "lunch is at noon today", "the deploy failed twice"]):
        await log.record(C1, said(n, text))
    first = replica(fake_openai, redis_client, clean_prefix, log)
    second = replica(fake_openai, redis_client, clean_prefix, log)
    assert first.dense is not None and second.dense is not None
    lexical_only = await first.retrieve(QUESTION, [C1])
    assert not lexical_only.found  # no word in common, and nothing embedded yet
    await first.dense.settled()  # the first replica embedded the channel in the background

    found = await first.retrieve(QUESTION, [C1])
    assert found.found and found.hits[0].message.text == OWNS
    await second.retrieve(QUESTION, [C1])  # catches up: the vectors load in the background
    await second.dense.settled()
    on_second = await second.retrieve(QUESTION, [C1])
    assert on_second.found and on_second.hits[0].message.text == OWNS
    logged = [OWNS, "lunch is at noon today", "the deploy failed twice"]
    assert sorted(t for t in fake_openai.embedded if t != QUESTION) == sorted(logged)

    edited = "Priya handed the staging database to Omar"  # an edit is embedded again, once
    await log.record(C1, said(0, edited))
    await first.retrieve("anything", [C1])
    await first.dense.settled()
    await second.retrieve("anything", [C1])
    await second.dense.settled()
    assert fake_openai.embedded.count(edited) == 1

    await log.remove(C1, said(0, edited).message_id)  # a deletion is forgotten everywhere
    after = await second.retrieve(QUESTION, [C1])
    assert all(h.message.id != said(0, "").message_id for h in after.hits)
    await first.retrieve(QUESTION, [C1])
    await first.dense.settled()
    store = RedisVectorStore(redis_client, prefix=clean_prefix, retention_seconds=60)
    stored = await store.get(C1, [said(0, "").message_id])
    assert stored == {}
    await first.dense.aclose()
    await second.dense.aclose()


async def test_when_the_embedding_server_fails_search_goes_on_lexically(
    fake_openai: FakeOpenAI, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    fake_openai.embeddings_fail = True
    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    await log.record(C1, said(1, OWNS))
    search = replica(fake_openai, redis_client, clean_prefix, log)
    assert search.dense is not None
    result = await search.retrieve("who owns the staging database?", [C1])
    await search.dense.settled()
    assert result.found and result.hits[0].message.text == OWNS
    reads = 0
    get = search.dense.store.get

    async def counted(channel: str, ids: Sequence[str]) -> dict[str, bytes]:
        nonlocal reads
        reads += 1
        return await get(channel, ids)

    search.dense.store.get = counted  # type: ignore[method-assign]
    fake_openai.embeddings_fail = False  # the server is back: embedding waits its pause out
    for _ in range(3):
        await search.retrieve("who owns the staging database?", [C1])
    assert not search.dense._working and reads == 0  # no retry, no reads, within RETRY_AFTER
    await search.dense.aclose()


async def test_a_question_never_waits_for_vectors_to_load(
    fake_openai: FakeOpenAI, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """A replica starting on a channel of many messages reads their vectors in the background;
    the question is answered lexically meanwhile."""
    log = RedisChannelLog(redis_client, prefix=clean_prefix, retention_seconds=7 * 86_400,
                          max_messages=1000)  # fmt: skip
    await log.record(C1, said(1, OWNS))
    search = replica(fake_openai, redis_client, clean_prefix, log)
    assert search.dense is not None
    release = asyncio.Event()
    get = search.dense.store.get

    async def slow(channel: str, ids: Sequence[str]) -> dict[str, bytes]:
        await release.wait()
        return await get(channel, ids)

    search.dense.store.get = slow  # type: ignore[method-assign]
    result = await asyncio.wait_for(search.retrieve("who owns the staging database?", [C1]), 5)
    assert result.found and result.hits[0].message.text == OWNS  # lexically, not waiting
    assert search.dense._working  # the load is still going
    release.set()
    await search.dense.settled()
    assert len(search.dense.index) == 1
    await search.dense.aclose()


async def test_a_bot_with_an_embedding_model_searches_densely_through_redis(
    monkeypatch: pytest.MonkeyPatch, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    from bot.assembly import dense_search
    from bot.store.memory import InProcessMemory, RedisMemory

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "nomic-embed-text")
    monkeypatch.setenv("OPENAI_EMBEDDING_MIN_SIMILARITY", "0.6")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    made = dense_search(settings, memory)
    assert made is not None and isinstance(made.store, RedisVectorStore)
    assert made.embedder.model == "nomic-embed-text" and made.min_similarity == 0.6
    alone = dense_search(settings, InProcessMemory())
    assert alone is not None and isinstance(alone.store, InProcessVectorStore)
    monkeypatch.delenv("OPENAI_EMBEDDING_MODEL")
    assert dense_search(Settings(_env_file=None), memory) is None  # type: ignore[call-arg]
