"""Shared pieces of the benchmarks: a model server in its own process, timing, percentiles."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bot.chat_model import ChatMessage, ChatModel, Purpose

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU-seconds a process has used, every thread of it, from /proc (utime + stime)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@asynccontextmanager
async def fake_server(module: str, *args: str) -> AsyncIterator[str]:
    """A local fake (model, Slack) in its own process, so it never steals the measured loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    url = (await process.stdout.readline()).decode().strip()
    try:
        yield url
    finally:
        process.terminate()
        await process.wait()


async def wait_ready(url: str, tries: int = 200) -> None:
    """Until `url` (a bot's /healthz or /readyz) answers 200, or `tries` tenths of a second."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(tries):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # a starting process gives no other sign
    raise RuntimeError(f"the bot did not start: {url} never answered 200")


def model_server(latency: float = 0.0, token_delay: float = 0.0, words: int = 0) -> Any:
    return fake_server(
        "tests.fakes.openai_server", "--latency", str(latency), "--token-delay", str(token_delay),
        "--words", str(words),
    )  # fmt: skip


class TimedModel:
    """Wraps a ChatModel and adds up the time spent waiting on it."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.usage = inner.usage
        self.seconds = 0.0

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        purpose: Purpose = "answer",
    ) -> AsyncIterator[str]:
        iterator = self.inner.stream(messages, max_tokens=max_tokens, purpose=purpose).__aiter__()
        while True:
            started = time.perf_counter()
            try:
                delta = await iterator.__anext__()
            except StopAsyncIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield delta


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def describe(values: Sequence[float], unit: str = "ms", scale: float = 1000.0) -> str:
    p50 = percentile(values, 0.5) * scale
    p99 = percentile(values, 0.99) * scale
    mean = statistics.fmean(values) * scale
    return f"p50 {p50:.2f} {unit}, p99 {p99:.2f} {unit}, mean {mean:.2f} {unit} (n={len(values)})"


def row(label: str, value: Any) -> None:
    print(f"  {label:<48} {value}")


async def drop_keys(redis_url: str, prefix: str) -> None:
    """Delete what a benchmark wrote under its own key prefix."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
