"""Real-shaped Slack payloads (tests/payloads/slack_events.json) through the real slack_bolt app,
each with what the bot must do: answer (with what the model must read) or stay silent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.slack.conftest import SlackHarness, envelope, message_event, signed_headers
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import BOT_USER, FakeSlack

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "payloads" / "slack_events.json").read_text()
)


def bot_texts(slack: FakeSlack) -> list[str]:
    return [m["text"] for channel in list(slack.messages) for m in slack.bot_messages(channel)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_real_payload(
    case: dict[str, Any], slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("W0GRID", "Grid person")
    fake_slack.add_user("UPARTNER", "Partner")
    if case.get("known_thread"):  # the bot is already part of this thread
        root = case["known_thread"]
        await slack.event(message_event(f"<@{BOT_USER}> start", root, kind="app_mention"))
    requests, shown = len(fake_openai.requests), len(bot_texts(fake_slack))
    fake_slack.files["F1"] = ("app.log", b"2024-03-09 ERROR disk full\n", "text/plain")
    event = json.loads(  # Slack's file host is the fake's
        json.dumps(case["event"]).replace(
            "https://files.slack.com", fake_slack.url[: -len("/api/")]
        )
    )
    body = json.dumps({**envelope(event, f"Ev-{case['name']}"), **case.get("body", {})})
    response = await slack.dispatch(body, signed_headers(body))
    await slack.bot.tasks.idle()
    assert response.status == 200
    if case["expect"] == "answer":
        assert len(fake_openai.requests) == requests + 1
        prompt = "\n".join(str(m["content"]) for m in fake_openai.requests[-1]["messages"])
        for expected in case.get("prompt_contains", []):
            assert expected in prompt
        for unexpected in case.get("prompt_lacks", []):
            assert unexpected not in prompt
    elif case["expect"] == "acknowledge":
        assert len(fake_openai.requests) == requests, "a model call for files without a question"
        assert bot_texts(fake_slack)[shown:] == [case["says"]]
    else:
        assert len(fake_openai.requests) == requests, "a model call for something not a question"
        assert bot_texts(fake_slack)[shown:] == [], "the bot said something"
