"""The test command works on a machine with redis-server installed but not running: the suite
starts its own on a free port and stops it; without the binary, one line says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def redis_servers() -> set[str]:
    found = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in found.stdout.splitlines() if "redis-server" in line}


def child_pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_suite_starts_its_own_redis_and_stops_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEST_REDIS_URL"}
    before = redis_servers()
    done = child_pytest(env, "tests/bot/store/test_redis_pool.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
    assert redis_servers() == before  # the child's server is gone again


def test_without_redis_server_one_line_says_how_to_install_it(tmp_path) -> None:
    (tmp_path / "python3").symlink_to(sys.executable)  # a PATH with Python and nothing else
    env = {k: v for k, v in os.environ.items() if k != "TEST_REDIS_URL"}
    env["PATH"] = str(tmp_path)
    done = child_pytest(env, "tests/bot/store/test_redis_pool.py")
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if "redis-server" in line]
    assert "apt-get install redis-server" in line and "TEST_REDIS_URL" in line


def test_a_benchmark_importing_the_test_helpers_leaves_no_redis_server_behind() -> None:
    """bench/ reuses the tests' fakes; importing them starts the suite's Redis, which must stop
    when that process ends even though no pytest run ends it."""
    env = {k: v for k, v in os.environ.items() if k != "TEST_REDIS_URL"}
    before = redis_servers()
    done = subprocess.run(
        [sys.executable, "-c", "import tests.adapters.slack.conftest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert redis_servers() == before
