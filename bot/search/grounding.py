"""Answers grounded in the team's own history: "what did we decide about X?", answered only from
the channel's messages, every sentence citing the ones it used, and "I could not find this here"
instead of a guess.

Three gates stand between a question and an answer shown as fact:
1. retrieval: nothing relevant in the channel (bot.search.retrieval) — no model call at all;
2. the model, told to reply NOT FOUND when the messages do not answer the question;
3. the citations: an answer citing none of the messages it was given is not shown as fact.
Each ends in the same reply: what was searched (scope, how many messages, since when) and the
closest messages, as links.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.chat_model import ChatMessage, ChatModel, complete
from bot.conversation import IncomingMessage, ThreadRef, Turn
from bot.engine_config import EngineConfig
from bot.errors import InvalidRequest, StoreUnavailable
from bot.prompt import PromptPlan
from bot.search.channel_search import ChannelSearch, Searched
from bot.search.index import Hit
from bot.store.keys import channel_scope
from bot.summaries.channel_log import ChangesRead, LogChanges
from bot.summaries.citations import CitingStream, labelled, resolve, uncited
from bot.summaries.sources import SourceMessage
from bot.usage.tally import CountedTo, Payer

log = logging.getLogger(__name__)

NOT_FOUND = "NOT FOUND"
SOURCE_CHARS = 600  # of one message, in the prompt
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")

INSTRUCTIONS = """\
You answer a question about what a team said in their chat, using only the numbered messages \
below. Answer in the language of the question, in one to four sentences. End every sentence \
with the ids of the messages it relies on, in square brackets, like [m2] or [m1][m4]. Cite only \
ids listed below; never write links or URLs. Never add facts the messages do not state. If the \
messages do not answer the question, reply with exactly: NOT FOUND"""


# What a mention's or follow-up's prompt gains when the channel holds something relevant.
CONTEXT = """\
Messages from this channel's history that may bear on the latest message follow, each with an \
id. Where your answer relies on one, end that sentence with its id in square brackets, like \
[m2] or [m1][m3]; cite only these ids and never write links or URLs for them. If they do not \
help, answer as you would without them and cite nothing.

"""
CONTEXT_SOURCES = 6  # messages offered to a mention's answer at the most


class Cited:
    """A mention's answer with the channel's relevant messages offered to it: a system message
    just before the question, citations resolved to links as the answer streams, the list of
    what it cited under it, and the answer remembered without ids. With no sources it leaves
    the answer as it is."""

    def __init__(self, sources: Sequence[SourceMessage], dialect: str) -> None:
        self.sources = list(sources)
        self.dialect = dialect
        self.prompt = context(self.sources) if self.sources else ""
        self._citing = CitingStream(labelled(self.sources), dialect)

    def offered_in(self, plan: PromptPlan) -> PromptPlan:
        if not self.prompt:
            return plan
        *before, last = plan.messages
        return replace(plan, messages=(*before, ChatMessage("system", self.prompt), last))

    def shown(self, delta: str) -> str:
        """What of the model's `delta` can be shown now (citations held until complete)."""
        return self._citing.feed(delta) if self.sources else delta

    def tail(self) -> str:
        """What was held back, and the list of what the answer cited."""
        if not self.sources:
            return ""
        tail = self._citing.finish()
        if self._citing.cited:
            tail += "\n\n" + sources_list(self._citing.cited, self.dialect)
        return tail

    def remembered(self, text: str) -> str:
        return uncited(text) if self.sources else text


@dataclass(frozen=True, slots=True)
class GroundedAnswer:
    text: str  # ready to show: citations resolved for the dialect, sources listed
    found: bool
    cited: tuple[SourceMessage, ...] = ()


def source_of(hit: Hit) -> SourceMessage:
    m = hit.message
    return SourceMessage(m.id, m.author, m.text, datetime.fromtimestamp(m.at, UTC), m.link)


def grounded_in(thread: ThreadRef) -> str:
    """The channel a conversation is grounded in: its own (a Discord thread's parent)."""
    return channel_scope(thread.platform, thread.workspace, thread.channel)


def listing(sources: Sequence[SourceMessage]) -> str:
    """The numbered messages as the model reads them: id, author, time, text."""
    return "\n".join(
        f"{key} — {s.author}, {s.at:%Y-%m-%d %H:%M}: {' '.join(s.text.split())[:SOURCE_CHARS]}"
        for key, s in labelled(sources).items()
    )


def prompt(question: str, sources: Sequence[SourceMessage]) -> list[ChatMessage]:
    body = f"Question: {question}\n\nMessages:\n" + listing(sources)
    return [ChatMessage("system", INSTRUCTIONS), ChatMessage("user", body)]


def context(sources: Sequence[SourceMessage]) -> str:
    """The system message that offers a mention's answer the channel's relevant messages."""
    return CONTEXT + listing(sources)


def not_found(
    where: str, searched: Searched, closest: Sequence[SourceMessage], dialect: str
) -> str:
    since = f" from {searched.since:%-d %b}" if searched.since else ""
    count = f"{searched.messages:,} message{'s' if searched.messages != 1 else ''}"
    text = f"I could not find this in {where} (searched {count}{since} to today)."
    if closest:
        refs = [_ref(s, dialect) for s in closest[:3]]
        text += " The closest I found: " + ", ".join(refs) + "."
    return text


def _ref(source: SourceMessage, dialect: str) -> str:
    said = f"{source.author}, {source.at:%-d %b}"
    if dialect == "markdown" and source.link:
        return f"[{said}]({source.link})"
    return said


def sources_list(cited: Sequence[SourceMessage], dialect: str) -> str:
    """The compact list under an answer: number, author, date, the first words (linked)."""
    lines = []
    for number, s in enumerate(cited, start=1):
        words = " ".join(s.text.split())
        first = words[:60] + ("…" if len(words) > 60 else "")
        said = f"{s.author}, {s.at:%-d %b}"
        if dialect == "markdown" and s.link:
            lines.append(f"{number}. [{said}]({s.link}): “{first}”")
        else:
            lines.append(f"{number}. {said}: “{first}”")
    heading = "**Sources**" if dialect == "markdown" else "Sources:"
    return heading + "\n" + "\n".join(lines)


def cites_enough(text: str) -> bool:
    """Most sentences of a grounded answer cite a message (the rest may be a connecting
    clause); an answer citing nothing is not grounded."""
    sentences = [s for s in _SENTENCE.findall(text) if len(s.strip()) > 3]
    citing = sum(1 for s in sentences if "[m" in s or "[M" in s)
    return citing > 0 and citing * 2 >= len(sentences)


class Grounding:
    """The engine's part in asking the history (held by bot.engine.ConversationEngine)."""

    def __init__(
        self,
        search: ChannelSearch,
        model: ChatModel,
        config: EngineConfig,
        counted_to: CountedTo,
    ) -> None:
        self.search = search
        self.model = model
        self.config = config
        self.counted_to = counted_to

    def prefetch(self, message: IncomingMessage) -> ChangesRead | None:
        """The log read grounding `message`'s answer needs, to ride in the thread lock's round
        trip (None: nothing to read, or a whole read comes first)."""
        if not self.config.grounded or not message.text.strip():
            return None
        return self.search.prefetch(grounded_in(message.thread))

    async def context_for(
        self, message: IncomingMessage, history: Sequence[Turn], ready: LogChanges | None = None
    ) -> list[SourceMessage]:
        """The messages relevant to `message` in the channel its conversation is in (its threads
        included), never the conversation itself (`history`): none when the retrieval gate finds
        nothing relevant, when grounding is off, or when the search fails (the answer goes on
        without). `ready`: the log's changes, read already (`prefetch`)."""
        if not self.config.grounded or not message.text.strip():
            return []
        thread = message.thread
        own = {t.message_id for t in history if t.message_id}
        own |= {message.message_id or "", thread.thread}
        channel = grounded_in(thread)
        try:
            found = await self.search.retrieve(
                message.text, [channel], limit=CONTEXT_SOURCES, exclude=own,
                ready={channel: ready} if ready is not None else None,
            )  # fmt: skip
        except StoreUnavailable as exc:
            log.warning("answering without the channel's history: %s", exc)
            return []
        return [source_of(hit) for hit in found.hits] if found.found else []

    async def ask(
        self,
        question: str,
        *,
        channels: Collection[str],
        where: str,
        dialect: str = "markdown",
        payer: Payer | None = None,
    ) -> GroundedAnswer:
        if not question.strip():
            raise InvalidRequest("Ask a question after /ask, for example: /ask who owns billing?")
        found = await self.search.retrieve(question, channels, thorough=True)
        sources = [source_of(hit) for hit in found.hits]
        searched = self.search.searched(channels)
        if not found.found:
            return GroundedAnswer(not_found(where, searched, sources, dialect), False)
        async with self.counted_to(payer):
            reply = await complete(
                self.model, prompt(question, sources), max_tokens=self.config.max_answer_tokens
            )
        if NOT_FOUND in reply.upper()[: len(NOT_FOUND) + 10] or not cites_enough(reply):
            return GroundedAnswer(not_found(where, searched, sources, dialect), False)
        text, cited = resolve(reply.strip(), labelled(sources), dialect=dialect)
        if not cited:  # every id it cited was made up
            return GroundedAnswer(not_found(where, searched, sources, dialect), False)
        if dialect == "markdown":
            text += "\n\n" + sources_list(cited, dialect)
        return GroundedAnswer(text, True, tuple(cited))
