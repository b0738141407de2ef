"""Writes that ride along in another call's round trip: a channel log entry with a delivery's
claim, a request's usage with the answer's save."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from bot.errors import StoreUnavailable
from bot.store.redis_pool import ScriptCall

log = logging.getLogger(__name__)


class Rider(Protocol):
    async def write(self) -> None:
        """On its own: where the carrier is not a Redis pipeline (in-process, another client)."""

    def call(self, client: Any) -> ScriptCall | None:
        """The same as a script call, when it lives on `client` (the carrier's Redis)."""


async def write_alone(rider: Rider | None, what: str) -> None:
    """Write `rider` on its own; a failure is logged (naming `what`), never raised: these
    writes only ever go with something that matters more (a claim, a save)."""
    if rider is None:
        return
    try:
        await rider.write()
    except StoreUnavailable as exc:
        log.warning("could not keep %s: %s", what, exc)
