"""Usage and quotas through the real slack_bolt app and slack_sdk client: limits on mentions and
summaries, and /usage, ephemeral."""

from __future__ import annotations

from bot.usage.ledger import Limits
from bot.usage.prices import parse_prices
from bot.usage.quotas import QuotaConfig, Quotas
from bot.usage.redis_ledger import RedisLedger
from bot.usage.tally import Payer
from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import BOT_USER, TEAM, FakeSlack


def with_quotas(slack: SlackHarness, prefix: str, **config) -> Quotas:
    client = slack.core.memory.client  # type: ignore[attr-defined]
    quotas = Quotas(RedisLedger(client, prefix=prefix), QuotaConfig(**config))
    slack.core.engine.quotas = quotas
    return quotas


async def usage(slack: SlackHarness, user: str = "UALICE", name: str = "alice") -> str:
    before = len(slack.slack.responses)
    response = await slack.form({
        "token": "legacy", "team_id": TEAM, "channel_id": "C1", "user_id": user,
        "user_name": name, "command": "/usage", "text": "", "response_url":
        slack.slack.response_url, "trigger_id": "trig",
    })  # fmt: skip
    assert response.status == 200
    [shown] = slack.slack.responses[before:]
    assert shown["response_type"] == "ephemeral"
    return str(shown["text"])


async def test_over_the_limit_a_mention_gets_one_sentence_and_no_model_call(
    slack: SlackHarness, fake_openai: FakeOpenAI, clean_prefix: str
) -> None:
    with_quotas(slack, clean_prefix, limits=Limits(user=40))
    fake_openai.push(Reply(text="a long enough answer " * 10))
    await slack.event(message_event(f"<@{BOT_USER}> first question", "1.1", kind="app_mention"))
    assert len(fake_openai.requests) == 1
    await slack.event(message_event(f"<@{BOT_USER}> second question", "1.2", kind="app_mention"))
    assert len(fake_openai.requests) == 1
    last = slack.thread_texts()[-1]
    assert last.startswith("You have used your daily limit of 40 tokens")
    assert "resets at midnight UTC, in" in last
    # Bob still has his own.
    await slack.event(
        message_event(f"<@{BOT_USER}> Bob asks", "1.3", kind="app_mention", user="UBOB")
    )
    assert len(fake_openai.requests) == 2


async def test_usage_shows_the_askers_tokens_cost_and_what_is_left(
    slack: SlackHarness, fake_openai: FakeOpenAI, clean_prefix: str
) -> None:
    prices = parse_prices("fake-model=1000/1000")
    quotas = with_quotas(slack, clean_prefix, limits=Limits(user=100_000), prices=prices)
    await slack.event(message_event(f"<@{BOT_USER}> count me", "1.1", kind="app_mention"))
    await slack.event(
        message_event(f"<@{BOT_USER}> and me", "1.2", kind="app_mention", user="UBOB")
    )
    text = await usage(slack)
    today, _ = await quotas.totals(_payer("UALICE"))
    mine = today.users["UALICE"]["fake-model"].tokens
    assert text.startswith(f"Your usage today: {mine:,} tokens ($")
    assert f"{100_000 - mine:,} left today" in text
    assert "Top users" not in text and "UBOB" not in text


async def test_an_admins_usage_shows_the_workspaces_top_channels_and_users(
    slack: SlackHarness, fake_openai: FakeOpenAI, clean_prefix: str
) -> None:
    with_quotas(slack, clean_prefix, limits=Limits(user=10), admins=frozenset({"UALICE"}))
    await slack.event(message_event(f"<@{BOT_USER}> one", "1.1", kind="app_mention"))
    await slack.event(message_event(f"<@{BOT_USER}> two", "1.2", kind="app_mention"))
    assert len(fake_openai.requests) == 2  # admins are exempt
    await slack.event(message_event(f"<@{BOT_USER}> three", "1.3", kind="app_mention", user="UBOB"))
    text = await usage(slack)
    assert "You are an admin" in text
    assert "Top channels this month:\n  1. <#C1>:" in text
    assert "Top users this month:\n  1. Alice:" in text and "  2. Bob:" in text


async def test_a_channel_summary_is_counted_to_who_asked_and_limited(
    slack: SlackHarness, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> None:
    import time

    quotas = with_quotas(slack, clean_prefix, limits=Limits(user=50))
    now = time.time()
    for n in range(5):
        fake_slack.add_message("C1", f"{now - 600 + n:.6f}", f"update number {n}", "UBOB")
    await slack.command("2h")
    assert len(fake_openai.requests) == 1
    today, _ = await quotas.totals(_payer("UALICE"))
    assert today.users["UALICE"]["fake-model"].tokens > 50
    await slack.command("1h")
    assert len(fake_openai.requests) == 1
    assert fake_slack.responses[-1]["text"].startswith("You have used your daily limit of 50")


def _payer(user: str) -> Payer:
    return Payer("slack", TEAM, "C1", user)


async def test_two_processes_racing_for_a_users_last_tokens_answer_once(
    tmp_path, fake_openai: FakeOpenAI, fake_slack: FakeSlack, clean_prefix: str
) -> None:
    """Two `python -m bot run` in HTTP mode share Redis; Alice, 50 tokens from her limit, asks
    both at once: one answers, the other says the rest is held by the answer in progress."""
    import asyncio
    import json
    from datetime import UTC, datetime

    import aiohttp

    from bot.store.redis_pool import connect_redis
    from bot.usage.tally import Spent, Tally
    from tests.adapters.slack.conftest import SECRET, envelope, signed_headers
    from tests.adapters.slack.test_slack_http import bot_env, post_event, wait_healthy
    from tests.conftest import REDIS_URL
    from tests.fakes.processes import free_port, run_bot

    client = connect_redis(REDIS_URL)
    ledger = RedisLedger(client, prefix=clean_prefix)
    already = Tally(_payer("UALICE"), [Spent("fake-model", 9_000, 950)])
    await ledger.entry(already, datetime.now(UTC).date(), None).write()
    await client.aclose()
    ports = [free_port(), free_port()]
    processes = []
    fake_openai.push(*(Reply(text="the one answer", first_token_delay=0.5) for _ in range(2)))
    try:
        async with aiohttp.ClientSession() as session:
            for port in ports:
                env = bot_env(
                    OPENAI_BASE_URL=fake_openai.url, REDIS_URL=REDIS_URL,
                    REDIS_PREFIX=clean_prefix, SLACK_BOT_TOKEN="xoxb-test",
                    SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.url, PORT=str(port),
                    HOST="127.0.0.1", SLACK_STREAMING="edits", OPS_PORT="0",
                    BOT_USER_DAILY_TOKENS="10000",
                )  # fmt: skip
                processes.append(await run_bot(tmp_path, env))
                await wait_healthy(session, f"http://127.0.0.1:{port}/healthz", processes[-1])
        bodies = [
            json.dumps(envelope(message_event(f"<@{BOT_USER}> q{n}", f"2.{n}",
                                              kind="app_mention"), f"EvRace{n}"))
            for n in range(2)
        ]  # fmt: skip
        await asyncio.gather(*(
            post_event(f"http://127.0.0.1:{port}", body, signed_headers(body))
            for port, body in zip(ports, bodies, strict=True)
        ))  # fmt: skip

        def finals() -> list[str]:
            texts = [m["text"] for m in fake_slack.bot_messages("C1")]
            return [t for t in texts if t != "_Thinking…_"]

        await fake_slack.wait_for(
            lambda: "the one answer" in finals() and any(t.startswith("You") for t in finals())
        )
        assert len(fake_openai.requests) == 1
        [refused] = [t for t in finals() if t.startswith("You")]
        assert refused.startswith("You have used 9,950 of your daily limit of 10,000 tokens")
    finally:
        for process in processes:
            process.terminate()
            await process.wait()


async def test_usage_with_redis_down_is_one_sentence(slack: SlackHarness, fake_openai) -> None:
    from bot.store.redis_pool import connect_redis
    from tests.fakes.processes import free_port

    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0", pool_timeout=1)
    slack.core.engine.quotas = Quotas(RedisLedger(dead, prefix="down"), QuotaConfig())
    try:
        text = await usage(slack)
    finally:
        await dead.aclose()
    assert text.startswith("My conversation store is unavailable right now")
