"""Summaries of a conversation through the chat model.

This is the single-call summarizer: it covers the thread's rolling summary and as many of its
newest turns as fit one prompt, and says so when it could not cover everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.chat_model import ChatMessage, ChatModel, complete
from bot.conversation import ThreadState, Turn
from bot.prompt import render_turn, truncate_to_tokens, turn_tokens
from bot.tokens import MESSAGE_OVERHEAD, TokenCounter

SUMMARY_INSTRUCTIONS = """\
Summarize the conversation below for a teammate who missed it. Use this shape, leaving out any \
section that would be empty:
the gist in one or two sentences;
Key points;
Decisions;
Open questions;
Action items, each with its owner's name as written in the conversation.
Use only what the conversation says; never invent names, dates or facts. Write in the language \
the conversation is mostly in, unless asked otherwise. Format with {dialect}."""

EMPTY_THREAD = "There is nothing to summarize here yet."


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    covered: int  # turns the model saw verbatim
    total: int  # turns memory held


class Summarizer:
    def __init__(self, model: ChatModel, counter: TokenCounter, *, budget: int, answer_tokens: int):
        self._model = model
        self._counter = counter
        self._budget = budget
        self._answer_tokens = answer_tokens

    def transcript(self, turns: Sequence[Turn], bot_name: str) -> tuple[list[str], int]:
        """The newest turns as lines that fit the budget, oldest first, and how many fit."""
        lines: list[str] = []
        used = 0
        room = self._budget - 600  # instructions, summary header, reply priming
        for turn in reversed(turns):
            line = f"{bot_name}: {turn.text}" if turn.role == "assistant" else render_turn(turn)
            cost = turn_tokens(self._counter, turn) + MESSAGE_OVERHEAD
            if used + cost > room:
                break
            lines.append(line)
            used += cost
        lines.reverse()
        return lines, len(lines)

    async def summarize(
        self, state: ThreadState, *, bot_name: str, dialect: str = "markdown"
    ) -> Summary:
        if not state.turns and not state.summary:
            return Summary(EMPTY_THREAD, 0, 0)
        lines, covered = self.transcript(state.turns, bot_name)
        parts = []
        if state.summary:
            earlier = truncate_to_tokens(self._counter, state.summary, self._budget // 6)
            parts.append(f"Summary of the earlier part:\n{earlier}\n")
        if covered < len(state.turns):
            parts.append(f"({len(state.turns) - covered} older messages are left out.)\n")
        parts.append("Conversation:\n" + "\n".join(lines))
        prompt = [
            ChatMessage("system", SUMMARY_INSTRUCTIONS.format(dialect=dialect)),
            ChatMessage("user", "\n".join(parts)),
        ]
        text = await complete(
            self._model, prompt, max_tokens=self._answer_tokens, purpose="summary"
        )
        return Summary(text.strip(), covered, len(state.turns))
