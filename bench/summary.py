"""Summary benchmark: a synthetic channel of 10,000 messages, English and Korean mixed.

    python -m bench.summary

The model server (a local OpenAI-compatible fake answering like a summarizer) has a fixed
first-token latency and a fixed delay per streamed token. Prints the model calls, the prompt
tokens sent against the transcript's own tokens and a one-shot call, and the wall time against
the critical path of the map-reduce tree at the configured concurrency (each level's calls
scheduled on `concurrency` slots with the server's own service times).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx2
import openai

from bench.harness import fake_server, row
from bot.openai_model import OpenAIChatModel
from bot.summaries.sources import SourceMessage
from bot.summaries.summarizer import FINAL, LANGUAGE_FALLBACK, Summarizer, SummaryConfig
from bot.tokens import MESSAGE_OVERHEAD, EstimatingCounter

MESSAGES = 10_000
LATENCY = 0.05  # seconds to the first token
TOKEN_DELAY = 0.002  # seconds per streamed token
CONCURRENCY = 4

ENGLISH = [
    "I pushed the fix for the login timeout, can someone review the PR?",
    "The staging deploy is blocked until the migration finishes.",
    "Let's move the release to Thursday so QA has two full days.",
    "Who owns the on-call handover doc this week?",
    "Metrics look fine after the cache change, p99 dropped by a third.",
    "I'll write the customer update once we have the root cause.",
]
KOREAN = [
    "로그인 타임아웃 수정 올렸어요, 리뷰 부탁드립니다.",
    "마이그레이션이 끝날 때까지 스테이징 배포는 막혀 있어요.",
    "QA 일정 때문에 릴리스를 목요일로 미루는 게 좋겠습니다.",
    "이번 주 온콜 인수인계 문서는 누가 맡나요?",
    "캐시 변경 이후 지표는 괜찮고 p99가 3분의 1 줄었어요.",
]
PEOPLE = ["Alice", "Bob", "민지", "Carol", "준호", "Dave"]


def synthetic_channel() -> list[SourceMessage]:
    rng = random.Random(7)
    start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    channel = []
    for n in range(MESSAGES):
        text = rng.choice(KOREAN if rng.random() < 0.4 else ENGLISH)
        channel.append(
            SourceMessage(
                message_id=f"{1795000000 + n * 60}.000100",
                author=rng.choice(PEOPLE),
                text=f"{text} ({n})",
                at=start + timedelta(minutes=n),
                link=f"https://team.slack.com/archives/C1/p{1795000000 + n * 60}000100",
            )
        )
    return channel


def makespan(durations: list[float], slots: int) -> float:
    free = [0.0] * slots
    for duration in durations:
        heapq.heapreplace(free, free[0] + duration)
    return max(free)


def split(durations: list[float], sizes: tuple[int, ...]) -> list[list[float]]:
    """Durations in start order, cut into consecutive levels of the given sizes."""
    found, start = [], 0
    for size in sizes:
        found.append(durations[start : start + size])
        start += size
    return found


async def main() -> None:
    counter = EstimatingCounter()
    channel = synthetic_channel()
    args = ("--latency", str(LATENCY), "--token-delay", str(TOKEN_DELAY), "--summarizer")
    async with fake_server("tests.fakes.openai_server", *args) as url:
        sdk = openai.AsyncOpenAI(
            api_key="bench", base_url=url, timeout=httpx2.Timeout(60), max_retries=0
        )
        model = OpenAIChatModel(sdk, "bench", counter, official_api=False)
        config = SummaryConfig(concurrency=CONCURRENCY, max_messages=MESSAGES, max_tokens=5_000_000)
        summarizer = Summarizer(model, counter, config)
        started = time.perf_counter()
        summary = await summarizer.summarize(channel)
        wall = time.perf_counter() - started
        async with (
            aiohttp.ClientSession() as session,
            session.get(url.replace("/v1", "/_stats")) as response,
        ):
            calls = [tuple(c) for c in (await response.json())["service_times"]]
        await model.aclose()

    transcript = sum(counter.count(f"[m{i}] {m.author}: {m.text}") + MESSAGE_OVERHEAD
                     for i, m in enumerate(channel, start=1))  # fmt: skip
    one_shot = transcript + counter.count(
        FINAL.format(language=LANGUAGE_FALLBACK, dialect="Markdown")
    )
    chunk_calls = [c[2] for c in calls if c[0].startswith("You read one")]
    merges = sorted((c for c in calls if c[0].startswith("You merge notes")), key=lambda c: c[1])
    merge_levels = split([c[2] for c in merges], summary.merges)
    final_calls = [c[2] for c in calls if c[0].startswith("You summarize a")]
    critical = makespan(chunk_calls, CONCURRENCY) + sum(
        makespan(level, CONCURRENCY) for level in merge_levels
    )
    critical += sum(final_calls)

    model_timing = f"{LATENCY * 1000:.0f} ms + {TOKEN_DELAY * 1000:.0f} ms per token"
    print(
        f"Summary benchmark ({MESSAGES:,} messages, 60% English / 40% Korean; "
        f"model {model_timing}; concurrency {CONCURRENCY})"
    )
    tree = f"{summary.chunks} chunks, merges per level {list(summary.merges)}, 1 final"
    row("model calls", f"{summary.model_calls} ({tree})")
    row("prompt tokens sent", f"{summary.prompt_tokens:,}")
    row("transcript's own tokens / one-shot call", f"{transcript:,} / {one_shot:,}")
    row(
        "prompt tokens / transcript tokens",
        f"{summary.prompt_tokens / transcript:.2f} (goal <= 1.3)",
    )
    row(
        "wall time / critical path",
        f"{wall:.2f} s / {critical:.2f} s = {wall / critical:.2f} (goal <= 1.5)",
    )
    row("messages cited in the final summary", len(summary.cited))


if __name__ == "__main__":
    asyncio.run(main())
