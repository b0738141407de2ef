"""The rolling summary: older turns folded into a short text kept with the thread."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat_model import ChatMessage, ChatModel, complete
from bot.conversation import Turn
from bot.prompt import render_turn

FOLD_INSTRUCTIONS = """\
You keep the running summary of a chat conversation, so that it can go on after its older \
messages are removed. Merge the existing summary and the messages below into one updated \
summary. Keep every name, fact, number, decision, open question and commitment, and who said \
what when it matters; drop greetings and chit-chat. Write in the language the conversation is \
mostly in. At most {words} words. Reply with the summary only."""


def fold_prompt(
    summary: str, turns: Sequence[Turn], *, bot_name: str, words: int
) -> list[ChatMessage]:
    lines = [
        f"{bot_name} (assistant): {t.text}" if t.role == "assistant" else render_turn(t)
        for t in turns
    ]
    body = f"Existing summary:\n{summary or '(none yet)'}\n\nMessages to add:\n" + "\n".join(lines)
    return [
        ChatMessage("system", FOLD_INSTRUCTIONS.format(words=words)),
        ChatMessage("user", body),
    ]


async def fold_turns(
    model: ChatModel,
    summary: str,
    turns: Sequence[Turn],
    *,
    bot_name: str,
    max_tokens: int,
) -> str:
    """A new rolling summary covering `summary` and then `turns`."""
    words = max(50, max_tokens * 2 // 3)
    prompt = fold_prompt(summary, turns, bot_name=bot_name, words=words)
    text = await complete(model, prompt, max_tokens=max_tokens, purpose="fold")
    return text.strip()
