"""The chat-model port over the official openai SDK: OpenAI, Azure OpenAI, compatible servers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import orjson

from bot.chat_model import ChatMessage, Purpose, Usage, UsageMeter
from bot.errors import (
    AnswerCutOff,
    ContentFiltered,
    ContextTooLong,
    ImagesRefused,
    ModelError,
    ModelMisconfigured,
    ModelRateLimited,
    ModelTimeout,
    ModelUnavailable,
)
from bot.metrics import FIRST_TOKEN, MODEL_CALLS, MODEL_TIME, TOKENS
from bot.settings import Settings
from bot.sse import DataLines
from bot.tokens import TokenCounter, count_prompt

if TYPE_CHECKING:
    import openai  # imported when the first call is made: a third of start-up otherwise

log = logging.getLogger(__name__)

# Compatible servers often drop the `code`; their messages still say what happened.
_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long"
    r"|reduce the length|exceeds? the (?:model's )?(?:maximum|max)",
    re.IGNORECASE,
)
_FILTER_WORDS = re.compile(r"content[_ ]filter|content management policy", re.IGNORECASE)
# How OpenAI, Azure, vLLM, Ollama and llama.cpp say a model takes no image input.
_IMAGE_WORDS = re.compile(
    r"image|vision|multimodal|multi-modal|content type|content part|must be a string", re.IGNORECASE
)


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            continue  # an HTTP date: treat as unknown rather than parse calendars
    return None


def _error_code(exc: openai.APIError) -> str:
    code = exc.code or ""
    body = exc.body
    if not code and isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            code = str(inner.get("code") or inner.get("type") or "")
    return code


def translate_error(exc: BaseException) -> ModelError:
    """Map an openai or transport exception onto the core's model errors."""
    import openai

    if isinstance(exc, ModelError):
        return exc
    broken = _broken_connection(exc)
    if broken is not None:
        return ModelUnavailable(f"the model is unavailable: {broken}")
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return ModelTimeout(f"the model timed out: {message}")
    if isinstance(exc, openai.APIError):
        code = _error_code(exc)
        if code == "context_length_exceeded" or _CONTEXT_WORDS.search(message):
            return ContextTooLong(message)
        if code == "content_filter" or _FILTER_WORDS.search(message):
            return ContentFiltered(message)
    if isinstance(exc, openai.RateLimitError):
        if _error_code(exc) == "insufficient_quota":
            return ModelMisconfigured(f"the API account has no quota left: {message}")
        return ModelRateLimited(message, retry_after=_retry_after(exc.response.headers))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelMisconfigured(f"the model rejected the credentials: {message}")
    if isinstance(exc, openai.NotFoundError):
        return ModelMisconfigured(f"the model or deployment was not found: {message}")
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return ModelMisconfigured(f"the model rejected the request ({exc.status_code}): {message}")
    return ModelUnavailable(f"the model is unavailable: {message}")


def _broken_connection(exc: BaseException) -> BaseException | None:
    """The aiohttp error under an SDK error that is a refused or broken connection, not a
    timeout: the SDK's aiohttp transport raises every broken connection as a timeout."""
    import aiohttp

    seen: BaseException | None = exc
    for _ in range(8):  # the SDK's error, the transport's, aiohttp's
        if seen is None:
            return None
        if isinstance(seen, aiohttp.ClientError):
            timeout = isinstance(seen, aiohttp.ServerTimeoutError | aiohttp.SocketTimeoutError)
            return None if timeout else seen
        seen = seen.__cause__ or seen.__context__
    return None


def _refuses_images(exc: BaseException, error: ModelError) -> bool:
    """A 400-class refusal of a request that carried images, in words about images."""
    import openai

    return (
        isinstance(exc, openai.APIStatusError)
        and exc.status_code in (400, 404, 415, 422, 500)
        and not isinstance(error, ContextTooLong | ContentFiltered)
        and bool(_IMAGE_WORDS.search(str(getattr(exc, "message", None) or exc)))
    )


def _message_param(message: ChatMessage) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    return {"role": message.role, "content": parts}


def _event(data: bytes, response: httpx2.Response) -> dict[str, Any]:
    """One streamed chunk; an error event becomes the SDK's APIError, as its own reader does."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ModelUnavailable(f"the model sent an unreadable chunk: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise ModelUnavailable(f"the model sent an unreadable chunk: {data[:80]!r}")
    error = chunk.get("error")
    if error:
        import openai

        message = error.get("message") if isinstance(error, dict) else str(error)
        raise openai.APIError(str(message or "the stream failed"), response.request, body=error)
    return chunk


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def build_client(settings: Settings, *, embeddings: bool = False) -> openai.AsyncOpenAI:
    """An SDK client with chat-sized timeouts (a stuck reply should fail in seconds, not
    minutes), on the SDK's aiohttp transport: reading a streamed answer costs 10-20% less CPU
    than on its default one, which fifty answers at once on one core feel. `embeddings`: the
    client OPENAI_EMBEDDING_MODEL is asked through: OPENAI_EMBEDDING_BASE_URL's server when it
    names one, and on Azure no chat deployment in the path (the model names its deployment)."""
    import openai

    timeout = httpx2.Timeout(settings.openai_timeout, connect=min(10.0, settings.openai_timeout))
    elsewhere = settings.embedding_base_url if embeddings else None
    if settings.uses_azure and not elsewhere:
        assert settings.azure_openai_endpoint and settings.azure_openai_api_key
        return openai.AsyncAzureOpenAI(
            azure_endpoint=settings.azure_openai_endpoint,
            azure_deployment=None if embeddings else settings.azure_openai_deployment,
            api_version=settings.openai_api_version,
            api_key=settings.azure_openai_api_key.get_secret_value(),
            timeout=timeout,
            max_retries=settings.openai_max_retries,
            http_client=openai.DefaultAioHttpClient(timeout=timeout),
        )
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=elsewhere or settings.openai_base_url,
        timeout=timeout,
        max_retries=settings.openai_max_retries,
        http_client=openai.DefaultAioHttpClient(timeout=timeout),
    )


class OpenAIChatModel:
    """Streams chat completions; records usage, estimating it when the usage chunk never comes."""

    def __init__(
        self,
        client: openai.AsyncOpenAI | None,
        model: str,
        counter: TokenCounter,
        *,
        official_api: bool = True,
        models: dict[Purpose, str] | None = None,
        deadline: float = 90.0,
        connect: Callable[[], openai.AsyncOpenAI] | None = None,
        read_timeout: float | None = None,
    ) -> None:
        # Without `client`, `connect` makes it at the first call (the SDK loads then).
        self._made = client
        self._connect = connect
        self._making = threading.Lock()
        timeout = client.timeout if client is not None else read_timeout
        read = timeout.read if isinstance(timeout, httpx2.Timeout) else timeout
        self._read_timeout = float(read) if isinstance(read, int | float) else float("inf")
        self._deadline = deadline  # seconds for a whole call, the SDK's retries included
        self._model = model
        self._models = models or {}
        self._counter = counter
        # OpenAI and Azure want max_completion_tokens; many compatible servers only know max_tokens.
        self._limit_param = "max_completion_tokens" if official_api else "max_tokens"
        self.usage = UsageMeter()

    @classmethod
    def from_settings(cls, settings: Settings, counter: TokenCounter) -> OpenAIChatModel:
        model = settings.azure_openai_deployment if settings.uses_azure else settings.openai_model
        official = settings.uses_azure or not settings.openai_base_url
        # The chunk step of long summaries may use a smaller, cheaper model.
        # Rolling-summary folds too (OPENAI_FOLD_MODEL, by default the summary model).
        routes: dict[Purpose, str] = {}
        if settings.summary_model:
            routes["chunk"] = settings.summary_model
        if settings.fold_model or settings.summary_model:
            routes["fold"] = settings.fold_model or settings.summary_model or ""
        return cls(
            None,
            model or settings.openai_model,
            counter,
            official_api=official,
            models=routes,
            deadline=settings.answer_deadline,
            connect=lambda: build_client(settings),
            read_timeout=settings.openai_timeout,
        )

    @property
    def _client(self) -> openai.AsyncOpenAI:
        if self._made is None:
            with self._making:  # `warm` may be making it in a thread right now
                if self._made is None:
                    assert self._connect is not None
                    self._made = self._connect()
        return self._made

    @_client.setter
    def _client(self, client: openai.AsyncOpenAI) -> None:
        self._made = client

    def warm(self) -> None:
        """Load the SDK and make its client now (in a thread while a person types, or while the
        bot starts), so the first call does not hold the event loop for them."""
        if self._made is None:
            import openai  # noqa: F401

            _ = self._client

    async def aclose(self) -> None:
        if self._made is not None:
            await self._made.close()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        purpose: Purpose = "answer",
    ) -> AsyncIterator[str]:
        import openai

        with_images = any(m.images for m in messages)
        # Sent as a plain body through the client's own request path (its configuration, Azure
        # routing, retries and error types), skipping the SDK's per-request parameter transform.
        body: dict[str, Any] = {
            "model": self._models.get(purpose, self._model),
            "messages": [_message_param(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if max_tokens:
            body[self._limit_param] = max_tokens
        produced: list[str] = []
        usage: Usage | None = None
        finished = filtered = False
        started = time.perf_counter()
        first: float | None = None
        outcome = "failed"
        # One deadline for the whole call: OPENAI_TIMEOUT bounds each wait, retries multiply it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):  # the request, the SDK's retries included
                    stream = await self._client.post(
                        "/chat/completions",
                        cast_to=object,
                        body=body,
                        stream=True,
                        stream_cls=openai.AsyncStream[object],
                    )
                stack.push_async_callback(stream.close)
                pieces = aiter(stream.response.aiter_bytes())
                events = DataLines()
                done = False
                while not done:
                    if deadline - loop.time() > self._read_timeout:
                        piece = await anext(pieces, None)  # the client's read timeout bounds it
                    else:  # a timeout per read costs CPU: only when the deadline is the nearer
                        async with asyncio.timeout_at(deadline):  # never around the yield
                            piece = await anext(pieces, None)
                    payloads = events.feed(piece) if piece is not None else events.close()
                    texts: list[str] = []  # what this read brought, given on as one delta
                    for data in payloads:
                        if data == b"[DONE]":
                            done = True
                            break
                        chunk = _event(data, stream.response)
                        if chunk.get("usage"):
                            usage = _usage(chunk["usage"])
                        for choice in chunk.get("choices") or ():
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                texts.append(text)
                            reason = choice.get("finish_reason")
                            filtered = filtered or reason == "content_filter"
                            finished = finished or bool(reason)
                    if texts:
                        if first is None:
                            first = time.perf_counter()
                            FIRST_TOKEN.labels(purpose).observe(first - started)
                        text = "".join(texts)
                        produced.append(text)
                        yield text
                    if filtered:
                        raise ContentFiltered("the answer was stopped by the content filter")
                    if piece is None:
                        break
            if not finished:
                raise AnswerCutOff("the stream ended without a finish_reason")
            outcome = "ok"
        except ModelError:
            raise
        except (openai.OpenAIError, httpx2.HTTPError, TimeoutError) as exc:
            error = translate_error(exc)
            if with_images and _refuses_images(exc, error):
                error = ImagesRefused(str(error))
            log.warning("model call (%s) failed: %s", purpose, error)
            raise error from exc
        finally:
            if usage is None:
                usage = Usage(
                    count_prompt(self._counter, (m.content for m in messages)),
                    self._counter.count("".join(produced)),
                    estimated=True,
                )
            self.usage.record(usage, model=body["model"])
            MODEL_TIME.labels(purpose).observe(time.perf_counter() - started)
            MODEL_CALLS.labels(purpose, outcome).inc()
            TOKENS.labels(purpose, "prompt").inc(usage.prompt_tokens)
            TOKENS.labels(purpose, "completion").inc(usage.completion_tokens)
