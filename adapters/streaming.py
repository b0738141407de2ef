"""Showing an answer as it is written: a placeholder, throttled edits, overflow into new messages.

Platform-neutral: a `MessageSink` posts and edits messages on one platform; `StreamingReply`
decides when to edit (the first text at once, then at most once per `interval` per message) and
how to split (by `render` and `split_message`), and guarantees the placeholder never stays: it
ends as the answer or as a one-sentence error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from adapters.rendering import split_message

log = logging.getLogger(__name__)

TYPING_MARK = " …"


class MessageSink(Protocol):
    async def post(self, text: str) -> str:
        """Send a new message in the reply's place; return its id."""

    async def edit(self, message_id: str, text: str) -> None: ...


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
    ) -> None:
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
        for index, chunk in enumerate(chunks):
            if index < len(self._ids):
                await self._show(index, chunk)
            else:
                await self._post(chunk)
        self._last_flush = self._clock()
        if not self._first_text_shown:
            self._first_text_shown = True
            self.first_visible_at = self._last_flush

    async def _show(self, index: int, text: str) -> None:
        if self._shown[index] == text:
            return
        await self._sink.edit(self._ids[index], text)
        self._shown[index] = text
        self.edits += 1

    async def _post(self, text: str) -> None:
        self._ids.append(await self._sink.post(text))
        self._shown.append(text)
        self.posts += 1
