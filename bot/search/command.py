"""`python -m bot search`: the channel logs Redis keeps, indexed as answers will search them, for
operators ("why would it cite that?") and for evaluation (one JSON line per query on stdin)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC
from typing import TextIO

from bot.errors import ConfigError
from bot.search.channel_search import ChannelSearch
from bot.search.retrieval import Retrieval
from bot.settings import Settings


async def open_search(
    settings: Settings, *, platform: str | None, workspace: str | None, channel: str | None
) -> tuple[ChannelSearch, list[str], Callable[[], Awaitable[None]]]:
    """The channel logs matching the filters, searched as answers search them (the lexical
    index, and embeddings when OPENAI_EMBEDDING_MODEL is set); those channels; and what closes
    the connection when done."""
    from bot.assembly import connect_channel_log, dense_search

    try:
        memory, log = await connect_channel_log(settings, use="search reads")
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    wanted = (platform, workspace, channel)
    scopes = [
        scope
        for scope in await log.channels("")
        if len(where := scope.split(":")) == 3
        and all(want is None or want == have for want, have in zip(wanted, where, strict=True))
    ]
    search = ChannelSearch(log, dense=dense_search(settings, memory))
    await search.catch_up(scopes)
    if search.dense is not None:
        await search.dense.settled()  # what no replica embedded yet, embedded now

    async def close() -> None:
        if search.dense is not None:
            await search.dense.aclose()
        await memory.aclose()

    return search, scopes, close


async def readable_by(user: str, channels: list[str]) -> list[str]:
    """The channels `user` can read now, asked of each platform's adapter (`search --as`)."""
    from bot.adapter_registry import discover

    available = discover()
    readable: list[str] = []
    for platform in sorted({scope.split(":", 1)[0] for scope in channels}):
        adapter = available.get(platform)
        if adapter is None or not hasattr(adapter, "readable_scopes"):
            raise ConfigError("--as", f"{platform} cannot check who may read what from here")
        mine = [scope for scope in channels if scope.startswith(f"{platform}:")]
        readable += await adapter.readable_scopes(user, mine)
    return readable


def as_json(result: Retrieval) -> str:
    return json.dumps(
        {
            "query": result.query,
            "found": result.found,
            "hits": [
                {
                    "id": h.message.id,
                    "channel": h.message.channel,
                    "thread": h.message.thread,
                    "author": h.message.author,
                    "time": _iso(h.message.at),
                    "score": round(h.score, 3),
                    "text": h.message.text,
                    "link": h.message.link,
                }
                for h in result.hits
            ],
        },
        ensure_ascii=False,
    )


def _iso(at: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


async def run_queries(
    search: ChannelSearch,
    channels: list[str],
    queries: Iterable[str],
    *,
    limit: int,
    json_lines: bool,
    out: TextIO = sys.stdout,
) -> None:
    for query in queries:
        result = await search.retrieve(query, channels, limit=limit)
        if json_lines:
            out.write(as_json(result) + "\n")
            continue
        out.write(f"{query}: {'found' if result.found else 'not found'}\n")
        for hit in result.hits:
            text = " ".join(hit.message.text.split())
            out.write(f"  {hit.score:6.2f}  {hit.message.channel}  {hit.message.author}: "
                      f"{text[:100]}\n")  # fmt: skip
