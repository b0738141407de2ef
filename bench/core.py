"""Core benchmark: Redis round trips and the core's own time per answer, prompt size over turns.

python -m bench.core            (needs Redis on 127.0.0.1:6379, or REDIS_URL)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from contextlib import aclosing

import httpx2
import openai
import redis.asyncio as aioredis

from bench.harness import TimedModel, describe, drop_keys, model_server, percentile, row
from bot.conversation import IncomingMessage, ThreadRef
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.openai_model import OpenAIChatModel
from bot.store.memory import RedisMemory
from bot.tokens import EstimatingCounter

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BUDGET = 4000
FILLER = "Here is a fairly ordinary chat message about the release plan and who does what. "


def message(thread: ThreadRef, n: int, text: str) -> IncomingMessage:
    return IncomingMessage(thread, text, f"U{n % 3}", f"Person {n % 3}", message_id=f"m{n}")


async def answer(engine: ConversationEngine, msg: IncomingMessage) -> str:
    # as the adapters do: the answer is recorded in flight (same round trip as the lock)
    shown = {"channel": msg.thread.channel, "ids": ["placeholder"]}
    async with aclosing(engine.answer(msg, reply=shown)) as deltas:
        return "".join([d async for d in deltas])


async def main() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"bench-{secrets.token_hex(4)}"
    memory = RedisMemory(client, prefix=prefix)
    counter = EstimatingCounter()
    async with model_server(latency=0.02) as url:
        sdk = openai.AsyncOpenAI(
            api_key="bench", base_url=url, timeout=httpx2.Timeout(30), max_retries=0
        )
        timed = TimedModel(OpenAIChatModel(sdk, "bench", counter, official_api=False))
        engine = ConversationEngine(memory, timed, counter, EngineConfig(max_prompt_tokens=BUDGET))

        # 1. Round trips and the core's own time: 40 threads x 10 answers, threads in parallel.
        trips: list[int] = []
        core_seconds: list[float] = []

        async def converse(t: int) -> None:
            thread = ThreadRef("bench", "W", "C", f"t{t}")
            for n in range(10):
                before_trips, before_model = memory.round_trips, timed.seconds
                started = time.perf_counter()
                await answer(engine, message(thread, n, f"question {n}: {FILLER}"))
                # round trips and model time are per process, so measure one answer at a time
                trips.append(memory.round_trips - before_trips)
                core_seconds.append(time.perf_counter() - started - (timed.seconds - before_model))

        for t in range(40):
            await converse(t)
        print("Core benchmark (real Redis, local model server with 20 ms first-token latency)")
        row("Redis round trips per answer (incl. lock)", f"max {max(trips)}, "
            f"mean {sum(trips) / len(trips):.2f} (goal <= 4)")  # fmt: skip
        row("core time per answer, model excluded", describe(core_seconds))
        row("  goal", "p50 <= 2 ms, p99 <= 10 ms")

        # 2. Prompt size on turn 10, 100 and 1000 of one thread.
        thread = ThreadRef("bench", "W", "C", "long")
        sizes: dict[int, int] = {}
        fold_calls_before = timed.usage.calls
        trips_before = memory.round_trips
        for n in range(1, 1001):
            await answer(engine, message(thread, n, f"turn {n}. {FILLER * 2}"))
            assert engine.last_plan is not None
            sizes[n] = engine.last_plan.tokens
        answers = 1000
        folds = timed.usage.calls - fold_calls_before - answers
        row("prompt tokens on turn 10 / 100 / 1000", f"{sizes[10]} / {sizes[100]} / {sizes[1000]}"
            f" (budget {BUDGET})")  # fmt: skip
        tail = [sizes[n] for n in range(100, 1001)]
        over = sum(s > BUDGET for s in sizes.values())
        spread = f"min {min(tail)}, max {max(tail)}, p50 {percentile(tail, 0.5):.0f}"
        row("prompt tokens over turns 100-1000", f"{spread}; turns over budget: {over}")
        row("rolling-summary folds over 1000 turns", folds)
        row("Redis round trips per answer, folds included",
            f"{(memory.round_trips - trips_before) / answers:.2f}")  # fmt: skip

        # 3. What accounting costs: the same answers with the usage ledger in Redis, without
        # limits (recorded in the save's round trip) and with them (one reservation first).
        from bot.metrics import REDIS_ROUND_TRIPS
        from bot.store.redis_pool import connect_redis
        from bot.usage.ledger import Limits
        from bot.usage.quotas import QuotaConfig, Quotas
        from bot.usage.redis_ledger import RedisLedger

        counted = connect_redis(REDIS_URL)  # the bot's own client: it counts every round trip
        ledger = RedisLedger(counted, prefix=prefix)
        setups = {
            "no ledger in Redis": Quotas(),
            "accounting": Quotas(ledger),
            "accounting and daily limits": Quotas(ledger, QuotaConfig(Limits(user=10**9))),
        }
        per_answer: dict[str, float] = {}
        for t, (name, quotas) in enumerate(setups.items()):
            measured = ConversationEngine(
                RedisMemory(counted, prefix=prefix), timed, counter,
                EngineConfig(max_prompt_tokens=BUDGET), quotas=quotas,
            )  # fmt: skip
            thread = ThreadRef("bench", "W", "C", f"usage{t}")
            await answer(measured, message(thread, 0, "warm up: scripts loaded, thread known"))
            before = REDIS_ROUND_TRIPS._value.get()
            for n in range(1, 21):
                await answer(measured, message(thread, n, f"question {n}"))
            per_answer[name] = (REDIS_ROUND_TRIPS._value.get() - before) / 20
        base = per_answer["no ledger in Redis"]
        row("Redis round trips per answer, usage not in Redis", f"{base:.2f}")
        row("  + accounting (usage in Redis)", f"{per_answer['accounting'] - base:+.2f} (goal +0)")
        limited = per_answer["accounting and daily limits"] - base
        row("  + accounting and daily limits", f"{limited:+.2f} (the reservation)")
        await counted.aclose()
        await timed.inner.aclose()  # type: ignore[attr-defined]
    await client.aclose()
    await drop_keys(REDIS_URL, prefix)


if __name__ == "__main__":
    asyncio.run(main())
