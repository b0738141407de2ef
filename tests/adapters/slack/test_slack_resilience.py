"""Slack when things go wrong around the bot: quick follow-ups, refused edits, Redis down."""

from __future__ import annotations

import asyncio

import pytest

from adapters.slack.listeners import build_app
from adapters.slack.mentions import SlackBot
from adapters.slack.settings import load_slack_settings
from adapters.slack.web import SlackWeb, make_client
from bot.store.redis_pool import connect_redis
from tests.adapters.slack.conftest import SECRET, SlackHarness, message_event
from tests.adapters.slack.test_slack_conversations import MENTION_TS, prompt_text
from tests.conftest import REDIS_URL, redis_core
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.processes import free_port
from tests.fakes.slack_server import BOT_USER, FakeSlack


async def test_follow_up_during_the_first_answer_is_answered_after_it(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(Reply(text="The deploy is on Friday.", token_delay=0.3))
    await slack.event(
        message_event(f"<@{BOT_USER}> when is the deploy?", MENTION_TS, kind="app_mention"),
        settle=False,
    )
    # the first answer is visible and still being written
    await slack.slack.wait_for(lambda: any(t.startswith("The") for t in slack.thread_texts()))
    await slack.event(message_event("and also, who runs it?", "1700000000.000200",
                                    thread_ts=MENTION_TS))  # fmt: skip
    assert len(fake_openai.requests) == 2, "the quick follow-up was dropped"
    second = prompt_text(fake_openai.requests[1])
    assert "when is the deploy?" in second and "The deploy is on Friday." in second
    texts = slack.thread_texts()
    assert texts == ["The deploy is on Friday.", "echo: Alice: and also, who runs it?"]


async def test_thread_messages_the_bot_skips_say_why_in_the_log(
    slack: SlackHarness, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await slack.event(message_event("just chatting", "1700000000.000300", thread_ts="1699.1"))
    assert fake_openai.requests == []
    assert "not part of: not answered" in caplog.text


async def test_answer_arrives_whole_when_slack_refuses_every_edit(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    slack.slack.refusing["chat.update"] = (
        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"},
    )  # fmt: skip
    fake_openai.push(Reply(text="A complete answer that could not be edited in."))
    await slack.event(message_event(f"<@{BOT_USER}> hi", MENTION_TS, kind="app_mention"))
    # no "Thinking…" left behind: the answer was posted anew and the placeholder deleted
    assert slack.thread_texts() == ["A complete answer that could not be edited in."]
    assert len(slack.slack.called("chat.update")) <= 2  # no retry storm against the limit
    assert len(slack.slack.called("chat.delete")) == 1


@pytest.fixture
async def slack_without_redis(fake_openai: FakeOpenAI, fake_slack: FakeSlack):
    down = connect_redis(f"redis://127.0.0.1:{free_port()}/0", pool_timeout=1)
    core = redis_core(fake_openai, down, "down")
    settings = load_slack_settings(
        _env_file=None,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.url,
    )
    web = SlackWeb(make_client("xoxb-test", fake_slack.url))
    bot = SlackBot(core.engine, core.claims, web, await web.identity(), settings, core.channel_log)
    harness = SlackHarness(bot, build_app(bot, web.client, SECRET), fake_slack, core)
    yield harness
    await harness.close()


async def test_while_redis_is_down_slack_is_asked_to_deliver_again_then_told_once(
    slack_without_redis: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    harness = slack_without_redis
    event = message_event(f"<@{BOT_USER}> hello?", MENTION_TS, kind="app_mention")
    # Slack's first delivery and two retries: not answered, Slack will deliver again
    for attempt in ("0", "1", "2"):
        headers = {"x-slack-retry-num": attempt} if attempt != "0" else {}
        response = await harness.event(event, event_id="Ev1", **headers)
        assert response.status == 503
    assert harness.slack.called("chat.postMessage") == []
    # the last retry is handled here, once, and says why there is no answer
    for _ in range(2):
        response = await harness.event(event, event_id="Ev1", **{"x-slack-retry-num": "3"})
        assert response.status == 200
    assert harness.thread_texts() == [
        "My conversation store is unavailable right now, so I cannot answer; "
        "please try again in a minute."
    ]
    assert fake_openai.requests == []


async def test_two_hundred_mentions_delivered_twice_are_answered_once(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> None:
    from tests.adapters.slack.conftest import make_harness

    small = connect_redis(REDIS_URL, max_connections=20, pool_timeout=10)  # far below the burst
    harness = await make_harness(fake_openai, fake_slack, clean_prefix, client=small)
    events = [
        message_event(f"<@{BOT_USER}> q{n}", f"1700000001.{n:06d}", channel=f"C{n % 50}",
                      kind="app_mention")
        for n in range(200)
    ]  # fmt: skip
    deliveries = [harness.event(e, event_id=f"E{n}", settle=False) for n, e in enumerate(events)]
    deliveries += [harness.event(e, event_id=f"M{n}", settle=False) for n, e in enumerate(events)]
    responses = await asyncio.gather(*deliveries)
    await harness.bot.tasks.idle()
    assert all(r.status == 200 for r in responses)
    assert len(fake_openai.requests) == 200
    answers = [m["text"] for c in range(50) for m in harness.slack.bot_messages(f"C{c}")]
    assert sorted(answers) == sorted(f"echo: Alice: q{n}" for n in range(200))
    await harness.close()


def deletion(ts: str, thread_ts: str | None = None) -> dict:
    previous = {"type": "message", "user": "UALICE", "text": "gone", "ts": ts}
    if thread_ts:
        previous["thread_ts"] = thread_ts
    return {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": "C1",
            "channel_type": "channel", "ts": "1800000099.000001", "deleted_ts": ts,
            "event_ts": "1800000099.000001", "previous_message": previous}  # fmt: skip


async def test_a_deletion_delivered_before_its_message_wins(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(deletion("1700000000.000900"))
    await slack.event(
        message_event(f"<@{BOT_USER}> secret", "1700000000.000900", kind="app_mention")
    )
    assert fake_openai.requests == [] and slack.thread_texts() == []


async def test_a_message_deleted_while_answered_never_reaches_a_later_prompt(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    await slack.event(message_event(f"<@{BOT_USER}> start", MENTION_TS, kind="app_mention"))
    fake_openai.push(Reply(text="Noted, I will keep it safe.", token_delay=0.2))
    secret = message_event("my password is hunter2", "1700000000.000500", thread_ts=MENTION_TS)
    await slack.event(secret, settle=False)
    await slack.slack.wait_for(lambda: any(t.startswith("Noted") for t in slack.thread_texts()))
    await slack.event(deletion("1700000000.000500", MENTION_TS))  # while the answer streams
    await slack.event(message_event("what did I say?", "1700000000.000600", thread_ts=MENTION_TS))
    prompt = prompt_text(fake_openai.requests[-1])
    assert "hunter2" not in prompt and "keep it safe" not in prompt


async def test_a_name_wanted_many_times_at_once_is_asked_of_slack_once(
    fake_slack: FakeSlack,
) -> None:
    """Fifty messages from one person at once, each logged and answered, asked users.info a
    hundred times while its first call was under way."""
    web = SlackWeb(make_client("xoxb-test", fake_slack.url))
    try:
        names = await asyncio.gather(*(web.names_of({"UALICE", "UBOB"}) for _ in range(20)))
        assert all(n == names[0] for n in names) and set(names[0]) == {"UALICE", "UBOB"}
        asked = [p["user"] for m, p in fake_slack.calls if m == "users.info"]
        assert sorted(asked) == ["UALICE", "UBOB"]
        assert await web.name_of("UALICE") == names[0]["UALICE"]  # cached: no call
        assert len([m for m, _ in fake_slack.calls if m == "users.info"]) == 2
    finally:
        await web.close()
