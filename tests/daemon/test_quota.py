"""The quota logic: levels at every boundary, ccusage's blocks, sources, burn rate, runway, DST and zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon import plans
from daemon.quota import (
    HOUR_MS,
    MINUTE_MS,
    OfficialFigure,
    UsagePoint,
    calendar_periods,
    evaluate,
    format_local,
    identify_blocks,
    level_for,
    to_ms,
    window_totals,
)

T0 = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)
PRO = plans.resolve("pro")


def at(minutes: float, tokens: int = 1000, cost: float = 0.0) -> UsagePoint:
    return UsagePoint(to_ms(T0) + int(minutes * MINUTE_MS), tokens, cost)


@pytest.mark.parametrize(
    ("percent", "level"),
    [
        (0, "fresh"),
        (9.99, "fresh"),
        (10, "excellent"),
        (24.99, "excellent"),
        (25, "good"),
        (49.99, "good"),
        (50, "moderate"),
        (79.99, "moderate"),
        (80, "danger"),
        (89.99, "danger"),
        (90, "critical"),
        (94.99, "critical"),
        (95, "emergency"),
        (100, "emergency"),
        (140, "emergency"),
    ],
)
def test_level_boundaries(percent: float, level: str) -> None:
    assert level_for(percent) == level


def test_block_starts_at_the_utc_hour_of_its_first_entry_and_lasts_five_hours() -> None:
    snap = evaluate([at(0)], [], PRO, T0 + timedelta(minutes=30))
    assert snap.window_start == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    assert snap.reset_at == datetime(2026, 3, 10, 19, 0, tzinfo=UTC)
    assert snap.active and snap.source == "estimate" and snap.tokens_used == 1000


def test_new_block_after_five_hours_from_start_or_a_five_hour_gap() -> None:
    blocks = identify_blocks([at(0), at(200), at(340), at(341 + 301)])
    assert [b.tokens for b in blocks] == [2000, 1000, 1000]
    assert blocks[1].start_ms == to_ms(datetime(2026, 3, 10, 20, 0, tzinfo=UTC))


def test_exactly_five_hours_after_start_stays_in_the_block() -> None:
    start = to_ms(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
    points = [UsagePoint(start, 1), UsagePoint(start + 5 * HOUR_MS, 1)]
    assert len(identify_blocks(points)) == 1
    assert len(identify_blocks([*points, UsagePoint(start + 5 * HOUR_MS + 1, 1)])) == 2


def test_idle_after_the_block_ends_is_fresh_with_nothing_used() -> None:
    snap = evaluate([at(0, 150_000)], [], PRO, T0 + timedelta(hours=5))
    assert not snap.active and snap.percent == 0 and snap.level == "fresh" and snap.tokens_used == 0


def test_percent_tokens_remaining_and_levels_against_the_pro_limit() -> None:
    snap = evaluate([at(0, 100_000), at(10, 60_000)], [], PRO, T0 + timedelta(minutes=20))
    assert snap.tokens_limit == 200_000
    assert snap.percent == 80.0 and snap.level == "danger"
    assert snap.tokens_remaining == 40_000


def test_burn_rate_recent_and_window_runway_and_projection() -> None:
    points = [at(0, 30_000), at(50, 10_000), at(55, 10_000)]
    now = T0 + timedelta(minutes=60)
    snap = evaluate(points, [], PRO, now)
    assert snap.burn_rate_recent == 2000.0  # 20k in the last 10 minutes
    assert snap.burn_rate_window == round(50_000 / 80, 1)  # since the window opened at 14:00
    assert snap.runway_minutes == round(150_000 / 2000, 1)
    minutes_left = (snap.reset_at - now).total_seconds() / 60
    assert snap.projected_tokens == round(50_000 + 50_000 / 80 * minutes_left)


def test_no_recent_use_falls_back_to_the_window_pace_for_runway() -> None:
    snap = evaluate([at(0, 60_000)], [], PRO, T0 + timedelta(minutes=60))
    assert snap.burn_rate_recent == 0 and snap.runway_minutes == round(140_000 / 750, 1)


def test_official_statusline_figure_wins_while_its_window_is_open() -> None:
    resets = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    fig = OfficialFigure(to_ms(T0), "statusline", "five_hour", 55.0, to_ms(resets))
    snap = evaluate([at(0, 1000)], [fig], PRO, T0 + timedelta(minutes=5))
    assert (snap.source, snap.source_detail, snap.percent, snap.level) == (
        "official",
        "statusline",
        55.0,
        "moderate",
    )
    assert snap.reset_at == resets and snap.window_start == resets - timedelta(hours=5)
    assert snap.tokens_remaining == 90_000


def test_official_figure_past_its_reset_is_ignored() -> None:
    fig = OfficialFigure(to_ms(T0), "statusline", "five_hour", 55.0, to_ms(T0 + timedelta(minutes=1)))
    snap = evaluate([at(0, 1000)], [fig], PRO, T0 + timedelta(minutes=2))
    assert snap.source == "estimate"


def test_limit_message_means_limited_at_100_percent_until_its_reset() -> None:
    resets = T0 + timedelta(hours=2)
    figs = [
        OfficialFigure(to_ms(T0), "statusline", "five_hour", 70.0, to_ms(resets)),
        OfficialFigure(to_ms(T0) - 1, "limit_message", "five_hour", 100.0, to_ms(resets)),
    ]
    snap = evaluate([at(0)], figs, PRO, T0 + timedelta(minutes=1))
    assert snap.limited and snap.percent == 100 and snap.source_detail == "limit_message"


def test_weekly_window_rolls_over_seven_days_and_uses_official_seven_day_figures() -> None:
    old = UsagePoint(to_ms(T0 - timedelta(days=8)), 999_999)
    points = [old, UsagePoint(to_ms(T0 - timedelta(days=2)), 500_000), at(0, 100_000)]
    snap = evaluate(points, [], PRO, T0 + timedelta(minutes=1))
    assert snap.weekly is not None
    assert snap.weekly.tokens_used == 600_000 and snap.weekly.tokens_limit == 2_000_000
    assert snap.weekly.percent == 30.0 and snap.weekly.reset_at == T0 - timedelta(days=2) + timedelta(days=7)
    fig = OfficialFigure(to_ms(T0), "statusline", "seven_day", 82.0, to_ms(T0 + timedelta(days=3)))
    assert evaluate(points, [fig], PRO, T0 + timedelta(minutes=1)).weekly.percent == 82.0  # type: ignore[union-attr]


def test_custom_cost_and_message_limits_take_the_most_used_dimension() -> None:
    limits = plans.resolve("custom", cost_limit=10.0, message_limit=4)
    snap = evaluate([at(0, 10, 2.0), at(1, 10, 2.0), at(2, 10, 1.0)], [], limits, T0 + timedelta(minutes=3))
    assert snap.percent == 75.0 and snap.tokens_limit is None and snap.tokens_remaining is None


def test_snapshot_json_has_iso_times_with_offset() -> None:
    data = evaluate([at(0)], [], PRO, T0 + timedelta(minutes=1)).to_dict()
    assert data["reset_at"] == "2026-03-10T19:00:00+00:00" and data["weekly"]["window"] == "seven_day"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        evaluate([], [], PRO, datetime(2026, 1, 1))


def test_window_spanning_a_dst_change_is_still_five_real_hours() -> None:
    # New York springs forward at 2026-03-08 07:00 UTC (02:00 -> 03:00 local).
    ny = ZoneInfo("America/New_York")
    first = datetime(2026, 3, 8, 0, 30, tzinfo=ny)  # 05:30 UTC
    snap = evaluate([UsagePoint(to_ms(first), 1)], [], PRO, first + timedelta(minutes=10))
    assert snap.reset_at - snap.window_start == timedelta(hours=5)
    assert format_local(snap.reset_at, ny, now=first) == "06:00"  # 10:00 UTC is 06:00 EDT, not 05:00


def test_half_hour_zone_shows_the_utc_hour_floor_at_half_past() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    now = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)
    snap = evaluate([UsagePoint(to_ms(now), 1)], [], PRO, now)
    assert format_local(snap.reset_at, kolkata, now=now) == "Wed 00:30"
    assert format_local(snap.reset_at, ZoneInfo("UTC"), now=now) == "19:00"


def test_reset_on_another_local_day_shows_the_weekday() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    assert format_local(now + timedelta(hours=5), tokyo, now=now) == "Wed 02:00"


def test_calendar_periods_on_dst_days_are_23_and_25_hours() -> None:
    paris = ZoneInfo("Europe/Paris")
    spring = calendar_periods(datetime(2026, 3, 29, 12, 0, tzinfo=UTC), paris)["daily"]
    autumn = calendar_periods(datetime(2026, 10, 25, 12, 0, tzinfo=UTC), paris)["daily"]
    assert spring[1].timestamp() - spring[0].timestamp() == 23 * 3600
    assert autumn[1].timestamp() - autumn[0].timestamp() == 25 * 3600


def test_calendar_week_starts_monday_and_month_rolls_over_the_year() -> None:
    periods = calendar_periods(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), ZoneInfo("Pacific/Auckland"))
    assert periods["monthly"][0] == datetime(2027, 1, 1, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert periods["weekly"][0].weekday() == 0


def test_window_totals_split_limited_and_completed_blocks() -> None:
    blocks = identify_blocks([at(0, 100), at(400, 300), at(1000, 50)])
    limited, completed = window_totals(blocks, [to_ms(T0) + 401 * MINUTE_MS], to_ms(T0) + 1001 * MINUTE_MS)
    assert completed == [100, 300] and limited == [300]


def test_auto_plan_uses_p90_of_windows_that_hit_the_limit() -> None:
    limits = plans.resolve("auto", limited_window_totals=[100_000 * i for i in range(1, 11)])
    assert limits.tokens == 910_000 and "P90 of 10 windows" in limits.label


def test_auto_plan_without_limit_history_or_subscription_falls_back_to_pro_with_a_label() -> None:
    assert plans.resolve("auto").tokens == 200_000
    assert plans.resolve("auto").label == "auto: Pro's figure, subscription unknown"
    big = plans.resolve("auto", completed_window_totals=[50_000, 700_000])
    assert big.tokens == 700_000 and "largest past window" in big.label


def test_auto_plan_without_limit_history_uses_the_subscription_of_the_claude_login() -> None:
    max20 = plans.resolve("auto", subscription="max20", completed_window_totals=[700_000])
    assert max20.tokens == 4_000_000 and max20.label == "auto: your Max 20x subscription"
    assert max20.weekly_tokens == 40_000_000
    assert plans.resolve("auto", subscription="max5").label == "auto: your Max 5x subscription"
    # the windows that hit a limit still come first
    p90 = plans.resolve("auto", subscription="max20", limited_window_totals=[900_000])
    assert p90.tokens == 900_000 and "P90 of 1 window" in p90.label


@pytest.mark.parametrize(
    ("kind", "tier", "plan"),
    [
        ("max", "default_claude_max_20x", "max20"),
        ("max", "default_claude_max_5x", "max5"),
        ("max", None, "max5"),
        ("pro", "default_claude_pro", "pro"),
        ("pro", None, "pro"),
        (None, None, None),
        ("enterprise", "default_raven", None),
    ],
)
def test_subscription_fields_map_to_a_plan(kind: str | None, tier: str | None, plan: str | None) -> None:
    assert plans.plan_from_subscription(kind, tier) == plan


def test_plans_and_overrides() -> None:
    assert plans.resolve("max5").tokens == 1_000_000 and plans.resolve("max20").tokens == 4_000_000
    assert plans.resolve("pro", token_limit=123).tokens == 123
    assert plans.resolve("pro", weekly_token_limit=5).weekly_tokens == 5
    with pytest.raises(ValueError, match="custom"):
        plans.resolve("custom")
    with pytest.raises(ValueError, match="unknown plan"):
        plans.resolve("team")


def test_current_block_from_the_last_long_gap_equals_the_full_history() -> None:
    import random

    from daemon.quota import _after_last_gap

    rng = random.Random(7)
    for _ in range(200):
        ts, points = 0, []
        for _ in range(rng.randint(1, 60)):
            ts += rng.choice([rng.randint(1, 90), rng.randint(200, 400)]) * MINUTE_MS
            points.append(UsagePoint(ts, rng.randint(1, 9)))
        assert identify_blocks(points)[-1] == identify_blocks(_after_last_gap(points, 5 * HOUR_MS))[-1]


def test_after_an_official_reset_the_new_window_starts_fresh() -> None:
    """Heavy use 10:05-13:50 and a statusline figure of 97 % resetting at 14:00: at 14:10 the old usage
    must not count (ccusage's block 10:00-15:00 is still "active", the estimate would say ~97 %)."""
    day = datetime(2026, 3, 10, tzinfo=UTC)
    points = [UsagePoint(to_ms(day + timedelta(hours=10, minutes=5 + 15 * i)), 13_000) for i in range(15)]
    reset = day + timedelta(hours=14)
    fig = OfficialFigure(
        to_ms(day + timedelta(hours=13, minutes=50)), "statusline", "five_hour", 97.0, to_ms(reset)
    )
    before = evaluate(points, [fig], PRO, reset - timedelta(minutes=5))
    assert before.source == "official" and before.percent == 97.0
    after = evaluate(points, [fig], PRO, reset + timedelta(minutes=10))
    assert (after.percent, after.tokens_used, after.active, after.source) == (0.0, 0, False, "estimate")
    assert after.level == "fresh" and after.window_start >= reset and after.previous_reset == reset
    from daemon.scheduler import quota_ready  # the scheduler's "has the quota really reset?" check

    assert quota_ready(after, reset + timedelta(minutes=10), 50.0).ready
    assert quota_ready(after.to_dict(), reset + timedelta(minutes=10), 50.0).ready
    # new usage after the reset counts alone, in a window that starts at the reset
    later = [*points, UsagePoint(to_ms(reset + timedelta(minutes=12)), 4_000)]
    fresh = evaluate(later, [fig], PRO, reset + timedelta(minutes=15))
    assert fresh.active and fresh.tokens_used == 4_000 and fresh.percent == 2.0
    assert fresh.window_start == reset and fresh.reset_at == reset + timedelta(hours=5)


def test_a_reset_off_the_hour_clamps_the_new_window_to_start_at_it() -> None:
    reset = T0 + timedelta(minutes=17)  # 14:37
    fig = OfficialFigure(to_ms(T0), "limit_message", "five_hour", 100.0, to_ms(reset))
    points = [at(0, 150_000), at(30, 2_000)]  # 14:20 (before the reset) and 14:50 (after)
    snap = evaluate(points, [fig], PRO, T0 + timedelta(minutes=40))
    assert snap.window_start == reset and snap.tokens_used == 2_000 and not snap.limited


def test_a_past_official_weekly_reset_starts_the_week_fresh() -> None:
    reset = T0 - timedelta(hours=1)
    fig = OfficialFigure(to_ms(T0 - timedelta(days=1)), "statusline", "seven_day", 90.0, to_ms(reset))
    points = [UsagePoint(to_ms(T0 - timedelta(days=3)), 900_000), at(0, 100_000)]
    week = evaluate(points, [fig], PRO, T0 + timedelta(minutes=1)).weekly
    assert week is not None and week.source == "estimate" and week.tokens_used == 100_000


def test_the_weekly_estimate_is_rolling_and_says_when_its_oldest_usage_leaves() -> None:
    oldest = T0 - timedelta(days=2)
    points = [UsagePoint(to_ms(oldest), 500_000), at(0, 100_000)]
    week = evaluate(points, [], PRO, T0 + timedelta(minutes=1)).weekly
    assert week is not None and week.rolling and week.reset_at == oldest + timedelta(days=7)
    assert week.to_dict()["rolling"] is True
    fig = OfficialFigure(to_ms(T0), "statusline", "seven_day", 82.0, to_ms(T0 + timedelta(days=3)))
    official = evaluate(points, [fig], PRO, T0 + timedelta(minutes=1)).weekly
    assert official is not None and not official.rolling and official.reset_at == T0 + timedelta(days=3)


def test_a_window_shorter_than_an_hour_starts_at_the_second_of_its_first_usage() -> None:
    """Tests run the daemon with `window_hours = 0.004` (14.4 s): the window must hold the usage that opened
    it rather than start at the top of the hour and be over before that usage."""
    first = T0 + timedelta(seconds=7, milliseconds=300)
    snap = evaluate(
        [UsagePoint(to_ms(first), 500)], [], PRO, first + timedelta(seconds=2), window_hours=0.004
    )
    assert snap.active and snap.tokens_used == 500
    assert snap.window_start == T0 + timedelta(seconds=7)
    assert snap.reset_at == snap.window_start + timedelta(seconds=14.4)
    assert not evaluate(
        [UsagePoint(to_ms(first), 500)], [], PRO, first + timedelta(seconds=15), window_hours=0.004
    ).active
