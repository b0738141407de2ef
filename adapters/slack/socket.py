"""Socket Mode: a person's message is acked and taken before slack_bolt's dispatch, which cost
most of an ack's time (its middleware, listener matching and keyword injection, about 0.3 ms
an event): a burst of 400 envelopes queued that long behind each other.

Only what the bolt listener would hand to `SlackBot.take` unread goes this way: `app_mention`
and `message` events outside the assistant pane (the pane's claim decides its ack, and bolt's
assistant middleware routes it). Everything else (commands, actions, shortcuts, the pane, other
events) is dispatched by slack_bolt as before.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.payload_utils import (
    is_assistant_thread_context_changed_event,
    is_assistant_thread_started_event,
    is_other_message_sub_event_in_assistant_thread,
    is_user_message_event_in_assistant_thread,
)
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from adapters.slack.mentions import SlackBot


def taken_unread(payload: dict[str, Any]) -> bool:
    """Whether bolt would hand this Events API payload to `take` without reading it further:
    a message its assistant middleware does not route to the pane (bolt's own tests of it)."""
    event = payload.get("event")
    return (
        isinstance(event, dict)
        and event.get("type") in ("app_mention", "message")
        and not is_assistant_thread_started_event(payload)
        and not is_assistant_thread_context_changed_event(payload)
        and not is_user_message_event_in_assistant_thread(payload)
        and not is_other_message_sub_event_in_assistant_thread(payload)
    )


class SocketModeHandler(AsyncSocketModeHandler):
    def __init__(self, app: AsyncApp, app_token: str, bot: SlackBot) -> None:
        super().__init__(app, app_token)
        self.bot = bot

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]  # as bolt's own
        if (
            req.type == "events_api"
            and taken_unread(req.payload)
            and self.bot.take(req.payload, req.retry_attempt or 0)
        ):
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)
