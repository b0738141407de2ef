"""Mentions, threads, replies and DMs through discord.py, a fake gateway and a fake REST API."""

from __future__ import annotations

from tests.adapters.discord.conftest import ALICE, BOB, BOT_MENTION, CAROL, DiscordHarness
from tests.fakes.discord_server import BOT_USER, CHANNEL, FakeDiscord
from tests.fakes.openai_server import FakeOpenAI, Reply


def prompt_text(request: dict) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


async def test_mention_opens_a_thread_and_streams_the_answer(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(Reply(text="Four, **clearly**.", token_delay=0.01))
    question = await discord_bot.send(f"{BOT_MENTION} what is 2+2?")
    [thread] = discord_bot.fake.threads()
    assert thread["id"] == question["id"] and thread["name"] == "what is 2+2?"
    replies = discord_bot.fake.bot_messages(int(thread["id"]))
    assert [m["content"] for m in replies] == ["Four, **clearly**."]  # Markdown stays Markdown
    assert fake_openai.requests[0]["messages"][-1]["content"] == "Alice: what is 2+2?"
    edits = discord_bot.fake.called("PATCH", f"channels/{thread['id']}/messages")
    assert edits and edits[-1]["content"] == "Four, **clearly**."


async def test_follow_up_in_the_bot_thread_needs_no_mention(
    discord_bot: DiscordHarness, fake_openai
) -> None:
    await discord_bot.send(f"{BOT_MENTION} my name is Mina")
    [thread] = discord_bot.fake.threads()
    await discord_bot.send("what is my name?", channel=int(thread["id"]))
    assert len(fake_openai.requests) == 2
    assert "Alice: my name is Mina" in prompt_text(fake_openai.requests[1])
    assert len(discord_bot.fake.bot_messages(int(thread["id"]))) == 2


async def test_other_peoples_messages_in_the_thread_are_observed(
    discord_bot: DiscordHarness, fake_openai
) -> None:
    await discord_bot.send(f"{BOT_MENTION} plan the release")
    thread = int(discord_bot.fake.threads()[0]["id"])
    await discord_bot.send(
        f"<@{BOB['id']}> can you take notes?", CAROL, channel=thread, mentions=[BOB]
    )
    assert len(fake_openai.requests) == 1
    await discord_bot.send("who takes notes?", channel=thread)
    assert "Carol: @Bob can you take notes?" in prompt_text(fake_openai.requests[-1])


async def test_reply_to_the_bot_continues_the_conversation(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai
) -> None:
    fake_discord.deny_threads = True  # no thread: answers are replies in place
    question = await discord_bot.send(f"{BOT_MENTION} remember the code 4417")
    [answer] = fake_discord.bot_messages(CHANNEL)
    assert answer["message_reference"]["message_id"] == question["id"]
    await discord_bot.send(
        "what was the code?", reply_to=answer, mentions=[BOT_USER]
    )  # a reply ping
    assert len(fake_openai.requests) == 2
    assert "Alice: remember the code 4417" in prompt_text(fake_openai.requests[1])
    assert len(fake_discord.bot_messages(CHANNEL)) == 2 and fake_discord.threads() == []


async def test_direct_messages_are_one_conversation(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai
) -> None:
    dm = 600000000000000001
    await discord_bot.send("hi, I am Mina", channel=dm, guild=False)
    await discord_bot.send("who am I?", channel=dm, guild=False)
    assert len(fake_discord.bot_messages(dm)) == 2
    assert "Alice: hi, I am Mina" in prompt_text(fake_openai.requests[1])


async def test_everyone_and_role_pings_are_not_mentions(
    discord_bot: DiscordHarness, fake_openai
) -> None:
    await discord_bot.send("@everyone standup in 5", mentions=[])
    await discord_bot.send("<@&800000000000000001> please review", mentions=[])
    await discord_bot.send(f"hey <@{BOB['id']}>", mentions=[BOB])
    assert fake_openai.requests == [] and discord_bot.fake.threads() == []


async def test_bots_and_own_echoes_are_ignored(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    other_bot = {**BOB, "id": "900000000000000099", "bot": True}
    await discord_bot.send(f"{BOT_MENTION} hi from a bot", other_bot)
    assert fake_openai.requests == []
    await discord_bot.send(f"{BOT_MENTION} hi")  # our answer is echoed back by the gateway
    thread = int(fake_discord.threads()[0]["id"])
    await fake_discord.wait_for(lambda: len(fake_discord.bot_messages(thread)) == 1)
    await discord_bot.bot.tasks.idle()
    assert len(fake_openai.requests) == 1


async def test_duplicate_delivery_is_answered_once(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    question = await discord_bot.send(f"{BOT_MENTION} once please")
    await fake_discord.dispatch_message(question)  # a replay after a resume
    await discord_bot.send(
        f"{BOT_MENTION} second question"
    )  # ordering point: the replay came before
    assert len(fake_openai.requests) == 2 and len(fake_discord.threads()) == 2


async def test_edits_do_not_trigger_a_second_answer(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    question = await discord_bot.send(f"{BOT_MENTION} first version")
    await fake_discord.dispatch("MESSAGE_UPDATE", {**question, "content": f"{BOT_MENTION} edited"})
    await discord_bot.send(f"{BOT_MENTION} next")
    assert len(fake_openai.requests) == 2


async def test_deleted_message_leaves_memory(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    fake_openai.push(Reply(text="Noted."), Reply(text="Noted."))
    await discord_bot.send(f"{BOT_MENTION} start")
    thread = int(fake_discord.threads()[0]["id"])
    secret = await discord_bot.send("my password is hunter2", channel=thread)
    await discord_bot.delete(secret)
    await discord_bot.send("what did I say?", channel=thread)
    assert "hunter2" not in prompt_text(fake_openai.requests[-1])


async def test_long_answer_splits_at_2000_with_code_intact(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    code = "\n".join(f"print('line {n}')  # {'x' * 30}" for n in range(120))
    fake_openai.push(Reply(text=f"Here:\n\n```python\n{code}\n```\n\nDone."))
    await discord_bot.send(f"{BOT_MENTION} long code")
    thread = int(fake_discord.threads()[0]["id"])
    texts = [m["content"] for m in fake_discord.bot_messages(thread)]
    assert len(texts) >= 3 and all(len(t) <= 2000 for t in texts)
    assert all(t.count("```") % 2 == 0 for t in texts)
    joined = "\n".join(texts)
    assert all(f"print('line {n}')" in joined for n in range(120))


async def test_every_message_is_sent_without_pings(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    fake_openai.push(Reply(text=f"@everyone look, <@{BOB['id']}> and <@&1> and @here"))
    await discord_bot.send(f"{BOT_MENTION} ping people")
    writes = [
        body
        for method, path, body in fake_discord.calls
        if (method == "POST" and path.endswith("/messages"))
        or (method == "PATCH" and "/messages/" in path)
    ]
    assert len(writes) >= 2
    for body in writes:
        mentions = body.get("allowed_mentions")
        assert mentions is not None and mentions.get("parse") == [] and not mentions.get("users")
        assert not mentions.get("roles") and not mentions.get("replied_user")


async def test_forget_word_in_thread(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    await discord_bot.send(f"{BOT_MENTION} my name is Mina")
    thread = int(fake_discord.threads()[0]["id"])
    await discord_bot.send(f"{BOT_MENTION} forget", channel=thread)
    assert fake_discord.bot_messages(thread)[-1]["content"].startswith("I have forgotten")
    await discord_bot.send("what is my name?", channel=thread)
    assert (
        len(fake_openai.requests) == 1
    )  # the thread is unknown again: not answered without a mention


async def test_summarize_word_in_thread(
    discord_bot: DiscordHarness, fake_openai, fake_discord
) -> None:
    await discord_bot.send(f"{BOT_MENTION} the budget is 10k")
    thread = int(fake_discord.threads()[0]["id"])
    fake_openai.push(Reply(text="Budget: 10k."))
    await discord_bot.send(f"{BOT_MENTION} summarize", channel=thread)
    assert fake_discord.bot_messages(thread)[-1]["content"] == "Budget: 10k."
    assert "Alice: the budget is 10k" in fake_openai.requests[-1]["messages"][1]["content"]


async def test_outside_the_allowlist_it_stays_silent(
    fake_openai, fake_discord, clean_prefix
) -> None:
    from tests.adapters.discord.conftest import make_harness

    harness = await make_harness(
        fake_openai, fake_discord, clean_prefix, DISCORD_ALLOWED_CHANNELS="123"
    )
    await harness.send(f"{BOT_MENTION} hello?")
    assert fake_openai.requests == [] and fake_discord.threads() == []
    await harness.close()
    assert ALICE


async def test_a_follow_up_in_the_bots_thread_is_answered_after_memory_was_lost(
    discord_bot: DiscordHarness, fake_openai, redis_client, clean_prefix: str
) -> None:
    await discord_bot.send(f"{BOT_MENTION} who owns staging?")
    [thread] = discord_bot.fake.threads()
    keys = [k async for k in redis_client.scan_iter(match=f"{clean_prefix}:*")]
    await redis_client.delete(*keys)  # Redis came back empty
    await discord_bot.send("since when?", channel=int(thread["id"]))
    assert len(fake_openai.requests) == 2  # the thread the bot opened is its own: Discord says so
    assert len(discord_bot.fake.bot_messages(int(thread["id"]))) == 2


async def test_a_message_posted_as_its_process_died_is_settled_too(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord
) -> None:
    from bot.conversation import IncomingMessage, ThreadRef
    from bot.errors import Interrupted
    from bot.store.inflight import PendingAnswer

    question = fake_discord.message(CHANNEL, "explain the outage", ALICE)
    unfinished = fake_discord.message(CHANNEL, "The outage began when …", BOT_USER)
    fake_discord.message(CHANNEL, "Finished answer to something else.", BOT_USER)
    asked = IncomingMessage(ThreadRef("discord", "1", str(CHANNEL), question["id"]),
                            "explain the outage", ALICE["id"], "Alice",
                            message_id=question["id"])  # fmt: skip
    # its record said a message was being posted, and no id was recorded yet
    pending = PendingAnswer(asked, {"channel": CHANNEL, "ids": [], "posting": True}, "dead")
    await discord_bot.bot.settle(pending)
    texts = {m["id"]: m["content"] for m in fake_discord.bot_messages(CHANNEL)}
    assert texts[unfinished["id"]] == Interrupted().user_message()
    assert "Finished answer to something else." in texts.values()  # a finished one is left alone


async def test_a_mention_is_grounded_in_the_channel_with_jump_links(
    discord_bot: DiscordHarness, fake_openai: FakeOpenAI
) -> None:
    import re

    said = await discord_bot.send("Priya owns the billing service since March")
    await discord_bot.send("lunch at noon?", author=BOB)

    def cite(body: dict) -> str:
        context = [m["content"] for m in body["messages"] if "may bear on" in str(m["content"])]
        given = re.findall(r"^(m\d+) —", context[0], re.MULTILINE) if context else []
        return f"Priya owns it [{given[0]}][m77]." if given else "No idea."

    fake_openai.responder = cite
    await discord_bot.send(f"{BOT_MENTION} who owns the billing service?")
    [thread] = discord_bot.fake.threads()
    [answer] = [m["content"] for m in discord_bot.fake.bot_messages(int(thread["id"]))]
    assert answer.startswith("Priya owns it ([1](https://discord.com/channels/")
    assert f"/{said['id']})" in answer and "**Sources**" in answer and "m77" not in answer
    # a follow-up in the thread is grounded in the channel too, never in the thread itself
    await discord_bot.send(
        "and who owns the billing service on weekends?", channel=int(thread["id"])
    )
    context = [m for m in fake_openai.requests[-1]["messages"] if "may bear on" in m["content"]]
    assert context and "who owns the billing service?" not in context[0]["content"]
    assert "since March" in context[0]["content"]
