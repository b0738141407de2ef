"""Files and images on Discord: attachments fetched from the fake CDN by discord.py's payloads,
read by the core and sent to the local model server."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.adapters.discord.conftest import ALICE, BOT_MENTION, DiscordHarness
from tests.fakes.discord_server import CHANNEL, GUILD, FakeDiscord
from tests.fakes.documents import docx_bytes, image_bytes, pdf_bytes
from tests.fakes.openai_server import FakeOpenAI, last_user_text

DM_CHANNEL = 600000000000000001


async def test_an_attached_image_reaches_the_model_downscaled(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    shot = fake_discord.attachment("crash.webp", image_bytes(1000, 3000, "WEBP"), "image/webp")
    await discord_bot.send(f"{BOT_MENTION} why does it crash?", attachments=[shot])
    [url] = fake_openai.images
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (683, 2048)
    assert fake_discord.attachment_requests[0][1] == ""  # no token for the CDN


async def test_a_word_document_in_the_thread_is_read_and_remembered(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    doc = fake_discord.attachment("minutes.docx", docx_bytes(["Decision: move to Postgres"]))
    await discord_bot.send(f"{BOT_MENTION} what did we decide?", attachments=[doc])
    assert "Decision: move to Postgres" in last_user_text(fake_openai.requests[-1])
    thread = int(discord_bot.fake.threads()[0]["id"])
    await discord_bot.send("and why?", channel=thread)
    assert "Decision: move to Postgres" in str(fake_openai.requests[-1]["messages"])


async def test_a_file_dropped_in_a_dm_is_acknowledged(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    log = fake_discord.attachment("build.log", b"error: linker failed\n", "text/plain")
    await discord_bot.send("", channel=DM_CHANNEL, guild=False, attachments=[log])
    assert [m["content"] for m in fake_discord.bot_messages(DM_CHANNEL)] == [
        "Got build.log — what would you like to know?"
    ]
    assert fake_openai.requests == []
    await discord_bot.send("what failed?", channel=DM_CHANNEL, guild=False)
    assert "error: linker failed" in str(fake_openai.requests[-1]["messages"])


async def test_an_expired_attachment_is_one_sentence(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    gone = fake_discord.attachment("old.pdf", b"%PDF", "application/pdf")
    fake_discord.attachments.clear()  # the CDN link expired
    await discord_bot.send(f"{BOT_MENTION} read this", attachments=[gone])
    thread = int(discord_bot.fake.threads()[0]["id"])
    [answer] = fake_discord.bot_messages(thread)
    assert "old.pdf is no longer available to download." in answer["content"]
    assert "echo: Alice: read this" in answer["content"]


async def test_summarize_as_a_reply_to_a_pdf_cites_pages(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.summarizer_model import summarizer

    fake_openai.responder = summarizer
    fake_discord.deny_threads = True
    pdf = fake_discord.attachment(
        "q3.pdf", pdf_bytes(["Sales flat", "Costs down"]), "application/pdf"
    )
    shared = await discord_bot.send("the Q3 report", attachments=[pdf])
    await discord_bot.send(f"{BOT_MENTION} summarize", reply_to=shared)
    texts = [m["content"] for m in fake_discord.bot_messages(int(shared["channel_id"]))]
    assert any("(p. " in t for t in texts), texts


async def test_a_forwarded_message_brings_its_files(
    discord_bot: DiscordHarness, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    doc = fake_discord.attachment("trace.txt", b"Traceback: KeyError 'user'\n", "text/plain")
    data = fake_discord.message(DM_CHANNEL, "", ALICE, guild=False)
    data["message_reference"] = {"type": 1, "message_id": "800000000000009999",
                                 "channel_id": str(CHANNEL), "guild_id": str(GUILD)}  # fmt: skip
    data["message_snapshots"] = [{"message": {
        "type": 0, "content": "prod is down", "embeds": [], "attachments": [doc],
        "timestamp": "2026-11-29T04:00:00+00:00", "edited_timestamp": None, "flags": 0,
        "mentions": [], "mention_roles": [],
    }}]  # fmt: skip
    await fake_discord.dispatch_message(data)
    await discord_bot.settle(int(data["id"]))
    sent = last_user_text(fake_openai.requests[-1])
    assert "> prod is down" in sent and "Traceback: KeyError 'user'" in sent
