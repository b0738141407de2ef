from __future__ import annotations

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
