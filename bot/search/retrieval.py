"""Retrieval as answers use it: the lexical search, fused by rank with the dense one when
embeddings are on, a mild preference for what is recent, then the gate that says "not found"
instead of handing the model sources that do not answer (no model call at all then)."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from bot.search.index import Hit, SearchIndex
from bot.search.terms import terms

# A source among the first five must hold a fifth of the question's distinct terms, and at least
# two of them when it has two or more. Lenient on purpose: on real chat (bench/retrieval.py) a
# stricter lexical gate refuses answerable questions far more often than it catches unanswerable
# ones; telling those apart is the model's part, reading the sources.
GATE = 0.2
GATE_MIN_TERMS = 2
FUSION_K = 60  # reciprocal rank fusion's constant: the usual choice, ranks past ~60 weigh little
RECENT_WEIGHT = 0.1  # a message said today ranks up to 10% higher than an old one …
HALF_LIFE_DAYS = 30.0  # … and half that a month ago: a tie-breaker, never a filter


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
    dense: Sequence[Hit] = (),
    min_similarity: float = 1.0,
    now: float | None = None,
) -> Retrieval:
    """The best `limit` messages and the gate's verdict on them; `exclude`: message ids never
    to return (the asking thread's own); `dense`: the messages nearest the question in meaning,
    best first, scored by cosine similarity (`min_similarity` and above counts as found)."""
    depth = limit if not dense else 3 * limit
    lexical = index.search(
        query, channels=channels, limit=depth, exclude_thread=exclude_thread, exclude=exclude
    )
    near = [hit for hit in dense if hit.message.id not in exclude]
    wanted = len(set(terms(query)))
    need = GATE if wanted < GATE_MIN_TERMS else max(GATE, GATE_MIN_TERMS / wanted)
    found = any(hit.matched >= need for hit in lexical[:5]) or bool(
        near and near[0].score >= min_similarity
    )
    ranked = fused(lexical, near) if near else lexical
    ranked = recent_first(ranked, time.time() if now is None else now)
    return Retrieval(query, found, ranked[:limit])


def fused(*rankings: Sequence[Hit]) -> list[Hit]:
    """Reciprocal rank fusion: each message scores the sum of 1 / (K + its rank) over the
    rankings it appears in, so scores on different scales (BM25, cosine) never meet."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = hit.message.key
            scores[key] = scores.get(key, 0.0) + 1.0 / (FUSION_K + rank)
            first.setdefault(key, hit)
    order = sorted(scores, key=lambda key: -scores[key])
    return [replace(first[key], score=scores[key]) for key in order]


def recent_first(hits: Sequence[Hit], now: float) -> list[Hit]:
    """The ranking, each score raised a little the more recent its message is (stable)."""

    def weight(hit: Hit) -> float:
        age_days = max(0.0, now - hit.message.at) / 86_400
        return hit.score * (1 + RECENT_WEIGHT * float(0.5 ** (age_days / HALF_LIFE_DAYS)))

    return sorted(hits, key=weight, reverse=True)
