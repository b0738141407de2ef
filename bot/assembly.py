"""Assembling the core from settings: the token counter, memory, the model and the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit, urlunsplit

from bot.conversation import ThreadRef
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.errors import ConfigError, StoreUnavailable
from bot.feedback import FeedbackStore, InProcessFeedback, RedisFeedback
from bot.files.answering import Vision
from bot.files.reading import FileReader
from bot.openai_model import OpenAIChatModel
from bot.ops import OpsServer
from bot.rate_budget import InProcessBudget, RateBudget, RedisBudget
from bot.readiness import Readiness
from bot.recovery import Recovery
from bot.search.channel_search import ChannelSearch
from bot.settings import Settings
from bot.store.claims import Claims, InProcessClaims, RedisClaims
from bot.store.kv import InProcessNotes, Notes, RedisNotes
from bot.store.memory import InProcessMemory, RedisMemory, ThreadMemory
from bot.store.migrate import migrate_on_start
from bot.store.redis_pool import DEFAULT_MAX_CONNECTIONS, open_pool
from bot.summaries.channel_log import ChannelLog, InProcessChannelLog, RedisChannelLog
from bot.summaries.summarizer import SummaryConfig
from bot.summaries.summary_store import SummaryStore
from bot.tokens import load_counter
from bot.usage.ledger import InProcessLedger
from bot.usage.quotas import Quotas
from bot.usage.redis_ledger import RedisLedger

if TYPE_CHECKING:
    from bot.search.dense import DenseSearch

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass
class Core:
    settings: Settings
    memory: ThreadMemory
    model: OpenAIChatModel
    engine: ConversationEngine
    claims: Claims
    notes: Notes
    channel_log: ChannelLog | None  # None when BOT_CHANNEL_LOG_DAYS is 0
    feedback: FeedbackStore = field(default_factory=InProcessFeedback)
    budget: RateBudget = field(default_factory=InProcessBudget)  # platform rate limits, shared
    readiness: Readiness = field(default_factory=Readiness)
    recovery: Recovery | None = None
    ops: OpsServer | None = None  # /healthz, /readyz, /metrics (python -m bot run)
    # Set on the first SIGTERM: adapters stop taking work and drain within the grace period.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _keeper: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if self.recovery is None:
            part = "redis" if isinstance(self.memory, RedisMemory) else None
            self.recovery = Recovery(self.memory, self.engine, self.readiness, part=part)
        if isinstance(self.claims, RedisClaims):
            self.recovery.on_store_lost(self.claims.reseed)

    async def start(self, homes: Callable[[ThreadRef], ThreadRef] | None = None) -> None:
        """Move a store of an older key layout, start renewing liveness and settling dead
        processes' answers (`python -m bot run`)."""
        assert self.recovery is not None
        # The model's SDK loads in a thread meanwhile: loading it at the first answer held the
        # event loop for most of a second, in the middle of the first burst of mentions.
        warming = asyncio.get_running_loop().run_in_executor(None, self.model.warm)
        if isinstance(self.memory, RedisMemory):
            await migrate_on_start(self.memory.client, self.memory.prefix, homes)
            wanted = min(self.settings.redis_max_connections, DEFAULT_MAX_CONNECTIONS)
            await open_pool(self.memory.client, wanted)
            with contextlib.suppress(StoreUnavailable):  # loaded as they are first refused
                await self.memory.load_scripts()
        await self.recovery.beat()
        await warming
        self._keeper = asyncio.create_task(self.recovery.run(), name="recovery")

    def stop(self) -> None:
        self.readiness.stopping = True
        self.stopping.set()

    async def aclose(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await self.engine.files.aclose()
        search = self.engine.grounding.search if self.engine.grounding is not None else None
        if search is not None and search.dense is not None:
            await search.dense.aclose()
        await self.memory.aclose()
        await self.model.aclose()


async def connect_memory(settings: Settings, *, attempts: int = 3) -> ThreadMemory:
    if not settings.redis_url:
        log.warning("REDIS_URL is not set: thread memory is kept in this process, lost on restart")
        return InProcessMemory(
            max_turns=settings.max_turns, retention_seconds=settings.retention_seconds
        )
    memory = RedisMemory.from_url(
        settings.redis_url,
        cluster=settings.redis_cluster,
        prefix=settings.redis_prefix,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.redis_pool_timeout,
        max_turns=settings.max_turns,
        retention_seconds=settings.retention_seconds,
    )
    for attempt in range(attempts):
        try:
            await memory.ping()
            return memory
        except StoreUnavailable as exc:
            if attempt == attempts - 1:
                await memory.aclose()
                raise StoreUnavailable(
                    f"Redis at {redact_url(settings.redis_url)} is unreachable "
                    f"({exc.__cause__ or exc}); start it or fix REDIS_URL"
                ) from exc
            await asyncio.sleep(0.5 * (attempt + 1))  # a Redis started alongside may need a moment
    raise AssertionError("unreachable")


async def connect_channel_log(
    settings: Settings, *, use: str
) -> tuple[RedisMemory, RedisChannelLog]:
    """The channel logs Redis keeps, for a command that works on them (`use`: what it does
    with them, for the error naming REDIS_URL); close the memory when done."""
    memory = await connect_memory(settings, attempts=1)
    if not isinstance(memory, RedisMemory):
        raise ConfigError("REDIS_URL", f"{use} the channel logs Redis keeps; set it")
    log = RedisChannelLog(memory.client, prefix=memory.prefix,
                          retention_seconds=settings.channel_log_days * 86_400 or 86_400,
                          max_messages=settings.channel_log_max)  # fmt: skip
    return memory, log


def dense_search(settings: Settings, memory: ThreadMemory) -> DenseSearch | None:
    """Embeddings beside the lexical search when OPENAI_EMBEDDING_MODEL names a model: stored
    in Redis beside the channel log (in this process without Redis). numpy loads only then."""
    from bot.search.embeddings import build_embedder

    embedder = build_embedder(settings)
    if embedder is None:
        return None
    from bot.search.dense import DenseSearch
    from bot.search.vectors import InProcessVectorStore, RedisVectorStore, VectorStore

    store: VectorStore = (
        RedisVectorStore(memory.client, prefix=memory.prefix,
                         retention_seconds=settings.channel_log_days * 86_400 or 86_400)
        if isinstance(memory, RedisMemory)
        else InProcessVectorStore()
    )  # fmt: skip
    return DenseSearch(store, embedder, min_similarity=settings.embedding_min_similarity)


async def build_core(settings: Settings) -> Core:
    counter = load_counter(settings.tokenizer)
    memory = await connect_memory(settings)
    model = OpenAIChatModel.from_settings(settings, counter)
    config = EngineConfig(
        bot_name=settings.bot_name,
        system_prompt=settings.system_prompt,
        max_prompt_tokens=settings.max_prompt_tokens,
        max_answer_tokens=settings.max_answer_tokens,
        grounded=settings.grounded_answers,
    )
    claims: Claims
    notes: Notes
    channel_log: ChannelLog | None = None
    retention = settings.channel_log_days * 86_400
    if isinstance(memory, RedisMemory):
        claims = RedisClaims(memory.client, prefix=memory.prefix)
        notes = RedisNotes(memory.client, prefix=memory.prefix)
        if retention:
            channel_log = RedisChannelLog(
                memory.client,
                prefix=memory.prefix,
                retention_seconds=retention,
                max_messages=settings.channel_log_max,
            )
    else:
        claims, notes = InProcessClaims(), InProcessNotes()
        if retention:
            channel_log = InProcessChannelLog(
                retention_seconds=retention, max_messages=settings.channel_log_max
            )
    if channel_log is not None:
        await channel_log.resume()  # messages sent while no bot ran are not in the log
    summary_config = SummaryConfig(
        budget=settings.max_prompt_tokens,
        answer_tokens=settings.max_answer_tokens,
        concurrency=settings.summary_concurrency,
        max_messages=settings.summary_max_messages,
    )
    engine = ConversationEngine(
        memory,
        model,
        counter,
        config,
        summaries=SummaryStore(notes),
        summary_config=summary_config,
        files=FileReader(settings.file_limits()),  # adapters register how they download
        vision=cast(Vision, settings.vision),
        max_concurrent=settings.max_concurrent_answers,
        search=(
            ChannelSearch(channel_log, dense=dense_search(settings, memory))
            if channel_log is not None
            else None
        ),
        quotas=Quotas(
            RedisLedger(
                memory.client, prefix=memory.prefix, retention_days=settings.usage_retention_days
            )
            if isinstance(memory, RedisMemory)
            else InProcessLedger(settings.usage_retention_days),
            settings.quota_config(),
        ),
    )
    feedback: FeedbackStore = (
        RedisFeedback(memory.client, prefix=memory.prefix)
        if isinstance(memory, RedisMemory)
        else InProcessFeedback()
    )
    budget: RateBudget = (
        RedisBudget(memory.client, prefix=memory.prefix)
        if isinstance(memory, RedisMemory)
        else InProcessBudget()
    )
    return Core(settings, memory, model, engine, claims, notes, channel_log, feedback, budget)
