"""Render and split compose, for any Markdown a model may write (hypothesis).

For Slack (Markdown -> mrkdwn -> messages of 3,900) and Discord (Markdown -> messages of 2,000),
and at small limits too: every message fits, every message's fences are balanced, no grapheme is
split, and nothing is lost, repeated or reordered.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.rendering import blocks, graphemes, opens_fence, split_message
from adapters.slack.mrkdwn import ZERO_WIDTH, to_mrkdwn

# Pieces that stress rendering: CJK, Hangul jamo, ZWJ emoji, flags, combining marks, mrkdwn
# specials and would-be pings.
TRICKY = ["한국어", "\u1100\u1161\u11a8", "👨\u200d👩\u200d👧", "🇰🇷", "e\u0301", "中文字",
          "<!channel>", "&", "<@U1>", "**", "_", "~", "`x`", "@here", "#", "|"]  # fmt: skip
WORD = st.one_of(
    st.text(alphabet="abcdefghij ", min_size=1, max_size=12),
    st.sampled_from(TRICKY),
)
LINE = st.lists(WORD, max_size=12).map("".join)
LONG_LINE = st.lists(WORD, min_size=50, max_size=600).map("".join)
LANGUAGE = st.sampled_from(["", "python", "js", "rust", "c++", "sh"])


@st.composite
def code_block(draw: st.DrawFn) -> str:
    marks = draw(st.sampled_from(["```", "````", "~~~"]))
    body = draw(st.lists(st.one_of(LINE, LONG_LINE), max_size=150))
    if marks == "````" and draw(st.booleans()):  # a fence shown inside a longer fence
        body = [*body[:3], "```", *body[3:6], "```", *body[6:]]
    return "\n".join([marks + draw(LANGUAGE), *body, marks])


TABLE = st.lists(st.tuples(LINE, LINE), min_size=1, max_size=6).map(
    lambda rows: "\n".join(["| a | b |", "|:---|---:|", *(f"| {x} | {y} |" for x, y in rows)])
)
LIST = st.lists(LINE, min_size=1, max_size=20).map(lambda items: "\n".join(f"- {i}" for i in items))
BLOCK = st.one_of(LINE, LONG_LINE, code_block(), TABLE, LIST)
MARKDOWN = st.lists(BLOCK, min_size=1, max_size=12).map("\n\n".join)


def content(text: str) -> str:
    """What a reader sees, fence lines and whitespace aside (split adds and moves only those)."""
    kept = [line for line in text.replace(ZERO_WIDTH, "").split("\n") if opens_fence(line) is None]
    return "".join("".join(kept).split())


def balanced(chunk: str) -> bool:
    return all(b.closed for b in blocks(chunk))


def check(source: str, chunks: list[str], limit: int) -> None:
    assert all(len(c) <= limit for c in chunks), max(len(c) for c in chunks)
    assert all(balanced(c) for c in chunks)
    assert content("\n".join(chunks)) == content(source)  # nothing lost, repeated or reordered
    whole = set(graphemes(source)) | {"\n"}
    for chunk in chunks:
        assert set(graphemes(chunk)) <= whole, "a grapheme cluster was split"


fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(MARKDOWN)
def test_slack_render_then_split(markdown: str) -> None:
    rendered = to_mrkdwn(markdown)
    check(rendered, split_message(rendered, 3900), 3900)


@fast
@given(MARKDOWN)
def test_discord_split(markdown: str) -> None:
    check(markdown, split_message(markdown, 2000), 2000)


@fast
@given(MARKDOWN, st.integers(min_value=60, max_value=400))
def test_split_at_small_limits(markdown: str, limit: int) -> None:
    check(markdown, split_message(markdown, limit), limit)
    rendered = to_mrkdwn(markdown)
    check(rendered, split_message(rendered, limit), limit)


def test_long_code_on_slack_repeats_no_line() -> None:
    code = "\n".join(f"line_{n} = {n}" for n in range(200))
    rendered = to_mrkdwn(f"Here:\n\n```python\n{code}\n```\n\nDone.")
    chunks = split_message(rendered, 500)
    lines = [line for c in chunks for line in c.split("\n") if line.startswith("line_")]
    assert lines == [f"line_{n} = {n}" for n in range(200)]  # each once, in order
    assert all(balanced(c) for c in chunks)


def test_a_fence_inside_a_longer_fence_stays_code() -> None:
    text = "````md\n" + "\n".join(["```python", "x = 1", "```"] * 60) + "\n````\nafter"
    chunks = split_message(text, 300)
    assert all(len(c) <= 300 and balanced(c) for c in chunks)
    assert all(c.startswith("````") for c in chunks[1:-1])  # reopened with the outer marks


@fast
@given(st.lists(st.tuples(LINE, LINE), min_size=1, max_size=8))
def test_a_slack_table_keeps_every_cell_in_aligned_columns(rows: list[tuple[str, str]]) -> None:
    rows = [(x.replace("|", "").replace("`", ""), y.replace("|", "").replace("`", ""))
            for x, y in rows]  # fmt: skip
    table = "\n".join(["| a | b |", "|---|---|", *(f"| {x} | {y} |" for x, y in rows)])
    rendered = to_mrkdwn(table)
    lines = rendered.split("\n")
    assert lines[0] == "```" and lines[-1] == "```" and len(lines) == len(rows) + 4
    width = lines[2].index("+") - 1  # the rule is "-" * width + "-+-" + …
    for line, (x, _) in zip(lines[3:-1], rows, strict=True):
        cell = line.partition(" |")[0].replace("&lt;", "<").replace("&gt;", ">")
        cell = cell.replace("&amp;", "&")  # as Slack shows it
        assert _columns(cell) == width  # the first column is padded to one width
        assert cell.strip() == (x.replace("**", "").replace("__", "").strip())


def _columns(text: str) -> int:
    import unicodedata

    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )
