"""A local OpenAI-compatible chat server that streams like the real API.

Tests script it with `Reply`s (errors, delays, broken streams) or give it a responder that reads
the request; the real `openai` SDK talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    text: str = "OK"
    status: int = 200
    error: dict[str, Any] | None = None  # the body's "error" for a non-200 status
    headers: dict[str, str] = field(default_factory=dict)
    first_token_delay: float = 0.0  # seconds before the first chunk
    token_delay: float = 0.0  # seconds between chunks
    break_after: int | None = None  # drop the connection after this many content chunks
    error_event_after: int | None = None  # send an SSE error payload after this many chunks
    finish_reason: str = "stop"
    usage: bool = True  # send the final usage chunk when asked for it
    unfinished: bool = False  # end the stream cleanly after the text: no finish_reason, no [DONE]
    hang: bool = False  # never send anything after the headers


Responder = Callable[[dict[str, Any]], "Reply | str"]


def approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def content_text(content: Any) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return str(content or "")


def image_parts(request: dict[str, Any]) -> list[str]:
    """The data: URLs of every image part in a request."""
    return [
        str(part["image_url"]["url"])
        for message in request.get("messages", [])
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def echo(request: dict[str, Any]) -> Reply:
    return Reply(text=f"echo: {last_user_text(request)}")


EMBEDDING_DIMENSIONS = 64


class FakeOpenAI:
    def __init__(self, responder: Responder = echo, model_latency: float = 0.0) -> None:
        self.responder = responder
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.model_latency = model_latency
        self.first_token_times: list[float] = []  # seconds from request to first content chunk
        self.arrivals: list[float] = []  # time.time() each request arrived
        # (the system prompt's first words, start, seconds) of every request
        self.service_times: list[tuple[str, float, float]] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once
        self.vision = True  # False: refuse image parts the way OpenAI's text-only models do
        self.images: list[str] = []  # every image part received, as data: URLs
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.url = ""
        self.accepted_key: str | None = None  # set: any other key gets OpenAI's 401
        self.known_models: set[str] | None = None  # set: other model names get OpenAI's 404
        self.listed_models: list[str] | None = None  # what /v1/models says, if not known_models
        # /v1/embeddings: every text embedded, and the requests (batches) that carried them
        self.embedded: list[str] = []
        self.embedding_requests = 0
        self.embeddings_fail = False  # True: answer 500, as a server that is down
        # words that mean the same to the fake embedding model ("db" -> "database")
        self.synonyms: dict[str, str] = {}

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/embeddings", self._embeddings)  # Azure, no deployment
        app.router.add_get("/_stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "first_token_times": self.first_token_times,
                "arrivals": self.arrivals,
                "service_times": self.service_times,
            }
        )

    def _refused(self, request: web.Request, model: str | None = None) -> web.Response | None:
        """OpenAI's answers to a wrong key and to a model that does not exist (when the test
        set `accepted_key` / `known_models`)."""
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.accepted_key is not None and given != self.accepted_key:
            error = {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}  # fmt: skip
            return web.json_response({"error": error}, status=401)
        if model is not None and self.known_models is not None and model not in self.known_models:
            error = {"message": f"The model `{model}` does not exist or you do not have access to "
                     "it.", "type": "invalid_request_error", "param": None,
                     "code": "model_not_found"}  # fmt: skip
            return web.json_response({"error": error}, status=404)
        return None

    def embedding(self, text: str) -> list[float]:
        """A bag of words (synonyms folded) hashed into 64 dimensions: texts sharing a meaning,
        as `synonyms` says, come out close; unrelated ones far apart."""
        vector = [0.0] * EMBEDDING_DIMENSIONS
        for word in "".join(c.lower() if c.isalnum() else " " for c in text).split():
            word = self.synonyms.get(word, word)
            vector[zlib.crc32(word.encode()) % EMBEDDING_DIMENSIONS] += 1.0
        return vector

    async def _embeddings(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.embeddings_fail:
            return web.json_response({"error": {"message": "down", "type": "server_error"}},
                                     status=500)  # fmt: skip
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.embedding_requests += 1
        self.embedded += texts
        data = [{"object": "embedding", "index": n, "embedding": self.embedding(t)}
                for n, t in enumerate(texts)]  # fmt: skip
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": usage})  # fmt: skip

    async def _models(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        names = self.listed_models or (
            sorted(self.known_models) if self.known_models is not None else ["fake-model"]
        )
        return web.json_response(
            {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
        )

    def _next(self, body: dict[str, Any]) -> Reply:
        if self.script:
            return self.script.popleft()
        reply = self.responder(body)
        return Reply(text=reply) if isinstance(reply, str) else reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.perf_counter()
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1
            kind = " ".join(content_text(self.requests[-1]["messages"][0]["content"]).split()[:3])
            self.service_times.append((kind, started, time.perf_counter() - started))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        self.arrivals.append(time.time())
        body = await request.json()
        self.requests.append(body)
        refused = self._refused(request, str(body.get("model")))
        if refused is not None:
            return refused
        images = image_parts(body)
        if images and not self.vision:
            error = {
                "message": "Invalid content type. image_url is only supported by certain models.",
                "type": "invalid_request_error",
                "param": "messages.[1].content.[1].type",
                "code": None,
            }
            return web.json_response({"error": error}, status=400)
        self.images.extend(images)
        reply = self._next(body)
        if reply.status != 200:
            error = reply.error or {
                "message": f"status {reply.status}",
                "type": "error",
                "code": None,
            }
            return web.json_response({"error": error}, status=reply.status, headers=reply.headers)
        words = _pieces(reply.text, body.get("max_completion_tokens") or body.get("max_tokens"))
        prompt_text = "".join(content_text(m.get("content")) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": approx_tokens(prompt_text),
            "completion_tokens": approx_tokens("".join(words)),
            "total_tokens": 0,
        }
        if not body.get("stream"):
            await asyncio.sleep(self.model_latency + reply.first_token_delay)
            return web.json_response(_completion(body, "".join(words), reply.finish_reason, usage))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:  # stream each chunk at once, as real servers do (no Nagle delay)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reply.hang:
            await self._closing.wait()  # a model that accepted the request and went silent
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.model_latency + reply.first_token_delay)
        # Each chunk at its own time (first + index * token_delay), as a real model's pace does
        # not depend on this machine: a sleep per chunk would drift late under load.
        first_at = loop.time()
        await _send(response, _chunk(body, {"role": "assistant", "content": ""}, None))
        for index, word in enumerate(words):
            if reply.break_after is not None and index >= reply.break_after:
                request.transport.close()  # type: ignore[union-attr]
                return response
            if reply.error_event_after is not None and index >= reply.error_event_after:
                await _send(
                    response,
                    {
                        "error": {
                            "message": "The server had an error while processing your request.",
                            "type": "server_error",
                        }
                    },
                )
                await response.write_eof()
                return response
            if index and reply.token_delay:
                await asyncio.sleep(max(0.0, first_at + index * reply.token_delay - loop.time()))
            if index == 0:
                self.first_token_times.append(time.perf_counter() - started)
            await _send(response, _chunk(body, {"content": word}, None))
        if reply.unfinished:
            await response.write_eof()
            return response
        await _send(response, _chunk(body, {}, reply.finish_reason))
        options = body.get("stream_options") or {}
        if reply.usage and options.get("include_usage"):
            final = _chunk(body, {}, None)
            final["choices"] = []
            final["usage"] = usage
            await _send(response, final)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _pieces(text: str, limit: int | None) -> list[str]:
    words = text.split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    if limit:
        pieces = pieces[: max(1, int(limit))]
    return [p for p in pieces if p]


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _completion(
    body: dict[str, Any], text: str, finish: str, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": usage,
    }


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(payload)}\n\n".encode())


async def _serve_forever(
    latency: float, token_delay: float, summarize: bool, words: int = 0
) -> None:
    def respond(request: dict[str, Any]) -> Reply:
        if summarize:
            from tests.fakes.summarizer_model import summarizer

            reply = summarizer(request)
            reply.token_delay = token_delay
            return reply
        text = f"echo: {last_user_text(request)[-200:]}"
        if words:  # an answer of a realistic length: the echo, then filler words
            text += " " + " ".join(f"w{n}" for n in range(words))
        return Reply(text=text, token_delay=token_delay)

    server = FakeOpenAI(responder=respond, model_latency=latency)
    print(await server.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # a stand-alone server for benchmarks and manual runs
    import argparse

    parser = argparse.ArgumentParser(description="local OpenAI-compatible chat server")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--summarizer", action="store_true", help="answer like a summarizer")
    parser.add_argument("--words", type=int, default=0, help="add this many words to each echo")
    arguments = parser.parse_args()
    asyncio.run(
        _serve_forever(
            arguments.latency, arguments.token_delay, arguments.summarizer, arguments.words
        )
    )
