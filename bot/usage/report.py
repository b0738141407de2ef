"""What people read about usage: the sentence when a limit is reached, and /usage: the asker's
tokens and cost today and this month, their limit and what is left, what each model cost; for
admins, the workspace's totals and its top channels and users."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from bot.usage.ledger import Breakdown, LimitName, Limits, Refusal, UsageTotals
from bot.usage.prices import Prices, cost, money

TOP = 5


def until_reset(now: datetime) -> str:
    """How long until the next UTC midnight, in a person's terms: "3 h", "25 min"."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    minutes = max(1, math.ceil((midnight - now).total_seconds() / 60))
    return f"{math.ceil(minutes / 60)} h" if minutes > 90 else f"{minutes} min"


def refusal_sentence(refusal: Refusal, now: datetime) -> str:
    whose = {
        "user": ("You have", "your"),
        "channel": ("This channel has", "its"),
        "workspace": ("This workspace has", "its"),
    }[refusal.limit]
    reset = f"it resets at midnight UTC, in {until_reset(now)}"
    if refusal.used >= refusal.allowed:
        return (
            f"{whose[0]} used {whose[1]} daily limit of {refusal.allowed:,} tokens "
            f"({refusal.used:,} used today), so I cannot answer; {reset}."
        )
    return (
        f"{whose[0]} used {refusal.used:,} of {whose[1]} daily limit of {refusal.allowed:,} "
        f"tokens and answers in progress hold the rest; try again when they finish ({reset})."
    )


def _cost(prices: Prices, breakdown: Breakdown) -> float | None:
    """The money `breakdown` cost; None if no model in it has a price."""
    costs = [cost(prices, m, t.input, t.output) for m, t in breakdown.items()]
    known = [c for c in costs if c is not None]
    return sum(known) if known else None


def _amount(prices: Prices, breakdown: Breakdown) -> str:
    tokens = sum(t.tokens for t in breakdown.values())
    spent = _cost(prices, breakdown)
    return f"{tokens:,} tokens" + (f" ({money(spent)})" if spent is not None else "")


def _models(prices: Prices, breakdown: Breakdown) -> str:
    ranked = sorted(breakdown.items(), key=lambda item: -item[1].tokens)
    parts = []
    for model, tokens in ranked:
        spent = cost(prices, model, tokens.input, tokens.output)
        shown = f" = {money(spent)}" if spent is not None else ""
        parts.append(f"{model} {tokens.input:,} in / {tokens.output:,} out{shown}")
    return "; ".join(parts)


def _top(prices: Prices, by: Mapping[str, Breakdown], label: Callable[[str], str]) -> list[str]:
    ranked = sorted(by.items(), key=lambda item: -sum(t.tokens for t in item[1].values()))
    return [f"  {n}. {label(key)}: {_amount(prices, b)}" for n, (key, b) in
            enumerate(ranked[:TOP], 1)]  # fmt: skip


def usage_report(
    *,
    user: str,
    channel: str,
    today: UsageTotals,
    month: UsageTotals,
    limits: Limits,
    prices: Prices,
    now: datetime,
    admin: bool = False,
    channel_label: Callable[[str], str] = str,
    name_label: Callable[[str], str] = str,
) -> str:
    """`channel_label` shows a channel id as the platform links it; `name_label` makes a
    person's display name (their own text) safe to show."""
    mine_today = today.users.get(user, {})
    mine_month = month.users.get(user, {})
    lines = [
        f"Your usage today: {_amount(prices, mine_today)}; "
        f"this month: {_amount(prices, mine_month)}."
    ]
    spent_today: dict[LimitName, int] = {
        "user": sum(t.tokens for t in mine_today.values()),
        "channel": sum(t.tokens for t in today.channels.get(channel, {}).values()),
        "workspace": today.tokens,
    }
    reset = f"resets at midnight UTC, in {until_reset(now)}"
    if admin:
        lines.append("You are an admin: no limit applies to you.")
    elif limits.user:
        left = max(0, limits.user - spent_today["user"])
        lines.append(f"Your daily limit: {limits.user:,} tokens; {left:,} left today ({reset}).")
    else:
        lines.append("You have no daily limit.")
    shared: list[tuple[LimitName, int, str]] = [
        ("channel", limits.channel, "This channel"),
        ("workspace", limits.workspace, "This workspace"),
    ]
    for name, allowed, whose in shared:
        if allowed and not admin:
            left = max(0, allowed - spent_today[name])
            lines.append(f"{whose}'s daily limit: {allowed:,} tokens; {left:,} left today.")
    if mine_month:
        lines.append(f"Your models this month: {_models(prices, mine_month)}.")
    if not prices:
        lines.append("No prices are set (BOT_PRICES), so usage is shown in tokens only.")
    else:
        unpriced = sorted(m for m in (month.models if admin else mine_month) if m not in prices)
        if unpriced:
            lines.append(f"No price is set for {', '.join(unpriced)}; counted in tokens only.")
    if admin:
        lines.append(
            f"This workspace today: {_amount(prices, today.models)}; "
            f"this month: {_amount(prices, month.models)}."
        )
        if month.models:
            lines.append(f"By model this month: {_models(prices, month.models)}.")
        if month.channels:
            lines.append("Top channels this month:")
            lines += _top(prices, month.channels, channel_label)
        if month.users:
            lines.append("Top users this month:")
            lines += _top(prices, month.users, lambda u: name_label(month.names.get(u) or u))
    if month.estimated_calls:
        lines.append(
            f"({month.estimated_calls:,} model calls this month were counted by me: the model "
            "server did not report their usage.)"
        )
    return "\n".join(lines)
