from __future__ import annotations

import pytest

from adapters.rendering import split_message


def fences_balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.split("\n") if line.strip().startswith("```")) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("hello", 100) == ["hello"]
    assert split_message("", 100) == []


def test_splits_at_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {n}. " + "word " * 30 for n in range(10)]
    chunks = split_message("\n\n".join(paragraphs), 400)
    assert all(len(c) <= 400 for c in chunks)
    assert all(c.startswith("Paragraph") for c in chunks)  # every break fell between paragraphs
    assert " ".join(" ".join(chunks).split()) == " ".join(" ".join(paragraphs).split())


def test_code_block_is_closed_and_reopened_across_messages() -> None:
    code = "\n".join(f"    line_{n} = compute({n})" for n in range(80))
    text = f"Here is the code:\n\n```python\n{code}\n```\n\nThat is all."
    chunks = split_message(text, 500)
    assert len(chunks) > 2
    assert all(len(c) <= 500 for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    assert all(c.startswith("```python") for c in chunks[1:-1])
    body = "\n".join(chunks)
    assert all(f"line_{n} = compute({n})" in body for n in range(80))


def test_a_huge_line_is_broken_at_spaces() -> None:
    chunks = split_message("word " * 2000, 300)
    assert all(len(c) <= 300 for c in chunks)
    assert sum(c.count("word") for c in chunks) == 2000


@pytest.mark.parametrize("limit", [50, 120, 2000, 3900])
def test_nothing_is_lost_at_any_limit(limit: int) -> None:
    text = "Intro line\n\n```js\nconst a = 1;\nconst b = 2;\n```\n\n" * 30 + "- a\n- b\n" * 40
    chunks = split_message(text, limit)
    assert all(len(c) <= limit for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    joined = "\n".join(chunks)
    assert joined.count("const a = 1;") == 30 and joined.count("- b") == 40
