"""Answers streamed the way Slack's AI apps do: chat.startStream / appendStream / stopStream.

Slack renders the model's Markdown itself (no mrkdwn conversion, no edit flicker). Text is sent
in batches (the first at once, then at most every `interval`), never per token, and anything that
could ping (`<!channel>`, `<@U…>`, `@here`) is made inert before it leaves. When Slack refuses the
stream at the start (not allowed here, a channel type without streaming, rate limited), the answer
falls back to the placeholder-and-edit reply; when an append fails half-way, the message already
shown is finished by edits, so nothing is lost or repeated.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream

from adapters.slack.budget import SlackBudget
from adapters.slack.mrkdwn import ZERO_WIDTH, neutralise_pings
from adapters.streaming import Guard, Moved, StreamingReply

log = logging.getLogger(__name__)

# chat.startStream refusals after which this answer is streamed by edits instead
REFUSALS = frozenset(
    {
        "not_allowed",
        "method_not_supported_for_channel_type",
        "ratelimited",
        "feature_not_enabled",
        "invalid_arguments",
    }
)
STREAM_LIMIT = 12_000  # markdown_text a streamed message may hold; the rest goes in a new one
FULL_ENOUGH = STREAM_LIMIT * 4 // 5  # past this, a message ends at the next paragraph's end
_PING = re.compile(r"<(?=[!@#])")
_HELD = re.compile(r"[<@][^\s]{0,40}$")  # a tail that may still become a ping with the next text


def safe_markdown(text: str) -> str:
    """Markdown for Slack with every ping inert: `<!channel>`, `<@U1>`, `<#C1>`, `@here`."""
    return neutralise_pings(_PING.sub("<" + ZERO_WIDTH, text))


class NativeReply:
    """One answer streamed natively; the same interface as StreamingReply."""

    def __init__(
        self,
        client: Any,  # AsyncWebClient
        *,
        channel: str,
        thread_ts: str,
        recipient_user_id: str | None,
        recipient_team_id: str | None,
        fallback: Callable[[], StreamingReply],
        interval: float = 0.3,
        final_blocks: Callable[[], Sequence[Any]] | None = None,
        budget: SlackBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard: Guard | None = None  # awaited before every call that changes the message
        self.moved: Moved | None = None  # told the messages shown (the stream's, the fallback's)
        self._client = client
        self._where = {"channel": channel, "thread_ts": thread_ts,
                       "recipient_user_id": recipient_user_id,
                       "recipient_team_id": recipient_team_id}  # fmt: skip
        self._fallback_factory = fallback
        self._fallback: StreamingReply | None = None
        self._interval = interval
        self._final_blocks = final_blocks
        self._budget = budget  # the workspace's shared rate budget
        self._clock = clock
        self._stream: AsyncChatStream | None = None
        self._text = ""  # everything the model said
        self._sent = 0  # how much of _text has gone to Slack
        self._began = 0  # where in _text the current stream's message begins
        self._stop_paid = False  # the current stream's stop was paid for when it started
        self._last_sent = float("-inf")
        self.first_visible_at: float | None = None

    @property
    def message_ids(self) -> list[str]:
        if self._fallback is not None:
            return self._fallback.message_ids
        return [self._stream.ts] if self._stream is not None and self._stream.ts else []

    @property
    def posts_at_start(self) -> bool:
        return False

    async def start(self, *, recorded: bool = False, background: bool = False) -> None:
        """Nothing to show yet: the message appears with the first text (the pane shows a status
        meanwhile)."""

    async def feed(self, delta: str) -> None:
        self._text += delta
        if self._fallback is not None:
            await self._fallback.feed(delta)
        elif self._text.strip() and (
            self._stream is None or self._clock() - self._last_sent >= self._interval
        ):
            await self._send(final=False)

    async def finish(self, note: str = "") -> None:
        if note:
            self._text = self._text.rstrip() + f"\n\n_{note}_"
        if self._fallback is not None:
            await self._fallback.finish()
            return
        if not self._text.strip():
            await self.fail("The model returned an empty answer; please try rephrasing.")
            return
        if self._stream is None:
            await self._send(final=True)  # the whole answer starts the stream (or falls back)
        if self._fallback is not None:
            await self._fallback.finish()
            return
        assert self._stream is not None
        while len(self._text) - self._began > STREAM_LIMIT:  # too long for one message
            pending, room = self._text[self._sent :], STREAM_LIMIT - (self._sent - self._began)
            try:
                await self._continue_in_new_message(self._message_end(pending, room))
            except SlackApiError as exc:
                log.warning("chat.stopStream failed (%s); finishing by edits", _code(exc))
                await self._switch(started=True)
            else:
                await self._send(final=True)  # the next message's stream starts
            if self._fallback is not None:
                await self._fallback.finish()
                return
            assert self._stream is not None
        # The rest of the text goes with the stop: one call fewer, and no wait for append room.
        rest = self._text[self._sent :]
        blocks = list(self._final_blocks()) if self._final_blocks else None
        try:
            await self._stop(rest, blocks)
            self._sent = len(self._text)
        except SlackApiError as exc:
            log.warning("chat.stopStream failed (%s); finishing by edit", _code(exc))
            await self._switch(started=True)
            assert self._fallback is not None
            await self._fallback.finish()

    async def fail(self, sentence: str) -> None:
        if self._fallback is None and self._stream is not None and self._stream.ts:
            await self._guarded()
            try:
                await self._stream.stop()
            except SlackApiError as exc:
                log.info("could not stop the stream before failing: %s", _code(exc))
            await self._switch(started=True, text="")
        if self._fallback is None:
            self._fallback = self._fallen_back()
        await self._fallback.fail(sentence)

    async def _stop(self, rest: str, blocks: list[Any] | None = None) -> None:
        assert self._stream is not None
        if self._budget is not None and not self._stop_paid:
            await self._budget.wait("chat.stopStream")
        self._stop_paid = False
        await self._guarded()
        await self._stream.stop(markdown_text=safe_markdown(rest) if rest else None, blocks=blocks)

    async def _continue_in_new_message(self, head: str) -> None:
        """The stream's message is full: stop it with `head`, and let the next send start a
        new stream (or a reply by edits) with the rest."""
        await self._stop(head)
        self._sent += len(head)
        self._stream = None
        self._began = self._sent

    def _message_end(self, pending: str, room: int) -> str:
        """What of `pending` ends the stream's current message (`room` left in it)."""
        return _head(pending, room, fill=self._sent == self._began)

    def _ending(self, pending: str, room: int) -> str | None:
        """What of `pending` ends the stream's message now, if this send should end it: it
        would overflow, or it would pass four fifths full and a paragraph ends within it (a
        paragraph longer than the room left would otherwise be cut mid-line)."""
        if len(pending) > room:
            return self._message_end(pending, room)
        if self._sent - self._began + len(pending) > FULL_ENOUGH:
            cut = pending.rfind("\n\n", 0, len(pending) - 2)
            if cut >= 0:
                return pending[: cut + 2]
        return None

    async def _guarded(self) -> None:
        if self.guard is not None:
            await self.guard()

    # --- internals ------------------------------------------------------------------------------

    async def _send(self, *, final: bool) -> None:
        pending = self._text[self._sent :]
        if not final:
            held = _HELD.search(pending)  # keep back what a later delta could turn into a ping
            if held is not None:
                pending = pending[: held.start()]
        room = STREAM_LIMIT - (self._sent - self._began)
        if self._stream is not None and (ending := self._ending(pending, room)) is not None:
            try:
                await self._continue_in_new_message(ending)
            except SlackApiError as exc:
                log.warning("chat.stopStream failed (%s); finishing by edits", _code(exc))
                await self._switch(started=True)
            return
        pending = _head(pending, STREAM_LIMIT)  # a new message, more than it holds waiting
        if not pending:
            return
        try:
            if self._stream is None:
                if self._budget is not None:
                    if not await self._budget.may_start_stream():
                        await self._switch(started=False, reason="chat.startStream budget spent")
                        return
                    self._stop_paid = True
                if self.moved is not None:  # the record says a stream is coming (and fences)
                    await self.moved([], True, True)
                else:
                    await self._guarded()
                self._stream = await self._client.chat_stream(buffer_size=1, **self._where)
                await self._stream.append(markdown_text=safe_markdown(pending))
                if self.moved is not None and self._stream.ts:
                    await self.moved([self._stream.ts], True, False)
            else:
                if self._budget is not None and not await self._budget.may("chat.appendStream"):
                    return  # keep buffering: the next append (or the stop) carries more
                await self._guarded()
                await self._stream.append(markdown_text=safe_markdown(pending))
        except SlackApiError as exc:
            code = _code(exc)
            if self._stream is None or not self._stream.ts:
                if code not in REFUSALS and exc.response.status_code != 429:
                    raise
                await self._switch(started=False, reason=f"chat.startStream: {code}")
            else:
                log.warning("chat.appendStream failed (%s); finishing the answer by edits", code)
                await self._switch(started=True)
            return
        self._sent += len(pending)
        self._last_sent = self._clock()
        if self.first_visible_at is None:
            self.first_visible_at = self._last_sent

    async def _switch(self, *, started: bool, reason: str = "", text: str | None = None) -> None:
        """Continue this answer as placeholder-and-edits: in a new message when no stream was
        shown, else by editing the streamed message (after stopping it)."""
        log.info("streaming by edits: %s", reason or "the stream broke")
        fallback = self._fallen_back()
        if started and self._stream is not None and self._stream.ts:
            fallback = StreamingReply.resume(fallback.sink, [self._stream.ts], fallback.limit,
                                             render=fallback.render)  # fmt: skip
            fallback.guard, fallback.moved = self.guard, self.moved
            if self.moved is not None:  # no longer a stream to stop: settled by an edit
                await self.moved(fallback.message_ids, False, False)
        else:
            await fallback.start()  # its placeholder goes into the answer's record
        self._fallback = fallback
        shown = self._text[self._began :] if text is None else text
        if shown:
            await fallback.feed(shown)
        if self.first_visible_at is None:
            self.first_visible_at = fallback.first_visible_at

    def _fallen_back(self) -> StreamingReply:
        fallback = self._fallback_factory()
        fallback.guard, fallback.moved = self.guard, self.moved
        return fallback


def _head(text: str, room: int, *, fill: bool = True) -> str:
    """The longest start of `text` within `room` characters that ends at a paragraph (or else a
    line or word) boundary, so a message ends where a reader would expect. `fill`: a message
    that holds nothing yet, so it takes at least half its room, cut mid-word if it must; else
    the message holds text already and takes only whole paragraphs (maybe none)."""
    if len(text) <= room:
        return text
    if not fill:
        cut = text.rfind("\n\n", 0, room - 1)
        return text[: cut + 2] if cut >= 0 else ""
    for mark in ("\n\n", "\n", " "):
        cut = text.rfind(mark, 0, room - len(mark) + 1)
        if cut > room // 2:
            return text[: cut + len(mark)]
    return text[:room]


def _code(error: SlackApiError) -> str:
    return str(error.response.get("error", "")) if error.response is not None else ""
