"""One contract for the usage ledger in the process, on one Redis node and on a Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import redis.asyncio as aioredis

from bot.usage.ledger import InProcessLedger, Limits, Refusal, Reservation, UsageLedger
from bot.usage.redis_ledger import RedisLedger
from bot.usage.tally import Payer, Spent, Tally
from tests.conftest import REDIS_URL, store_client

DAY = date(2026, 11, 29)
ALICE = Payer("slack", "T1", "C1", "U1", "Alice")
BOB = Payer("slack", "T1", "C2", "U2", "Bob")
ELSEWHERE = Payer("slack", "T9", "C1", "U1", "Alice")


@pytest.fixture(params=["inprocess", "redis", "cluster"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger(kind: str, request: pytest.FixtureRequest, key_prefix: str) -> UsageLedger:
    if kind == "inprocess":
        return InProcessLedger()
    request.getfixturevalue("clean_prefix")
    return RedisLedger(store_client(request, kind), prefix=key_prefix)


@pytest.fixture
async def other_ledger(
    kind: str, ledger: UsageLedger, request: pytest.FixtureRequest, key_prefix: str
) -> AsyncIterator[UsageLedger]:
    """Another process's view of the same ledger (its own connection)."""
    if kind == "inprocess":
        yield ledger
        return
    from bot.store.redis_pool import connect_redis

    url = request.getfixturevalue("local_cluster").url if kind == "cluster" else REDIS_URL
    client = connect_redis(url)
    await client.ping()  # knows the cluster's slots before it is asked many things at once
    yield RedisLedger(client, prefix=key_prefix)
    await client.aclose()


def tally(payer: Payer, *spent: Spent) -> Tally:
    return Tally(payer, list(spent))


async def spend(ledger: UsageLedger, t: Tally, day: date = DAY, held: Reservation | None = None):
    await ledger.entry(t, day, held).write()


async def test_spending_is_totalled_by_model_user_and_channel(ledger: UsageLedger) -> None:
    await spend(ledger, tally(ALICE, Spent("gpt-4o-mini", 100, 20), Spent("gpt-4o", 10, 5)))
    await spend(ledger, tally(BOB, Spent("gpt-4o-mini", 50, 10, estimated=True)))
    await spend(ledger, tally(ELSEWHERE, Spent("gpt-4o-mini", 1000, 1000)))  # another workspace
    totals = await ledger.days("slack:T1", [DAY])
    assert totals.tokens == 195
    assert {m: (t.input, t.output) for m, t in totals.models.items()} == {
        "gpt-4o-mini": (150, 30),
        "gpt-4o": (10, 5),
    }
    assert {u: sum(t.tokens for t in b.values()) for u, b in totals.users.items()} == {
        "U1": 135,
        "U2": 60,
    }
    assert set(totals.channels) == {"C1", "C2"}
    assert totals.names == {"U1": "Alice", "U2": "Bob"}
    assert totals.estimated_calls == 1
    assert await ledger.spent_today(ALICE, DAY) == {"user": 135, "channel": 135, "workspace": 195}


async def test_days_add_up_and_other_days_are_apart(ledger: UsageLedger) -> None:
    await spend(ledger, tally(ALICE, Spent("m", 10, 10)), DAY - timedelta(days=1))
    await spend(ledger, tally(ALICE, Spent("m", 1, 1)), DAY)
    assert (await ledger.days("slack:T1", [DAY])).tokens == 2
    assert (await ledger.days("slack:T1", [DAY - timedelta(days=1), DAY])).tokens == 22
    assert (await ledger.days("slack:T1", [DAY + timedelta(days=1)])).tokens == 0


@pytest.mark.parametrize(
    ("limits", "which"),
    [
        (Limits(user=100), "user"),
        (Limits(channel=100), "channel"),
        (Limits(workspace=100), "workspace"),
        (Limits(user=100, channel=100, workspace=100), "user"),
    ],
)
async def test_a_reached_limit_refuses_and_says_which(
    ledger: UsageLedger, limits: Limits, which: str
) -> None:
    assert isinstance(await ledger.reserve(ALICE, DAY, 50, limits), Reservation)
    held = await ledger.reserve(ALICE, DAY, 0, Limits())  # no limits: nothing held
    assert isinstance(held, Reservation) and held.fields == ()
    await spend(ledger, tally(ALICE, Spent("m", 90, 10)))
    refused = await ledger.reserve(ALICE, DAY, 50, limits)
    assert isinstance(refused, Refusal)
    assert (refused.limit, refused.allowed, refused.used) == (which, 100, 100)


async def test_reserved_tokens_count_until_the_usage_is_recorded(ledger: UsageLedger) -> None:
    limits = Limits(user=1000)
    first = await ledger.reserve(ALICE, DAY, 600, limits)
    second = await ledger.reserve(ALICE, DAY, 600, limits)  # 600 held < 1000: still admitted
    assert isinstance(first, Reservation) and isinstance(second, Reservation)
    refused = await ledger.reserve(ALICE, DAY, 600, limits)
    assert isinstance(refused, Refusal) and (refused.used, refused.reserved) == (0, 1200)
    await spend(ledger, tally(ALICE, Spent("m", 5, 5)), held=first)
    await spend(ledger, tally(ALICE, Spent("m", 5, 5)), held=second)
    assert isinstance(await ledger.reserve(ALICE, DAY, 600, limits), Reservation)
    assert isinstance(await ledger.reserve(BOB, DAY, 600, limits), Reservation)  # Bob's own


async def test_a_reservation_made_before_midnight_is_released_on_its_own_day(
    ledger: UsageLedger,
) -> None:
    limits = Limits(user=100)
    held = await ledger.reserve(ALICE, DAY, 100, limits)
    assert isinstance(held, Reservation)
    assert isinstance(await ledger.reserve(ALICE, DAY, 100, limits), Refusal)
    await spend(ledger, tally(ALICE, Spent("m", 5, 5)), DAY + timedelta(days=1), held)
    assert isinstance(await ledger.reserve(ALICE, DAY, 1, limits), Reservation)
    assert await ledger.spent_today(ALICE, DAY + timedelta(days=1)) == {
        "user": 10, "channel": 10, "workspace": 10,
    }  # fmt: skip


async def test_processes_racing_for_the_last_tokens_admit_exactly_one(
    ledger: UsageLedger, other_ledger: UsageLedger
) -> None:
    limits = Limits(user=1000)
    await spend(ledger, tally(ALICE, Spent("m", 900, 50)))  # 50 tokens left
    results = await asyncio.gather(
        *((ledger if n % 2 else other_ledger).reserve(ALICE, DAY, 500, limits) for n in range(10))
    )
    assert sum(isinstance(r, Reservation) for r in results) == 1


async def test_days_past_the_retention_are_dropped(ledger: UsageLedger, key_prefix: str) -> None:
    """Redis expires a day's hash; the process drops its own when a later day begins."""
    await spend(ledger, tally(ALICE, Spent("m", 1, 1)))
    if isinstance(ledger, RedisLedger):
        client: aioredis.Redis = ledger.client
        [key] = [k async for k in client.scan_iter(match=f"{key_prefix}:usage:*")]
        assert 89 * 86_400 < await client.ttl(key) <= 90 * 86_400
        return
    await spend(ledger, tally(ALICE, Spent("m", 1, 1)), DAY + timedelta(days=90))
    assert (await ledger.days("slack:T1", [DAY])).tokens == 2  # 90 days on: still kept
    await spend(ledger, tally(ALICE, Spent("m", 1, 1)), DAY + timedelta(days=91))
    assert (await ledger.days("slack:T1", [DAY])).tokens == 0


async def test_a_save_beside_a_script_redis_forgot_is_kept_once(clean_prefix: str) -> None:
    """Redis forgot the usage script but not the save's: the save ran and the usage was told
    NOSCRIPT. Running the whole pipeline again would append the turns twice."""
    from bot.conversation import ThreadRef, Turn
    from bot.store.memory import RedisMemory
    from bot.store.redis_pool import connect_redis

    client = connect_redis(REDIS_URL)
    memory = RedisMemory(client, prefix=clean_prefix)
    ledger = RedisLedger(client, prefix=clean_prefix)
    thread = ThreadRef("slack", "T1", "C1", "1.1")
    try:
        await client.script_flush()
        await memory.append(thread, Turn("user", "first", message_id="1.1"))  # loads the save's
        entry = ledger.entry(Tally(ALICE, [Spent("m", 10, 5)]), DAY, None)
        await memory.append(thread, Turn("user", "second", message_id="1.2"), riders=[entry])
        assert [t.text for t in (await memory.load(thread)).turns] == ["first", "second"]
        assert (await ledger.days(ALICE.scope, [DAY])).tokens == 15
    finally:
        await memory.aclose()


def test_one_answer_adds_one_counter_per_limit_and_one_for_who_used_which_model() -> None:
    """A model call's input and output share one counter per user, channel and model (both
    halves of one integer), so the script that records an answer runs 4 increments, not 9."""
    from bot.usage.ledger import day_fields

    fields = day_fields(tally(ALICE, Spent("gpt-4o-mini", 100, 20), Spent("gpt-4o", 10, 5)))
    assert sorted(k for k in fields if not k.startswith("ucm|")) == ["c|C1|t", "t", "u|U1|t"]
    assert len([k for k in fields if k.startswith("ucm|")]) == 2  # one per model


def test_days_recorded_in_the_older_layout_still_add_up() -> None:
    """Hashes written before the packed counters (m|, um|, cm| by side) are read as before."""
    from bot.usage.ledger import UsageTotals, day_fields

    totals = UsageTotals()
    totals.add({"t": "135", "m|gpt-4o-mini|i": "100", "m|gpt-4o-mini|o": "20",
                "um|U1|gpt-4o-mini|i": "100", "um|U1|gpt-4o-mini|o": "20",
                "cm|C1|gpt-4o-mini|i": "100", "cm|C1|gpt-4o-mini|o": "20"})  # fmt: skip
    totals.add({k: str(v) for k, v in day_fields(tally(ALICE, Spent("gpt-4o-mini", 7, 3))).items()})
    assert (totals.models["gpt-4o-mini"].input, totals.models["gpt-4o-mini"].output) == (107, 23)
    assert totals.users["U1"]["gpt-4o-mini"].tokens == 130
    assert totals.channels["C1"]["gpt-4o-mini"].tokens == 130
