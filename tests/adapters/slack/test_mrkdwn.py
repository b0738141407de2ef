from __future__ import annotations

import pytest

from adapters.slack.mrkdwn import ZERO_WIDTH, to_mrkdwn


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("*italic* and _too_", "_italic_ and _too_"),
        ("~~gone~~", "~gone~"),
        ("# Title\ntext", "*Title*\ntext"),
        ("### Sub **part**", "*Sub part*"),
        ("[docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&c=2|docs>"),
        ("- one\n- two\n  * nested", "• one\n• two\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted", "> quoted"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("---", "———"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_code_is_left_as_written_but_escaped() -> None:
    text = (
        "Run `a **b** <c>` then:\n```python\nif x < 2 and **kw:\n    print('# not a heading')\n```"
    )
    assert to_mrkdwn(text) == (
        "Run `a **b** &lt;c&gt;` then:\n"
        "```\nif x &lt; 2 and **kw:\n    print('# not a heading')\n```"
    )


@pytest.mark.parametrize(
    "ping", ["<!channel>", "<!here>", "<!everyone>", "<!subteam^S123>", "<@U123ABC>", "<#C123>"]
)
def test_special_mentions_from_the_model_are_inert(ping: str) -> None:
    rendered = to_mrkdwn(f"hey {ping} look")
    assert "<" not in rendered and "&lt;" in rendered


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel"])
def test_broadcast_words_are_broken(word: str) -> None:
    rendered = to_mrkdwn(f"Attention {word}!")
    assert word not in rendered and f"@{ZERO_WIDTH}" in rendered


def test_unsafe_link_schemes_lose_their_link() -> None:
    assert to_mrkdwn("[click](javascript:alert)") == "click"
    assert to_mrkdwn("[x](slack://open)") == "x"


def test_a_markdown_table_becomes_an_aligned_block() -> None:
    # the shape GPT-4 answers use: a header, a rule with alignment marks, bold and code in cells
    markdown = (
        "Here are the numbers:\n\n"
        "| Region | Q1 | **Owner** |\n|:---|---:|---|\n| EU | 1,200 | Mina |\n"
        "| 한국 | 30 | `kim` |\n\nDone."
    )
    assert to_mrkdwn(markdown) == (
        "Here are the numbers:\n\n```\nRegion | Q1    | Owner\n-------+-------+------\n"
        "EU     | 1,200 | Mina\n한국   | 30    | kim\n```\n\nDone."
    )


def test_pipes_that_are_not_a_table_stay_prose() -> None:
    assert to_mrkdwn("use a | b to pipe\nand c | d") == "use a | b to pipe\nand c | d"
    rendered = to_mrkdwn("| x | <!here> |\n|---|---|\n| 1 | 2 |")
    assert "<!here>" not in rendered and "&lt;!here&gt;" in rendered  # inert inside tables too
