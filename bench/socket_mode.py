"""Bursts over Socket Mode through `python -m bot run`: how late the acks are, and how long the
last answer takes against the model's own time.

    python -m bench.socket_mode        (needs Redis on 127.0.0.1:6379, or REDIS_URL)

The model is held fixed (0.5 s to the first token, then 100 words 10 ms apart: the ideal answer
takes about 1.5 s); the fake Slack Web API and Socket Mode server run in a process of their own,
so they never steal the bot's loop. Each mention is in a channel of its own (Slack lets a
channel take about one message a second, which would measure that instead of the bot), on the
placeholder-and-edit path.

1. 50 mentions at once: ack p50/p99 and the last answer done / ideal.
2. 200 mentions at once, each delivered twice (Slack's retry): the same figures, and answers
   posted twice (must be 0).

Printed as ratios against the model's own time, measured in the same run, so they compare
across machines.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench.harness import (
    cpu_seconds,
    drop_keys,
    fake_server,
    model_server,
    percentile,
    row,
    wait_ready,
)
from tests.adapters.slack.conftest import envelope, message_event
from tests.fakes.processes import free_port
from tests.fakes.slack_server import BOT_USER

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LATENCY, TOKEN_DELAY, WORDS = 0.5, 0.01, 100
PLACEHOLDER = "_Thinking…_"


@asynccontextmanager
async def bot(slack_url: str, model_url: str) -> AsyncIterator[int]:
    prefix = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_"))}
    env.update(
        OPENAI_BASE_URL=model_url, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix, LOG_LEVEL="WARNING",
        OPS_PORT="0", SLACK_BOT_TOKEN="xoxb-bench", SLACK_APP_TOKEN="xapp-bench",
        SLACK_API_URL=slack_url, PORT=str(port), HOST="127.0.0.1", SLACK_STREAMING="edits",
    )  # fmt: skip
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", env=env)
    await wait_ready(f"http://127.0.0.1:{port}/readyz")
    try:
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        await drop_keys(REDIS_URL, prefix)


async def state(session: aiohttp.ClientSession, slack_url: str) -> dict[str, Any]:
    async with session.get(slack_url.replace("/api/", "/_state")) as response:
        result: dict[str, Any] = await response.json()
        return result


def done(texts: list[str]) -> bool:
    return bool(texts) and texts[-1] != PLACEHOLDER and not texts[-1].endswith("…")


async def burst(slack_url: str, model_url: str, count: int, copies: int) -> dict[str, float]:
    run = secrets.token_hex(3)
    envelopes = []
    for n in range(count):
        event = message_event(f"<@{BOT_USER}> question {n}", f"1700000{n:03d}.000100",
                              kind="app_mention", channel=f"C{run}{n}")  # fmt: skip
        for copy in range(copies):
            envelopes.append([envelope(event, f"Ev{run}{n}"), f"env-{run}-{n}-{copy}", copy])
    async with bot(slack_url, model_url) as pid, aiohttp.ClientSession() as session:
        push = slack_url.replace("/api/", "/_push")
        cpu = cpu_seconds(pid)
        started = time.time()
        async with session.post(push, json={"envelopes": envelopes}) as response:
            sent = (await response.json())["sent"]
        channels = [f"C{run}{n}" for n in range(count)]
        finished: dict[str, float] = {}
        while len(finished) < count and time.time() - started < 120:
            shown = (await state(session, slack_url))["messages"]
            now = time.time()
            for channel in channels:
                if channel not in finished and done(shown.get(channel, [])):
                    finished[channel] = now
            await asyncio.sleep(0.2)  # polling a fake in another process: nothing to await
        cpu = cpu_seconds(pid) - cpu  # the burst's (its liveness beats included)
        final = await state(session, slack_url)
        # When each answer was done, as the fake took the call that finished it (the polling
        # above only says that it is, up to 200 ms late).
        async with session.get(slack_url.replace("/api/", "/_calls")) as response:
            calls = await response.json()
    last: dict[str, float] = {}
    for call in calls:
        channel = call["params"].get("channel")
        if channel in finished and call["method"].startswith("chat."):
            last[channel] = max(last.get(channel, 0.0), call["at"])
    finished.update(last)
    acked = final["acked"]
    lags = [acked[e[1]] - at for e, at in zip(envelopes, sent, strict=True) if e[1] in acked]
    twice = sum(1 for c in channels if len(final["messages"].get(c, [])) > 1)
    ideal = LATENCY + TOKEN_DELAY * WORDS
    return {
        "ack p50": percentile(lags, 0.5) * 1000,
        "ack p99": percentile(lags, 0.99) * 1000,
        "acked": len(lags) / len(envelopes),
        "makespan": (max(finished.values()) - started) / ideal if finished else float("inf"),
        "answered": len(finished) / count,
        "twice": twice,
        "cpu": cpu / count * 1000,
    }


async def main() -> None:
    print("Socket Mode bursts (python -m bot run, fake Slack in its own process, real Redis)")
    async with (
        model_server(LATENCY, TOKEN_DELAY, WORDS) as model_url,
        fake_server("tests.fakes.slack_server") as slack_url,
    ):
        for count, copies, goal in ((50, 1, 1.2), (200, 2, 1.5)):
            f = await burst(slack_url, model_url, count, copies)
            label = f"{count} mentions at once" + (", each delivered twice" if copies > 1 else "")
            row(label, f"last answer done / ideal {f['makespan']:.2f} (goal <= {goal})")
            row("  ack p50 / p99", f"{f['ack p50']:.0f} / {f['ack p99']:.0f} ms (goal p99 <= 50)")
            row("  bot CPU per answer (ms)", f"{f['cpu']:.1f}")
            row("  answered / acked / answered twice",
                f"{f['answered']:.0%} / {f['acked']:.0%} / {f['twice']:.0f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
