"""Prometheus metrics: what the bot does, how long it takes, what fails. Served at /metrics.

Label values are bounded: platforms, outcomes, error class names, purposes, API method names
and routes with their ids replaced. Never a user, channel or thread id.
"""

from __future__ import annotations

import asyncio
import re

from prometheus_client import Counter, Gauge, Histogram

from bot.errors import BotError

LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
WAIT = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30)

EVENTS = Counter(
    "assistant_events", "Events received from the platforms, by type.", ["platform", "type"]
)
ANSWERS = Counter(
    "assistant_answers",
    "Messages handled, by outcome: answered, cut_off, failed (with its cause), duplicate, ignored.",
    ["platform", "outcome", "cause"],
)
IN_FLIGHT = Gauge("assistant_answers_in_flight", "Answers being streamed in this process.")
ANSWER_QUEUE = Histogram(
    "assistant_answer_queue_seconds",
    "How long an answer waited for its turn (BOT_MAX_CONCURRENT_ANSWERS).",
    buckets=WAIT,
)
LOCK_WAIT = Histogram(
    "assistant_thread_lock_wait_seconds",
    "How long an answer waited for earlier answers of its thread (and for its turn).",
    buckets=WAIT,
)
FIRST_TOKEN = Histogram(
    "assistant_model_first_token_seconds",
    "Seconds from a model call to its first text.",
    ["purpose"],
    buckets=LATENCY,
)
MODEL_TIME = Histogram(
    "assistant_model_seconds", "Seconds a model call took in all.", ["purpose"], buckets=LATENCY
)
MODEL_CALLS = Counter(
    "assistant_model_calls", "Model calls, by purpose and outcome.", ["purpose", "outcome"]
)
TOKENS = Counter(
    "assistant_model_tokens",
    "Tokens sent (prompt) and received (completion); estimated when the server gave no usage.",
    ["purpose", "kind"],
)
SUMMARIES = Counter("assistant_summaries", "Summaries made, by subject.", ["subject"])
SUMMARY_CALLS = Counter("assistant_summary_model_calls", "Model calls made for summaries.")
PLATFORM_CALLS = Counter(
    "assistant_platform_api_calls",
    "Calls to the platforms' Web/REST APIs, by method and status class.",
    ["platform", "method", "status"],
)
RATE_LIMITED = Counter(
    "assistant_platform_rate_limited",
    "Platform API calls answered 429, by method.",
    ["platform", "method"],
)
QUOTA_REFUSALS = Counter(
    "assistant_quota_refusals", "Requests refused by a daily token limit, by limit.", ["limit"]
)
QUOTA_UNCHECKED = Counter(
    "assistant_quota_unchecked", "Requests let through without a quota check (Redis down)."
)
REDIS_ERRORS = Counter("assistant_redis_errors", "Redis calls that failed.")
REDIS_COMMANDS = Counter(
    "assistant_redis_commands",
    "Commands sent to Redis (a script call is one, whatever it runs inside Redis).",
)
REDIS_ROUND_TRIPS = Counter(
    "assistant_redis_round_trips", "Network round trips to Redis (a pipeline or script is one)."
)
LIVENESS_BEATS = Counter(
    "assistant_liveness_beats",
    "Liveness renewals (with recovery passes) this process made, whether Redis answered or not.",
)

_KNOWN_PLATFORMS = {"slack", "discord", "console"}


def platform_label(platform: str) -> str:
    return platform if platform in _KNOWN_PLATFORMS else "other"


def cause_of(error: BaseException) -> str:
    """An error's class name when it is one of ours (a fixed set), else a fixed word."""
    if isinstance(error, BotError):
        return type(error).__name__
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"  # shutting down past the grace period
    if isinstance(error, GeneratorExit):
        return "abandoned"  # the adapter stopped reading (its reply failed)
    return "other"


def answered(platform: str, outcome: str, error: BaseException | None = None) -> None:
    cause = cause_of(error) if error is not None else ""
    ANSWERS.labels(platform_label(platform), outcome, cause).inc()


_DIGITS = re.compile(r"/\d+")
_SECRET_AFTER = re.compile(r"/(webhooks|interactions)/(\{id\})/[^/]+")


def route_label(path: str) -> str:
    """A REST path as a bounded label: ids become {id}, webhook and interaction tokens {token}."""
    path = _DIGITS.sub("/{id}", path.split("?", 1)[0])
    return _SECRET_AFTER.sub(r"/\1/\2/{token}", path)[:80]


def status_class(status: int) -> str:
    return f"{status // 100}xx"
