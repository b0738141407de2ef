"""Answers in flight: recorded from the start, settled by whoever outlives their process."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import pytest
import redis.asyncio as aioredis

from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import AnswerCutOff, ModelTimeout, StoreUnavailable
from bot.readiness import Readiness
from bot.recovery import Recovery
from bot.store.inflight import PendingAnswer
from bot.store.memory import RedisMemory
from bot.store.memory.base import ThreadMemory
from bot.tokens import EstimatingCounter
from tests.conftest import openai_model
from tests.fakes.openai_server import FakeOpenAI, Reply

THREAD = ThreadRef("slack", "T1", "C1", "1700000000.000100")


@pytest.fixture(params=["inprocess", "redis", "cluster"])
def memory_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def question(text: str = "What is up?", n: int = 1) -> IncomingMessage:
    return IncomingMessage(THREAD, text, "UALICE", "Alice", message_id=f"1700000000.{n:06d}")


def pending(message: IncomingMessage, owner: str = "") -> PendingAnswer:
    return PendingAnswer(message, {"channel": "C1", "ids": ["9.1"]}, owner, time.time())


async def die_while_answering(dead: RedisMemory, record: PendingAnswer) -> None:
    """What a process killed mid-answer leaves in Redis: its record and the lock it held."""
    keys = dead._keys.thread(record.thread)
    await dead._record(keys, record)
    await dead.client.set(keys.lock, f"{dead.owner}:token", px=30_000)


async def test_an_answer_in_flight_makes_its_thread_known(memory: ThreadMemory) -> None:
    assert not await memory.exists(THREAD)
    record = pending(question())
    async with memory.lock(THREAD, pending=record):
        assert await memory.exists(THREAD)  # a follow-up now counts as part of the thread
        [found] = await memory.in_flight()
        assert found.message == record.message and found.owner == memory.owner
        assert found.reply == {"channel": "C1", "ids": ["9.1"]}
        await memory.append(THREAD, record.message.as_turn(), settled=record)
    assert await memory.in_flight() == []


async def test_settling_without_turns_still_ends_the_record(memory: ThreadMemory) -> None:
    record = pending(question())
    async with memory.lock(THREAD, pending=record):
        pass
    await memory.append(THREAD, settled=record)
    assert await memory.in_flight() == [] and not await memory.exists(THREAD)


async def test_only_one_process_takes_over_a_dead_owners_answer(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    dead = RedisMemory(redis_client, prefix=clean_prefix)
    await die_while_answering(dead, pending(question()))
    survivors = [RedisMemory(redis_client, prefix=clean_prefix) for _ in range(3)]
    [found] = await survivors[0].in_flight()
    results = await asyncio.gather(*(s.take_over(found) for s in survivors))
    assert sorted(results) == [False, False, True]
    winner = survivors[results.index(True)]
    [taken] = [r for r in await survivors[0].in_flight() if r.key == found.key]
    assert taken.owner == winner.owner  # until it is settled, then dropped
    await winner.append(THREAD, settled=taken)
    assert await survivors[0].in_flight() == []
    # the dead owner's lock was freed with it: the next answer does not wait for its expiry
    started = time.monotonic()
    async with survivors[1].lock(THREAD):
        pass
    assert time.monotonic() - started < 1.0


async def test_recovery_settles_the_answers_of_a_dead_process_only(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    model = openai_model(fake_openai)
    dead = RedisMemory(redis_client, prefix=clean_prefix)
    alive = RedisMemory(redis_client, prefix=clean_prefix)
    await dead.heartbeat(0.2)
    await alive.heartbeat(30)
    await die_while_answering(dead, pending(question("lost question", 1)))
    other = ThreadRef("slack", "T1", "C1", "other")
    kept = PendingAnswer(
        IncomingMessage(other, "still answering", "UBOB", "Bob", "2.0"), {}, "", time.time()
    )
    async with alive.lock(other, pending=kept):
        engine = ConversationEngine(alive, model, EstimatingCounter())
        recovery = Recovery(alive, engine, Readiness(), alive_for=0.2, confirm=0.2)
        ended: list[PendingAnswer] = []

        async def settle(record: PendingAnswer) -> None:
            ended.append(record)

        recovery.register("slack", settle)
        await asyncio.sleep(0.3)  # let the dead process's liveness lapse (its TTL is 0.2 s)
        assert await recovery.beat() == 0  # silent once is not dead: Redis may just be back
        await asyncio.sleep(0.25)
        assert await recovery.beat() == 1
        assert [r.message.text for r in ended] == ["lost question"]
        # the question is remembered, so the thread's next answer sees it
        assert [t.text for t in (await alive.load(THREAD)).turns] == ["lost question"]
        assert [r.message.text for r in await alive.in_flight()] == ["still answering"]
        assert await recovery.beat() == 0  # settled once
    await model.aclose()


async def test_our_own_record_left_by_a_failed_save_is_cleared_without_touching_the_reply(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    class SettlingFails(RedisMemory):
        blinking = False

        async def _call(self, awaitable):
            if self.blinking:
                awaitable.close()
                raise StoreUnavailable("Redis is unavailable: connection reset")
            return await super()._call(awaitable)

    memory = SettlingFails(redis_client, prefix=clean_prefix)
    record = pending(question("asked while Redis blinked"))
    async with memory.lock(THREAD, pending=record):
        memory.blinking = True  # the answer ended; its settling save never reached Redis
        with pytest.raises(StoreUnavailable):
            await memory.append(THREAD, settled=record)
        memory.blinking = False
    model = openai_model(fake_openai)
    recovery = Recovery(memory, ConversationEngine(memory, model, EstimatingCounter()), Readiness())
    settled: list[PendingAnswer] = []

    async def settle(record: PendingAnswer) -> None:
        settled.append(record)

    recovery.register("slack", settle)
    await recovery.beat()
    assert settled == []  # the shown answer is complete: never replaced by a sentence
    assert await memory.in_flight() == []
    assert [t.text for t in (await memory.load(THREAD)).turns] == ["asked while Redis blinked"]
    await model.aclose()


async def test_a_finished_answer_survives_a_failed_save(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI, caplog
) -> None:
    class SaveFails(RedisMemory):
        async def append(self, thread, *turns, settled=None, riders=()):
            from bot.errors import StoreUnavailable

            raise StoreUnavailable("Redis is unavailable: connection refused")

    model = openai_model(fake_openai)
    memory = SaveFails(redis_client, prefix=clean_prefix)
    engine = ConversationEngine(memory, model, EstimatingCounter(), EngineConfig())
    fake_openai.push(Reply(text="The whole answer."))
    async with aclosing(engine.answer(question(), reply={})) as deltas:
        text = "".join([d async for d in deltas])  # no error in place of the answer
    assert text == "The whole answer."
    assert "could not save" in caplog.text and "not remembered" in caplog.text
    await model.aclose()


async def test_a_stream_that_stops_without_finishing_is_kept_and_marked(
    engine: ConversationEngine, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(Reply(text="The first half of", unfinished=True))
    shown: list[str] = []
    with pytest.raises(AnswerCutOff) as caught:
        async with aclosing(engine.answer(question())) as deltas:
            async for delta in deltas:
                shown.append(delta)
    assert "".join(shown) == "The first half of"
    assert "cut off" in caught.value.user_message()
    turns = (await engine.read(THREAD)).turns
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text == "The first half of [cut off]"


async def test_one_deadline_bounds_the_whole_answer(fake_openai: FakeOpenAI) -> None:
    # Each wait fits OPENAI_TIMEOUT (1 s) and the SDK would retry; the deadline ends it all.
    model = openai_model(fake_openai, timeout=1.0, max_retries=1, deadline=1.5)
    fake_openai.push(Reply(text="a b c d e f g h", token_delay=0.5))
    started = time.monotonic()
    with pytest.raises(ModelTimeout):
        async for _ in model.stream([]):
            pass
    assert time.monotonic() - started < 2.5
    await model.aclose()


async def test_a_process_whose_registration_was_lost_registers_again(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """Redis lost the `{live}` registry (a restart, or others took the process for dead and
    dropped it) while an answer streamed: the next heartbeat registers it again, so if the
    process then dies its answer is still found."""
    answering = RedisMemory(redis_client, prefix=clean_prefix)
    record = pending(question("asked before the blink"))
    await answering.heartbeat(30)
    await answering._record(answering._keys.thread(THREAD), record)
    await redis_client.delete(answering._keys.owners, answering._keys.places(answering.owner))
    await answering.heartbeat(0.05)  # renews, notices, registers again; then "dies"
    await asyncio.sleep(0.1)  # its 50-ms liveness lapses
    survivor = RedisMemory(redis_client, prefix=clean_prefix)
    [found] = await survivor.in_flight()
    assert found.message.text == "asked before the blink" and found.owner == answering.owner


async def test_an_answer_expected_is_in_flight_before_it_is_shown_and_settled_if_never_begun(
    memory: ThreadMemory, fake_openai: FakeOpenAI
) -> None:
    model = openai_model(fake_openai)
    engine = ConversationEngine(memory, model, EstimatingCounter(), EngineConfig())
    posting = {"channel": "C1", "ids": [], "posting": True}
    with pytest.raises(RuntimeError):  # the adapter failed before the answer began
        async with engine.expecting(question(), posting):
            [found] = await memory.in_flight()  # a crash now is settled where it is posted
            assert found.reply == posting and found.owner == memory.owner
            raise RuntimeError("the thread could not be read")
    assert await memory.in_flight() == []
    # one that begins is taken over by the answer, and settled by its save
    fake_openai.push(Reply(text="Done."))
    async with engine.expecting(question(), posting):
        shown = {"channel": "C1", "ids": ["9.1"]}
        async with aclosing(engine.answer(question(), reply=shown)) as deltas:
            assert "".join([d async for d in deltas]) == "Done."
    assert await memory.in_flight() == []
    assert [t.text for t in (await memory.load(THREAD)).turns] == ["What is up?", "Done."]
    await model.aclose()


async def test_the_placeholder_is_shown_only_once_the_answer_is_recorded(
    memory: ThreadMemory, fake_openai: FakeOpenAI
) -> None:
    model = openai_model(fake_openai)
    engine = ConversationEngine(memory, model, EstimatingCounter(), EngineConfig())
    seen: list[list[PendingAnswer]] = []

    async def show() -> None:  # the adapter posting its placeholder
        seen.append(await memory.in_flight())

    fake_openai.push(Reply(text="Done."))
    posting = {"channel": "C1", "ids": [], "posting": True}
    async with aclosing(engine.answer(question(), reply=posting, show=show)) as deltas:
        assert "".join([d async for d in deltas]) == "Done."
    [[recorded]] = seen  # shown once, with its record already in the store
    assert recorded.reply == posting and recorded.message.message_id == question().message_id
    assert await memory.in_flight() == []
    await model.aclose()
