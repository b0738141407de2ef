"""Showing an answer as it is written: a placeholder, throttled edits, overflow into new messages.

Platform-neutral: a `MessageSink` posts and edits messages on one platform; `StreamingReply`
decides when to edit (the first text at once, then at most once per `interval` per message) and
how to split (by `render` and `split_message`), and guarantees the placeholder never stays: it
ends as the answer or as a one-sentence error.

A platform may refuse edits (rate limits, a message it will not change). Progress edits are
optional: a refusal pauses them for the Retry-After the platform gave. The final text is not: it
is retried within a short patience, then posted as new messages and the refused ones deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from adapters.rendering import split_message
from bot.conversation import IncomingMessage
from bot.errors import Fenced

if TYPE_CHECKING:
    from bot.engine import ConversationEngine

log = logging.getLogger(__name__)

TYPING_MARK = " …"
FINAL_PATIENCE = 10.0  # seconds the final edit may wait on rate limits before posting anew
# Settling an interrupted answer is not waited on by anyone: its edit may wait out a whole rate
# window rather than post anew beside a message the same limits may not let it delete.
SETTLE_PATIENCE = 60.0


class EditRefused(Exception):
    """A sink could not edit a message: rate limited (with the wait the platform asked for), or a
    message the platform will not change any more (retry_after None)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


Guard = Callable[[], Awaitable[None]]  # raises bot.errors.Fenced when the answer was taken over
# (message ids shown now, natively streamed, a new message is being posted)
Moved = Callable[[list[str], bool, bool], Awaitable[None]]


class Reply(Protocol):
    """An answer as a platform shows it while it is written.

    `guard` is awaited before every platform write, `moved` around every new message (it fences
    too: the store refuses to move an answer this process lost), so a process taken for dead
    never writes over what recovery settled, and recovery finds every message the answer shows
    (see `follow_answer`)."""

    guard: Guard | None
    moved: Moved | None

    @property
    def message_ids(self) -> list[str]: ...

    @property
    def posts_at_start(self) -> bool:
        """Whether `start` may post a message (a placeholder) before any text."""

    async def start(self, *, recorded: bool = False, background: bool = False) -> None:
        """Show that an answer is coming (a placeholder, where the reply posts one).
        `recorded`: the answer's record says so already (the engine shows it right after
        writing that record), so it costs no write of its own. `background`: the caller goes
        on at once (the model's request need not wait for the post); the reply's first text,
        finish or failure waits for it, and raises what it raised."""

    async def feed(self, delta: str) -> None: ...

    async def finish(self, note: str = "") -> None: ...

    async def fail(self, sentence: str) -> None: ...


def _looked_at(done: asyncio.Future[None]) -> None:
    """A background step's failure counts as seen: it is raised where the step is awaited, and
    an answer that ends before awaiting it (cancelled, taken over) has no use for it."""
    if not done.cancelled():
        done.exception()


async def end_in_failure(
    reply: Reply,
    error: BaseException,
    sentence: str,
    *,
    expected: tuple[type[BaseException], ...],
) -> None:
    """Log the failure (with a traceback when it is not one we expect) and put its sentence
    where the answer would have been; a failure to say so is logged, never raised."""
    if isinstance(error, Fenced):  # another process settled this answer: not ours to touch
        log.warning("answer abandoned: %s", error)
        return
    if isinstance(error, expected):
        log.warning("answer failed: %s", error)
    else:
        log.exception("answer failed", exc_info=error)
    try:
        await reply.fail(sentence)
    except Fenced as exc:
        log.warning("answer abandoned: %s", exc)
    except Exception:
        log.exception("could not tell the user about the failure")


def unfinished(text: str, placeholder: str) -> bool:
    """A message a reply left mid-way: its placeholder, or text still marked as being typed."""
    return text == placeholder or text.endswith(TYPING_MARK.strip())


def expected_at(reply: Reply, where: dict[str, Any]) -> dict[str, Any] | None:
    """What the answer's record says before `reply.start()`: a placeholder is being posted at
    `where` (None: the reply shows nothing before its first text)."""
    return {**where, "ids": [], "posting": True} if reply.posts_at_start else None


def follow_answer(
    reply: Reply, engine: ConversationEngine, message: IncomingMessage, where: dict[str, Any]
) -> None:
    """Tie `reply` to the answer to `message`: every platform write first checks, in the store,
    that this process still holds the answer, and every message the reply posts is added to the
    answer's in-flight record (`where` with its `ids`), so a crash is settled in all of them."""

    async def moved(ids: list[str], native: bool, posting: bool) -> None:
        shown = {**where, "ids": ids, "native": native}
        if posting:  # a crash before its id is known: recovery looks for it on the platform
            shown["posting"] = True
        await engine.note_reply(message, shown)

    async def guard() -> None:
        await engine.hold(message)

    reply.moved = moved
    reply.guard = guard


async def stream_answer(
    engine: ConversationEngine,
    reply: Reply,
    message: IncomingMessage,
    where: dict[str, Any],
    shown: dict[str, Any],
    *,
    show: bool = False,
) -> None:
    """The answer to `message` streamed into `reply` and finished: tied to its record
    (`follow_answer`, at `where`), recorded as shown at `shown`; with `show`, the engine posts
    the placeholder once that record is written."""
    follow_answer(reply, engine, message, where)
    answer = engine.answer(
        message, dialect="markdown", reply=shown,
        show=functools.partial(reply.start, recorded=True, background=True) if show else None,
        finish=reply.finish,  # beside the answer's save
    )  # fmt: skip
    async with aclosing(answer) as deltas:
        async for delta in deltas:
            await reply.feed(delta)


class MessageSink(Protocol):
    async def prepare(self) -> bool:
        """Whether this reply may show a placeholder and progress; False: only the finished
        answer is posted (the platform's budget is short)."""

    async def post(self, text: str) -> str:
        """Send a new message in the reply's place; return its id."""

    async def edit(
        self, message_id: str, text: str, *, final: bool = False, optional: bool = False
    ) -> None:
        """Change a message (`final`: the answer's last message, as it stays; `optional`: a
        progress edit the sink may refuse to save its budget); raise EditRefused when the
        platform (or the budget) will not."""

    async def delete(self, message_id: str) -> None: ...


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

    def has_room(self, channel: str) -> bool:
        """A send or edit could go now (nothing is taken)."""
        return len(self._window(channel)) < self._burst

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

    def has_room(self) -> bool:
        return self.pace.has_room(self.channel)

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
        patience: float = FINAL_PATIENCE,
    ) -> None:
        self._gate = gate
        self._patience = patience
        self._paused_until = float("-inf")  # progress edits wait out a platform's Retry-After
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
        self.refused = 0  # edits the platform refused
        self.quiet = False  # no placeholder, no progress: the answer is posted when finished
        self._complete = False
        self.first_visible_at: float | None = None  # clock time the first answer text was sent
        self.guard: Guard | None = None
        self.moved: Moved | None = None
        self._starting: asyncio.Future[None] | None = None  # the placeholder, posted meanwhile
        self._expected = False  # quiet, and the answer's record expects a message all the same

    @classmethod
    def resume(
        cls,
        sink: MessageSink,
        message_ids: list[str],
        limit: int,
        *,
        render: Callable[[str], str] = lambda text: text,
        interval: float = 0.0,
        patience: float = FINAL_PATIENCE,
    ) -> StreamingReply:
        """A reply whose messages were posted already (by a stream that broke, or by another
        process before it died), continued by edits."""
        reply = cls(sink, limit=limit, interval=interval, render=render, patience=patience)
        reply._ids = list(message_ids)
        reply._shown = [""] * len(message_ids)
        return reply

    @property
    def message_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def posts_at_start(self) -> bool:
        return True

    @property
    def sink(self) -> MessageSink:
        return self._sink

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def render(self) -> Callable[[str], str]:
        return self._render

    async def start(self, *, recorded: bool = False, background: bool = False) -> None:
        """Post the placeholder. `recorded`: its posting is in the answer's record already
        (`expected_at`; recovery finds it on the platform), so `moved` is not told; otherwise
        (a native stream's fallback, mid-answer) the record learns of it as of any message.
        `background`: see `Reply.start`."""
        if background:
            self._starting = asyncio.ensure_future(self.start(recorded=recorded))
            self._starting.add_done_callback(_looked_at)  # raised where it is awaited
            return
        self.quiet = not await self._sink.prepare()
        if not self.quiet:
            await self._post(self._placeholder, announced=recorded)
        else:
            self._expected = recorded  # the first message is posted where the record expects one

    async def _started(self) -> None:
        """The placeholder posted in the background is up (or its failure raised here)."""
        starting, self._starting = self._starting, None
        if starting is not None:
            await starting

    async def feed(self, delta: str) -> None:
        await self._started()
        self._text += delta
        if not self._text.strip() or self.quiet:
            return
        if not self._first_text_shown or self._clock() - self._last_flush >= self._interval:
            await self._flush(final=False)

    async def finish(self, note: str = "") -> None:
        """Show the whole answer; `note` (a sentence) goes under it, e.g. that it was cut off."""
        await self._started()
        if not self._text.strip():
            await self.fail(note or "The model returned an empty answer; please try rephrasing.")
            return
        if note:
            self._text = self._text.rstrip() + f"\n\n_{note}_"
        self._complete = True  # the last message is the answer as it stays (feedback goes there)
        await self._flush(final=True)

    async def fail(self, sentence: str) -> None:
        """Replace whatever is shown by one sentence; later messages of this reply are blanked."""
        with contextlib.suppress(Exception):  # the placeholder that failed: nothing to replace
            await self._started()
        self._complete = False
        if not self._ids:
            await self._post(sentence)
            return
        await self._settle(0, [sentence] + ["—"] * (len(self._ids) - 1))

    async def _flush(self, *, final: bool) -> None:
        if not final and not self._may_progress():
            return  # nothing could be shown: not worth rendering the whole answer for
        chunks = split_message(self._render(self._text), self._limit - len(TYPING_MARK))
        if not final:
            chunks[-1] += TYPING_MARK
        changed = [
            i for i, chunk in enumerate(chunks) if i >= len(self._shown) or self._shown[i] != chunk
        ]
        if final:
            if changed:
                await self._settle(changed[0], chunks)
        elif changed and not await self._progress(changed, chunks):
            return
        self._last_flush = self._clock()
        if not self._first_text_shown:
            self._first_text_shown = True
            self.first_visible_at = self._last_flush

    def _may_progress(self) -> bool:
        """A progress flush could be shown now: the platform did not ask to wait, and the
        channel's window has room."""
        if self._clock() < self._paused_until:
            return False
        return self._gate is None or self._gate.has_room()

    async def _progress(self, changed: list[int], chunks: list[str]) -> bool:
        """A progress flush: optional, so skipped while the platform asked to wait, when the
        channel's budget is spent, or when the platform refuses it. True when it was shown."""
        if self._clock() < self._paused_until:
            return False
        prepaid = self._gate is not None
        if self._gate is not None and not self._gate.try_take():
            return False
        for index in changed:
            if index >= len(self._ids):
                await self._post(chunks[index], prepaid=prepaid)
            elif not await self._edit(index, chunks[index], final=False, prepaid=prepaid):
                return False
            prepaid = False
        return True

    async def _settle(self, start: int, chunks: list[str]) -> None:
        """Make messages start.. show chunks[start:], edit by edit; where the platform keeps
        refusing, post the rest anew and delete the refused messages."""
        for index in range(start, len(chunks)):
            last = self._complete and index == len(chunks) - 1
            if index >= len(self._ids):
                await self._post(chunks[index])
            elif not await self._edit(index, chunks[index], final=True, last=last):
                await self._repost(index, chunks)
                return

    async def _repost(self, index: int, chunks: list[str]) -> None:
        stale = self._ids[index:]
        del self._ids[index:], self._shown[index:]
        for chunk in chunks[index:]:
            await self._post(chunk)
        for message_id in stale:
            try:
                if self.guard is not None:
                    await self.guard()
                await self._sink.delete(message_id)
            except Exception as exc:
                log.warning("could not delete the superseded message %s: %s", message_id, exc)

    async def _edit(
        self, index: int, text: str, *, final: bool, prepaid: bool = False, last: bool = False
    ) -> bool:
        """One edit; False when the platform refused it (a progress edit is then skipped)."""
        if self._shown[index] == text:
            return True
        waited = 0.0
        while True:
            if self._gate is not None and not prepaid:
                await self._gate.take()
            prepaid = False
            if self.guard is not None:
                await self.guard()
            try:
                await self._sink.edit(self._ids[index], text, final=last, optional=not final)
            except EditRefused as refusal:
                self.refused += 1
                wait = refusal.retry_after
                if wait is not None:
                    self._paused_until = self._clock() + wait
                if not final or wait is None or waited + wait > self._patience:
                    log.info(
                        "edit refused (%s); %s", refusal, "posting anew" if final else "skipped"
                    )
                    return False
                waited += wait
                await asyncio.sleep(wait)
                continue
            self._shown[index] = text
            self.edits += 1
            return True

    async def _post(self, text: str, *, prepaid: bool = False, announced: bool = False) -> None:
        if self._gate is not None and not prepaid:
            await self._gate.take()
        # `announced`: the record says so already, written by this process just now; a quiet
        # reply's first message is where the record expects one too (as of a placeholder), but
        # later, so it is fenced by the guard
        expected = self._expected and not self._ids
        told = announced or expected  # the record needs no write for this message
        if self.moved is not None and not told:  # a message is coming (and fences)
            await self.moved(list(self._ids), False, True)
        elif self.guard is not None and not announced:
            await self.guard()
        self._ids.append(await self._sink.post(text))
        self._shown.append(text)
        self.posts += 1
        if self.moved is not None and not told:  # in the record before more is shown
            await self.moved(list(self._ids), False, False)
