"""Slack's per-workspace rate tiers as one budget shared by every reply of every replica.

Spent in priority order: final text and stream stops wait for room; progress edits leave a share
of chat.update for final text and are skipped otherwise; a native stream starts only while
chat.startStream and chat.stopStream both have room, its stop paid at the start (else the answer
is shown by edits); appends are batched larger when
chat.appendStream is short. A 429 pauses that method for the whole workspace.
"""

from __future__ import annotations

from bot.rate_budget import RateBudget

# (calls, seconds) per workspace: Tier 2 about 20 a minute, Tier 3 about 50, Tier 4 about 100.
TIERS: dict[str, tuple[int, float]] = {
    "chat.update": (50, 60.0),
    "chat.delete": (50, 60.0),
    "chat.startStream": (20, 60.0),
    "chat.stopStream": (20, 60.0),
    "chat.appendStream": (100, 60.0),
}
POST_PER_CHANNEL = (5, 5.0)  # chat.postMessage: about one a second per channel, short bursts
FINAL_SHARE = 0.4  # of chat.update's window kept for final text


class SlackBudget:
    def __init__(
        self, budget: RateBudget, team: str, tiers: dict[str, tuple[int, float]] | None = None
    ) -> None:
        self._budget = budget
        self._team = team
        self.tiers = {**TIERS, **(tiers or {})}

    def _key(self, method: str, channel: str | None = None) -> str:
        return f"slack:{self._team}:{method}" + (f":{channel}" if channel else "")

    async def may(self, method: str) -> bool:
        """A call that can be skipped or done another way."""
        limit, period = self.tiers[method]
        keep = int(limit * FINAL_SHARE) if method == "chat.update" else 0
        return await self._budget.try_take(self._key(method), limit, period, keep=keep)

    async def wait(self, method: str) -> None:
        """A call that must happen: wait for room."""
        limit, period = self.tiers[method]
        await self._budget.take(self._key(method), limit, period)

    async def wait_to_post(self, channel: str) -> None:
        limit, period = POST_PER_CHANNEL
        await self._budget.take(self._key("chat.postMessage", channel), limit, period)

    async def refused(self, method: str, retry_after: float) -> None:
        """Slack said 429: nobody in the workspace calls `method` until Retry-After."""
        await self._budget.pause(self._key(method), retry_after)

    async def prepay_final(self) -> bool:
        """Reserve the final edit of a reply about to show a placeholder (finals come first)."""
        limit, period = self.tiers["chat.update"]
        return await self._budget.try_take(self._key("chat.update"), limit, period)

    async def may_start_stream(self) -> bool:
        """A native stream starts only with its stop paid for now: a stop that had to wait for
        room kept answers open (and unsaved by Slack) for up to a minute in a burst."""
        if not await self.may("chat.startStream"):
            return False
        limit, period = self.tiers["chat.stopStream"]
        return await self._budget.try_take(self._key("chat.stopStream"), limit, period)
