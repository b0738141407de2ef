"""What the engine is configured with: names, prompt and answer budgets, the dialect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineConfig:
    bot_name: str = "Assistant"
    system_prompt: str | None = None
    max_prompt_tokens: int = 8000
    max_answer_tokens: int = 1024
    dialect: str = "markdown"
    grounded: bool = True  # mentions and follow-ups are offered the channel's relevant messages

    @property
    def summary_tokens(self) -> int:
        """The rolling summary's own ceiling: a sixth of the prompt, at most 1,200 tokens."""
        return max(100, min(1200, self.max_prompt_tokens // 6))

    @property
    def keep_tokens(self) -> int:
        """How much recent history stays verbatim after a fold (the low-water mark)."""
        return self.max_prompt_tokens // 2
