"""The chat-model client: the real openai SDK against the local OpenAI-compatible server."""

from __future__ import annotations

import pytest

from bot.chat_model import ChatMessage, complete
from bot.errors import (
    ContentFiltered,
    ContextTooLong,
    ModelMisconfigured,
    ModelRateLimited,
    ModelTimeout,
    ModelUnavailable,
)
from bot.openai_model import OpenAIChatModel, build_client
from bot.settings import load_settings
from bot.tokens import EstimatingCounter
from tests.conftest import openai_model
from tests.fakes.openai_server import FakeOpenAI, Reply

PROMPT = [ChatMessage("system", "be brief"), ChatMessage("user", "Alice: hello there")]


async def collect(model, messages=PROMPT, **kwargs) -> list[str]:
    return [d async for d in model.stream(messages, **kwargs)]


async def test_streams_deltas_and_records_reported_usage(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(text="one two three"))
    deltas = await collect(model)
    # each read's pieces come as one delta: three chunks, read in one to three reads
    assert "".join(deltas) == "one two three" and 1 <= len(deltas) <= 3
    assert model.usage.calls == 1
    assert model.usage.last is not None and not model.usage.last.estimated
    assert model.usage.last.completion_tokens > 0
    sent = fake_openai.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][1] == {"role": "user", "content": "Alice: hello there"}


async def test_missing_usage_chunk_is_estimated(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(text="no usage here", usage=False))
    assert "".join(await collect(model)) == "no usage here"
    assert model.usage.last is not None and model.usage.last.estimated
    assert model.usage.last.prompt_tokens > 0


async def test_rate_limit_carries_retry_after(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(
        Reply(
            status=429,
            headers={"Retry-After": "7"},
            error={
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            },
        )
    )
    with pytest.raises(ModelRateLimited) as caught:
        await collect(model)
    assert caught.value.retry_after == 7
    assert "try again in 7 s" in caught.value.user_message()


async def test_no_quota_is_a_configuration_problem(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(
        Reply(
            status=429, error={"message": "You exceeded your quota", "code": "insufficient_quota"}
        )
    )
    with pytest.raises(ModelMisconfigured):
        await collect(model)


async def test_server_error_is_unavailable(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(status=500))
    with pytest.raises(ModelUnavailable):
        await collect(model)


async def test_server_error_is_retried_once_when_configured(fake_openai: FakeOpenAI) -> None:
    model = openai_model(fake_openai, max_retries=1)
    fake_openai.push(Reply(status=503, headers={"Retry-After": "0"}), Reply(text="second try"))
    assert "".join(await collect(model)) == "second try"
    assert len(fake_openai.requests) == 2
    await model.aclose()


async def test_stream_broken_midway_raises_after_partial_text(
    fake_openai: FakeOpenAI, model
) -> None:
    fake_openai.push(Reply(text="a b c d e f", break_after=2))
    seen: list[str] = []
    with pytest.raises(ModelUnavailable):
        async for delta in model.stream(PROMPT):
            seen.append(delta)
    assert "".join(seen) == "a b"


async def test_error_event_in_stream_is_unavailable(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(text="a b c", error_event_after=1))
    with pytest.raises(ModelUnavailable):
        await collect(model)


async def test_slow_first_token_times_out(fake_openai: FakeOpenAI) -> None:
    model = openai_model(fake_openai, timeout=0.3)
    fake_openai.push(Reply(text="late", first_token_delay=2))
    with pytest.raises(ModelTimeout):
        await collect(model)
    await model.aclose()


async def test_slow_first_token_within_timeout_is_fine(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(text="worth the wait", first_token_delay=0.3))
    assert "".join(await collect(model)) == "worth the wait"


@pytest.mark.parametrize(
    "error",
    [
        {
            "message": "This model's maximum context length is 8192 tokens.",
            "code": "context_length_exceeded",
        },
        {
            "message": "This model's maximum context length is 4096 tokens. "
            "However, you requested 5000 tokens."
        },
        {"message": "the prompt is too long for the context window"},
    ],
)
async def test_context_overflow_is_recognised_with_or_without_code(
    fake_openai, model, error
) -> None:
    fake_openai.push(Reply(status=400, error=error))
    with pytest.raises(ContextTooLong):
        await collect(model)


async def test_bad_key_is_misconfigured(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(
        Reply(
            status=401, error={"message": "Incorrect API key provided", "code": "invalid_api_key"}
        )
    )
    with pytest.raises(ModelMisconfigured):
        await collect(model)


async def test_content_filter_finish_reason(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(text="partial", finish_reason="content_filter"))
    with pytest.raises(ContentFiltered):
        await collect(model)


async def test_content_filter_400(fake_openai: FakeOpenAI, model) -> None:
    fake_openai.push(Reply(status=400, error={"message": "filtered", "code": "content_filter"}))
    with pytest.raises(ContentFiltered):
        await collect(model)


async def test_unreachable_server_is_unavailable() -> None:
    server = FakeOpenAI()
    await server.start()
    await server.stop()  # the port is now closed
    model = openai_model(server)
    with pytest.raises(ModelUnavailable):
        await collect(model)
    await model.aclose()


async def test_answer_cap_uses_the_parameter_the_server_knows(fake_openai: FakeOpenAI) -> None:
    compatible = openai_model(fake_openai)
    await collect(compatible, max_tokens=5)
    assert fake_openai.requests[-1]["max_tokens"] == 5
    official = OpenAIChatModel(compatible._client, "m", EstimatingCounter(), official_api=True)
    await collect(official, max_tokens=5)
    assert fake_openai.requests[-1]["max_completion_tokens"] == 5
    assert "max_tokens" not in fake_openai.requests[-1]
    await compatible.aclose()


async def test_azure_settings_reach_the_deployment_route(fake_openai: FakeOpenAI) -> None:
    endpoint = fake_openai.url.removesuffix("/v1")
    settings = load_settings(
        _env_file=None,
        AZURE_OPENAI_ENDPOINT=endpoint,
        AZURE_OPENAI_API_KEY="azure-key",
        OPENAI_API_VERSION="2024-10-21",
        AZURE_OPENAI_DEPLOYMENT="chat-deploy",
    )
    model = OpenAIChatModel.from_settings(settings, EstimatingCounter())
    fake_openai.push(Reply(text="from azure"))
    assert await complete(model, PROMPT) == "from azure"
    assert fake_openai.requests[-1]["model"] == "chat-deploy"
    await model.aclose()


def test_client_uses_chat_sized_timeouts() -> None:
    settings = load_settings(
        _env_file=None, OPENAI_API_KEY="k", OPENAI_TIMEOUT="12", OPENAI_MAX_RETRIES="1"
    )
    client = build_client(settings)
    assert client.max_retries == 1
    assert client.timeout.read == 12  # type: ignore[union-attr]
    assert "Aiohttp" in type(client._client).__mro__[1].__name__  # the SDK's aiohttp transport


async def test_a_stream_whose_connection_drops_is_unavailable_not_a_timeout(
    fake_openai: FakeOpenAI,
) -> None:
    """The aiohttp transport raises every broken connection as a timeout; the person is told
    the model is unavailable, as before, and the SDK's timeout is kept for real ones."""
    model = openai_model(fake_openai, timeout=5.0)
    fake_openai.push(Reply(text="a b c d", break_after=1))
    with pytest.raises(ModelUnavailable) as raised:
        await collect(model)
    assert not isinstance(raised.value, ModelTimeout)
    fake_openai.push(Reply(text="a b", token_delay=1.0))  # a read that takes too long
    slow = openai_model(fake_openai, timeout=0.3)
    with pytest.raises(ModelTimeout):
        await collect(slow)
    await model.aclose()
    await slow.aclose()


async def test_summary_chunks_can_use_a_cheaper_model(fake_openai: FakeOpenAI) -> None:
    settings = load_settings(
        _env_file=None,
        OPENAI_BASE_URL=fake_openai.url,
        OPENAI_MODEL="big-model",
        OPENAI_SUMMARY_MODEL="small-model",
    )
    model = OpenAIChatModel.from_settings(settings, EstimatingCounter())
    await complete(model, PROMPT, purpose="chunk")
    await complete(model, PROMPT, purpose="summary")
    assert [r["model"] for r in fake_openai.requests] == ["small-model", "big-model"]
    await model.aclose()
