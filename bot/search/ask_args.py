"""`/ask [in:#channel | everywhere] [public] QUESTION`: the options come first. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import InvalidRequest

USAGE = (
    "Usage: /ask [in:#channel | everywhere] [public] QUESTION — I answer from what was said "
    "here, citing the messages; only you see the answer unless you add `public`."
)
_IN = re.compile(r"^in:(?:<#([A-Z0-9]+)(?:\|([^>]*))?>|#?([\w-]+))$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AskRequest:
    question: str
    public: bool = False
    channel: str | None = None  # in:#channel (an id, or a name as typed)
    everywhere: bool = False
    channel_name: str = ""  # its name, when the platform sent it with the id


def parse_ask(text: str) -> AskRequest:
    words = text.split()
    public = everywhere = False
    channel: str | None = None
    name = ""
    while words:
        word, lowered = words[0], words[0].lower()
        if lowered == "public":
            public = True
        elif lowered == "everywhere":
            everywhere = True
        elif match := _IN.match(word):
            channel = match.group(1) or match.group(3)
            name = match.group(2) or (match.group(3) or "")
        else:
            break
        words.pop(0)
    question = " ".join(words).strip()
    if not question:
        raise InvalidRequest(USAGE)
    if channel and everywhere:
        raise InvalidRequest("Use either in:#channel or everywhere, not both. " + USAGE)
    return AskRequest(question, public, channel, everywhere, name)
