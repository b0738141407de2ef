"""Retrieval as answers use it: the search, then the gate that says "not found" instead of
handing the model sources that do not answer (no model call at all then)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.search.index import Hit, SearchIndex
from bot.search.terms import terms

# A source among the first five must hold a fifth of the question's distinct terms, and at least
# two of them when it has two or more. Lenient on purpose: on real chat (bench/retrieval.py) a
# stricter lexical gate refuses answerable questions far more often than it catches unanswerable
# ones; telling those apart is the model's part, reading the sources.
GATE = 0.2
GATE_MIN_TERMS = 2


@dataclass(frozen=True, slots=True)
class Retrieval:
    query: str
    found: bool  # the gate's verdict: something relevant is there
    hits: list[Hit]


def retrieve(
    index: SearchIndex,
    query: str,
    *,
    channels: Collection[str],
    limit: int = 10,
    exclude_thread: tuple[str, str] | None = None,
    exclude: Collection[str] = (),
) -> Retrieval:
    """The best `limit` messages and the gate's verdict on them; `exclude`: message ids never
    to return (the asking thread's own)."""
    more = limit + len(exclude)
    hits = index.search(query, channels=channels, limit=more, exclude_thread=exclude_thread)
    hits = [hit for hit in hits if hit.message.id not in exclude][:limit]
    wanted = len(set(terms(query)))
    need = GATE if wanted < GATE_MIN_TERMS else max(GATE, GATE_MIN_TERMS / wanted)
    found = any(hit.matched >= need for hit in hits[:5])
    return Retrieval(query, found, hits)
