"""The words a message is indexed and searched by. Pure.

Latin, Cyrillic and other spaced scripts split into lowercased words (accents kept, an English
plural's "s" folded). Chinese, Japanese and Korean have no spaces between words: their runs become
overlapping character pairs (bigrams), the usual choice for CJK search without a dictionary; a
run of one character is kept as it is. The same function analyses messages and questions, so
both sides always agree.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = (
    r"\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
_WORD = rf"[^\W_{_CJK}]+"
_TOKEN = re.compile(rf"([{_CJK}]+)|({_WORD}(?:['’]{_WORD})*)", re.UNICODE)
_STOP = frozenset(
    """a an and are as at be but by can do does did for from has have how i if in is it its me my
    of on or our so that the their there this to was we were what when where which who why will
    with you your""".split()  # noqa: SIM905 (a list of 60 one-word strings reads worse)
)


def _word(token: str) -> str:
    word = unicodedata.normalize("NFKC", token).lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """The search terms of `text`, in order (repeats kept: they weigh in BM25)."""
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        cjk, word = match.group(1), match.group(2)
        if cjk:
            run = unicodedata.normalize("NFKC", cjk)
            found += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
        elif word:
            folded = _word(word)
            if keep_stopwords or folded not in _STOP:
                found.append(folded)
    return found
