"""Citations resolved while an answer streams give exactly what resolving the whole answer
gives, however the model's text is cut into deltas."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.summaries.citations import Citer, CitingStream, labelled, uncited
from bot.summaries.sources import SourceMessage

SOURCES = labelled(
    [
        SourceMessage(f"1700000000.00000{i}", "Alice", f"message {i}",
                      datetime(2026, 11, 3, tzinfo=UTC), link=f"https://x.slack.com/p{i}")
        for i in range(1, 4)
    ]
)  # fmt: skip

PIECES = st.sampled_from(
    ["[m1]", "[m2]", "[m9]", " [m1, m3]", "[m2][m3]", "[", "m", "1", "]", " ", ",", "\n",
     "retry ", "the plan", ".", "[x]", "[see](u)", "[m", "[ m2 ]", "。"]
)  # fmt: skip


def stream(deltas: list[str], dialect: str = "markdown") -> tuple[str, CitingStream]:
    citing = CitingStream(SOURCES, dialect)
    return "".join(citing.feed(d) for d in deltas) + citing.finish(), citing


@given(st.lists(PIECES, max_size=30), st.sampled_from(["markdown", "plain"]))
def test_streamed_citations_equal_the_whole_answer_resolved(pieces: list[str], dialect: str):
    whole = Citer(SOURCES, dialect)
    expected = whole.sub("".join(pieces))
    shown, citing = stream(pieces, dialect)
    assert shown == expected
    assert citing.cited == whole.cited


@given(st.text(max_size=80), st.integers(min_value=1, max_value=5))
def test_any_text_in_any_cut_passes_through_unchanged_when_it_cites_nothing(text, size):
    text = text.replace("[", "(")  # no citation can form
    deltas = [text[i : i + size] for i in range(0, len(text), size)]
    assert stream(deltas)[0] == text


def test_a_sentence_is_shown_with_its_link_and_made_up_ids_are_dropped() -> None:
    shown, citing = stream(["We retry three", " times [m", "2]. Billing", " is Bob's [m7]."])
    assert shown == "We retry three times ([1](https://x.slack.com/p2)). Billing is Bob's."
    assert [s.message_id for s in citing.cited] == ["1700000000.000002"]


def test_text_waits_only_while_a_citation_may_be_forming() -> None:
    citing = CitingStream(SOURCES, "markdown")
    assert citing.feed("Decided [") == "Decided"
    assert citing.feed("x] ok") == " [x] ok"  # not a citation after all: passed on at once


def test_remembered_answers_keep_no_ids() -> None:
    assert uncited("We retry [m1][m2].\nDone [m3] now.") == "We retry.\nDone now."
