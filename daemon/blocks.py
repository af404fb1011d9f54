"""ccusage's 5-hour session blocks (claude-data-formats.md §3), as a pure function of entries and `now`.

A block starts at the UTC hour of its first entry and lasts 5 hours; an entry more than 5 hours after the
block's start, or after the previous entry, starts a new block, and a silence longer than 5 hours leaves a
gap block. The live daemon reuses `identify_blocks` for the current window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

HOUR_MS = 3_600_000
DEFAULT_BLOCK_MS = 5 * HOUR_MS
SYNTHETIC = "<synthetic>"


class BlockEntry(NamedTuple):
    """One deduplicated usage entry as blocks need it. `model` is the display label (`-fast` appended).

    A NamedTuple: the blocks report builds one per event, and a tuple is the cheapest record to build.
    """

    ts_ms: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: float
    model: str | None
    limit_reset_ms: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


class ModelUsage(NamedTuple):
    """One model's share of a block (`identify_blocks(..., by_model=True)`)."""

    model: str
    entries: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: float

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class BurnRate:
    tokens_per_minute: float
    tokens_per_minute_for_indicator: float
    cost_per_hour: float


@dataclass(frozen=True)
class Projection:
    total_tokens: int
    total_cost: float
    remaining_minutes: int


@dataclass(frozen=True)
class Block:
    """A 5-hour block (or a gap between blocks): times in UTC epoch ms, sums of its entries."""

    start_ms: int
    end_ms: int
    actual_end_ms: int | None
    is_active: bool
    is_gap: bool
    entries: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: float
    models: tuple[str, ...]
    first_ms: int | None = None
    limit_reset_ms: int | None = None
    burn_rate: BurnRate | None = None
    projection: Projection | None = None
    extra: dict[str, object] = field(default_factory=dict)
    by_model: tuple[ModelUsage, ...] = ()  # filled by `identify_blocks(..., by_model=True)`, most cost first

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


def floor_to_hour(ts_ms: int) -> int:
    """Return `ts_ms` rounded down to the UTC hour."""
    return ts_ms - ts_ms % HOUR_MS


def identify_blocks(
    entries: Sequence[BlockEntry],
    now_ms: int,
    *,
    block_ms: int = DEFAULT_BLOCK_MS,
    floor_ms: int = HOUR_MS,
    by_model: bool = False,
) -> list[Block]:
    """Return ccusage's blocks (gaps included) for `entries` (any order), with the active one's burn rate.
    A block starts at its first entry floored to `floor_ms` (the UTC hour; the daemon's sub-hour test
    windows floor to the second). With `by_model`, each block also carries its sums per model."""
    ordered = sorted(entries, key=lambda e: e.ts_ms)
    blocks: list[Block] = []
    current: list[BlockEntry] = []
    start = 0
    for e in ordered:
        if current:
            last = current[-1]
            if e.ts_ms - start > block_ms or e.ts_ms - last.ts_ms > block_ms:
                blocks.append(_close(start, current, now_ms, block_ms, by_model))
                if e.ts_ms - last.ts_ms > block_ms:
                    blocks.append(_gap(last.ts_ms + block_ms, e.ts_ms))
                current = []
        if not current:
            start = e.ts_ms - e.ts_ms % floor_ms
        current.append(e)
    if current:
        blocks.append(_close(start, current, now_ms, block_ms, by_model))
    return blocks


def _gap(start_ms: int, end_ms: int) -> Block:
    return Block(start_ms, end_ms, None, False, True, 0, 0, 0, 0, 0, 0.0, ())


def _close(start: int, entries: list[BlockEntry], now_ms: int, block_ms: int, by_model: bool) -> Block:
    end = start + block_ms
    actual_end = entries[-1].ts_ms
    models: dict[str, None] = {}
    for e in entries:
        if e.model and e.model != SYNTHETIC:
            models.setdefault(e.model, None)
    resets = [e.limit_reset_ms for e in entries if e.limit_reset_ms is not None]
    block = Block(
        start_ms=start,
        end_ms=end,
        actual_end_ms=actual_end,
        is_active=(now_ms - actual_end < block_ms) and now_ms < end,
        is_gap=False,
        entries=len(entries),
        input_tokens=sum(e.input_tokens for e in entries),
        output_tokens=sum(e.output_tokens for e in entries),
        cache_creation_tokens=sum(e.cache_creation_tokens for e in entries),
        cache_read_tokens=sum(e.cache_read_tokens for e in entries),
        cost=sum(e.cost for e in entries),
        models=tuple(models),
        first_ms=entries[0].ts_ms,
        limit_reset_ms=resets[0] if resets else None,
        by_model=_by_model(entries) if by_model else (),
    )
    if not block.is_active:
        return block
    burn = burn_rate(block)
    return _with(block, burn, projection(block, burn, now_ms))


def _by_model(entries: list[BlockEntry]) -> tuple[ModelUsage, ...]:
    """Sum a block's entries per model (synthetic and model-less entries left out, as in its `models`),
    most cost first, then by name."""
    sums: dict[str, list[float]] = {}
    for e in entries:
        if e.model and e.model != SYNTHETIC:
            s = sums.setdefault(e.model, [0, 0, 0, 0, 0, 0.0])
            s[0] += 1
            s[1] += e.input_tokens
            s[2] += e.output_tokens
            s[3] += e.cache_creation_tokens
            s[4] += e.cache_read_tokens
            s[5] += e.cost
    found = [
        ModelUsage(m, int(s[0]), int(s[1]), int(s[2]), int(s[3]), int(s[4]), float(s[5]))
        for m, s in sums.items()
    ]
    return tuple(sorted(found, key=lambda u: (-u.cost, u.model)))


def _with(block: Block, burn: BurnRate | None, proj: Projection | None) -> Block:
    from dataclasses import replace

    return replace(block, burn_rate=burn, projection=proj)


def burn_rate(block: Block) -> BurnRate | None:
    """Return tokens per minute and cost per hour from the block's first to last entry (None if 0 minutes)."""
    if block.first_ms is None or block.actual_end_ms is None:
        return None
    minutes = (block.actual_end_ms - block.first_ms) / 60_000
    if minutes <= 0:
        return None
    return BurnRate(
        tokens_per_minute=block.total_tokens / minutes,
        tokens_per_minute_for_indicator=(block.input_tokens + block.output_tokens) / minutes,
        cost_per_hour=block.cost / minutes * 60,
    )


def projection(block: Block, burn: BurnRate | None, now_ms: int) -> Projection | None:
    """Return where the block ends up at this burn rate by its end (tokens, cost rounded to the cent)."""
    if burn is None:
        return None
    remaining = round((block.end_ms - now_ms) / 60_000)
    return Projection(
        total_tokens=round(block.total_tokens + burn.tokens_per_minute * remaining),
        total_cost=round((block.cost + burn.cost_per_hour / 60 * remaining) * 100) / 100,
        remaining_minutes=remaining,
    )
