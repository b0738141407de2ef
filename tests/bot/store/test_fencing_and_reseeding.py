"""Fencing (a process taken for dead never saves the answer it lost) and writing back what a
Redis that came back empty lost (its epoch changed)."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.errors import Fenced
from bot.store.claims import RedisClaims
from bot.store.memory import RedisMemory
from bot.store.memory.base import ThreadMemory
from tests.bot.store.test_inflight import THREAD, pending, question


async def lose_everything(client: aioredis.Redis, prefix: str) -> None:
    """What a restart without persistence, a failover to an empty replica or a flush leaves."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


async def test_an_answer_taken_over_is_fenced_out_of_its_save(memory: ThreadMemory) -> None:
    record = pending(question())
    async with memory.lock(THREAD, pending=record):
        assert await memory.owns(record)
        [mine] = await memory.in_flight()
        assert await memory.take_over(mine)  # another process took this one for dead
        assert not await memory.owns(record)
        try:
            await memory.append(THREAD, record.message.as_turn(), settled=record)
            raise AssertionError("a fenced answer was saved")
        except Fenced:
            pass
    assert (await memory.load(THREAD)).turns == ()  # nothing written, not even the question


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
    memory = RedisMemory(redis_client, prefix=clean_prefix)
    record = pending(question())
    async with memory.lock(THREAD, pending=record):
        [mine] = await memory.in_flight()
        assert await memory.take_over(mine)
        try:
            await memory.update_pending(record)
            raise AssertionError("a fenced process moved the record of an answer it lost")
        except Fenced:
            pass
        keys = memory._keys.thread(THREAD)
        assert await redis_client.hget(keys.pending, record.key) is None  # not written again


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
