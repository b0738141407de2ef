"""The conversation engine: the API every adapter calls.

observe(message)   record a message in its thread without answering
answer(message)    stream an answer; both turns are saved when it completes
forget(thread)     clear a thread's memory
remove(thread, id) drop one message (deleted on the platform)
read(thread)       the thread as memory holds it, for summaries
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from bot.admission import Admission
from bot.chat_model import ChatModel
from bot.conversation import IncomingMessage, ThreadRef, ThreadState, Turn
from bot.engine_config import EngineConfig
from bot.errors import AnswerCutOff, Fenced, InvalidRequest, StoreUnavailable
from bot.files.answering import FileAnswerer, FileTurn, Vision, note
from bot.files.reading import FileReader
from bot.files.refs import FileRef
from bot.files.turns import unshown_images
from bot.folding import Folder
from bot.metrics import LOCK_WAIT, answered, cause_of
from bot.prompt import PromptPlan, render_turn
from bot.search.channel_search import ChannelSearch
from bot.search.grounding import Cited, GroundedAnswer, Grounding
from bot.store.inflight import PendingAnswer
from bot.store.memory.base import Shown, ThreadMemory
from bot.summaries.sources import SourceMessage
from bot.summaries.summarizer import Summarizer, Summary, SummaryConfig
from bot.summaries.summarizing import SummaryRequests
from bot.summaries.summary_store import SummaryStore
from bot.tokens import MESSAGE_OVERHEAD, TokenCounter
from bot.usage.quotas import Quotas, Spending
from bot.usage.tally import Payer

log = logging.getLogger(__name__)

NO_HISTORY = (
    "I keep no channel history here (BOT_CHANNEL_LOG_DAYS is 0), so there is nothing to search."
)


def payer_of(message: IncomingMessage) -> Payer:
    """Who pays for answering `message`: its author, in its channel and workspace."""
    thread = message.thread
    return Payer(
        thread.platform, thread.workspace, thread.channel, message.author_id, message.author_name
    )


def _today() -> date:
    return datetime.now(UTC).date()


async def _beside(showing: Awaitable[None], saving: Awaitable[None]) -> None:
    """The finished answer shown and saved side by side: its last edit waited a round trip to
    Redis. Either failing is raised once both are done; the save's first (a fenced answer
    is no longer this process's to show)."""
    shown, saved = await asyncio.gather(showing, saving, return_exceptions=True)
    for outcome in (saved, shown):
        if isinstance(outcome, BaseException):
            raise outcome


class ConversationEngine:
    """Conversations: answering and remembering. It holds its parts — a `Folder` (prompt
    planning and the rolling summary), `SummaryRequests` and a `FileAnswerer` — each built with
    what it needs, and passes their public calls through."""

    def __init__(
        self,
        memory: ThreadMemory,
        model: ChatModel,
        counter: TokenCounter,
        config: EngineConfig | None = None,
        *,
        today: Callable[[], date] = _today,
        summaries: SummaryStore | None = None,
        summary_config: SummaryConfig | None = None,
        files: FileReader | None = None,
        vision: Vision = "auto",
        max_concurrent: int = 0,
        quotas: Quotas | None = None,
        search: ChannelSearch | None = None,
    ) -> None:
        self.admission = Admission(max_concurrent)  # answers streaming at once; 0: no limit
        self.files = files or FileReader()
        self.memory = memory
        self.model = model
        self.counter = counter
        self.config = config = config or EngineConfig()
        # What one request may spend at most: held against the quotas while it runs.
        self.reserve_tokens = config.max_prompt_tokens + config.max_answer_tokens
        self.last_plan: PromptPlan | None = None  # what the latest answer sent, for benchmarks
        self.summarizer = Summarizer(
            model,
            counter,
            summary_config
            or SummaryConfig(
                budget=config.max_prompt_tokens, answer_tokens=config.max_answer_tokens
            ),
        )
        self.summaries = summaries
        self.folder = Folder(memory, model, counter, config, today)
        self.requests = SummaryRequests(
            memory,
            self.summarizer,
            summaries,
            quotas or Quotas(),
            reserve_tokens=self.reserve_tokens,
            config=config,
        )
        self.file_answers = FileAnswerer(
            memory,
            model,
            counter,
            config,
            self.summarizer,
            self.files,
            vision=vision,
            counted_to=self.requests.counted_to,
        )
        # Asking the channels' history (None without a channel log: nothing to search).
        self.grounding = (
            Grounding(search, model, config, self.requests.counted_to) if search else None
        )
        self._in_flight: dict[tuple[ThreadRef, str], PendingAnswer] = {}  # answers running here
        # answer -> the memory's lapse count when its record was last known to name this process
        # (written or checked) with the lease holding: unchanged, with the lease still holding,
        # nobody can have taken the answer over since, and a write needs no check in Redis
        self._checked: dict[tuple[ThreadRef, str], int] = {}

    def _turn(self, message: IncomingMessage) -> Turn:
        draft = message.as_turn()
        if message.files:  # until the files are read, memory names them
            named = ", ".join(f.name for f in message.files)
            draft = replace(draft, text=f"{message.text.strip()}\n[shared: {named}]".strip())
        return message.as_turn(tokens=self.counter.count(render_turn(draft)))

    async def observe(self, message: IncomingMessage) -> None:
        if message.text.strip():
            await self.memory.append(message.thread, self._turn(message))

    async def keep_question(self, message: IncomingMessage) -> None:
        """Save a question whose answer was lost (its process died), unless already saved."""
        if not message.text.strip():
            return
        state = await self.memory.load(message.thread)
        if not state.has_message(message.message_id):
            await self.memory.append(message.thread, self._turn(message))

    async def knows(self, thread: ThreadRef) -> bool:
        """Whether the bot has any memory of this thread (it took part in it)."""
        return await self.memory.exists(thread)

    async def read(self, thread: ThreadRef) -> ThreadState:
        return await self.memory.load(thread)

    async def seed(self, thread: ThreadRef, turns: Sequence[Turn]) -> int:
        """Remember a thread's earlier messages, read from the platform when the bot joins late.

        Only the newest turns that fit the prompt budget are kept; returns how many.
        """
        kept: list[Turn] = []
        weight = 0
        for turn in reversed(turns):
            counted = replace(turn, tokens=self.counter.count(render_turn(turn)))
            weight += counted.tokens + MESSAGE_OVERHEAD
            if weight > self.config.keep_tokens:
                break
            kept.append(counted)
        kept.reverse()
        if kept:
            await self.memory.append(thread, *kept)
        return len(kept)

    async def forget(self, thread: ThreadRef) -> None:
        await self.memory.forget(thread)

    async def remove(self, thread: ThreadRef, message_id: str) -> bool:
        return await self.memory.remove(thread, message_id)

    async def answer(
        self,
        message: IncomingMessage,
        *,
        dialect: str | None = None,
        reply: dict[str, Any] | None = None,
        show: Shown | None = None,
        finish: Shown | None = None,
    ) -> AsyncGenerator[str, None]:
        """`_answer` within the asker's quotas (its usage recorded with the save), counted by
        outcome (bot.metrics), with its latency logged."""
        outcome, error = "failed", None
        started = time.perf_counter()
        first: float | None = None
        try:
            async with self.quotas.spending(payer_of(message), self.reserve_tokens) as spending:
                answering = self._answer(
                    message, dialect=dialect, reply=reply, spending=spending, show=show,
                    finish=finish,
                )  # fmt: skip
                async with aclosing(answering) as deltas:
                    async for delta in deltas:
                        if first is None:
                            first = time.perf_counter() - started
                        yield delta
            outcome = "answered"
        except AnswerCutOff:
            outcome = "cut_off"
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            answered(message.thread.platform, outcome, error)
            timing = {"latency_ms": round(1000 * (time.perf_counter() - started))}
            if first is not None:
                timing["first_text_ms"] = round(1000 * first)
            log.info("answer %s: %s", outcome, cause_of(error) if error else "ok", extra=timing)

    async def _answer(
        self,
        message: IncomingMessage,
        *,
        dialect: str | None = None,
        reply: dict[str, Any] | None = None,
        spending: Spending | None = None,
        show: Shown | None = None,
        finish: Shown | None = None,
    ) -> AsyncGenerator[str, None]:
        """Stream the answer to `message` as text deltas.

        Answers in one thread run one after another, each seeing the turns before it. With
        `reply` (where the adapter shows the answer), the answer is recorded as in flight from
        the start, so a follow-up finds the thread known and a crash can be settled by another
        process; `show` (the adapter posting its placeholder) is awaited once that record is
        written, in the round trip that takes the lock. However it ends, the user's turn is
        saved; a finished answer is saved with it; a cut-off answer is saved as far as it got; a
        failed one not at all. A failed save is logged, never shown in place of a finished
        answer. `finish` (the adapter showing the finished answer) goes beside its save, not
        after it. Model errors reach the caller.
        """
        if not message.text.strip() and not message.files:
            raise InvalidRequest("Your message was empty; write your question after mentioning me.")
        thread = message.thread
        pending = PendingAnswer(message, reply, started=time.time()) if reply is not None else None
        user_turn = self._turn(message)
        unsaved: list[Turn] | None = [user_turn]
        if pending is not None:
            self._in_flight[(thread, pending.key)] = pending
        try:
            queued = time.perf_counter()
            # grounding's log read rides with the lock when it can
            reading = self.grounding.prefetch(message) if self.grounding is not None else None
            alongside = [reading] if reading is not None else []
            locked = self.memory.lock(thread, pending=pending, recorded=show, alongside=alongside)
            async with locked, self.admission.admitted():
                LOCK_WAIT.observe(time.perf_counter() - queued)
                if pending is not None:  # its record, naming this process, was just written
                    self._vouch((thread, pending.key))
                state = await self.memory.load(thread)
                already_saved = state.has_message(message.message_id)
                history = [
                    t
                    for t in state.turns
                    if not already_saved or t.message_id != message.message_id
                ]
                carried = unshown_images(history)
                with_files: FileTurn | None = None
                if message.files or carried:
                    with_files = await self.file_answers.file_turn(message, carried)
                    user_turn = with_files.stored
                    unsaved = [user_turn]
                sources = (
                    await self.grounding.context_for(
                        message, history, reading.result if reading is not None else None
                    )
                    if self.grounding is not None
                    else []
                )
                cited = Cited(sources, dialect or self.config.dialect)
                plan = await self.folder.plan(
                    thread,
                    state.summary,
                    history,
                    with_files.prompt if with_files else user_turn,
                    dialect,
                    reserve=(with_files.image_tokens if with_files else 0)
                    + (self.counter.count(cited.prompt) + MESSAGE_OVERHEAD if sources else 0),
                )
                plan = cited.offered_in(plan)  # just before the message it bears on
                self.last_plan = plan
                parts: list[str] = []
                finished = cut_off = False
                try:
                    for line in with_files.notes if with_files else ():
                        yield note(line, dialect or self.config.dialect)
                    images = with_files.images if with_files else ()
                    answering = self.file_answers.stream_with_images(
                        plan.messages, images, dialect, parts
                    )
                    async with aclosing(answering) as deltas:  # closed before the save below
                        async for delta in deltas:
                            if shown := cited.shown(delta):
                                yield shown
                    if tail := cited.tail():
                        yield tail
                except AnswerCutOff:
                    cut_off = True
                    raise
                else:
                    finished = True
                finally:
                    turns = [] if already_saved else [user_turn]
                    text = cited.remembered("".join(parts).strip())
                    if (finished or cut_off) and text:
                        stored = text + (" [cut off]" if cut_off else "")
                        turns.append(
                            Turn(
                                role="assistant",
                                text=stored,
                                author_name=self.config.bot_name,
                                tokens=self.counter.count(stored),
                            )
                        )
                    unsaved = None
                    saving = self._save(thread, turns, pending, spending)
                    if finished and finish is not None:
                        await _beside(finish(), saving)
                    else:
                        await saving
        finally:
            if pending is not None:
                self._in_flight.pop((thread, pending.key), None)
                self._checked.pop((thread, pending.key), None)
            if unsaved is not None:  # never got the thread (store down, busy, cancelled)
                await self._save(thread, unsaved, pending)

    # --- what the parts do, for the adapters -----------------------------------------------

    @property
    def quotas(self) -> Quotas:
        """The asker's daily limits and usage, for answers and summaries alike."""
        return self.requests.quotas

    @quotas.setter
    def quotas(self, quotas: Quotas) -> None:
        self.requests.quotas = quotas

    @property
    def images_refused(self) -> bool:
        return self.file_answers.images_refused

    async def acknowledge_files(self, message: IncomingMessage) -> str:
        return await self.file_answers.acknowledge_files(message)

    async def summarize_files(
        self, refs: Sequence[FileRef], *, dialect: str = "markdown", payer: Payer | None = None
    ) -> Summary:
        return await self.file_answers.summarize_files(refs, dialect=dialect, payer=payer)

    async def summarize(
        self,
        thread: ThreadRef,
        *,
        dialect: str | None = None,
        link_for: Callable[[str], str] | None = None,
        requester: str | None = None,
        payer: Payer | None = None,
    ) -> Summary:
        return await self.requests.summarize(
            thread, dialect=dialect, link_for=link_for, requester=requester, payer=payer
        )

    async def summarize_sources(
        self,
        sources: Sequence[SourceMessage],
        *,
        scope: str | None = None,
        dialect: str | None = None,
        requester: str | None = None,
        payer: Payer | None = None,
    ) -> Summary:
        return await self.requests.summarize_sources(
            sources, scope=scope, dialect=dialect, requester=requester, payer=payer
        )

    async def ask(
        self,
        question: str,
        *,
        channels: Collection[str],
        where: str,
        dialect: str = "markdown",
        payer: Payer | None = None,
    ) -> GroundedAnswer:
        """An answer from the channels' own messages, citing them, or "not found" (bot.search)."""
        if self.grounding is None:
            raise InvalidRequest(NO_HISTORY)
        return await self.grounding.ask(
            question, channels=channels, where=where, dialect=dialect, payer=payer
        )

    async def logged_channels(self, under: str) -> list[str]:
        """The channels (scopes starting with `under`) whose history can be searched."""
        if self.grounding is None:
            raise InvalidRequest(NO_HISTORY)
        return await self.grounding.search.log.channels(under)

    def counted_to(self, payer: Payer | None) -> AbstractAsyncContextManager[object]:
        return self.requests.counted_to(payer)

    async def summary_since(self, scope: str, requester: str) -> datetime | None:
        return await self.requests.summary_since(scope, requester)

    @asynccontextmanager
    async def expecting(
        self, message: IncomingMessage, reply: dict[str, Any] | None
    ) -> AsyncIterator[None]:
        """Record the answer to `message` as in flight before its adapter shows anything of it
        (`reply`: where it will be, marked `posting`; None: nothing to show before the answer
        begins), so a crash between the placeholder and `answer` (while the adapter reads the
        thread, say) is settled too. An answer that never reaches `answer` is settled when the
        block ends; one that did was settled by it."""
        if reply is None:
            yield
            return
        pending = PendingAnswer(message, reply, started=time.time())
        key = (message.thread, pending.key)
        await self.memory.record(pending)
        self._in_flight[key] = pending
        self._vouch(key)
        try:
            yield
        finally:
            if self._in_flight.get(key) is pending:  # `answer` never took it over
                del self._in_flight[key]
                self._checked.pop(key, None)
                with suppress(Fenced):  # recovery settled it (logged by _save)
                    await self._save(message.thread, [], pending)

    async def note_reply(self, message: IncomingMessage, reply: dict[str, Any]) -> None:
        """The answer to `message` is now shown at `reply` (e.g. a native stream that began with
        the first text), so a crash can still be settled where people see it."""
        key = PendingAnswer(message).key
        pending = self._in_flight.get((message.thread, key))
        if pending is not None:
            await self.memory.update_pending(replace(pending, reply=reply))

    async def hold(self, message: IncomingMessage) -> None:
        """Raise `Fenced` if this process lost the answer to `message` to recovery (it was
        taken for dead: a long pause, a partition). Adapters call it before every platform write
        of the answer, so a process that wakes late never writes over the sentence recovery
        posted. The check holds while this process's liveness does (its lease): a write after
        the lease ran out, or after a heartbeat found it lapsed, is checked again. What is left
        is a pause between that local check and the platform receiving the write, since Slack
        and Discord take no fencing token. Nothing to check for an answer not recorded."""
        key = (message.thread, PendingAnswer(message).key)
        pending = self._in_flight.get(key)
        if pending is None:
            return
        while True:
            lapses = self.memory.lapses
            if self._checked.get(key) == lapses and self.memory.lease_left() > 0:
                return  # the lease held since its record was written or checked: still ours
            if not await self.memory.owns(pending):
                raise Fenced(f"the answer to {pending.key} in {message.thread} was taken over")
            if self.memory.lapses == lapses and self.memory.lease_left() > 0:
                self._checked[key] = lapses
                return  # nobody can have taken it over since the check
            # This process may have been taken for dead since the check (a pause after it, a
            # heartbeat that found its liveness lapsed): renew it, then check again.
            await self.memory.renew()

    def _vouch(self, key: tuple[ThreadRef, str]) -> None:
        """The answer's record was just written naming this process: while the lease holds,
        that counts as a check."""
        if self.memory.lease_left() > 0:
            self._checked[key] = self.memory.lapses

    async def _save(
        self,
        thread: ThreadRef,
        turns: list[Turn],
        pending: PendingAnswer | None,
        spending: Spending | None = None,
    ) -> None:
        """Save an answer's turns and settle it, its usage riding along; shielded, since a
        cancelled answer must still record what the user said. A failure is logged: the reply
        is already shown."""
        usage = spending.entry() if spending is not None else None
        riders = [usage] if usage is not None else []
        if not turns and pending is None and not riders:
            return
        try:
            saving = self.memory.append(thread, *turns, settled=pending, riders=riders)
            await asyncio.shield(saving)
        except Fenced:
            log.warning("the answer in %s was settled by another process: not saved", thread)
            raise
        except StoreUnavailable as exc:
            kept = ", ".join(f"{t.role} {t.message_id or '(answer)'}" for t in turns) or "nothing"
            log.error("could not save %s of %s (%s); they are not remembered", kept, thread, exc)
