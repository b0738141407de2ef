"""The usage ledger: tokens per day, per workspace, channel, user and model, and the reservations
that keep quotas from being overshot by answers running at the same time.

A workspace's day is one hash (one Redis key, one Cluster slot), so checking all three limits and
reserving is one atomic step. Its fields:

    t, r                      the workspace's tokens and tokens reserved by answers in progress
    u|<user>|t, u|<user>|r    the same for a user;   c|<channel>|t, c|<channel>|r  for a channel
    m|<model>|i, m|<model>|o  input and output tokens by model
    um|<user>|<model>|i|o     a user's by model;     cm|<channel>|<model>|i|o  a channel's
    n|<user>                  the user's display name, for the admins' report
    e                         model calls whose tokens the bot counted (the server sent no usage)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, Protocol

from bot.store.redis_pool import ScriptCall
from bot.usage.tally import Payer, Tally

LimitName = Literal["user", "channel", "workspace"]
DEFAULT_RETENTION_DAYS = 90


@dataclass(frozen=True, slots=True)
class Limits:
    """Daily token limits; 0 means unlimited."""

    user: int = 0
    channel: int = 0
    workspace: int = 0

    def __bool__(self) -> bool:
        return bool(self.user or self.channel or self.workspace)


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: LimitName
    allowed: int
    used: int  # tokens spent today
    reserved: int  # held by answers in progress


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens held against the limits in force (`fields`: their reserved fields) of one day."""

    payer: Payer
    day: date
    tokens: int
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelTokens:
    input: int = 0
    output: int = 0

    @property
    def tokens(self) -> int:
        return self.input + self.output

    def __add__(self, other: ModelTokens) -> ModelTokens:
        return ModelTokens(self.input + other.input, self.output + other.output)


Breakdown = dict[str, ModelTokens]  # by model


def _merge(into: dict[str, Breakdown], key: str, model: str, tokens: ModelTokens) -> None:
    into[key][model] = into[key].get(model, ModelTokens()) + tokens


@dataclass
class UsageTotals:
    """What a workspace spent over some days, by model, and by user and channel."""

    models: Breakdown = field(default_factory=dict)
    users: dict[str, Breakdown] = field(default_factory=lambda: defaultdict(dict))
    channels: dict[str, Breakdown] = field(default_factory=lambda: defaultdict(dict))
    names: dict[str, str] = field(default_factory=dict)
    estimated_calls: int = 0

    def add(self, fields: Mapping[str, str]) -> None:
        """Add one day's hash."""
        parts: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
        for name, value in fields.items():
            kind, *rest = name.split("|")
            if kind == "n" and rest:
                self.names.setdefault(rest[0], value)
            elif kind == "e":
                self.estimated_calls += int(value)
            elif kind == "ucm" and len(rest) >= 3:
                user, channel, model = rest[0], rest[1], "|".join(rest[2:])
                tokens = ModelTokens(*divmod(int(value), SIDE))
                self.models[model] = self.models.get(model, ModelTokens()) + tokens
                _merge(self.users, user, model, tokens)
                _merge(self.channels, channel, model, tokens)
            elif kind in ("m", "um", "cm") and len(rest) >= 2 and rest[-1] in ("i", "o"):
                parts[(kind, *rest[:-1])][rest[-1]] = int(value)  # before packed counters
        for (kind, *who), sides in parts.items():
            tokens = ModelTokens(sides.get("i", 0), sides.get("o", 0))
            if kind == "m" and len(who) == 1:
                self.models[who[0]] = self.models.get(who[0], ModelTokens()) + tokens
            elif kind == "um" and len(who) == 2:
                _merge(self.users, who[0], who[1], tokens)
            elif kind == "cm" and len(who) == 2:
                _merge(self.channels, who[0], who[1], tokens)

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.models.values())


SIDE = 1 << 32  # output tokens in the low 32 bits of a packed counter, input above them


def packed(input_tokens: int, output_tokens: int) -> int:
    """Input and output tokens as one integer that adds up under HINCRBY (64 bits: a day's
    output per user, channel and model stays far below 2^32)."""
    return input_tokens * SIDE + output_tokens


def day_fields(tally: Tally) -> dict[str, int]:
    """The increments one request adds to its workspace's day."""
    payer = tally.payer
    add: dict[str, int] = defaultdict(int)
    for model, spent in tally.by_model().items():
        total = spent.tokens
        add["t"] += total
        add[f"u|{payer.user}|t"] += total
        add[f"c|{payer.channel}|t"] += total
        # who spent it where on which model: input and output in one counter (`packed`); the
        # totals by model, by user and by channel are summed from these when a report reads them
        add[f"ucm|{payer.user}|{payer.channel}|{model}"] += packed(
            spent.prompt_tokens, spent.completion_tokens
        )
    estimated = sum(s.estimated for s in tally.spent)
    if estimated:
        add["e"] = estimated
    return dict(add)


def limit_fields(payer: Payer) -> list[tuple[LimitName, str, str]]:
    """Each limit's (name, tokens field, reserved field)."""
    return [
        ("user", f"u|{payer.user}|t", f"u|{payer.user}|r"),
        ("channel", f"c|{payer.channel}|t", f"c|{payer.channel}|r"),
        ("workspace", "t", "r"),
    ]


def allowed(limits: Limits, name: LimitName) -> int:
    return {"user": limits.user, "channel": limits.channel, "workspace": limits.workspace}[name]


def holding(payer: Payer, day: date, tokens: int, limits: Limits) -> Reservation:
    """The reservation of `tokens` against each limit in force."""
    held = tuple(r for name, _, r in limit_fields(payer) if allowed(limits, name))
    return Reservation(payer, day, tokens, held)


class UsageLedger(Protocol):
    async def reserve(
        self, payer: Payer, day: date, tokens: int, limits: Limits
    ) -> Refusal | Reservation:
        """Refuse if any limit is reached (spent plus reserved); else hold `tokens` against each
        limit in force until the request's usage is recorded. Atomic across processes."""

    def entry(self, tally: Tally, day: date, reservation: Reservation | None) -> UsageEntry:
        """The request's usage as a write that can ride with the answer's save."""

    async def days(self, scope: str, days: Sequence[date]) -> UsageTotals:
        """A workspace's (`platform:workspace`) totals over `days`."""

    async def spent_today(self, payer: Payer, day: date) -> dict[LimitName, int]:
        """Tokens the payer's user, channel and workspace spent on `day`."""


class UsageEntry(Protocol):
    """A Rider (bot.store.riders): `write()` on its own, or `call(client)` in a pipeline."""

    async def write(self) -> None: ...

    def call(self, client: Any) -> ScriptCall | None: ...


class InProcessLedger:
    """The ledger of a process without Redis: the same hashes, in a dict, for one process."""

    def __init__(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self._days: dict[tuple[str, date], dict[str, str]] = defaultdict(dict)
        self._lock = asyncio.Lock()
        self._keep = timedelta(days=retention_days)

    def _day(self, scope: str, day: date) -> dict[str, str]:
        """A workspace's day, the days past the retention dropped when a new one begins."""
        if (scope, day) not in self._days:
            self._days = defaultdict(
                dict, {k: v for k, v in self._days.items() if day - k[1] <= self._keep}
            )
        return self._days[(scope, day)]

    def _bump(self, day: dict[str, str], name: str, by: int) -> None:
        day[name] = str(max(0, int(day.get(name, "0")) + by))

    async def reserve(
        self, payer: Payer, day: date, tokens: int, limits: Limits
    ) -> Refusal | Reservation:
        async with self._lock:
            fields = self._day(payer.scope, day)
            for name, spent, held in limit_fields(payer):
                most = allowed(limits, name)
                used, reserved = int(fields.get(spent, "0")), int(fields.get(held, "0"))
                if most and used + reserved >= most:
                    return Refusal(name, most, used, reserved)
            reservation = holding(payer, day, tokens, limits)
            for held in reservation.fields:
                self._bump(fields, held, tokens)
            return reservation

    def entry(self, tally: Tally, day: date, reservation: Reservation | None) -> UsageEntry:
        return _InProcessEntry(self, tally, day, reservation)

    async def record(self, tally: Tally, day: date, reservation: Reservation | None) -> None:
        async with self._lock:
            fields = self._day(tally.payer.scope, day)
            for name, by in day_fields(tally).items():
                self._bump(fields, name, by)
            if tally.payer.name:
                fields[f"n|{tally.payer.user}"] = tally.payer.name
            if reservation is not None:
                held = self._days[(reservation.payer.scope, reservation.day)]
                for name in reservation.fields:
                    self._bump(held, name, -reservation.tokens)

    async def days(self, scope: str, days: Sequence[date]) -> UsageTotals:
        totals = UsageTotals()
        for day in days:
            totals.add(self._days.get((scope, day), {}))
        return totals

    async def spent_today(self, payer: Payer, day: date) -> dict[LimitName, int]:
        fields = self._days.get((payer.scope, day), {})
        return {name: int(fields.get(spent, "0")) for name, spent, _ in limit_fields(payer)}


@dataclass(frozen=True, slots=True)
class _InProcessEntry:
    ledger: InProcessLedger
    tally: Tally
    day: date
    reservation: Reservation | None

    async def write(self) -> None:
        await self.ledger.record(self.tally, self.day, self.reservation)

    def call(self, client: Any) -> ScriptCall | None:
        return None
