"""A local fake of the Slack Web API that records every call; slack_sdk talks to it over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

STREAM_LIMIT = 12_000  # markdown_text a streamed message holds, as Slack documents
BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T1"


# Everything the manifests ask for: a freshly installed app's token.
GRANTED = [
    "app_mentions:read", "assistant:write", "channels:history", "channels:read", "chat:write",
    "commands", "files:read", "groups:history", "groups:read", "im:history", "im:read",
    "mpim:history", "mpim:read", "users:read",
]  # fmt: skip


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_times: list[float] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.ack_times: list[float] = []  # time.time() each ack came, for benchmarks
        self.acks: list[dict[str, Any]] = []  # wall-clock time of each call, for benchmarks
        self.responses: list[dict[str, Any]] = []  # bodies posted to response_url
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)  # channel -> messages
        self.users: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, deque[tuple[int, dict[str, Any], dict[str, str]]]] = defaultdict(
            deque
        )
        self.token_ok = True
        self.revoked: set[str] = set()  # tokens Slack answers token_revoked for
        self.scopes: set[str] = set(GRANTED)  # what the bot token was granted (x-oauth-scopes)
        # method -> the answer every call gets, until removed (e.g. chat.update always 429)
        self.refusing: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {}
        self.hanging: dict[str, int] = {}  # method -> how many of its next calls never answer
        self.held: dict[str, asyncio.Event] = {}  # method -> its calls answer once this is set
        # method -> (calls, per seconds) per workspace, as Slack's tiers; past it: 429 Retry-After
        self.tiers: dict[str, tuple[int, float]] = {}
        self.rate_limited: dict[str, int] = defaultdict(int)  # 429s answered, by method
        self._tier_calls: dict[str, deque[float]] = defaultdict(deque)
        self.streams: dict[str, dict[str, Any]] = {}  # ts -> stream state (native streaming)
        self.assistant_calls: list[tuple[str, dict[str, Any]]] = []
        # channel -> conversations.info "channel" object; members: channel -> user ids
        self.channel_info: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}
        # file id -> (name, bytes, mimetype), served at url_private with the bot token only
        self.files: dict[str, tuple[str, bytes, str]] = {}
        self.file_token = "xoxb-test"
        self.hidden_files: set[str] = set()  # files.info refuses these (another org's choice)
        self.files_scope = True  # False: like a token without files:read (a sign-in page)
        self.file_requests: list[tuple[str, str]] = []  # (path, Authorization header) of each
        self._clock = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- set-up helpers ---------------------------------------------------------------------

    def add_user(self, user_id: str, display_name: str) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": display_name.lower(),
            "real_name": display_name,
            "profile": {"display_name": display_name, "real_name": display_name},
        }

    def add_message(
        self,
        channel: str,
        ts: str,
        text: str,
        user: str,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        message = {"type": "message", "ts": ts, "text": text, "user": user, **extra}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages[channel].append(message)
        return message

    def add_file(
        self, name: str, data: bytes, mimetype: str = "", *, size: int | None = None
    ) -> dict[str, Any]:
        """A file as Slack describes it in a message's `files`; its URLs point at this server."""
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = (name, data, mimetype)
        return self._described(file_id, size)

    def _described(self, file_id: str, size: int | None = None) -> dict[str, Any]:
        name, data, mimetype = self.files[file_id]
        base = self.url.removesuffix("/api/")
        return {
            "id": file_id, "name": name, "title": name, "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1], "size": len(data) if size is None else size,
            "mode": "hosted", "url_private": f"{base}/files-pri/{TEAM}-{file_id}/{name}",
            "url_private_download": f"{base}/files-pri/{TEAM}-{file_id}/download/{name}",
        }  # fmt: skip

    def redirected_file(self, file: dict[str, Any], host: str) -> dict[str, Any]:
        """The same file behind a redirect to `host` (another name for this server)."""
        port = self.url.split(":")[2].split("/")[0]
        target = f"http://{host}:{port}/files-pri/{TEAM}-{file['id']}/{file['name']}"
        base = self.url.removesuffix("/api/")
        hop = f"{base}/redirect?to={target}"
        return {**file, "url_private": hop, "url_private_download": hop}

    async def _file(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.file_requests.append((request.path, auth))
        file_id = request.match_info["key"].split("-", 1)[-1]
        if auth != f"Bearer {self.file_token}" or not self.files_scope:
            # Slack answers an unauthorised file request with its sign-in page, status 200.
            return web.Response(text="<html><body>Sign in to Slack</body></html>",
                                content_type="text/html")  # fmt: skip
        if file_id not in self.files:
            return web.Response(status=404, text="file not found")
        _, data, mimetype = self.files[file_id]
        return web.Response(body=data, content_type=mimetype or "application/octet-stream")

    async def _redirect(self, request: web.Request) -> web.Response:
        self.file_requests.append((request.path, request.headers.get("Authorization", "")))
        raise web.HTTPFound(request.query["to"])

    def fail(
        self,
        method: str,
        status: int = 200,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next call of `method` gets this answer instead (e.g. 429, or ok: false)."""
        self.failures[method].append(
            (status, body or {"ok": False, "error": "ratelimited"}, headers or {})
        )

    # --- what tests look at --------------------------------------------------------------------

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[channel] if m.get("user") == BOT_USER]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), seconds)

    # --- server ------------------------------------------------------------------------------

    async def start(self) -> str:
        self._stopping = asyncio.Event()  # hung calls end with the server, not 60 s after it
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_get("/_calls", self._calls)
        app.router.add_get("/_state", self._state)
        app.router.add_post("/_push", self._push)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files-pri/{key}/{name}", self._file)
        app.router.add_get("/files-pri/{key}/download/{name}", self._file)
        app.router.add_get("/redirect", self._redirect)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/"
        return self.url

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: hello, then envelopes pushed by tests; acks are recorded."""
        socket = web.WebSocketResponse()  # answers the SDK's pings by itself
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {}})
        async with self._changed:
            self.sockets.append(socket)
            self._changed.notify_all()
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                async with self._changed:
                    self.acks.append(json.loads(frame.data))
                    self.ack_times.append(time.time())
                    self._changed.notify_all()
        self.sockets.remove(socket)
        return socket

    async def push(self, body: dict[str, Any], envelope_id: str, retry_attempt: int = 0) -> None:
        """Deliver an Events API body over Socket Mode, as Slack wraps it."""
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "payload": body,
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self.sockets[-1].send_json(envelope)

    @property
    def response_url(self) -> str:
        return self.url.replace("/api/", "/respond/hook")

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, method: str, params: dict[str, Any]) -> None:
        async with self._changed:
            self.calls.append((method, params))
            self.call_times.append(time.time())
            self._changed.notify_all()

    async def _calls(self, _: web.Request) -> web.Response:
        calls = [
            {"method": m, "params": p, "at": t}
            for (m, p), t in zip(self.calls, self.call_times, strict=True)
        ]
        return web.json_response(calls)

    async def _push(self, request: web.Request) -> web.Response:
        """Benchmarks in another process: push envelopes over Socket Mode ({"envelopes":
        [[body, envelope_id, retry_attempt], ...]}); answers when each was sent, and later
        (GET /_state) when each was acked."""
        await self.wait_for(lambda: bool(self.sockets))
        sent = []
        for body, envelope_id, retry in (await request.json())["envelopes"]:
            await self.push(body, envelope_id, retry)
            sent.append(time.time())
        return web.json_response({"sent": sent})

    async def _state(self, _: web.Request) -> web.Response:
        """What the bot left in each channel, and the 429s it was given (for benchmarks)."""
        shown = {c: [m["text"] for m in self.bot_messages(c)] for c in list(self.messages)}
        streaming = sorted({s["channel"] for s in self.streams.values() if s["open"]})
        acked = {
            str(a.get("envelope_id")): t for a, t in zip(self.acks, self.ack_times, strict=True)
        }
        return web.json_response({"messages": shown, "rate_limited": dict(self.rate_limited),
                                  "streaming": streaming, "acked": acked})  # fmt: skip

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._changed:
            self.responses.append(body)
            self._changed.notify_all()
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(dict(parse_qsl(raw.decode())))
        await self._record(method, params)
        if method in self.held:
            await self.held[method].wait()
        if self.hanging.get(method):  # never answered: a Slack call cut off by a crash
            self.hanging[method] -= 1
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        if self.failures[method]:
            status, body, headers = self.failures[method].popleft()
            return web.json_response(body, status=status, headers=headers)
        if method in self.refusing:
            status, body, headers = self.refusing[method]
            return web.json_response(body, status=status, headers=headers)
        limited = self._over_tier(method)
        if limited is not None:
            return limited
        if not self.token_ok:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.revoked:
            return web.json_response({"ok": False, "error": "token_revoked"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        # Slack names the token's scopes in a header on every Web API answer.
        scopes = {"x-oauth-scopes": ",".join(sorted(self.scopes))}
        return web.json_response(handler(params), headers=scopes)

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "user_id": BOT_USER,
            "url": "https://team.slack.com/",
            "bot_id": BOT_ID,
            "team_id": TEAM,
            "user": "assistant",
            "team": "Team",
        }

    def _apps_connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.url.replace("http://", "ws://").replace("/api/", "/socket")}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(params.get("user", ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"1800000000.{next(self._clock):06d}"
        message = self.add_message(
            params["channel"],
            ts,
            params.get("text", ""),
            BOT_USER,
            params.get("thread_ts"),
            bot_id=BOT_ID,
        )
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages[params["channel"]]:
            if message["ts"] == params["ts"]:
                message["text"] = params.get("text", "")
                return {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _over_tier(self, method: str) -> web.Response | None:
        if method not in self.tiers:
            return None
        calls, period = self.tiers[method]
        now = time.monotonic()
        recent = self._tier_calls[method]
        while recent and recent[0] <= now - period:
            recent.popleft()
        if len(recent) >= calls:
            self.rate_limited[method] += 1
            wait = max(1, int(recent[0] + period - now + 0.999))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(wait)})  # fmt: skip
        recent.append(now)
        return None

    # --- native streaming (chat.startStream / appendStream / stopStream) ------------------------

    @staticmethod
    def _stream_text(params: dict[str, Any]) -> str:
        """Text sent as markdown_text or as markdown_text chunks (slack_sdk's chat_stream)."""
        chunks = params.get("chunks") or []
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        parts = [c.get("text", "") for c in chunks if c.get("type") == "markdown_text"]
        return (params.get("markdown_text") or "") + "".join(parts)

    def _chat_startStream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params["channel"]
        if not channel.startswith("D") and not (
            params.get("recipient_user_id") and params.get("recipient_team_id")
        ):
            return {"ok": False, "error": "invalid_arguments"}  # required outside DMs
        if len(self._stream_text(params)) > STREAM_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        ts = f"1800000000.{next(self._clock):06d}"
        message = self.add_message(channel, ts, self._stream_text(params), BOT_USER,
                                   params.get("thread_ts"), bot_id=BOT_ID, streaming=True)  # fmt: skip
        self.streams[ts] = {"channel": channel, "message": message, "appends": 0, "open": True}
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_appendStream(self, params: dict[str, Any]) -> dict[str, Any]:
        stream = self.streams.get(params.get("ts", ""))
        if stream is None or not stream["open"]:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if len(stream["message"]["text"]) + len(self._stream_text(params)) > STREAM_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        stream["message"]["text"] += self._stream_text(params)
        stream["appends"] += 1
        return {"ok": True, "channel": stream["channel"], "ts": params["ts"]}

    def _chat_stopStream(self, params: dict[str, Any]) -> dict[str, Any]:
        stream = self.streams.get(params.get("ts", ""))
        if stream is None or not stream["open"]:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if len(stream["message"]["text"]) + len(self._stream_text(params)) > STREAM_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        stream["message"]["text"] += self._stream_text(params)
        stream["message"].pop("streaming", None)
        if params.get("blocks"):
            blocks = params["blocks"]
            stream["message"]["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
        stream["open"] = False
        return {"ok": True, "channel": stream["channel"], "ts": params["ts"]}

    # --- the assistant pane and what it reads --------------------------------------------------

    def _assistant(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        self.assistant_calls.append((name, params))
        return {"ok": True}

    def _assistant_threads_setStatus(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._assistant("setStatus", params)

    def _assistant_threads_setTitle(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._assistant("setTitle", params)

    def _assistant_threads_setSuggestedPrompts(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._assistant("setSuggestedPrompts", params)

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file", "")
        if file_id not in self.files or file_id in self.hidden_files:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._described(file_id)}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.channel_info.get(params.get("channel", ""))
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": info}

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        members = self.members.get(params.get("channel", ""))
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        messages = self.messages[params["channel"]]
        for message in messages:
            if message["ts"] == params["ts"]:
                messages.remove(message)
                return {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = items[start : start + limit]
        more = start + limit < len(items)
        cursor = str(start + limit) if more else ""
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        root = params["ts"]
        items = [
            m
            for m in self.messages[params["channel"]]
            if m["ts"] == root or m.get("thread_ts") == root
        ]
        return self._page(sorted(items, key=lambda m: float(m["ts"])), params)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        oldest = float(params.get("oldest") or 0)
        items = [
            m for m in self.messages[params["channel"]]
            if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) > oldest
        ]  # fmt: skip
        return self._page(sorted(items, key=lambda m: -float(m["ts"])), params)


# Slack's per-workspace tiers, as `--tiers` enforces them
TIERS = {"chat.update": (50, 60.0), "chat.delete": (50, 60.0), "chat.startStream": (20, 60.0),
         "chat.stopStream": (20, 60.0), "chat.appendStream": (100, 60.0)}  # fmt: skip


async def _serve_forever(tiers: bool = False) -> None:
    slack = FakeSlack()
    if tiers:
        slack.tiers = dict(TIERS)
    for user, name in (("UALICE", "Alice"), ("UBOB", "Bob")):
        slack.add_user(user, name)
    print(await slack.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # a stand-alone fake for benchmarks and manual runs
    import sys

    asyncio.run(_serve_forever(tiers="--tiers" in sys.argv))
