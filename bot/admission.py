"""How many answers stream at once in one process: the rest wait their turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.metrics import ANSWER_QUEUE, IN_FLIGHT

log = logging.getLogger(__name__)


class Admission:
    """At most `most` answers stream at once (0: no limit); the rest wait their turn, already
    recorded in flight, so a crash while waiting is settled too. A process that takes on more
    than its CPU can finish misses its own deadlines and loses saves."""

    def __init__(self, most: int = 0) -> None:
        self.most = most
        self._gate = asyncio.Semaphore(most) if most else None

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        gate = self._gate
        queued = time.perf_counter()
        if gate is not None and gate.locked():
            log.info("%d answers at once already: this one waits its turn", self.most)
        async with gate or contextlib.nullcontext():
            if gate is not None:
                ANSWER_QUEUE.observe(time.perf_counter() - queued)
            IN_FLIGHT.inc()
            try:
                yield
            finally:
                IN_FLIGHT.dec()
