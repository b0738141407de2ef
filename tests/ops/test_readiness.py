"""Readiness while the bot starts: not ready until every platform says it is up, and a request
for an endpoint an adapter has not mounted yet gets a 503 the platform retries, not a 404."""

from __future__ import annotations

import gc

import aiohttp
from aiohttp import web

from bot.cli import settle_heap
from bot.ops import OpsServer
from bot.readiness import Readiness
from tests.fakes.processes import free_port


def test_a_starting_platform_keeps_the_bot_unready_quietly_until_it_is_up(caplog) -> None:
    readiness = Readiness()
    readiness.starting("slack")
    assert readiness.report() == {"ready": False, "stopping": False,
                                  "down": {"slack": "starting"}, "up": []}  # fmt: skip
    readiness.up("slack")
    assert readiness.ready and not caplog.records  # neither "down" nor "back" was logged
    readiness.starting("discord")
    readiness.watch("discord", lambda: "the gateway is connecting")
    assert readiness.report()["down"] == {"discord": "the gateway is connecting"}


def test_what_waits_for_the_start_runs_once_when_the_last_platform_is_up_or_down() -> None:
    readiness, calls = Readiness(), []
    readiness.starting("slack")
    readiness.starting("discord")
    readiness.when_started(lambda: calls.append("started"))
    readiness.up("slack")
    assert calls == []  # discord is still on its way
    readiness.down("discord", "the gateway refused the token")
    assert calls == ["started"]
    readiness.up("discord")
    readiness.up("slack")
    assert calls == ["started"]


def test_the_heap_built_while_starting_is_set_aside_from_the_collector() -> None:
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


async def test_an_endpoint_not_mounted_yet_answers_503_while_starting() -> None:
    readiness = Readiness()
    readiness.starting("slack")
    server = OpsServer(readiness, "127.0.0.1", free_port())
    await server.start()
    url = f"http://127.0.0.1:{server.port}/slack/events"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"{}") as response:
                assert response.status == 503 and response.headers["Retry-After"] == "1"

            async def events(_: web.Request) -> web.Response:
                return web.Response(text="ok")

            server.mount("POST", "/slack/events", events)
            readiness.up("slack")
            async with session.post(url, data=b"{}") as response:
                assert response.status == 200
            async with session.post(url.replace("events", "other"), data=b"{}") as response:
                assert response.status == 404  # ready: an unknown path is not found
    finally:
        await server.stop()
