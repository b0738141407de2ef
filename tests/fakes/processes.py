"""Running the bot itself as a process, the way people start it, against the local fakes."""

from __future__ import annotations

import asyncio
import socket
import sys
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
