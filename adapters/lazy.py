"""A platform adapter as the core discovers it: light to import (its settings only), so a
process that does not run the platform never loads its SDK; `serve` imports the runner."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings

from bot.settings import read_settings

if TYPE_CHECKING:
    from pathlib import Path

    from bot.assembly import Core
    from bot.conversation import ThreadRef
    from bot.doctor import Check
    from bot.history_import import ExportedHistory


class LazyAdapter:
    interactive = False

    def __init__(
        self,
        name: str,
        settings: type[BaseSettings],
        requirement: str,
        runner: str,
        doctor: str,
        homes: str = "",
        export: tuple[str, str] | None = None,
        access: str = "",
    ) -> None:
        self.name = name
        self._settings = settings
        self._requirement = requirement
        self._runner = runner  # the module whose `serve(core, options)` runs the platform
        self._doctor = doctor  # the module whose `checks()` are its part of `bot doctor`
        self._homes = homes  # the module whose `thread_home(ref)` places stored threads
        # (kind, module): `python -m bot import <kind>` reads an export with `read_export`
        self.exports = {export[0]: export[1]} if export else {}
        self._access = access  # the module whose `readable_scopes(user, scopes)` checks access

    def configured(self) -> bool:
        """Whether its bot token is set."""
        try:
            return getattr(read_settings(self._settings), "bot_token", None) is not None
        except Exception:
            return True  # let serve() report the invalid setting

    def requirement(self) -> str:
        return self._requirement

    async def checks(self) -> list[Check]:
        """Its configuration checked against the platform (`python -m bot doctor`)."""
        checks: list[Check] = await importlib.import_module(self._doctor).checks()
        return checks

    def thread_home(self, ref: ThreadRef) -> ThreadRef:
        """A conversation stored before threads had a place, as this adapter makes it now."""
        if not self._homes:
            return ref
        home: ThreadRef = importlib.import_module(self._homes).thread_home(ref)
        return home

    def read_export(self, kind: str, path: Path, options: Mapping[str, str]) -> ExportedHistory:
        """The history in a platform's export of `kind` (bot.history_import)."""
        reader = importlib.import_module(self.exports[kind])
        history: ExportedHistory = reader.read_export(path, options)
        return history

    async def readable_scopes(self, user: str, scopes: list[str]) -> list[str]:
        """The channel scopes `user` can read now, asked of the platform (`search --as`)."""
        if not self._access:
            from bot.errors import ConfigError

            raise ConfigError("--as", f"{self.name} cannot check who may read what from here")
        check = importlib.import_module(self._access).readable_scopes
        readable: list[str] = await check(user, scopes)
        return readable

    async def serve(self, core: Core, options: Mapping[str, str]) -> None:
        runner = importlib.import_module(self._runner)
        await runner.serve(core, options)
