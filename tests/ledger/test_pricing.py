"""Prices are matched to model names as ccusage matches them, and costs follow its formula."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.errors import BatonError
from daemon.pricing import load_prices

PRICES = load_prices()


@pytest.mark.parametrize(
    ("model", "input_per_m"),
    [
        ("claude-opus-4-6", 5),
        ("claude-opus-4-5-20251101", 5),
        ("claude-opus-4-1-20250805", 15),
        ("claude-opus-4-20250514", 15),
        ("claude-sonnet-4-5-20250929", 3),
        ("claude-sonnet-4-5-20991231", 3),  # another 8-digit date suffix still matches
        ("claude-sonnet-4@20250514", 3),  # Vertex's @ becomes -
        ("claude-3.5-haiku", 0.8),  # . becomes -
        ("anthropic/claude-haiku-4-5", 1),  # a provider prefix: contained at a boundary
        ("claude-3-haiku-20240307", 0.25),
        ("claude-sonnet-5", 2),
        ("claude-fable-5", 10),
    ],
)
def test_model_names_match(model: str, input_per_m: float) -> None:
    price = PRICES.find(model)
    assert price is not None
    assert price.input * 1e6 == pytest.approx(input_per_m)


@pytest.mark.parametrize("model", ["gpt-4o", "claude-opus-4-9", "claude-sonnet-4-5-1", "", "<synthetic>"])
def test_unknown_models_are_unpriced_not_free(model: str) -> None:
    assert PRICES.find(model) is None
    assert PRICES.cost(model, None, 10, 10, 0, 0, 0) is None


def test_cost_formula_with_1h_cache_at_twice_input() -> None:
    # sonnet-4-5: in 3, out 15, write 3.75, 1h = 6, read 0.30 per million
    cost = PRICES.cost("claude-sonnet-4-5-20250929", None, 1_000, 2_000, 3_000, 4_000, 5_000)
    assert cost == pytest.approx((1_000 * 3 + 2_000 * 15 + 3_000 * 3.75 + 4_000 * 6 + 5_000 * 0.3) / 1e6)


def test_tier_above_200k_applies_per_entry() -> None:
    cost = PRICES.cost("claude-sonnet-4-20250514", None, 250_000, 0, 0, 0, 0)
    assert cost == pytest.approx((200_000 * 3 + 50_000 * 6) / 1e6)
    assert PRICES.cost("claude-opus-4-6", None, 250_000, 0, 0, 0, 0) == pytest.approx(250_000 * 5 / 1e6)


@pytest.mark.parametrize(
    ("model", "factor"), [("claude-opus-4-6", 6), ("claude-opus-4-8", 2), ("claude-opus-4", 1)]
)
def test_fast_mode_multiplies_the_whole_entry(model: str, factor: float) -> None:
    slow = PRICES.cost(model, None, 100, 100, 100, 100, 100)
    fast = PRICES.cost(model, "fast", 100, 100, 100, 100, 100)
    assert slow is not None and fast == pytest.approx(slow * factor)


def test_user_file_adds_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "prices.json"
    f.write_text(
        json.dumps(
            {"models": {"my-model": {"input": 1, "output": 2}, "claude-opus-4-6": {"input": 50, "output": 1}}}
        )
    )
    table = load_prices(f)
    mine = table.find("my-model")
    assert (
        mine is not None
        and mine.cache_write == pytest.approx(1.25e-6)
        and mine.cache_read == pytest.approx(1e-7)
    )
    opus = table.find("claude-opus-4-6")
    assert opus is not None and opus.input == pytest.approx(50e-6)
    assert table.digest != PRICES.digest


def test_bad_user_file_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "prices.json"
    f.write_text('{"models": {"x": {"input": "cheap", "output": 1}}}')
    with pytest.raises(BatonError, match="'input' must be a non-negative number"):
        load_prices(f)
    f.write_text("{not json")
    with pytest.raises(BatonError, match="not valid JSON"):
        load_prices(f)
