from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from bot.tokens import EstimatingCounter, load_counter


def test_estimate_counts_korean_heavier_than_english() -> None:
    counter = EstimatingCounter()
    english = "The meeting is at three o'clock tomorrow."
    korean = "회의는 내일 세 시에 있습니다."
    assert counter.count(korean) / len(korean) > counter.count(english) / len(english)


def test_estimate_overcounts_typical_english() -> None:
    # Real BPE encodings average about four characters per token on English prose.
    text = "Summaries should be short, accurate and written for people who missed the thread. " * 10
    assert counter_ratio(text) >= 1 / 4


def counter_ratio(text: str) -> float:
    return EstimatingCounter().count(text) / len(text)


def test_cjk_and_emoji_cost_at_least_a_token_per_character() -> None:
    counter = EstimatingCounter()
    for text in ("你好世界", "こんにちは", "안녕하세요", "🎉🚀"):
        assert counter.count(text) >= len(text)


def test_loading_never_downloads_and_falls_back_to_the_estimate(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache
    counter = load_counter("o200k_base")
    assert counter.name == "estimate"
    assert list(tmp_path.iterdir()) == []


# The estimate as its docstring states it, one regex match at a time: the counter must give the
# same figure however it computes it.
_PIECES = re.compile(
    r"(?P<cjk>[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff\uff00-\uffef])"
    r"|(?P<word>[A-Za-z]+)|(?P<digits>[0-9]+)|(?P<newline>\s*\n\s*)|(?P<spaces>[ \t]{2,})"
    r"|(?P<space>[ \t])|(?P<astral>[\U00010000-\U0010ffff])|(?P<other>.)",
    re.DOTALL,
)
_COST = {"cjk": 2, "space": 0, "astral": 3, "newline": 1, "other": 1}


def stated(text: str) -> int:
    total = 0
    for match in _PIECES.finditer(text):
        kind, piece = match.lastgroup, match.group()
        if kind in ("word", "digits"):
            total += math.ceil(len(piece) / 3)
        elif kind == "spaces":
            total += math.ceil(len(piece) / 4)
        else:
            total += _COST[str(kind)]
    return total


TEXTS = st.text(
    alphabet=st.sampled_from(list("ab Z09 \t\n\r.,-_é\u00a0\u3000你ぁ한🎉\U0001f680\x0b")),
    max_size=200,
) | st.text(max_size=200)


@given(TEXTS)
def test_the_count_is_the_estimate_its_docstring_states(text: str) -> None:
    assert EstimatingCounter().count(text) == stated(text)
