"""What each part of showing one answer costs the bot's CPU, per 100-chunk answer.

    python -m bench.answer_cost

The model is the fake OpenAI server in a process of its own (100 words, 10 ms apart). Each part
is measured on its own, in this process, with CPU time (time.process_time), 200 answers:
1. reading the model's stream (bot.openai_model), on the openai SDK's aiohttp transport (what
   the bot uses) and on its default httpx2 one, against the SDK's own parsing of the same stream;
2. pacing and rendering an answer as it streams (adapters.streaming.StreamingReply with a sink
   that does nothing): Slack's interval and mrkdwn, Discord's interval and plain text;
3. Slack's native stream (adapters.slack.native.NativeReply) with a client that does nothing:
   the appends' own bookkeeping.
Printed against the first row (the bare SDK), measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.harness import model_server, row

ANSWERS, WORDS, DELAY = 200, 100, 0.01


async def reading(url: str, transport: str) -> float:
    import openai

    from bot.chat_model import ChatMessage
    from bot.openai_model import OpenAIChatModel
    from bot.tokens import EstimatingCounter

    extra: dict[str, Any] = {}
    if transport == "aiohttp":
        extra["http_client"] = openai.DefaultAioHttpClient()
    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, **extra)
    model = OpenAIChatModel(client, "fake", EstimatingCounter(), official_api=False)

    async def one(n: int) -> None:
        async for _ in model.stream([ChatMessage("user", f"question {n}")]):
            pass

    await asyncio.gather(*(one(n) for n in range(10)))  # connections and imports
    started = time.process_time()
    await asyncio.gather(*(one(n) for n in range(ANSWERS)))
    spent = (time.process_time() - started) / ANSWERS
    await model.aclose()
    return spent


async def bare_sdk(url: str) -> float:
    from bench.bare_sdk import stream_all

    started = time.process_time()
    await stream_all(url, ANSWERS)
    return (time.process_time() - started) / (ANSWERS + 10)


class NullSink:
    async def prepare(self) -> bool:
        return True

    async def post(self, text: str) -> str:
        return "m"

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        pass

    async def delete(self, message_id: str) -> None:
        pass


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def deltas() -> list[str]:
    """A real-looking answer's pieces: words, some **bold**, a list, a code span."""
    words = []
    for n in range(WORDS):
        word = f"word{n}"
        if n % 17 == 0:
            word = f"**{word}**"
        if n % 23 == 0:
            word = f"\n- `item{n}`"
        words.append(word + " ")
    return words


async def shown(make: Callable[[Clock], Any]) -> float:
    """CPU per answer of `make(clock)`'s reply fed the answer's pieces DELAY apart."""
    pieces = deltas()
    started = time.process_time()
    for _ in range(ANSWERS):
        clock = Clock()
        reply = make(clock)
        await reply.start()
        for piece in pieces:
            clock.now += DELAY
            await reply.feed(piece)
        await reply.finish()
    return (time.process_time() - started) / ANSWERS


async def pacing(interval: float, render: Any) -> float:
    from adapters.streaming import StreamingReply

    return await shown(lambda clock: StreamingReply(
        NullSink(), limit=4000, interval=interval, render=render, clock=clock))  # fmt: skip


async def native() -> float:
    from adapters.slack.native import NativeReply
    from adapters.streaming import StreamingReply

    class Stream:
        ts = "1.1"

        async def append(self, **_: Any) -> None:
            pass

        async def stop(self, **_: Any) -> None:
            pass

    class Client:
        async def chat_stream(self, **_: Any) -> Stream:
            return Stream()

    return await shown(lambda clock: NativeReply(
        Client(), channel="C1", thread_ts="1.0", recipient_user_id="U1",
        recipient_team_id="T1", interval=0.3, clock=clock,
        fallback=lambda: StreamingReply(NullSink(), limit=4000, interval=1.0),
    ))  # fmt: skip


async def main() -> None:
    from adapters.slack.mrkdwn import to_mrkdwn

    print(f"CPU per answer of {WORDS} chunks, by part ({ANSWERS} answers each, this process)")
    async with model_server(0.0, DELAY, WORDS) as url:
        floor = await bare_sdk(url)
        row("the openai SDK alone (its own parsing)", f"{floor * 1000:.2f} ms")
        runs: dict[str, list[float]] = {"aiohttp": [], "httpx2": []}
        for transport in ("httpx2", "aiohttp") * 2:  # alternated: the machine drifts
            runs[transport].append(await reading(url, transport))
        for transport, spent_each in runs.items():
            spent = min(spent_each)
            row(f"1. reading the stream, {transport} transport (best of 2)",
                f"{spent * 1000:.2f} ms ({spent / floor:.2f}x)")  # fmt: skip
    for name, interval, render in (("Slack, mrkdwn", 1.0, to_mrkdwn),
                                   ("Discord, plain", 1.5, lambda text: text)):  # fmt: skip
        spent = await pacing(interval, render)
        row(f"2. pacing and rendering ({name})", f"{spent * 1000:.2f} ms ({spent / floor:.2f}x)")
    spent = await native()
    row("3. Slack native stream appends", f"{spent * 1000:.2f} ms ({spent / floor:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
