"""`python -m bot import`: a team's history from a platform's export into the channel logs, so
`/ask` and grounded answers know it on day one.

The platform's part (reading Slack's export, DiscordChatExporter's JSON) lives in its adapter and
yields `Exported` messages, counting what it leaves out and why; this part keeps the channel log's
rules: nothing older than BOT_CHANNEL_LOG_DAYS, at most BOT_CHANNEL_LOG_MAX per channel, and each
message once (importing twice adds nothing).
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from bot.errors import ConfigError
from bot.settings import Settings
from bot.summaries.channel_log import ChannelLog
from bot.summaries.sources import SourceMessage

if TYPE_CHECKING:
    from bot.search.dense import DenseSearch

BATCH = 500  # log writes per round trip


@dataclass(frozen=True, slots=True)
class Exported:
    channel: str  # the channel's scope (bot.store.keys.channel_scope), as the live path logs it
    message: SourceMessage


@dataclass(slots=True)
class ExportedHistory:
    """What an export holds, read lazily: `messages` counts what it leaves out in `skipped`
    (reason -> how many) as it goes."""

    messages: Iterable[Exported]
    skipped: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)  # channel scope -> its name, for people


class ExportReader(Protocol):
    def __call__(self, path: Path, options: Mapping[str, str]) -> ExportedHistory: ...


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    channels: int
    skipped: Counter[str]
    seconds: float
    scopes: tuple[str, ...] = ()  # the channels something was imported into
    embedded: str = ""  # what embedding the imported messages did (OPENAI_EMBEDDING_MODEL)

    def line(self) -> str:
        rate = self.imported / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"imported {self.imported:,} message{'s' if self.imported != 1 else ''} into "
            f"{self.channels:,} channel{'s' if self.channels != 1 else ''} "
            f"in {self.seconds:.1f} s ({rate:,.0f}/s)"
        )
        if self.skipped:
            why = ", ".join(f"{n:,} {reason}" for reason, n in self.skipped.most_common())
            text += f"; skipped {sum(self.skipped.values()):,}: {why}"
        if self.embedded:
            text += f"; {self.embedded}"
        return text


class Progress:
    """A progress bar on a terminal; nothing elsewhere (the closing line says it all)."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = max(1, total)
        self.out = out
        self.shown = out.isatty()

    def update(self, done: int) -> None:
        if not self.shown:
            return
        filled = int(30 * done / self.total)
        bar = "#" * filled + "." * (30 - filled)
        self.out.write(f"\r[{bar}] {done:,}/{self.total:,}")
        self.out.flush()

    def close(self) -> None:
        if self.shown:
            self.out.write("\n")


async def run_import(
    settings: Settings, read: ExportReader, path: Path, options: Mapping[str, str]
) -> ImportReport:
    """`python -m bot import KIND PATH`: the export read by its platform's adapter (`read`),
    written into the channel logs Redis keeps."""
    from bot.assembly import connect_channel_log, dense_search

    if settings.channel_log_days <= 0:
        raise ConfigError("BOT_CHANNEL_LOG_DAYS", "is 0: no channel log is kept to import into")
    history = read(path, options)
    memory, log = await connect_channel_log(settings, use="imports go into")
    try:
        report = await import_history(
            log, history, retention_seconds=log.retention_seconds,
            max_messages=settings.channel_log_max,
        )  # fmt: skip
        dense = dense_search(settings, memory)
        if dense is None or not report.scopes:
            return report
        return replace(report, embedded=await embed_imported(log, dense, report.scopes))
    finally:
        await memory.aclose()


async def embed_imported(log: ChannelLog, dense: DenseSearch, scopes: Sequence[str]) -> str:
    """Embed what was imported now, in batches, so no replica waits for it at a question; a
    failure is said, and left to the running bot (it embeds what has no vector)."""
    from bot.search.channel_search import ChannelSearch

    try:
        await ChannelSearch(log, dense=dense).catch_up(scopes)
        await dense.settled()
    finally:
        await dense.aclose()
    if dense.failure:
        return f"embedding failed ({dense.failure}); the bot embeds them as it searches"
    return f"embedded {dense.made:,}"


async def import_history(
    log: ChannelLog,
    history: ExportedHistory,
    *,
    retention_seconds: float,
    max_messages: int,
    clock: Callable[[], float] = time.time,
    progress: Callable[[int], Progress] = Progress,
) -> ImportReport:
    started = time.perf_counter()
    horizon = clock() - retention_seconds
    by_channel: dict[str, dict[str, SourceMessage]] = defaultdict(dict)
    skipped = history.skipped
    for item in history.messages:
        if item.message.at.timestamp() < horizon:
            skipped["older than BOT_CHANNEL_LOG_DAYS"] += 1
        elif item.message.message_id in by_channel[item.channel]:
            skipped["repeated in the export"] += 1
        else:
            by_channel[item.channel][item.message.message_id] = item.message
    batches: list[tuple[str, list[SourceMessage]]] = []
    for channel, messages in by_channel.items():
        known = await log.logged_ids(channel)
        fresh = sorted(
            (m for m in messages.values() if m.message_id not in known), key=lambda m: m.at
        )
        skipped["already imported or logged"] += len(messages) - len(fresh)
        if len(fresh) > max_messages:
            skipped["beyond BOT_CHANNEL_LOG_MAX"] += len(fresh) - max_messages
            fresh = fresh[-max_messages:]
        if fresh:
            batches.append((channel, fresh))
    bar = progress(sum(len(fresh) for _, fresh in batches))
    done = 0
    for channel, fresh in batches:
        for start in range(0, len(fresh), BATCH):
            chunk = fresh[start : start + BATCH]
            await log.record_many(channel, chunk)
            done += len(chunk)
            bar.update(done)
    bar.close()
    skipped = Counter({reason: n for reason, n in skipped.items() if n})
    scopes = tuple(channel for channel, _ in batches)
    return ImportReport(done, len(batches), skipped, time.perf_counter() - started, scopes)
