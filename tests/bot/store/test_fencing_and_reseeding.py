"""Fencing (a process taken for dead never saves the answer it lost) and writing back what a
Redis that came back empty lost (its epoch changed)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import Fenced
from bot.store.claims import RedisClaims
from bot.store.inflight import PendingAnswer
from bot.store.memory import RedisMemory
from bot.tokens import EstimatingCounter
from tests.bot.store.test_inflight import THREAD, pending, question
from tests.conftest import openai_model
from tests.fakes.openai_server import FakeOpenAI


async def lose_everything(client: aioredis.Redis, prefix: str) -> None:
    """What a restart without persistence, a failover to an empty replica or a flush leaves."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


async def test_an_answer_taken_over_is_fenced_out_of_its_save(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    paused = RedisMemory(redis_client, prefix=clean_prefix)
    other = RedisMemory(redis_client, prefix=clean_prefix)  # takes it for dead
    record = pending(question())
    async with paused.lock(THREAD, pending=record):
        assert await paused.owns(record)
        [found] = await other.in_flight()  # it renews no liveness in this test
        assert await other.take_over(found)
        assert not await paused.owns(record) and await other.owns(record)
        try:
            await paused.append(THREAD, record.message.as_turn(), settled=record)
            raise AssertionError("a fenced answer was saved")
        except Fenced:
            pass
    assert (await paused.load(THREAD)).turns == ()  # nothing written, not even the question
    # the taker settles it and drops the record; the paused process stays fenced out
    await other.append(THREAD, record.message.as_turn(), settled=found.owned_by(other.owner))
    assert await other.in_flight() == [] and not await paused.owns(record)


async def test_a_taker_that_dies_while_settling_leaves_the_answer_to_the_next(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    dead = RedisMemory(redis_client, prefix=clean_prefix)
    taker = RedisMemory(redis_client, prefix=clean_prefix)
    third = RedisMemory(redis_client, prefix=clean_prefix)
    keys = dead._keys.thread(THREAD)
    await dead._record(keys, pending(question()).owned_by(dead.owner))
    [found] = await taker.in_flight()
    assert await taker.take_over(found)  # ...and the taker dies before settling it
    [again] = await third.in_flight()  # the taker renews no liveness either
    assert again.owner == taker.owner and again.key == found.key
    assert await third.take_over(again)
    assert not await taker.owns(again) and await third.owns(again)


async def test_a_record_lost_with_redis_is_no_takeover(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    record = pending(question())
    async with memory.lock(THREAD, pending=record):
        await lose_everything(redis_client, clean_prefix)
        assert await memory.owns(record)  # nobody settled it: the answer goes on and is saved
        await memory.append(THREAD, record.message.as_turn(), settled=record)
    assert len((await memory.load(THREAD)).turns) == 1


async def test_a_fenced_process_cannot_move_its_record(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    paused = RedisMemory(redis_client, prefix=clean_prefix)
    other = RedisMemory(redis_client, prefix=clean_prefix)
    record = pending(question())
    async with paused.lock(THREAD, pending=record):
        [found] = await other.in_flight()
        assert await other.take_over(found)
        try:
            await paused.update_pending(record)
            raise AssertionError("a fenced process moved the record of an answer it lost")
        except Fenced:
            pass
        [kept] = await other.in_flight()
        assert kept.owner == other.owner and kept.reply == found.reply  # as the taker left it


async def test_an_emptied_redis_gets_back_the_answers_in_flight_locks_and_registration(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    other = RedisMemory(redis_client, prefix=clean_prefix)  # another replica
    assert not await memory.heartbeat(10)  # the first beat: nothing was lost
    assert not await other.heartbeat(10)
    record = pending(question())
    keys = memory._keys.thread(THREAD)
    async with memory.lock(THREAD, pending=record):
        token = await redis_client.get(keys.lock)
        await lose_everything(redis_client, clean_prefix)
        assert await memory.heartbeat(10)  # noticed: the epoch it knew is gone
        assert await other.heartbeat(10)  # every live process notices, not just the first
        assert await redis_client.get(keys.lock) == token  # the lock is held again
        assert await redis_client.hget(keys.pending, record.key) is not None
        assert await redis_client.zscore(memory._keys.owners, memory.owner) is not None
        assert keys.place.encode() in await redis_client.smembers(memory._keys.places(memory.owner))
        assert not await memory.heartbeat(10)  # and only once
        await memory.append(THREAD, record.message.as_turn(), settled=record)
    assert await redis_client.hget(keys.pending, record.key) is None


async def test_a_lock_written_back_after_redis_came_back_empty_is_renewed_again(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    """The renewal that found the lock gone (Redis emptied) does not end its renewals: the lock
    is written back with the answers in flight, and renewed again while the answer streams."""
    memory = RedisMemory(redis_client, prefix=clean_prefix, lock_ttl=3.0)
    await memory.heartbeat(10)
    keys = memory._keys.thread(THREAD)
    async with memory.lock(THREAD, pending=pending(question())):
        held = memory._held[keys.lock]
        await lose_everything(redis_client, clean_prefix)
        held.renewed -= 0.9  # due within the next beat: its renewal rides in this one
        assert await memory.heartbeat(10, next_in=0.5)  # gone, noticed, written back
        assert not held.lost
        await redis_client.pexpire(keys.lock, 500)
        held.renewed -= 0.9
        await memory.heartbeat(10, next_in=0.5)
        assert await redis_client.pttl(keys.lock) > 2500  # renewed as before the loss
    await memory.aclose()


async def test_claims_are_written_back_after_redis_came_back_empty(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    mine = RedisClaims(redis_client, prefix=clean_prefix)
    theirs = RedisClaims(redis_client, prefix=clean_prefix)  # another replica's
    assert await mine.claim("slack:T1:C1", "msg:C1:1.1", "event:Ev1")
    await lose_everything(redis_client, clean_prefix)
    assert not await mine.claim("slack:T1:C1", "msg:C1:1.1")  # still known in the process
    assert await mine.reseed() == 2
    # the copy of the message (another event type) reaching the other replica is not answered
    assert not await theirs.claim("slack:T1:C1", "msg:C1:1.1", "event:Ev2")
    left = await redis_client.ttl(f"{clean_prefix}:claim:{{slack:T1:C1}}:msg:C1:1.1")
    assert 3500 < left <= 3600  # what was left of the hour, not a new one


async def test_a_pause_between_the_fence_check_and_the_write_is_caught_by_the_lapsed_lease(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    """The check passes, then the process stops (SIGSTOP) long enough to be taken over; on
    waking, its heartbeat runs first and renews its liveness. The write must not go out."""
    other = RedisMemory(redis_client, prefix=clean_prefix)

    class PausedAfterTheCheck(RedisMemory):
        pauses = 1

        async def owns(self, record: PendingAnswer) -> bool:
            mine = await super().owns(record)
            if self.pauses:  # ...asleep here: its liveness lapses and another takes over
                self.pauses -= 1
                await redis_client.delete(self._keys.alive(self.owner))
                [found] = await other.in_flight()
                assert await other.take_over(found)
                await self.heartbeat(10.0)  # woken: the heartbeat task ran first
            return mine

    paused = PausedAfterTheCheck(redis_client, prefix=clean_prefix)
    await paused.heartbeat(10.0)
    model = openai_model(fake_openai)
    engine = ConversationEngine(paused, model, EstimatingCounter(), EngineConfig())
    message = question()
    async with engine.expecting(message, {"channel": "C1", "ids": [], "posting": True}):
        # a lapse nobody used: the record written earlier no longer vouches, a check is due
        await redis_client.delete(paused._keys.alive(paused.owner))
        await paused.heartbeat(10.0)
        with pytest.raises(Fenced):
            await engine.hold(message)  # ...so nothing is written over the settled answer
        assert paused.lapses == 2
    await model.aclose()


async def test_a_pause_after_the_record_was_written_is_caught_without_a_check_before(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    """Writing the answer's record counts as a check while the lease holds, so the writes
    after it ask Redis nothing; a pause long enough to be taken over is still caught."""
    other = RedisMemory(redis_client, prefix=clean_prefix)
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    await memory.heartbeat(10.0)
    model = openai_model(fake_openai)
    engine = ConversationEngine(memory, model, EstimatingCounter(), EngineConfig())
    message = question()
    checks = 0
    owns = memory.owns

    async def counted(record: PendingAnswer) -> bool:
        nonlocal checks
        checks += 1
        return await owns(record)

    memory.owns = counted  # type: ignore[method-assign]
    async with engine.expecting(message, {"channel": "C1", "ids": [], "posting": True}):
        for _ in range(3):
            await engine.hold(message)
        assert checks == 0  # the lease held since the record was written
        await redis_client.delete(memory._keys.alive(memory.owner))  # asleep...
        [found] = await other.in_flight()
        assert await other.take_over(found)
        await memory.heartbeat(10.0)  # ...woken: the heartbeat ran first
        with pytest.raises(Fenced):
            await engine.hold(message)
        assert checks == 1
    await model.aclose()


async def test_a_lease_run_out_is_renewed_and_checked_again_before_writing(
    redis_client: aioredis.Redis, clean_prefix: str, fake_openai: FakeOpenAI
) -> None:
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    await memory.heartbeat(0.05)  # a lease that runs out before the write below
    model = openai_model(fake_openai)
    engine = ConversationEngine(memory, model, EstimatingCounter(), EngineConfig())
    message = question()
    async with engine.expecting(message, {"channel": "C1", "ids": [], "posting": True}):
        await asyncio.sleep(max(0.0, memory.lease_left()) + 0.01)  # time passing is the test
        await engine.hold(message)  # still ours: renewed, then the write may go
        assert memory.lease_left() > 0 and memory.lapses == 1
    await model.aclose()


async def test_one_cluster_shard_failing_over_empty_is_noticed_and_its_answers_written_back(
    cluster_client: aioredis.Redis, key_prefix: str
) -> None:
    from redis.asyncio.cluster import RedisCluster

    assert isinstance(cluster_client, RedisCluster)
    memory = RedisMemory(cluster_client, prefix=key_prefix)
    assert not await memory.heartbeat(10)
    live = cluster_client.get_node_from_key(memory._keys.epoch)
    threads = (replace(THREAD, channel=f"C{n}") for n in range(100))
    thread = next(t for t in threads if cluster_client.get_node_from_key(
        memory._keys.thread(t).pending) != live)  # fmt: skip
    record = pending(replace(question(), thread=thread))
    keys = memory._keys.thread(thread)
    shard = cluster_client.get_node_from_key(keys.pending)
    async with memory.lock(thread, pending=record):
        # that shard alone comes back empty: {live} and its epoch are untouched elsewhere
        lost = [k async for k in cluster_client.scan_iter(match=f"{key_prefix}:*")]
        for key in lost:
            if cluster_client.get_node_from_key(key) == shard:
                await cluster_client.delete(key)
        assert await cluster_client.hget(keys.pending, record.key) is None
        assert await memory.heartbeat(10)  # noticed through that shard's own marker
        assert await cluster_client.hget(keys.pending, record.key) is not None
        await memory.append(thread, record.message.as_turn(), settled=record)
