"""What the fault tests share: their own redis-server, and bot processes in Slack HTTP mode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.errors import Interrupted
from tests.adapters.discord.conftest import fake_discord
from tests.adapters.slack.conftest import (
    SECRET,
    envelope,
    fake_slack,
    message_event,
    signed_headers,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import BotProcess, RedisServer, bot_env, free_port
from tests.fakes.slack_server import BOT_USER, FakeSlack

__all__ = ["fake_discord", "fake_slack"]

MENTION_TS = "1700000000.000100"
INTERRUPTED = Interrupted().user_message()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


class SlackBots:
    """Bot processes in Slack HTTP mode sharing one Redis, and a way to deliver events."""

    def __init__(self, tmp: Path, slack: FakeSlack, model: FakeOpenAI, redis_url: str) -> None:
        self.tmp, self.slack, self.model, self.redis_url = tmp, slack, model, redis_url
        self.processes: list[BotProcess] = []
        self.ports: list[int] = []

    async def start(self, **env: str) -> int:
        port = free_port()
        settings = dict(
            OPENAI_BASE_URL=self.model.url, REDIS_URL=self.redis_url, SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=self.slack.url, PORT=str(port),
            HOST="127.0.0.1", SLACK_EDIT_INTERVAL="0.2", SLACK_STREAMING="edits",
        )  # fmt: skip
        settings.update(env)
        process = BotProcess(self.tmp, bot_env(**settings), name=f"bot{len(self.processes)}")
        await process.start()
        await process.wait_healthy(port)
        self.processes.append(process)
        self.ports.append(port)
        return len(self.processes) - 1

    async def deliver(self, which: int, event: dict, event_id: str, retry: int = 0) -> int:
        body = json.dumps(envelope(event, event_id))
        extra = {"x-slack-retry-num": str(retry)} if retry else {}
        headers = {k: v[0] for k, v in signed_headers(body, **extra).items()}
        url = f"http://127.0.0.1:{self.ports[which]}/slack/events"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body.encode(), headers=headers) as response,
        ):
            return response.status

    async def close(self) -> None:
        for process in self.processes:
            await process.stop()

    def texts(self, channel: str = "C1") -> list[str]:
        return [m["text"] for m in self.slack.bot_messages(channel)]


@pytest.fixture
async def bots(
    tmp_path: Path, fake_slack: FakeSlack, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> AsyncIterator[SlackBots]:
    group = SlackBots(tmp_path, fake_slack, fake_openai, redis_server.url)
    yield group
    await group.close()


def mention(text: str, ts: str = MENTION_TS) -> dict:
    return message_event(f"<@{BOT_USER}> {text}", ts, kind="app_mention")
