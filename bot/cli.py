"""`python -m bot`: the console chat and the platform runner."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.adapter_registry import Adapter, discover, thread_homes
from bot.errors import BotError, ConfigError
from bot.settings import Settings, load_settings, read_settings

if TYPE_CHECKING:  # the core (the openai SDK) is imported once there is work: --help stays quick
    from bot.assembly import Core
    from bot.conversation import ThreadRef

EXIT_CONFIG = 2
EXIT_FAILURE = 1
RESTART_PAUSE = 1.0
MAX_RESTART_PAUSE = 60.0
log = logging.getLogger("bot")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("assistant-bot")
    except PackageNotFoundError:
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="A Slack and Discord assistant over any OpenAI-style chat model.",
        epilog="Settings come from the environment and from .env in this folder (start from "
        ".env.example). `python -m bot doctor` checks them against the real services.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    console = commands.add_parser(
        "console",
        help="chat with the configured model in this terminal",
        description="Chat with the configured model in this terminal, with thread memory. "
        "Type /help once it runs for its commands.",
    )
    console.add_argument("--thread", default="main", help="conversation to start in")
    commands.add_parser(
        "run",
        help="start the configured platform adapters (Slack, Discord)",
        description="Start every platform adapter whose tokens are set, in one process.",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the configuration against the model, Redis, Slack and Discord",
        description="Check every setting against the real services, one line per check with "
        "what to do about it. Exit 0 when nothing failed (warnings pass), 1 otherwise.",
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead")
    migrate = commands.add_parser(
        "migrate",
        help="move conversations stored by an older version to the current key layout",
        description="Move conversations stored in Redis (REDIS_URL) by an older version to the "
        "current key layout; `run` does it by itself when no older process is alive. Stop the "
        "older processes first.",
    )
    migrate.add_argument(
        "--force", action="store_true", help="move them even while older processes seem alive"
    )
    search = commands.add_parser(
        "search",
        help="search the channel logs as grounded answers do",
        description="Search what the channel logs in Redis keep, with the retrieval answers "
        "use. With no QUERY, one query per line on standard input and one JSON line out each.",
    )
    search.add_argument("query", nargs="?", help="what to look for")
    search.add_argument("--platform", choices=["slack", "discord"])
    search.add_argument("--workspace", help="a Slack team id or a Discord guild id")
    search.add_argument("--channel", help="a channel (or Discord thread) id")
    search.add_argument(
        "--as", dest="as_user", metavar="USER",
        help="only the channels this person can read now (asked of the platform; Slack)",
    )  # fmt: skip
    search.add_argument("--limit", type=int, default=10, help="hits per query (default 10)")
    search.add_argument("--json", action="store_true", help="one JSON object per query")
    imports = commands.add_parser(
        "import",
        help="bring a Slack or Discord export into the channel logs, for /ask",
        description="Read a platform's export into the channel logs in Redis, within "
        "BOT_CHANNEL_LOG_DAYS and BOT_CHANNEL_LOG_MAX. Importing twice adds nothing.",
    )
    imports.add_argument("kind", choices=["slack-export", "discord-export"])
    imports.add_argument("path", help="Slack: the export's folder or zip; Discord: a JSON file")
    imports.add_argument("--workspace", help="Slack: the team id (T…) if the export has none")
    imports.add_argument(
        "--url", help="Slack: the workspace's address (https://acme.slack.com), for links"
    )
    commands.add_parser(
        "feedback",
        help="print the 👍 / 👎 counts people gave answers, per workspace",
        description="Print the feedback counts kept in Redis (REDIS_URL), per workspace.",
    )
    return parser


async def _migrate(settings: Settings, *, force: bool) -> int:
    from bot.store.keys import LAYOUT
    from bot.store.migrate import migrate, old_processes
    from bot.store.redis_pool import connect_redis

    if not settings.redis_url:
        raise ConfigError("REDIS_URL", "is not set; there is nothing stored to move")
    client = connect_redis(settings.redis_url, cluster=settings.redis_cluster)
    try:
        running = await old_processes(client, settings.redis_prefix)
        if running and not force:
            print(
                f"error: {running} process(es) of an older version still run on this Redis; "
                "stop them first (or pass --force)",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        moved = await migrate(client, settings.redis_prefix, thread_homes(discover()))
    finally:
        await client.aclose()
    print(
        f"Moved {moved.threads} conversations ({moved.turns} turns, {moved.in_flight} answers "
        f"in flight) to key layout {LAYOUT}."
    )
    return 0


async def _print_feedback(settings: Settings) -> None:
    from bot.feedback import RedisFeedback
    from bot.store.redis_pool import connect_redis

    if not settings.redis_url:
        raise ConfigError("REDIS_URL", "is not set; feedback is kept in Redis")
    client = connect_redis(settings.redis_url, cluster=settings.redis_cluster)
    try:
        store = RedisFeedback(client, prefix=settings.redis_prefix)
        scopes = await store.scopes()
        if not scopes:
            print("No feedback yet.")
        for scope in scopes:
            counts = await store.counts(scope)
            good, bad = counts.get("good", 0), counts.get("bad", 0)
            share = f"{100 * good / (good + bad):.0f}% helpful" if good + bad else "-"
            print(f"{scope}: 👍 {good}  👎 {bad}  ({share})")
    finally:
        await client.aclose()


async def _doctor(as_json: bool) -> int:
    from bot.doctor import Check, PlatformChecks, diagnose, render
    from bot.doctor import as_json as to_json

    found: list[Check] = []
    try:
        settings = read_settings(Settings)
    except ConfigError as exc:  # nothing else can be read without the settings
        found = [Check.fail("settings", str(exc), f"fix {exc.variable}")]
    else:
        try:
            settings.quota_config()
        except ConfigError as exc:  # reported, and the other checks still run
            found.append(Check.fail("settings", str(exc), f"fix {exc.variable}"))
        platforms: list[tuple[str, PlatformChecks]] = [
            (adapter.name, adapter.checks)
            for adapter in discover().values()
            if not adapter.interactive and adapter.configured() and hasattr(adapter, "checks")
        ]
        found += await diagnose(settings, platforms)
    print(to_json(found) if as_json else render(found))
    return 1 if any(check.status == "fail" for check in found) else 0


SECRET_NAMES = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD)$", re.IGNORECASE)


def secret_values(env_file: Path = Path(".env")) -> set[str]:
    """Every configured secret, from the environment and `.env`, so logs never show one."""
    found = {value for name, value in os.environ.items() if SECRET_NAMES.search(name)}
    if env_file.is_file():
        for line in env_file.read_text(errors="replace").splitlines():
            name, sep, value = line.strip().partition("=")
            if sep and SECRET_NAMES.search(name.removeprefix("export ").strip()):
                found.add(value.strip().strip("'\""))
    for name, value in os.environ.items():  # a password inside a URL (REDIS_URL)
        if name.endswith("_URL") and (password := urlsplit(value).password):
            found.add(password)
    return found


def _configure_logging(settings: Settings, *, quiet: bool, level: int | None = None) -> None:
    from bot.logs import configure as configure_logs

    if level is None:
        level = logging.WARNING if quiet else getattr(logging, settings.log_level.upper())
    configure_logs(level, json=settings.log_format == "json", secrets=secret_values())
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


async def _serve(
    adapters: Sequence[Adapter],
    settings: Settings,
    options: Mapping[str, str],
    homes: Callable[[ThreadRef], ThreadRef] | None = None,  # bot.store.migrate
) -> None:
    from bot.assembly import build_core
    from bot.ops import OpsServer

    core = await build_core(settings)
    current = asyncio.current_task()
    assert current is not None
    signals = 0
    interactive = len(adapters) == 1 and adapters[0].interactive

    def on_signal(name: str) -> None:
        # First signal: stop taking work, let answers finish within the grace period, exit 0.
        # Second: exit now; answers left in flight are settled by the next process to start.
        nonlocal signals
        signals += 1
        if signals == 1 and not interactive:
            log.info(
                "%s: finishing in-flight answers (at most %.0f s)", name, settings.shutdown_grace
            )
            core.stop()
        else:
            log.warning("%s again: stopping now", name)
            current.cancel()

    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, on_signal, stop.name)
    ended = False
    try:
        if not interactive:
            for adapter in adapters:  # not ready until each platform says it is up
                core.readiness.starting(adapter.name)
            core.readiness.when_started(settle_heap)
            if settings.ops_port:  # first: a port in use is said before anything starts
                core.ops = OpsServer(core.readiness, settings.ops_host, settings.ops_port)
                await core.ops.start()
            await core.start(homes)  # the stored layout; liveness and recovery
        async with asyncio.TaskGroup() as group:
            for adapter in adapters:
                group.create_task(supervise(adapter, core, options), name=adapter.name)
    except BaseExceptionGroup as group_error:
        # One adapter failing to start stops all; report its own error, not the group.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    else:
        ended = True
    finally:
        if core.ops is not None:
            await core.ops.stop()
        await core.aclose()
        if ended:  # after a failure, its one line is the last word
            log.info("stopped")


def settle_heap() -> None:
    """What starting built (modules, clients, settings) lives as long as the process: set it
    aside from the garbage collector, whose full collections would otherwise walk all of it
    again, tens of milliseconds each, in the middle of a burst of answers."""
    gc.collect()
    gc.freeze()


async def supervise(adapter: Adapter, core: Core, options: Mapping[str, str]) -> None:
    """Run one adapter; when it fails, log it once and start it again with backoff, so one
    platform's failure never takes the others down. A configuration error ends the process
    (with its one-line message)."""
    pause = RESTART_PAUSE
    started = time.monotonic()
    while True:
        try:
            await adapter.serve(core, options)
            return
        except (ConfigError, asyncio.CancelledError):
            raise
        except Exception as exc:
            if core.stopping.is_set() or adapter.interactive:
                raise
            ran = time.monotonic() - started
            # A platform out of reach is one line per attempt; anything else keeps its traceback.
            trace = None if isinstance(exc, OSError) else exc
            log.error("%s adapter failed (%s: %s); restarting in %.0f s", adapter.name,
                      type(exc).__name__, exc, pause, exc_info=trace)  # fmt: skip
            if ran > 60:
                pause = RESTART_PAUSE  # it had been working: start the backoff over
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(core.stopping.wait(), timeout=pause)
            if core.stopping.is_set():
                return
            pause = min(pause * 2, MAX_RESTART_PAUSE)
            started = time.monotonic()


def _choose(command: str, available: dict[str, Adapter]) -> list[Adapter]:
    if command == "console":
        if "console" not in available:
            raise ConfigError("console", "the console adapter is not installed (pip install -e .)")
        return [available["console"]]
    platforms = [a for a in available.values() if not a.interactive]
    chosen = [a for a in platforms if a.configured()]
    if not chosen:
        wanted = "; or ".join(a.requirement() for a in platforms) or "install a platform adapter"
        raise ConfigError("run", f"no platform is configured: {wanted}")
    return chosen


async def _search(settings: Settings, args: argparse.Namespace) -> int:
    from bot.search.command import open_search, readable_by, run_queries

    search, channels, close = await open_search(
        settings, platform=args.platform, workspace=args.workspace, channel=args.channel
    )
    try:
        if args.as_user:  # what this person may read, as answers check it
            channels = await readable_by(args.as_user, channels)
        if args.query is not None:
            queries: Iterable[str] = [args.query]
        else:
            queries = (q for q in (line.strip() for line in sys.stdin) if q)
        json_lines = args.json or args.query is None
        await run_queries(search, channels, queries, limit=args.limit, json_lines=json_lines)
    finally:
        await close()
    return 0


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from functools import partial

    from bot.adapter_registry import discover, export_readers
    from bot.history_import import run_import

    readers = export_readers(discover())
    if args.kind not in readers:
        raise ConfigError(args.kind, "its platform adapter is not installed")
    read = partial(readers[args.kind].read_export, args.kind)
    options = {k: v for k in ("workspace", "url") if (v := getattr(args, k))}
    print((await run_import(settings, read, Path(args.path), options)).line())
    return 0


async def _store_problems(settings: Settings) -> list[str]:
    """What is wrong with the configured Redis (nothing when REDIS_URL is unset or fine)."""
    if not settings.redis_url:
        return []
    from bot.assembly import connect_memory

    try:
        memory = await connect_memory(settings, attempts=1)
    except BotError as exc:
        return [f"REDIS_URL: {exc}"]
    await memory.aclose()
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `python -m bot`: what it can do
        parser.print_help()
        return 0
    try:
        if args.command == "doctor":  # reports invalid settings as failed checks
            with contextlib.suppress(ConfigError):  # its lines say it all: only errors are logged
                _configure_logging(read_settings(Settings), quiet=True, level=logging.ERROR)
            return asyncio.run(_doctor(args.json))
        if args.command == "feedback":  # needs Redis only, not a model or a platform
            asyncio.run(_print_feedback(read_settings(Settings)))
            return 0
        if args.command == "search":  # needs Redis only
            return asyncio.run(_search(read_settings(Settings), args))
        if args.command == "import":  # needs Redis only
            return asyncio.run(_import(read_settings(Settings), args))
        if args.command == "migrate":  # needs Redis only
            return asyncio.run(_migrate(read_settings(Settings), force=args.force))
        settings = load_settings()
        _configure_logging(settings, quiet=args.command == "console")
        available = discover()
        try:
            adapters = _choose(args.command, available)
        except ConfigError as missing:
            # Check what is configured before saying what is missing: a Redis that cannot be
            # reached is worth knowing in the same go.
            problems = asyncio.run(_store_problems(settings))
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            raise missing from None
        options = {"thread": args.thread} if args.command == "console" else {}
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(_serve(adapters, settings, options, thread_homes(available)))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
