"""Readiness: which parts the bot needs are down right now, for `/readyz` and for logs.

Liveness (`/healthz`) only says the process runs. Readiness says whether it can do its work:
Redis reachable (when configured), every platform connection up, and not shutting down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Readiness:
    def __init__(self) -> None:
        self._down: dict[str, str] = {}
        self._known: set[str] = set()
        self._probes: dict[str, Callable[[], str | None]] = {}
        self._starting: set[str] = set()  # parts not yet started (quietly down)
        self._on_started: list[Callable[[], None]] = []
        self.stopping = False

    def when_started(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the last part said to be starting has come up or down."""
        self._on_started.append(callback)

    def _started(self, part: str) -> None:
        if part in self._starting:
            self._starting.discard(part)
            if not self._starting:
                callbacks, self._on_started = self._on_started, []
                for callback in callbacks:
                    callback()

    def starting(self, part: str) -> None:
        """`part` is on its way up: not ready until it says `up` (or its probe does)."""
        self._starting.add(part)

    def watch(self, part: str, probe: Callable[[], str | None]) -> None:
        """Ask `probe` at every report: None when `part` is up, else why it is down."""
        self._probes[part] = probe

    def unwatch(self, part: str) -> None:
        self._probes.pop(part, None)

    def up(self, part: str) -> None:
        self._known.add(part)
        self._started(part)
        if self._down.pop(part, None) is not None:
            log.info("%s is back", part)

    def down(self, part: str, why: str) -> None:
        self._known.add(part)
        self._started(part)  # it started, and says what is wrong
        if part not in self._down:
            log.warning("%s is down: %s", part, why)
        self._down[part] = why

    def _probe(self) -> None:
        for part, probe in list(self._probes.items()):
            why = probe()
            if why is None:
                self.up(part)
            else:
                self.down(part, why)

    @property
    def ready(self) -> bool:
        self._probe()
        return not self._down and not self._starting and not self.stopping

    def report(self) -> dict[str, object]:
        """The JSON body of /readyz: what is down and why."""
        ready = self.ready
        down = {**dict.fromkeys(self._starting, "starting"), **self._down}
        return {
            "ready": ready,
            "stopping": self.stopping,
            "down": dict(sorted(down.items())),
            "up": sorted(self._known - self._down.keys()),
        }
