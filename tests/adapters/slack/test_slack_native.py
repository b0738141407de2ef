"""Native streaming (chat.startStream / appendStream / stopStream) through slack_sdk against the
fake Slack, its fallbacks, and the feedback buttons on finished answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters.slack.conftest import SlackHarness, make_harness, message_event
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import BOT_USER, TEAM, TIERS, FakeSlack

MENTION_TS = "1700000000.000100"


@pytest.fixture
async def native(
    fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> AsyncIterator[SlackHarness]:
    harness = await make_harness(fake_openai, fake_slack, clean_prefix,
                                 SLACK_STREAMING="auto", SLACK_FEEDBACK="true")  # fmt: skip
    yield harness
    await harness.close()


def mention(text: str, ts: str = MENTION_TS) -> dict:
    return message_event(f"<@{BOT_USER}> {text}", ts, kind="app_mention")


async def test_an_answer_streams_natively_in_batches_with_markdown(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    words = " ".join(f"**w{n}**" for n in range(120))
    fake_openai.push(Reply(text=words, token_delay=0.005))
    await native.event(mention("stream please"))
    [start] = fake_slack.called("chat.startStream")
    assert start["thread_ts"] == MENTION_TS
    assert (start["recipient_user_id"], start["recipient_team_id"]) == ("UALICE", TEAM)
    appends = fake_slack.called("chat.appendStream")
    assert len(appends) < 40  # batched, never one call per token (120 tokens)
    [stop] = fake_slack.called("chat.stopStream")
    assert fake_slack.called("chat.postMessage") == [] and fake_slack.called("chat.update") == []
    [message] = fake_slack.bot_messages("C1")
    assert message["text"] == words  # the model's Markdown, as Slack renders it itself
    blocks = json.loads(stop["blocks"]) if isinstance(stop["blocks"], str) else stop["blocks"]
    assert blocks[0]["type"] == "context_actions"
    assert blocks[0]["elements"][0]["type"] == "feedback_buttons"


@pytest.mark.parametrize("ping", ["<!channel>", "<!here>", "<@U123ABC>", "@everyone", "<#C9>"])
async def test_nothing_streamed_can_ping(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, ping: str
) -> None:
    # split across deltas too: "<" in one, "!channel>" in the next
    fake_openai.push(Reply(text=f"hey {ping[:1]} {ping[1:]} and {ping} done"))
    await native.event(mention("ping"))
    text = fake_slack.bot_messages("C1")[0]["text"]
    assert ping not in text and "<!" not in text and "<@" not in text and "<#" not in text
    assert "done" in text


@pytest.mark.parametrize("refusal", ["not_allowed", "method_not_supported_for_channel_type"])
async def test_a_refused_stream_falls_back_to_edits_for_that_answer(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, refusal: str
) -> None:
    fake_slack.fail("chat.startStream", body={"ok": False, "error": refusal})
    fake_openai.push(Reply(text="Four, **clearly**."))
    await native.event(mention("what is 2+2?"))
    assert [m["text"] for m in fake_slack.bot_messages("C1")] == ["Four, *clearly*."]
    fake_openai.push(Reply(text="Next one streams."))
    await native.event(mention("again", "1700000000.000200"))
    assert len(fake_slack.called("chat.startStream")) == 2  # per answer, not for good


async def test_a_rate_limited_start_falls_back_to_edits(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.refusing["chat.startStream"] = (429, {"ok": False, "error": "ratelimited"},
                                               {"Retry-After": "30"})  # fmt: skip
    fake_openai.push(Reply(text="Still answered."))
    await native.event(mention("busy workspace"))
    assert [m["text"] for m in fake_slack.bot_messages("C1")] == ["Still answered."]


async def test_a_stream_that_breaks_midway_is_finished_by_edits_without_loss(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    # 1.2 s of text: the first append, then at least two more 0.3 s apart, the second refused
    text = " ".join(f"part{n}" for n in range(120))
    fake_openai.push(Reply(text=text, token_delay=0.01))
    failures = 0
    original = fake_slack._chat_appendStream

    def flaky(params: dict) -> dict:
        nonlocal failures
        if fake_slack.streams[params["ts"]]["appends"] >= 1:
            failures += 1
            return {"ok": False, "error": "message_not_in_streaming_state"}
        return original(params)

    fake_slack._chat_appendStream = flaky  # type: ignore[method-assign]
    await native.event(mention("long one"))
    assert failures >= 1
    [message] = fake_slack.bot_messages("C1")  # the same message, finished by edits
    assert message["text"] == text  # nothing lost, nothing twice


async def test_a_failure_before_any_text_is_one_sentence(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_openai.push(Reply(status=500))
    await native.event(mention("hello?"))
    texts = [m["text"] for m in fake_slack.bot_messages("C1")]
    assert texts == ["The language model is unavailable right now; please try again in a minute."]


async def test_feedback_is_recorded_once_per_person_per_answer(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, caplog
) -> None:
    caplog.set_level("INFO")
    fake_openai.push(Reply(text="An answer."))
    await native.event(mention("rate me"))
    answer = fake_slack.bot_messages("C1")[0]

    def click(user: str, value: str) -> dict:
        action = {"type": "feedback_buttons", "action_id": "answer_feedback", "block_id": "b",
                  "value": value, "action_ts": "1.2"}  # fmt: skip
        return {
            "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user},
            "channel": {"id": "C1"}, "container": {"type": "message", "message_ts": answer["ts"]},
            "message": {"ts": answer["ts"], "thread_ts": MENTION_TS}, "actions": [action],
            "response_url": fake_slack.response_url, "trigger_id": "t", "api_app_id": "A1",
            "token": "legacy",
        }  # fmt: skip

    for user, value in (("UALICE", "bad"), ("UALICE", "good"), ("UBOB", "good")):
        response = await native.form({"payload": json.dumps(click(user, value))})
        assert response.status == 200
    assert [r["text"] for r in fake_slack.responses] == [
        "Thanks for the feedback.",
        "You already rated this answer.",
        "Thanks for the feedback.",
    ]
    assert all(r["response_type"] == "ephemeral" for r in fake_slack.responses)
    assert await native.core.feedback.counts(f"slack:{TEAM}") == {"bad": 1, "good": 1}
    assert f"slack:{TEAM}:C1:{MENTION_TS}" in caplog.text  # the 👎 is logged for review


async def test_fifty_mentions_at_once_stay_within_slacks_tiers(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    import asyncio
    import time

    fake_slack.tiers = dict(TIERS)
    fake_openai.responder = lambda request: Reply(
        text="answer " + str(request["messages"][-1]["content"]).split()[-1], token_delay=0.01
    )
    started = time.monotonic()
    await asyncio.gather(*(
        native.event(mention(f"q{n}", f"1700000002.{n:06d}") | {"channel": f"C{n}"}, settle=False)
        for n in range(50)
    ))  # fmt: skip
    await native.bot.tasks.idle()
    makespan = time.monotonic() - started
    assert sum(fake_slack.rate_limited.values()) == 0  # the bot paced itself: no 429
    for n in range(50):
        [message] = fake_slack.bot_messages(f"C{n}")  # one message per answer, whole
        assert message["text"] == f"answer q{n}", (n, message["text"])
    assert len(fake_slack.called("chat.startStream")) <= 20
    assert makespan < 15


async def test_answers_finished_by_edits_carry_the_feedback_buttons_too(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("chat.startStream", body={"ok": False, "error": "not_allowed"})
    fake_openai.push(Reply(text="Edited in."))
    await native.event(mention("via edits"))
    final = fake_slack.called("chat.update")[-1]
    blocks = json.loads(final["blocks"]) if isinstance(final["blocks"], str) else final["blocks"]
    assert blocks[0]["text"]["text"] == "Edited in."
    assert blocks[-1]["type"] == "context_actions"


async def test_an_answer_longer_than_a_streamed_message_continues_in_a_new_one(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    # about 30,000 characters in 750 words (the fake model sends at most 1,024 pieces)
    paragraphs = [" ".join(f"w{p}x{n}" + "-" * 34 for n in range(25)) for p in range(30)]
    words = "\n\n".join(paragraphs)
    fake_openai.push(Reply(text=words, token_delay=0.0005))
    await native.event(mention("write a lot"))
    messages = [m["text"] for m in fake_slack.bot_messages("C1")]
    assert len(messages) >= 3 and all(len(m) <= 12_000 for m in messages)
    assert "".join(messages) == words  # nothing lost or repeated at the seams
    assert all(m.endswith("\n\n") for m in messages[:-1])  # cut between paragraphs
    assert len(fake_slack.called("chat.stopStream")) == len(messages)
    assert not any(s["open"] for s in fake_slack.streams.values())


async def test_a_stream_starts_only_when_its_stop_is_paid_for(
    native: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack
) -> None:
    budget = native.bot.web.budget
    for _ in range(TIERS["chat.stopStream"][0]):  # every stop of the minute is spent
        assert await budget.may("chat.stopStream")
    fake_openai.push(Reply(text="Shown by edits."))
    await native.event(mention("hello"))
    assert fake_slack.called("chat.startStream") == []  # no stream that could not be stopped
    assert [m["text"] for m in fake_slack.bot_messages("C1")] == ["Shown by edits."]


class Recorded:
    """Slack's side of native streams, in memory: each stream's message text."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def chat_stream(self, **_: object) -> Recorded.Stream:
        self.messages.append("")
        return Recorded.Stream(self, len(self.messages) - 1)

    class Stream:
        def __init__(self, owner: Recorded, index: int) -> None:
            self.owner, self.index, self.ts = owner, index, f"1.{index}"

        async def append(self, markdown_text: str = "", **_: object) -> None:
            self.owner.messages[self.index] += markdown_text

        async def stop(self, markdown_text: str | None = None, **_: object) -> None:
            self.owner.messages[self.index] += markdown_text or ""


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(200, 2_000), min_size=1, max_size=40),  # paragraph lengths
    st.lists(st.integers(1, 3_000), min_size=1, max_size=20),  # how the text arrives
    st.floats(0.0, 0.5),  # seconds between deltas
)
async def test_a_long_answer_is_split_between_paragraphs_and_nothing_is_lost(
    lengths: list[int], cuts: list[int], pause: float
) -> None:
    from adapters.slack.native import STREAM_LIMIT, NativeReply
    from adapters.streaming import StreamingReply

    text = "\n\n".join(("word " * (n // 5)).strip() for n in lengths)
    now = [0.0]
    slack = Recorded()
    reply = NativeReply(
        slack, channel="C1", thread_ts="1.0", recipient_user_id="U1", recipient_team_id="T1",
        fallback=lambda: StreamingReply(None, limit=4000, interval=1.0),  # type: ignore[arg-type]
        clock=lambda: now[0],
    )  # fmt: skip
    at = 0
    for cut in cuts * (len(text) // max(1, sum(cuts)) + 1):
        if at >= len(text):
            break
        await reply.feed(text[at : at + cut])
        at += cut
        now[0] += pause
    await reply.finish()
    assert "".join(slack.messages) == text  # nothing lost or said twice at the seams
    assert all(0 < len(m) <= STREAM_LIMIT for m in slack.messages)
    assert all(m.endswith("\n\n") for m in slack.messages[:-1])  # paragraphs < a fifth of one
