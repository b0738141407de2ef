"""Showing an answer as it is written: a placeholder, throttled edits, overflow into new messages.

Platform-neutral: a `MessageSink` posts and edits messages on one platform; `StreamingReply`
decides when to edit (the first text at once, then at most once per `interval` per message) and
how to split (by `render` and `split_message`), and guarantees the placeholder never stays: it
ends as the answer or as a one-sentence error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from adapters.rendering import split_message

log = logging.getLogger(__name__)

TYPING_MARK = " …"


async def end_in_failure(
    reply: StreamingReply,
    error: BaseException,
    sentence: str,
    *,
    expected: tuple[type[BaseException], ...],
) -> None:
    """Log the failure (with a traceback when it is not one we expect) and put its sentence
    where the answer would have been; a failure to say so is logged, never raised."""
    if isinstance(error, expected):
        log.warning("answer failed: %s", error)
    else:
        log.exception("answer failed", exc_info=error)
    try:
        await reply.fail(sentence)
    except Exception:
        log.exception("could not tell the user about the failure")


class MessageSink(Protocol):
    async def post(self, text: str) -> str:
        """Send a new message in the reply's place; return its id."""

    async def edit(self, message_id: str, text: str) -> None: ...


class ChannelPace:
    """At most `burst` messages or edits per channel in any `period` seconds (a sliding window).

    Every reply in a channel shares it, so twenty answers streaming in one channel together stay
    under the platform's per-channel limit: their optional progress edits are skipped when the
    window is full, and only the sends and final edits wait for room.
    """

    def __init__(
        self, burst: int = 5, period: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self._burst = burst
        self._period = period
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def _window(self, channel: str) -> deque[float]:
        sent = self._sent.setdefault(channel, deque())
        horizon = self._clock() - self._period
        while sent and sent[0] <= horizon:
            sent.popleft()
        if not sent and len(self._sent) > 10_000:
            self._sent = {k: v for k, v in self._sent.items() if v}
            self._sent[channel] = sent
        return sent

    def try_take(self, channel: str) -> bool:
        sent = self._window(channel)
        if len(sent) >= self._burst:
            return False
        sent.append(self._clock())
        return True

    async def take(self, channel: str) -> None:
        # Room comes back with time, not with an event: sleep until the oldest send leaves.
        while not self.try_take(channel):
            oldest = self._window(channel)[0]
            await asyncio.sleep(max(0.01, oldest + self._period - self._clock()))

    def gate(self, channel: str) -> ChannelGate:
        return ChannelGate(self, channel)


@dataclass(frozen=True, slots=True)
class ChannelGate:
    pace: ChannelPace
    channel: str

    def try_take(self) -> bool:
        return self.pace.try_take(self.channel)

    async def take(self) -> None:
        await self.pace.take(self.channel)


class StreamingReply:
    def __init__(
        self,
        sink: MessageSink,
        *,
        limit: int,
        interval: float,
        render: Callable[[str], str] = lambda text: text,
        placeholder: str = "Thinking…",
        clock: Callable[[], float] = time.monotonic,
        gate: ChannelGate | None = None,
    ) -> None:
        self._gate = gate
        self._sink = sink
        self._limit = limit
        self._interval = interval
        self._render = render
        self._placeholder = placeholder
        self._clock = clock
        self._text = ""
        self._ids: list[str] = []
        self._shown: list[str] = []
        self._last_flush = float("-inf")
        self._first_text_shown = False
        self.edits = 0
        self.posts = 0
        self.first_visible_at: float | None = None  # clock time the first answer text was sent

    @property
    def message_ids(self) -> list[str]:
        return list(self._ids)

    async def start(self) -> None:
        await self._post(self._placeholder)

    async def feed(self, delta: str) -> None:
        self._text += delta
        if not self._text.strip():
            return
        if not self._first_text_shown or self._clock() - self._last_flush >= self._interval:
            await self._flush(final=False)

    async def finish(self) -> None:
        if not self._text.strip():
            await self.fail("The model returned an empty answer; please try rephrasing.")
            return
        await self._flush(final=True)

    async def fail(self, sentence: str) -> None:
        """Replace whatever is shown by one sentence; later messages of this reply are blanked."""
        if not self._ids:
            await self._post(sentence)
            return
        await self._show(0, sentence)
        for index in range(1, len(self._ids)):
            await self._show(index, "—")

    async def _flush(self, *, final: bool) -> None:
        chunks = split_message(self._render(self._text), self._limit - len(TYPING_MARK))
        if not final:
            chunks[-1] += TYPING_MARK
        changed = [
            i for i, chunk in enumerate(chunks) if i >= len(self._shown) or self._shown[i] != chunk
        ]
        # A progress edit is optional: when the channel's budget is spent, skip it.
        prepaid = bool(changed) and not final and self._gate is not None
        if prepaid and self._gate is not None and not self._gate.try_take():
            return
        for index in changed:
            if index < len(self._ids):
                await self._show(index, chunks[index], prepaid=prepaid)
            else:
                await self._post(chunks[index], prepaid=prepaid)
            prepaid = False
        self._last_flush = self._clock()
        if not self._first_text_shown:
            self._first_text_shown = True
            self.first_visible_at = self._last_flush

    async def _show(self, index: int, text: str, *, prepaid: bool = False) -> None:
        if self._shown[index] == text:
            return
        if self._gate is not None and not prepaid:
            await self._gate.take()
        await self._sink.edit(self._ids[index], text)
        self._shown[index] = text
        self.edits += 1

    async def _post(self, text: str, *, prepaid: bool = False) -> None:
        if self._gate is not None and not prepaid:
            await self._gate.take()
        self._ids.append(await self._sink.post(text))
        self._shown.append(text)
        self.posts += 1
