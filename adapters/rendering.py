"""Platform-neutral text rendering: code fences as Markdown defines them, and splitting long
answers into messages without breaking code blocks or characters.

A fence opens with three or more backticks or tildes and closes with a line of the same character
at least as long (so a ```` block may show ``` lines inside it). `split_message` closes a block
at a message break and reopens it in the next message; a break inside a line falls between
grapheme clusters (a family emoji, a Hangul syllable written as jamo, a flag stay whole).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

_FENCE_LINE = re.compile(r"^ {0,3}(?P<marks>`{3,}|~{3,})(?P<info>.*)$")
_GRAPHEME = regex.compile(r"\X")
MIN_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Fence:
    marks: str  # e.g. "```" or "````" or "~~~"
    info: str  # the language tag and anything after it, as written

    def closed_by(self, line: str) -> bool:
        stripped = line.strip()
        return (
            len(line) - len(line.lstrip(" ")) <= 3
            and len(stripped) >= len(self.marks)
            and set(stripped) == {self.marks[0]}
        )


def opens_fence(line: str) -> Fence | None:
    match = _FENCE_LINE.match(line)
    if match is None:
        return None
    marks, info = match.group("marks"), match.group("info")
    if marks[0] == "`" and "`" in info:
        return None  # inline code such as ```a``` is not a fence
    return Fence(marks, info.rstrip())


@dataclass(frozen=True, slots=True)
class Block:
    """A run of prose, or one fenced code block (`fence` set, `text` its body)."""

    text: str
    fence: Fence | None = None
    closed: bool = True


def blocks(markdown: str) -> list[Block]:
    """Markdown as prose and fenced code, in order; an unclosed fence runs to the end."""
    found: list[Block] = []
    prose: list[str] = []
    code: list[str] = []
    fence: Fence | None = None
    for line in markdown.split("\n"):
        if fence is None:
            opened = opens_fence(line)
            if opened is None:
                prose.append(line)
                continue
            if prose:
                found.append(Block("\n".join(prose)))
                prose = []
            fence, code = opened, []
        elif fence.closed_by(line):
            found.append(Block("\n".join(code), fence))
            fence = None
        else:
            code.append(line)
    if fence is not None:
        found.append(Block("\n".join(code), fence, closed=False))
    elif prose:
        found.append(Block("\n".join(prose)))
    return found


def graphemes(text: str) -> list[str]:
    return [str(cluster) for cluster in _GRAPHEME.findall(text)]


def _hard_split(line: str, limit: int) -> list[str]:
    """A line longer than `limit`: break at the last space that fits, else between graphemes."""
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = 0
            for cluster in graphemes(line[: limit + 8]):
                if cut + len(cluster) > limit:
                    break
                cut += len(cluster)
            cut = cut or limit  # one cluster longer than a message: nothing better exists
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ")
    pieces.append(line)
    return pieces


def split_message(text: str, limit: int) -> list[str]:
    """Split `text` into messages of at most `limit` characters.

    Breaks at a paragraph boundary where one is near, else at a line boundary, else at a space,
    else between graphemes. A break inside a fenced code block closes the fence and reopens it
    (same marks and language) in the next message; an unclosed fence is closed at the end, so
    every message's code renders on its own.
    """
    if limit < MIN_LIMIT:
        raise ValueError("limit too small to hold a code fence")
    if len(text) <= limit and not _unclosed(text):
        return [text] if text.strip() else []
    chunks: list[str] = []
    lines: list[str] = []  # the current chunk's lines
    size = 0
    fence: Fence | None = None  # the fence we are inside, if any
    last_paragraph = -1  # index in `lines` after which a blank line (outside code) allows a break

    def reopening(current: Fence) -> str:
        # a long info string is cut to its first word: the reopened line must stay small
        return current.marks + (current.info.split() or [""])[0][:16]

    def emit(upto: int) -> None:
        nonlocal lines, size, last_paragraph
        head, rest = lines[:upto], lines[upto:]
        inside = fence if upto == len(lines) else None
        body = "\n".join(head).strip("\n")
        if inside is not None:
            body += "\n" + inside.marks
        if body.strip():
            chunks.append(body)
        lines = ([reopening(inside)] if inside is not None else []) + rest
        while lines and not lines[0].strip() and inside is None:
            lines.pop(0)
        size = sum(len(line) + 1 for line in lines)
        last_paragraph = -1

    for raw in text.split("\n"):
        # a line must fit a message beside the reopened fence and its closing marks
        width = limit - 1
        if fence is not None:
            width -= len(reopening(fence)) + len(fence.marks) + 2
        opener = opens_fence(raw) if fence is None else None
        if opener is not None and len(raw) > width:
            raw = reopening(opener)  # an absurdly long info string: keep the language only
        for line in _hard_split(raw, max(MIN_LIMIT // 2, width)):
            opened = opens_fence(line) if fence is None else None
            closes = fence is not None and fence.closed_by(line)
            after = opened or (None if closes else fence)
            # room for this line plus the closing marks of a fence still open after it
            closing_cost = len(after.marks) + 1 if after is not None else 0
            if size + len(line) + 1 + closing_cost > limit and lines:
                if fence is None and last_paragraph > 0 and last_paragraph * 2 >= len(lines):
                    emit(last_paragraph)  # the last paragraph break keeps half the chunk
                if size + len(line) + 1 + closing_cost > limit and lines:
                    emit(len(lines))
            lines.append(line)
            size += len(line) + 1
            fence = after
            if fence is None and not line.strip():
                last_paragraph = len(lines)
    emit(len(lines))
    return chunks


def _unclosed(text: str) -> bool:
    return bool(text) and any(b.fence is not None and not b.closed for b in blocks(text))
