"""Slack benchmark through the real HTTP endpoint of `python -m bot run`.

    python -m bench.slack        (needs Redis on 127.0.0.1:6379, or REDIS_URL)

1. Ack latency at 200 events/s: 2,000 events over 10 s, 1 in 20 a mention that gets answered.
2. Event to first visible answer text, minus the model's own first-token time, for 50 mentions.

Both on the placeholder-and-edit path; native streaming is measured by bench/slack_streaming.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time

import aiohttp

from bench.harness import describe, drop_keys, fake_server, model_server, row, wait_ready
from tests.adapters.slack.conftest import SECRET, envelope, message_event, signed_headers
from tests.fakes.processes import free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL_LATENCY = 0.2  # seconds to the first token
RATE = 200
EVENTS = 2000


async def post(session: aiohttp.ClientSession, url: str, event: dict, event_id: str) -> float:
    body = json.dumps(envelope(event, event_id))
    headers = {k: v[0] for k, v in signed_headers(body).items()}
    started = time.perf_counter()
    async with session.post(url, data=body.encode(), headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def main() -> None:
    prefix = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    async with (
        model_server(latency=MODEL_LATENCY, token_delay=0.01) as model_url,
        fake_server("tests.fakes.slack_server") as slack_url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_"))}
        env.update(
            OPENAI_BASE_URL=model_url, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix,
            LOG_LEVEL="WARNING", SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack_url, PORT=str(port), HOST="127.0.0.1", SLACK_STREAMING="edits",
            OPS_PORT="0",
        )  # fmt: skip
        bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", env=env)
        events_url = f"http://127.0.0.1:{port}/slack/events"
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(f"http://127.0.0.1:{port}/healthz")

            # 1. ack latency under 200 events/s
            started = time.perf_counter()
            tasks = []
            for n in range(EVENTS):
                await asyncio.sleep(max(0.0, started + n / RATE - time.perf_counter()))
                ts = f"1700000{n:03d}.{n:06d}"
                if n % 20 == 0:
                    event = message_event(
                        "<@UBOT> quick question", ts, kind="app_mention", channel=f"C{n % 7}"
                    )
                else:
                    event = message_event(f"chatter {n}", ts, channel=f"C{n % 7}")
                tasks.append(asyncio.create_task(post(session, events_url, event, f"EvL{n}")))
            acks = await asyncio.gather(*tasks)
            sent_for = time.perf_counter() - started

            # 2. time to first visible text, one mention at a time
            # let part 1's answers finish and its minute of Slack's chat.update budget pass: the
            # bot spends one workspace-wide budget, as Slack counts it
            await asyncio.sleep(61)
            async with session.get(slack_url.replace("/api/", "/_calls")) as response:
                load_calls = await response.json()
                calls_before = len(load_calls)
            async with session.get(model_url.replace("/v1", "/_stats")) as response:
                firsts_before = len((await response.json())["first_token_times"])
            sent_at: list[float] = []
            for n in range(20):  # within one minute's chat.update budget
                ts = f"1710000{n:03d}.000001"
                sent_at.append(time.time())
                # a channel each: Slack allows about one message a second per channel
                mention = message_event("<@UBOT> hello", ts, kind="app_mention", channel=f"CF{n}")
                await post(session, events_url, mention, f"EvF{n}")
                await asyncio.sleep(MODEL_LATENCY + 0.6)  # one answer at a time
            await asyncio.sleep(1)
            async with session.get(slack_url.replace("/api/", "/_calls")) as response:
                calls = (await response.json())[calls_before:]
            async with session.get(model_url.replace("/v1", "/_stats")) as response:
                stats = await response.json()
                firsts = stats["first_token_times"][firsts_before:]
                arrivals = stats["arrivals"][firsts_before:]

        bot.send_signal(signal.SIGTERM)
        await bot.wait()

    # an answer's first text is the first edit of its placeholder, or the answer posted whole
    # (when the workspace's chat.update budget, spent by part 1, cannot pay for a placeholder)
    first_text: dict[str, float] = {}
    placeholders: list[float] = []
    whole = 0
    for call in calls:
        params = call["params"]
        if not str(params.get("channel", "")).startswith("CF"):
            continue
        if call["method"] == "chat.postMessage" and params.get("text") == "_Thinking…_":
            placeholders.append(call["at"])
        elif call["method"] == "chat.postMessage":
            first_text[f"whole{len(first_text)}"] = call["at"]
            whole += 1
        elif call["method"] == "chat.update":
            first_text.setdefault(params["ts"], call["at"])
    visible = sorted(first_text.values())
    overhead = [v - s - f for v, s, f in zip(visible, sent_at, firsts, strict=False)]
    to_placeholder = [p - s for p, s in zip(placeholders, sent_at, strict=False)]
    to_model = [a - s for a, s in zip(arrivals, sent_at, strict=False)]

    print("Slack benchmark (HTTP endpoint of `python -m bot run`, fake Web API, real Redis)")
    row(f"ack latency, {EVENTS} events at {RATE}/s (sent in {sent_for:.1f} s)", describe(acks))
    answered = sum(1 for c in load_calls if c["method"] == "chat.postMessage")
    row("  mentions answered during the load", f"{answered} of {EVENTS // 20}")
    row("  goal", "p99 <= 50 ms")
    row(f"event -> first visible text - model first token ({MODEL_LATENCY * 1000:.0f} ms)",
        describe(overhead))  # fmt: skip
    row("  of which event -> placeholder posted", describe(to_placeholder) if placeholders else "-")
    row("  answers posted whole (chat.update budget spent)", f"{whole} of {len(sent_at)}")
    row("  of which event -> model request arrives", describe(to_model))
    row("  goal", "p50 <= 50 ms")

    await drop_keys(REDIS_URL, prefix)


if __name__ == "__main__":
    asyncio.run(main())
