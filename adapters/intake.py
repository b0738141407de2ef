"""Acks before answers: work taken from a burst of deliveries starts once the burst is acked.

A Socket Mode envelope left unacked for a few seconds is sent again, and each ack waits its turn
on the one event loop: behind the claims, placeholders and model calls of every delivery that
came before it, fifty or four hundred of them in a burst. So the work of a delivery waits until
a turn of the loop passes with no new delivery (the acks of the whole burst have gone out), or
`most` seconds at the longest, and then starts, in the order the deliveries came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MOST_WAIT = 0.05  # seconds work waits behind a burst that never pauses


class Intake:
    def __init__(self, most: float = MOST_WAIT, clock: Callable[[], float] = time.monotonic):
        self._most = most
        self._clock = clock
        self._arrived = 0
        self._turn: asyncio.Future[None] | None = None
        self._since = 0.0

    def arrived(self) -> asyncio.Future[None]:
        """A delivery was acked (or is about to be): its work awaits the future returned, its
        own (the burst's opening shielded), so a delivery cancelled while it waits leaves the
        rest of the burst waiting."""
        self._arrived += 1
        if self._turn is None:
            loop = asyncio.get_running_loop()
            self._turn, self._since = loop.create_future(), self._clock()
            loop.call_soon(self._open, self._arrived)
        return asyncio.shield(self._turn)

    def _open(self, seen: int) -> None:
        if self._arrived != seen and self._clock() - self._since < self._most:
            asyncio.get_running_loop().call_soon(self._open, self._arrived)  # more came: wait
            return
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.set_result(None)
