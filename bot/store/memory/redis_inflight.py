"""Answers in flight in Redis (see bot.store.inflight): recorded beside their thread, indexed for
recovery, and taken over once, with the lock, when their process died. Mixed into RedisMemory."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bot.conversation import ThreadRef
from bot.store.inflight import PendingAnswer
from bot.store.keys import KeyBuilder, ThreadKeys
from bot.store.redis_pool import is_cluster

T = TypeVar("T")

# Take over a dead owner's answer in flight: drop its record and the lock it still holds. Only the
# caller that finds the record still naming that owner gets 1.
TAKE_OVER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if ok and rec['owner'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local holder = redis.call('GET', KEYS[2])
if holder and string.sub(holder, 1, #ARGV[2] + 1) == ARGV[2] .. ':' then
  redis.call('DEL', KEYS[2])
end
return 1
"""

UPDATE_PENDING = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
"""

PENDING_TTL = 86_400  # an answer in flight longer than a day is certainly settled by recovery
IN_FLIGHT_SCAN = 1000  # at most this many records are read per recovery pass


def index_member(pending: PendingAnswer) -> str:
    t = pending.thread
    return json.dumps([t.platform, t.workspace, t.channel, t.thread, pending.key])


class InFlightRecords:
    """Provided by RedisMemory."""

    owner: str
    _redis: aioredis.Redis
    _keys: KeyBuilder
    _answering: set[str]
    _take_over: AsyncScript
    _update_pending: AsyncScript

    async def _call(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError

    async def _record(self, keys: ThreadKeys, pending: PendingAnswer) -> None:
        pipe = self._redis.pipeline(transaction=False)
        self._queue_record(pipe, keys, pending)
        await self._call(pipe.execute())

    def _queue_record(self, pipe: Any, keys: ThreadKeys, pending: PendingAnswer) -> None:
        mine = pending.owned_by(self.owner)
        self._answering.add(index_member(mine))
        pipe.hset(keys.pending, mine.key, mine.to_json())
        pipe.expire(keys.pending, PENDING_TTL)
        pipe.zadd(self._keys.in_flight, {index_member(mine): mine.started})

    async def in_flight(self) -> list[PendingAnswer]:
        members = cast(
            list[bytes],
            await self._call(self._redis.zrange(self._keys.in_flight, 0, IN_FLIGHT_SCAN - 1)),
        )
        located: list[tuple[bytes, ThreadKeys, str]] = []
        for member in members:
            platform, workspace, channel, thread, key = (str(p) for p in json.loads(member))
            keys = self._keys.thread(ThreadRef(platform, workspace, channel, thread))
            located.append((member, keys, key))
        if not located:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for _, keys, key in located:
            pipe.hget(keys.pending, key)
        records = await self._call(pipe.execute())
        found = [PendingAnswer.from_json(raw) for raw in records if raw is not None]
        stale = [
            member for (member, _, _), raw in zip(located, records, strict=True) if raw is None
        ]
        if stale:  # settled between the two reads, or its record expired
            await self._call(self._redis.zrem(self._keys.in_flight, *stale))
        return found

    async def update_pending(self, pending: PendingAnswer) -> None:
        keys = self._keys.thread(pending.thread)
        mine = pending.owned_by(self.owner)
        await self._call(self._update_pending(keys=[keys.pending], args=[mine.key, mine.to_json()]))

    def answering(self, pending: PendingAnswer) -> bool:
        return index_member(pending) in self._answering

    async def heartbeat(self, ttl: float) -> None:
        await self._call(self._redis.set(self._keys.alive(self.owner), "1", px=int(ttl * 1000)))

    async def live_owners(self, owners: set[str]) -> set[str]:
        ordered = sorted(owners)
        if not ordered:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for owner in ordered:
            pipe.exists(self._keys.alive(owner))
        answers = await self._call(pipe.execute())
        return {owner for owner, alive in zip(ordered, answers, strict=True) if alive}

    async def take_over(self, pending: PendingAnswer) -> bool:
        keys = self._keys.thread(pending.thread)
        if is_cluster(self._redis):  # no scripts in a cluster pipeline
            taken = await self._call(
                self._take_over(keys=[keys.pending, keys.lock], args=[pending.key, pending.owner])
            )
            await self._call(self._redis.zrem(self._keys.in_flight, index_member(pending)))
            return bool(taken)
        pipe = self._redis.pipeline(transaction=False)
        await self._take_over(
            keys=[keys.pending, keys.lock], args=[pending.key, pending.owner], client=pipe
        )
        pipe.zrem(self._keys.in_flight, index_member(pending))
        taken, _ = await self._call(pipe.execute())
        return bool(taken)
