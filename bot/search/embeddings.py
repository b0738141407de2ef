"""Embedding text for dense retrieval (optional: OPENAI_EMBEDDING_MODEL), through the openai
SDK's `/v1/embeddings` call, which OpenAI, Azure OpenAI, Ollama and vLLM all serve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

    def connect() -> openai.AsyncOpenAI:
        import openai

        from bot.openai_model import build_client

        if settings.embedding_base_url:
            secret = settings.openai_api_key
            key = secret.get_secret_value() if secret else "unused"
            return openai.AsyncOpenAI(api_key=key, base_url=settings.embedding_base_url,
                                      timeout=settings.openai_timeout,
                                      max_retries=settings.openai_max_retries)  # fmt: skip
        if settings.uses_azure:  # an Azure deployment per model: no chat deployment in the path
            assert settings.azure_openai_endpoint and settings.azure_openai_api_key
            return openai.AsyncAzureOpenAI(
                azure_endpoint=settings.azure_openai_endpoint,
                api_version=settings.openai_api_version,
                api_key=settings.azure_openai_api_key.get_secret_value(),
                timeout=settings.openai_timeout,
                max_retries=settings.openai_max_retries,
            )
        return build_client(settings)

    return OpenAIEmbedder(connect, model)
