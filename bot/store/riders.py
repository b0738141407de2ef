"""Writes that ride along in another call's round trip: a channel log entry with a delivery's
claim, a request's usage with the answer's save."""

from __future__ import annotations

from typing import Any, Protocol

from bot.store.redis_pool import ScriptCall


class Rider(Protocol):
    async def write(self) -> None:
        """On its own: where the carrier is not a Redis pipeline (in-process, another client)."""

    def call(self, client: Any) -> ScriptCall | None:
        """The same as a script call, when it lives on `client` (the carrier's Redis)."""
