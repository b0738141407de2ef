"""Mentions, follow-ups, DMs and duplicates through the real slack_bolt app and slack_sdk client."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from adapters.slack.mrkdwn import to_mrkdwn
from tests.adapters.slack.conftest import SlackHarness, make_harness, message_event
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import BOT_USER, FakeSlack

MENTION_TS = "1700000000.000100"


def prompt_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


async def test_mention_is_answered_in_a_thread_under_it(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(Reply(text="Four, **clearly**."))
    response = await slack.event(
        message_event(f"<@{BOT_USER}> what is 2+2?", MENTION_TS, kind="app_mention")
    )
    assert response.status == 200
    posts = slack.slack.called("chat.postMessage")
    assert len(posts) == 1 and posts[0]["thread_ts"] == MENTION_TS
    assert posts[0]["text"] == "_Thinking…_"
    assert slack.thread_texts() == ["Four, *clearly*."]
    assert fake_openai.requests[0]["messages"][-1]["content"] == "Alice: what is 2+2?"


async def test_follow_up_in_the_thread_needs_no_mention(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(
        message_event(f"<@{BOT_USER}> my name is Mina", MENTION_TS, kind="app_mention")
    )
    await slack.event(
        message_event("and what is my name?", "1700000000.000200", thread_ts=MENTION_TS)
    )
    assert len(fake_openai.requests) == 2
    second = prompt_text(fake_openai.requests[1])
    assert "Alice: my name is Mina" in second and "echo: Alice: my name is Mina" in second
    assert all(p["thread_ts"] == MENTION_TS for p in slack.slack.called("chat.postMessage"))


async def test_messages_for_other_people_are_observed_not_answered(
    slack: SlackHarness, fake_openai
) -> None:
    await slack.event(
        message_event(f"<@{BOT_USER}> plan the release", MENTION_TS, kind="app_mention")
    )
    await slack.event(
        message_event(
            "<@UBOB> can you take the notes?",
            "1700000000.000300",
            user="UCAROL",
            thread_ts=MENTION_TS,
        )
    )
    assert len(fake_openai.requests) == 1 and len(slack.slack.called("chat.postMessage")) == 1
    await slack.event(
        message_event("who takes the notes?", "1700000000.000400", thread_ts=MENTION_TS)
    )
    assert "Carol: @Bob can you take the notes?" in prompt_text(fake_openai.requests[-1])


async def test_threads_and_channel_chatter_without_the_bot_are_left_alone(
    slack: SlackHarness, fake_openai
) -> None:
    await slack.event(message_event("lunch?", "1700000000.000500"))
    await slack.event(message_event("sure", "1700000000.000600", thread_ts="1700000000.000500"))
    assert slack.slack.called("chat.postMessage") == [] and fake_openai.requests == []


async def test_mention_mid_thread_reads_the_thread_once(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    root = "1700000000.001000"
    fake_slack.add_message("C1", root, "The build is red since Tuesday.", "UBOB")
    fake_slack.add_message(
        "C1",
        "1700000000.001100",
        "It fails in the <https://ci.example/1|integration job>.",
        "UCAROL",
        root,
    )
    fake_slack.add_message(
        "C1", "1700000000.001200", "beep", "UX", root, bot_id="BOTHER", subtype="bot_message"
    )
    mention = fake_slack.add_message(
        "C1", "1700000000.001300", f"<@{BOT_USER}> any idea why?", "UALICE", root
    )
    await slack.event(
        message_event(mention["text"], mention["ts"], thread_ts=root, kind="app_mention")
    )
    assert len(fake_slack.called("conversations.replies")) == 1
    first = prompt_text(fake_openai.requests[0])
    assert "Bob: The build is red since Tuesday." in first
    assert "Carol: It fails in the integration job (https://ci.example/1)." in first
    assert "beep" not in first  # other bots are not part of the conversation
    await slack.event(message_event("and how to fix it?", "1700000000.001400", thread_ts=root))
    assert (
        len(fake_slack.called("conversations.replies")) == 1
    )  # memory, not Slack, the second time
    assert "Bob: The build is red since Tuesday." in prompt_text(fake_openai.requests[1])


async def test_direct_messages_are_one_running_conversation(
    slack: SlackHarness, fake_openai
) -> None:
    await slack.event(
        message_event("hello, I am Mina", "1700000000.002000", channel="D1", channel_type="im")
    )
    await slack.event(
        message_event("who am I?", "1700000000.002100", channel="D1", channel_type="im")
    )
    posts = slack.slack.called("chat.postMessage")
    assert len(posts) == 2 and all(p.get("thread_ts") is None for p in posts)
    assert "Alice: hello, I am Mina" in prompt_text(fake_openai.requests[1])


async def test_the_same_event_delivered_three_times_is_answered_once(
    slack: SlackHarness, fake_openai
) -> None:
    event = message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention")
    for retry in range(3):
        extra = (
            {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
            if retry
            else {}
        )
        response = await slack.event(event, event_id="EvSAME", **extra)
        assert response.status == 200
    assert len(slack.slack.called("chat.postMessage")) == 1 and len(fake_openai.requests) == 1


async def test_app_mention_and_message_for_one_ts_are_answered_once(
    slack: SlackHarness, fake_openai
) -> None:
    text = f"<@{BOT_USER}> hi there"
    await asyncio.gather(
        slack.event(
            message_event(text, MENTION_TS, kind="app_mention"), event_id="EvA", settle=False
        ),
        slack.event(message_event(text, MENTION_TS), event_id="EvB", settle=False),
    )
    await slack.bot.tasks.idle()
    assert len(slack.slack.called("chat.postMessage")) == 1 and len(fake_openai.requests) == 1


async def test_two_app_instances_sharing_redis_answer_once(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> None:
    other = await make_harness(fake_openai, fake_slack, clean_prefix)
    event = message_event(f"<@{BOT_USER}> one answer please", MENTION_TS, kind="app_mention")
    await asyncio.gather(slack.event(event, event_id="EvX"), other.event(event, event_id="EvX"))
    assert len(fake_slack.called("chat.postMessage")) == 1 and len(fake_openai.requests) == 1
    await other.close()


async def test_bots_edits_and_hidden_subtypes_are_ignored(slack: SlackHarness, fake_openai) -> None:
    mention = f"<@{BOT_USER}> hi"
    ignored = [
        message_event(mention, "1.1", subtype="bot_message", bot_id="BOTHER"),
        message_event(mention, "1.2", bot_id="BOTHER", kind="app_mention"),
        message_event(mention, "1.3", user=BOT_USER),
        message_event(mention, "1.4", subtype="channel_join"),
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "C1",
            "ts": "1.5",
            "hidden": True,
            "message": {
                "type": "message",
                "user": "UALICE",
                "text": mention + " edited",
                "ts": "1.0",
            },
        },
        {
            "type": "message",
            "subtype": "message_replied",
            "channel": "C1",
            "ts": "1.6",
            "hidden": True,
        },
        {"type": "message", "channel": "C1"},  # malformed: no ts, no user
    ]
    for event in ignored:
        assert (await slack.event(event)).status == 200
    assert slack.slack.called("chat.postMessage") == [] and fake_openai.requests == []


async def test_deleted_message_leaves_the_thread_memory(slack: SlackHarness, fake_openai) -> None:
    fake_openai.push(Reply(text="Noted."))
    await slack.event(message_event(f"<@{BOT_USER}> remember 1234", MENTION_TS, kind="app_mention"))
    await slack.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": "C1",
            "hidden": True,
            "ts": "1700000000.000900",
            "deleted_ts": MENTION_TS,
            "previous_message": {"type": "message", "user": "UALICE", "ts": MENTION_TS},
        }
    )
    await slack.event(
        message_event("what did I ask you to remember?", "1700000000.001000", thread_ts=MENTION_TS)
    )
    assert "remember 1234" not in prompt_text(fake_openai.requests[-1])


async def test_outside_the_allowlist_the_bot_stays_silent(
    fake_openai, fake_slack, clean_prefix
) -> None:
    harness = await make_harness(
        fake_openai, fake_slack, clean_prefix, SLACK_ALLOWED_CHANNELS="C2,C3"
    )
    await harness.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    await harness.event(
        message_event(f"<@{BOT_USER}> hi", MENTION_TS, channel="C2", kind="app_mention")
    )
    assert [p["channel"] for p in fake_slack.called("chat.postMessage")] == ["C2"]
    await harness.close()


async def test_forget_in_a_thread(slack: SlackHarness, fake_openai, clean_prefix: str) -> None:
    await slack.event(
        message_event(f"<@{BOT_USER}> my name is Mina", MENTION_TS, kind="app_mention")
    )
    await slack.event(
        message_event(
            f"<@{BOT_USER}> forget", "1700000000.000200", thread_ts=MENTION_TS, kind="app_mention"
        )
    )
    assert slack.thread_texts()[-1].startswith("I have forgotten this conversation.")
    client = aioredis.Redis.from_url(REDIS_URL)
    assert [k async for k in client.scan_iter(match=f"{clean_prefix}:{{slack*")] == []
    await client.aclose()
    assert len(fake_openai.requests) == 1


async def test_long_answer_is_split_with_code_blocks_intact(
    slack: SlackHarness, fake_openai
) -> None:
    code = "\n".join(f"print('line {n}')  # {'x' * 40}" for n in range(150))
    fake_openai.push(Reply(text=f"Here you go:\n\n```python\n{code}\n```\n\nDone."))
    await slack.event(
        message_event(f"<@{BOT_USER}> long code please", MENTION_TS, kind="app_mention")
    )
    texts = slack.thread_texts()
    assert len(texts) >= 3
    assert all(len(t) <= 3900 for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)
    joined = "\n".join(texts)
    assert all(f"print('line {n}')" in joined for n in range(150))


async def test_markdown_is_converted_and_pings_are_neutralised(
    slack: SlackHarness, fake_openai
) -> None:
    reply = (
        "# Plan\n**Ship** it, see [the doc](https://d.example/x). <!channel> @here <@U999> ping!"
    )
    fake_openai.push(Reply(text=reply))
    await slack.event(message_event(f"<@{BOT_USER}> plan?", MENTION_TS, kind="app_mention"))
    final = slack.thread_texts()[0]
    assert final == to_mrkdwn(reply)
    assert final.startswith("*Plan*\n*Ship* it, see <https://d.example/x|the doc>.")
    assert "<!channel>" not in final and "<@U999>" not in final and "@here" not in final
    for call in slack.slack.called("chat.postMessage") + slack.slack.called("chat.update"):
        assert call.get("link_names") in (False, "0", "false", None) and call.get("parse") == "none"


async def test_slack_rate_limit_on_update_is_retried(
    slack: SlackHarness, fake_openai, fake_slack: FakeSlack
) -> None:
    fake_slack.fail(
        "chat.update",
        status=429,
        body={"ok": False, "error": "ratelimited"},
        headers={"Retry-After": "0"},
    )
    fake_openai.push(Reply(text="still delivered"))
    await slack.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    assert slack.thread_texts() == ["still delivered"]
    assert len(fake_slack.called("chat.update")) >= 2


async def test_a_follow_up_from_another_organization_in_a_shared_channel_is_answered(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    import json

    from tests.adapters.slack.conftest import envelope, signed_headers

    await slack.event(message_event(f"<@{BOT_USER}> who owns billing?", MENTION_TS,
                                    kind="app_mention"))  # fmt: skip
    # Slack Connect, as Slack sends it: the envelope's team_id and the event's team are the
    # author's organization; the installation the event reaches is in `authorizations`.
    event = message_event("and since when?", "1700000000.000200", user="UPARTNER",
                          thread_ts=MENTION_TS) | {"team": "T0PARTNER", "user_team": "T0PARTNER",
                                                   "source_team": "T0PARTNER"}  # fmt: skip
    body = envelope(event, "EvConnect") | {
        "team_id": "T0PARTNER", "context_team_id": "T1", "context_enterprise_id": None,
        "authorizations": [{"enterprise_id": None, "team_id": "T1", "user_id": BOT_USER,
                            "is_bot": True, "is_enterprise_install": False}],
    }  # fmt: skip
    raw = json.dumps(body)
    response = await slack.dispatch(raw, signed_headers(raw))
    await slack.bot.tasks.idle()
    assert response.status == 200
    assert len(fake_openai.requests) == 2  # the thread is the same one, whoever writes in it
    assert "who owns billing?" in prompt_text(fake_openai.requests[1])


async def test_the_model_is_asked_while_the_placeholder_is_still_being_posted(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    """The model's request went out only once Slack had answered the placeholder's post: in a
    burst of fifty, the last one 80 ms later than it could have."""
    asked = asyncio.Event()

    def answer(body: dict) -> str:
        asked.set()
        return "Four."

    fake_openai.responder = answer
    posting = slack.slack.held["chat.postMessage"] = asyncio.Event()
    mention = message_event(f"<@{BOT_USER}> what is 2+2?", MENTION_TS, kind="app_mention")
    await slack.event(mention, settle=False)
    await asyncio.wait_for(asked.wait(), 5)
    assert slack.thread_texts() == []  # the placeholder's post is still unanswered
    posting.set()
    await slack.bot.tasks.idle()
    assert slack.thread_texts() == ["Four."]
