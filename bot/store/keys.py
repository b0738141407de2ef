"""Every Redis key the bot writes, in one place.

All keys start with one prefix (`REDIS_PREFIX`, default "asst"). A thread's keys share one hash
tag, `{platform:workspace:channel:thread}`, so in Redis Cluster they live in one slot and the
multi-key scripts and transactions below stay legal.

    <prefix>:{<thread>}:turns   list of JSON turns, oldest first, capped, expiring
    <prefix>:{<thread>}:meta    hash: summary (the rolling summary of folded turns)
    <prefix>:{<thread>}:lock    the per-thread answer lock ("<owner>:<token>", expiring)
    <prefix>:{<thread>}:pending hash: message id -> the answer in flight for it (bot.store.inflight)
    <prefix>:{<thread>}:gone    set of deleted message ids (tombstones, an hour): never saved again
    <prefix>:inflight           sorted set of every answer in flight, by start time (recovery)
    <prefix>:alive:<owner>      a running process's liveness, renewed every few seconds
    <prefix>:claim:{<platform:workspace>}:<name>
                                a message claimed for handling (bot.store.claims), expiring
    <prefix>:note:<key>         small expiring notes of the adapters (bot.store.kv)
    <prefix>:log:{<channel>}, <prefix>:logmeta:{<channel>}, <prefix>:loggone:{<channel>}
                                the channel log (bot.summaries.channel_log), its start and
                                its tombstones
    <prefix>:usage:{<platform:workspace>}:<YYYY-MM-DD>
                                hash: a workspace's tokens that day (bot.usage.ledger), kept
                                BOT_USAGE_RETENTION_DAYS
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from bot.conversation import ThreadRef

DEFAULT_PREFIX = "asst"


def _part(value: str) -> str:
    # Braces would end the hash tag early and colons would blur the parts.
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    turns: str
    meta: str
    lock: str
    pending: str
    gone: str


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    prefix: str = DEFAULT_PREFIX

    def tag(self, thread: ThreadRef) -> str:
        parts = (thread.platform, thread.workspace, thread.channel, thread.thread)
        return "{" + ":".join(_part(p) for p in parts) + "}"

    def thread(self, thread: ThreadRef) -> ThreadKeys:
        base = f"{self.prefix}:{self.tag(thread)}"
        return ThreadKeys(
            turns=f"{base}:turns",
            meta=f"{base}:meta",
            lock=f"{base}:lock",
            pending=f"{base}:pending",
            gone=f"{base}:gone",
        )

    @property
    def in_flight(self) -> str:
        return f"{self.prefix}:inflight"

    def alive(self, owner: str) -> str:
        return f"{self.prefix}:alive:{owner}"

    def usage_day(self, scope: str, day: date) -> str:
        """A workspace's (`platform:workspace`) usage on `day`; one slot per workspace."""
        platform, _, workspace = scope.partition(":")
        return f"{self.prefix}:usage:{{{_part(platform)}:{_part(workspace)}}}:{day.isoformat()}"
