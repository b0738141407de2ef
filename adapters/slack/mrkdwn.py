"""Markdown (what models write) to Slack mrkdwn, with every ping neutralised.

Slack shows `**bold**`, `[text](url)` and `# Heading` literally, and treats `<!channel>`,
`<!here>`, `<!everyone>` and `<@U…>` as notifications. Escaping `&`, `<` and `>` everywhere first
makes anything the model wrote inert; links are then rebuilt by us, from Markdown links only.
"""

from __future__ import annotations

import re

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


def to_mrkdwn(markdown: str) -> str:
    """Convert model Markdown to Slack mrkdwn; code is kept as written (escaped only)."""
    return "\n".join(
        _code(b) if b.fence is not None else _inline(b.text)
        for b in blocks(markdown.replace(BOLD_MARK, ""))
    )
