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
import secrets
import time
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from bot.conversation import ThreadRef
from bot.errors import Fenced, StoreUnavailable
from bot.store.inflight import PendingAnswer
from bot.store.keys import KeyBuilder, ThreadKeys
from bot.store.redis_pool import run_pipeline
from bot.store.riders import LaterWrites

T = TypeVar("T")

# Take over a dead owner's (ARGV[2]) answer in flight: the record names the taker (ARGV[5]) from
# now on, so should the taker die while settling it, the next process settles it again; the lock
# the dead owner still holds is freed, and the answer is marked taken (KEYS[4]) so its owner,
# should it wake, is fenced out (FENCE). Only the caller that finds the record still naming that
# owner gets 1. A record that cannot be read is dropped.
TAKE_OVER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  redis.call('ZREM', KEYS[3], ARGV[3])
  return 0
end
local ok, rec = pcall(cjson.decode, raw)
if ok and rec['owner'] ~= ARGV[2] then return 0 end
local owner = '"owner":"' .. ARGV[2] .. '"'
local from = string.find(raw, owner, 1, true)
if ok and from then
  local taken = '"owner":"' .. ARGV[5] .. '","taken_from":"' .. ARGV[2] .. '"'
  raw = string.sub(raw, 1, from - 1) .. taken .. string.sub(raw, from + #owner)
  redis.call('HSET', KEYS[1], ARGV[1], raw)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[4])
local holder = redis.call('GET', KEYS[2])
if holder and string.sub(holder, 1, #ARGV[2] + 1) == ARGV[2] .. ':' then
  redis.call('DEL', KEYS[2])
end
return 1
"""

# One check, shared by the scripts below and the save (bot.store.memory.redis): whether `owner`
# may still write answer `key` — its record (in hash `pending`) names it, or there is none and the
# answer was not taken over (set `taken`): a record lost with Redis's data is no takeover.
OWNS = """
local function owns(pending, taken, key, owner)
  local raw = redis.call('HGET', pending, key)
  if raw then
    local ok, rec = pcall(cjson.decode, raw)
    return not (ok and rec['owner'] ~= owner), raw
  end
  return redis.call('SISMEMBER', taken, key) == 0, nil
end
"""

# 1 if owner ARGV[2] may still write answer ARGV[1] (record KEYS[1], takeovers KEYS[2]).
FENCE = OWNS + "if owns(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 1 end return 0"

# Record where an answer is shown now (ARGV[2]), if its owner (ARGV[3]) still has it; 0: fenced.
UPDATE_PENDING = (
    OWNS
    + """
local mine, raw = owns(KEYS[1], KEYS[2], ARGV[1], ARGV[3])
if not mine then return 0 end
if raw then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""
)
TAKEN_TTL = 3600  # an answer's takeover mark: longer than any process pause worth fencing

PENDING_TTL = 86_400  # an answer in flight longer than a day is certainly settled by recovery
IN_FLIGHT_SCAN = 1000  # at most this many records are read per place and recovery pass
PLACE_IDLE = 3600.0  # a place without answers this long leaves this process's registration


def _epoch_time(epoch: bytes | None) -> float | None:
    try:
        return float(epoch.decode().rsplit(":", 1)[1]) if epoch else None
    except (IndexError, ValueError):
        return None


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
    _extend: AsyncScript
    _later: LaterWrites
    _update_pending: AsyncScript
    _fence: AsyncScript

    async def _call(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError

    def _queue_renewals(self, pipe: Any, within: float) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def _renewed(self, due: list[tuple[str, Any]], results: list[Any], sent: float) -> None:
        raise NotImplementedError

    _places: dict[str, float]
    _mine: set[str]
    _epochs: dict[str, bytes | None]  # the store's epoch markers as this process last saw them
    remembers_since: float | None  # when the store's data began (its epoch was set)
    _held: dict[str, Any]  # lock key -> HeldLock (bot.store.memory.redis)
    _lock_ttl_ms: int
    _lapses: int  # renewals that found this process's liveness lapsed
    _lease_until: float | None  # time.monotonic() when its liveness lapses; None: not beating
    _alive_for: float | None  # the liveness ttl of the last heartbeat

    async def _record(self, keys: ThreadKeys, pending: PendingAnswer) -> None:
        pipe = self._redis.pipeline(transaction=False)
        self._queue_record(pipe, keys, pending)
        await self._call(pipe.execute())

    def _queue_record(self, pipe: Any, keys: ThreadKeys, pending: PendingAnswer) -> None:
        mine, first = self._begin(keys, pending)
        if first:
            self._queue_registration(pipe, [keys.place])
        pipe.hset(keys.pending, mine.key, mine.to_json())
        pipe.expire(keys.pending, PENDING_TTL)
        pipe.zadd(keys.index, {index_member(mine): mine.started})

    def _begin(self, keys: ThreadKeys, pending: PendingAnswer) -> tuple[PendingAnswer, bool]:
        """`pending` as this process records it, now among its answers; and whether it is the
        first answer in its place, whose registration (once per process) goes with the record."""
        mine = pending.owned_by(self.owner)
        self._answering[index_member(mine)] = mine
        first = keys.place not in self._places
        self._places[keys.place] = time.monotonic()
        return mine, first

    def _queue_registration(self, pipe: Any, places: list[str]) -> None:
        pipe.zadd(self._keys.owners, {self.owner: time.time()})
        pipe.sadd(self._keys.places(self.owner), *places)

    async def in_flight(self) -> list[PendingAnswer]:
        """This process's answers in flight (those it is working on from its own memory, those
        whose settling save failed from Redis), and those of every process whose liveness
        lapsed."""
        working = list(self._answering.values())
        silent = await self._silent_owners()
        mine = set(self._mine)  # read before: a save failing meanwhile is looked at next time
        records = await self._records_in(sorted(mine.union(*silent.values())))
        known = {(r.thread, r.key) for r in working}
        self._mine -= mine - {place for place, r in records if r.owner == self.owner}
        await self._forget_owners(set(silent) - {r.owner for _, r in records})
        return working + [
            r
            for _, r in records
            if (r.owner == self.owner or r.owner in silent) and (r.thread, r.key) not in known
        ]

    async def _silent_owners(self) -> dict[str, set[str]]:
        """The registered owners that stopped renewing their liveness, with their places; the
        places of live owners are never read (a process may have registered thousands)."""
        registered = cast(
            list[bytes], await self._call(self._redis.zrange(self._keys.owners, 0, -1))
        )
        owners = [o.decode() for o in registered if o.decode() != self.owner]
        if not owners:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(self._keys.alive(owner))
        alive = await self._call(pipe.execute())
        silent = [owner for owner, up in zip(owners, alive, strict=True) if not up]
        if not silent:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for owner in silent:
            pipe.smembers(self._keys.places(owner))
        places = await self._call(pipe.execute())
        return {o: {p.decode() for p in found} for o, found in zip(silent, places, strict=True)}

    async def _records_in(self, places: list[str]) -> list[tuple[str, PendingAnswer]]:
        """The records indexed in `places`; index members whose record is gone are dropped."""
        if not places:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for place in places:
            pipe.zrange(self._keys.in_flight(place), 0, IN_FLIGHT_SCAN - 1)
        indexes = await self._call(pipe.execute())
        located = [
            (place, member, *_located(member))
            for place, members in zip(places, indexes, strict=True)
            for member in members
        ]
        if not located:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for _, _, thread, key in located:
            pipe.hget(self._keys.thread(thread).pending, key)
        raws = await self._call(pipe.execute())
        stale = [(place, member) for (place, member, _, _), raw in zip(located, raws, strict=True)
                 if raw is None]  # fmt: skip
        if stale:  # settled between the two reads, or its record expired
            pipe = self._redis.pipeline(transaction=False)
            for place, member in stale:
                pipe.zrem(self._keys.in_flight(place), member)
            await self._call(pipe.execute())
        return [
            (place, PendingAnswer.from_json(raw))
            for (place, _, _, _), raw in zip(located, raws, strict=True)
            if raw is not None
        ]

    async def _forget_owners(self, gone: set[str]) -> None:
        """Owners gone silent with nothing left in flight leave the registry. One that was only
        cut off comes back with its next heartbeat and registers its places again."""
        if gone:
            pipe = self._redis.pipeline(transaction=False)
            for owner in sorted(gone):
                pipe.zrem(self._keys.owners, owner)
                pipe.delete(self._keys.places(owner))
            await self._call(pipe.execute())

    async def record(self, pending: PendingAnswer) -> None:
        await self._record(self._keys.thread(pending.thread), pending)

    async def update_pending(self, pending: PendingAnswer) -> None:
        keys = self._keys.thread(pending.thread)
        mine = pending.owned_by(self.owner)
        member = index_member(mine)
        if member in self._answering:
            self._answering[member] = mine
        updated = self._update_pending(
            keys=[keys.pending, keys.taken], args=[mine.key, mine.to_json(), self.owner]
        )
        if not await self._call(updated):
            raise Fenced(f"the answer to {pending.key} in {pending.thread} was taken over")

    async def owns(self, pending: PendingAnswer) -> bool:
        keys = self._keys.thread(pending.thread)
        return bool(
            await self._call(
                self._fence(keys=[keys.pending, keys.taken], args=[pending.key, self.owner])
            )
        )

    def answering(self, pending: PendingAnswer) -> bool:
        return index_member(pending) in self._answering

    @property
    def lapses(self) -> int:
        return self._lapses

    def lease_left(self) -> float:
        if self._lease_until is None:  # not beating: nobody takes this process for dead
            return float("inf")
        return self._lease_until - time.monotonic()

    async def renew(self) -> None:
        if self._alive_for is not None:
            await self.heartbeat(self._alive_for)

    async def heartbeat(self, ttl: float, *, next_in: float = 0.0) -> bool:
        now = time.monotonic()  # before the renewal is sent: the lease is never overestimated
        idle = [p for p, used in self._places.items() if now - used > PLACE_IDLE]
        # "<random>:<when it was set>": a new value means Redis lost its data since then
        marked = f"{secrets.token_hex(8)}:{time.time():.3f}"
        markers = await self._epoch_keys()
        renewals: list[tuple[str, Any]] = []
        riding = self._later.take()  # a cluster's usage records: this send reaches every node

        def queue(pipe: Any) -> None:
            pipe.set(self._keys.alive(self.owner), "1", px=int(ttl * 1000), get=True)
            pipe.zadd(self._keys.owners, {self.owner: time.time()})
            for key in markers:
                pipe.set(key, marked, nx=True)
                pipe.get(key)
            if idle:  # no answer there for an hour: registered again at the next one
                pipe.srem(self._keys.places(self.owner), *idle)
            renewals.extend(self._queue_renewals(pipe, next_in))
            for call in riding:
                call.queue(pipe)

        scripts = list({id(s): s for s in [self._extend, *(c.script for c in riding)]}.values())
        try:
            results = await self._call(run_pipeline(self._redis, queue, scripts))
        except StoreUnavailable:
            self._later.put_back(riding)
            raise
        head = 2 + 2 * len(markers) + (1 if idle else 0)
        self._renewed(renewals, results[head : head + len(renewals)], now)
        was_alive, added, *marks = results[: 2 + 2 * len(markers)]
        if was_alive is None and self._lease_until is not None:
            self._lapses += 1  # it had lapsed: others may have taken over answers meanwhile
        self._lease_until, self._alive_for = now + ttl, ttl
        epochs = {key: marks[2 * i + 1] for i, key in enumerate(markers)}
        lost = any(key in self._epochs and self._epochs[key] != e for key, e in epochs.items())
        self._epochs = epochs
        began = [t for t in map(_epoch_time, epochs.values()) if t is not None]
        self.remembers_since = max(began) if began else None
        for place in idle:
            self._places.pop(place, None)
        if lost:
            await self.reseed()
        elif added and self._places:
            # Not registered (Redis lost its data, or others took this process for dead):
            # register again where answers are open now, and elsewhere at the next answer.
            answering = {self._keys.thread(p.thread).place for p in self._answering.values()}
            answering |= self._mine
            self._places = {p: now for p in answering}
            if answering:
                pipe = self._redis.pipeline(transaction=False)
                self._queue_registration(pipe, sorted(answering))
                await self._call(pipe.execute())

        return lost

    async def _epoch_keys(self) -> list[str]:
        """Where the epoch is marked: under `{live}` and, on a Cluster, once more on every
        primary that does not hold that slot, so one shard failing over to an empty replica is
        noticed too (its answers, locks and claims are written back like after a restart)."""
        markers = [self._keys.epoch]
        if not isinstance(self._redis, RedisCluster):
            return markers
        await self._call(self._redis.initialize())  # the slot map, read once
        primaries = {node.name for node in self._redis.get_primaries()}
        covered = {self._node_of(markers[0])}
        tag = 0
        while not primaries <= covered and tag < 100_000:
            key = self._keys.epoch_at(f"epoch-{tag}")
            node = self._node_of(key)
            if node not in covered:
                covered.add(node)
                markers.append(key)
            tag += 1
        return markers

    def _node_of(self, key: str) -> str:
        assert isinstance(self._redis, RedisCluster)
        node = self._redis.get_node_from_key(key)
        return node.name if node is not None else ""

    async def reseed(self) -> None:
        """Write back what Redis lost and this process still knows: the records of its answers
        in flight, its registration where they are, and the thread locks it holds."""
        self._places = {}
        pipe = self._redis.pipeline(transaction=False)
        for pending in self._answering.values():
            self._queue_record(pipe, self._keys.thread(pending.thread), pending)
        held = [(key, h) for key, h in self._held.items() if not h.released]
        for key, lock in held:
            pipe.set(key, lock.token, nx=True, px=self._lock_ttl_ms)
        if len(pipe):
            sent = time.monotonic()
            results = await self._call(pipe.execute())
            for (_, lock), written in zip(held, results[len(results) - len(held) :], strict=True):
                if written:  # its own again (renewed from now on)
                    lock.lost, lock.renewed = False, max(lock.renewed, sent)

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
        if keys.place not in self._places:  # registered first: a taker that dies is found too
            pipe = self._redis.pipeline(transaction=False)
            self._queue_registration(pipe, [keys.place])
            await self._call(pipe.execute())
        self._places[keys.place] = time.monotonic()
        taken = await self._call(
            self._take_over(
                keys=[keys.pending, keys.lock, keys.index, keys.taken],
                args=[pending.key, pending.owner, index_member(pending), TAKEN_TTL, self.owner],
            )
        )
        return bool(taken)
