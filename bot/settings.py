"""The core's settings, read from the environment and `.env` under the names the SDKs use."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.files.limits import MB, FileLimits
from bot.usage.ledger import Limits
from bot.usage.prices import parse_prices
from bot.usage.quotas import QuotaConfig

S = TypeVar("S", bound=BaseSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # The chat model: OpenAI, any OpenAI-compatible server, or Azure OpenAI.
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL", min_length=1)
    azure_openai_api_key: SecretStr | None = Field(None, alias="AZURE_OPENAI_API_KEY")
    azure_openai_endpoint: str | None = Field(None, alias="AZURE_OPENAI_ENDPOINT")
    openai_api_version: str | None = Field(None, alias="OPENAI_API_VERSION")
    azure_openai_deployment: str | None = Field(None, alias="AZURE_OPENAI_DEPLOYMENT")
    openai_timeout: float = Field(30.0, alias="OPENAI_TIMEOUT", gt=0, le=600)
    openai_max_retries: int = Field(1, alias="OPENAI_MAX_RETRIES", ge=0, le=5)
    # What a user waits at most for a whole answer, retries included (OPENAI_TIMEOUT is per chunk).
    answer_deadline: float = Field(90.0, alias="BOT_ANSWER_DEADLINE", gt=0, le=3600)

    # Memory.
    redis_url: str | None = Field(None, alias="REDIS_URL")
    redis_cluster: bool = Field(False, alias="REDIS_CLUSTER")  # or a redis+cluster:// URL
    redis_prefix: str = Field("asst", alias="REDIS_PREFIX", pattern=r"^[A-Za-z0-9_.-]+$")
    history_retention_days: float = Field(30.0, alias="BOT_HISTORY_RETENTION_DAYS", gt=0)
    max_turns: int = Field(400, alias="BOT_MAX_TURNS", ge=10, le=10_000)
    # A burst waits for a pooled connection instead of failing (redis-py 8 caps pools at 100).
    redis_max_connections: int = Field(64, alias="REDIS_MAX_CONNECTIONS", ge=2, le=10_000)
    redis_pool_timeout: float = Field(5.0, alias="REDIS_POOL_TIMEOUT", gt=0, le=60)

    # How many answers one process streams at once; more wait their turn (0: no limit).
    max_concurrent_answers: int = Field(200, alias="BOT_MAX_CONCURRENT_ANSWERS", ge=0, le=100_000)

    # Shutdown: how long in-flight answers may finish after SIGTERM before each ends in a sentence.
    shutdown_grace: float = Field(8.0, alias="BOT_SHUTDOWN_GRACE", ge=0, le=300)

    # Prompting.
    bot_name: str = Field("Assistant", alias="BOT_NAME", min_length=1)
    system_prompt: str | None = Field(None, alias="BOT_SYSTEM_PROMPT")
    max_prompt_tokens: int = Field(8000, alias="BOT_MAX_PROMPT_TOKENS", ge=1000, le=2_000_000)
    max_answer_tokens: int = Field(1024, alias="BOT_MAX_ANSWER_TOKENS", ge=16, le=200_000)
    tokenizer: str = Field("o200k_base", alias="BOT_TOKENIZER")

    # Summaries and the channel log.
    summary_model: str | None = Field(None, alias="OPENAI_SUMMARY_MODEL")
    fold_model: str | None = Field(None, alias="OPENAI_FOLD_MODEL")  # default: the summary model
    summary_concurrency: int = Field(4, alias="BOT_SUMMARY_CONCURRENCY", ge=1, le=32)
    summary_max_messages: int = Field(5000, alias="BOT_SUMMARY_MAX_MESSAGES", ge=10, le=100_000)
    channel_log_days: float = Field(7.0, alias="BOT_CHANNEL_LOG_DAYS", ge=0, le=365)
    channel_log_max: int = Field(20_000, alias="BOT_CHANNEL_LOG_MAX", ge=100, le=1_000_000)
    grounded_answers: bool = Field(True, alias="BOT_GROUNDED_ANSWERS")
    # Dense retrieval beside the lexical search (bot.search.dense); off unless a model is named.
    embedding_model: str | None = Field(None, alias="OPENAI_EMBEDDING_MODEL")
    embedding_base_url: str | None = Field(None, alias="OPENAI_EMBEDDING_BASE_URL")
    embedding_min_similarity: float = Field(
        0.5, alias="OPENAI_EMBEDDING_MIN_SIMILARITY", ge=-1, le=1
    )

    # Files and images people share.
    vision: str = Field("auto", alias="OPENAI_VISION", pattern=r"^(auto|on|off)$")
    max_file_mb: float = Field(10.0, alias="BOT_MAX_FILE_MB", gt=0, le=512)
    max_message_files_mb: float = Field(25.0, alias="BOT_MAX_MESSAGE_FILES_MB", gt=0, le=2048)
    max_files: int = Field(10, alias="BOT_MAX_FILES", ge=1, le=100)
    max_pdf_pages: int = Field(300, alias="BOT_MAX_PDF_PAGES", ge=1, le=10_000)
    image_long_side: int = Field(2048, alias="BOT_IMAGE_LONG_SIDE", ge=64, le=8192)
    image_short_side: int = Field(768, alias="BOT_IMAGE_SHORT_SIDE", ge=64, le=8192)
    file_keep_chars: int = Field(100_000, alias="BOT_FILE_KEEP_CHARS", ge=0, le=10_000_000)

    # Usage, cost and quotas (bot.usage): daily token limits (0: none), who is exempt, prices.
    user_daily_tokens: int = Field(0, alias="BOT_USER_DAILY_TOKENS", ge=0)
    channel_daily_tokens: int = Field(0, alias="BOT_CHANNEL_DAILY_TOKENS", ge=0)
    workspace_daily_tokens: int = Field(0, alias="BOT_WORKSPACE_DAILY_TOKENS", ge=0)
    admins: str = Field("", alias="BOT_ADMINS")  # platform user ids, comma-separated
    prices: str = Field("", alias="BOT_PRICES")  # model=input/output per million tokens, ...
    usage_retention_days: float = Field(90.0, alias="BOT_USAGE_RETENTION_DAYS", ge=1, le=3650)

    log_level: str = Field("INFO", alias="LOG_LEVEL", pattern=r"(?i)^(debug|info|warning|error)$")
    log_format: str = Field("text", alias="LOG_FORMAT", pattern=r"^(text|json)$")

    # Operations: /healthz, /readyz and /metrics of `python -m bot run`.
    ops_host: str = Field("0.0.0.0", alias="OPS_HOST")
    ops_port: int = Field(9477, alias="OPS_PORT", ge=0, le=65535)  # 0: no operations endpoint

    @field_validator("openai_base_url", "azure_openai_endpoint", "embedding_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 (a bad port raises here)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:11434/v1")
        return value.strip()

    @property
    def uses_azure(self) -> bool:
        return bool(self.azure_openai_endpoint)

    def file_limits(self) -> FileLimits:
        return FileLimits(
            max_file_bytes=int(self.max_file_mb * MB),
            max_message_bytes=int(max(self.max_message_files_mb, self.max_file_mb) * MB),
            max_files=self.max_files,
            max_pages=self.max_pdf_pages,
            image_long_side=self.image_long_side,
            image_short_side=self.image_short_side,
            keep_chars=self.file_keep_chars,
        )

    def quota_config(self) -> QuotaConfig:
        return QuotaConfig(
            limits=Limits(
                user=self.user_daily_tokens,
                channel=self.channel_daily_tokens,
                workspace=self.workspace_daily_tokens,
            ),
            admins=frozenset(a.strip() for a in self.admins.split(",") if a.strip()),
            prices=parse_prices(self.prices),
        )

    @property
    def retention_seconds(self) -> int:
        return max(60, int(self.history_retention_days * 86_400))


def _alias_of(field_name: str, model: type[BaseSettings] = Settings) -> str:
    info = model.model_fields.get(field_name)
    return (info.alias if info and info.alias else field_name).upper()


def _describe(error: Any, model: type[BaseSettings]) -> ConfigError:
    loc = error.get("loc") or ("settings",)
    variable = _alias_of(str(loc[0]), model)
    given = error.get("input")
    shown = f", got {given!r}" if isinstance(given, str | int | float) else ""
    message = str(error.get("msg") or "invalid value")
    message = message.removeprefix("Value error, ")  # our own validators' sentences
    return ConfigError(variable, f"{message[:1].lower()}{message[1:]}{shown}")


def _check_model_provider(settings: Settings) -> None:
    if settings.uses_azure:
        for name in ("azure_openai_api_key", "openai_api_version", "azure_openai_deployment"):
            if not getattr(settings, name):
                raise ConfigError(
                    _alias_of(name), "is required with AZURE_OPENAI_ENDPOINT (Azure OpenAI)"
                )
        return
    key = settings.openai_api_key
    if key is not None and not key.get_secret_value().strip():
        settings.openai_api_key = None  # `OPENAI_API_KEY=` as .env.example leaves it: not set
    if settings.openai_api_key is None and not settings.openai_base_url:
        raise ConfigError(
            "OPENAI_API_KEY",
            "no model is configured; set OPENAI_API_KEY to your OpenAI API key, or "
            "OPENAI_BASE_URL=http://localhost:11434/v1 for Ollama (any OpenAI-compatible server)",
        )


def read_settings(model: type[S], **overrides: Any) -> S:
    """Read any settings class; a validation error becomes one ConfigError naming the variable."""
    try:
        return model(**overrides)
    except ValidationError as exc:
        raise _describe(exc.errors()[0], model) from None


def load_settings(**overrides: Any) -> Settings:
    """Read and check the core's settings."""
    settings = read_settings(Settings, **overrides)
    _check_model_provider(settings)
    settings.quota_config()  # a malformed BOT_PRICES stops start-up, naming the variable
    return settings
