"""Alert decisions: once per window per threshold, across sources; superseded thresholds; reset notices."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from daemon import plans
from daemon.alerts import RESET, Fired, Meter, budget_meter, due, quota_meters
from daemon.quota import HOUR_MS, MINUTE_MS, UsagePoint, evaluate, to_ms

T0 = to_ms(datetime(2026, 3, 10, 14, 0, tzinfo=UTC))
TH = (80, 90, 95)


def meter(percent: float, start: int = T0, end: int = T0 + 5 * HOUR_MS, source: str = "estimate") -> Meter:
    return Meter("five_hour", start, end, percent, source, TH, tokens_remaining=40_000, runway_minutes=27.4)


def fired_from(alerts: list, delivered: bool = True) -> list[Fired]:  # type: ignore[type-arg]
    return [Fired(a.kind, a.threshold, a.window_start_ms, a.window_end_ms, delivered) for a in alerts]


def test_80_fires_once_with_planning_text() -> None:
    now = T0 + HOUR_MS
    first = due([meter(80.0)], [], UTC, now)
    assert [(a.threshold, a.send) for a in first] == [(80, True)]
    assert first[0].title == "80% of the 5-hour window used"
    assert "Strategic planning time" in first[0].body and "40,000 tokens left" in first[0].body
    assert "about 27 min" in first[0].body and "baton handoff new" in first[0].body
    assert due([meter(85.0)], fired_from(first), UTC, now) == []


def test_79_99_does_not_fire() -> None:
    assert due([meter(79.99)], [], UTC, T0) == []


def test_90_and_95_texts_say_what_to_do() -> None:
    ninety = due([meter(90.0)], [Fired("five_hour", 80, T0, T0 + 5 * HOUR_MS)], UTC, T0)[0]
    assert (
        ninety.title == "90% of the 5-hour window used"
        and "Wrap up" in ninety.body
        and "commit" in ninety.body
    )
    fired = [Fired("five_hour", t, T0, T0 + 5 * HOUR_MS) for t in (80, 90)]
    ninety_five = due([meter(95.0)], fired, UTC, T0)[0]
    assert ninety_five.title == "95% of the 5-hour window used" and ninety_five.body.startswith("Save now")


def test_several_thresholds_crossed_at_once_send_only_the_highest() -> None:
    alerts = due([meter(96.0)], [], UTC, T0)
    assert [(a.threshold, a.send) for a in alerts] == [(80, False), (90, False), (95, True)]
    assert due([meter(97.0)], fired_from(alerts), UTC, T0) == []


def test_official_figure_for_an_overlapping_window_does_not_repeat_the_estimates_alert() -> None:
    est = due([meter(81.0)], [], UTC, T0)
    official = meter(83.0, start=T0 + HOUR_MS - 400, end=T0 + 6 * HOUR_MS - 400, source="official")
    assert due([official], fired_from(est), UTC, T0 + 2 * HOUR_MS) == []


def test_an_estimate_alert_seconds_before_the_official_reset_is_not_repeated_by_the_official_figure() -> None:
    """The estimate's block starts at the whole hour (14:00), the official window ends at 14:00:14: they
    overlap by 14 s only, but the alert fired inside the official window, so it is that window's."""
    fired_at = T0 + 10_000
    est = [replace(f, fired_ms=fired_at) for f in fired_from(due([meter(97.0)], [], UTC, fired_at))]
    official = meter(97.0, start=T0 + 14_000 - 5 * HOUR_MS, end=T0 + 14_000, source="official")
    assert due([official], est, UTC, fired_at + 2_000) == []


def test_an_alert_in_the_last_instant_of_a_window_does_not_silence_the_next_one() -> None:
    """Two official windows that disagree on the reset by 300 ms: the next window's 80 % still fires."""
    end = T0 + 5 * HOUR_MS
    old = [Fired("five_hour", 80, T0, end, True, end - 100)]
    nxt = meter(85.0, start=end - 300, end=end - 300 + 5 * HOUR_MS, source="official")
    assert [(a.threshold, a.send) for a in due([nxt], old, UTC, end + HOUR_MS, reset_notice=False)] == [
        (80, True)
    ]


def test_an_alert_fired_after_its_window_had_reset_does_not_silence_the_new_window() -> None:
    """The estimate alerted on the old block after the official reset (learned later): the new window is not
    the old one, and its own 80 % still fires."""
    reset = T0 + 2 * HOUR_MS
    late = [Fired("five_hour", 80, T0, T0 + 5 * HOUR_MS, True, reset + MINUTE_MS * 5)]
    new = replace(
        meter(85.0, start=reset, end=reset + 5 * HOUR_MS, source="official"), previous_reset_ms=reset
    )
    assert [(a.threshold, a.send) for a in due([new], late, UTC, reset + HOUR_MS, reset_notice=False)] == [
        (80, True)
    ]


def test_next_window_fires_again_and_sends_one_reset_notice() -> None:
    fired = fired_from(due([meter(96.0)], [], UTC, T0))
    later = T0 + 5 * HOUR_MS + 10 * MINUTE_MS
    nxt = meter(0.0, start=T0 + 5 * HOUR_MS, end=T0 + 10 * HOUR_MS)
    alerts = due([nxt], fired, UTC, later)
    assert [(a.threshold, a.send) for a in alerts] == [(RESET, True)]
    assert alerts[0].title == "Quota is back: the 5-hour window reset" and "19:00" in alerts[0].body
    fired += fired_from(alerts)
    assert due([nxt], fired, UTC, later + MINUTE_MS) == []
    again = due([meter(80.0, start=T0 + 5 * HOUR_MS, end=T0 + 10 * HOUR_MS)], fired, UTC, later)
    assert [a.threshold for a in again] == [80]


def test_no_reset_notice_while_an_overlapping_official_window_is_open() -> None:
    fired = [Fired("five_hour", 80, T0, T0 + 5 * HOUR_MS)]
    official = meter(85.0, start=T0 + HOUR_MS, end=T0 + 6 * HOUR_MS, source="official")
    assert due([official], fired, UTC, T0 + 5 * HOUR_MS + MINUTE_MS) == []


def test_reset_notice_can_be_turned_off() -> None:
    fired = [Fired("five_hour", 80, T0, T0 + 5 * HOUR_MS)]
    assert due([], fired, UTC, T0 + 6 * HOUR_MS, reset_notice=False) == []


def test_weekly_and_budget_meters_have_their_own_titles() -> None:
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    points = [UsagePoint(to_ms(now) - 1000, 1_700_000)]
    snap = evaluate(points, [], plans.resolve("max5", weekly_token_limit=2_000_000), now)
    meters = quota_meters(snap, TH, TH)
    alerts = due(meters, [], UTC, to_ms(now))
    titles = {a.title for a in alerts if a.send}
    assert "95% of the 5-hour window used" in titles and "80% of the weekly quota used" in titles
    budget = budget_meter("daily", T0, T0 + 24 * HOUR_MS, 9.0, 10.0, TH)
    (b,) = [a for a in due([budget], [], UTC, T0) if a.send]
    assert b.title == "90% of the daily budget spent" and "$9.00 of $10.00" in b.body


def test_alerts_show_reset_time_in_the_persons_zone() -> None:
    from zoneinfo import ZoneInfo

    alert = due([meter(80.0)], [], ZoneInfo("America/Los_Angeles"), T0 + HOUR_MS)[0]
    assert "resets at 12:00" in alert.body  # 19:00 UTC on 2026-03-10 is 12:00 PDT
    assert timedelta(hours=5)  # windows are real hours; display only converts


def test_after_an_official_reset_the_new_window_alerts_again_and_the_old_one_gets_its_notice() -> None:
    """Alerts recorded against the estimate's block (14:00-19:00) while the official window reset at 16:00:
    after 16:00 the old window is over (one "quota is back"), and the new one's 80 % fires again."""
    reset = T0 + 2 * HOUR_MS
    old = [Fired("five_hour", t, T0, T0 + 5 * HOUR_MS) for t in TH]
    now = reset + 30 * MINUTE_MS
    new = Meter("five_hour", reset, reset + 5 * HOUR_MS, 81.0, "estimate", TH, previous_reset_ms=reset)
    got = due([new], old, UTC, now)
    assert [(a.threshold, a.send) for a in got] == [(RESET, True), (80, True)]
    assert got[0].title == "Quota is back: the 5-hour window reset" and "16:00" in got[0].body
    assert got[0].window_start_ms == T0 and got[0].window_end_ms == reset


def test_body_says_whether_the_tokens_last_until_the_reset() -> None:
    slow = Meter("five_hour", T0, T0 + 5 * HOUR_MS, 80.0, "estimate", TH, 40_000, runway_minutes=600)
    (a,) = due([slow], [], UTC, T0 + HOUR_MS)
    assert a.body.endswith("40,000 tokens left, enough until the reset at 19:00 at the current pace.")
    fast = replace(slow, runway_minutes=27.4)
    (b,) = due([fast], [], UTC, T0 + HOUR_MS)
    assert (
        "40,000 tokens left: about 27 min at the current pace. The 5-hour window resets at 19:00." in b.body
    )
    assert b.body.startswith(
        "Strategic planning time: write the handoff for the next session (baton handoff new"
    )


def test_a_rolling_weekly_estimate_never_claims_a_reset() -> None:
    week = Meter("seven_day", T0, T0 + 7 * 24 * HOUR_MS, 81.0, "estimate", TH, 9_000, 30.0, rolling=True)
    (a,) = due([week], [], UTC, T0 + HOUR_MS)
    assert a.title == "80% of the weekly quota used" and "reset" not in a.body
    assert "It is a rolling 7 days: the oldest usage in it drops out Tue 17 Mar 14:00." in a.body
