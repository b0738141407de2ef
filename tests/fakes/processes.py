"""Running the bot itself as a process, the way people start it, against the local fakes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    import random

    while True:
        port = random.randint(20_000, 50_000)
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
                return port
        except OSError:
            continue


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


class SuiteRedis:
    """The suite's own redis-server on a free port, keeping nothing on disk: used when
    TEST_REDIS_URL names no Redis, so the tests need only the binary, not a running server."""

    INSTALL = (
        "the tests need redis-server: install it (Debian/Ubuntu: apt-get install redis-server; "
        "macOS: brew install redis), or set TEST_REDIS_URL to a Redis they may use"
    )

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(self.INSTALL)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _answers_ping(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)  # the server gives no other signal that it listens

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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

    async def wait_healthy(self, port: int, seconds: float = 20, path: str = "/healthz") -> None:
        import aiohttp

        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.running, self.log()
                try:
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
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


class LocalCluster:
    """A Redis Cluster of three masters on free ports (`redis-server --cluster-enabled yes`,
    joined with `redis-cli --cluster create`), for the tests that must hold on a cluster."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.ports = [free_cluster_port() for _ in range(masters)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError(
                "redis-server and redis-cli are needed (apt-get install redis-server)"
            )
        for port in self.ports:
            folder = self.directory / str(port)
            folder.mkdir(parents=True, exist_ok=True)
            self.processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(folder / "nodes.conf"), "--save", "",
                 "--appendonly", "no", "--dir", str(folder)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        deadline = time.monotonic() + 10
        while not all(_answers_ping(p) for p in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster's redis-servers did not start")
            time.sleep(0.02)  # the servers give no other signal that they listen
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=30)  # fmt: skip
        while not all(self._state_ok(p) for p in self.ports):
            if time.monotonic() > deadline + 20:
                raise RuntimeError("the cluster never reached cluster_state:ok")
            time.sleep(0.05)  # nodes agree on the slots a moment after `create` returns

    @staticmethod
    def _state_ok(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.sendall(b"CLUSTER INFO\r\n")
                return b"cluster_state:ok" in probe.recv(4096)
        except OSError:
            return False

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
