"""Which part of a conversation to summarize: a time window (`2h`, `3d`) or a count (`200`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import InvalidRequest

_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|h|hr|hours?|d|days?|w|weeks?)$", re.IGNORECASE)
MAX_SECONDS = 31 * 86_400
MAX_COUNT = 5000
USAGE = (
    "Usage: /summarize [WINDOW | since] [public] — WINDOW is a time such as 30m, 2h, 3d or 1w, "
    "or a number of messages such as 200 (default: 24h); `since` covers what happened since your "
    "last summary here. Add `public` to post the summary in the channel; otherwise only you see it."
)


@dataclass(frozen=True, slots=True)
class Window:
    seconds: int | None = 86_400
    count: int | None = None

    def describe(self) -> str:
        if self.count is not None:
            return f"the last {self.count} messages"
        seconds = self.seconds or 0
        for size, name in ((604_800, "week"), (86_400, "day"), (3600, "hour")):
            if seconds >= size and seconds % size == 0:
                n = seconds // size
                return f"the last {n} {name}{'s' if n > 1 else ''}"
        minutes = seconds // 60
        return f"the last {minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    window: Window
    public: bool = False
    since: bool = False  # since the caller's previous summary of this channel


def parse_summary_args(text: str, *, usage: str = USAGE) -> SummaryRequest:
    """Parse `[WINDOW] [public]` in any order; anything else raises InvalidRequest(usage)."""
    window: Window | None = None
    public = False
    since = False
    for word in text.split():
        lowered = word.lower()
        if lowered in ("public", "channel", "here"):
            public = True
        elif lowered in ("since", "new", "unread"):
            since = True
        elif lowered in ("private", "me", "ephemeral"):
            public = False
        elif lowered.isdigit():
            count = int(lowered)
            if window is not None or not 1 <= count <= MAX_COUNT:
                raise InvalidRequest(
                    f"{count} is not a message count I can use (1-{MAX_COUNT}). " + usage
                )
            window = Window(seconds=None, count=count)
        elif match := _DURATION.match(lowered):
            seconds = int(match.group(1)) * _UNITS[match.group(2)[0].lower()]
            if window is not None or not 60 <= seconds <= MAX_SECONDS:
                raise InvalidRequest(f"{word} is not a window I can use (1m to 31d). " + usage)
            window = Window(seconds=seconds)
        else:
            raise InvalidRequest(f"I did not understand `{word}`. " + usage)
    if since and window is not None:
        raise InvalidRequest("Use either a window or `since`, not both. " + usage)
    return SummaryRequest(window or Window(), public, since)
