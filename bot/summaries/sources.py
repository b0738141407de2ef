"""Messages as summaries see them: who wrote what, when, and where to click to read it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SourceMessage:
    message_id: str  # the platform's id (a Slack ts, a Discord snowflake)
    author: str  # the name people see
    text: str
    at: datetime
    link: str = ""  # permalink or jump link; empty where the platform has none
    author_id: str = ""
    where: str = ""  # a place inside a document ("p. 3", "lines 81–160"), cited instead of a link

    def to_json(self) -> dict[str, str]:
        return {
            "where": self.where,
            "id": self.message_id,
            "author": self.author,
            "text": self.text,
            "at": self.at.isoformat(),
            "link": self.link,
            "author_id": self.author_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> SourceMessage:
        return cls(
            message_id=data["id"],
            author=data.get("author", ""),
            text=data.get("text", ""),
            at=datetime.fromisoformat(data["at"]),
            link=data.get("link", ""),
            author_id=data.get("author_id", ""),
            where=data.get("where", ""),
        )


_SCRIPTS = (
    ("Korean", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")),
    ("Japanese", re.compile(r"[\u3040-\u30ff]")),
    ("Chinese", re.compile(r"[\u4e00-\u9fff]")),
    ("Russian", re.compile(r"[\u0400-\u04ff]")),
    ("Arabic", re.compile(r"[\u0600-\u06ff]")),
    ("Latin", re.compile(r"[A-Za-z\u00c0-\u024f]")),
)


def message_script(text: str) -> str | None:
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS}
    if counts["Japanese"]:
        counts["Japanese"] += counts["Chinese"]  # kanji inside Japanese text
    name, count = max(counts.items(), key=lambda item: item[1])
    return name if count else None


def dominant_language(texts: Iterable[str]) -> str | None:
    """The language most messages are written in, by script; None when it is Latin-script
    (English, French, … cannot be told apart by script) or when there is no text."""
    votes = Counter(s for s in (message_script(t) for t in texts) if s)
    if not votes:
        return None
    name, _ = votes.most_common(1)[0]
    return None if name == "Latin" else name
