"""ccusage's 5-hour blocks: starts floored to the hour, gaps, the active block's burn rate and projection."""

from __future__ import annotations

from datetime import datetime

from daemon.blocks import BlockEntry, identify_blocks

H = 3_600_000


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def entry(ts: int, tokens: int = 100, cost: float = 1.0, model: str | None = "claude-opus-4-6") -> BlockEntry:
    return BlockEntry(ts, tokens, tokens, 0, 0, cost, model)


def test_block_starts_on_the_hour_and_lasts_five_hours() -> None:
    t0 = at("2026-02-10T21:37:10+00:00")
    blocks = identify_blocks([entry(t0), entry(t0 + H)], now_ms=t0 + 100 * H)
    assert len(blocks) == 1
    b = blocks[0]
    assert b.start_ms == at("2026-02-10T21:00:00+00:00") and b.end_ms == b.start_ms + 5 * H
    assert b.actual_end_ms == t0 + H and b.entries == 2 and b.total_tokens == 400 and not b.is_active


def test_an_entry_past_the_block_end_starts_a_new_block_without_gap() -> None:
    t0 = at("2026-02-10T21:00:00+00:00")
    times = [t0, t0 + 4 * H, t0 + 5 * H + 1]  # within 5h of the last entry, but past the block's end
    blocks = identify_blocks([entry(t) for t in times], now_ms=t0 + 100 * H)
    assert [(b.is_gap, b.entries) for b in blocks] == [(False, 2), (False, 1)]
    assert blocks[1].start_ms == t0 + 5 * H


def test_silence_longer_than_five_hours_leaves_a_gap_block() -> None:
    t0 = at("2026-02-10T21:04:00+00:00")
    t1 = at("2026-02-11T09:15:00+00:00")
    blocks = identify_blocks([entry(t1), entry(t0)], now_ms=t1 + 100 * H)
    assert [b.is_gap for b in blocks] == [False, True, False]
    gap = blocks[1]
    assert gap.start_ms == t0 + 5 * H and gap.end_ms == t1 and gap.entries == 0 and gap.actual_end_ms is None


def test_synthetic_entries_count_tokens_but_not_models() -> None:
    t0 = at("2026-02-10T21:00:00+00:00")
    blocks = identify_blocks(
        [entry(t0, model="<synthetic>", tokens=0), entry(t0 + 1, model="claude-haiku-4-5"), entry(t0 + 2)],
        now_ms=t0 + 100 * H,
    )
    assert blocks[0].models == ("claude-haiku-4-5", "claude-opus-4-6") and blocks[0].entries == 3


def test_active_block_has_burn_rate_and_projection() -> None:
    t0 = at("2026-02-10T21:00:00+00:00")
    blocks = identify_blocks([entry(t0, 300, 0.5), entry(t0 + 30 * 60_000, 300, 0.5)], now_ms=t0 + H)
    b = blocks[0]
    assert b.is_active and b.burn_rate is not None and b.projection is not None
    assert b.burn_rate.tokens_per_minute == 1200 / 30
    assert b.burn_rate.tokens_per_minute_for_indicator == 1200 / 30
    assert b.burn_rate.cost_per_hour == 2.0
    assert b.projection.remaining_minutes == 240
    assert b.projection.total_tokens == 1200 + 40 * 240
    assert b.projection.total_cost == 9.0


def test_block_is_inactive_after_its_end_even_if_recent() -> None:
    t0 = at("2026-02-10T21:00:00+00:00")
    blocks = identify_blocks([entry(t0 + 30 * 60_000)], now_ms=t0 + 5 * H + 1)
    assert not blocks[0].is_active and blocks[0].burn_rate is None


def test_single_entry_active_block_has_no_burn_rate() -> None:
    t0 = at("2026-02-10T21:00:00+00:00")
    b = identify_blocks([entry(t0)], now_ms=t0 + 60_000)[0]
    assert b.is_active and b.burn_rate is None and b.projection is None
