"""Discord benchmark: `python -m bot run` against the fake gateway and REST API.

    python -m bench.discord      (needs Redis on 127.0.0.1:6379, or REDIS_URL)

1. MESSAGE_CREATE to first visible answer text, minus the model's own first-token time.
2. 20 answers streaming at once in one channel, with Discord's per-channel limit enforced by the
   fake (5 sends and 5 edits per 5 s): 429s received, edits per answer, time to finish.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time

import aiohttp

from bench.harness import describe, drop_keys, model_server, row
from tests.fakes.discord_server import BOT_USER, CHANNEL, PEOPLE, USERS, FakeDiscord

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL_LATENCY = 0.2
ALICE = USERS[PEOPLE["alice"]]
MENTION = f"<@{BOT_USER['id']}>"


async def first_token_times(session: aiohttp.ClientSession, model_url: str) -> list[float]:
    async with session.get(model_url.replace("/v1", "/_stats")) as response:
        return list((await response.json())["first_token_times"])


def edits_of(fake: FakeDiscord, channel: int) -> list[tuple[str, float, str]]:
    """(message id, time, content) of every edit in a channel."""
    found = []
    for (method, path, body), at in zip(fake.calls, fake.call_times, strict=True):
        if method == "PATCH" and path.startswith(f"channels/{channel}/messages/"):
            found.append((path.rsplit("/", 1)[1], at, str(body.get("content", ""))))
    return found


async def main() -> None:
    prefix = f"bench-{secrets.token_hex(4)}"
    fake = FakeDiscord(rate_limit=(5, 5.0))
    await fake.start()
    async with (
        model_server(latency=MODEL_LATENCY, token_delay=0.05) as model_url,
        aiohttp.ClientSession() as session,
    ):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "SLACK_", "DISCORD_"))
        }
        env.update(
            OPENAI_BASE_URL=model_url,
            REDIS_URL=REDIS_URL,
            REDIS_PREFIX=prefix,
            LOG_LEVEL="WARNING",
            OPS_PORT="0",
            DISCORD_BOT_TOKEN="bench",
            DISCORD_API_URL=fake.url,
        )
        bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", env=env)
        await asyncio.wait_for(fake.identified.wait(), 30)

        # 1. first visible text, one mention at a time, each in its own new thread
        overheads: list[float] = []
        to_placeholder: list[float] = []
        for n in range(30):
            await asyncio.sleep(1.2)  # people do not open threads faster than Discord allows
            before = len(await first_token_times(session, model_url))
            question = fake.message(CHANNEL, f"{MENTION} question {n}", ALICE, mentions=[BOT_USER])
            sent = time.time()
            await fake.dispatch_message(question)
            thread = int(question["id"])
            await fake.wait_for(lambda t=thread: bool(edits_of(fake, t)), 30)
            first_visible = edits_of(fake, thread)[0][1]  # the first edit shows the first text
            placeholder = next(
                at
                for (method, path, _), at in zip(fake.calls, fake.call_times, strict=True)
                if method == "POST" and path == f"channels/{thread}/messages"
            )
            to_placeholder.append(placeholder - sent)
            model_first = (await first_token_times(session, model_url))[before]
            overheads.append(first_visible - sent - model_first)
            await fake.wait_for(
                lambda t=thread: any("…" not in e[2] for e in edits_of(fake, t)), 30
            )

        # 2. twenty answers at once in one channel: mentions inside one thread are answered there
        room = thread
        limited_before = fake.rate_limited
        edits_before = len(edits_of(fake, room))
        started = time.time()
        for n in range(20):
            burst = fake.message(room, f"{MENTION} burst {n}", ALICE, mentions=[BOT_USER])
            await fake.dispatch_message(burst)

        def finished() -> bool:
            texts = edits_of(fake, room)
            return len({m for m, _, text in texts if "burst" in text and "…" not in text}) >= 20

        await fake.wait_for(finished, 180)
        burst_seconds = time.time() - started
        burst_edits = len(edits_of(fake, room)) - edits_before
        bot.send_signal(signal.SIGTERM)
        await bot.wait()
    await fake.stop()

    print(
        "Discord benchmark (`python -m bot run`, fake gateway + REST with rate limits, real Redis)"
    )
    row(f"MESSAGE_CREATE -> first visible text - model first token ({MODEL_LATENCY * 1000:.0f} ms)",
        describe(overheads))  # fmt: skip
    row("  of which event -> placeholder posted (thread opened first)", describe(to_placeholder))
    row("  goal", "p50 <= 50 ms")
    row("20 concurrent answers in one channel: 429s", fake.rate_limited - limited_before)
    row("  edits per answer", f"{burst_edits / 20:.1f}")
    row("  all 20 answered in", f"{burst_seconds:.1f} s")
    row("  goal", "never a 429")

    await drop_keys(REDIS_URL, prefix)


if __name__ == "__main__":
    asyncio.run(main())
