"""Background work an adapter starts after acking, tracked so it can be awaited and drained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def idle(self) -> None:
        """Return once every task, including any they start, has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self, grace: float, *, last_words: float = 5.0) -> int:
        """Let running work finish within `grace` seconds, then cancel what is left and give it
        `last_words` seconds to say so; returns how many tasks were cancelled."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        left = [t for t in self._tasks if not t.done()]
        for task in left:
            task.cancel()
        if left:
            log.warning("%d answers still running after %.0f s; ending them", len(left), grace)
            await asyncio.wait(left, timeout=last_words)
        return len(left)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.idle()

    def __len__(self) -> int:
        return len(self._tasks)
