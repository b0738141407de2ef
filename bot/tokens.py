"""Counting tokens offline.

tiktoken needs encoding files that it normally downloads; many networks (and this project's CI)
cannot reach them. So the exact count is used only when the encoding is already in tiktoken's
local cache, and otherwise an estimate built to err on the high side: budgets are limits, and
over-counting only wastes a little context while under-counting overflows it. Korean, Japanese
and Chinese take far more tokens per character than English, and the estimate says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Protocol
from unittest import mock

log = logging.getLogger(__name__)

# Chat formats spend a few tokens per message on role markers, and a few to prime the reply.
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3


class TokenCounter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


_LONG = re.compile(r"[A-Za-z]+|[0-9]+|\s*\n\s*|[ \t]{2,}")
_CJK = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    r"\uf900-\ufaff\uff00-\uffef]"
)
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


class EstimatingCounter:
    """A tokenizer-free estimate that over-counts real BPE encodings on ordinary text.

    English words: a token per 3 letters (real encodings average about 4 with the space); digits
    in groups of 3, as cl100k and o200k split them; a Hangul syllable, kana or CJK ideograph: 2
    tokens (their UTF-8 form is 3 bytes and common ones are 1 token); emoji and other astral
    characters: 3; anything else: 1 per character.
    """

    name = "estimate"

    def count(self, text: str) -> int:
        # The pieces of more than one character, found in C; every other character is a CJK
        # one, an astral one, a lone space or tab (free: it merges with the word after it), or
        # one of its own: the sum the class describes, without a Python step per character.
        total = covered = blanks = 0
        for piece in _LONG.findall(text):
            covered += len(piece)
            first = piece[0]
            if first.isascii() and first.isalnum():  # a word or a run of digits
                total += (len(piece) + 2) // 3
            elif "\n" in piece:
                total += 1
                blanks += piece.count(" ") + piece.count("\t")
            else:  # two or more spaces or tabs
                total += (len(piece) + 3) // 4
                blanks += len(piece)
        cjk = len(_CJK.findall(text))
        astral = len(_ASTRAL.findall(text))
        lone = text.count(" ") + text.count("\t") - blanks
        return total + 2 * cjk + 3 * astral + (len(text) - covered - cjk - astral - lone)


class TiktokenCounter:
    name = "tiktoken"

    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding
        self.name = f"tiktoken:{encoding.name}"

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))


def _refuse_download(blobpath: str) -> bytes:
    raise FileNotFoundError(f"{blobpath} is not in the local tiktoken cache")


def load_counter(encoding_name: str = "o200k_base") -> TokenCounter:
    """tiktoken when its encoding is already cached on disk; the estimate otherwise.

    tiktoken's loader only reads the network when its cache misses, through `read_file`; that one
    function is replaced for the duration of the load, so nothing is ever downloaded.
    """
    try:
        import tiktoken
        import tiktoken.load
    except ImportError:
        return EstimatingCounter()
    try:
        with mock.patch.object(tiktoken.load, "read_file", _refuse_download):
            encoding = tiktoken.get_encoding(encoding_name)
    except Exception as exc:  # a missing cache file, an unknown name, a corrupt file
        log.info("token counts are estimated (tiktoken %s unavailable: %s)", encoding_name, exc)
        return EstimatingCounter()
    return TiktokenCounter(encoding)


def count_prompt(counter: TokenCounter, texts: Iterable[str]) -> int:
    """Tokens of a chat prompt made of these message texts, with the format's overhead."""
    return sum(counter.count(t) + MESSAGE_OVERHEAD for t in texts) + REPLY_PRIMING
