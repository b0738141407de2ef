"""How the bot connects to Redis: a sized, blocking pool that retries a dead connection once.

redis-py 8 caps a pool at 100 connections and raises "Too many connections" past it, so a burst
of events failed instead of waiting. A `BlockingConnectionPool` makes a caller wait up to
`REDIS_POOL_TIMEOUT` for a free connection. After Redis restarts, the first command on a pooled
connection fails with "Connection closed by server": one quick retry on a fresh connection hides
that, and a Redis that is really down still fails within a fraction of a second.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import StoreUnavailable
from bot.metrics import REDIS_ERRORS

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_POOL_TIMEOUT = 5.0


def connect_redis(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=3,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.02),
            retries=1,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def redis_unavailable(exc: BaseException) -> StoreUnavailable:
    """The core's error for a failed Redis call, counted in the metrics (one place for both)."""
    REDIS_ERRORS.inc()
    return StoreUnavailable(f"Redis is unavailable: {exc}")
