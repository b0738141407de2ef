"""`BOT_PRICES`: what a model costs per million input and output tokens. No built-in list: prices
change, and a wrong price shown with confidence is worse than tokens alone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.errors import ConfigError

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_ENTRY = re.compile(rf"^\s*([^=,\s][^=,]*?)\s*=\s*{_NUMBER}\s*/\s*{_NUMBER}\s*$")
EXAMPLE = "gpt-4o-mini=0.15/0.60,gpt-4o=2.50/10"


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # per million prompt tokens
    output: float  # per million completion tokens

    def of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


Prices = Mapping[str, Price]


def parse_prices(text: str | None, variable: str = "BOT_PRICES") -> dict[str, Price]:
    """`model=input/output,...` in money per million tokens; empty means no prices."""
    prices: dict[str, Price] = {}
    for raw in (text or "").split(","):
        if not raw.strip():
            continue
        match = _ENTRY.match(raw)
        if match is None:
            raise ConfigError(
                variable,
                f"cannot read {raw.strip()!r}; write model=input/output per million tokens, "
                f"e.g. {EXAMPLE}",
            )
        model, given_in, given_out = match.groups()
        if model in prices:
            raise ConfigError(variable, f"names {model!r} twice")
        prices[model] = Price(float(given_in), float(given_out))
    return prices


def cost(prices: Prices, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The money spent, or None when the model has no price."""
    price = prices.get(model)
    return price.of(prompt_tokens, completion_tokens) if price is not None else None


def money(amount: float) -> str:
    """$1.23 once it is worth a cent, $0.0042 below, <$0.0001 for less."""
    if amount >= 0.01 or amount == 0:
        return f"${amount:,.2f}"
    return f"${amount:.4f}" if amount >= 0.0001 else "<$0.0001"
