"""Anything anyone can send to `/slack/events` of `python -m bot run`: never a 5xx, never a
traceback, at most a short line each; signed garbage is acknowledged and goes nowhere; and the
bot still answers a normal mention afterwards."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adapters.slack.conftest import (
    SECRET,
    SlackHarness,
    envelope,
    message_event,
    signed_headers,
)
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import BotProcess, bot_env, free_port
from tests.fakes.slack_server import BOT_USER, FakeSlack


class Endpoint:
    def __init__(self, process: BotProcess, url: str, session: aiohttp.ClientSession) -> None:
        self.process, self.url, self.session = process, url, session

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        async with self.session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def signed(self, body: str | bytes, content_type: str = "application/json") -> int:
        text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
        headers = {k: v[0] for k, v in signed_headers(text, content_type=content_type).items()}
        raw = body if isinstance(body, bytes) else body.encode()
        return await self.post(raw, headers)


@pytest.fixture
async def endpoint(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> AsyncIterator[Endpoint]:
    port = free_port()
    process = BotProcess(
        tmp_path,
        bot_env(
            OPENAI_BASE_URL=fake_openai.url,
            REDIS_URL=REDIS_URL,
            REDIS_PREFIX=clean_prefix,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake_slack.url,
            PORT=str(port),
            HOST="127.0.0.1",
            SLACK_EDIT_INTERVAL="0.2",
            SLACK_STREAMING="edits",
        ),
    )
    await process.start()
    await process.wait_healthy(port)
    async with aiohttp.ClientSession() as session:
        yield Endpoint(process, f"http://127.0.0.1:{port}/slack/events", session)
    process.signal(signal.SIGTERM)
    assert await process.wait(15) == 0


async def still_answers(endpoint: Endpoint, fake_slack: FakeSlack) -> None:
    event = message_event(f"<@{BOT_USER}> still there?", "1700000999.000100", kind="app_mention")
    assert await endpoint.signed(json.dumps(envelope(event, "EvAfter"))) == 200
    await fake_slack.wait_for(
        lambda: any(m["text"] == "echo: Alice: still there?" for m in fake_slack.bot_messages("C1"))
    )


def now() -> str:
    return str(int(time.time()))


UNSIGNED = [
    ("no signature", b'{"type": "event_callback"}', {"x-slack-request-timestamp": "1"}),
    (
        "timestamp not a number",
        b"{}",
        {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=ab"},
    ),
    ("empty timestamp", b"{}", {"x-slack-request-timestamp": "", "x-slack-signature": "v0=ab"}),
    ("bad signature", b"{}", {"x-slack-request-timestamp": "NOW", "x-slack-signature": "v0=00"}),
    (
        "not UTF-8",
        b"\xff\xfe\xfa",
        {"x-slack-request-timestamp": "NOW", "x-slack-signature": "v0=1"},
    ),
]


@pytest.mark.parametrize(("name", "body", "headers"), UNSIGNED, ids=[u[0] for u in UNSIGNED])
async def test_unsigned_or_malformed_requests_get_4xx_and_one_short_line(
    endpoint: Endpoint, fake_slack: FakeSlack, name: str, body: bytes, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("NOW", now()) for k, v in headers.items()}
    before = endpoint.process.log()
    status = await endpoint.post(body, {"content-type": "application/json", **headers})
    assert 400 <= status < 500
    await still_answers(endpoint, fake_slack)
    new = endpoint.process.log()[len(before) :]
    assert "Traceback" not in new
    assert len([line for line in new.splitlines() if "events" in line.lower()]) <= 1


SIGNED_GARBAGE = [
    ("truncated JSON", '{"type": "event_callback", "event": {"type": "app_men'),
    ("deeply nested JSON", "[" * 100_000 + "]" * 100_000),
    ("a JSON list", '[{"type": "event_callback"}]'),
    ("not JSON at all", "hello"),
    ("bad payload= form", "payload=%7Bnot-json"),
]


@pytest.mark.parametrize(("name", "body"), SIGNED_GARBAGE, ids=[g[0] for g in SIGNED_GARBAGE])
async def test_signed_garbage_bodies_get_4xx_without_a_traceback(
    endpoint: Endpoint, fake_slack: FakeSlack, name: str, body: str
) -> None:
    kind = (
        "application/x-www-form-urlencoded" if body.startswith("payload=") else "application/json"
    )
    status = await endpoint.signed(body, kind)
    assert 400 <= status < 500
    await still_answers(endpoint, fake_slack)
    assert "Traceback" not in endpoint.process.log()


WRONG_TYPES = [
    {"type": "app_mention", "user": ["UALICE"], "text": "<@UBOT> hi", "ts": "1.1", "channel": "C1"},
    {"type": "app_mention", "user": "UALICE", "text": 5, "ts": "1.2", "channel": "C1"},
    {
        "type": "app_mention",
        "user": "UALICE",
        "text": "<@UBOT> hi",
        "ts": 1.3,
        "channel": {"id": "C1"},
    },
    {
        "type": "message",
        "user": "UALICE",
        "text": "hi",
        "ts": "1.4",
        "channel": None,
        "channel_type": "im",
    },
    {
        "type": "message",
        "subtype": ["x"],
        "user": "UALICE",
        "text": "hi",
        "ts": "1.5",
        "channel": "D1",
    },
    {
        "type": "app_mention",
        "user": "UALICE",
        "text": "<@UBOT> hi",
        "ts": "1.6",
        "channel": "C1",
        "thread_ts": {"ts": "1"},
        "attachments": "none",
        "files": [1, 2],
    },
]


async def test_signed_events_with_wrong_field_types_are_acked_and_go_nowhere(
    endpoint: Endpoint, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    for n, event in enumerate(WRONG_TYPES):
        assert await endpoint.signed(json.dumps(envelope(event, f"EvBad{n}"))) == 200
    body = envelope(WRONG_TYPES[0], "EvBadId")
    body["event_id"] = {"not": "a string"}
    body["team_id"] = ["T1"]
    assert await endpoint.signed(json.dumps(body)) == 200
    assert await endpoint.signed(json.dumps({"type": "event_callback", "event": "text"})) == 200
    await still_answers(endpoint, fake_slack)
    assert len(fake_openai.requests) == 1  # only the normal mention reached the model
    posted = {p["channel"] for p in fake_slack.called("chat.postMessage")}
    assert posted == {"C1"}
    assert "Traceback" not in endpoint.process.log()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "type",
    "subtype",
    "user",
    "text",
    "ts",
    "thread_ts",
    "channel",
    "channel_type",
    "team",
    "bot_id",
    "edited",
    "files",
    "attachments",
    "deleted_ts",
    "previous_message",
    "hidden",
]
EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "app_mention", "reaction_added", "x"]) | JSON},
    optional={name: JSON for name in FIELDS[1:]}
    | {"text": st.just(f"<@{BOT_USER}> fuzz") | JSON, "channel": st.just("C7") | JSON},
)


async def test_fuzzed_events_never_get_a_5xx_or_a_traceback(
    endpoint: Endpoint, fake_slack: FakeSlack
) -> None:
    statuses: list[int] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event=EVENT, event_id=st.text(max_size=10) | JSON)
    def shapes(event: dict, event_id: object) -> None:
        body = envelope(event, "x")
        body["event_id"] = event_id
        fuzzed.append(json.dumps(body))

    fuzzed: list[str] = []
    shapes()
    for body in fuzzed:
        statuses.append(await endpoint.signed(body))
    assert all(status < 500 for status in statuses)
    await still_answers(endpoint, fake_slack)
    assert "Traceback" not in endpoint.process.log()


@pytest.mark.parametrize(
    "event",
    [
        {"type": "reaction_added", "user": "UALICE", "reaction": "thumbsup",
         "item": {"type": "message", "channel": "C1", "ts": "1700000000.000100"},
         "event_ts": "1700000000.000200"},
        {"type": "channel_rename", "channel": {"id": "C1", "name": "general-2", "created": 1}},
        {"type": "app_home_opened", "user": "UALICE", "channel": "D1", "tab": "home"},
    ],
)  # fmt: skip
async def test_an_event_type_the_bot_does_not_handle_is_acknowledged_in_one_line(
    slack: SlackHarness, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture, event: dict
) -> None:
    caplog.set_level(logging.INFO)
    response = await slack.event(event)
    assert response.status == 200  # a 404 counts as a failed delivery at Slack
    said = [r for r in caplog.records if r.name.startswith(("slack_bolt", "adapters.slack"))]
    assert [r.getMessage() for r in said] == [
        f"event {event['type']!r} is not one the bot handles: acknowledged, ignored"
    ]
    assert fake_openai.requests == [] and slack.slack.called("chat.postMessage") == []
