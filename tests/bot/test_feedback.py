"""Feedback on answers: once per person per answer, counted per workspace, printed by a command."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
import redis.asyncio as aioredis

from bot.feedback import FeedbackStore, InProcessFeedback, RedisFeedback
from tests.conftest import REDIS_URL


@pytest.fixture(params=["inprocess", "redis"])
def store(request, redis_client: aioredis.Redis, clean_prefix: str) -> FeedbackStore:
    if request.param == "redis":
        return RedisFeedback(redis_client, prefix=clean_prefix)
    return InProcessFeedback()


async def test_one_rating_per_person_per_answer(store: FeedbackStore) -> None:
    assert await store.record("slack:T1", "1.1", "UALICE", "bad", "slack:T1:C1:1.0")
    assert not await store.record("slack:T1", "1.1", "UALICE", "good", "slack:T1:C1:1.0")
    assert await store.record("slack:T1", "1.1", "UBOB", "good", "slack:T1:C1:1.0")
    assert await store.record("slack:T2", "1.1", "UALICE", "good", "slack:T2:C1:1.0")
    assert await store.counts("slack:T1") == {"bad": 1, "good": 1}


async def test_the_feedback_command_prints_the_counts(
    redis_client: aioredis.Redis, clean_prefix: str
) -> None:
    store = RedisFeedback(redis_client, prefix=clean_prefix)
    for person, value in (("U1", "good"), ("U2", "good"), ("U3", "bad")):
        await store.record("slack:T1", "1.1", person, value, "slack:T1:C1:1.0")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "OPENAI_"))}
    env.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "feedback", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert out.decode().strip() == "slack:T1: 👍 2  👎 1  (67% helpful)"
