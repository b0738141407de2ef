"""Claims contract: both implementations behave the same."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.claims import Claims, InProcessClaims, RedisClaims
from tests.conftest import REDIS_URL


@pytest.fixture(params=["inprocess", "redis"])
def claims(request, redis_client: aioredis.Redis, clean_prefix: str) -> Claims:
    if request.param == "redis":
        return RedisClaims(redis_client, prefix=clean_prefix)
    return InProcessClaims()


async def test_first_claim_wins(claims: Claims) -> None:
    assert await claims.claim("slack:T1", "event:E1", "msg:C1:1.1")
    assert not await claims.claim("slack:T1", "event:E1", "msg:C1:1.1")
    assert not await claims.claim("slack:T1", "event:E2", "msg:C1:1.1")  # same message, other event
    assert await claims.claim("slack:T2", "event:E1")  # scopes are separate


async def test_claim_is_all_or_nothing(claims: Claims) -> None:
    assert await claims.claim("s", "a")
    assert not await claims.claim("s", "b", "a")
    assert await claims.claim("s", "b")  # b was not taken by the failed claim


async def test_release_gives_it_back(claims: Claims) -> None:
    assert await claims.claim("s", "sync:abc", ttl=100)
    await claims.release("s", "sync:abc")
    assert await claims.claim("s", "sync:abc")


async def test_concurrent_claims_across_clients_have_one_winner(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    others = [aioredis.Redis.from_url(REDIS_URL) for _ in range(4)]
    contenders = [RedisClaims(c, prefix=clean_prefix) for c in [redis_client, *others]]
    results = await asyncio.gather(*(c.claim("discord:G1", "msg:42") for c in contenders * 5))
    assert sum(results) == 1
    for client in others:
        await client.aclose()
