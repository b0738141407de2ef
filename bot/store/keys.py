"""Every Redis key the bot writes, in one place.

All keys start with one prefix (`REDIS_PREFIX`, default "asst"). What one answer touches shares
one hash tag, its channel's `{platform:workspace:channel}` (a thread's `home`), so in Redis
Cluster a follow-up's claim, log entry, thread, lock and in-flight record live in one slot and
each of its three steps is one send, as on a single node:

    <prefix>:{<place>}:<thread>:turns    list of JSON turns, oldest first, capped, expiring
    <prefix>:{<place>}:<thread>:meta     hash: summary (the rolling summary of folded turns)
    <prefix>:{<place>}:<thread>:lock     the per-thread answer lock ("<owner>:<token>", expiring)
    <prefix>:{<place>}:<thread>:pending  hash: message id -> the answer in flight for it
    <prefix>:{<place>}:<thread>:gone     set of deleted message ids (tombstones, an hour)
    <prefix>:{<place>}:<thread>:taken    set of answers taken over from a silent process: their
                                         owner is fenced out of them (an hour)
    <prefix>:{<place>}:inflight          sorted set of the channel's answers in flight
    <prefix>:claim:{<place>}:<name>      a message claimed for handling (bot.store.claims)
    <prefix>:log:{<place>}, <prefix>:logmeta:{<place>}, <prefix>:loggone:{<place>}
                                         the channel log (bot.summaries.channel_log)
    <prefix>:vec:{<place>}, <prefix>:vec:{<place>}:embedding
                                         hash: message id -> its text's digest and embedding
                                         (bot.search.vectors), and who is embedding the channel

(`<thread>` is `<channel>:<thread>` where the place is not the thread's channel.) Where the
answers in flight are, for recovery, and who is alive, share the tag `{live}`:

    <prefix>:{live}:owners               sorted set: every process that recorded an answer
    <prefix>:{live}:alive:<owner>        a running process's liveness, renewed every few seconds
    <prefix>:{live}:places:<owner>       set: the places where that process recorded answers
    <prefix>:{live}:epoch                a random value set once: when it changes or is gone,
                                         Redis lost its data and live processes write back what
                                         they know (bot.recovery)
    <prefix>:{epoch-<n>}:epoch           the same, on a Cluster, on each primary {live} is not on

and the rest have slots of their own:

    <prefix>:usage:{<platform:workspace>}:<YYYY-MM-DD>
                                         hash: a workspace's tokens that day (bot.usage.ledger)
    <prefix>:note:<key>                  small expiring notes of the adapters (bot.store.kv)
    <prefix>:rate:{<key>}, …:pause       a platform method's shared call window (bot.rate_budget)
    <prefix>:feedback:{<scope>}, …:counts  a workspace's 👍/👎 on answers (bot.feedback)
    <prefix>:logmeta:resumed             when the channel logs were last resumed
    <prefix>:schema                      the layout's version (bot.store.migrate)

Layout 1 (before) tagged each thread on its own, `<prefix>:{<platform:workspace:channel:thread>}`,
with one global `<prefix>:inflight` index: `python -m bot migrate` moves it (bot.store.migrate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from bot.conversation import ThreadRef

DEFAULT_PREFIX = "asst"
LAYOUT = 2


def _part(value: str) -> str:
    # Braces would end the hash tag early and colons would blur the parts.
    return quote(value, safe="")


def channel_scope(platform: str, workspace: str, channel: str) -> str:
    """A channel's name in keys: claims, the channel log and its threads' tag all use it, so a
    message's claim and log entry share a slot with its thread."""
    return f"{_part(platform)}:{_part(workspace)}:{_part(channel)}"


def place_of(thread: ThreadRef) -> str:
    return channel_scope(thread.platform, thread.workspace, thread.home)


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    turns: str
    meta: str
    lock: str
    pending: str
    gone: str
    taken: str
    index: str  # the place's answers in flight
    place: str


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    prefix: str = DEFAULT_PREFIX

    def thread(self, thread: ThreadRef) -> ThreadKeys:
        place = place_of(thread)
        name = _part(thread.thread)
        if thread.place and thread.place != thread.channel:
            name = f"{_part(thread.channel)}:{name}"
        base = f"{self.prefix}:{{{place}}}:{name}"
        return ThreadKeys(
            turns=f"{base}:turns",
            meta=f"{base}:meta",
            lock=f"{base}:lock",
            pending=f"{base}:pending",
            gone=f"{base}:gone",
            taken=f"{base}:taken",
            index=self.in_flight(place),
            place=place,
        )

    def in_flight(self, place: str) -> str:
        return f"{self.prefix}:{{{place}}}:inflight"

    @property
    def owners(self) -> str:
        return f"{self.prefix}:{{live}}:owners"

    def alive(self, owner: str) -> str:
        return f"{self.prefix}:{{live}}:alive:{owner}"

    @property
    def epoch(self) -> str:
        return self.epoch_at("live")

    def epoch_at(self, tag: str) -> str:
        """The epoch marked again under another tag (on a Cluster: one per primary)."""
        return f"{self.prefix}:{{{tag}}}:epoch"

    def places(self, owner: str) -> str:
        return f"{self.prefix}:{{live}}:places:{owner}"

    def claim(self, scope: str, name: str) -> str:
        return f"{self.prefix}:claim:{{{scope}}}:{name}"

    @property
    def schema(self) -> str:
        return f"{self.prefix}:schema"

    def channel_log(self, channel: str) -> tuple[str, str, str]:
        """A channel's log, its meta (since when it is kept) and its deletions, one slot."""
        tag = "{" + channel + "}"
        return (f"{self.prefix}:log:{tag}", f"{self.prefix}:logmeta:{tag}",
                f"{self.prefix}:loggone:{tag}")  # fmt: skip

    def vectors(self, channel: str) -> tuple[str, str]:
        """A channel's message embeddings and its embedding lease, in its log's slot."""
        base = f"{self.prefix}:vec:{{{channel}}}"
        return base, f"{base}:embedding"

    @property
    def log_resumed(self) -> str:
        """When this deployment's channel logs were last resumed (messages before are missing)."""
        return f"{self.prefix}:logmeta:resumed"

    def rate(self, key: str) -> tuple[str, str]:
        """A platform method's shared call window and its Retry-After pause (bot.rate_budget)."""
        base = f"{self.prefix}:rate:{{{key}}}"
        return base, f"{base}:pause"

    def feedback(self, scope: str) -> tuple[str, str]:
        """A workspace's feedback entries and their counts (bot.feedback)."""
        base = f"{self.prefix}:feedback:{{{scope}}}"
        return base, f"{base}:counts"

    @property
    def feedback_counts_pattern(self) -> str:
        return f"{self.prefix}:feedback:{{*}}:counts"

    def note(self, key: str) -> str:
        """A small expiring note of an adapter (bot.store.kv)."""
        return f"{self.prefix}:note:{key}"

    def usage_day(self, scope: str, day: date) -> str:
        """A workspace's (`platform:workspace`) usage on `day`; one slot per workspace."""
        platform, _, workspace = scope.partition(":")
        return f"{self.prefix}:usage:{{{_part(platform)}:{_part(workspace)}}}:{day.isoformat()}"
