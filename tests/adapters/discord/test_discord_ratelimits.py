"""discord.py's bucket sweep, amortized (adapters.discord.ratelimits)."""

from __future__ import annotations

import asyncio

import discord.http
import pytest

from adapters.discord.ratelimits import STEP, amortize_bucket_sweep
from tests.adapters.discord.conftest import DiscordHarness


async def test_a_thousand_new_buckets_cost_linear_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    looked = 0
    inactive = discord.http.Ratelimit.is_inactive

    def counting(bucket: discord.http.Ratelimit) -> bool:  # the buckets the sweep looks at
        nonlocal looked
        looked += 1
        return inactive(bucket)

    monkeypatch.setattr(discord.http.Ratelimit, "is_inactive", counting)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    assert amortize_bucket_sweep(http)
    for n in range(1000):
        http.get_ratelimit(f"POST /channels/{{channel_id}}/messages:{n}")
    assert len(http._buckets) == 1000  # all active: none removed
    # discord.py alone looks at every bucket for each new one past 256: about 470,000 looks.
    assert looked <= 3 * 1000


async def test_idle_buckets_are_still_swept() -> None:
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    amortize_bucket_sweep(http)
    for n in range(STEP - 1):
        http.get_ratelimit(f"old:{n}")
    for bucket in http._buckets.values():
        bucket._last_request -= 301  # idle five minutes and more
    for n in range(STEP):
        http.get_ratelimit(f"new:{n}")
    assert not any(key.startswith("old:") for key in http._buckets)
    assert len(http._buckets) < 2 * STEP


async def test_a_discord_py_without_the_sweep_is_left_alone() -> None:
    class Other:
        def __init__(self) -> None:
            self._buckets: dict[str, object] = {}

    other = Other()
    assert not amortize_bucket_sweep(other)
    assert not hasattr(other, "_try_clear_expired_ratelimits")


async def test_the_bot_s_client_sweeps_amortized(discord_bot: DiscordHarness) -> None:
    sweep = discord_bot.client.http._try_clear_expired_ratelimits
    assert getattr(sweep, "__name__", "") == "amortized"
