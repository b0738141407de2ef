"""BOT_PRICES: what people write is read exactly, and anything else is one line naming it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import ConfigError
from bot.usage.prices import Price, cost, money, parse_prices


def test_the_documented_example_reads_as_written() -> None:
    prices = parse_prices("gpt-4o-mini=0.15/0.60,gpt-4o=2.50/10")
    assert prices == {"gpt-4o-mini": Price(0.15, 0.60), "gpt-4o": Price(2.5, 10.0)}
    assert cost(prices, "gpt-4o", 1_000_000, 100_000) == pytest.approx(3.5)
    assert cost(prices, "llama3:8b", 10, 10) is None
    assert parse_prices("") == {} and parse_prices(None) == {}


def test_spaces_and_model_names_with_colons_and_slashes_are_fine() -> None:
    prices = parse_prices(" llama3:8b = 0 / 0 , org/model-v2=1/2 ")
    assert prices == {"llama3:8b": Price(0.0, 0.0), "org/model-v2": Price(1.0, 2.0)}


@pytest.mark.parametrize(
    "text", ["gpt-4o", "gpt-4o=2.5", "gpt-4o=a/b", "=1/2", "gpt-4o=-1/2", "m=1/2,m=1/3"]
)
def test_a_malformed_entry_names_the_variable(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_prices(text)
    assert caught.value.variable == "BOT_PRICES"


names = st.text(
    st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_.:/"),
    min_size=1,
    max_size=20,
)
amounts = st.decimals(min_value=0, max_value=1000, places=3).map(float)


@given(st.dictionaries(names, st.tuples(amounts, amounts), max_size=6))
def test_any_price_list_reads_back_as_written(given_prices: dict[str, tuple[float, float]]) -> None:
    text = ",".join(f"{m}={i}/{o}" for m, (i, o) in given_prices.items())
    assert parse_prices(text) == {m: Price(i, o) for m, (i, o) in given_prices.items()}


def test_money_is_shown_to_the_cent_or_finer_below_it() -> None:
    assert money(1.234) == "$1.23"
    assert money(0.5) == "$0.50"
    assert money(0.0042) == "$0.0042"
    assert money(0.00001) == "<$0.0001"
    assert money(0) == "$0.00"
