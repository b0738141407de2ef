"""`python -m bot search`: the channel logs Redis keeps, indexed as answers will search them, for
operators ("why would it cite that?") and for evaluation (one JSON line per query on stdin)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC
from typing import TextIO

from bot.errors import ConfigError
from bot.search.channel_search import ChannelSearch
from bot.search.index import SearchIndex
from bot.search.retrieval import Retrieval, retrieve
from bot.settings import Settings


async def build_index(
    settings: Settings, *, platform: str | None, workspace: str | None, channel: str | None
) -> tuple[SearchIndex, list[str]]:
    """Every logged message of the channels matching the filters, indexed as answers index them
    (bot.search.channel_search); and those channels."""
    from bot.assembly import connect_channel_log

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
    search = ChannelSearch(log)
    await search.catch_up(scopes)
    await memory.aclose()
    return search.index, scopes


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


def run_queries(
    index: SearchIndex,
    channels: list[str],
    queries: Iterable[str],
    *,
    limit: int,
    json_lines: bool,
    out: TextIO = sys.stdout,
) -> None:
    for query in queries:
        result = retrieve(index, query, channels=channels, limit=limit)
        if json_lines:
            out.write(as_json(result) + "\n")
            continue
        out.write(f"{query}: {'found' if result.found else 'not found'}\n")
        for hit in result.hits:
            text = " ".join(hit.message.text.split())
            out.write(f"  {hit.score:6.2f}  {hit.message.channel}  {hit.message.author}: "
                      f"{text[:100]}\n")  # fmt: skip
