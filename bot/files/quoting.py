"""Documents quoted into a prompt within a token budget, saying what was left out. Pure.

Counting stops where the budget does, so a 5 MB log costs what its quoted part costs, not more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.files.documents import Document
from bot.prompt import truncate_to_tokens
from bot.tokens import TokenCounter

KIND_NAMES = {"pdf": "PDF", "docx": "Word document", "text": "text file"}
MIN_SHARE = 200  # a document squeezed below this many tokens is left out whole


@dataclass(frozen=True, slots=True)
class Quoted:
    text: str  # every document, each between a header and an end line
    tokens: int
    notes: tuple[str, ...]  # one per document only partly quoted, for the model and the user


def _header(document: Document) -> str:
    kind = KIND_NAMES.get(document.kind, "file")
    extra = f"; {document.note}" if document.note else ""
    return f'--- file "{document.name}" ({kind}, {document.describe()}{extra}) ---'


def quote_one(counter: TokenCounter, document: Document, budget: int) -> tuple[str, int, str]:
    """One document within `budget` tokens: (text, tokens, note on what was left out)."""
    header = _header(document)
    footer = f'--- end of "{document.name}" ---'
    used = counter.count(header) + counter.count(footer) + 2
    parts = [header]
    kept_chars = 0
    sections = document.sections
    index = 0
    for index, section in enumerate(sections):  # noqa: B007 (index is read after the loop)
        block = f"[{section.where}]\n{section.text}"
        cost = counter.count(block) + 1
        if used + cost <= budget:
            parts.append(block)
            used += cost
            kept_chars += len(section.text)
            continue
        room = budget - used - 1
        if room > 50:
            cut = truncate_to_tokens(counter, block, room)
            parts.append(cut)
            used += counter.count(cut) + 1
            kept_chars += max(0, len(cut) - len(section.where) - 3)
        break
    else:
        index = len(sections)
    parts.append(footer)
    note = ""
    if index < len(sections):
        total = max(1, document.chars)
        left = max(1, round(100 * (total - kept_chars) / total))
        first = sections[index].where
        last = sections[-1].where
        span = first if first == last else f"{first} to {last}"
        note = (
            f"{document.name} is too long to read whole: I read it up to {first}; "
            f"the rest ({span}, about {left}% of the text) was left out"
        )
        note += f", and {document.note}." if document.note else "."
    elif document.note:  # all that was read fits, but not all was read (pages past the cap)
        note = f"{document.name}: {document.note}."
    return "\n".join(parts), used, note


def quote_documents(counter: TokenCounter, documents: Sequence[Document], budget: int) -> Quoted:
    """Every document within `budget` tokens together; smaller ones first get what they need,
    and what they leave is shared among the larger ones."""
    order = sorted(range(len(documents)), key=lambda i: documents[i].chars)
    results: dict[int, tuple[str, int, str]] = {}
    left = budget
    for position, index in enumerate(order):
        share = left // (len(order) - position)
        document = documents[index]
        if share < MIN_SHARE:
            results[index] = ("", 0, f"{document.name} did not fit in what I can read at once.")
            continue
        results[index] = quote_one(counter, document, share)
        left -= results[index][1]
    texts = [results[i][0] for i in range(len(documents)) if results[i][0]]
    notes = tuple(results[i][2] for i in range(len(documents)) if results[i][2])
    tokens = sum(results[i][1] for i in range(len(documents)))
    return Quoted("\n\n".join(texts), tokens, notes)
