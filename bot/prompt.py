"""Building the prompt: the system prompt, the thread's summary and as many recent turns as fit.

Pure functions: no I/O, so the budget arithmetic is tested directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.chat_model import ChatMessage, ChatRole
from bot.conversation import Turn
from bot.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, TokenCounter

DEFAULT_SYSTEM_PROMPT = """\
You are {bot_name}, an assistant taking part in a team chat. Today is {today}.
Several people may write in one conversation; each of their messages starts with the author's \
name and a colon. Answer the latest message, using the conversation for context.
Be concise and concrete. When you do not know something or are unsure, say so plainly instead \
of guessing.
Always answer in the language the latest message is written in (a question in Korean gets an \
answer in Korean), unless you are asked to use another language.
Format with {dialect}."""

DIALECTS = {
    "markdown": "Markdown (bold, lists, code blocks); no tables or HTML",
    "plain": "plain text only",
}

TRUNCATION_NOTE = "\n[… message shortened to fit]"


def system_prompt(
    template: str | None, *, bot_name: str, today: date, dialect: str = "markdown"
) -> str:
    """The configured template (or the default) with {bot_name}, {today} and {dialect} filled."""
    text = template or DEFAULT_SYSTEM_PROMPT
    values = {
        "bot_name": bot_name,
        "today": today.strftime("%A %d %B %Y"),
        "dialect": DIALECTS.get(dialect, DIALECTS["markdown"]),
    }
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def render_turn(turn: Turn) -> str:
    if turn.role == "assistant":
        return turn.text
    return f"{turn.author_name or turn.author_id or 'someone'}: {turn.text}"


def turn_tokens(counter: TokenCounter, turn: Turn) -> int:
    return turn.tokens or counter.count(render_turn(turn))


def _merge(messages: list[ChatMessage]) -> list[ChatMessage]:
    # Many local chat templates (Mistral, Llama) reject two user messages in a row.
    merged: list[ChatMessage] = []
    for message in messages:
        if merged and merged[-1].role == message.role and message.role != "system":
            merged[-1] = ChatMessage(message.role, merged[-1].content + "\n" + message.content)
        else:
            merged.append(message)
    return merged


def truncate_to_tokens(counter: TokenCounter, text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` tokens (by bisection on characters)."""
    if counter.count(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if counter.count(text[:middle]) + counter.count(TRUNCATION_NOTE) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low] + TRUNCATION_NOTE


@dataclass(frozen=True, slots=True)
class PromptPlan:
    messages: tuple[ChatMessage, ...]
    tokens: int  # estimated size of `messages`, never above the budget
    kept: int  # how many of the newest history turns are in the prompt
    overflow: tuple[Turn, ...]  # older turns left out: to be folded into the summary


def plan_prompt(
    counter: TokenCounter,
    *,
    system: str,
    summary: str,
    history: Sequence[Turn],
    new: Turn,
    budget: int,
    summary_limit: int | None = None,
) -> PromptPlan:
    """Fit system prompt, summary, newest history and the new message into `budget` tokens."""
    head = [ChatMessage("system", system)]
    if summary and summary_limit is not None:
        summary = truncate_to_tokens(counter, summary, summary_limit)
    if summary:
        head.append(
            ChatMessage("system", f"Summary of the earlier part of this conversation:\n{summary}")
        )
    used = REPLY_PRIMING + sum(counter.count(m.content) + MESSAGE_OVERHEAD for m in head)

    room_for_new = budget - used - MESSAGE_OVERHEAD
    new_text = render_turn(new)
    new_cost = turn_tokens(counter, new)
    if new_cost > room_for_new:
        new_text = truncate_to_tokens(counter, new_text, max(0, room_for_new))
        new_cost = counter.count(new_text)
    used += new_cost + MESSAGE_OVERHEAD

    kept: list[Turn] = []
    for turn in reversed(history):
        cost = turn_tokens(counter, turn) + MESSAGE_OVERHEAD
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    overflow = tuple(history[: len(history) - len(kept)])

    body: list[ChatMessage] = [ChatMessage(_role(t), render_turn(t)) for t in kept]
    body.append(ChatMessage("user", new_text))
    return PromptPlan(
        messages=tuple(head + _merge(body)), tokens=used, kept=len(kept), overflow=overflow
    )


def _role(turn: Turn) -> ChatRole:
    return "assistant" if turn.role == "assistant" else "user"


def turns_to_fold(
    counter: TokenCounter, history: Sequence[Turn], *, keep_tokens: int
) -> tuple[Turn, ...]:
    """The oldest turns to fold so the newest ones left weigh at most `keep_tokens`.

    Folding down to a low-water mark, not just the overflow, means the model is asked to fold
    once every many turns instead of on every turn once the budget is reached.
    """
    weight = 0
    keep = 0
    for turn in reversed(history):
        weight += turn_tokens(counter, turn) + MESSAGE_OVERHEAD
        if weight > keep_tokens:
            break
        keep += 1
    return tuple(history[: len(history) - keep])
