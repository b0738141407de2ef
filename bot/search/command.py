"""`python -m bot search`: the channel logs Redis keeps, indexed as answers will search them, for
operators ("why would it cite that?") and for evaluation (one JSON line per query on stdin)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC
from typing import TextIO

from bot.search.channel_search import ChannelSearch
from bot.search.index import SearchIndex
from bot.search.retrieval import Retrieval, retrieve
from bot.settings import Settings


async def build_index(
    settings: Settings, *, platform: str | None, workspace: str | None, channel: str | None
) -> tuple[SearchIndex, list[str]]:
    """Every logged message of the channels matching the filters, indexed as answers index them
    (bot.search.channel_search); and those channels."""
    from bot.assembly import connect_memory
    from bot.store.memory import RedisMemory
    from bot.summaries.channel_log import RedisChannelLog

    memory = await connect_memory(settings, attempts=1)
    if not isinstance(memory, RedisMemory):
        raise SystemExit("error: REDIS_URL: search reads the channel logs Redis keeps; set it")
    log = RedisChannelLog(memory.client, prefix=memory.prefix,
                          retention_seconds=max(1, settings.channel_log_days) * 86_400,
                          max_messages=settings.channel_log_max)  # fmt: skip
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
