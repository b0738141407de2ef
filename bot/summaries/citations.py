"""Citations: the model cites messages by the short ids we gave it; we turn those into links.

The model never sees or writes a URL. Ids it invents are dropped; the rest are numbered in order
of first use and rendered as links for the platform (Markdown links that Slack's converter and
Discord both understand, or plain numbers with a source list for the terminal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bot.summaries.sources import SourceMessage

_GROUP = re.compile(r"(?:[ \t]*\[\s*m\d+(?:\s*[,;]\s*m?\d+)*\s*\])+")
_ID = re.compile(r"m?(\d+)")


def label(index: int) -> str:
    return f"m{index}"


def labelled(sources: Sequence[SourceMessage]) -> dict[str, SourceMessage]:
    return {label(i): source for i, source in enumerate(sources, start=1)}


def resolve(
    text: str, sources: Mapping[str, SourceMessage], *, dialect: str = "markdown"
) -> tuple[str, list[SourceMessage]]:
    """Replace citation groups like `[m3][m7, m9]` by numbered links; drop unknown ids."""
    citer = Citer(sources, dialect)
    text = re.sub(r"[ \t]+\n", "\n", citer.sub(text)).strip()
    if dialect == "plain" and citer.cited:
        text += "\n\n" + citer.plain_list()
    return text, citer.cited


def uncited(text: str) -> str:
    """An answer without its citation ids (as it is remembered: the ids meant sources the next
    question will not be given)."""
    return re.sub(r"[ \t]+\n", "\n", _GROUP.sub("", text)).strip()


class Citer:
    """Numbers the sources an answer cites, in order of first use, and renders each group of
    ids as links; ids the model made up are dropped."""

    def __init__(self, sources: Mapping[str, SourceMessage], dialect: str) -> None:
        self.sources = sources
        self.dialect = dialect
        self.numbers: dict[str, int] = {}
        self.cited: list[SourceMessage] = []

    def sub(self, text: str) -> str:
        return _GROUP.sub(self._group, text)

    def _group(self, match: re.Match[str]) -> str:
        found = []
        for raw in _ID.findall(match.group(0)):
            key = label(int(raw))
            source = self.sources.get(key)
            if source is None or key in found:
                continue  # an id the model made up, or a repeat
            found.append(key)
            if key not in self.numbers:
                self.numbers[key] = len(self.numbers) + 1
                self.cited.append(source)
        if not found:
            return ""
        return " " + render_refs([(self.numbers[k], self.sources[k]) for k in found], self.dialect)

    def plain_list(self) -> str:
        lines = [
            f"[{self.numbers[k]}] {s.where or f'{s.author}, {s.at:%Y-%m-%d %H:%M}'}"
            + (f" — {s.link}" if s.link else "")
            for k, s in sorted(self.sources.items(), key=lambda kv: self.numbers.get(kv[0], 0))
            if k in self.numbers
        ]
        return "Sources:\n" + "\n".join(lines)


# The end of a text where a citation group may still be forming: complete groups (another may
# follow and join them), spaces, and the start of one ("[", "[m", "[m1, m").
_FORMING = re.compile(
    r"(?:[ \t]*\[\s*m\d+(?:\s*[,;]\s*m?\d+)*\s*\])*[ \t]*"
    r"(?:\[\s*(?:m\d*(?:\s*[,;]\s*m?\d*)*\s*)?)?\Z"
)


class CitingStream:
    """Citations resolved while an answer streams: text is passed on as soon as no citation
    group can still be forming at its end, so links appear with the sentence they close."""

    def __init__(self, sources: Mapping[str, SourceMessage], dialect: str) -> None:
        self.citer = Citer(sources, dialect)
        self._held = ""

    @property
    def cited(self) -> list[SourceMessage]:
        return self.citer.cited

    def feed(self, delta: str) -> str:
        text = self._held + delta
        match = _FORMING.search(text)
        cut = match.start() if match is not None else len(text)
        self._held = text[cut:]
        return self.citer.sub(text[:cut])

    def finish(self) -> str:
        text, self._held = self.citer.sub(self._held), ""
        return text


def render_refs(refs: Sequence[tuple[int, SourceMessage]], dialect: str) -> str:
    if refs and all(source.where for _, source in refs):  # places in a document, not messages
        return "(" + "; ".join(source.where for _, source in refs) + ")"
    parts = []
    for number, source in refs:
        if dialect == "markdown" and source.link:
            parts.append(f"[{number}]({source.link})")
        else:
            parts.append(f"[{number}]")
    return "(" + ", ".join(parts) + ")" if dialect == "markdown" else "".join(parts)
