"""Words that turn a mention into a command instead of a question, on every platform."""

from __future__ import annotations

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
