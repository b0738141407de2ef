"""Who pays for the request being handled, and what its model calls spent.

The engine opens a tally for each request (an answer, a summary) and every model call made while
it is open, wherever it is made (the answer, a fold, summary chunks in tasks of their own), adds
its tokens to it: the tally travels in a context variable, which tasks inherit."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Payer:
    """Whose budget a request spends: a person in a channel of a workspace."""

    platform: str
    workspace: str
    channel: str
    user: str
    name: str = ""

    @property
    def scope(self) -> str:
        return f"{self.platform}:{self.workspace}"


# A request's quotas and usage, held while its model calls run (bot.summaries.summarizing).
CountedTo = Callable[[Payer | None], AbstractAsyncContextManager[object]]


@dataclass(frozen=True, slots=True)
class Spent:
    model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # the server sent no usage; the bot counted

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Tally:
    payer: Payer
    spent: list[Spent] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.spent)

    def by_model(self) -> dict[str, Spent]:
        """One line per model, estimated if any of its calls was."""
        merged: dict[str, Spent] = {}
        for s in self.spent:
            was = merged.get(s.model)
            merged[s.model] = (
                s
                if was is None
                else Spent(
                    s.model,
                    was.prompt_tokens + s.prompt_tokens,
                    was.completion_tokens + s.completion_tokens,
                    was.estimated or s.estimated,
                )
            )
        return merged


_current: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("tally", default=None)


def note_spent(model: str, prompt_tokens: int, completion_tokens: int, estimated: bool) -> None:
    """A model call finished: add it to the open tally, if any (called by the model port)."""
    tally = _current.get()
    if tally is not None:
        tally.spent.append(Spent(model, prompt_tokens, completion_tokens, estimated))


@contextmanager
def open_tally(tally: Tally) -> Iterator[Tally]:
    token = _current.set(tally)
    try:
        yield tally
    finally:
        # closed from another context (a generator finalised elsewhere): nothing to undo there
        with contextlib.suppress(ValueError):
            _current.reset(token)
