"""How the bot connects to Redis: a sized, blocking pool that retries a dead connection once.

redis-py 8 caps a pool at 100 connections and raises "Too many connections" past it, so a burst
of events failed instead of waiting. A `BlockingConnectionPool` makes a caller wait up to
`REDIS_POOL_TIMEOUT` for a free connection. After Redis restarts, the first command on a pooled
connection fails with "Connection closed by server": one quick retry on a fresh connection hides
that, and a Redis that is really down still fails within a fraction of a second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from bot.errors import ConfigError, StoreFull, StoreUnavailable
from bot.metrics import REDIS_COMMANDS, REDIS_ERRORS, REDIS_ROUND_TRIPS

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_POOL_TIMEOUT = 5.0


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str, cluster: bool = False) -> str | None:
    """The plain URL to reach a Redis Cluster by, or None for a single node: a
    `redis+cluster://` (`rediss+cluster://`) URL, or any URL with REDIS_CLUSTER=true."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in CLUSTER_SCHEMES:
        return f"{CLUSTER_SCHEMES[scheme]}://{rest}"
    return url if cluster else None


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def connect_redis(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT,
    cluster: bool = False,
) -> aioredis.Redis:
    """A client for `url`: a single node (a blocking pool), or a Redis Cluster through
    redis-py's cluster client, which has the same commands (hence the one type here)."""
    plain = cluster_url(url, cluster)
    if plain is not None:
        return cast(aioredis.Redis, _cluster(plain, max_connections))
    try:
        pool = _pool(url, max_connections, pool_timeout)
    except ValueError as exc:  # an unknown scheme, a bad port: a setting, not a crash
        raise ConfigError("REDIS_URL", f"is not a Redis URL ({exc})") from None
    pool.connection_class = _counting(pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def _pool(url: str, max_connections: int, pool_timeout: float) -> aioredis.BlockingConnectionPool:
    return aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=3,
        # A new connection costs HELLO (and a health-check PING) only: no CLIENT SETINFO pair,
        # no CLIENT MAINT_NOTIFICATIONS (which older servers answer with an error anyway).
        driver_info=None,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.02),
            retries=1,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
    )


async def open_pool(client: aioredis.Redis, count: int) -> int:
    """Open `count` of a single node's pooled connections now, each with its handshake, so a
    burst of answers right after the start does not make them one at a time (fifty mentions at
    once made fifty). Returns how many the pool holds open; a cluster's pools are left alone, and
    a Redis out of reach leaves them to be made as they are needed."""
    if is_cluster(client):
        return 0
    pool = client.connection_pool
    taken = []
    try:
        for _ in range(count):
            taken.append(await pool.get_connection())  # type: ignore[no-untyped-call]
    except (RedisError, OSError) as exc:
        log.info("Redis connections are made as needed: %s", exc)
    finally:
        for connection in taken:
            await pool.release(connection)
    return len(taken)


def _cluster(url: str, max_connections: int) -> RedisCluster:
    try:
        client = RedisCluster.from_url(
            url,
            max_connections=max_connections,  # per node
            socket_connect_timeout=3,
            socket_timeout=5,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
    except ValueError as exc:
        raise ConfigError("REDIS_URL", f"is not a Redis URL ({exc})") from None
    kwargs = client.connection_kwargs  # what the nodes found later are made with
    kwargs["connection_class"] = _counting(kwargs["connection_class"])
    return client


_COUNTING: dict[type[Any], type[Any]] = {}


def _counting(base: type[Any]) -> type[Any]:
    """`base` (plain, TLS or unix-socket connection) counting every network round trip (one
    packed send per command, pipeline or script call, handshakes included) and every command
    sent (a script call is one, whatever it runs inside Redis) for /metrics."""
    if base not in _COUNTING:

        async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
            REDIS_ROUND_TRIPS.inc()
            await base.send_packed_command(self, command, check_health)

        def pack_command(self: Any, *args: Any) -> list[bytes]:
            REDIS_COMMANDS.inc()
            packed: list[bytes] = base.pack_command(self, *args)
            return packed

        _COUNTING[base] = type(f"Counting{base.__name__}", (base,),
                               {"send_packed_command": send_packed_command,
                                "pack_command": pack_command})  # fmt: skip
    return _COUNTING[base]


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """A registered script with its keys and arguments, to be sent in someone's pipeline."""

    script: AsyncScript
    keys: list[str]
    args: list[Any]

    def queue(self, pipe: Any) -> None:
        pipe.evalsha(self.script.sha, len(self.keys), *self.keys, *self.args)


class _Recorded:
    """A pipeline's calls, kept so that any subset of them can be sent (again)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def _pipeline(
    client: aioredis.Redis, calls: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]]
) -> Any:
    pipe = client.pipeline(transaction=False)
    for name, args, kwargs in calls:
        if name == "evalsha":  # a cluster pipeline refuses the method, not the command
            pipe.execute_command("EVALSHA", *args)
        else:
            getattr(pipe, name)(*args, **kwargs)
    return pipe


async def run_pipeline(
    client: aioredis.Redis, queue: Callable[[Any], None], scripts: Sequence[AsyncScript]
) -> list[Any]:
    """Run a pipeline that calls `scripts` by their sha, on one node or (keys of one slot) a
    cluster. redis-py would ask SCRIPT EXISTS before every such pipeline (a round trip); the
    scripts are loaded instead only when Redis says it lost them (a restart), and only the calls
    it refused are sent again: the others ran, and a claim or a save must not run twice."""
    recorded = _Recorded()
    queue(recorded)
    results = list(await _pipeline(client, recorded.calls).execute(raise_on_error=False))
    refused = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if refused:
        for script in scripts:
            await client.script_load(script.script)
        again = await _pipeline(client, [recorded.calls[i] for i in refused]).execute(
            raise_on_error=False
        )
        for i, result in zip(refused, again, strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def redis_unavailable(exc: BaseException) -> StoreUnavailable:
    """The core's error for a failed Redis call, counted in the metrics (one place for both)."""
    REDIS_ERRORS.inc()
    if isinstance(exc, OutOfMemoryError) or str(exc).startswith("OOM "):
        return StoreFull(f"Redis is full (maxmemory reached, nothing may be evicted): {exc}")
    return StoreUnavailable(f"Redis is unavailable: {exc}")


def side_client(client: aioredis.Redis, connections: int = 4) -> aioredis.Redis:
    """A small pool of its own to the same Redis, for calls that must not queue behind a
    burst (renewing the thread locks of answers in progress). A cluster client is shared."""
    pool = getattr(client, "connection_pool", None)
    if is_cluster(client) or pool is None:
        return client
    side = aioredis.BlockingConnectionPool(
        connection_class=pool.connection_class,
        max_connections=connections,
        timeout=getattr(pool, "timeout", DEFAULT_POOL_TIMEOUT),
        **pool.connection_kwargs,
    )
    return aioredis.Redis.from_pool(side)
