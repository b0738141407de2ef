"""Embedding text for dense retrieval (optional: OPENAI_EMBEDDING_MODEL), through the openai
SDK's `/v1/embeddings` call, which OpenAI, Azure OpenAI, Ollama and vLLM all serve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

from bot.errors import ModelError

if TYPE_CHECKING:
    import openai

    from bot.settings import Settings

BATCH = 128  # texts per request: well inside every server's limit
TEXT_CHARS = 2_000  # of one message: a chat message rarely says more that search needs


class Embedder(Protocol):
    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; ModelError when the server fails."""


class OpenAIEmbedder:
    def __init__(self, connect: Callable[[], openai.AsyncOpenAI], model: str) -> None:
        self._connect = connect  # the SDK loads at the first call, not at import
        self._client: openai.AsyncOpenAI | None = None
        self.model = model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from bot.openai_model import translate_error

        if self._client is None:
            self._client = self._connect()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = [t[:TEXT_CHARS] or " " for t in texts[start : start + BATCH]]
            try:
                made = await self._client.embeddings.create(
                    model=self.model, input=batch, encoding_format="float"
                )
            except Exception as exc:  # the SDK's errors, and the transport's under them
                raise translate_error(exc) from exc
            ordered = sorted(made.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise ModelError(f"the embedding server returned {len(ordered)} vectors for "
                                 f"{len(batch)} texts")  # fmt: skip
            vectors += [list(item.embedding) for item in ordered]
        return vectors

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def build_embedder(settings: Settings) -> OpenAIEmbedder | None:
    """The embedder the settings ask for: the chat model's server and key, unless
    OPENAI_EMBEDDING_BASE_URL names another server; None when OPENAI_EMBEDDING_MODEL is unset."""
    model = settings.embedding_model
    if not model:
        return None
    from bot.openai_model import build_client

    return OpenAIEmbedder(partial(build_client, settings, embeddings=True), model)
