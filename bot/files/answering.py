"""Files in conversations: read them for an answer, acknowledge them, summarize documents, and
stream an answer with its images. The engine holds one `FileAnswerer`, so it reads as
conversation only."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from bot.chat_model import ChatMessage, ChatModel, streaming
from bot.conversation import IncomingMessage, Turn
from bot.engine_config import EngineConfig
from bot.errors import ImagesRefused, InvalidRequest
from bot.files.quoting import quote_documents
from bot.files.reading import FileReader
from bot.files.refs import FileRef
from bot.files.turns import (
    DESCRIBE,
    NO_VISION,
    acknowledgement,
    document_sources,
    file_turn_text,
)
from bot.prompt import render_turn
from bot.store.memory.base import ThreadMemory
from bot.summaries.summarizer import Summarizer, Summary
from bot.tokens import TokenCounter
from bot.usage.tally import CountedTo, Payer

log = logging.getLogger(__name__)

Vision = Literal["auto", "on", "off"]
SYSTEM_RESERVE = 600  # tokens kept for the system prompt and summary when documents are large
NOTHING_TO_SUMMARIZE = (
    "There is no document here for me to summarize; attach a PDF, a Word document or a text file."
)


@dataclass(frozen=True, slots=True)
class FileTurn:
    """A message with its files, as the model reads it and as memory keeps it."""

    prompt: Turn
    stored: Turn
    images: tuple[str, ...]  # data: URLs sent with the prompt
    image_tokens: int
    notes: tuple[str, ...]  # sentences shown to the user above the answer


def note(text: str, dialect: str) -> str:
    return f"_{text}_\n\n" if dialect == "markdown" else f"({text})\n\n"


class FileAnswerer:
    def __init__(
        self,
        memory: ThreadMemory,
        model: ChatModel,
        counter: TokenCounter,
        config: EngineConfig,
        summarizer: Summarizer,
        files: FileReader,
        *,
        vision: Vision,
        counted_to: CountedTo,  # a request's quotas and usage (bot.summaries.summarizing)
    ) -> None:
        self.memory = memory
        self.model = model
        self.counter = counter
        self.config = config
        self.summarizer = summarizer
        self.files = files
        self.vision = vision
        self.counted_to = counted_to
        self.max_prompt_tokens = config.max_prompt_tokens
        self.images_refused = False  # learned in auto mode: the model said it takes no images

    @property
    def sees_images(self) -> bool:
        return self.vision == "on" or (self.vision == "auto" and not self.images_refused)

    def document_budget(self, question: str, image_tokens: int = 0) -> int:
        """Tokens documents may fill: three quarters of the prompt, less the question and images;
        the rest is for the system prompt and the thread's recent turns."""
        room = self.max_prompt_tokens * 3 // 4 - self.counter.count(question) - image_tokens
        return max(0, min(room, self.max_prompt_tokens - SYSTEM_RESERVE))

    def _turn_for(
        self, message: IncomingMessage, text: str, files: tuple[FileRef, ...] = ()
    ) -> Turn:
        draft = replace(message.as_turn(), text=text, files=files)
        return replace(draft, tokens=self.counter.count(render_turn(draft)))

    async def file_turn(self, message: IncomingMessage, carried: Sequence[FileRef]) -> FileTurn:
        """Read the message's files (and images shared just before it) into the turn to send.

        A message of files alone asks to describe them; if none of them could be read, the
        problems are the whole answer (InvalidRequest) and no model is called."""
        refs = [*carried, *message.files]
        reading = await self.files.read(refs, images=self.sees_images)
        if not message.text.strip() and not (reading.documents or reading.images):
            raise InvalidRequest(" ".join(reading.problems) or "I could not read those files.")
        question = message.text.strip() or DESCRIBE
        image_tokens = sum(i.tokens for i in reading.images)
        quoted = quote_documents(
            self.counter, reading.documents, self.document_budget(question, image_tokens)
        )
        keep = self.files.limits.keep_chars
        read = {*reading.names, *(r.name for r in reading.unseen)}
        unread = [r.name for r in refs if r.name not in read]
        notes = [*reading.problems, *quoted.notes]
        if reading.unseen:
            names = ", ".join(r.name for r in reading.unseen)
            notes.append(f"{NO_VISION} (I did not see {names}).")
        return FileTurn(
            prompt=self._turn_for(
                message, file_turn_text(question, reading, quoted, keep=None, unread=unread)
            ),
            stored=self._turn_for(
                message, file_turn_text(question, reading, quoted, keep=keep, unread=unread)
            ),
            images=tuple(i.data_url() for i in reading.images),
            image_tokens=image_tokens,
            notes=tuple(notes),
        )

    def without_images(self) -> str:
        """The line to show when the model refused the images (auto mode learns it once)."""
        self.images_refused = True
        log.warning("the model refused image input: answering from text (OPENAI_VISION=auto)")
        return f"{NO_VISION}."

    async def acknowledge_files(self, message: IncomingMessage) -> str:
        """Files dropped without a question: documents are read and remembered now, images are
        kept by reference for the next question; the reply is one line, with no model call."""
        reading = await self.files.read(message.files, images=False)
        deferred = tuple(reading.unseen)  # images wait for the question, not "not shown"
        quoted = quote_documents(self.counter, reading.documents, self.document_budget(""))
        lines = [
            f"[image {ref.name} shared, to be shown with the next question]" for ref in deferred
        ]
        documents = replace(reading, unseen=[])
        text = file_turn_text(message.text, documents, quoted, keep=self.files.limits.keep_chars)
        text = "\n\n".join(p for p in [text, *lines] if p)
        names = [ref.name for ref in message.files]
        if text:
            await self.memory.append(message.thread, self._turn_for(message, text, deferred))
        return acknowledgement(reading, names)

    async def summarize_files(
        self, refs: Sequence[FileRef], *, dialect: str = "markdown", payer: Payer | None = None
    ) -> Summary:
        """A summary of the documents among `refs`, citing pages or line ranges."""
        async with self.counted_to(payer):
            return await self._summarize_files(refs, dialect)

    async def _summarize_files(self, refs: Sequence[FileRef], dialect: str) -> Summary:
        reading = await self.files.read(refs, images=False)
        if not reading.documents:
            raise InvalidRequest(" ".join(reading.problems) or NOTHING_TO_SUMMARIZE)
        sources = document_sources(reading.documents, datetime.now(UTC))
        summary = await self.summarizer.summarize(sources, dialect=dialect, subject="document")
        notes = [*reading.problems, *(f"{d.name}: {d.note}." for d in reading.documents if d.note)]
        if reading.unseen:
            notes.append("I summarize documents, not images.")
        if not notes:
            return summary
        return replace(summary, text="".join(note(n, dialect) for n in notes) + summary.text)

    async def stream_with_images(
        self,
        messages: Sequence[ChatMessage],
        images: tuple[str, ...],
        dialect: str | None,
        parts: list[str],
    ) -> AsyncGenerator[str, None]:
        """The model's answer, images attached to the last message; in auto vision mode, a model
        that refuses images is asked again without them (parts collects the model's text)."""
        if images:
            last = messages[-1]
            try:
                with_images = [*messages[:-1], replace(last, images=images)]
                limit = self.config.max_answer_tokens
                async with streaming(self.model, with_images, max_tokens=limit) as stream:
                    async for delta in stream:
                        parts.append(delta)
                        yield delta
                return
            except ImagesRefused:
                if self.vision != "auto" or parts:
                    raise
                yield note(self.without_images(), dialect or self.config.dialect)
            unseen = last.content.replace(
                "attached below", "not shown: this model cannot see images"
            )
            messages = [*messages[:-1], replace(last, content=unseen)]
        limit = self.config.max_answer_tokens
        async with streaming(self.model, messages, max_tokens=limit) as stream:
            async for delta in stream:
                parts.append(delta)
                yield delta
