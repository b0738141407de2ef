"""Reading server-sent events however the bytes are split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.sse import DataLines

payload = st.text(  # what a server can send: UTF-8, so no lone surrogates
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)


@given(st.lists(payload, max_size=20), st.lists(st.integers(0, 2000), max_size=30), st.booleans())
def test_payloads_survive_any_split(payloads: list[str], cuts: list[int], crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    stream = "".join(f"data: {p}{end}{end}" for p in payloads).encode()
    stream = b": keep-alive comment\n" + stream
    points = sorted({min(c, len(stream)) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    reader = DataLines()
    found = [d for piece in pieces for d in reader.feed(piece)] + reader.close()
    assert found == [p.encode().strip() for p in payloads]


def test_a_last_line_without_newline_is_not_lost() -> None:
    reader = DataLines()
    assert reader.feed(b'data: {"a": 1}\n\ndata: [DONE]') == [b'{"a": 1}']
    assert reader.close() == [b"[DONE]"]
