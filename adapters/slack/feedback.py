"""👍 / 👎 under every finished answer (Block Kit feedback buttons), and what a click does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextActionsBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    SectionBlock,
)

from adapters.rendering import split_message
from bot.errors import BotError
from bot.feedback import FeedbackStore

log = logging.getLogger(__name__)

FEEDBACK_ACTION = "answer_feedback"
SECTION_LIMIT = 3000  # a section block's text
THANKS = "Thanks for the feedback."
ALREADY = "You already rated this answer."


def feedback_blocks() -> list[Block]:
    buttons = FeedbackButtonsElement(
        action_id=FEEDBACK_ACTION,
        positive_button=FeedbackButtonObject(
            text="👍", value="good", accessibility_label="This answer helped"
        ),
        negative_button=FeedbackButtonObject(
            text="👎", value="bad", accessibility_label="This answer did not help"
        ),
    )
    return [ContextActionsBlock(elements=[buttons])]


def answer_blocks(mrkdwn: str) -> list[Block]:
    """The last message of an answer as blocks: its text in sections, then the buttons."""
    sections: list[Block] = [SectionBlock(text={"type": "mrkdwn", "text": chunk})
                             for chunk in split_message(mrkdwn, SECTION_LIMIT)]  # fmt: skip
    return sections + feedback_blocks()


async def on_feedback(
    store: FeedbackStore, ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
    respond: Callable[..., Awaitable[Any]],
) -> None:  # fmt: skip
    """Record a click once per person per answer; tell them (only them) it was noted."""
    await ack()
    actions = body.get("actions") or [{}]
    value = str(actions[0].get("value", "")) if isinstance(actions[0], dict) else ""
    team = str((body.get("team") or {}).get("id", ""))
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    message = body.get("message") or body.get("container") or {}
    answer = str(message.get("ts") or message.get("message_ts") or "")
    thread = f"slack:{team}:{channel}:{message.get('thread_ts') or answer}"
    if value not in ("good", "bad") or not answer or not user:
        log.info("feedback click without an answer or a value: ignored")
        return
    try:
        new = await store.record(f"slack:{team}", answer, user, value, thread)
    except BotError as exc:
        log.warning("could not record feedback on %s: %s", answer, exc)
        return
    if new and value == "bad":
        log.info("👎 on answer %s in %s, for review", answer, thread)
    await respond(text=THANKS if new else ALREADY, response_type="ephemeral",
                  replace_original=False)  # fmt: skip
