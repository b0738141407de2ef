"""How the core finds its adapters without importing them.

Adapters register under the entry-point group `assistant_bot.adapters` (see pyproject.toml);
each entry point names an object of the `Adapter` shape below. The core depends only on that
shape, so it never imports Slack, Discord or any adapter module by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from bot.assembly import Core
    from bot.conversation import ThreadRef
    from bot.history_import import ExportedHistory

log = logging.getLogger(__name__)
GROUP = "assistant_bot.adapters"


class Adapter(Protocol):
    name: str
    interactive: bool  # the console: started on request, never by `run`

    def configured(self) -> bool:
        """Whether its own settings (tokens) are present in the environment."""

    def requirement(self) -> str:
        """What to set to turn it on, in one line."""

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        """Run until cancelled or until its platform connection ends for good."""

    # Optional: `async def checks(self) -> list[bot.doctor.Check]`, its part of `bot doctor`;
    # `exports` and `read_export` (ReadsExports below), for `python -m bot import`;
    # `def thread_home(self, ref: ThreadRef) -> ThreadRef`, a conversation stored before
    # threads had a place as the adapter makes it now (bot.store.migrate).


class ReadsExports(Protocol):
    """An adapter that can read its platform's exports (`python -m bot import <kind>`)."""

    exports: Mapping[str, str]  # kind -> the module that reads it

    def read_export(self, kind: str, path: Path, options: Mapping[str, str]) -> ExportedHistory:
        """The history in the export at `path` (bot.history_import)."""


def export_readers(adapters: Mapping[str, Adapter]) -> dict[str, ReadsExports]:
    """Every export kind the installed adapters read, and the adapter reading it."""
    found: dict[str, ReadsExports] = {}
    for adapter in adapters.values():
        for kind in getattr(adapter, "exports", {}):
            found[kind] = adapter  # type: ignore[assignment]
    return found


def thread_homes(adapters: Mapping[str, Adapter]) -> Callable[[ThreadRef], ThreadRef]:
    """Every adapter's `thread_home`, one after another."""
    placers = [a.thread_home for a in adapters.values() if hasattr(a, "thread_home")]

    def home(ref: ThreadRef) -> ThreadRef:
        for place in placers:
            ref = place(ref)
        return ref

    return home


def discover() -> dict[str, Adapter]:
    found: dict[str, Adapter] = {}
    for entry in entry_points(group=GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as exc:  # one broken adapter must not take the others down
            log.error("adapter %s could not be loaded: %s", entry.name, exc)
    return found
