"""The door of `/slack/events`: only signed, well-formed requests reach slack_bolt.

Anyone who can reach the URL can send anything. A request without a valid signature, or whose
body is not UTF-8 JSON (or a form with a JSON `payload`), is refused with a 4xx and at most one
short log line (adapters.quiet_log: repeated refusals are counted, not logged one by one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise Refused(400, "the body is not valid JSON") from exc


# Top-level fields slack_bolt reads before any listener runs, and the type each must have.
_STRING_FIELDS = ("type", "team_id", "api_app_id", "event_id", "token", "enterprise_id")


def shape_problem(body: object) -> str | None:
    """Why a signed JSON body is not shaped like anything Slack sends, or None. Such a body is
    acknowledged (it was signed) but handed to nobody."""
    if not isinstance(body, dict):
        return "not a JSON object"
    for name in _STRING_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} is not a string"
    event = body.get("event")
    if event is not None and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return "event is not an object with a type"
    return None


def screen(raw: bytes, headers: Mapping[str, str], verifier: SignatureVerifier) -> str:
    """The body as text when the request is signed and well-formed; else raise Refused."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp.isdigit() or not signature:
        raise Refused(401, "no valid signature headers")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    if not verifier.is_valid(text, timestamp, signature):
        raise Refused(401, "the signature does not match")
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        payload = parse_qs(text).get("payload")
        if payload is not None and not isinstance(_parse_json(payload[0]), dict):
            raise Refused(400, "the form's payload is not a JSON object")
        return text
    parsed = _parse_json(text)
    if not isinstance(parsed, dict):
        raise Refused(400, "the body is not a JSON object")
    problem = shape_problem(parsed)
    if problem is not None:
        raise Refused(200, f"a signed body of the wrong shape ({problem})")
    return text
