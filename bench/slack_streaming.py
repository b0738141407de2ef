"""Native streaming against edits, through `python -m bot run` and the fake Web API.

    python -m bench.slack_streaming        (needs Redis on 127.0.0.1:6379, or REDIS_URL)

1. Event -> first visible text minus the model's first-token time, p50/p99, native vs edits,
   one mention at a time; Web API calls per answer on both paths.
2. 50 mentions at once with SLACK_STREAMING=auto against a fake that enforces Slack's tiers:
   makespan against the ideal (the model's own time for one answer), answers that fell back to
   edits, 429s received, placeholders left; with short answers and with answers of ~150 tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench.harness import describe, drop_keys, fake_server, model_server, row, wait_ready
from tests.adapters.slack.conftest import SECRET, envelope, message_event, signed_headers
from tests.fakes.processes import free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL_LATENCY = 0.2  # seconds to the first token
TOKEN_DELAY = 0.02  # seconds between tokens
# a question the echo model repeats (it keeps the last 200 characters)
QUESTION = " ".join(f"word{n}" for n in range(60))
LONG_ANSWER = 150  # words added to each answer in the second burst: about 3 s of model time
ANSWER_METHODS = ("chat.postMessage", "chat.update", "chat.delete", "chat.startStream",
                  "chat.appendStream", "chat.stopStream")  # fmt: skip


@asynccontextmanager
async def bot(streaming: str, slack_url: str, model_url: str) -> AsyncIterator[str]:
    prefix = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_"))}
    env.update(
        OPENAI_BASE_URL=model_url, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix, LOG_LEVEL="WARNING",
        OPS_PORT="0",
        SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack_url,
        PORT=str(port), HOST="127.0.0.1", SLACK_STREAMING=streaming,
    )  # fmt: skip
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", env=env)
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url + "/healthz")
    try:
        yield url + "/slack/events"
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
        await drop_keys(REDIS_URL, prefix)


async def post(session: aiohttp.ClientSession, url: str, event: dict, event_id: str) -> None:
    body = json.dumps(envelope(event, event_id))
    headers = {k: v[0] for k, v in signed_headers(body).items()}
    async with session.post(url, data=body.encode(), headers=headers) as response:
        await response.read()


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


async def first_text(streaming: str) -> tuple[list[float], float]:
    """Overheads (event -> first visible text - model first token) and API calls per answer."""
    async with (
        model_server(latency=MODEL_LATENCY, token_delay=TOKEN_DELAY) as model_url,
        fake_server("tests.fakes.slack_server") as slack_url,
        bot(streaming, slack_url, model_url) as events,
        aiohttp.ClientSession() as session,
    ):
        sent: dict[str, float] = {}
        for n in range(20):  # fewer than chat.update's minute allows: latency, not the budget
            ts = f"1710000{n:03d}.000001"
            sent[ts] = time.time()
            event = message_event("<@UBOT> hello there", ts, kind="app_mention", channel="CF")
            await post(session, events, event, f"EvF{streaming}{n}")
            await asyncio.sleep(MODEL_LATENCY + 0.8)  # one answer at a time
        await asyncio.sleep(1)
        calls = await get(session, slack_url.replace("/api/", "/_calls"))
        firsts = (await get(session, model_url.replace("/v1", "/_stats")))["first_token_times"]
    # Answers run one at a time, so the n-th answer's first text is the n-th first visible call:
    # chat.startStream (native), or the first chat.update of a new placeholder (edits).
    visible: list[float] = []
    edited: set[str] = set()
    for call in calls:
        method, params = call["method"], call["params"]
        if method == "chat.startStream" or (
            method == "chat.postMessage" and params.get("text") != "_Thinking…_"
        ):  # a stream's first text, or an answer posted whole
            visible.append(call["at"])
        elif method == "chat.update" and params["ts"] not in edited:
            edited.add(params["ts"])
            visible.append(call["at"])
    overheads = [v - s - f for v, s, f in zip(visible, sent.values(), firsts, strict=False)]
    per_answer = sum(1 for c in calls if c["method"] in ANSWER_METHODS) / max(1, len(sent))
    return overheads, per_answer


async def burst(words: int) -> dict[str, Any]:
    async with (
        model_server(latency=MODEL_LATENCY, token_delay=TOKEN_DELAY, words=words) as model_url,
        fake_server("tests.fakes.slack_server", "--tiers") as slack_url,
        bot("auto", slack_url, model_url) as events,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
    ):
        started = time.time()
        await asyncio.gather(*(
            post(session, events, message_event(f"<@UBOT> q{n} {QUESTION}",
                                                f"1720000{n:03d}.000001", kind="app_mention",
                                                channel=f"CB{n}"), f"EvB{n}")
            for n in range(50)
        ))  # fmt: skip
        deadline = time.time() + 300
        while time.time() < deadline:
            state = await get(session, slack_url.replace("/api/", "/_state"))
            done = [
                m for c, m in state["messages"].items()
                if c.startswith("CB") and m and not m[-1].startswith("_Thinking")
                and c not in state["streaming"]  # a native stream is done when it stops
            ]  # fmt: skip
            if len(done) == 50:
                break
            await asyncio.sleep(0.05)  # the fake gives no other signal
        makespan = time.time() - started
        calls = await get(session, slack_url.replace("/api/", "/_calls"))
        stats = await get(session, model_url.replace("/v1", "/_stats"))
    ideal = max(seconds for _, _, seconds in stats["service_times"])
    methods = Counter(c["method"] for c in calls)
    return {"makespan": makespan, "ideal": ideal, "answered": len(done), "methods": methods,
            "rate_limited": state["rate_limited"],
            "placeholders_left": sum(1 for m in state["messages"].values()
                                     if m and m[-1].startswith("_Thinking"))}  # fmt: skip


async def main() -> None:
    native, native_calls = await first_text("native")
    edits, edit_calls = await first_text("edits")
    short, long = await burst(0), await burst(LONG_ANSWER)
    print("Slack streaming benchmark (python -m bot run, fake Web API, real Redis)")
    row(f"first visible text - model first token ({MODEL_LATENCY * 1000:.0f} ms), native",
        describe(native))  # fmt: skip
    row("  the same, placeholder and edits", describe(edits))
    row("  goal", "p50 <= 50 ms native")
    row("Web API calls per answer, native / edits", f"{native_calls:.1f} / {edit_calls:.1f}")
    for label, result in (("short answers (~30 tokens)", short),
                          (f"answers of ~{LONG_ANSWER} tokens", long)):  # fmt: skip
        methods = result["methods"]
        row(f"50 mentions at once, auto, Slack's tiers enforced, {label}",
            f"{result['answered']} answered")  # fmt: skip
        row("  makespan / ideal (one answer's model time)",
            f"{result['makespan']:.2f} s / {result['ideal']:.2f} s = "
            f"{result['makespan'] / result['ideal']:.2f}")  # fmt: skip
        row("  streamed natively / fell back to edits",
            f"{methods['chat.startStream']} / {50 - methods['chat.startStream']}")  # fmt: skip
        row("  429s received / placeholders left", f"{sum(result['rate_limited'].values())} / "
            f"{result['placeholders_left']}")  # fmt: skip
        row("  calls by method", dict(sorted(methods.items())))
    row("  goal", "makespan / ideal <= 1.2")


if __name__ == "__main__":
    asyncio.run(main())
