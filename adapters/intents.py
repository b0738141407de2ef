"""Words that turn a mention into a command instead of a question, on every platform."""

from __future__ import annotations

from enum import Enum


class Route(Enum):
    """What the bot does with a message."""

    ANSWER = "answer"
    OBSERVE = "observe"  # remember it, do not answer
    SUMMARIZE = "summarize"
    FORGET = "forget"
    IGNORE = "ignore"


COMMAND_WORDS = {
    "summarize": "summarize",
    "summarise": "summarize",
    "summary": "summarize",
    "tldr": "summarize",
    "forget": "forget",
    "reset": "forget",
}


def command_in(text: str) -> str | None:
    """ "summarize" or "forget" when the whole message (mention removed) is such a word."""
    return COMMAND_WORDS.get(text.strip().strip(".!?").lower())
