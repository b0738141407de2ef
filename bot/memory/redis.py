"""Thread memory in Redis: one round trip to load a thread, one to save, a lock across processes.

Key layout is in `bot.keys`. Writes run in MULTI/EXEC or Lua so a thread is never half-written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.conversation import ThreadRef, ThreadState, Turn
from bot.errors import StoreUnavailable, ThreadBusy
from bot.keys import DEFAULT_PREFIX, KeyBuilder, ThreadKeys
from bot.memory.base import LocalLocks

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

_REMOVE = """
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

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _state(raw_turns: list[bytes], summary: bytes | None) -> ThreadState:
    turns = tuple(Turn.from_json(json.loads(raw)) for raw in raw_turns)
    return ThreadState(summary=(summary or b"").decode(), turns=turns)


def encode_turn(turn: Turn) -> str:
    return json.dumps(turn.to_json(), ensure_ascii=False, separators=(",", ":"))


class RedisMemory:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_turns: int = 400,
        retention_seconds: int = 30 * 86_400,
        lock_ttl: float = 30.0,
        lock_wait: float = 180.0,
    ) -> None:
        self._redis = client
        self._keys = KeyBuilder(prefix)
        self._max_turns = max_turns
        self._retention = max(1, int(retention_seconds))
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._lock_wait = lock_wait
        self._local = LocalLocks()
        self._prefetched: dict[tuple[str, int], ThreadState] = {}  # (lock key, holder task)
        self._fold = client.register_script(_FOLD)
        self._remove = client.register_script(_REMOVE)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)
        self.round_trips = 0  # for benchmarks: network round trips made so far

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisMemory:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30
        )
        return cls(client, **kwargs)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        self.round_trips += 1
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc

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
        keys = self._keys.thread(thread)
        return bool(await self._call(self._redis.exists(keys.turns, keys.meta)))

    async def append(self, thread: ThreadRef, *turns: Turn) -> None:
        if not turns:
            return
        keys = self._keys.thread(thread)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(keys.turns, *(encode_turn(t) for t in turns))
        pipe.ltrim(keys.turns, -self._max_turns, -1)
        pipe.expire(keys.turns, self._retention)
        pipe.expire(keys.meta, self._retention)
        await self._call(pipe.execute())

    async def fold(self, thread: ThreadRef, summary: str, through: Turn) -> None:
        keys = self._keys.thread(thread)
        args: list[str | int] = [summary, encode_turn(through), self._retention]
        await self._call(self._fold(keys=[keys.turns, keys.meta], args=args))

    async def remove(self, thread: ThreadRef, message_id: str) -> bool:
        if not message_id:
            return False
        keys = self._keys.thread(thread)
        return bool(await self._call(self._remove(keys=[keys.turns], args=[message_id])))

    async def forget(self, thread: ThreadRef) -> None:
        keys = self._keys.thread(thread)
        await self._call(self._redis.delete(keys.turns, keys.meta))

    def lock(self, thread: ThreadRef) -> AbstractAsyncContextManager[None]:
        return self._hold(self._keys.thread(thread))

    @asynccontextmanager
    async def _hold(self, keys: ThreadKeys) -> AsyncIterator[None]:
        key = keys.lock
        # Waiters in this process queue in order on a local lock; only the head polls Redis.
        async with self._local.hold(key):
            token = secrets.token_hex(16)
            await self._acquire(keys, token)
            keeper = asyncio.create_task(self._keep(key, token))
            try:
                yield
            finally:
                self._prefetched.pop((key, id(asyncio.current_task())), None)
                keeper.cancel()
                try:
                    await self._call(self._release(keys=[key], args=[token]))
                except StoreUnavailable:
                    log.warning("could not release %s; it expires by itself", key)

    async def _acquire(self, keys: ThreadKeys, token: str) -> None:
        """Take the lock; the same round trip reads the thread, which the holder loads next."""
        deadline = time.monotonic() + self._lock_wait
        pause = 0.005
        while True:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(keys.lock, token, nx=True, px=self._lock_ttl_ms)
            pipe.lrange(keys.turns, 0, -1)
            pipe.hget(keys.meta, "summary")
            taken, raw_turns, summary = await self._call(pipe.execute())
            if taken:
                task = id(asyncio.current_task())
                self._prefetched[(keys.lock, task)] = _state(raw_turns, summary)
                return
            if time.monotonic() >= deadline:
                raise ThreadBusy(f"{keys.lock} was held for more than {self._lock_wait:.0f} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _keep(self, key: str, token: str) -> None:
        """Renew the lock while an answer streams, so a long answer keeps it."""
        while True:
            await asyncio.sleep(self._lock_ttl_ms / 3000)
            try:
                if not await self._call(self._extend(keys=[key], args=[token, self._lock_ttl_ms])):
                    log.warning("lost %s while holding it", key)
                    return
            except StoreUnavailable:
                log.warning("could not renew %s", key)

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()
