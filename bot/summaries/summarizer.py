"""Summaries of any length, with every point citing the messages it came from.

    transcript ──chunks by tokens──► notes per chunk (concurrently, bounded; cheap model allowed)
                                      │  merged in groups that fit a prompt, level by level
                                      ▼
                                    the final summary in a fixed shape, citing [m#] ids
                                      │
                                      ▼  ids → numbered links; ids the model invented are dropped

Every message's text enters exactly one chunk prompt, and each level of merging reads only the
much shorter notes of the level below, so prompt tokens grow linearly with the transcript.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bot.chat_model import ChatMessage, ChatModel, Purpose, complete
from bot.metrics import SUMMARIES, SUMMARY_CALLS
from bot.prompt import truncate_to_tokens
from bot.summaries.citations import label, labelled, resolve
from bot.summaries.sources import SourceMessage, dominant_language
from bot.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, TokenCounter

log = logging.getLogger(__name__)

EMPTY = "There is nothing to summarize here yet."

SHAPE = """\
Write the summary in exactly this shape, leaving out any section that would be empty:
the gist in one or two sentences (no heading);
**Key points** as a bulleted list;
**Decisions** as a bulleted list;
**Open questions** as a bulleted list;
**Action items** as a bulleted list, each starting with its owner's name as written in the \
messages.
End every bullet with the ids of the messages it comes from in square brackets, like [m12] or \
[m3][m7]. Cite only ids that appear in the input; never write links or URLs. Use only what the \
messages say; never invent names, dates or facts. {language} Format with {dialect}."""

FINAL = "You summarize {subject} for someone who {missed}.\n" + SHAPE

CHUNK = """\
You read one part of a longer {subject_short} and take notes for a later summary. List \
the key points, decisions, open questions and action items (with their owners' names) in this \
part, as short bullets. End every bullet with the ids of the messages it comes from in square \
brackets, like [m12]. Cite only ids that appear in the input. {language} Reply with the bullets \
only."""

MERGE = """\
You merge notes taken from consecutive parts of one {subject_short} into one set of \
notes: combine duplicates, keep every distinct point, decision, open question and action item \
with its owner, and keep the [m#] message ids at the end of each bullet (union them when you \
combine bullets). {language} Reply with the bullets only."""

Subject = Literal["conversation", "document"]
SUBJECTS: dict[Subject, dict[str, str]] = {
    "conversation": {
        "subject": "a team chat conversation",
        "subject_short": "team chat conversation",
        "missed": "missed it",
    },
    "document": {
        "subject": "a document, given as numbered passages,",
        "subject_short": "document",
        "missed": "has not read it",
    },
}

MAX_DEPTH = 6  # merge levels at the most; notes that still do not fit are trimmed
LANGUAGE_FALLBACK = "Write in the language most of the messages are written in."


def language_instruction(sources: Sequence[SourceMessage]) -> str:
    language = dominant_language(s.text for s in sources)
    if language is None:
        return LANGUAGE_FALLBACK
    return f"Most of the messages are in {language}: write in {language}."


@dataclass(frozen=True, slots=True)
class SummaryConfig:
    budget: int = 8000  # prompt tokens per call
    answer_tokens: int = 1024  # the final summary's length
    note_tokens: int = 600  # one chunk's notes
    concurrency: int = 4  # model calls at once
    max_messages: int = 5000  # a larger window is cut to its newest messages
    max_tokens: int = 500_000  # likewise, by transcript tokens


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    covered: int  # messages the summary read
    total: int  # messages in the window asked for
    model_calls: int = 0
    chunks: int = 0
    depth: int = 0  # merge levels above the chunks
    merges: tuple[int, ...] = ()  # merge calls at each level
    prompt_tokens: int = 0  # estimated, summed over every call
    notice: str = ""  # what was left out and why, for the reader
    cited: tuple[SourceMessage, ...] = field(default=())


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%d %b %H:%M")


class Summarizer:
    def __init__(
        self, model: ChatModel, counter: TokenCounter, config: SummaryConfig | None = None
    ):
        self._model = model
        self._counter = counter
        self.config = config or SummaryConfig()

    def _line(self, index: int, source: SourceMessage) -> str:
        return f"[{label(index)}] {source.author}: {' '.join(source.text.split())}"

    def _cost(self, text: str) -> int:
        return self._counter.count(text) + MESSAGE_OVERHEAD

    def _room(self, instructions: str, output: int) -> int:
        """Tokens left for the input of one call."""
        return (
            self.config.budget
            - self._cost(instructions)
            - REPLY_PRIMING
            - MESSAGE_OVERHEAD
            - output // 4
        )

    def _cut(self, sources: Sequence[SourceMessage]) -> tuple[list[SourceMessage], str]:
        """Keep the newest messages within the configured ceilings, saying what was left out."""
        total = len(sources)
        kept = list(sources[-self.config.max_messages :])
        weight = 0
        for start in range(len(kept) - 1, -1, -1):
            weight += self._cost(kept[start].text)
            if weight > self.config.max_tokens:
                kept = kept[start + 1 :]
                break
        if len(kept) < total:
            # Windows are read one message past the ceiling: past it, the exact size is unknown.
            size = (
                f"more than {self.config.max_messages:,}"
                if total > self.config.max_messages
                else f"{total:,}"
            )
            span = f" ({_when(kept[0].at)} to {_when(kept[-1].at)} UTC)" if kept else ""
            return kept, (
                f"This window has {size} messages, more than I summarize at once; "
                f"this summary covers the latest {len(kept):,}{span}."
            )
        return kept, ""

    def _fit(self, notes: Sequence[str], room: int) -> list[str]:
        """Notes that fit one prompt: each trimmed to an equal share when together they do not."""
        if sum(self._cost(n) for n in notes) <= room:
            return list(notes)
        share = max(20, room // max(1, len(notes)) - MESSAGE_OVERHEAD)
        return [truncate_to_tokens(self._counter, n, share) for n in notes]

    def _pack(self, lines: Sequence[str], room: int) -> list[list[str]]:
        """Consecutive lines grouped so each group fits `room` tokens (a huge line stands alone)."""
        groups: list[list[str]] = [[]]
        weight = 0
        for line in lines:
            cost = self._cost(line)
            if groups[-1] and weight + cost > room:
                groups.append([])
                weight = 0
            groups[-1].append(line)
            weight += cost
        return groups

    async def summarize(
        self,
        sources: Sequence[SourceMessage],
        *,
        dialect: str = "markdown",
        subject: Subject = "conversation",
    ) -> Summary:
        if not sources:
            return Summary(EMPTY, 0, 0)
        kept, notice = self._cut(sources)
        by_label = labelled(kept)
        language = language_instruction(kept)
        lines = [self._line(i, s) for i, s in enumerate(kept, start=1)]
        calls = _Calls(self._model, self._counter, self.config.concurrency)

        words = SUBJECTS[subject]
        final_instructions = FINAL.format(language=language, dialect=dialect, **words)
        chunk_instructions = CHUNK.format(language=language, **words)
        merge_instructions = MERGE.format(language=language, **words)
        chunks = self._pack(lines, self._room(final_instructions, self.config.answer_tokens))
        depth = 0
        merges: list[int] = []
        if len(chunks) > 1:
            chunks = self._pack(lines, self._room(chunk_instructions, self.config.note_tokens))
            notes = await calls.each(chunk_instructions, chunks, self.config.note_tokens, "chunk")
            final_room = self._room(final_instructions, self.config.answer_tokens)
            merge_room = self._room(merge_instructions, self.config.note_tokens)
            while len(self._pack(notes, final_room)) > 1 and depth < MAX_DEPTH:
                depth += 1
                groups = self._pack(notes, merge_room)
                merges.append(len(groups))
                merged = await calls.each(
                    merge_instructions, groups, self.config.note_tokens, "summary"
                )
                shrank = len(merged) < len(notes)
                notes = merged
                if not shrank:
                    break  # merging no longer shrinks the notes: they are trimmed to fit below
            lines = self._fit(notes, final_room)
        text = await calls.one(final_instructions, lines, self.config.answer_tokens, "summary")
        rendered, cited = resolve(text, by_label, dialect=dialect)
        if notice:
            rendered = (
                f"_{notice}_\n\n{rendered}" if dialect == "markdown" else f"{notice}\n\n{rendered}"
            )
        SUMMARIES.labels(subject).inc()
        SUMMARY_CALLS.inc(calls.count)
        log.info(
            "summary of %d messages: %d chunks, %d merge levels, %d model calls",
            len(kept), len(chunks), depth, calls.count,
        )  # fmt: skip
        return Summary(
            text=rendered,
            covered=len(kept),
            total=len(sources),
            model_calls=calls.count,
            chunks=len(chunks),
            depth=depth,
            merges=tuple(merges),
            prompt_tokens=calls.prompt_tokens,
            notice=notice,
            cited=tuple(cited),
        )


class _Calls:
    """Model calls of one summary: counted, and at most `concurrency` at once."""

    def __init__(self, model: ChatModel, counter: TokenCounter, concurrency: int) -> None:
        self._model = model
        self._counter = counter
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self.count = 0
        self.prompt_tokens = 0

    async def one(
        self, instructions: str, lines: Sequence[str], max_tokens: int, purpose: Purpose
    ) -> str:
        body = "\n".join(lines)
        prompt = [ChatMessage("system", instructions), ChatMessage("user", body)]
        async with self._gate:
            self.count += 1
            self.prompt_tokens += sum(
                self._counter.count(m.content) + MESSAGE_OVERHEAD for m in prompt
            )
            text = await complete(self._model, prompt, max_tokens=max_tokens, purpose=purpose)
        return text.strip()

    async def each(
        self, instructions: str, groups: Sequence[Sequence[str]], max_tokens: int, purpose: Purpose
    ) -> list[str]:
        results = await asyncio.gather(
            *(self.one(instructions, group, max_tokens, purpose) for group in groups)
        )
        return [r for r in results if r]
