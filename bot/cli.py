"""`python -m bot`: the console chat and the platform runner."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping, Sequence

from bot.core import build_core
from bot.errors import BotError, ConfigError
from bot.frontends import Adapter, discover
from bot.settings import Settings, load_settings

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="A Slack and Discord assistant over any OpenAI-style chat model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    return parser


def _configure_logging(settings: Settings, *, quiet: bool) -> None:
    level = logging.WARNING if quiet else getattr(logging, settings.log_level.upper())
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


async def _serve(
    adapters: Sequence[Adapter], settings: Settings, options: Mapping[str, str]
) -> None:
    current = asyncio.current_task()
    assert current is not None
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, current.cancel)  # docker stop: finish in-flight work, exit 0
    core = await build_core(settings)
    try:
        async with asyncio.TaskGroup() as group:
            for adapter in adapters:
                group.create_task(adapter.serve(core, options), name=adapter.name)
    except BaseExceptionGroup as group_error:
        # One adapter failing to start stops all; report its own error, not the group.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        await core.aclose()


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(settings, quiet=args.command == "console")
        adapters = _choose(args.command, discover())
        options = {"thread": args.thread} if args.command == "console" else {}
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(_serve(adapters, settings, options))
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
