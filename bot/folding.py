"""The rolling summary: older turns folded into a short text kept with the thread, when a
prompt would not fit its budget otherwise. `Folder` plans an answer's prompt and folds when it
must; the engine holds one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

from bot.chat_model import ChatMessage, ChatModel, complete
from bot.conversation import ThreadRef, Turn
from bot.engine_config import EngineConfig
from bot.errors import ModelError
from bot.prompt import (
    PromptPlan,
    plan_prompt,
    render_turn,
    system_prompt,
    turn_tokens,
    turns_to_fold,
)
from bot.store.memory.base import ThreadMemory
from bot.tokens import MESSAGE_OVERHEAD, TokenCounter

log = logging.getLogger(__name__)

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


class Folder:
    def __init__(
        self,
        memory: ThreadMemory,
        model: ChatModel,
        counter: TokenCounter,
        config: EngineConfig,
        today: Callable[[], date],
    ) -> None:
        self.memory = memory
        self.model = model
        self.counter = counter
        self.config = config
        self._today = today

    async def plan(
        self,
        thread: ThreadRef,
        summary: str,
        history: list[Turn],
        new: Turn,
        dialect: str | None,
        *,
        reserve: int = 0,
    ) -> PromptPlan:
        system = system_prompt(
            self.config.system_prompt,
            bot_name=self.config.bot_name,
            today=self._today(),
            dialect=dialect or self.config.dialect,
        )
        budget = self.config.max_prompt_tokens - reserve  # images sent with the new message
        plan = plan_prompt(
            self.counter,
            system=system,
            summary=summary,
            history=history,
            new=new,
            budget=budget,
            summary_limit=self.config.summary_tokens,
        )
        if not plan.overflow:
            return plan
        folded = turns_to_fold(self.counter, history, keep_tokens=self.config.keep_tokens)
        try:
            summary = await self._fold(thread, summary, folded)
        except ModelError as exc:
            # Answering matters more than folding: send what fits, fold next time.
            log.warning("could not fold %d turns of %s: %s", len(folded), thread, exc)
            return plan
        rest = history[len(folded) :]
        return plan_prompt(
            self.counter,
            system=system,
            summary=summary,
            history=rest,
            new=new,
            budget=budget,
            summary_limit=self.config.summary_tokens,
        )

    async def _fold(self, thread: ThreadRef, summary: str, turns: Sequence[Turn]) -> str:
        # Fold in batches that each fit a prompt, carrying the summary from one to the next.
        limit = self.config.max_prompt_tokens - 2 * self.config.summary_tokens
        batch: list[Turn] = []
        weight = 0
        for turn in turns:
            cost = turn_tokens(self.counter, turn) + MESSAGE_OVERHEAD
            if batch and weight + cost > limit:
                summary = await self._fold_batch(summary, batch)
                batch, weight = [], 0
            batch.append(turn)
            weight += cost
        if batch:
            summary = await self._fold_batch(summary, batch)
        await self.memory.fold(thread, summary, turns[-1])
        log.info("folded %d turns of %s into its summary", len(turns), thread)
        return summary

    async def _fold_batch(self, summary: str, batch: Sequence[Turn]) -> str:
        folded = await fold_turns(
            self.model,
            summary,
            batch,
            bot_name=self.config.bot_name,
            max_tokens=self.config.summary_tokens,
        )
        return folded or summary
