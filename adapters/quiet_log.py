"""A log line now and then, however often the same kind of thing happens (refused requests,
unreadable payloads): the first is said at once, the rest are counted into the next line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

QUIET = 10.0  # seconds between two lines of one QuietLog


class QuietLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        quiet: float = QUIET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._quiet = quiet
        self._clock = clock
        self._last = float("-inf")
        self._unsaid = 0

    def say(self, level: int, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self._quiet:
            self._unsaid += 1
            return
        if self._unsaid:
            message += f" ({self._unsaid} more like it since the last line)"
        self._logger.log(level, message, *args)
        self._last, self._unsaid = now, 0
