"""`python -m bot doctor`: check the configuration against the real services, one line per check
with what to do about it. The core checks the model and Redis; each configured platform adapter
adds its own checks (`Adapter.checks`, see bot/adapter_registry.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from bot.errors import BotError, ConfigError
from bot.settings import Settings

Status = Literal["ok", "warn", "fail"]
MIN_REDIS = (6, 2)  # XADD/XTRIM MINID (the channel log)


@dataclass(frozen=True, slots=True)
class Check:
    area: str  # model, redis, slack, discord, settings
    status: Status
    found: str  # what the check saw
    fix: str = ""  # what to do about it

    @classmethod
    def ok(cls, area: str, found: str) -> Check:
        return cls(area, "ok", found)

    @classmethod
    def warn(cls, area: str, found: str, fix: str) -> Check:
        return cls(area, "warn", found, fix)

    @classmethod
    def fail(cls, area: str, found: str, fix: str) -> Check:
        return cls(area, "fail", found, fix)


def _tiny_png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def model_checks(settings: Settings) -> list[Check]:
    """Reachable, the key accepted, the model name known, and whether it takes images."""
    import openai

    from bot.chat_model import ChatMessage, complete
    from bot.errors import ImagesRefused, ModelError, ModelMisconfigured
    from bot.openai_model import OpenAIChatModel
    from bot.settings import _check_model_provider
    from bot.tokens import EstimatingCounter

    area = "model"
    try:
        _check_model_provider(settings)
    except ConfigError as exc:
        fix = exc.expectation.removeprefix("no model is configured; ")
        return [Check.fail(area, "no model is configured", fix)]
    where = settings.azure_openai_endpoint or settings.openai_base_url or "api.openai.com"
    name = (settings.azure_openai_deployment if settings.uses_azure else None) or (
        settings.openai_model
    )
    key_var = "AZURE_OPENAI_API_KEY" if settings.uses_azure else "OPENAI_API_KEY"
    model = OpenAIChatModel.from_settings(settings, EstimatingCounter())
    checks: list[Check] = []
    listed: list[str] = []
    try:
        if not settings.uses_azure:  # Azure lists base models, not deployments
            try:
                page = await model._client.models.list()
                listed = sorted(m.id for m in page.data)
                checks.append(
                    Check.ok(
                        area, f"{where} answers and accepts the key ({len(listed)} listed models)"
                    )
                )
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                return [
                    Check.fail(
                        area,
                        f"{where} refused the key ({exc.status_code})",
                        f"check {key_var}; OpenAI keys are at https://platform.openai.com/api-keys",
                    )
                ]
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                fix = "start the model server, or fix OPENAI_BASE_URL"
                if not settings.openai_base_url:
                    fix = "check this machine's connection to the internet, or its proxy"
                return [Check.fail(area, f"cannot reach {where}: {exc}", fix)]
            except openai.APIStatusError:
                pass  # some compatible servers have no models list: the call below tells
        try:
            await complete(model, [ChatMessage("user", "Reply with the word OK.")], max_tokens=1)
            if listed and name not in listed and f"{name}:latest" not in listed:
                # Some servers answer any name with their default model: not the one meant.
                shown = ", ".join(listed[:12]) + (", …" if len(listed) > 12 else "")
                checks.append(
                    Check.fail(
                        area,
                        f"model {name} is not among the {len(listed)} models {where} lists "
                        "(it answered, perhaps with another model)",
                        f"set OPENAI_MODEL to one of: {shown}",
                    )
                )
                return checks
            checks.append(Check.ok(area, f"model {name} answers"))
        except ModelMisconfigured as exc:
            variable = "AZURE_OPENAI_DEPLOYMENT" if settings.uses_azure else "OPENAI_MODEL"
            shown = ", ".join(listed[:12]) + (", …" if len(listed) > 12 else "")
            fix = f"set {variable} to one of: {shown}" if listed else f"check {variable}"
            if "credentials" in str(exc):
                fix = f"check {key_var}"
            checks.append(Check.fail(area, f"model {name}: {exc}", fix))
            return checks
        except ModelError as exc:
            checks.append(
                Check.fail(
                    area,
                    f"model {name} did not answer: {exc}",
                    "try again; if it persists, check the model server",
                )
            )
            return checks
        if settings.vision == "off":
            checks.append(Check.ok(area, "images are not sent (OPENAI_VISION=off)"))
            return checks
        look = ChatMessage("user", "What colour is this? One word.", images=(_tiny_png(),))
        try:
            await complete(model, [look], max_tokens=1)
            checks.append(Check.ok(area, f"model {name} accepts images"))
        except ImagesRefused:
            checks.append(
                Check.warn(
                    area,
                    f"model {name} does not accept images",
                    "use a vision model to read shared images, or set "
                    "OPENAI_VISION=off (auto answers from the text alone)",
                )
            )
        except ModelError as exc:
            checks.append(
                Check.warn(
                    area, f"could not tell whether {name} takes images: {exc}", "try again later"
                )
            )
        return checks
    finally:
        await model.aclose()


async def redis_checks(settings: Settings) -> list[Check]:
    """Reachable, its version, an eviction policy that keeps thread keys, cluster mode."""
    from redis.exceptions import RedisError

    from bot.assembly import redact_url
    from bot.store.redis_pool import connect_redis, is_cluster

    area = "redis"
    if not settings.redis_url:
        return [
            Check.warn(
                area,
                "REDIS_URL is not set: memory lives in the process and is lost on restart",
                "set REDIS_URL=redis://localhost:6379/0 to keep threads "
                "and answer once across restarts and processes",
            )
        ]
    shown = redact_url(settings.redis_url)
    try:
        client = connect_redis(settings.redis_url, cluster=settings.redis_cluster)
    except ConfigError as exc:
        return [
            Check.fail(
                area, str(exc), "fix REDIS_URL (redis://, rediss://, unix:// or redis+cluster://)"
            )
        ]
    cluster = is_cluster(client)
    try:
        node: dict[str, Any] = {}
        if cluster:
            nodes: Any = client
            await nodes.initialize()
            node = {"target_nodes": nodes.get_default_node()}
        info: dict[str, Any] = await client.info(**node)
        info_flat = next(iter(info.values())) if cluster and "redis_version" not in info else info
        snapshots = await _snapshot_schedule(client, node)
    except (RedisError, OSError) as exc:
        await client.aclose()
        return [
            Check.fail(
                area, f"cannot reach Redis at {shown}: {exc}", "start Redis, or fix REDIS_URL"
            )
        ]
    await client.aclose()
    checks: list[Check] = []
    version = str(info_flat.get("redis_version", "0"))
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if numbers < MIN_REDIS:
        checks.append(
            Check.fail(
                area,
                f"Redis {version} at {shown}",
                "upgrade to Redis 6.2 or newer (the channel log trims by time)",
            )
        )
    else:
        checks.append(Check.ok(area, f"Redis {version} at {shown}"))
    policy, limit = str(info_flat.get("maxmemory_policy", "")), int(info_flat.get("maxmemory", 0))
    if limit and policy != "noeviction":
        checks.append(
            Check.warn(
                area,
                f"maxmemory {limit:,} bytes with maxmemory-policy "
                f"{policy}: Redis may evict thread memory and claims",
                "set maxmemory-policy noeviction, or raise maxmemory",
            )
        )
    else:
        checks.append(
            Check.ok(
                area,
                f"nothing is evicted (maxmemory-policy {policy or '?'}"
                + (")" if limit else ", no maxmemory)"),
            )
        )
    checks.append(_persistence(str(info_flat.get("aof_enabled", "0")) == "1", snapshots))
    enabled = str(info_flat.get("cluster_enabled", "0")) == "1"
    if enabled and not cluster:
        checks.append(
            Check.fail(
                area,
                "this Redis is a Cluster node",
                "write REDIS_URL=redis+cluster://… (or set REDIS_CLUSTER=true)",
            )
        )
    elif cluster:
        checks.append(Check.ok(area, "Redis Cluster: the cluster client is used"))
    else:
        checks.append(Check.ok(area, "a single node (not a cluster)"))
    return checks


async def _snapshot_schedule(client: Any, node: dict[str, Any]) -> str | None:
    """Redis's `save` setting ("" when snapshots are off); None where CONFIG is not allowed
    (managed services rename or refuse it)."""
    from redis.exceptions import ResponseError

    try:
        found = await client.config_get("save", **node)
    except ResponseError:
        return None
    value = found.get("save") if isinstance(found, dict) else None
    if value is None and isinstance(found, dict) and found:  # a cluster: by node
        value = next(iter(found.values()))
    return str(value) if value is not None else None


def _persistence(aof: bool, snapshots: str | None) -> Check:
    area = "redis"
    if aof:
        return Check.ok(area, "Redis keeps its data on disk (AOF)")
    if snapshots:
        return Check.ok(area, f"Redis keeps snapshots on disk (save {snapshots})")
    if snapshots is None:
        return Check.ok(area, "Redis persistence unknown (CONFIG is not allowed here)")
    return Check.warn(
        area,
        "Redis keeps nothing on disk (no AOF, no RDB snapshots): a restart loses every thread's "
        "memory, the channel logs and usage; running bots write back their claims and answers in "
        "flight, and read threads again from the platform",
        "enable appendonly yes (or RDB snapshots) for memory that survives a restart",
    )


PlatformChecks = Callable[[], Awaitable[list[Check]]]


async def diagnose(
    settings: Settings, platforms: Sequence[tuple[str, PlatformChecks]]
) -> list[Check]:
    """Every check, the model's, Redis's and each configured platform's, side by side."""

    async def guarded(area: str, run: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
        try:
            return await run()
        except BotError as exc:
            return [Check.fail(area, str(exc), "fix the setting it names")]
        except Exception as exc:  # a check must never hide the others
            return [
                Check.fail(
                    area,
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    "report this; the other checks still ran",
                )
            ]

    runs = [
        guarded("model", lambda: model_checks(settings)),
        guarded("redis", lambda: redis_checks(settings)),
        *(guarded(name, run) for name, run in platforms),
    ]
    found = [check for group in await asyncio.gather(*runs) for check in group]
    if not platforms:
        found.append(
            Check.warn(
                "platforms",
                "neither Slack nor Discord is configured",
                "set SLACK_BOT_TOKEN or DISCORD_BOT_TOKEN for `python -m bot "
                "run` (the console needs neither)",
            )
        )
    return found


MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def render(checks: Sequence[Check]) -> str:
    width = max((len(c.area) for c in checks), default=5)
    lines = []
    for check in checks:
        line = f"{MARK[check.status]}  {check.area:<{width}}  {check.found}"
        lines.append(line + (f" — {check.fix}" if check.fix else ""))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def as_json(checks: Sequence[Check]) -> str:
    passed = all(c.status != "fail" for c in checks)
    return json.dumps({"ok": passed, "checks": [asdict(c) for c in checks]}, ensure_ascii=False)
