"""The console adapter, driven as a subprocess through stdin and stdout."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

import redis.asyncio as aioredis

from tests.bot.test_engine import remembering
from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI


async def run_console(tmp_path, lines: list[str], **env: str) -> tuple[int, str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_", "REDIS_"))
    }
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=environment,
    )
    stdout, stderr = await asyncio.wait_for(
        process.communicate("\n".join(lines).encode() + b"\n"), 30
    )
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_console_chat_with_memory_threads_and_commands(
    tmp_path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = remembering
    prefix = f"test-console-{secrets.token_hex(4)}"
    code, out, err = await run_console(
        tmp_path,
        [
            "Hello, my name is Mina.",
            "What is my name?",
            "/thread other",
            "What is my name?",
            "/help",
            "/bogus",
            "/thread main",
            "/summarize",
            "/forget",
            "What is my name?",
            "/quit",
            "never read",
        ],
        OPENAI_BASE_URL=fake_openai.url,
        OPENAI_MODEL="fake",
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=prefix,
    )
    assert code == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    answers = [line for line in lines if line.startswith("Assistant: ")]
    assert answers == [
        "Assistant: Noted.",
        "Assistant: Your name is Mina.",
        "Assistant: I do not know your name.",  # /thread other has its own memory
        "Assistant: I do not know your name.",  # after /forget
    ]
    assert "Switched to thread 'other'." in lines
    assert any("/summarize" in line for line in lines)  # the help text
    assert "Unknown command /bogus; /help lists the commands." in lines
    assert "Forgot thread 'main'." in lines
    summary_request = [
        r for r in fake_openai.requests if "You summarize" in r["messages"][0]["content"]
    ]
    assert (
        len(summary_request) == 1
        and "my name is Mina" in summary_request[0]["messages"][1]["content"]
    )
    assert len(fake_openai.requests) == 5  # "never read" after /quit was not sent
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    assert keys  # the "other" thread is in Redis
    await client.delete(*keys)
    await client.aclose()


async def test_console_survives_an_unreachable_model(tmp_path) -> None:
    code, out, err = await run_console(
        tmp_path,
        ["hello?", "/help", "/quit"],
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_MAX_RETRIES="0",
    )
    assert code == 0, err
    assert "The model server cannot be reached" in out and "check OPENAI_BASE_URL" in out
    assert "an administrator" not in out  # the person at the terminal is the one to fix it
    assert "Commands:" in out  # still running after the failure


async def test_a_log_line_never_lands_inside_the_answer_line(tmp_path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))}
        | {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_MAX_RETRIES": "0"},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # one terminal: both streams interleave
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(b"hello?\n/quit\n"), 30)
    lines = out.decode().splitlines()
    logged = [line for line in lines if "WARNING" in line or "ERROR" in line]
    assert logged, lines  # the failure was logged...
    assert not any(line.startswith("Assistant: ") and len(line) > len("Assistant: ")
                   and ("WARNING" in line or "ERROR" in line) for line in lines), lines  # fmt: skip


async def test_console_with_unreachable_redis_says_so(tmp_path) -> None:
    code, _out, err = await run_console(
        tmp_path,
        ["hello?"],
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        REDIS_URL="redis://127.0.0.1:9/0",
    )
    assert code == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("error: Redis at redis://127.0.0.1:9/0 is unreachable")
    )
    assert "Traceback" not in err


async def test_missing_configuration_stops_with_one_line_and_exit_2(tmp_path) -> None:
    code, _out, err = await run_console(tmp_path, ["hello?"])
    assert code == 2
    assert err.strip().splitlines() == [
        "error: OPENAI_API_KEY: no model is configured; set OPENAI_API_KEY to your OpenAI API "
        "key, or OPENAI_BASE_URL=http://localhost:11434/v1 for Ollama (any OpenAI-compatible "
        "server)"
    ]


async def test_a_restarted_console_keeps_every_message(tmp_path, fake_openai: FakeOpenAI) -> None:
    """Message ids are unique across runs: a second run's first message is saved beside the first
    run's, and neither drops out of the prompt."""
    fake_openai.responder = remembering
    prefix = f"test-console-{secrets.token_hex(4)}"
    env = dict(OPENAI_BASE_URL=fake_openai.url, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix)
    await run_console(tmp_path, ["Hello, my name is Mina.", "/quit"], **env)
    await run_console(tmp_path, ["The code is 4711.", "/quit"], **env)
    code, out, _ = await run_console(tmp_path, ["What is my name?", "What is the code?"], **env)
    assert code == 0 and "Your name is Mina." in out and "The code is 4711." in out
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    await client.delete(*keys)
    await client.aclose()


async def test_console_attaches_local_files(tmp_path, fake_openai: FakeOpenAI) -> None:
    from tests.fakes.documents import image_bytes, pdf_bytes

    (tmp_path / "notes.pdf").write_bytes(pdf_bytes(["Budget approved: 40k"]))
    (tmp_path / "shot.png").write_bytes(image_bytes(3000, 1000))
    code, out, err = await run_console(
        tmp_path,
        ["/attach notes.pdf", "/attach shot.png", "/attach missing.txt",
         "what was approved?", "/quit"],
        OPENAI_BASE_URL=fake_openai.url, OPENAI_MODEL="fake",
    )  # fmt: skip
    assert code == 0 and "Traceback" not in err, err
    assert "Attached notes.pdf; it goes with your next message." in out
    assert "There is no file at missing.txt." in out
    sent = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "Budget approved: 40k" in sent[0]["text"] and sent[1]["type"] == "image_url"


async def test_console_usage_and_a_daily_limit(tmp_path, fake_openai: FakeOpenAI) -> None:
    code, out, err = await run_console(
        tmp_path,
        ["/usage", "a question that spends more than the limit allows " * 3, "again?", "/usage"],
        OPENAI_BASE_URL=fake_openai.url,
        BOT_USER_DAILY_TOKENS="60",
        BOT_PRICES="gpt-4o-mini=1000/1000",
    )
    assert code == 0, err
    assert "Your usage today: 0 tokens" in out and "Your daily limit: 60 tokens; 60 left" in out
    assert "You have used your daily limit of 60 tokens" in out
    assert len(fake_openai.requests) == 1
    last = out.rsplit("Your usage today: ", 1)[1]
    assert last.split(" tokens")[0] != "0" and "($" in last.split("\n")[0]


async def test_a_malformed_price_or_limit_stops_start_up_naming_it(tmp_path) -> None:
    for variable, value in (("BOT_PRICES", "gpt-4o=cheap"), ("BOT_USER_DAILY_TOKENS", "-5")):
        code, _, err = await run_console(
            tmp_path, [], OPENAI_BASE_URL="http://127.0.0.1:9/v1", **{variable: value}
        )
        assert code == 2 and variable in err and "Traceback" not in err


async def test_the_quick_start_works_with_nothing_but_a_model(
    tmp_path, fake_openai: FakeOpenAI
) -> None:
    """README's quick start: copy .env.example, point it at a model, ask. No Redis needed."""
    from pathlib import Path

    example = (Path(__file__).parents[2] / ".env.example").read_text()
    (tmp_path / ".env").write_text(example + f"\nOPENAI_BASE_URL={fake_openai.url}\n")
    code, out, err = await run_console(tmp_path, ["Hello there"])
    assert code == 0, err
    assert "echo: " in out and "unreachable" not in out + err
    assert "REDIS_URL is not set: thread memory is kept in this process" in err


async def test_without_a_model_the_console_says_what_to_set_before_anyone_types(
    tmp_path,
) -> None:
    from pathlib import Path

    example = (Path(__file__).parents[2] / ".env.example").read_text()
    (tmp_path / ".env").write_text(example)  # OPENAI_API_KEY= is there, but empty
    code, out, err = await run_console(tmp_path, ["Is anyone there?"])
    assert code == 2 and out == ""
    [line] = err.strip().splitlines()
    assert "OPENAI_API_KEY" in line and "OPENAI_BASE_URL=http://localhost:11434/v1" in line


async def test_ask_answers_from_what_was_said_in_the_console(
    tmp_path, fake_openai: FakeOpenAI
) -> None:
    import re

    def respond(body: dict) -> str:
        given = re.findall(r"^(m\d+) —", body["messages"][-1]["content"], re.MULTILINE)
        if given:  # the /ask call: cite what was given
            return f"Priya owns the billing service [{given[0]}]."
        return "Noted."

    fake_openai.responder = respond
    code, out, err = await run_console(
        tmp_path,
        ["Priya owns the billing service since March", "/ask who owns the billing service?",
         "/ask what is the weather on mars?", "/quit"],
        OPENAI_BASE_URL=fake_openai.url,
    )  # fmt: skip
    assert code == 0, err
    assert "Priya owns the billing service [1]." in out
    assert "Sources:\n[1] " in out
    assert "I could not find this in this console's history (searched 1 message" in out
