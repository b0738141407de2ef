"""The search index's contract, its terms in four languages, and the retrieval gate."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot.search.index
from bot.search.index import IndexedMessage, SearchIndex, TantivyIndex
from bot.search.retrieval import retrieve
from bot.search.terms import terms

C1, C2 = "slack:T1:C1", "slack:T1:C2"


def message(n: int, text: str, channel: str = C1, **extra: object) -> IndexedMessage:
    return IndexedMessage(f"1700000000.{n:06d}", channel, text, "Mina", 1_700_000_000.0 + n,
                          **extra)  # type: ignore[arg-type]  # fmt: skip


def index_of(*messages: IndexedMessage) -> SearchIndex:
    index = TantivyIndex()
    index.add(messages)
    return index


def ids(index: SearchIndex, query: str, channels: set[str] | None = None, **kw: object) -> list:
    return [h.message.id for h in index.search(query, channels=channels or {C1}, **kw)]  # type: ignore[arg-type]


def test_the_best_match_comes_first_and_only_in_the_channels_asked() -> None:
    index = index_of(
        message(1, "We decided the retry policy: three retries with backoff."),
        message(2, "Lunch at noon?"),
        message(3, "The retry policy for the importer is still open", channel=C2),
    )
    assert ids(index, "what did we decide about the retry policy?") == [message(1, "").id]
    assert ids(index, "retry policy", {C1, C2})[0] in {message(1, "").id, message(3, "").id}
    assert len(ids(index, "retry policy", {C1, C2})) == 2
    assert ids(index, "retry policy", {"slack:T1:C9"}) == []  # a channel not asked: nothing


def test_an_edit_is_found_by_its_new_text_and_a_deletion_not_at_all() -> None:
    index = index_of(message(1, "the staging database belongs to Bob"))
    index.add([message(1, "the staging database belongs to Priya")])  # edited
    assert len(index) == 1
    [hit] = index.search("who owns staging database Priya", channels={C1})
    assert "Priya" in hit.message.text
    assert ids(index, "Bob") == []
    index.remove(C1, [message(1, "").id])
    assert ids(index, "staging database") == [] and len(index) == 0


def test_the_bots_own_answers_and_the_asking_thread_are_never_sources() -> None:
    asking = message(5, "where is the deploy checklist?", thread="1700000000.000005")
    index = index_of(
        message(1, "the deploy checklist is in the wiki under Ops"),
        message(2, "The deploy checklist is in the wiki", by_bot=True),
        asking,
        message(6, "deploy checklist, anyone?", thread="1700000000.000005"),
    )
    found = ids(index, "deploy checklist wiki", exclude_thread=(C1, "1700000000.000005"))
    assert found == [message(1, "").id]


def test_korean_japanese_and_chinese_are_found_without_spaces() -> None:
    index = index_of(
        message(1, "스테이징 데이터베이스는 민수가 관리합니다"),
        message(2, "ステージングのデータベースは田中さんが管理しています"),
        message(3, "暂存数据库由王伟负责"),
        message(4, "The staging database is Bob's"),
    )
    assert ids(index, "데이터베이스 누가 관리해요?")[0] == message(1, "").id
    assert ids(index, "データベースの管理は誰?")[0] == message(2, "").id
    assert ids(index, "数据库谁负责")[0] == message(3, "").id
    assert ids(index, "who has the staging databases?")[0] == message(4, "").id


@given(st.text(max_size=200))
def test_terms_are_never_empty_and_the_same_for_the_same_text(text: str) -> None:
    found = terms(text)
    assert all(t and not t.isspace() and " " not in t for t in found)
    assert found == terms(text)


def test_the_gate_says_not_found_when_nothing_shares_the_question() -> None:
    index = index_of(message(1, "lunch at noon?"), message(2, "the build is green again"))
    assert not retrieve(index, "who owns the billing service?", channels={C1}).found
    index.add([message(3, "Priya owns the billing service since March")])
    answer = retrieve(index, "who owns the billing service?", channels={C1})
    assert answer.found and answer.hits[0].message.id == message(3, "").id


@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["billing", "deploy", "lunch"])),
             min_size=1, max_size=30),
    st.sets(st.integers(0, 5)),
    st.sampled_from(["billing service", "deploy", "who owns billing?"]),
)  # fmt: skip
def test_no_hit_ever_comes_from_a_channel_the_asker_cannot_read(
    said: list[tuple[int, str]], readable: set[int], query: str
) -> None:
    index = index_of(*(message(n, f"{word} talk {n}", channel=f"slack:T1:C{c}")
                       for n, (c, word) in enumerate(said)))  # fmt: skip
    allowed = {f"slack:T1:C{c}" for c in readable}
    hits = index.search(query, channels=allowed, limit=50)
    assert all(hit.message.channel in allowed for hit in hits)
    expected = {(f"slack:T1:C{c}", w) for c, w in said if c in readable and w in query}
    assert bool(hits) == bool(expected)  # and what is readable and matching is found


def test_a_search_commits_only_what_it_could_see() -> None:
    index = TantivyIndex()
    index.add([message(1, "the deploy checklist is in the wiki")])
    assert ids(index, "deploy checklist") == [message(1, "").id] and index.commits == 1
    question = message(2, "where is the deploy checklist?")
    index.add([question, message(3, "deploy checklist moved", channel=C2)])
    # the question itself (left out) and a message in a channel not searched: no commit
    assert ids(index, "deploy checklist", exclude=[question.id]) == [message(1, "").id]
    assert index.commits == 1
    both = ids(index, "deploy checklist", {C1, C2}, exclude=[question.id])
    assert sorted(both) == [message(1, "").id, message(3, "").id] and index.commits == 2


def test_a_channel_holding_only_the_asking_thread_is_not_searched_at_all() -> None:
    asking = message(1, "where is the deploy checklist?")
    index = index_of(asking, message(2, "the deploy checklist is here", by_bot=True))
    assert ids(index, "deploy checklist", exclude=[asking.id]) == [] and index.commits == 0


class CommittingAlways(TantivyIndex):
    """The reference: every change committed at once."""

    def add(self, messages: Iterable[IndexedMessage]) -> None:
        super().add(messages)
        self._fresh({C1, C2}, ())

    def remove(self, channel: str, ids: Iterable[str]) -> None:
        super().remove(channel, ids)
        self._writer.commit()
        self._index.reload()


@given(
    st.lists(
        st.tuples(st.sampled_from(["say", "remove", "search"]), st.integers(0, 7),
                  st.sampled_from(["billing", "deploy", "lunch"]), st.sampled_from([C1, C2])),
        max_size=25,
    ),
    st.sets(st.integers(0, 7), max_size=3),
)  # fmt: skip
def test_searches_find_what_committing_every_change_would(
    steps: list[tuple[str, int, str, str]], left_out: set[int]
) -> None:
    lazy, eager = TantivyIndex(), CommittingAlways()
    exclude = {message(n, "").id for n in left_out}
    for step, n, word, channel in steps:
        for index in (lazy, eager):
            if step == "say":  # a new message, or an edit of one said before
                index.add([message(n, f"{word} talk", channel=channel)])
            elif step == "remove":
                index.remove(channel, [message(n, "").id])
        for query, channels in ((word, {channel}), ("talk", {C1, C2})):
            found = ids(lazy, query, channels, exclude=exclude, limit=20)
            assert sorted(found) == sorted(ids(eager, query, channels, exclude=exclude, limit=20))
            assert not exclude & set(found)


def test_few_and_many_channels_filter_and_score_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    channels = [f"slack:T1:C{n}" for n in range(40)]
    index = index_of(*(
        message(n, f"retry policy {'backoff ' * (n % 3)}note {n}", channel=channels[n % 40])
        for n in range(200)
    ))  # fmt: skip

    def hits(asked: list[str]) -> list[tuple[str, str, float]]:
        found = index.search("retry backoff policy", channels=set(asked), limit=30)
        return [(h.message.channel, h.message.id, round(h.score, 5)) for h in found]

    for asked in (channels[:3], channels):  # one term query a channel; a term set
        few, many = hits(asked), []
        monkeypatch.setattr(bot.search.index, "FEW_CHANNELS", 0 if len(asked) <= 32 else 100)
        many = hits(asked)
        monkeypatch.undo()
        assert few == many
        assert len(few) == min(30, 5 * len(asked))  # five messages a channel, all matching
        assert {channel for channel, _, _ in few} <= set(asked)
