"""The engine's side of usage: check and reserve before any model call, record what was spent
(riding in the answer's save where there is one), and read totals for /usage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bot.errors import OverQuota, StoreUnavailable
from bot.metrics import QUOTA_REFUSALS, QUOTA_UNCHECKED
from bot.store.riders import write_alone
from bot.usage.ledger import (
    InProcessLedger,
    Limits,
    Refusal,
    Reservation,
    UsageEntry,
    UsageLedger,
    UsageTotals,
)
from bot.usage.prices import Price
from bot.usage.report import refusal_sentence, usage_report
from bot.usage.tally import Payer, Tally, open_tally

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    limits: Limits = field(default_factory=Limits)
    admins: frozenset[str] = frozenset()  # platform user ids: exempt, and see everyone's usage
    prices: dict[str, Price] = field(default_factory=dict)


class Spending:
    """One request's tally and reservation, recorded once: with the answer's save when it hands
    itself over (`entry()`), else when the request ends."""

    def __init__(self, quotas: Quotas, tally: Tally, reservation: Reservation | None) -> None:
        self._quotas = quotas
        self.tally = tally
        self.reservation = reservation
        self.recorded = False

    def entry(self) -> UsageEntry | None:
        """The record as a write to send with the save (None: nothing to record)."""
        if self.recorded:
            return None
        self.recorded = True
        if not self.tally.spent and self.reservation is None:
            return None
        return self._quotas.ledger.entry(self.tally, self._quotas.today(), self.reservation)

    async def settle(self) -> None:
        tally = self.tally
        await write_alone(self.entry(), f"{tally.tokens} tokens of {tally.payer.user}'s usage")


class Quotas:
    def __init__(
        self,
        ledger: UsageLedger | None = None,
        config: QuotaConfig | None = None,
        *,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.ledger: UsageLedger = ledger or InProcessLedger()
        self.config = config or QuotaConfig()
        self._now = now
        self._let_through: set[tuple[str, str]] = set()  # (scope, user) let through Redis down

    def today(self) -> date:
        return self._now().date()

    def is_admin(self, payer: Payer) -> bool:
        return payer.user in self.config.admins

    async def admit(self, payer: Payer, tokens: int) -> Reservation | None:
        """Hold `tokens` for `payer`'s request, or raise OverQuota with the user's sentence."""
        if not self.config.limits or self.is_admin(payer):
            return None
        who = (payer.scope, payer.user)
        try:
            result = await self.ledger.reserve(payer, self.today(), tokens, self.config.limits)
        except StoreUnavailable as exc:
            if who in self._let_through:
                raise
            self._let_through.add(who)
            QUOTA_UNCHECKED.inc()
            log.warning(
                "quotas are not checked while Redis is down (%s): one answer let through for "
                "user %s of %s",
                exc,
                payer.user,
                payer.scope,
            )
            return None
        self._let_through.clear()  # Redis answers again
        if isinstance(result, Refusal):
            QUOTA_REFUSALS.labels(result.limit).inc()
            log.info("%s limit reached for user %s of %s", result.limit, payer.user, payer.scope)
            raise OverQuota(refusal_sentence(result, self._now()))
        return result

    @asynccontextmanager
    async def spending(self, payer: Payer, tokens: int) -> AsyncIterator[Spending]:
        """Admit the request, tally its model calls, and record them when it ends."""
        reservation = await self.admit(payer, tokens)
        spending = Spending(self, Tally(payer), reservation)
        try:
            with open_tally(spending.tally):
                yield spending
        finally:
            await spending.settle()

    async def totals(self, payer: Payer) -> tuple[UsageTotals, UsageTotals]:
        """The workspace's totals today and this month (UTC)."""
        today = self.today()
        month = [today.replace(day=d) for d in range(1, today.day + 1)]
        return (
            await self.ledger.days(payer.scope, [today]),
            await self.ledger.days(payer.scope, month),
        )

    async def report(
        self,
        payer: Payer,
        channel_label: Callable[[str], str] = str,
        name_label: Callable[[str], str] = str,
    ) -> str:
        """What /usage shows `payer` (admins see the whole workspace)."""
        today, month = await self.totals(payer)
        return usage_report(
            user=payer.user,
            channel=payer.channel,
            today=today,
            month=month,
            limits=self.config.limits,
            prices=self.config.prices,
            now=self._now(),
            admin=self.is_admin(payer),
            channel_label=channel_label,
            name_label=name_label,
        )
