from __future__ import annotations

import atexit
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from hypothesis import settings as hypothesis_settings

from bot.chat_model import ChatModel
from bot.engine import ConversationEngine
from bot.engine_config import EngineConfig
from bot.openai_model import OpenAIChatModel
from bot.store.memory import InProcessMemory, RedisMemory
from bot.store.memory.base import ThreadMemory
from bot.tokens import EstimatingCounter
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.processes import LocalCluster, SuiteRedis

# The Redis the tests use: TEST_REDIS_URL, or else a redis-server of the suite's own on a free port.
# It starts when this module is imported, before any other conftest or test module imports the
# name, and stops at the end of the run (pytest_unconfigure).
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
_suite_redis: SuiteRedis | None = None
if not REDIS_URL:
    if shutil.which("redis-server") is None:
        raise pytest.UsageError(SuiteRedis.INSTALL)
    _suite_redis = SuiteRedis()
    _suite_redis.start()
    REDIS_URL = os.environ["TEST_REDIS_URL"] = _suite_redis.url
    atexit.register(_suite_redis.stop)  # imported outside pytest too (bench/ reuses the fakes)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _suite_redis is not None:
        _suite_redis.stop()


# CI replays the same examples every run (a found failure is kept as a regression test here);
# locally, hypothesis explores new ones each time.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # the suite needs Redis; say so instead of skipping silently
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
async def clean_prefix(redis_client: aioredis.Redis, key_prefix: str) -> AsyncIterator[str]:
    yield key_prefix
    keys = [k async for k in redis_client.scan_iter(match=f"{key_prefix}:*")]
    if keys:
        await redis_client.delete(*keys)


def make_memory(kind: str, client: aioredis.Redis, prefix: str, **kwargs) -> ThreadMemory:
    if kind == "redis":
        return RedisMemory(client, prefix=prefix, **kwargs)
    kwargs.pop("lock_ttl", None)
    return InProcessMemory(**kwargs)


@pytest.fixture(params=["inprocess", "redis"])
def memory_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def memory(memory_kind: str, request: pytest.FixtureRequest, clean_prefix: str) -> ThreadMemory:
    """The memory under test; modules that add "cluster" to `memory_kind` run on a local
    Redis Cluster too."""
    if memory_kind == "inprocess":
        return make_memory("inprocess", None, clean_prefix)  # type: ignore[arg-type]
    return make_memory("redis", store_client(request, memory_kind), clean_prefix)


def store_client(request: pytest.FixtureRequest, kind: str) -> aioredis.Redis:
    """The Redis client for a store test of `kind` "redis" (one node) or "cluster"."""
    return request.getfixturevalue("cluster_client" if kind == "cluster" else "redis_client")


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
    except RuntimeError as exc:  # the suite needs it; say so instead of skipping silently
        cluster.stop()
        pytest.fail(str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_client(
    local_cluster: LocalCluster, key_prefix: str
) -> AsyncIterator[aioredis.Redis]:
    from bot.store.redis_pool import connect_redis

    client = connect_redis(local_cluster.url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{key_prefix}:*")]
    for key in keys:  # one by one: the keys live in different slots
        await client.delete(key)
    await client.aclose()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


_MODELS: list[OpenAIChatModel] = []  # made by `openai_model` during the running test


@pytest.fixture(autouse=True)
async def _close_models() -> AsyncIterator[None]:
    """Every model client a test made is closed after it (aiohttp warns of an open session)."""
    yield
    while _MODELS:
        await _MODELS.pop().aclose()


def openai_model(server: FakeOpenAI, **kwargs) -> OpenAIChatModel:
    import httpx2
    import openai

    timeout = httpx2.Timeout(kwargs.pop("timeout", 5.0))
    client = openai.AsyncOpenAI(  # on the transport bot.openai_model.build_client gives it
        api_key="test-key",
        base_url=server.url,
        timeout=timeout,
        max_retries=kwargs.pop("max_retries", 0),
        http_client=openai.DefaultAioHttpClient(timeout=timeout),
    )
    made = OpenAIChatModel(client, "fake-model", EstimatingCounter(), official_api=False, **kwargs)
    _MODELS.append(made)
    return made


@pytest.fixture
async def model(fake_openai: FakeOpenAI) -> AsyncIterator[ChatModel]:
    chat = openai_model(fake_openai)
    yield chat
    await chat.aclose()


@pytest.fixture
def engine(memory: ThreadMemory, model: ChatModel) -> ConversationEngine:
    return ConversationEngine(
        memory, model, EstimatingCounter(), EngineConfig(max_prompt_tokens=2000)
    )


def redis_core(server: FakeOpenAI, client: aioredis.Redis, prefix: str, *, budget: int = 4000):
    """A Core over real Redis and the local model server, as `build_core` would make it."""
    from bot.assembly import Core
    from bot.search.channel_search import ChannelSearch
    from bot.settings import load_settings
    from bot.store.claims import RedisClaims
    from bot.store.kv import RedisNotes
    from bot.summaries.channel_log import RedisChannelLog
    from bot.summaries.summary_store import SummaryStore

    settings = load_settings(_env_file=None, OPENAI_BASE_URL=server.url)
    memory = RedisMemory(client, prefix=prefix)
    model = openai_model(server)
    notes = RedisNotes(client, prefix=prefix)
    log = RedisChannelLog(client, prefix=prefix, retention_seconds=7 * 86_400, max_messages=20_000)
    engine = ConversationEngine(
        memory,
        model,
        EstimatingCounter(),
        EngineConfig(max_prompt_tokens=budget),
        summaries=SummaryStore(notes),
        search=ChannelSearch(log),
    )
    from bot.feedback import RedisFeedback

    claims = RedisClaims(client, prefix=prefix)
    return Core(
        settings, memory, model, engine, claims, notes, log, RedisFeedback(client, prefix=prefix)
    )
