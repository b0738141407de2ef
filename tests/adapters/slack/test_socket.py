"""Socket Mode's fast path: a person's message is acked and taken without slack_bolt's dispatch,
and only what bolt itself would have handed to `SlackBot.take` goes that way."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.listeners import build_app
from adapters.slack.socket import SocketModeHandler, taken_unread
from tests.adapters.slack.conftest import envelope, message_event
from tests.fakes.slack_server import BOT_USER, FakeSlack


class Recorder:
    """What the listeners hand the bot, and nothing done with it."""

    def __init__(self, *, stopping: bool = False) -> None:
        self.web = type("Web", (), {"auth_test": None})()
        self.pane_contexts: Any = None
        self.stopping = stopping
        self.taken: list[tuple[str, int]] = []
        self.accepted: list[str] = []

    def take(self, body: dict[str, Any], retry_num: int = 0) -> bool:
        if self.stopping:
            return False
        self.taken.append((body["event_id"], retry_num))
        return True

    async def accept(self, body: dict[str, Any], retry_num: int = 0, *, pane: bool = False) -> bool:
        self.accepted.append(body["event_id"])
        return True

    async def accept_pane_opened(self, body: dict[str, Any], retry_num: int = 0) -> bool:
        self.accepted.append(body["event_id"])
        return True

    def on_member_joined(self, body: dict[str, Any]) -> None:
        self.accepted.append(body["event_id"])


class Client:
    """The socket's side that matters here: the acks sent."""

    def __init__(self) -> None:
        self.acks: list[SocketModeResponse] = []
        self.logger = logging.getLogger("slack_sdk.socket_mode")

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.acks.append(response)


@pytest.fixture
async def app_for(fake_slack: FakeSlack) -> AsyncIterator[Callable[[Recorder], AsyncApp]]:
    """The bot's own bolt app (Socket Mode: no signing secret) around a Recorder."""
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient("xoxb-test", base_url=fake_slack.url, session=session)
        yield lambda bot: build_app(bot, client, None)  # type: ignore[arg-type]


def request(payload: dict[str, Any], kind: str = "events_api", retry: int = 0) -> SocketModeRequest:
    return SocketModeRequest(kind, "env-1", payload, retry_attempt=retry)


async def socket_for(app_for: Callable[[Recorder], AsyncApp]) -> tuple[Recorder, Any, Client]:
    """A Recorder, the bot's Socket Mode handler around it, and the socket it acks on."""
    bot = Recorder()
    handler = SocketModeHandler(app_for(bot), "xapp-test", bot)  # type: ignore[arg-type]
    await handler.client.close()  # never connected: only its handle() is called
    return bot, handler, Client()


async def test_a_mention_is_taken_and_acked_without_bolts_dispatch(
    app_for: Callable[[Recorder], AsyncApp], fake_slack: FakeSlack
) -> None:
    bot, handler, client = await socket_for(app_for)
    mention = envelope(message_event(f"<@{BOT_USER}> hi", "1.000100", kind="app_mention"), "Ev1")
    await handler.handle(client, request(mention, retry=2))  # type: ignore[arg-type]
    assert bot.taken == [("Ev1", 2)] and [a.envelope_id for a in client.acks] == ["env-1"]
    assert not fake_slack.called("auth.test")  # bolt never ran: it asks who it is first


async def test_the_pane_and_a_shutdown_go_through_bolt(
    app_for: Callable[[Recorder], AsyncApp], fake_slack: FakeSlack
) -> None:
    bot, handler, client = await socket_for(app_for)
    pane = envelope(message_event("hi", "2.0", channel="D1", channel_type="im", thread_ts="1.0"),
                    "EvPane")  # fmt: skip
    await handler.handle(client, request(pane))  # type: ignore[arg-type]
    assert bot.accepted == ["EvPane"] and bot.taken == [] and len(client.acks) == 1
    bot.stopping = True  # unacked: Slack sends it to another connection
    mention = envelope(message_event(f"<@{BOT_USER}> hi", "3.0", kind="app_mention"), "Ev3")
    await handler.handle(client, request(mention))  # type: ignore[arg-type]
    assert len(client.acks) == 1


PAYLOADS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["app_mention", "message", "assistant_thread_started",
                                 "member_joined_channel", "reaction_added"]),
        "channel_type": st.sampled_from(["channel", "im", "group", "mpim"]),
        "channel": st.sampled_from(["C1", "D1"]),
        "subtype": st.sampled_from([None, "file_share", "message_changed", "message_deleted",
                                    "thread_broadcast", "bot_message"]),
        "thread_ts": st.sampled_from([None, "1.0"]),
        "bot_id": st.sampled_from([None, "BOTHER"]),
        "inner_thread": st.sampled_from([None, "1.0"]),
    }
)  # fmt: skip


def payload_of(shape: dict[str, Any]) -> dict[str, Any]:
    event = message_event(
        "hello", "2.0", kind=shape["type"], channel=shape["channel"],
        channel_type=shape["channel_type"], thread_ts=shape["thread_ts"],
    )  # fmt: skip
    if shape["subtype"]:
        event["subtype"] = shape["subtype"]
    if shape["bot_id"]:
        event["bot_id"] = shape["bot_id"]
    if shape["subtype"] in ("message_changed", "message_deleted"):
        inner = {"type": "message", "user": "UALICE", "text": "old", "ts": "1.5"}
        if shape["inner_thread"]:
            inner["thread_ts"] = shape["inner_thread"]
        event["message" if shape["subtype"] == "message_changed" else "previous_message"] = inner
    return envelope(event, "EvX")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PAYLOADS)
async def test_the_fast_path_takes_exactly_what_bolt_would_take(
    app_for: Callable[[Recorder], AsyncApp], shape: dict[str, Any]
) -> None:
    payload = payload_of(shape)
    bot = Recorder()
    app = app_for(bot)
    await run_async_bolt_app(app, request(payload))  # a malformed pane event: bolt's 500
    assert taken_unread(payload) == bool(bot.taken), shape
