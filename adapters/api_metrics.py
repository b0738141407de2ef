"""Counting the platforms' API calls and 429s, from the HTTP sessions their SDKs use.

An aiohttp TraceConfig sees every request slack_sdk or discord.py makes, whatever the SDK's
own retry logic does, so each attempt (and each 429) is counted once, by method.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
from yarl import URL

from bot.metrics import PLATFORM_CALLS, RATE_LIMITED, route_label, status_class


def slack_method(url: URL) -> str:
    """`https://slack.com/api/chat.postMessage` → `chat.postMessage`."""
    path = url.path
    if "/api/" in path:
        name = path.rsplit("/", 1)[-1]
        if name.replace(".", "").isalnum() and len(name) <= 60:
            return name
    return "other"


def discord_route(url: URL) -> str:
    """`/api/v10/channels/123/messages/456` → `/channels/{id}/messages/{id}`."""
    path = url.path
    marker = path.find("/api/v")
    if marker >= 0:
        path = path[marker + len("/api/v") :]
        path = path[path.find("/") :] if "/" in path else "/"
    return route_label(path)


def api_trace(platform: str, method_of: Callable[[URL], str]) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    # Each (method, status)'s counter, looked up once: `labels` validates and locks on every
    # call, and this runs for every request the platform's SDK makes (methods and statuses are
    # few: routes are bounded labels).
    counted: dict[tuple[str, int], Any] = {}

    async def on_end(
        _: aiohttp.ClientSession, __: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        method = method_of(params.url)
        status = params.response.status
        counter = counted.get((method, status))
        if counter is None:
            counter = counted[method, status] = PLATFORM_CALLS.labels(
                platform, method, status_class(status)
            )
        counter.inc()
        if status == 429:
            RATE_LIMITED.labels(platform, method).inc()

    async def on_error(
        _: aiohttp.ClientSession,
        __: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        PLATFORM_CALLS.labels(platform, method_of(params.url), "error").inc()

    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    trace.freeze()
    return trace
