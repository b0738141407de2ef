"""Files and images in Slack: downloaded with the bot token from the fake Slack's url_private,
read by the core and sent to the local model server through the real SDKs."""

from __future__ import annotations

import base64
import io

from PIL import Image

from tests.adapters.slack.conftest import SlackHarness, message_event
from tests.fakes.documents import image_bytes, pdf_bytes
from tests.fakes.openai_server import FakeOpenAI, last_user_text
from tests.fakes.slack_server import BOT_USER

TS = "1700000000.000100"


def with_files(text: str, ts: str, *files: dict, **kwargs) -> dict:
    return message_event(text, ts, subtype="file_share", files=list(files), **kwargs)


async def test_a_mentioned_screenshot_reaches_the_model_downscaled(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    shot = slack.slack.add_file("error.png", image_bytes(2600, 1300), "image/png")
    await slack.event(with_files(f"<@{BOT_USER}> what is this error?", TS, shot))
    assert len(fake_openai.images) == 1
    sent = Image.open(io.BytesIO(base64.b64decode(fake_openai.images[0].split(",", 1)[1])))
    assert sent.size == (1536, 768)
    assert slack.slack.file_requests[0][1] == "Bearer xoxb-test"
    assert slack.thread_texts() == [
        "echo: Alice: what is this error?\n\n[image error.png attached below, 1536×768]"
    ]


async def test_a_pdf_in_a_thread_is_read_and_follow_ups_keep_asking(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    pdf = slack.slack.add_file(
        "plan.pdf", pdf_bytes(["Launch: May 4", "Owner: Mina"]), "application/pdf"
    )
    await slack.event(with_files(f"<@{BOT_USER}> when is the launch?", TS, pdf))
    assert "[p. 1]\nLaunch: May 4" in last_user_text(fake_openai.requests[-1])
    await slack.event(message_event("who owns it?", "1700000000.000300", thread_ts=TS))
    assert len(fake_openai.requests) == 2
    assert "Owner: Mina" in str(fake_openai.requests[-1]["messages"])


async def test_a_file_dropped_in_a_dm_is_acknowledged_without_a_model_call(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    shot = slack.slack.add_file("diagram.png", image_bytes(300, 200), "image/png")
    await slack.event(with_files("", TS, shot, channel="D1", channel_type="im"))
    assert slack.thread_texts("D1") == ["Got diagram.png — what would you like to know?"]
    assert fake_openai.requests == [] and slack.slack.file_requests == []
    await slack.event(message_event("what does it show?", "1700000000.000200", channel="D1",
                                    channel_type="im"))  # fmt: skip
    assert len(fake_openai.images) == 1


async def test_a_mention_with_only_a_file_asks_to_describe_it(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    log = slack.slack.add_file("app.log", b"ERROR db timeout\nINFO retry ok\n", "text/plain")
    await slack.event(with_files(f"<@{BOT_USER}>", TS, log))
    sent = last_user_text(fake_openai.requests[-1])
    assert sent.startswith("Alice: Please describe or summarize") and "ERROR db timeout" in sent


async def test_without_files_read_the_user_is_told_and_the_question_still_answered(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    slack.slack.files_scope = False
    doc = slack.slack.add_file("notes.txt", b"hello", "text/plain")
    await slack.event(with_files(f"<@{BOT_USER}> thoughts?", TS, doc))
    [text] = slack.thread_texts()
    assert "I need the files:read permission" in text and "echo: Alice: thoughts?" in text


async def test_the_token_never_follows_a_redirect_to_another_host(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    doc = slack.slack.add_file("notes.txt", b"hello", "text/plain")
    moved = slack.slack.redirected_file(doc, "localhost")
    await slack.event(with_files(f"<@{BOT_USER}> thoughts?", TS, moved))
    (_, with_token), (_, on_other_host) = slack.slack.file_requests
    assert with_token == "Bearer xoxb-test" and on_other_host == ""
    assert "files:read" in slack.thread_texts()[0]  # what the other host answered


async def test_too_large_files_are_refused_before_downloading(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    big = slack.slack.add_file("dump.log", b"x", "text/plain", size=50 * 1024 * 1024)
    await slack.event(with_files(f"<@{BOT_USER}> why so big?", TS, big))
    assert slack.slack.file_requests == []
    assert "dump.log is 50 MB, over my limit of 10 MB per file" in slack.thread_texts()[0]


async def test_a_file_that_lied_about_its_size_is_cut_off_while_downloading(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    slack.core.engine.files.limits = type(slack.core.engine.files.limits)(max_file_bytes=1000)
    big = slack.slack.add_file("dump.log", b"y" * 50_000, "text/plain", size=10)
    await slack.event(with_files(f"<@{BOT_USER}> look", TS, big))
    assert (
        "dump.log is" in slack.thread_texts()[0]
        and "over my limit of 1000 bytes" in slack.thread_texts()[0]
    )


async def test_summarize_with_a_pdf_cites_its_pages(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.summarizer_model import summarizer

    fake_openai.responder = summarizer
    pdf = slack.slack.add_file(
        "q3.pdf", pdf_bytes(["Revenue up", "Hiring paused"]), "application/pdf"
    )
    await slack.event(with_files(f"<@{BOT_USER}> summarize", TS, pdf))
    [text] = slack.thread_texts()
    assert "(p. " in text and "slack.com/archives" not in text


async def test_summarize_in_a_thread_reads_the_document_shared_in_it(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    from tests.fakes.summarizer_model import summarizer

    fake_openai.responder = summarizer
    pdf = slack.slack.add_file("q3.pdf", pdf_bytes(["Revenue up"]), "application/pdf")
    slack.slack.add_message("C1", TS, "the report", "UBOB", files=[pdf])
    await slack.event(message_event(f"<@{BOT_USER}> summarize", "1700000000.000500",
                                    thread_ts=TS, kind="app_mention"))  # fmt: skip
    assert "(p. 1)" in slack.thread_texts()[0]


async def test_a_shared_message_brings_its_files(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    doc = slack.slack.add_file("spec.md", b"# Spec\nThe API returns 204.", "text/markdown")
    shared = {"is_share": True, "author_name": "Bob", "text": "see spec", "files": [doc]}
    await slack.event(message_event(f"<@{BOT_USER}> what does the API return?", TS,
                                    attachments=[shared]))  # fmt: skip
    assert "The API returns 204." in last_user_text(fake_openai.requests[-1])


def connect_file(file_id: str) -> dict:
    """A file shared from another organization as the event carries it (slack-web's golden
    file): its id only, with `file_access: check_file_info`."""
    return {"id": file_id, "mode": "file_access", "file_access": "check_file_info",
            "created": 1700000000, "timestamp": 1700000000, "user": "UOTHERORG"}  # fmt: skip


async def test_a_slack_connect_file_is_looked_up_then_read(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    pdf = slack.slack.add_file("contract.pdf", pdf_bytes(["Term: 2 years"]), "application/pdf")
    await slack.event(with_files(f"<@{BOT_USER}> how long?", TS, connect_file(pdf["id"])))
    [info] = slack.slack.called("files.info")
    assert info["file"] == pdf["id"]
    assert "[p. 1]\nTerm: 2 years" in last_user_text(fake_openai.requests[-1])


async def test_a_slack_connect_file_it_may_not_open_is_one_sentence(
    slack: SlackHarness, fake_openai: FakeOpenAI
) -> None:
    pdf = slack.slack.add_file("secret.pdf", pdf_bytes(["x"]), "application/pdf")
    slack.slack.hidden_files.add(pdf["id"])
    await slack.event(with_files(f"<@{BOT_USER}> what is this?", TS, connect_file(pdf["id"])))
    [answer] = slack.thread_texts()
    assert "I could not open a file shared from another organization" in answer
    assert "file_not_found" in answer
    assert slack.slack.file_requests == []  # nothing was downloaded
