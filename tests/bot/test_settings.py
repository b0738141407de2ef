from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.conversation import ThreadRef
from bot.errors import ConfigError
from bot.settings import load_settings
from bot.store.keys import KeyBuilder


def test_missing_model_configuration_names_the_variable(monkeypatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == "OPENAI_API_KEY"
    assert "OPENAI_BASE_URL" in caught.value.expectation


def test_invalid_number_names_the_variable_and_value(monkeypatch) -> None:
    monkeypatch.setenv("BOT_MAX_PROMPT_TOKENS", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, OPENAI_API_KEY="k")
    assert caught.value.variable == "BOT_MAX_PROMPT_TOKENS"
    assert "'lots'" in str(caught.value)


def test_azure_needs_its_deployment(monkeypatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_DEPLOYMENT", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings(
            _env_file=None,
            AZURE_OPENAI_ENDPOINT="https://x.example",
            AZURE_OPENAI_API_KEY="k",
            OPENAI_API_VERSION="2024-10-21",
        )
    assert caught.value.variable == "AZURE_OPENAI_DEPLOYMENT"


def test_local_server_needs_no_key(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = load_settings(
        _env_file=None, OPENAI_BASE_URL="http://127.0.0.1:11434/v1", OPENAI_MODEL="llama3.2"
    )
    assert settings.openai_model == "llama3.2" and settings.openai_api_key is None


def test_dotenv_file_is_read(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=sk-test\nOPENAI_MODEL=gpt-4.1-mini\n")
    settings = load_settings(_env_file=env)
    assert settings.openai_model == "gpt-4.1-mini"


def test_thread_keys_share_one_cluster_slot() -> None:
    from redis.crc import key_slot

    keys = KeyBuilder("asst").thread(ThreadRef("slack", "T{1}", "C:1", "17.5"))
    slots = {key_slot(k.encode()) for k in (keys.turns, keys.meta, keys.lock)}
    assert len(slots) == 1
    assert keys.turns == "asst:{slack:T%7B1%7D:C%3A1}:17.5:turns"


@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=4, max_size=4),
    st.booleans(),
)
def test_everything_a_follow_up_touches_shares_its_channels_slot(
    parts: list[str], own_place: bool
) -> None:
    """Claim, log entry, thread keys and the channel's in-flight index: one slot, whatever the
    ids hold (braces, colons), a Discord thread (a channel of its own) included."""
    from redis.crc import key_slot

    from bot.store.keys import channel_scope, place_of

    platform, workspace, channel, thread = parts
    ref = ThreadRef(platform, workspace, channel, thread, place=thread if own_place else "")
    builder = KeyBuilder("asst")
    keys = builder.thread(ref)
    scope = channel_scope(platform, workspace, ref.home)
    assert place_of(ref) == scope == keys.place
    log_key = "asst:log:{" + scope + "}"  # bot.summaries.channel_log
    every = [keys.turns, keys.meta, keys.lock, keys.pending, keys.gone, keys.index,
             builder.claim(scope, "msg:1"), log_key]  # fmt: skip
    assert len({key_slot(k.encode()) for k in every}) == 1
    other = ThreadRef(platform, workspace, channel + "x", thread, place=ref.place)
    assert builder.thread(other).turns != keys.turns  # the channel is part of a thread's name


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPENAI_BASE_URL", "nonsense"),
        ("OPENAI_BASE_URL", "http://[::1"),
        ("OPENAI_BASE_URL", "ftp://models.example.com/v1"),
        ("AZURE_OPENAI_ENDPOINT", "my-resource.openai.azure.com"),
        ("REDIS_PREFIX", "a:b"),
        ("BOT_USER_DAILY_TOKENS", "lots"),
    ],
)
def test_every_invalid_setting_is_one_line_naming_it(monkeypatch, variable, value) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == variable
    assert "\n" not in str(caught.value) and value in str(caught.value)


def test_a_pattern_in_the_message_keeps_its_case(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("REDIS_PREFIX", "a:b")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "A-Za-z0-9" in str(caught.value)
