from __future__ import annotations

import pytest

from bot.errors import InvalidRequest
from bot.summaries.windows import Window, parse_summary_args


@pytest.mark.parametrize(
    ("text", "window", "public"),
    [
        ("", Window(seconds=86_400), False),
        ("2h", Window(seconds=7200), False),
        ("3d public", Window(seconds=3 * 86_400), True),
        ("public 200", Window(seconds=None, count=200), True),
        ("30m", Window(seconds=1800), False),
        ("1w", Window(seconds=604_800), False),
    ],
)
def test_good_arguments(text: str, window: Window, public: bool) -> None:
    request = parse_summary_args(text)
    assert request.window == window and request.public is public


@pytest.mark.parametrize("text", ["yesterday", "0", "99999", "2h 3d", "45d", "5s", "-3h"])
def test_bad_arguments_get_the_usage_line(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_summary_args(text)
    assert "Usage: /summarize" in caught.value.user_message()


def test_descriptions() -> None:
    assert Window(seconds=7200).describe() == "the last 2 hours"
    assert Window(seconds=86_400).describe() == "the last 1 day"
    assert Window(seconds=None, count=50).describe() == "the last 50 messages"
    assert Window(seconds=90 * 60).describe() == "the last 90 minutes"
