"""Platform-neutral text rendering: splitting long answers without breaking code blocks."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)")


def _hard_split(line: str, limit: int) -> list[str]:
    """A single line longer than `limit`: break at the last space that fits, else anywhere."""
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ")
    pieces.append(line)
    return pieces


def split_message(text: str, limit: int) -> list[str]:
    """Split `text` into messages of at most `limit` characters.

    Breaks at a paragraph boundary where one is near, else at a line boundary, else at a space.
    A break inside a fenced code block closes the fence and reopens it (same language) in the
    next message, so every message renders its code correctly.
    """
    if limit < 20:
        raise ValueError("limit too small to hold a code fence")
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    lines: list[str] = []  # the current chunk's lines
    size = 0
    fence: str | None = None  # the opening line of the fence we are inside, if any
    last_paragraph = -1  # index in `lines` after which a blank line (outside code) allows a break

    def emit(upto: int) -> None:
        nonlocal lines, size, last_paragraph
        head, rest = lines[:upto], lines[upto:]
        body = "\n".join(head).strip("\n")
        reopen = None
        if fence is not None and upto == len(lines):
            body += "\n```"
            reopen = fence
        if body.strip():
            chunks.append(body)
        lines = ([reopen] if reopen else []) + [line for line in rest]
        while lines and not lines[0].strip() and reopen is None:
            lines.pop(0)
        size = sum(len(line) + 1 for line in lines)
        last_paragraph = -1

    for raw in text.split("\n"):
        for line in _hard_split(raw, limit - 8):
            opens_or_closes = bool(_FENCE.match(line))
            closing_cost = 4 if (fence is not None or opens_or_closes) else 0
            if size + len(line) + 1 + closing_cost > limit and lines:
                # Prefer the last paragraph break if it keeps at least half the chunk.
                if fence is None and last_paragraph > 0 and last_paragraph * 2 >= len(lines):
                    emit(last_paragraph)
                else:
                    emit(len(lines))
            lines.append(line)
            size += len(line) + 1
            if opens_or_closes:
                fence = None if fence is not None else line.strip()
            elif not line.strip() and fence is None:
                last_paragraph = len(lines)
    if fence is not None:
        fence = None  # an unclosed fence at the very end stays as the author left it
    emit(len(lines))
    return chunks
