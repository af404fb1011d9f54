"""Model prices and the cost of one usage entry, as ccusage 20 computes them (claude-data-formats.md §7, §3).

The bundled table (`daemon/data/prices.json`, USD per million tokens) covers every Claude model; a user file
in the same shape adds or overrides entries. Model names are matched the way ccusage matches them; an unknown
model has no price (None), which reports list as unpriced rather than counting it as $0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from daemon.errors import BatonError
from daemon.prices_file import bundled_text, prices_digest

TIER_THRESHOLD = 200_000
_DATE_SUFFIX = re.compile(r"-\d{8}$")
_PER_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token for one model; `*_above` apply to the tokens of one entry past 200k, when given."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    input_above: float | None = None
    output_above: float | None = None
    cache_write_above: float | None = None
    cache_read_above: float | None = None
    fast_multiplier: float = 1.0


def _price_from(entry: dict[str, Any], where: str) -> ModelPrice:
    def num(key: str) -> float | None:
        value = entry.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise BatonError(f"{where}: '{key}' must be a non-negative number of USD per million tokens")
        return float(value) / _PER_MILLION

    inp = num("input")
    out = num("output")
    if inp is None or out is None:
        raise BatonError(f"{where}: 'input' and 'output' prices are required")
    fast = entry.get("fast_multiplier", 1.0)
    if not isinstance(fast, int | float) or fast <= 0:
        raise BatonError(f"{where}: 'fast_multiplier' must be a positive number")
    write = num("cache_write")
    read = num("cache_read")
    return ModelPrice(
        input=inp,
        output=out,
        cache_write=write if write is not None else 1.25 * inp,  # ccusage's defaults for missing cache prices
        cache_read=read if read is not None else 0.1 * inp,
        input_above=num("input_above_200k"),
        output_above=num("output_above_200k"),
        cache_write_above=num("cache_write_above_200k"),
        cache_read_above=num("cache_read_above_200k"),
        fast_multiplier=float(fast),
    )


@dataclass(frozen=True)
class PriceTable:
    """Prices by model key, with ccusage's fuzzy name matching (see `find`)."""

    prices: dict[str, ModelPrice]
    digest: str  # changes whenever any price changes: the ledger recomputes stored costs then
    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    _found: dict[str, ModelPrice | None] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys", tuple(sorted(self.prices)))

    def find(self, model: str | None) -> ModelPrice | None:
        """Return the price of `model`, or None when no key matches (an unpriced model)."""
        if not model:
            return None
        try:
            return self._found[model]
        except KeyError:
            key = _match(self._keys, model)
            price = None if key is None else self.prices[key]
            self._found[model] = price
            return price

    def cost(
        self,
        model: str | None,
        speed: str | None,
        input_tokens: int,
        output_tokens: int,
        cache_5m: int,
        cache_1h: int,
        cache_read: int,
    ) -> float | None:
        """Return the USD cost of one entry, or None when the model has no price."""
        p = self.find(model)
        if p is None:
            return None
        if max(input_tokens, output_tokens, cache_5m, cache_1h, cache_read) <= TIER_THRESHOLD:
            total = (  # the common case, with the same products and order as below
                input_tokens * p.input
                + output_tokens * p.output
                + cache_5m * p.cache_write
                + cache_1h * (2 * p.input)
                + cache_read * p.cache_read
            )
            return total * p.fast_multiplier if speed == "fast" else total
        total = (
            _tiered(input_tokens, p.input, p.input_above)
            + _tiered(output_tokens, p.output, p.output_above)
            + _tiered(cache_5m, p.cache_write, p.cache_write_above)
            + _tiered(cache_1h, 2 * p.input, 2 * p.input_above if p.input_above is not None else None)
            + _tiered(cache_read, p.cache_read, p.cache_read_above)
        )
        return total * p.fast_multiplier if speed == "fast" else total


def _tiered(n: int, base: float, above: float | None) -> float:
    if above is not None and n > TIER_THRESHOLD:
        return TIER_THRESHOLD * base + (n - TIER_THRESHOLD) * above
    return n * base


def _normalise(name: str) -> str:
    return name.lower().replace(".", "-").replace("@", "-")


def _contains_at_boundary(hay: str, needle: str) -> bool:
    """True if `needle` occurs in `hay` between non-alphanumeric boundaries, and what follows it is not
    another version number (only an 8-digit date suffix may differ)."""
    start = hay.find(needle)
    while start != -1:
        end = start + len(needle)
        before_ok = start == 0 or not hay[start - 1].isalnum()
        rest = hay[end:]
        after_ok = rest == "" or (not rest[0].isalnum() and not _starts_with_version(rest))
        if before_ok and after_ok:
            return True
        start = hay.find(needle, start + 1)
    return False


def _starts_with_version(rest: str) -> bool:
    """True when `rest` (starting with a separator) begins a numeric part other than an 8-digit date."""
    if len(rest) < 2 or not rest[1].isdigit():
        return False
    digits = re.match(r"\d+", rest[1:])
    assert digits is not None
    return len(digits.group(0)) != 8


@lru_cache(maxsize=4096)
def _match(keys: tuple[str, ...], model: str) -> str | None:
    if model in keys:
        return model
    name = _normalise(model)
    by_norm = {_normalise(k): k for k in keys}
    if name in by_norm:
        return by_norm[name]
    undated = _DATE_SUFFIX.sub("", name)
    best: str | None = None
    for norm, key in by_norm.items():
        if norm.startswith(("us-", "eu-", "apac-")):
            continue  # Bedrock regional keys cost more and never describe first-party usage
        k_undated = _DATE_SUFFIX.sub("", norm)
        if (
            _contains_at_boundary(name, norm)
            or _contains_at_boundary(norm, name)
            or (undated == k_undated and undated != name)
            or (undated == k_undated and k_undated != norm)
        ) and (best is None or len(key) > len(best)):
            best = key
    return best


def _read_models(text: str, where: str) -> dict[str, ModelPrice]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BatonError(
            f"{where}: not valid JSON ({exc})", hint="see `daemon/data/prices.json` for the shape"
        ) from exc
    models = doc.get("models", doc) if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise BatonError(f'{where}: expected an object {{"models": {{name: prices}}}}')
    return {
        name: _price_from(entry, f"{where}: model {name!r}")
        for name, entry in models.items()
        if not name.startswith("_") and isinstance(entry, dict)
    }


def load_prices(user_file: Path | None = None) -> PriceTable:
    """Return the bundled prices with `user_file`'s entries added or overriding; raise BatonError if bad."""
    prices = _read_models(bundled_text(), "bundled prices.json")
    if user_file is not None:
        try:
            text = user_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BatonError(f"cannot read price file {user_file}: {exc.strerror}") from exc
        prices.update(_read_models(text, str(user_file)))
    return PriceTable(prices=prices, digest=prices_digest(user_file))
