"""The shared rate budget: one window per key for every process, room kept, pauses honoured."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.rate_budget import InProcessBudget, RateBudget, RedisBudget


@pytest.fixture(params=["inprocess", "redis"])
def budgets(request, redis_client: aioredis.Redis, clean_prefix: str) -> list[RateBudget]:
    if request.param == "redis":  # two replicas sharing one Redis
        return [RedisBudget(redis_client, prefix=clean_prefix) for _ in range(2)]
    shared = InProcessBudget()
    return [shared, shared]


async def test_replicas_share_one_window(budgets: list[RateBudget]) -> None:
    first, second = budgets
    taken = [await b.try_take("slack:T1:chat.update", 5, 60.0) for b in (first, second) * 4]
    assert taken.count(True) == 5  # five in the window, whoever asks


async def test_room_is_kept_for_calls_that_cannot_be_skipped(budgets: list[RateBudget]) -> None:
    budget = budgets[0]
    optional = [await budget.try_take("k", 5, 60.0, keep=2) for _ in range(5)]
    assert optional.count(True) == 3
    assert await budget.try_take("k", 5, 60.0)  # a final edit still gets through
    assert await budget.try_take("k", 5, 60.0)
    assert not await budget.try_take("k", 5, 60.0)


async def test_a_pause_holds_the_key_for_everyone(budgets: list[RateBudget]) -> None:
    first, second = budgets
    await first.pause("k", 0.2)
    assert not await second.try_take("k", 100, 60.0)
    await asyncio.wait_for(second.take("k", 100, 60.0), 2)  # waits the pause out
