"""Answers in flight in Redis (see bot.store.inflight): recorded beside their thread, indexed in
their channel (the same Cluster slot, so recording and settling one costs no extra send), and
taken over once, with the lock, when their process died. Mixed into RedisMemory.

Recovery finds them through a small registry under the tag `{live}`: every process that records
answers is in `owners`, says it is alive in `alive:<owner>`, and lists in `places:<owner>` the
channels it recorded answers in (once per channel per process). A pass reads the places of the
owners that stopped renewing their liveness, and the places where this process's own records
may be left; a live process's answers are its own business."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bot.conversation import ThreadRef
from bot.store.inflight import PendingAnswer
from bot.store.keys import KeyBuilder, ThreadKeys

T = TypeVar("T")

# Take over a dead owner's answer in flight: drop its record (and its member ARGV[3] of the
# channel's index KEYS[3]) and the lock it still holds. Only the caller that finds the record still
# naming that owner gets 1.
TAKE_OVER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return 0
end
local ok, rec = pcall(cjson.decode, raw)
if ok and rec['owner'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[3])
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
IN_FLIGHT_SCAN = 1000  # at most this many records are read per place and recovery pass
PLACE_IDLE = 3600.0  # a place without answers this long leaves this process's registration


def index_member(pending: PendingAnswer) -> str:
    t = pending.thread
    return json.dumps([t.platform, t.workspace, t.channel, t.thread, pending.key, t.place])


def _located(member: bytes) -> tuple[ThreadRef, str]:
    platform, workspace, channel, thread, key, *place = (str(p) for p in json.loads(member))
    return ThreadRef(platform, workspace, channel, thread, *place), key


class InFlightRecords:
    """Provided by RedisMemory."""

    owner: str
    _redis: aioredis.Redis
    _keys: KeyBuilder
    _answering: dict[str, PendingAnswer]
    _take_over: AsyncScript
    _update_pending: AsyncScript

    async def _call(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError

    _places: dict[str, float]
    _mine: set[str]

    async def _record(self, keys: ThreadKeys, pending: PendingAnswer) -> None:
        pipe = self._redis.pipeline(transaction=False)
        self._queue_record(pipe, keys, pending)
        await self._call(pipe.execute())

    def _queue_record(self, pipe: Any, keys: ThreadKeys, pending: PendingAnswer) -> None:
        mine = pending.owned_by(self.owner)
        self._answering[index_member(mine)] = mine
        if keys.place not in self._places:  # first answer here: registered once per process
            self._queue_registration(pipe, [keys.place])
        self._places[keys.place] = time.monotonic()
        pipe.hset(keys.pending, mine.key, mine.to_json())
        pipe.expire(keys.pending, PENDING_TTL)
        pipe.zadd(keys.index, {index_member(mine): mine.started})

    def _queue_registration(self, pipe: Any, places: list[str]) -> None:
        pipe.zadd(self._keys.owners, {self.owner: time.time()})
        pipe.sadd(self._keys.places(self.owner), *places)

    async def in_flight(self) -> list[PendingAnswer]:
        """This process's answers in flight (those it is working on from its own memory, those
        whose settling save failed from Redis), and those of every process whose liveness
        lapsed."""
        registered = cast(
            list[bytes], await self._call(self._redis.zrange(self._keys.owners, 0, -1))
        )
        owners = [o.decode() for o in registered if o.decode() != self.owner]
        silent: dict[str, set[str]] = {}
        if owners:
            pipe = self._redis.pipeline(transaction=False)
            for owner in owners:
                pipe.exists(self._keys.alive(owner))
                pipe.smembers(self._keys.places(owner))
            found = await self._call(pipe.execute())
            for owner, alive, places in zip(owners, found[::2], found[1::2], strict=True):
                if not alive:
                    silent[owner] = {p.decode() for p in places}
        working = list(self._answering.values())
        mine = set(self._mine)  # read before: a save failing meanwhile is looked at next time
        places = sorted(mine.union(*silent.values()))
        if not places:
            await self._forget_owners(silent, set())
            return working
        pipe = self._redis.pipeline(transaction=False)
        for place in places:
            pipe.zrange(self._keys.in_flight(place), 0, IN_FLIGHT_SCAN - 1)
        indexes = await self._call(pipe.execute())
        located: list[tuple[str, bytes, ThreadKeys, str]] = []
        for place, members in zip(places, indexes, strict=True):
            for member in members:
                thread, key = _located(member)
                located.append((place, member, self._keys.thread(thread), key))
        records: list[Any] = []
        if located:
            pipe = self._redis.pipeline(transaction=False)
            for _, _, keys, key in located:
                pipe.hget(keys.pending, key)
            records = await self._call(pipe.execute())
        wanted = {self.owner, *silent}
        known = {(r.thread, r.key) for r in working}
        found_records: list[PendingAnswer] = []
        stale: list[tuple[str, bytes]] = []
        holding: set[str] = set()  # places where this process still has a record
        left: set[str] = set()  # silent owners that still have records
        for (place, member, _, _), raw in zip(located, records, strict=True):
            if raw is None:  # settled between the two reads, or its record expired
                stale.append((place, member))
                continue
            record = PendingAnswer.from_json(raw)
            if record.owner == self.owner:
                holding.add(place)
            elif record.owner in silent:
                left.add(record.owner)
            if record.owner in wanted and (record.thread, record.key) not in known:
                found_records.append(record)
        self._mine -= mine - holding
        if stale:
            pipe = self._redis.pipeline(transaction=False)
            for place, member in stale:
                pipe.zrem(self._keys.in_flight(place), member)
            await self._call(pipe.execute())
        await self._forget_owners(silent, left)
        return working + found_records

    async def _forget_owners(self, silent: dict[str, set[str]], left: set[str]) -> None:
        """Owners gone silent with nothing left in flight leave the registry. One that was only
        cut off comes back with its next heartbeat and registers its places again."""
        gone = [owner for owner in silent if owner not in left]
        if gone:
            pipe = self._redis.pipeline(transaction=False)
            for owner in gone:
                pipe.zrem(self._keys.owners, owner)
                pipe.delete(self._keys.places(owner))
            await self._call(pipe.execute())

    async def update_pending(self, pending: PendingAnswer) -> None:
        keys = self._keys.thread(pending.thread)
        mine = pending.owned_by(self.owner)
        member = index_member(mine)
        if member in self._answering:
            self._answering[member] = mine
        await self._call(self._update_pending(keys=[keys.pending], args=[mine.key, mine.to_json()]))

    def answering(self, pending: PendingAnswer) -> bool:
        return index_member(pending) in self._answering

    async def heartbeat(self, ttl: float) -> None:
        now = time.monotonic()
        idle = [p for p, used in self._places.items() if now - used > PLACE_IDLE]
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._keys.alive(self.owner), "1", px=int(ttl * 1000))
        pipe.zadd(self._keys.owners, {self.owner: time.time()})
        if idle:  # no answer there for an hour: registered again at the next one
            pipe.srem(self._keys.places(self.owner), *idle)
        _, added, *_ = await self._call(pipe.execute())
        for place in idle:
            self._places.pop(place, None)
        if added and self._places:
            # Not registered (Redis lost its data, or others took this process for dead):
            # register again where answers are open now, and elsewhere at the next answer.
            answering = {self._keys.thread(p.thread).place for p in self._answering.values()}
            answering |= self._mine
            self._places = {p: now for p in answering}
            if answering:
                pipe = self._redis.pipeline(transaction=False)
                self._queue_registration(pipe, sorted(answering))
                await self._call(pipe.execute())

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
        taken = await self._call(
            self._take_over(
                keys=[keys.pending, keys.lock, keys.index],
                args=[pending.key, pending.owner, index_member(pending)],
            )
        )
        return bool(taken)
