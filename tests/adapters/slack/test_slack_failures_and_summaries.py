"""Every failure ends in a sentence; /summarize, the shortcut and @bot summarize."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from adapters.slack.mentions import PLACEHOLDER
from bot.errors import StoreUnavailable
from bot.store.memory import RedisMemory
from tests.adapters.slack.conftest import (
    SECRET,
    SlackHarness,
    envelope,
    message_event,
    signed_headers,
)
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import BOT_USER, FakeSlack

MENTION_TS = "1700000000.000100"


@pytest.mark.parametrize(
    ("reply", "sentence"),
    [
        (
            Reply(status=429, headers={"Retry-After": "7"}),
            "rate limited right now; please try again in 7 s.",
        ),
        (Reply(status=500), "unavailable right now"),
        (Reply(text="a b c d", break_after=2), "unavailable right now"),
        (
            Reply(status=400, error={"message": "filtered", "code": "content_filter"}),
            "content filter",
        ),
        (
            Reply(status=401, error={"message": "bad key", "code": "invalid_api_key"}),
            "administrator",
        ),
        (Reply(status=400, error={"message": "maximum context length exceeded"}), "too long"),
    ],
)
async def test_model_failures_replace_the_placeholder_with_a_sentence(
    slack: SlackHarness, fake_openai: FakeOpenAI, reply: Reply, sentence: str
) -> None:
    fake_openai.push(reply)
    await slack.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    texts = slack.thread_texts()
    assert len(texts) == 1 and sentence in texts[0] and PLACEHOLDER not in texts[0]


async def test_model_timeout_ends_in_a_sentence(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    slack.core.model._client = slack.core.model._client.with_options(timeout=0.3)
    fake_openai.push(Reply(text="late", first_token_delay=3))
    await slack.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    assert slack.thread_texts() == ["The language model took too long to answer; please try again."]


async def test_store_down_ends_in_a_sentence(slack: SlackHarness, fake_openai: FakeOpenAI) -> None:
    broken = RedisMemory(aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1))
    slack.core.engine.memory = broken
    await slack.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    assert slack.thread_texts() == [StoreUnavailable("").user_message()]
    assert "conversation store is unavailable" in slack.thread_texts()[0]
    assert fake_openai.requests == []
    await broken.aclose()


async def test_empty_mention_asks_for_a_question(slack: SlackHarness, fake_openai) -> None:
    await slack.event(message_event(f"<@{BOT_USER}>", MENTION_TS, kind="app_mention"))
    assert slack.thread_texts() == [
        "Your message was empty; write your question after mentioning me."
    ]


async def test_bad_signature_is_rejected_and_nothing_is_answered(
    slack: SlackHarness, fake_openai
) -> None:
    body = json.dumps(
        envelope(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"), "EvBAD")
    )
    response = await slack.dispatch(body, signed_headers(body, secret="not-the-secret"))
    await slack.bot.tasks.idle()
    assert response.status == 401
    assert slack.slack.called("chat.postMessage") == [] and fake_openai.requests == []
    assert SECRET  # the harness's own requests use the right one


def channel_history(fake_slack: FakeSlack, count: int = 5) -> None:
    import time

    now = time.time()
    for n in range(count):
        fake_slack.add_message(
            "C1", f"{now - 600 + n:.6f}", f"update number {n}", ["UALICE", "UBOB"][n % 2]
        )
    fake_slack.add_message("C1", f"{now - 5 * 86400:.6f}", "an old message", "UCAROL")


async def test_summarize_command_with_a_window(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    channel_history(fake_slack)
    fake_openai.push(Reply(text="**Gist**: five updates."))
    response = await slack.command("2h")
    assert response.status == 200 and "Summarizing the last 2 hours" in response.body
    assert len(fake_slack.responses) == 1
    answer = fake_slack.responses[0]
    assert answer["response_type"] == "ephemeral" and answer["text"] == "*Gist*: five updates."
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "Alice: update number 0" in prompt and "Bob: update number 1" in prompt
    assert "an old message" not in prompt  # outside the window
    assert fake_slack.called("conversations.history")[0]["channel"] == "C1"


async def test_summarize_command_public_with_a_count(
    slack: SlackHarness, fake_openai, fake_slack
) -> None:
    channel_history(fake_slack)
    fake_openai.push(Reply(text="Two updates."))
    await slack.command("public 2")
    answer = fake_slack.responses[0]
    assert answer["response_type"] == "in_channel"
    assert answer["text"].startswith("*Summary of the last 2 messages* (asked by Alice)")
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "update number 4" in prompt and "update number 2" not in prompt


@pytest.mark.parametrize("text", ["yesterday", "2h 3d", "0", "99d"])
async def test_summarize_command_bad_arguments_get_usage(
    slack: SlackHarness, fake_openai, text: str
) -> None:
    response = await slack.command(text)
    assert response.status == 200 and "Usage: /summarize" in response.body
    assert fake_openai.requests == [] and slack.slack.responses == []


async def test_summarize_command_on_a_quiet_channel_calls_no_model(
    slack: SlackHarness, fake_openai
) -> None:
    await slack.command("1h")
    assert slack.slack.responses[0]["text"] == "Nobody wrote anything here in the last 1 hour."
    assert fake_openai.requests == []


async def test_summarize_command_where_the_bot_is_not_a_member(
    slack: SlackHarness, fake_openai, fake_slack
) -> None:
    fake_slack.fail("conversations.history", body={"ok": False, "error": "not_in_channel"})
    await slack.command("1h")
    assert "invite me" in fake_slack.responses[0]["text"]


async def test_summarize_thread_shortcut(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    root = "1700000000.005000"
    fake_slack.add_message("C1", root, "Should we move the launch?", "UBOB")
    reply = fake_slack.add_message("C1", "1700000000.005100", "Yes, to Monday.", "UCAROL", root)
    fake_openai.push(Reply(text="Launch moves to Monday."))
    response = await slack.shortcut(reply)
    assert response.status == 200
    assert fake_slack.responses[0]["text"] == "Launch moves to Monday."
    assert fake_slack.responses[0]["response_type"] == "ephemeral"
    prompt = fake_openai.requests[0]["messages"][1]["content"]
    assert "Bob: Should we move the launch?" in prompt and "Carol: Yes, to Monday." in prompt


async def test_mention_summarize_in_a_thread(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    root = "1700000000.006000"
    fake_slack.add_message("C1", root, "Budget is 10k.", "UBOB")
    fake_slack.add_message("C1", "1700000000.006100", "Approved by finance.", "UCAROL", root)
    fake_openai.push(Reply(text="Budget of 10k approved."))
    await slack.event(
        message_event(
            f"<@{BOT_USER}> summarize", "1700000000.006200", thread_ts=root, kind="app_mention"
        )
    )
    assert slack.thread_texts() == ["Budget of 10k approved."]
    assert fake_slack.called("chat.postMessage")[0]["thread_ts"] == root
    assert "Bob: Budget is 10k." in fake_openai.requests[0]["messages"][1]["content"]


async def test_a_display_name_cannot_ping_from_the_public_summary_header(
    slack: SlackHarness, fake_openai, fake_slack
) -> None:
    channel_history(fake_slack)
    fake_slack.add_user("UALICE", "<!channel> Alice & <@UBOB>")
    fake_openai.push(Reply(text="Two updates."))
    await slack.command("public 2")
    header = fake_slack.responses[0]["text"].split("\n")[0]
    assert "<!channel>" not in header and "<@UBOB>" not in header
    assert "(asked by &lt;!channel&gt; Alice &amp; &lt;@UBOB&gt;)" in header
