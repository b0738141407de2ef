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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from adapters.rendering import split_message

log = logging.getLogger(__name__)

TYPING_MARK = " …"


class MessageSink(Protocol):
    async def post(self, text: str) -> str:
        """Send a new message in the reply's place; return its id."""

    async def edit(self, message_id: str, text: str) -> None: ...


class ChannelPace:
    """A token bucket per channel: `burst` messages or edits at once, then `burst` per `period`.

    Every reply in a channel shares it, so twenty answers streaming in one channel together stay
    under the platform's per-channel limit: their optional progress edits are skipped when the
    bucket is empty, and only the sends and final edits wait for it.
    """

    def __init__(
        self, burst: int = 5, period: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self._burst = float(burst)
        self._rate = burst / period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)

    def _tokens(self, channel: str) -> float:
        tokens, at = self._buckets.get(channel, (self._burst, self._clock()))
        return min(self._burst, tokens + (self._clock() - at) * self._rate)

    def try_take(self, channel: str) -> bool:
        tokens = self._tokens(channel)
        if tokens < 1:
            return False
        self._buckets[channel] = (tokens - 1, self._clock())
        return True

    async def take(self, channel: str) -> None:
        # Tokens come back with time, not with an event: sleep until the next one is due.
        while not self.try_take(channel):  # noqa: ASYNC110
            await asyncio.sleep((1 - self._tokens(channel)) / self._rate)

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
