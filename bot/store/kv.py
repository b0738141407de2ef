"""Small expiring notes adapters keep beside memory (which conversation a message belongs to,
which command set was synced). In Redis under `<prefix>:note:<key>`, or in the process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.keys import KeyBuilder
from bot.store.redis_pool import redis_unavailable


class Notes(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, *, ttl: int) -> None: ...


class InProcessNotes:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._clock = clock

    async def get(self, key: str) -> str | None:
        value, until = self._values.get(key, ("", 0.0))
        return value if until > self._clock() else None

    async def put(self, key: str, value: str, *, ttl: int) -> None:
        now = self._clock()
        if len(self._values) > 100_000:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._values[key] = (value, now + ttl)


class RedisNotes:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(KeyBuilder(self._prefix).note(key))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, key: str, value: str, *, ttl: int) -> None:
        try:
            await self._redis.set(KeyBuilder(self._prefix).note(key), value, ex=max(1, ttl))
        except (RedisError, OSError) as exc:
            raise redis_unavailable(exc) from exc
