"""Thread memory in Redis: one round trip to load a thread, one to save, a lock across processes.

Key layout is in `bot.store.keys`. Writes run in MULTI/EXEC or Lua so a thread is never
half-written.
Answers in flight (their records, liveness, taking over a dead owner's) are in redis_inflight.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from bot.conversation import ThreadRef, ThreadState, Turn
from bot.errors import Fenced, StoreUnavailable, ThreadBusy
from bot.store.inflight import PendingAnswer
from bot.store.keys import DEFAULT_PREFIX, KeyBuilder, ThreadKeys
from bot.store.memory.base import LocalLocks, Shown
from bot.store.memory.redis_inflight import (
    FENCE,
    OWNS,
    PENDING_TTL,
    TAKE_OVER,
    UPDATE_PENDING,
    InFlightRecords,
    index_member,
)
from bot.store.redis_pool import (
    ScriptCall,
    connect_redis,
    is_cluster,
    redis_unavailable,
    run_pipeline,
    side_client,
)
from bot.store.riders import LaterWrites, Passenger, Rider, write_alone

log = logging.getLogger(__name__)
T = TypeVar("T")

# Drop every turn up to and including ARGV[2]; found by value, so turns trimmed meanwhile by the
# cap cannot shift what is dropped.
_FOLD = """
local idx = redis.call('LPOS', KEYS[1], ARGV[2])
if idx then redis.call('LTRIM', KEYS[1], idx + 1, -1) end
redis.call('HSET', KEYS[2], 'summary', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return idx or -1
"""

# Remove a deleted message and leave a tombstone, so a save still under way cannot bring it back.
_REMOVE = """
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, raw in ipairs(items) do
  local ok, turn = pcall(cjson.decode, raw)
  if ok and turn['message_id'] == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, raw)
    return 1
  end
end
return 0
"""

# Append turns (ARGV[7..]: message id, JSON pairs) in one RPUSH, skipping any whose message was
# deleted and the answer that follows a deleted question; settle the answer in flight named by
# ARGV[3] (its record, and ARGV[5] in the channel's index KEYS[6]); give back the thread's lock
# (KEYS[5]) if ARGV[4] is still its holder's token. An answer taken over from its owner ARGV[6]
# (KEYS[7], see OWNS) writes nothing: -1.
_APPEND = (
    OWNS
    + """
if ARGV[3] ~= '' and not owns(KEYS[4], KEYS[7], ARGV[3], ARGV[6]) then return -1 end
local values, skipping = {}, false
for i = 7, #ARGV, 2 do
  local id = ARGV[i]
  if id ~= '' then skipping = redis.call('SISMEMBER', KEYS[3], id) == 1 end
  if not skipping then values[#values + 1] = ARGV[i + 1] end
end
if #values > 0 then
  redis.call('RPUSH', KEYS[1], unpack(values))
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if ARGV[3] ~= '' then
  redis.call('HDEL', KEYS[4], ARGV[3])
  redis.call('ZREM', KEYS[6], ARGV[5])
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[5]) == ARGV[4] then redis.call('DEL', KEYS[5]) end
return #values
"""
)

# Take the thread's lock (KEYS[3]) for token ARGV[1] for ARGV[2] ms and, when taken, read the
# thread (turns KEYS[4], summary in KEYS[5]); first, when ARGV[3] is not empty, record the answer
# in flight: its record ARGV[3] under ARGV[4] in KEYS[1] (kept ARGV[7] s), and ARGV[5] in the
# place's index KEYS[2] scored ARGV[6]. 0: the lock is held by another.
_ACQUIRE = """
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return {redis.call('LRANGE', KEYS[4], 0, -1), redis.call('HGET', KEYS[5], 'summary')}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


GONE_TTL = 3600  # how long a deleted message's tombstone outlives it: longer than any answer


def _state(raw_turns: list[bytes], summary: bytes | None) -> ThreadState:
    turns = tuple(Turn.from_json(json.loads(raw)) for raw in raw_turns)
    return ThreadState(summary=(summary or b"").decode(), turns=turns)


def encode_turn(turn: Turn) -> str:
    return json.dumps(turn.to_json(), ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class HeldLock:
    """A thread lock this process holds (one holder per key in a process: the local lock)."""

    token: str
    answer: str | None  # the answer it was taken for, whose last save gives it back
    renewed: float  # time.monotonic() before the send that last set its expiry
    released: bool = False
    releasing: bool = False  # the answer's last save, which gives it back, is on its way
    lost: bool = False  # another holds it now (this process was taken for dead): not renewed

    def due(self, every: float, within: float = 0.0) -> bool:
        """Whether its renewal falls due within `within` seconds."""
        live = not (self.released or self.lost)
        return live and time.monotonic() + within >= self.renewed + every


class RedisMemory(InFlightRecords):
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_turns: int = 400,
        retention_seconds: int = 30 * 86_400,
        lock_ttl: float = 10.0,  # short: a lock whose release failed frees itself soon
        lock_wait: float = 180.0,
    ) -> None:
        self._redis = client
        self._keys = KeyBuilder(prefix)
        self._max_turns = max_turns
        self._retention = max(1, int(retention_seconds))
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._renew_every = lock_ttl / 3  # a renewal lost to a blip leaves two more chances
        self._lock_wait = lock_wait
        self._local = LocalLocks()
        self.owner = secrets.token_hex(8)
        # The answers this process is working on, by index member (their records, as written).
        self._answering: dict[str, PendingAnswer] = {}
        self._prefetched: dict[tuple[str, int], ThreadState] = {}  # (lock key, holder task)
        self._held: dict[str, HeldLock] = {}  # lock key -> the lock this process holds
        self._fold = client.register_script(_FOLD)
        self._remove = client.register_script(_REMOVE)
        self._append = client.register_script(_APPEND)
        self._release = client.register_script(_RELEASE)
        self._acquire_script = client.register_script(_ACQUIRE)
        # Lock renewals get connections of their own: behind a burst of new work in the main
        # pool they came too late, and locks of answers still streaming lapsed.
        self._renewals = side_client(client)
        self._extend = self._renewals.register_script(_EXTEND)
        self._take_over = client.register_script(TAKE_OVER)
        self._later = LaterWrites(client)  # on a cluster, a save's riders in other slots
        # Where this process registered answers (recovery), and when it last recorded one there.
        self._places: dict[str, float] = {}
        self._mine: set[str] = set()  # places where a record of this process failed to settle
        self._epochs: dict[str, bytes | None] = {}
        self._lapses = 0
        self._lease_until: float | None = None
        self._alive_for: float | None = None
        self.remembers_since: float | None = None  # unknown until the first heartbeat
        self._update_pending = client.register_script(UPDATE_PENDING)
        self._fence = client.register_script(FENCE)
        self.round_trips = 0  # for benchmarks: network round trips made so far

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 64,
        pool_timeout: float = 5.0,
        cluster: bool = False,
        **kwargs: Any,
    ) -> RedisMemory:
        client = connect_redis(
            url, max_connections=max_connections, pool_timeout=pool_timeout, cluster=cluster
        )
        return cls(client, **kwargs)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        self.round_trips += 1
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc

    async def load(self, thread: ThreadRef) -> ThreadState:
        keys = self._keys.thread(thread)
        prefetched = self._prefetched.pop((keys.lock, id(asyncio.current_task())), None)
        if prefetched is not None:
            return prefetched  # read together with taking the lock, a round trip ago
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(keys.turns, 0, -1)
        pipe.hget(keys.meta, "summary")
        raw_turns, summary = await self._call(pipe.execute())
        return _state(raw_turns, summary)

    async def exists(self, thread: ThreadRef) -> bool:
        return bool(await self._call(self._redis.exists(*self.exists_keys(thread))))

    def exists_keys(self, thread: ThreadRef) -> list[str]:
        """The keys of which any one existing means the bot is part of `thread`."""
        keys = self._keys.thread(thread)
        return [keys.turns, keys.meta, keys.pending]

    async def append(
        self,
        thread: ThreadRef,
        *turns: Turn,
        settled: PendingAnswer | None = None,
        riders: Sequence[Rider] = (),
    ) -> None:
        riding: list[ScriptCall] = []
        alone: list[Awaitable[None]] = []  # riders that cannot ride: written beside the save
        for rider in riders:
            call = rider.call(self._redis)
            if call is None:
                alone.append(write_alone(rider, "a write that goes with a save"))
            elif is_cluster(self._redis):  # another slot: batched with others' (bot.store.riders)
                self._later.add(call)
            else:
                riding.append(call)
        if not turns and settled is None:
            await asyncio.gather(*alone)
            return
        keys = self._keys.thread(thread)
        # The answer's last save also gives its lock back (the release at exit is then skipped).
        # The save runs shielded, in a task of its own: the holder is found by the answer's key.
        held = self._held.get(keys.lock)
        release = (
            settled is not None
            and held is not None
            and held.answer == settled.key
            and not held.released
        )
        token = held.token if release and held is not None else ""
        args: list[str | int] = [
            self._max_turns, self._retention, settled.key if settled else "", token,
            index_member(settled) if settled else "", self.owner,
        ]  # fmt: skip
        for turn in turns:
            args += [turn.message_id, encode_turn(turn)]
        thread_keys = [
            keys.turns, keys.meta, keys.gone, keys.pending, keys.lock, keys.index, keys.taken,
        ]  # fmt: skip

        def queue(pipe: Any) -> None:  # one round trip: riders are other keys of the same node
            pipe.evalsha(self._append.sha, len(thread_keys), *thread_keys, *args)
            for call in riding:
                call.queue(pipe)

        scripts = (self._append, *(c.script for c in riding))
        if release and held is not None:
            held.releasing = True  # a renewal finding it gone meanwhile lost nothing
        try:
            saved, *_ = await asyncio.gather(
                self._call(run_pipeline(self._redis, queue, scripts)), *alone
            )
        except StoreUnavailable:
            if settled is not None:  # its record stays: recovery looks here (bot.recovery)
                self._mine.add(keys.place)
            raise
        finally:
            # Over, even if this save failed; not before it ran, or this process's own recovery
            # pass would take the answer for one whose save failed and keep its question twice.
            if settled is not None:
                self._answering.pop(index_member(settled), None)
            if held is not None:
                held.releasing = False
        if saved and saved[0] == -1:
            raise Fenced(f"the answer to {settled.key if settled else ''} in {thread} was taken")
        if release and held is not None:
            held.released = True

    async def fold(self, thread: ThreadRef, summary: str, through: Turn) -> None:
        keys = self._keys.thread(thread)
        args: list[str | int] = [summary, encode_turn(through), self._retention]
        await self._call(self._fold(keys=[keys.turns, keys.meta], args=args))

    async def remove(self, thread: ThreadRef, message_id: str) -> bool:
        if not message_id:
            return False
        keys = self._keys.thread(thread)
        removed = self._remove(keys=[keys.turns, keys.gone], args=[message_id, GONE_TTL])
        return bool(await self._call(removed))

    async def forget(self, thread: ThreadRef) -> None:
        keys = self._keys.thread(thread)
        await self._call(self._redis.delete(keys.turns, keys.meta))

    def lock(
        self,
        thread: ThreadRef,
        pending: PendingAnswer | None = None,
        *,
        recorded: Shown | None = None,
        alongside: Sequence[Passenger] = (),
    ) -> AbstractAsyncContextManager[None]:
        return self._hold(self._keys.thread(thread), pending, recorded, alongside)

    @asynccontextmanager
    async def _hold(
        self,
        keys: ThreadKeys,
        pending: PendingAnswer | None,
        recorded: Shown | None,
        alongside: Sequence[Passenger] = (),
    ) -> AsyncIterator[None]:
        key = keys.lock
        answer = pending.key if pending is not None else None
        if self._local.busy(key):
            if pending is not None:  # before queueing: a queued answer is in flight too
                await self._record(keys, pending)
                pending = None
            if recorded is not None:  # shown while it waits its turn
                await recorded()
                recorded = None
        # Waiters in this process queue in order on a local lock; only the head polls Redis.
        async with self._local.hold(key):
            token = f"{self.owner}:{secrets.token_hex(12)}"
            taken = await self._acquire(keys, token, pending, alongside)
            holder = (key, id(asyncio.current_task()))
            self._held[key] = held = HeldLock(token, answer, taken)
            keeper = asyncio.create_task(self._keep(key, held))
            try:
                if recorded is not None:  # recorded in the round trip that took the lock
                    await recorded()
                yield
            finally:
                self._prefetched.pop(holder, None)
                self._held.pop(key, None)
                keeper.cancel()
                if not held.released:
                    try:
                        await self._call(self._release(keys=[key], args=[token]))
                    except StoreUnavailable:
                        log.warning("could not release %s; it expires by itself", key)

    async def _acquire(
        self,
        keys: ThreadKeys,
        token: str,
        pending: PendingAnswer | None,
        alongside: Sequence[Passenger] = (),
    ) -> float:
        """Take the lock; the same round trip reads the thread, which the holder loads next,
        records the answer as in flight and carries the `alongside` reads (on the first try,
        taken or not). Returns time.monotonic() before the send that took it."""
        deadline = time.monotonic() + self._lock_wait
        pause = 0.005
        riding = [p for p in alongside if p.rides_on(self._redis)]
        while True:
            sent = time.monotonic()
            taken = await self._try_lock(keys, token, pending, riding)
            pending, riding = None, []  # recorded, and the passengers read, on the first try
            if taken is not None:
                task = id(asyncio.current_task())
                self._prefetched[(keys.lock, task)] = taken
                return sent
            if time.monotonic() >= deadline:
                raise ThreadBusy(f"{keys.lock} was held for more than {self._lock_wait:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _try_lock(
        self,
        keys: ThreadKeys,
        token: str,
        pending: PendingAnswer | None,
        riding: Sequence[Passenger],
    ) -> ThreadState | None:
        """One send: record `pending`, try the lock, read the thread if taken (one script), and
        the passengers' reads. The thread as it is, or None if another holds the lock."""
        recording: list[str | float] = ["", "", "", 0]
        register = False
        if pending is not None:
            mine, register = self._begin(keys, pending)
            recording = [mine.to_json(), mine.key, index_member(mine), mine.started]
        thread_keys = [keys.pending, keys.index, keys.lock, keys.turns, keys.meta]
        args = [token, self._lock_ttl_ms, *recording, PENDING_TTL]
        counts: list[int] = []

        def queue(pipe: Any) -> None:
            if register:
                self._queue_registration(pipe, [keys.place])
            pipe.evalsha(self._acquire_script.sha, len(thread_keys), *thread_keys, *args)
            counts.extend(p.queue(pipe) for p in riding)

        results = await self._call(run_pipeline(self._redis, queue, [self._acquire_script]))
        for passenger, count in zip(reversed(riding), reversed(counts), strict=True):
            passenger.take(results[len(results) - count :])
            del results[len(results) - count :]
        if not results[-1]:
            return None
        read: list[Any] = [*results[-1], None]  # a missing summary ends the script's reply
        return _state(read[0], read[1])

    async def _keep(self, key: str, held: HeldLock) -> None:
        """Renew the lock while an answer streams, so a long answer keeps it. Renewals mostly
        ride in the liveness heartbeat's send (`heartbeat`); this one, on connections of its
        own, goes only when a heartbeat did not come in time (a burst queues it)."""
        every = self._renew_every
        late = every * 1.2  # a heartbeat a little late still renews it: no send of its own
        next_try = held.renewed + late
        while True:
            await asyncio.sleep(max(0.0, next_try - time.monotonic()))
            if held.released or held.lost:
                return  # given back with the answer's last save, or lost
            if not held.due(late):
                next_try = held.renewed + late  # renewed meanwhile, in a heartbeat
                continue
            try:
                sent = time.monotonic()
                renewed = await self._call(
                    self._extend(keys=[key], args=[held.token, self._lock_ttl_ms])
                )
                self._renewed([(key, held)], [renewed], sent)
            except StoreUnavailable:
                log.warning("could not renew %s", key)
            next_try = time.monotonic() + every

    def _queue_renewals(self, pipe: Any, within: float) -> list[tuple[str, HeldLock]]:
        """Queue the renewals of the locks falling due within `within` seconds (in another
        call's send); which, in order."""
        every = self._renew_every
        due = [(key, held) for key, held in self._held.items() if held.due(every, within)]
        for key, held in due:
            pipe.evalsha(self._extend.sha, 1, key, held.token, self._lock_ttl_ms)
        return due

    def _renewed(self, due: list[tuple[str, HeldLock]], results: list[Any], sent: float) -> None:
        for (key, held), result in zip(due, results, strict=True):
            if result:
                held.renewed = max(held.renewed, sent)
            elif not (held.released or held.releasing):
                log.warning("lost %s while holding it", key)
                held.lost = True

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def load_scripts(self) -> None:
        """Load every script this store calls (one send; on a cluster, one per script and
        primary). Each is otherwise loaded when Redis first refuses it (more sends), which for a
        lock's first renewal falls in the middle of an answer, against its deadline."""
        scripts = [s for s in vars(self).values() if isinstance(s, AsyncScript)]
        if is_cluster(self._redis):  # on every primary, script by script (a start's cost)
            for script in scripts:
                await self._call(self._redis.script_load(script.script))
            return
        pipe = self._redis.pipeline(transaction=False)
        for script in scripts:
            pipe.script_load(script.script)
        await self._call(pipe.execute())

    async def aclose(self) -> None:
        await self._later.aclose()
        # Whatever this process leaves in flight, others may settle at once.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._keys.alive(self.owner))
        if self._renewals is not self._redis:
            await self._renewals.aclose()
        await self._redis.aclose()
