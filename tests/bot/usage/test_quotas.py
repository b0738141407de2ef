"""Usage and quotas in the engine: the real openai SDK against the local model server (which
reports `usage` like OpenAI), real Redis for the ledger where it matters."""

from __future__ import annotations

import logging
from contextlib import aclosing
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.chat_model import ChatModel
from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import OverQuota, StoreUnavailable
from bot.store.memory import InProcessMemory, RedisMemory
from bot.summaries.sources import SourceMessage
from bot.tokens import EstimatingCounter
from bot.usage.ledger import InProcessLedger, Limits
from bot.usage.prices import parse_prices
from bot.usage.quotas import QuotaConfig, Quotas
from bot.usage.redis_ledger import RedisLedger
from bot.usage.tally import Payer
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI, Reply, approx_tokens

THREAD = ThreadRef("slack", "T1", "C1", "1700000000.000100")
NOON = datetime(2026, 11, 29, 21, 0, tzinfo=UTC)  # three hours before the limits reset
ALICE = Payer("slack", "T1", "C1", "U-Alice", "Alice")


def msg(text: str, author: str = "Alice", n: int = 0) -> IncomingMessage:
    return IncomingMessage(THREAD, text, f"U-{author}", author, f"{author}-{n}")


async def ask(engine: ConversationEngine, message: IncomingMessage) -> str:
    async with aclosing(engine.answer(message)) as deltas:
        return "".join([d async for d in deltas])


def quotas(ledger=None, **config) -> Quotas:
    return Quotas(ledger or InProcessLedger(), QuotaConfig(**config), now=lambda: NOON)


def engine_with(memory, model: ChatModel, q: Quotas, budget: int = 2000) -> ConversationEngine:
    return ConversationEngine(
        memory,
        model,
        EstimatingCounter(),
        EngineConfig(max_prompt_tokens=budget, max_answer_tokens=200),
        quotas=q,
    )


async def test_an_answer_is_counted_by_the_servers_usage(model, fake_openai: FakeOpenAI) -> None:
    q = quotas()
    engine = engine_with(InProcessMemory(), model, q)
    answer = await ask(engine, msg("How many tokens is this?"))
    [request] = fake_openai.requests
    prompt = approx_tokens("".join(str(m["content"]) for m in request["messages"]))
    today, month = await q.totals(ALICE)
    mine = today.users["U-Alice"]["fake-model"]
    assert (mine.input, mine.output) == (prompt, approx_tokens(answer))
    assert today.estimated_calls == 0 and month.tokens == today.tokens == mine.tokens
    assert today.channels["C1"]["fake-model"] == mine and today.names == {"U-Alice": "Alice"}


async def test_without_the_servers_usage_the_count_is_marked_estimated(
    model, fake_openai: FakeOpenAI
) -> None:
    q = quotas()
    fake_openai.push(Reply("an answer without usage", usage=False))
    await ask(engine_with(InProcessMemory(), model, q), msg("count yourself"))
    today, _ = await q.totals(ALICE)
    assert today.estimated_calls == 1 and today.tokens > 0


async def test_over_the_users_limit_one_sentence_and_no_model_call(
    model, fake_openai: FakeOpenAI
) -> None:
    from bot.metrics import QUOTA_REFUSALS

    q = quotas(limits=Limits(user=30))
    engine = engine_with(InProcessMemory(), model, q)
    await ask(engine, msg("a first question that costs more than thirty tokens " * 4))
    calls = len(fake_openai.requests)
    refusals = QUOTA_REFUSALS.labels("user")._value.get()
    with pytest.raises(OverQuota) as refused:
        await ask(engine, msg("and another", n=1))
    assert len(fake_openai.requests) == calls
    assert QUOTA_REFUSALS.labels("user")._value.get() == refusals + 1
    sentence = refused.value.user_message()
    assert sentence.startswith("You have used your daily limit of 30 tokens")
    assert "resets at midnight UTC, in 3 h" in sentence
    # Bob has his own limit; an admin has none.
    await ask(engine, msg("Bob here", author="Bob"))
    admin = quotas(q.ledger, limits=Limits(user=30), admins=frozenset({"U-Alice"}))
    await ask(engine_with(InProcessMemory(), model, admin), msg("still me", n=2))
    assert len(fake_openai.requests) == calls + 2


async def test_channel_and_workspace_limits_say_whose(model) -> None:
    for limits, whose in (
        (Limits(channel=10), "This channel"),
        (Limits(workspace=10), "This workspace"),
    ):
        engine = engine_with(InProcessMemory(), model, quotas(limits=limits))
        await ask(engine, msg("spend something"))
        with pytest.raises(OverQuota) as refused:
            await ask(engine, msg("again", author="Bob"))
        assert refused.value.user_message().startswith(f"{whose} has used its daily limit")


async def test_usage_rides_in_the_answers_save(
    model, redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """Accounting costs no round trip of its own: the same answer with and without it."""
    from bot.metrics import REDIS_ROUND_TRIPS
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL)
    try:
        memory = RedisMemory(client, prefix=clean_prefix)
        counted = engine_with(memory, model, quotas(RedisLedger(client, prefix=clean_prefix)))
        uncounted = engine_with(memory, model, quotas())  # in-process ledger: no Redis at all
        for engine, n in ((counted, 0), (uncounted, 1), (counted, 2)):
            await ask(engine, msg("warm up", n=n))  # scripts loaded, thread known
        trips = []
        for engine, n in ((counted, 3), (uncounted, 4)):
            before = REDIS_ROUND_TRIPS._value.get()
            await ask(engine, msg("measured", n=n))
            trips.append(REDIS_ROUND_TRIPS._value.get() - before)
        assert trips[0] == trips[1]
        today, _ = await counted.quotas.totals(ALICE)
        assert today.users["U-Alice"]["fake-model"].tokens > 0
    finally:
        await client.aclose()


async def test_with_redis_down_quotas_let_one_answer_through_per_user(
    model, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.store.redis_pool import connect_redis
    from tests.fakes.processes import free_port

    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        q = quotas(RedisLedger(dead, prefix="down"), limits=Limits(user=1000))
        engine = engine_with(InProcessMemory(), model, q)
        with caplog.at_level(logging.WARNING, logger="bot.usage.quotas"):
            await ask(engine, msg("first"))
        assert "quotas are not checked while Redis is down" in caplog.text
        with pytest.raises(StoreUnavailable):
            await ask(engine, msg("second", n=1))
        await ask(engine, msg("Bob's first", author="Bob"))
        assert len(fake_openai.requests) == 2
    finally:
        await dead.aclose()


async def test_summaries_count_every_model_call_to_the_asker(
    model, fake_openai: FakeOpenAI
) -> None:
    q = quotas()
    engine = engine_with(InProcessMemory(), model, q, budget=1000)
    at = datetime(2026, 11, 29, 9, tzinfo=UTC)
    sources = [
        SourceMessage(f"m{n}", "Bob", f"message {n} " + "words " * 60, at) for n in range(40)
    ]
    await engine.summarize_sources(sources, payer=ALICE)
    calls = len(fake_openai.requests)
    assert calls > 1  # chunks and a merge
    today, _ = await q.totals(ALICE)
    assert today.users["U-Alice"]["fake-model"].tokens == today.tokens > 0
    with pytest.raises(OverQuota):
        await engine_with(
            InProcessMemory(), model, quotas(q.ledger, limits=Limits(user=1))
        ).summarize_sources(sources, payer=ALICE)
    assert len(fake_openai.requests) == calls


async def test_usage_report_shows_tokens_cost_limit_and_models(model) -> None:
    prices = parse_prices("fake-model=1000/2000")
    q = quotas(limits=Limits(user=100_000), prices=prices)
    engine = engine_with(InProcessMemory(), model, q)
    await ask(engine, msg("something to count"))
    await ask(engine, msg("Bob asks too", author="Bob"))
    report = await q.report(ALICE)
    today, _ = await q.totals(ALICE)
    mine = today.users["U-Alice"]["fake-model"]
    spent = prices["fake-model"].of(mine.input, mine.output)
    assert report.splitlines()[0] == (
        f"Your usage today: {mine.tokens:,} tokens (${spent:,.2f}); "
        f"this month: {mine.tokens:,} tokens (${spent:,.2f})."
    )
    assert f"Your daily limit: 100,000 tokens; {100_000 - mine.tokens:,} left today" in report
    assert "Top users" not in report  # only admins see everyone
    admin = await quotas(q.ledger, admins=frozenset({"U-Alice"}), prices=prices).report(
        ALICE, channel_label=lambda c: f"#{c}"
    )
    assert "Top channels this month:\n  1. #C1:" in admin
    assert "Top users this month:\n  1. " in admin and "Bob" in admin and "Alice" in admin


def test_folds_use_the_fold_model_which_defaults_to_the_summary_model() -> None:
    from bot.openai_model import OpenAIChatModel
    from bot.settings import load_settings

    def routes(**env: str) -> dict:
        settings = load_settings(_env_file=None, OPENAI_BASE_URL="http://127.0.0.1:9/v1", **env)
        return OpenAIChatModel.from_settings(settings, EstimatingCounter())._models

    assert routes() == {}
    assert routes(OPENAI_SUMMARY_MODEL="small") == {"chunk": "small", "fold": "small"}
    assert routes(OPENAI_SUMMARY_MODEL="small", OPENAI_FOLD_MODEL="tiny") == {
        "chunk": "small", "fold": "tiny",
    }  # fmt: skip


async def test_an_answer_stopped_midway_still_counts_what_it_spent(
    model, fake_openai: FakeOpenAI
) -> None:
    """The answer is closed after its first words (the user deleted the question, the bot is
    stopping): the tokens the model spent are counted all the same."""
    q = quotas()
    engine = engine_with(InProcessMemory(), model, q)
    fake_openai.push(Reply(text="one two three four five six seven eight", token_delay=0.05))
    deltas = engine.answer(msg("a question that is abandoned"))
    assert await anext(deltas)
    await deltas.aclose()
    today, _ = await q.totals(ALICE)
    assert today.users["U-Alice"]["fake-model"].input > 0
