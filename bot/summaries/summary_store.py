"""What summaries remember: finished summaries (so asking again costs nothing) and, per person and
channel, where their last summary ended (for `/summarize since`)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from bot.errors import StoreUnavailable
from bot.store.kv import Notes
from bot.summaries.sources import SourceMessage

log = logging.getLogger(__name__)

CACHE_TTL = 7 * 86_400
SINCE_TTL = 90 * 86_400


def cache_key(scope: str, sources: Sequence[SourceMessage], dialect: str) -> str:
    # Keyed by the window's first and last message: anything new changes the key.
    identity = f"{scope}|{dialect}|{len(sources)}|{sources[0].message_id}|{sources[-1].message_id}"
    return "summary:" + hashlib.sha256(identity.encode()).hexdigest()[:24]


class SummaryStore:
    def __init__(self, notes: Notes) -> None:
        self._notes = notes

    async def cached(
        self, scope: str, sources: Sequence[SourceMessage], dialect: str
    ) -> str | None:
        try:
            raw = await self._notes.get(cache_key(scope, sources, dialect))
        except StoreUnavailable as exc:
            log.warning("summary cache unavailable: %s", exc)
            return None
        return str(json.loads(raw)["text"]) if raw else None

    async def keep(
        self, scope: str, sources: Sequence[SourceMessage], dialect: str, text: str
    ) -> None:
        try:
            await self._notes.put(
                cache_key(scope, sources, dialect), json.dumps({"text": text}), ttl=CACHE_TTL
            )
        except StoreUnavailable as exc:
            log.warning("summary cache unavailable: %s", exc)

    async def mark(self, scope: str, requester: str, last: SourceMessage) -> None:
        try:
            await self._notes.put(f"since:{scope}:{requester}", last.at.isoformat(), ttl=SINCE_TTL)
        except StoreUnavailable as exc:
            log.warning("could not remember where the summary ended: %s", exc)

    async def since(self, scope: str, requester: str) -> datetime | None:
        value = await self._notes.get(f"since:{scope}:{requester}")
        return datetime.fromisoformat(value) if value else None
