from __future__ import annotations

from adapters.streaming import TYPING_MARK, EditRefused, StreamingReply


class RecordingSink:
    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def prepare(self) -> bool:
        return True

    async def post(self, text: str) -> str:
        message_id = f"m{len(self.messages)}"
        self.messages[message_id] = text
        self.calls.append(("post", message_id, text))
        return message_id

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        self.messages[message_id] = text
        self.calls.append(("edit", message_id, text))

    async def delete(self, message_id: str) -> None:
        del self.messages[message_id]
        self.calls.append(("delete", message_id, ""))


class RefusingSink(RecordingSink):
    """Every edit is rate limited, as a workspace past chat.update's tier sees it."""

    def __init__(self, retry_after: float | None = 30.0) -> None:
        super().__init__()
        self.retry_after = retry_after

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        self.calls.append(("refused", message_id, text))
        raise EditRefused("ratelimited", retry_after=self.retry_after)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_first_text_at_once_then_at_most_one_edit_per_interval() -> None:
    sink, clock = RecordingSink(), Clock()
    reply = StreamingReply(sink, limit=1000, interval=1.0, clock=clock)
    await reply.start()
    for n in range(50):  # 50 deltas over 5 seconds
        clock.now = n * 0.1
        await reply.feed(f"w{n} ")
    await reply.finish()
    edits = [c for c in sink.calls if c[0] == "edit"]
    assert sink.calls[0] == ("post", "m0", "Thinking…")
    assert edits[0][2] == "w0 " + TYPING_MARK  # the first text shows immediately
    assert 5 <= len(edits) <= 7  # about one per second, plus the final one
    assert sink.messages["m0"] == " ".join(f"w{n}" for n in range(50)) + " "


async def test_long_answer_continues_in_new_messages() -> None:
    sink, clock = RecordingSink(), Clock()
    reply = StreamingReply(sink, limit=200, interval=0.0, clock=clock)
    await reply.start()
    for n in range(100):
        await reply.feed(f"line {n}\n")
    await reply.finish()
    assert len(sink.messages) > 3
    assert all(len(t) <= 200 for t in sink.messages.values())
    text = "\n".join(sink.messages[f"m{i}"] for i in range(len(sink.messages)))
    assert all(f"line {n}" in text for n in range(100)) and TYPING_MARK not in text


async def test_failure_replaces_the_placeholder_with_a_sentence() -> None:
    sink = RecordingSink()
    reply = StreamingReply(sink, limit=200, interval=1.0, clock=Clock())
    await reply.start()
    await reply.feed("partial answer")
    await reply.fail("The model timed out.")
    assert sink.messages == {"m0": "The model timed out."}


async def test_empty_answer_is_explained() -> None:
    sink = RecordingSink()
    reply = StreamingReply(sink, limit=200, interval=1.0, clock=Clock())
    await reply.start()
    await reply.finish()
    assert "empty answer" in sink.messages["m0"]


async def test_replies_sharing_a_channel_stay_within_its_budget() -> None:
    from adapters.streaming import ChannelPace

    clock = Clock()
    pace = ChannelPace(burst=5, period=5.0, clock=clock)
    sinks = [RecordingSink() for _ in range(4)]
    replies = [
        StreamingReply(s, limit=1000, interval=0.5, clock=clock, gate=pace.gate("C1"))
        for s in sinks
    ]
    for reply in replies[:2]:
        await reply.start()
    for step in range(40):  # 4 s of streaming, a delta every 0.1 s for each reply
        clock.now = 1 + step * 0.1
        for reply in replies[:2]:
            await reply.feed(f"w{step} ")
    calls = sum(len(s.calls) for s in sinks)
    assert calls <= 5 + 4  # the burst plus one a second: progress edits were skipped, not queued
    clock.now = 10
    for reply in replies[:2]:
        await reply.finish()  # the final edit always goes out
    for sink in sinks[:2]:
        assert sink.messages["m0"].endswith("w39 ")


def test_pace_allows_at_most_burst_in_any_window() -> None:
    from adapters.streaming import ChannelPace

    clock = Clock()
    pace = ChannelPace(burst=2, period=2.0, clock=clock)
    assert pace.try_take("C") and pace.try_take("C") and not pace.try_take("C")
    assert pace.try_take("D")  # other channels have their own window
    clock.now = 1.9
    assert not pace.try_take("C")  # still two within the last 2 s
    clock.now = 2.01
    assert pace.try_take("C") and pace.try_take("C") and not pace.try_take("C")


async def test_refused_progress_edits_are_skipped_not_waited_for() -> None:
    sink, clock = RefusingSink(retry_after=30.0), Clock()
    reply = StreamingReply(sink, limit=1000, interval=0.0, clock=clock)
    await reply.start()
    for n in range(20):
        clock.now = n * 0.5
        await reply.feed(f"w{n} ")
    # one refusal pauses progress edits for the Retry-After: no edit per delta, no waiting
    assert [c[0] for c in sink.calls] == ["post", "refused"]


async def test_final_text_is_posted_anew_when_edits_keep_failing() -> None:
    sink = RefusingSink(retry_after=None)  # e.g. the placeholder can no longer be edited
    reply = StreamingReply(sink, limit=1000, interval=1.0, clock=Clock())
    await reply.start()
    await reply.feed("The whole answer.")
    await reply.finish()
    assert list(sink.messages.values()) == ["The whole answer."]  # placeholder deleted
    assert sink.calls[-1] == ("delete", "m0", "")


async def test_final_edit_waits_out_a_short_rate_limit_then_succeeds() -> None:
    class OnceLimited(RecordingSink):
        refusals = 1

        async def edit(
            self, message_id: str, text: str, *, final: bool = False, optional: bool = False
        ) -> None:
            if self.refusals:
                self.refusals -= 1
                raise EditRefused("ratelimited", retry_after=0.01)
            await super().edit(message_id, text)

    sink = OnceLimited()
    reply = StreamingReply(sink, limit=1000, interval=1.0, clock=Clock())
    await reply.start()
    await reply.feed("Answer.")
    await reply.finish()
    assert sink.messages == {"m0": "Answer."}  # edited in place, nothing reposted


async def test_a_cut_off_answer_keeps_its_text_and_says_so() -> None:
    sink = RecordingSink()
    reply = StreamingReply(sink, limit=1000, interval=1.0, clock=Clock())
    await reply.start()
    await reply.feed("The first half")
    await reply.finish(note="My answer was cut off.")
    assert sink.messages["m0"] == "The first half\n\n_My answer was cut off._"


async def test_a_progress_flush_that_cannot_be_shown_is_not_rendered() -> None:
    """Rendering and splitting the whole answer costs the most CPU of a flush: while the
    channel's window is full or the platform asked to wait, nothing is rendered, and the
    answer still ends the same."""
    from adapters.streaming import ChannelPace

    rendered: list[int] = []

    def render(text: str) -> str:
        rendered.append(len(text))
        return text

    clock = Clock()
    pace = ChannelPace(burst=2, period=60.0, clock=clock)
    sink = RecordingSink()
    reply = StreamingReply(sink, limit=1000, interval=0.0, clock=clock, render=render,
                           gate=pace.gate("C1"))  # fmt: skip
    await reply.start()  # the placeholder takes one of the two
    for n in range(50):
        clock.now = n * 0.1
        await reply.feed(f"w{n} ")
    assert len(rendered) == 1  # the first text took the other; 49 deltas found no room
    paused = StreamingReply(RefusingSink(retry_after=30.0), limit=1000, interval=0.0,
                            clock=clock, render=render)  # fmt: skip
    await paused.start()
    rendered.clear()
    for n in range(50):
        await paused.feed(f"w{n} ")
    assert len(rendered) == 1  # refused once, then paused for the Retry-After
    clock.now = 100
    await reply.finish()
    assert sink.messages["m0"] == " ".join(f"w{n}" for n in range(50)) + " "


class QuietSink(RecordingSink):
    """A workspace whose chat.update budget is spent: no placeholder, the answer posted whole."""

    async def prepare(self) -> bool:
        return False


def tied(reply: StreamingReply) -> list[str]:
    """What the reply asks of the answer's record before and after its writes."""
    asked: list[str] = []

    async def guard() -> None:
        asked.append("guard")

    async def moved(ids: list[str], native: bool, posting: bool) -> None:
        asked.append(f"moved {ids} posting={posting}")

    reply.guard, reply.moved = guard, moved
    return asked


async def test_a_quiet_answer_posts_where_its_record_expects_a_message_without_writing_it() -> None:
    sink = QuietSink()
    reply = StreamingReply(sink, limit=1000, interval=1.0)
    asked = tied(reply)
    await reply.start(recorded=True)  # the record says: a message is being posted here
    await reply.feed("The whole answer.")
    assert sink.calls == []  # quiet: nothing shown before the end
    await reply.finish()
    assert sink.calls == [("post", "m0", "The whole answer.")]
    assert asked == ["guard"]  # fenced, and no write of the record: it says so already


async def test_a_quiet_answer_in_several_messages_records_the_later_ones() -> None:
    sink = QuietSink()
    reply = StreamingReply(sink, limit=40, interval=1.0)
    asked = tied(reply)
    await reply.start(recorded=True)
    await reply.feed("word " * 15)
    await reply.finish()
    posts = [message_id for kind, message_id, _ in sink.calls if kind == "post"]
    assert len(posts) >= 2
    later = [
        step
        for n in range(1, len(posts))
        for step in (f"moved {posts[:n]} posting=True", f"moved {posts[: n + 1]} posting=False")
    ]
    assert asked == ["guard", *later]


async def test_a_quiet_reply_its_record_does_not_announce_writes_it_around_the_post() -> None:
    sink = QuietSink()
    reply = StreamingReply(sink, limit=1000, interval=1.0)
    asked = tied(reply)
    await reply.start()  # a native stream's fallback: the record knows of no message here
    await reply.feed("Fallback.")
    await reply.finish()
    assert asked == ["moved [] posting=True", "moved ['m0'] posting=False"]
