"""A shared budget of calls per key in a sliding window, honoured by every replica (Redis).

Platforms limit each API method per workspace, not per caller: every reply of every process
spends the same allowance. `try_take` is for calls that may be skipped (a progress edit, a
native stream that could be edits instead) and can leave room (`keep`) for calls that may not;
`take` waits for room; `pause` holds a key for the Retry-After a platform asked for, for
everyone. In Redis: `<prefix>:rate:{<key>}` (a sorted set of recent calls) and
`<prefix>:rate:{<key>}:pause`, timed by Redis's own clock so replicas agree.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import redis_unavailable

MAX_WAIT = 120.0  # `take` gives up waiting after this long and lets the call go (and be refused)

# 0 when taken, else milliseconds until there may be room
_TAKE = """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local period, limit, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - period)
if redis.call('ZCARD', KEYS[1]) + keep >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] == nil then return period end
  return math.max(1, tonumber(oldest[2]) + period - ms)
end
redis.call('ZADD', KEYS[1], ms, ARGV[4])
redis.call('PEXPIRE', KEYS[1], period)
return 0
"""


class RateBudget(Protocol):
    async def try_take(self, key: str, limit: int, period: float, *, keep: int = 0) -> bool:
        """Take a call if the window has room beyond `keep` calls left for others."""

    async def take(self, key: str, limit: int, period: float) -> None:
        """Take a call, waiting for room (at most MAX_WAIT)."""

    async def pause(self, key: str, seconds: float) -> None:
        """Nobody calls `key` for `seconds` (a Retry-After)."""


class InProcessBudget:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._paused: dict[str, float] = {}

    def _wait(self, key: str, limit: int, period: float, keep: int) -> float:
        now = self._clock()
        if self._paused.get(key, 0.0) > now:
            return self._paused[key] - now
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - period:
            calls.popleft()
        if len(calls) + keep >= limit:
            return max(0.001, calls[0] + period - now) if calls else period
        calls.append(now)
        return 0.0

    async def try_take(self, key: str, limit: int, period: float, *, keep: int = 0) -> bool:
        return self._wait(key, limit, period, keep) == 0.0

    async def take(self, key: str, limit: int, period: float) -> None:
        waited = 0.0
        while (wait := self._wait(key, limit, period, 0)) and waited < MAX_WAIT:
            await asyncio.sleep(wait)
            waited += wait

    async def pause(self, key: str, seconds: float) -> None:
        self._paused[key] = max(self._paused.get(key, 0.0), self._clock() + seconds)


class RedisBudget:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._local = InProcessBudget()  # while Redis is down, this process keeps its own count

    def _keys(self, key: str) -> list[str]:
        return list(KeyBuilder(self._prefix).rate(key))

    async def _wait(self, key: str, limit: int, period: float, keep: int) -> float:
        args: list[str | int] = [int(period * 1000), limit, keep, secrets.token_hex(6)]
        try:
            return float(await self._take(keys=self._keys(key), args=args)) / 1000
        except (RedisError, OSError):
            return self._local._wait(key, limit, period, keep)

    async def try_take(self, key: str, limit: int, period: float, *, keep: int = 0) -> bool:
        return await self._wait(key, limit, period, keep) == 0.0

    async def take(self, key: str, limit: int, period: float) -> None:
        waited = 0.0
        while (wait := await self._wait(key, limit, period, 0)) and waited < MAX_WAIT:
            await asyncio.sleep(wait)
            waited += wait

    async def pause(self, key: str, seconds: float) -> None:
        try:
            await self._redis.set(self._keys(key)[1], "1", px=max(1, int(seconds * 1000)))
        except (RedisError, OSError) as exc:
            await self._local.pause(key, seconds)
            raise redis_unavailable(exc) from exc
