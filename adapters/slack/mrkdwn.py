"""Markdown (what models write) to Slack mrkdwn, with every ping neutralised.

Slack shows `**bold**`, `[text](url)` and `# Heading` literally, and treats `<!channel>`,
`<!here>`, `<!everyone>` and `<@U…>` as notifications. Escaping `&`, `<` and `>` everywhere first
makes anything the model wrote inert; links are then rebuilt by us, from Markdown links only.
"""

from __future__ import annotations

import re
import unicodedata

from adapters.rendering import Block, blocks

ZERO_WIDTH = "\u200b"

_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_QUOTE = re.compile(r"^&gt;(\s?)", re.MULTILINE)
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
BOLD_MARK = "\x00"
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CELL_MARKS = re.compile(r"\*\*|__|`")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutralise_pings(text: str) -> str:
    """`@channel` and friends, as plain words, would still notify with link_names on."""
    return _BROADCAST.sub(lambda m: "@" + ZERO_WIDTH + m.group(1), text)


def _link(text: str, url: str) -> str:
    url = url.replace("&amp;", "&")
    if not _SAFE_URL.match(url):
        return text
    # The label is already escaped; a | would end it early.
    return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{text.replace('|', '¦')}>"


def _plain_heading(text: str) -> str:
    return text.replace("**", "").replace("__", "").strip("*_ ")


def _prose(text: str) -> str:
    text = escape(text)
    text = _QUOTE.sub(lambda m: ">" + m.group(1), text)
    text = _RULE.sub("———", text)
    text = _HEADING.sub(lambda m: f"{BOLD_MARK}{_plain_heading(m.group(1))}{BOLD_MARK}", text)
    text = _IMAGE.sub(lambda m: _link(m.group(1) or "image", m.group(2)), text)
    text = _LINK.sub(lambda m: _link(m.group(1), m.group(2)), text)
    text = _BOLD.sub(lambda m: f"{BOLD_MARK}{m.group(2)}{BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    return neutralise_pings(text.replace(BOLD_MARK, "*"))


def _code(block: Block) -> str:
    """A fenced block as Slack shows code: ``` on lines of their own, no language tag (Slack does
    not highlight), and any ``` inside broken up so it cannot end the block early."""
    body = escape(block.text.strip("\n")).replace("```", "``" + ZERO_WIDTH + "`")
    return f"```\n{body}\n```" if body.strip() else ""


def _inline(text: str) -> str:
    parts = _INLINE_CODE.split(text)
    return "".join(escape(p) if i % 2 else _prose(p) for i, p in enumerate(parts))


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [_CELL_MARKS.sub("", c.strip()).replace("\\|", "|") for c in _CELL_SPLIT.split(inner)]


def _width(text: str) -> int:
    """Columns a monospace font gives `text`: wide CJK two, combining marks none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _table(rows: list[list[str]]) -> str:
    """A Markdown table as Slack can show one: aligned columns in a code block (mrkdwn has no
    tables, and `| a | b |` lines read as noise)."""
    columns = max(len(r) for r in rows)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    widths = [max(_width(r[c]) for r in rows) for c in range(columns)]

    def line(row: list[str]) -> str:
        return " | ".join(
            cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)
        )

    lines = [line(rows[0]).rstrip(), "-+-".join("-" * w for w in widths)]
    lines += [line(r).rstrip() for r in rows[1:]]
    body = escape("\n".join(lines)).replace("```", "``" + ZERO_WIDTH + "`")
    return f"```\n{body}\n```"


def _prose_and_tables(text: str) -> str:
    """Prose as mrkdwn, with each Markdown table (a header row, a rule, rows) made a block."""
    lines = text.split("\n")
    out: list[str] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        if "|" in lines[i] and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            if prose:
                out.append(_inline("\n".join(prose)))
                prose = []
            out.append(_table([_cells(row) for row in [lines[i], *lines[i + 2 : end]]]))
            i = end
        else:
            prose.append(lines[i])
            i += 1
    if prose or not out:
        out.append(_inline("\n".join(prose)))
    return "\n".join(out)


def to_mrkdwn(markdown: str) -> str:
    """Convert model Markdown to Slack mrkdwn; code is kept as written (escaped only), tables
    become aligned blocks."""
    return "\n".join(
        _code(b) if b.fence is not None else _prose_and_tables(b.text)
        for b in blocks(markdown.replace(BOLD_MARK, ""))
    )
