"""Running the bot itself as a process, the way people start it, against the local fakes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run_bot(cwd: Path | str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m bot run` with its output captured."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def bot_env(**values: str) -> dict[str, str]:
    """This environment without the bot's own settings, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("OPENAI_", "AZURE_", "REDIS_", "SLACK_", "DISCORD_", "BOT_", "OPS_", "LOG_")
        )
    }
    env["OPS_PORT"] = str(free_port())  # several bots at once each need their own
    env.update(values)
    return env


class RedisServer:
    """A redis-server of a test's own on a free port, with an append-only file so that a kill
    and restart keeps what was written (as a production Redis with AOF does)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = await asyncio.create_subprocess_exec(
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            if time.monotonic() > deadline or self.process.returncode is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            await asyncio.sleep(0.02)  # the server gives no other signal that it listens

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        await self.kill()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class BotProcess:
    """`python -m bot run` with its log in a file (a pipe nobody reads would block it)."""

    def __init__(self, cwd: Path, env: dict[str, str], name: str = "bot") -> None:
        self.cwd = cwd
        self.env = env
        self.log_path = cwd / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.cwd, env=self.env,
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()

    async def wait_healthy(self, port: int, seconds: float = 20) -> None:
        import aiohttp

        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.running, self.log()
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)  # readiness poll: the process gives no other signal
        raise AssertionError(f"the bot never became healthy:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    async def wait(self, seconds: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)

    async def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
