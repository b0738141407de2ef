"""A local fake of Discord: the REST API and a gateway, enough for discord.py 2.7 to run.

The gateway speaks zlib-stream like Discord (HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats)
and tests push events through it; the REST side records every call, echoes the bot's own
messages back as MESSAGE_CREATE as Discord does, and can enforce per-channel rate limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
BOT_ID = 900000000000000001
APP_ID = 900000000000000002
GUILD = 800000000000000001
CHANNEL = 800000000000000010
PEOPLE = {"alice": 700000000000000001, "bob": 700000000000000002, "carol": 700000000000000003}
MESSAGE_CONTENT_INTENT = 1 << 15


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name.lower(), "discriminator": "0", "global_name": name,
            "avatar": None, "bot": bot, "public_flags": 0}  # fmt: skip


BOT_USER = user(BOT_ID, "Assistant", bot=True)
USERS = {uid: user(uid, name.capitalize()) for name, uid in PEOPLE.items()}


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py parses JSON only when Content-Type is exactly application/json
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers,
                        content_type="application/json")  # fmt: skip


EVERYONE = (1 << 50) - 1 - (1 << 3)  # @everyone may do anything but administer the server


class FakeDiscord:
    def __init__(self, *, rate_limit: tuple[int, float] | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, json body)
        self.call_times: list[float] = []  # time.time() of each call, for benchmarks
        self.messages: dict[int, list[dict[str, Any]]] = defaultdict(list)  # channel -> messages
        self.channels: dict[int, dict[str, Any]] = {
            CHANNEL: {"id": str(CHANNEL), "type": 0, "name": "general", "guild_id": str(GUILD),
                      "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
        }  # fmt: skip
        self.token_ok = True
        self.app_flags = 1 << 19  # GATEWAY_MESSAGE_CONTENT: the intent is on in the portal
        self.registered_commands: list[dict[str, Any]] = []  # what the last sync put
        self.attachments: dict[str, tuple[bytes, str]] = {}  # id -> (bytes, content type)
        self.attachment_requests: list[tuple[str, str]] = []  # (path, Authorization header)
        self.grant_message_content = True
        self.member_fetches = 0  # GET guilds/{id}/members/{user}: members not in the cache
        self.deny_threads = False
        self.rate_limit = rate_limit  # (requests, per seconds) per channel and kind
        self.rate_limited = 0  # 429s answered
        self._buckets: dict[str, deque[float]] = defaultdict(deque)
        self._sockets: list[tuple[web.WebSocketResponse, Any]] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.identified = asyncio.Event()
        self.identifies = 0  # IDENTIFYs received: a new session each
        self.identify_shards: list[list[int] | None] = []  # the "shard" of each IDENTIFY
        self.socket_shards: dict[int, list[int]] = {}  # id(socket) -> [shard id, shard count]
        self.recommended_shards = 1  # what /gateway/bot recommends
        self._echoes: set[asyncio.Task[None]] = set()
        self.url = ""

    # --- ids and payloads -----------------------------------------------------------------------

    def snowflake(self, when: datetime | None = None) -> int:
        ms = int((when or datetime.now(UTC)).timestamp() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._ids) & 0x3FFFFF)

    def message(self, channel_id: int, content: str, author: dict[str, Any], *, guild: bool = True,
                mentions: list[dict[str, Any]] | None = None, reply_to: dict[str, Any] | None = None,
                when: datetime | None = None,
                attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        message_id = self.snowflake(when)
        data: dict[str, Any] = {
            "id": str(message_id), "channel_id": str(channel_id), "author": author, "content": content,
            "timestamp": (when or datetime.now(UTC)).isoformat(), "edited_timestamp": None, "tts": False,
            "mention_everyone": "@everyone" in content, "mentions": mentions or [], "mention_roles": [],
            "attachments": attachments or [], "embeds": [], "pinned": False, "type": 19 if reply_to else 0, "flags": 0,
            "components": [],
        }  # fmt: skip
        if guild:
            data["guild_id"] = str(GUILD)
            if not author.get("bot"):
                data["member"] = {"roles": [], "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
                                  "mute": False, "flags": 0}  # fmt: skip
        if reply_to is not None:
            data["message_reference"] = {"message_id": reply_to["id"], "channel_id": reply_to["channel_id"],
                                         "guild_id": reply_to.get("guild_id"), "type": 0}  # fmt: skip
            data["referenced_message"] = reply_to
        self.messages[channel_id].append(data)
        return data

    def attachment(self, filename: str, data: bytes, content_type: str = "",
                   *, size: int | None = None) -> dict[str, Any]:  # fmt: skip
        """An attachment object whose URL this server serves, as Discord's CDN would."""
        attachment_id = self.snowflake()
        self.attachments[str(attachment_id)] = (data, content_type)
        url = (
            f"{self.url.removesuffix('/api/v10')}/attachments/{CHANNEL}/{attachment_id}/{filename}"
        )
        return {"id": str(attachment_id), "filename": filename, "size": len(data) if size is None else size,
                "url": url + "?ex=1&is=2&hm=abc", "proxy_url": url, "content_type": content_type}  # fmt: skip

    async def _attachment(self, request: web.Request) -> web.Response:
        self.attachment_requests.append((request.path, request.headers.get("Authorization", "")))
        found = self.attachments.get(request.match_info["id"])
        if found is None:
            return web.Response(status=404, text="This content is no longer available.")
        data, content_type = found
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    # --- what tests use -------------------------------------------------------------------------

    def find(self, message_id: str) -> dict[str, Any] | None:
        return next((m for ms in self.messages.values() for m in ms if m["id"] == message_id), None)

    def called(self, method: str, path_part: str) -> list[dict[str, Any]]:
        return [body for m, p, body in self.calls if m == method and path_part in p]

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages[channel_id] if m["author"]["id"] == str(BOT_ID)]

    def threads(self) -> list[dict[str, Any]]:
        return [c for c in self.channels.values() if c["type"] == 11]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), seconds)

    def shard_of(self, guild_id: Any, count: int) -> int:
        """Discord's routing: a guild's events go to shard (guild_id >> 22) % count; DMs (and
        ids no snowflake, as fuzzing sends) to 0."""
        try:
            return (int(guild_id) >> 22) % count if guild_id else 0
        except (TypeError, ValueError):
            return 0

    def _receives(self, socket: web.WebSocketResponse, guild_id: Any) -> bool:
        shard = self.socket_shards.get(id(socket))
        return shard is None or self.shard_of(guild_id, shard[1]) == shard[0]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        for socket, compressor in list(self._sockets):
            if self._receives(socket, guild_id):  # each session only gets its shard's events
                await self._send(
                    socket, compressor, {"op": 0, "t": event, "s": next(self._seq), "d": data}
                )

    async def close_gateway(self, code: int) -> None:
        """End every gateway session with `code` (4010 and the like: no resuming)."""
        for socket, _ in list(self._sockets):
            await socket.close(code=code, message=b"closed by the test")

    async def dispatch_message(self, data: dict[str, Any]) -> None:
        await self.dispatch("MESSAGE_CREATE", data)

    # --- server ---------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/gateway-ws", self._gateway)
        app.router.add_get("/attachments/{channel}/{id}/{name}", self._attachment)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/v10"
        return self.url

    async def stop(self) -> None:
        # A client that is gone (a killed bot process) never answers the close frame: do not
        # wait aiohttp's 10 s for each such socket.
        async def close(socket: web.WebSocketResponse) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), 1)

        await asyncio.gather(*(close(socket) for socket, _ in list(self._sockets)))
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send(
        self, socket: web.WebSocketResponse, compressor: Any, payload: dict[str, Any]
    ) -> None:
        raw = json.dumps(payload).encode()
        if compressor is None:
            await socket.send_str(raw.decode())
        else:
            await socket.send_bytes(compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH))

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD), "name": "Guild", "owner_id": str(PEOPLE["alice"]), "icon": None,
            "roles": [{"id": str(GUILD), "name": "@everyone", "permissions": str(EVERYONE), "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],
            "members": [{"user": BOT_USER, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                         "deaf": False, "mute": False, "flags": 0}],
            "member_count": 4, "large": False, "unavailable": False, "emojis": [], "stickers": [],
            "features": [], "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "system_channel_flags": 0, "premium_tier": 0,
            "preferred_locale": "en-US", "nsfw_level": 0, "afk_timeout": 300,
            "joined_at": "2026-01-01T00:00:00+00:00",
        }  # fmt: skip

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        compressor = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        await self._send(socket, compressor, {"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            if payload["op"] == 1:
                await self._send(socket, compressor, {"op": 11})
            elif payload["op"] == 2:
                intents = int(payload["d"].get("intents", 0))
                if intents & MESSAGE_CONTENT_INTENT and not self.grant_message_content:
                    await socket.close(code=4014, message=b"Disallowed intent(s).")
                    break
                shard = payload["d"].get("shard")
                self.identify_shards.append(shard)
                if shard is not None:
                    self.socket_shards[id(socket)] = list(shard)
                self._sockets.append((socket, compressor))
                mine = self._receives(socket, GUILD)
                ready = {"v": 10, "user": BOT_USER,
                         "guilds": [{"id": str(GUILD), "unavailable": True}] if mine else [],
                         "session_id": "fake-session", "resume_gateway_url": f"ws://{request.host}/gateway-ws",
                         "shard": shard or [0, 1], "application": {"id": str(APP_ID), "flags": 0},
                         "private_channels": [], "relationships": []}  # fmt: skip
                await self._send(
                    socket, compressor, {"op": 0, "t": "READY", "s": next(self._seq), "d": ready}
                )
                if mine:
                    await self._send(socket, compressor,
                                     {"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": self._guild()})  # fmt: skip
                async with self._changed:
                    self.identifies += 1
                    self._changed.notify_all()
                self.identified.set()
        self._sockets = [(s, c) for s, c in self._sockets if s is not socket]
        return socket

    def _limited(self, method: str, path: str) -> web.Response | None:
        if (
            self.rate_limit is None
            or method not in ("POST", "PATCH")
            or not path.startswith("channels/")
        ):
            return None
        count, period = self.rate_limit
        kind = "edit" if method == "PATCH" else "thread" if path.endswith("/threads") else "send"
        key = f"{kind}:{path.split('/')[1]}"
        now = time.monotonic()
        bucket = self._buckets[key]
        while bucket and bucket[0] <= now - period:
            bucket.popleft()
        reset_after = period - (now - bucket[0]) if bucket else period
        headers = {"X-RateLimit-Limit": str(count), "X-RateLimit-Bucket": key,
                   "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                   "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}"}  # fmt: skip
        if len(bucket) >= count:
            self.rate_limited += 1
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Scope"] = "user"
            headers["Retry-After"] = f"{reset_after:.3f}"
            headers["Via"] = "1.1 google"  # without it discord.py takes a 429 for a Cloudflare ban
            body = {
                "message": "You are being rate limited.",
                "retry_after": reset_after,
                "global": False,
            }
            return json_response(body, 429, headers)
        bucket.append(now)
        headers["X-RateLimit-Remaining"] = str(count - len(bucket))
        self._rate_headers = headers
        return None

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw and request.content_type == "application/json":
                body = json.loads(raw)
        async with self._changed:
            self.calls.append((request.method, path, body))
            self.call_times.append(time.time())
            self._changed.notify_all()
        if not self.token_ok:
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        self._rate_headers: dict[str, str] = {}
        limited = self._limited(request.method, path)
        if limited is not None:
            return limited
        answer = await self._route(request.method, path, body, request)
        if isinstance(answer, web.Response):
            return answer
        return json_response(answer, headers=self._rate_headers or None)

    async def _route(
        self, method: str, path: str, body: dict[str, Any], request: web.Request
    ) -> Any:
        parts = path.split("/")
        if path == "users/@me":
            return BOT_USER
        if path == "oauth2/applications/@me":
            return {"id": str(APP_ID), "name": "Assistant", "description": "", "icon": None,
                    "bot_public": True, "bot_require_code_grant": False, "owner": USERS[PEOPLE["alice"]],
                    "verify_key": "00", "flags": self.app_flags}  # fmt: skip
        if path in ("gateway/bot", "gateway"):
            return {"url": f"ws://{request.host}/gateway-ws", "shards": self.recommended_shards,
                    "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                            "max_concurrency": 1}}  # fmt: skip
        if parts[0] == "applications" and parts[-1] == "commands":
            if method == "PUT":
                self.registered_commands = [
                    dict(c, id=str(self.snowflake()), application_id=str(APP_ID), version="1")
                    for c in (body if isinstance(body, list) else [])
                ]
            return self.registered_commands
        if parts[0] == "guilds" and len(parts) == 2 and method == "GET":  # REST: no channels
            kept = ("channels", "threads", "members", "voice_states", "presences", "joined_at")
            return {k: v for k, v in self._guild().items() if k not in kept}
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and method == "GET":
            person = USERS.get(int(parts[3])) if parts[3].isdigit() else None
            if person is None:
                return json_response({"message": "Unknown Member", "code": 10007}, status=404)
            self.member_fetches += 1
            return {"user": person, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                    "deaf": False, "mute": False, "flags": 0}  # fmt: skip
        if parts[0] == "channels":
            return await self._channel_route(method, parts, body, request)
        if parts[0] == "interactions" and parts[-1] == "callback":
            kind = body.get("type")
            data = body.get("data") or {}
            answer: dict[str, Any] = {
                "interaction": {"id": parts[1], "type": 2, "response_message_loading": kind == 5,
                                "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64)},
                "resource": {"type": kind},
            }  # fmt: skip
            if kind == 4:
                answer["resource"]["message"] = self._bot_message(
                    CHANNEL, data.get("content", ""), record=False
                )
            return answer
        if parts[0] == "webhooks":
            return self._bot_message(CHANNEL, body.get("content", ""), record=False)
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    def _bot_message(self, channel_id: int, content: str, *, record: bool = True,
                     reference: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        guild = self.channels.get(channel_id, {}).get("guild_id") is not None
        reply_to = self.find(str(reference["message_id"])) if reference else None
        data = self.message(channel_id, content, BOT_USER, guild=guild, reply_to=reply_to)
        if not record:
            self.messages[channel_id].remove(data)
        return data

    async def _channel_route(
        self, method: str, parts: list[str], body: dict[str, Any], request: web.Request
    ) -> Any:
        channel_id = int(parts[1])
        if len(parts) == 2:
            return self.channels.get(channel_id) or json_response(
                {"message": "Unknown Channel", "code": 10003}, 404
            )
        if parts[2] == "messages" and len(parts) == 3 and method == "POST":
            data = self._bot_message(
                channel_id, body.get("content", ""), reference=body.get("message_reference")
            )
            data["_allowed_mentions"] = body.get("allowed_mentions")
            public = {k: v for k, v in data.items() if not k.startswith("_")}
            echo = asyncio.get_running_loop().create_task(self.dispatch_message(public))
            self._echoes.add(echo)  # Discord echoes the bot's own messages back
            echo.add_done_callback(self._echoes.discard)
            return public
        if parts[2] == "messages" and len(parts) == 3 and method == "GET":
            after = int(request.query.get("after") or 0)
            before = int(request.query.get("before") or (1 << 63))
            limit = int(request.query.get("limit") or 50)
            found = [m for m in self.messages[channel_id] if after < int(m["id"]) < before]
            found.sort(key=lambda m: -int(m["id"]))
            if request.query.get("after") and not request.query.get("before"):
                found = sorted(found, key=lambda m: int(m["id"]))[:limit]
                return [
                    {k: v for k, v in m.items() if not k.startswith("_")} for m in reversed(found)
                ]
            return [{k: v for k, v in m.items() if not k.startswith("_")} for m in found[:limit]]
        if parts[2] == "messages" and len(parts) == 4 and method == "PATCH":
            for message in self.messages[channel_id]:
                if message["id"] == parts[3]:
                    message["content"] = body.get("content", message["content"])
                    message["edited_timestamp"] = datetime.now(UTC).isoformat()
                    message["_allowed_mentions"] = body.get("allowed_mentions")
                    return {k: v for k, v in message.items() if not k.startswith("_")}
            return json_response({"message": "Unknown Message", "code": 10008}, 404)
        if (
            parts[2] == "messages"
            and len(parts) == 5
            and parts[4] == "threads"
            and method == "POST"
        ):
            if self.deny_threads:
                return json_response({"message": "Missing Permissions", "code": 50013}, 403)
            thread_id = int(parts[3])  # a thread started from a message takes the message's id
            thread = {"id": str(thread_id), "type": 11, "name": body.get("name", "thread"),
                      "guild_id": str(GUILD), "parent_id": str(channel_id), "owner_id": str(BOT_ID),
                      "message_count": 0, "member_count": 1, "rate_limit_per_user": 0,
                      "thread_metadata": {"archived": False, "auto_archive_duration": body.get("auto_archive_duration", 1440),
                                          "archive_timestamp": datetime.now(UTC).isoformat(), "locked": False},
                      "flags": 0}  # fmt: skip
            self.channels[thread_id] = thread
            await self.dispatch("THREAD_CREATE", dict(thread, newly_created=True))
            return thread
        return json_response({"message": "404: Not Found", "code": 0}, 404)
