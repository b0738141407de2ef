"""The console adapter: chat with the core in a terminal, one line per message."""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import time
from collections.abc import Awaitable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from adapters.local_files import LocalFiles, local_ref
from bot.conversation import IncomingMessage, ThreadRef
from bot.errors import (
    BotError,
    ConfigError,
    FileProblem,
    ModelMisconfigured,
    ModelUnavailable,
    StoreUnavailable,
    explain,
)
from bot.files.refs import FileRef
from bot.store.keys import channel_scope
from bot.summaries.sources import SourceMessage
from bot.usage.tally import Payer

if TYPE_CHECKING:
    from bot.assembly import Core

log = logging.getLogger(__name__)

HELP = """\
Commands:
  /thread NAME   switch to (or start) the conversation NAME
  /forget        clear the current conversation's memory
  /summarize     summarize the current conversation (or the attached documents)
  /usage         your token usage today and this month, and what is left
  /ask QUESTION  answer from what was said here before, citing it (or say it is not there)
  /attach PATH   share a file (image, PDF, Word, text) with your next message
  /help          show this help
  /quit          leave (end of input does the same)
Anything else is a message to the assistant."""


def console_thread(name: str) -> ThreadRef:
    return ThreadRef(platform="console", workspace="local", channel="console", thread=name)


@dataclass
class ConsoleSession:
    core: Core
    out: TextIO
    thread: ThreadRef
    user: str
    sequence: int = 0
    attached: list[FileRef] = field(default_factory=list)  # shared with the next message

    mid_line: bool = False  # an answer is being written on the current line

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
        self.mid_line = False

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.mid_line = not text.endswith("\n")

    def break_line(self) -> None:
        """A log line is about to be printed: end the answer's line first (same terminal)."""
        if self.mid_line:
            self.say("")

    async def handle(self, line: str) -> bool:
        """Handle one input line; False means the session is over."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return await self.command(line)
        await self.ask(line)
        return True

    async def command(self, line: str) -> bool:
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/thread":
            if not argument:
                self.say(f"You are in thread '{self.thread.thread}'. Usage: /thread NAME")
            else:
                self.thread = console_thread(argument)
                self.say(f"Switched to thread '{argument}'.")
        elif name == "/forget":
            await self.guarded(self.forget())
        elif name == "/summarize":
            await self.guarded(self.summarize())
        elif name == "/usage":
            await self.guarded(self.usage())
        elif name == "/ask":
            await self.guarded(self.ask_history(argument))
        elif name == "/attach":
            self.attach(argument)
        else:
            self.say(f"Unknown command {name}; /help lists the commands.")
        return True

    async def guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            self.say(terminal_sentence(exc))

    async def forget(self) -> None:
        await self.core.engine.forget(self.thread)
        self.say(f"Forgot thread '{self.thread.thread}'.")

    def attach(self, path: str) -> None:
        if not path:
            self.say("Usage: /attach PATH")
            return
        try:
            self.attached.append(local_ref(path))
        except FileProblem as exc:
            self.say(exc.user_message())
            return
        self.say(f"Attached {self.attached[-1].name}; it goes with your next message.")

    @property
    def payer(self) -> Payer:
        thread = self.thread
        return Payer(thread.platform, thread.workspace, thread.channel, self.user, self.user)

    @property
    def scope(self) -> str:
        """The console's channel in the channel log: every thread's messages are searched."""
        return channel_scope("console", self.thread.workspace, self.thread.channel)

    async def ask_history(self, question: str) -> None:
        answer = await self.core.engine.ask(
            question, channels=[self.scope], where="this console's history", dialect="plain",
            payer=self.payer,
        )  # fmt: skip
        self.say(answer.text)

    async def keep(self, message: IncomingMessage) -> None:
        """What people say here goes in the channel log, for summaries and /ask."""
        if self.core.channel_log is None or not message.text.strip():
            return
        said = SourceMessage(message.message_id, message.author_name, message.text, message.at)
        try:
            await self.core.channel_log.record(self.scope, said)
        except BotError as exc:
            log.warning("could not log the message: %s", exc)

    async def usage(self) -> None:
        self.say(await self.core.engine.quotas.report(self.payer))

    async def summarize(self) -> None:
        engine = self.core.engine
        if self.attached:
            files, self.attached = self.attached, []
            summary = await engine.summarize_files(files, dialect="plain", payer=self.payer)
        else:
            summary = await engine.summarize(self.thread, dialect="plain", payer=self.payer)
        self.say(summary.text)

    async def ask(self, text: str) -> None:
        self.sequence += 1
        message = IncomingMessage(
            thread=self.thread,
            text=text,
            author_id=self.user,
            author_name=self.user,
            # unique across runs: a restarted console must not reuse the ids memory holds
            message_id=f"console-{time.time_ns()}-{self.sequence}",
            files=tuple(self.attached),
        )
        self.attached = []
        await self.keep(message)
        self.write(f"{self.core.settings.bot_name}: ")
        try:
            async with aclosing(self.core.engine.answer(message, dialect="plain")) as deltas:
                async for delta in deltas:
                    self.write(delta)
            self.say("")
        except Exception as exc:
            self.break_line()
            self.say(terminal_sentence(exc))


def terminal_sentence(error: BaseException) -> str:
    """What went wrong, for the person at the terminal, who is also the one who can fix it:
    the setting to look at, where a chat user would read "an administrator needs to check"."""
    if isinstance(error, ConfigError):
        return f"{error}; fix it in .env (python -m bot doctor checks the settings)."
    if isinstance(error, ModelMisconfigured):
        return (
            f"The model refused my settings ({error}); check OPENAI_API_KEY and OPENAI_MODEL "
            "(python -m bot doctor lists the models the server has)."
        )
    if isinstance(error, ModelUnavailable):
        return (
            f"The model server cannot be reached ({error}); check OPENAI_BASE_URL and that it runs."
        )
    if isinstance(error, StoreUnavailable):
        return f"{explain(error)} ({error}; check REDIS_URL and that Redis runs.)"
    return explain(error)


class LineBreaker(logging.Filter):
    """Log lines share the terminal with the answer: each starts on a line of its own."""

    def __init__(self, session: ConsoleSession) -> None:
        super().__init__()
        self.session = session

    def filter(self, record: logging.LogRecord) -> bool:
        self.session.break_line()
        return True


async def _read_line(stream: TextIO) -> str:
    return await asyncio.to_thread(stream.readline)


class ConsoleAdapter:
    name = "console"
    interactive = True

    def configured(self) -> bool:
        return True

    def requirement(self) -> str:
        return "nothing: run `python -m bot console`"

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        user = options.get("user") or getpass.getuser() or "you"
        core.engine.files.register("console", LocalFiles())
        session = ConsoleSession(
            core, sys.stdout, console_thread(options.get("thread", "main")), user
        )
        interactive = sys.stdin.isatty()
        for handler in logging.getLogger().handlers:
            handler.addFilter(LineBreaker(session))
            if interactive:  # a terminal, not a log collector: short lines
                handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        session.say(f"Chatting in thread '{session.thread.thread}'. /help for commands.")
        # The model's SDK loads while the person types: the prompt does not wait for it.
        warming = asyncio.get_running_loop().run_in_executor(None, core.model.warm)
        while True:
            if interactive:
                sys.stdout.write("> ")
                sys.stdout.flush()
            line = await _read_line(sys.stdin)
            if not line:  # end of input
                break
            if not await session.handle(line):
                break
        await warming


ADAPTER = ConsoleAdapter()
