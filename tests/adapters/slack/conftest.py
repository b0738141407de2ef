from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from adapters.slack.mentions import SlackBot
from adapters.slack.runner import start_bot
from adapters.slack.settings import load_slack_settings
from bot.assembly import Core
from tests.conftest import REDIS_URL, redis_core
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import TEAM, FakeSlack

SECRET = "test-signing-secret"


def signed_headers(
    body: str, secret: str = SECRET, content_type: str = "application/json", **extra: str
) -> dict[str, list[str]]:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "content-type": [content_type],
        "x-slack-request-timestamp": [timestamp],
        "x-slack-signature": [signature],
    }
    headers.update({k: [v] for k, v in extra.items()})
    return headers


def envelope(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
    }


def message_event(
    text: str,
    ts: str,
    *,
    user: str = "UALICE",
    channel: str = "C1",
    thread_ts: str | None = None,
    kind: str = "message",
    channel_type: str = "channel",
    **extra: Any,
) -> dict[str, Any]:
    event = {
        "type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM,
        **extra,
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


class SlackHarness:
    def __init__(self, bot: SlackBot, app: AsyncApp, slack: FakeSlack, core: Core) -> None:
        self.bot, self.app, self.slack, self.core = bot, app, slack, core
        self._ids = 0

    async def dispatch(self, body: str, headers: dict[str, list[str]]) -> BoltResponse:
        return await self.app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))

    async def event(
        self,
        event: dict[str, Any],
        event_id: str | None = None,
        settle: bool = True,
        **headers: str,
    ) -> BoltResponse:
        self._ids += 1
        body = json.dumps(envelope(event, event_id or f"Ev{self._ids:06d}"))
        response = await self.dispatch(body, signed_headers(body, **headers))
        if settle:
            await self.bot.tasks.idle()
        return response

    async def form(self, payload: dict[str, Any]) -> BoltResponse:
        body = urlencode(payload)
        response = await self.dispatch(
            body, signed_headers(body, content_type="application/x-www-form-urlencoded")
        )
        await self.bot.tasks.idle()
        return response

    async def command(self, text: str, channel: str = "C1", user: str = "UALICE") -> BoltResponse:
        return await self.form({
            "token": "legacy", "team_id": TEAM, "channel_id": channel, "user_id": user,
            "command": "/summarize", "text": text, "response_url": self.slack.response_url,
            "trigger_id": "trig",
        })  # fmt: skip

    async def shortcut(self, message: dict[str, Any], channel: str = "C1") -> BoltResponse:
        payload = {
            "type": "message_action", "callback_id": "summarize_thread", "trigger_id": "trig",
            "team": {"id": TEAM}, "channel": {"id": channel}, "user": {"id": "UALICE"},
            "message": message, "response_url": self.slack.response_url, "token": "legacy",
            "action_ts": "1.2",
        }  # fmt: skip
        return await self.form({"payload": json.dumps(payload)})

    async def close(self) -> None:
        await self.bot.web.close()
        await self.core.aclose()

    def thread_texts(self, channel: str = "C1") -> list[str]:
        return [m["text"] for m in self.slack.bot_messages(channel)]


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    for user, name in (("UALICE", "Alice"), ("UBOB", "Bob"), ("UCAROL", "Carol")):
        slack.add_user(user, name)
    yield slack
    await slack.stop()


async def make_harness(
    fake_openai: FakeOpenAI,
    fake_slack: FakeSlack,
    prefix: str,
    client: aioredis.Redis | None = None,
    **slack_env: str,
) -> SlackHarness:
    core = redis_core(fake_openai, client or aioredis.Redis.from_url(REDIS_URL), prefix)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_slack.url,
        "SLACK_EDIT_INTERVAL": "0.2",
        "SLACK_STREAMING": "edits",
        "SLACK_FEEDBACK": "false",
        **slack_env,
    }
    bot, app = await start_bot(core, load_slack_settings(_env_file=None, **env))
    return SlackHarness(bot, app, fake_slack, core)


@pytest.fixture
async def slack(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> AsyncIterator[SlackHarness]:
    harness = await make_harness(fake_openai, fake_slack, clean_prefix)
    yield harness
    await harness.close()
