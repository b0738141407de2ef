"""The Redis pool: bursts wait for a connection, a connection killed under it is retried."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.store.claims import RedisClaims
from bot.store.redis_pool import connect_redis, open_pool
from tests.conftest import REDIS_URL
from tests.fakes.processes import free_port


async def test_a_burst_larger_than_the_pool_waits_instead_of_failing(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    client = connect_redis(REDIS_URL, max_connections=8, pool_timeout=10)
    claims = RedisClaims(client, prefix=clean_prefix)
    # 400 claims at once, two deliveries of each of 200 messages, through 8 connections
    names = [f"msg:C1:{n}" for n in range(200)] * 2
    results = await asyncio.gather(*(claims.claim("slack:T1", name) for name in names))
    assert sum(results) == 200
    opened = len(client.connection_pool._available_connections) + len(  # type: ignore[attr-defined]
        client.connection_pool._in_use_connections  # type: ignore[attr-defined]
    )
    assert opened <= 8
    await client.aclose()


async def test_a_connection_closed_by_the_server_is_retried_once(
    redis_client: aioredis.Redis,
) -> None:
    client = connect_redis(REDIS_URL, max_connections=1)
    pooled = await client.client_id()
    await redis_client.client_kill_filter(_id=pooled)  # as after a restart
    assert await client.ping()  # the dead pooled connection is replaced, not reported
    await client.aclose()


async def test_the_pool_opens_its_connections_before_the_first_burst(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    name = f"pool-{clean_prefix}"
    client = connect_redis(f"{REDIS_URL}?client_name={name}", max_connections=8)

    async def opened() -> int:
        return sum(1 for c in await redis_client.client_list() if c.get("name") == name)

    assert await open_pool(client, 6) == 6
    assert await opened() == 6
    await asyncio.gather(*(client.ping() for _ in range(6)))  # six at once: none made now
    assert await opened() == 6
    await client.aclose()


async def test_a_redis_out_of_reach_at_the_start_leaves_the_pool_to_fill_later() -> None:
    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0", max_connections=4)
    assert await open_pool(client, 4) == 0
    await client.aclose()
