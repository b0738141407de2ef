"""Operating the bot: one ops endpoint in every mode (/healthz, /readyz, /metrics), metrics that
count what happened, JSON logs, and no secret in any log line. Each test runs `python -m bot run`
as operators do."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.adapters.slack.conftest import SECRET, envelope, message_event, signed_headers
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import BotProcess, bot_env, free_port
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.faults.test_faults import ask_discord

DISCORD_TOKEN = "MTE5OTk5OTk5OTk5OTk5OTk5.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
OPENAI_KEY = "sk-test-0123456789abcdefghijklmnop"


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: dict, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    return sum(
        v for (n, ls), v in metrics.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )  # fmt: skip


async def test_discord_only_serves_health_readiness_and_metrics(
    tmp_path: Path, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    ops = free_port()
    bot = BotProcess(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, OPENAI_API_KEY=OPENAI_KEY, DISCORD_BOT_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL=fake_discord.url, OPS_PORT=str(ops), OPS_HOST="127.0.0.1",
        LOG_FORMAT="json", LOG_LEVEL="DEBUG",
    ))  # fmt: skip
    await bot.start()
    try:
        await bot.wait_healthy(ops)
        await fake_discord.wait_for(lambda: fake_discord.identifies == 1, seconds=20)
        await ask_discord(fake_discord, "how are the metrics?")
        status, ready = await get(f"http://127.0.0.1:{ops}/readyz")
        assert status == 200 and json.loads(ready)["up"] == ["discord"]
        status, text = await get(f"http://127.0.0.1:{ops}/metrics")
        assert status == 200
        metrics = samples(text)
        assert (
            value(metrics, "assistant_answers_total", platform="discord", outcome="answered") == 1
        )
        assert value(metrics, "assistant_events_total", platform="discord", type="message") >= 1
        assert value(metrics, "assistant_model_first_token_seconds_count", purpose="answer") == 1
        assert value(metrics, "assistant_model_tokens_total", kind="completion") > 0
        assert value(metrics, "assistant_platform_api_calls_total", platform="discord",
                     method="/channels/{id}/messages") >= 1  # fmt: skip
        assert value(metrics, "assistant_answers_in_flight") == 0
        assert "process_cpu_seconds_total" in text
        assert not any(str(n) in text for n in (fake_discord.threads()[0]["id"],))  # no ids
    finally:
        await bot.stop()
    log = bot.log()
    lines = [line for line in log.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    handled = [r for r in records if r.get("platform") == "discord" and r.get("thread_key")]
    assert handled, "no line carried the event's platform and thread"
    for secret in (DISCORD_TOKEN, OPENAI_KEY, DISCORD_TOKEN.split(".")[-1]):
        assert secret not in log


async def test_slack_shares_its_port_with_the_ops_endpoint(
    tmp_path: Path, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    port = free_port()
    bot = BotProcess(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, SLACK_BOT_TOKEN="xoxb-1234567890-abcdefghij",
        SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.url, PORT=str(port),
        OPS_PORT=str(port), HOST="127.0.0.1", OPS_HOST="127.0.0.1", SLACK_STREAMING="edits",
        LOG_LEVEL="DEBUG",
    ))  # fmt: skip
    fake_slack.file_token = "xoxb-1234567890-abcdefghij"
    await bot.start()
    try:
        await bot.wait_healthy(port, path="/readyz")  # alive first; /slack/events once ready
        body = json.dumps(envelope(message_event(f"<@{BOT_USER}> hi", "1700000000.000100",
                                                 kind="app_mention"), "Ev1"))  # fmt: skip
        headers = {k: v[0] for k, v in signed_headers(body).items()}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=headers
            ) as response,  # fmt: skip
        ):
            assert response.status == 200
        await fake_slack.wait_for(lambda: any(
            m["text"] == "echo: Alice: hi" for m in fake_slack.bot_messages("C1")))  # fmt: skip
        metrics = samples((await get(f"http://127.0.0.1:{port}/metrics"))[1])
        assert value(metrics, "assistant_answers_total", platform="slack", outcome="answered") == 1
        assert value(metrics, "assistant_platform_api_calls_total", platform="slack",
                     method="chat.postMessage") >= 1  # fmt: skip
        assert value(metrics, "assistant_thread_lock_wait_seconds_count") == 1
    finally:
        await bot.stop()
    assert "xoxb-1234567890-abcdefghij" not in bot.log() and SECRET not in bot.log()
