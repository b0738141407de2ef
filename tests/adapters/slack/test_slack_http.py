"""The real HTTP endpoint of `python -m bot run`, in a subprocess, against the local fakes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.adapters.slack.conftest import SECRET, envelope, message_event, signed_headers
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import free_port, run_bot
from tests.fakes.slack_server import BOT_USER, FakeSlack


def bot_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_", "REDIS_", "SLACK_"))
    }
    env.update(values)
    return env


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)  # readiness poll: the process gives no other signal
    raise AssertionError("the bot never became healthy")


@pytest.fixture
async def running_bot(
    tmp_path, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> AsyncIterator[str]:
    port = free_port()
    env = bot_env(
        OPENAI_BASE_URL=fake_openai.url, REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix,
        SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.url,
        PORT=str(port), HOST="127.0.0.1", SLACK_EDIT_INTERVAL="0.2", SLACK_STREAMING="edits",
    )  # fmt: skip
    process = await run_bot(tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base + "/healthz", process)
    yield base
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 15) == 0


async def post_event(base: str, body: str, headers: dict[str, list[str]]) -> tuple[int, float]:
    flat = {k: v[0] for k, v in headers.items()}
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            base + "/slack/events", data=body.encode(), headers=flat
        ) as response:
            await response.read()
            return response.status, time.perf_counter() - started


async def test_mention_through_the_http_endpoint(
    running_bot: str, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_openai.push(Reply(text="Hello **there**", first_token_delay=0.5))
    event = message_event(f"<@{BOT_USER}> hi", "1700000000.000100", kind="app_mention")
    body = json.dumps(envelope(event, "EvHTTP1"))
    status, _ = await post_event(running_bot, body, signed_headers(body))
    assert status == 200
    assert (
        not fake_slack.bot_messages("C1")
        or fake_slack.bot_messages("C1")[0]["text"] == "_Thinking…_"
    )
    await fake_slack.wait_for(
        lambda: any(m["text"] == "Hello *there*" for m in fake_slack.bot_messages("C1"))
    )
    # the retry Slack would send is dropped
    status, _ = await post_event(
        running_bot, body, signed_headers(body, **{"x-slack-retry-num": "1"})
    )
    assert status == 200
    assert len(fake_slack.called("chat.postMessage")) == 1


async def test_bad_signature_over_http_is_401(
    running_bot: str, fake_slack: FakeSlack, fake_openai
) -> None:
    body = json.dumps(
        envelope(message_event(f"<@{BOT_USER}> hi", "1.2", kind="app_mention"), "EvHTTP2")
    )
    status, _ = await post_event(running_bot, body, signed_headers(body, secret="wrong"))
    assert status == 401
    assert fake_slack.called("chat.postMessage") == [] and fake_openai.requests == []


async def test_url_verification_challenge(running_bot: str) -> None:
    body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"})
    async with aiohttp.ClientSession() as session:
        flat = {k: v[0] for k, v in signed_headers(body).items()}
        async with session.post(running_bot + "/slack/events", data=body, headers=flat) as response:
            assert response.status == 200 and (await response.json()) == {"challenge": "abc123"}


async def test_rejected_token_stops_start_up_with_one_line(
    tmp_path, fake_openai, fake_slack: FakeSlack
) -> None:
    fake_slack.token_ok = False
    process = await run_bot(tmp_path, bot_env(
        OPENAI_BASE_URL=fake_openai.url, SLACK_BOT_TOKEN="xoxb-bad", SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.url, PORT=str(free_port()),
    ))  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert (
        stderr.decode().strip().splitlines()[-1]
        == "error: SLACK_BOT_TOKEN: was rejected by Slack (invalid_auth)"
    )


async def test_http_mode_without_signing_secret_stops_start_up(tmp_path, fake_openai) -> None:
    process = await run_bot(
        tmp_path, bot_env(OPENAI_BASE_URL=fake_openai.url, SLACK_BOT_TOKEN="xoxb-1")
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert (
        stderr.decode()
        .strip()
        .splitlines()[-1]
        .startswith("error: SLACK_SIGNING_SECRET: is required in HTTP mode")
    )


async def test_run_without_any_platform_says_what_to_configure(tmp_path, fake_openai) -> None:
    process = await run_bot(tmp_path, bot_env(OPENAI_BASE_URL=fake_openai.url))
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert "SLACK_BOT_TOKEN" in stderr.decode()


async def test_socket_mode_answers_and_acks(
    tmp_path, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> None:
    port = free_port()
    env = bot_env(
        OPENAI_BASE_URL=fake_openai.url, REDIS_URL=REDIS_URL, REDIS_PREFIX=clean_prefix,
        SLACK_BOT_TOKEN="xoxb-test", SLACK_APP_TOKEN="xapp-test", SLACK_API_URL=fake_slack.url,
        PORT=str(port), HOST="127.0.0.1", SLACK_EDIT_INTERVAL="0.2", SLACK_STREAMING="edits",
    )  # fmt: skip
    process = await run_bot(tmp_path, env)  # no signing secret: Socket Mode needs none
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, f"http://127.0.0.1:{port}/healthz", process)
    await fake_slack.wait_for(lambda: bool(fake_slack.sockets))
    event = message_event(
        f"<@{BOT_USER}> hi over the socket", "1700000000.000100", kind="app_mention"
    )
    for attempt in range(2):  # the second is Slack's retry of the same envelope's event
        await fake_slack.push(envelope(event, "EvSOCK"), f"env-{attempt}", retry_attempt=attempt)
    await fake_slack.wait_for(
        lambda: {a.get("envelope_id") for a in fake_slack.acks} >= {"env-0", "env-1"}
    )
    await fake_slack.wait_for(
        lambda: any(
            m["text"] == "echo: Alice: hi over the socket" for m in fake_slack.bot_messages("C1")
        )
    )
    assert len(fake_slack.called("chat.postMessage")) == 1
    assert fake_slack.called("apps.connections.open")  # the socket address came from Slack
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 15) == 0


def test_the_socket_mode_readiness_probe_reads_the_live_session() -> None:
    from types import SimpleNamespace

    from adapters.slack.runner import _socket_probe

    def probe(session: object) -> str | None:
        return _socket_probe(SimpleNamespace(client=SimpleNamespace(current_session=session)))()

    assert probe(SimpleNamespace(closed=False)) is None
    assert probe(SimpleNamespace(closed=True)) == "the Socket Mode connection is down"
    assert probe(None) == "the Socket Mode connection is down"
