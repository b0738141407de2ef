"""Summaries people ask for: a thread as memory holds it, or messages an adapter gathered,
through the summarizer and its cache, within the asker's quotas. The engine holds one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from bot.conversation import ThreadRef
from bot.engine_config import EngineConfig
from bot.store.memory.base import ThreadMemory
from bot.summaries.sources import SourceMessage
from bot.summaries.summarizer import Summarizer, Summary
from bot.summaries.summary_store import SummaryStore
from bot.usage.quotas import Quotas
from bot.usage.tally import Payer


class SummaryRequests:
    def __init__(
        self,
        memory: ThreadMemory,
        summarizer: Summarizer,
        summaries: SummaryStore | None,
        quotas: Quotas,
        *,
        reserve_tokens: int,
        config: EngineConfig,
    ) -> None:
        self.memory = memory
        self.summarizer = summarizer
        self.summaries = summaries  # the cache of recent summaries, and where each ended
        self.quotas = quotas
        self.reserve_tokens = reserve_tokens  # what one request may spend at most
        self.config = config

    async def summarize(
        self,
        thread: ThreadRef,
        *,
        dialect: str | None = None,
        link_for: Callable[[str], str] | None = None,
        requester: str | None = None,
        payer: Payer | None = None,
    ) -> Summary:
        """A summary of what memory holds for `thread`; no model call for an empty thread."""
        state = await self.memory.load(thread)
        sources = [
            SourceMessage(
                message_id=t.message_id,
                author=t.author_name or self.config.bot_name,
                text=t.text,
                at=t.at,
                link=link_for(t.message_id) if link_for and t.message_id else "",
                author_id=t.author_id,
            )
            for t in state.turns
        ]
        if state.summary:
            first = state.turns[0].at if state.turns else datetime.now(UTC)
            earlier = SourceMessage("", "(summary of the earlier messages)", state.summary, first)
            sources.insert(0, earlier)
        return await self.summarize_sources(
            sources, scope=str(thread), dialect=dialect, requester=requester, payer=payer
        )

    async def summarize_sources(
        self,
        sources: Sequence[SourceMessage],
        *,
        scope: str | None = None,
        dialect: str | None = None,
        requester: str | None = None,
        payer: Payer | None = None,
    ) -> Summary:
        """Summarize messages an adapter gathered; a repeat of the same window costs no call.
        With `payer`, within their quotas and counted to them."""
        async with self.counted_to(payer):
            return await self._summarize_sources(sources, scope, dialect, requester)

    def counted_to(self, payer: Payer | None) -> AbstractAsyncContextManager[object]:
        """A request's quotas and usage (nothing to count without a payer)."""
        if payer is None:
            return contextlib.nullcontext()
        return self.quotas.spending(payer, self.reserve_tokens)

    async def _summarize_sources(
        self,
        sources: Sequence[SourceMessage],
        scope: str | None,
        dialect: str | None,
        requester: str | None,
    ) -> Summary:
        dialect = dialect or self.config.dialect
        store = self.summaries if scope else None
        if store is not None and scope and sources:
            text = await store.cached(scope, sources, dialect)
            summary = (
                Summary(text, len(sources), len(sources))
                if text is not None
                else await self.summarizer.summarize(sources, dialect=dialect)
            )
            if text is None:
                await store.keep(scope, sources, dialect, summary.text)
            if requester:
                await store.mark(scope, requester, sources[-1])
            return summary
        return await self.summarizer.summarize(sources, dialect=dialect)

    async def summary_since(self, scope: str, requester: str) -> datetime | None:
        """Where `requester`'s previous summary of `scope` ended, if there was one."""
        return await self.summaries.since(scope, requester) if self.summaries else None
