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
    numbers: dict[str, int] = {}
    cited: list[SourceMessage] = []

    def replace(match: re.Match[str]) -> str:
        found = []
        for raw in _ID.findall(match.group(0)):
            key = label(int(raw))
            source = sources.get(key)
            if source is None or key in found:
                continue  # an id the model made up, or a repeat
            found.append(key)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                cited.append(source)
        if not found:
            return " " if match.group(0).endswith(" ") else ""
        trailing = (
            " "
            if match.group(0).endswith((" ", "\n")) and not match.group(0).endswith("\n")
            else ""
        )
        newline = "\n" if match.group(0).endswith("\n") else ""
        return (
            " "
            + render_refs([(numbers[k], sources[k]) for k in found], dialect)
            + trailing
            + newline
        )

    text = _GROUP.sub(replace, text)
    text = re.sub(r"[ \t]+\n", "\n", text).strip()
    if dialect == "plain" and cited:
        lines = [
            f"[{numbers[k]}] {s.where or f'{s.author}, {s.at:%Y-%m-%d %H:%M}'}"
            + (f" — {s.link}" if s.link else "")
            for k, s in sources.items()
            if k in numbers
        ]
        lines.sort(key=lambda line: int(line[1 : line.index("]")]))
        text += "\n\nSources:\n" + "\n".join(lines)
    return text, cited


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
