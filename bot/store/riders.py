"""Writes that ride along in another call's round trip: a channel log entry with a delivery's
claim, a request's usage with the answer's save."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from redis.exceptions import RedisError

from bot.errors import StoreUnavailable
from bot.store.redis_pool import ScriptCall, redis_unavailable, run_pipeline

log = logging.getLogger(__name__)


class Rider(Protocol):
    async def write(self) -> None:
        """On its own: where the carrier is not a Redis pipeline (in-process, another client)."""

    def call(self, client: Any) -> ScriptCall | None:
        """The same as a script call, when it lives on `client` (the carrier's Redis)."""


class Passenger(Protocol):
    """A read that rides in another call's round trip (e.g. the thread lock's), when both
    live on the same Redis; else its owner sends it alone."""

    def rides_on(self, client: Any) -> bool: ...

    def queue(self, pipe: Any) -> int:
        """Queue its commands in `pipe`; how many."""

    def take(self, results: list[Any]) -> None:
        """Its commands' results, in order."""


async def write_alone(rider: Rider | None, what: str) -> None:
    """Write `rider` on its own; a failure is logged (naming `what`), never raised: these
    writes only ever go with something that matters more (a claim, a save)."""
    if rider is None:
        return
    try:
        await rider.write()
    except StoreUnavailable as exc:
        log.warning("could not keep %s: %s", what, exc)


class LaterWrites:
    """Riders that cannot ride: on a Redis Cluster a save's usage record lives in another slot
    (its workspace's), so sending it with the save would be a send of its own per answer.
    Instead the records wait and go out together, one send per node however many answers they
    count: in the liveness heartbeat's send, which reaches every node every two seconds
    (`take`), or after `every` seconds on their own. The cost: a process killed (not stopped)
    loses what it had not sent yet; a stop sends it (`aclose`)."""

    def __init__(self, client: Any, every: float = 3.0) -> None:
        self._client = client
        self._every = every
        self._calls: list[ScriptCall] = []
        self._sending: asyncio.Task[None] | None = None
        self._waiting = False  # the task sleeps (cancelling it loses nothing)

    def add(self, call: ScriptCall) -> None:
        self._calls.append(call)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_soon(), name="redis-later-writes")

    async def _send_soon(self) -> None:
        self._waiting = True
        try:
            await asyncio.sleep(self._every)
        finally:
            self._waiting = False
        await self.flush()

    def take(self) -> list[ScriptCall]:
        """The writes waiting, for another call's send to carry (`put_back` if it fails)."""
        calls, self._calls = self._calls, []
        return calls

    def put_back(self, calls: list[ScriptCall]) -> None:
        for call in calls:
            self.add(call)

    async def flush(self) -> None:
        calls, self._calls = self._calls, []
        if not calls:
            return

        def queue(pipe: Any) -> None:
            for call in calls:
                call.queue(pipe)

        try:
            scripts = list({id(c.script): c.script for c in calls}.values())
            await run_pipeline(self._client, queue, scripts)
        except (RedisError, OSError) as exc:
            redis_unavailable(exc)  # counted
            log.warning("could not keep %d usage records: %s", len(calls), exc)

    async def aclose(self) -> None:
        sending = self._sending
        if sending is not None and not sending.done():
            if self._waiting:
                sending.cancel()
            else:  # sending already: let it finish
                await asyncio.wait([sending])
        await self.flush()
