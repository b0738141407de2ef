"""The chat-model port: what the core needs from any OpenAI-style model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.usage.tally import note_spent

ChatRole = Literal["system", "user", "assistant"]
Purpose = Literal["answer", "fold", "summary", "chunk"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: ChatRole
    content: str
    images: tuple[str, ...] = ()  # data: URLs shown with a user message, for models that see


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when the server never sent its usage chunk


class UsageMeter:
    """Running totals of what the model was asked and answered, for logs and benchmarks."""

    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.estimated_calls = 0
        self.last: Usage | None = None

    def record(self, usage: Usage, model: str = "") -> None:
        """Count a finished call, and add it to the request's tally (bot.usage.tally)."""
        note_spent(model, usage.prompt_tokens, usage.completion_tokens, usage.estimated)
        self.calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.estimated_calls += usage.estimated
        self.last = usage


class ChatModel(Protocol):
    """Streams a reply as text deltas; raises only `bot.errors.ModelError` subclasses."""

    usage: UsageMeter

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        purpose: Purpose = "answer",
    ) -> AsyncIterator[str]: ...


@asynccontextmanager
async def streaming(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int | None = None,
    purpose: Purpose = "answer",
) -> AsyncIterator[AsyncIterator[str]]:
    """`model.stream`, closed as the block ends however it ends: a call stopped midway (the
    question deleted, the bot stopping) ends now, and its tokens are counted to its request."""
    stream = model.stream(messages, max_tokens=max_tokens, purpose=purpose)
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


async def complete(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int | None = None,
    purpose: Purpose = "answer",
) -> str:
    """The whole reply at once, for calls nobody watches stream (folding, summaries)."""
    async with streaming(model, messages, max_tokens=max_tokens, purpose=purpose) as stream:
        return "".join([d async for d in stream])
