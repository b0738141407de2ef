"""Prompt planning is pure arithmetic over token counts; tested without any I/O."""

from __future__ import annotations

from datetime import date

from bot.conversation import Turn
from bot.prompt import plan_prompt, system_prompt, truncate_to_tokens, turns_to_fold
from bot.tokens import EstimatingCounter, count_prompt

COUNTER = EstimatingCounter()


def user(text: str, name: str = "Alice") -> Turn:
    return Turn(role="user", text=text, author_name=name)


def test_everything_fits_when_small() -> None:
    history = [user("hi"), Turn(role="assistant", text="hello")]
    plan = plan_prompt(
        COUNTER, system="sys", summary="", history=history, new=user("how?"), budget=500
    )
    assert plan.overflow == () and plan.kept == 2
    assert [m.role for m in plan.messages] == ["system", "user", "assistant", "user"]
    assert plan.tokens == count_prompt(COUNTER, [m.content for m in plan.messages])


def test_oldest_turns_overflow_and_budget_holds() -> None:
    history = [user(f"message number {n} " * 20) for n in range(50)]
    plan = plan_prompt(
        COUNTER, system="sys", summary="old stuff", history=history, new=user("q"), budget=1000
    )
    assert 0 < plan.kept < 50
    assert plan.overflow == tuple(history[: 50 - plan.kept])
    assert count_prompt(COUNTER, [m.content for m in plan.messages]) <= plan.tokens <= 1000
    assert plan.messages[1].content.endswith("old stuff")


def test_summary_is_capped() -> None:
    plan = plan_prompt(
        COUNTER,
        system="s",
        summary="fact " * 5000,
        history=[],
        new=user("q"),
        budget=2000,
        summary_limit=100,
    )
    assert COUNTER.count(plan.messages[1].content) <= 130


def test_truncation_respects_the_limit() -> None:
    text = "한국어 문장입니다. " * 500
    short = truncate_to_tokens(COUNTER, text, 200)
    assert COUNTER.count(short) <= 200 and short.endswith("shortened to fit]")


def test_fold_keeps_the_newest_under_the_low_water_mark() -> None:
    history = [user("x " * 40) for _ in range(20)]
    folded = turns_to_fold(COUNTER, history, keep_tokens=200)
    kept = history[len(folded) :]
    assert folded == tuple(history[: len(folded)]) and kept
    assert sum(COUNTER.count("Alice: " + t.text) + 4 for t in kept) <= 200


def test_system_prompt_template_placeholders() -> None:
    text = system_prompt(
        "I am {bot_name}; today is {today}.", bot_name="Ava", today=date(2026, 1, 2)
    )
    assert text == "I am Ava; today is Friday 02 January 2026."
