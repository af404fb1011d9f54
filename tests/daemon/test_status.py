"""`baton status`: works with and without the daemon; JSON keys that scripts rely on; text for people."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import plans
from daemon.quota import OfficialFigure, QuotaSnapshot, UsagePoint, evaluate, to_ms
from daemon.status_view import NextAlert, Status, bar, next_alert, render_text, to_json
from tests.support.ledger_fixtures import run_baton
from tests.support.processes import ROOT, DaemonProcess, append, assistant_line


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return run_baton("status", *args, check=False, timeout=60)


def test_json_without_a_daemon_reads_the_transcripts_itself(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_QUOTA__PLAN", "custom")
    monkeypatch.setenv("BATON_QUOTA__TOKEN_LIMIT", "10000")
    path = claude_dir / "projects" / "-home-me-app" / "s.jsonl"
    append(
        path, [assistant_line(datetime.now(UTC) - timedelta(minutes=3), input_tokens=0, output_tokens=4200)]
    )
    done = status("--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["percent"] == 42.0 and data["level"] == "good" and data["source"] == "estimate"
    assert data["daemon_running"] is False and data["weekly"]["window"] == "seven_day"
    reset = datetime.fromisoformat(data["reset_at"])
    assert reset.utcoffset() is not None and reset > datetime.now(UTC)
    assert data["next_alert"] == {"threshold": 80, "tokens_to_go": 3800}


@pytest.mark.slow
def test_text_with_a_running_daemon_shows_it_and_the_alerts_sent(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    daemon = start_daemon(
        {"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "10000", "BATON_NOTIFY__BACKEND": "log"}
    )
    path = claude_dir / "projects" / "-home-me-app" / "s.jsonl"
    append(path, [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=8500)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 85.0, what="85 %")
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "10000"},
    )
    assert done.returncode == 0, done.stderr
    assert f"running (pid {daemon.pid})" in done.stdout
    assert "85.0%  DANGER" in done.stdout and "8,500 of 10,000 tokens (1,500 left)" in done.stdout
    assert "80% of the 5-hour window used (not shown on the desktop; it is in the log)" in done.stdout
    assert "Next alert  at 90%" in done.stdout


def snap_at(percent_tokens: int) -> QuotaSnapshot:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    return evaluate(
        [UsagePoint(to_ms(now) - 60_000, percent_tokens)], [], plans.resolve("custom", token_limit=1000), now
    )


def test_next_alert_is_the_lowest_threshold_ahead() -> None:
    assert next_alert(snap_at(500), [80, 90, 95]) == NextAlert(80, 300)
    assert next_alert(snap_at(900), [80, 90, 95]) == NextAlert(95, 50)
    assert next_alert(snap_at(960), [80, 90, 95]) is None


def test_bar_is_clamped() -> None:
    assert bar(0, 10) == "[..........]" and bar(55, 10) == "[######....]" and bar(140, 10) == "[##########]"


def test_no_window_running_says_so_and_shows_no_reset_for_it() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    snap = evaluate([], [], plans.resolve("pro"), now)
    st = Status(snap, None, next_alert(snap, [80]), [], UTC)
    text = render_text(st)
    first = text.splitlines()[0]
    assert first.startswith("5-hour window  none running, nothing used: your next message starts one")
    assert "Resets" not in text and "resets" not in first and "Burn rate" not in text
    assert "not running (start it: `baton service start`, or `baton run` in a terminal)" in text
    assert "  Limit       200,000 tokens per window (auto: Pro's figure, subscription unknown)" not in text
    assert "  Limit       200,000 tokens per window (pro plan, estimated limit)" in text
    data = to_json(st)
    assert data["percent"] == 0 and data["active"] is False and data["reset_at_local"] is None
    assert data["daemon_running"] is False and data["source"] == "estimate"


def test_a_running_window_shows_its_start_and_reset_and_the_week_as_a_rolling_estimate() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    points = [UsagePoint(to_ms(now - timedelta(days=2)), 50_000), UsagePoint(to_ms(now) - 60_000, 30_000)]
    snap = evaluate(points, [], plans.resolve("pro"), now)
    text = render_text(Status(snap, 42, next_alert(snap, [80]), [], UTC))
    assert text.splitlines()[0] == "5-hour window  started 14:00, resets 19:00 (in 4 h 30 min)"
    lines = text.splitlines()
    week = lines.index("Week          4.0% fresh · 80,000 of 2,000,000 tokens in the last 7 days")
    assert lines[week + 1].strip() == (
        "rolling 7 days (estimate): no fixed reset; the oldest usage drops out Sun 14:30"
    )
    assert "running (pid 42)" in text


def test_an_official_weekly_figure_shows_its_reset() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    fig = OfficialFigure(to_ms(now), "statusline", "seven_day", 41.0, to_ms(now + timedelta(days=2)))
    snap = evaluate([UsagePoint(to_ms(now) - 60_000, 1)], [fig], plans.resolve("pro"), now)
    week = next(
        line for line in render_text(Status(snap, None, None, [], UTC)).splitlines() if "Week" in line
    )
    assert week.startswith("Week          41.0% good · resets Thu 14:30 · official (statusline")
    assert "rolling" not in week


def test_watch_redraws_until_interrupted(baton_home: Path, claude_dir: Path) -> None:
    # An ignored SIGINT stays ignored across exec: when the tests themselves run with it ignored (a background
    # job of a non-interactive shell, as some runners start them), the child would never see the Ctrl-C. The
    # child gets the default disposition, as from a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "status", "--watch", "--interval", "0.5", "--no-ingest"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        out = ""
        assert proc.stdout is not None
        while out.count("5-hour window") < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            out += line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert "(refreshing; Ctrl-C to stop)" in out
    assert proc.returncode == 0  # Ctrl-C ends --watch cleanly, during a redraw as during the sleep


def test_a_projection_past_the_limit_says_the_limit_comes_first() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    snap = evaluate([UsagePoint(to_ms(now) - 60_000, 60_000)], [], plans.resolve("pro"), now)
    text = render_text(Status(snap, None, None, [], UTC))
    assert "Projected   the limit comes before the reset at this window's pace (" in text


def test_status_after_a_window_has_ended_says_none_is_running(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_QUOTA__PLAN", "max5")
    path = claude_dir / "projects" / "-home-me-app" / "s.jsonl"
    append(path, [assistant_line(datetime.now(UTC) - timedelta(hours=6), input_tokens=0, output_tokens=4200)])
    done = status()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "5-hour window  none running, nothing used: your next message starts one (5 hours from then)"
    )
    assert lines[1] == "  Limit       1,000,000 tokens per window (max5 plan, estimated limit)"
    assert lines[2].startswith("Week          0.0% fresh · 4,200 of 10,000,000 tokens in the last 7 days")
    assert "resets" not in done.stdout.lower()


def _official_55(limits: plans.Limits) -> QuotaSnapshot:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    fig = OfficialFigure(to_ms(now), "statusline", "five_hour", 55.0, to_ms(now + timedelta(hours=2)))
    return evaluate([UsagePoint(to_ms(now) - 600_000, 80_000)], [fig], limits, now)


def test_an_official_percent_with_an_unknown_plan_shows_no_made_up_tokens() -> None:
    """Newcomer #3: auto, no window hit a limit, no subscription: Pro's figure is a guess, not a fact."""
    snap = _official_55(plans.resolve("auto"))
    assert not snap.limit_known and snap.estimated_limit == 200_000
    assert (snap.tokens_limit, snap.tokens_remaining, snap.runway_minutes, snap.projected_percent) == (
        None,
        None,
        None,
        None,
    )
    text = render_text(Status(snap, None, next_alert(snap, [80, 90, 95]), [], UTC))
    assert "55% used, 45% left (official) · 80,000 tokens counted here" in text
    assert "Limit       unknown: set quota.plan for token figures (200,000 is a guess)" in text
    assert "90,000" not in text and "110,000" not in text and "tokens to go" not in text
    from daemon.hooks import planning_note

    data = snap.to_dict()
    data["percent"] = 85.0
    note = planning_note(data, snap.computed_at, UTC)
    assert "85%" in note and "tokens left" not in note


def test_an_official_percent_with_a_known_limit_gives_token_figures_that_add_up() -> None:
    snap = _official_55(plans.resolve("auto", subscription="pro"))
    assert snap.limit_known and snap.tokens_remaining == 90_000
    text = render_text(Status(snap, None, None, [], UTC))
    assert "~110,000 of 200,000 tokens (~90,000 left) at the official 55%" in text  # 110k + 90k = 200k


def test_an_estimate_against_a_guessed_limit_says_so() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    snap = evaluate([UsagePoint(to_ms(now) - 60_000, 170_000)], [], plans.resolve("auto"), now)
    assert snap.percent == 85.0 and snap.tokens_remaining is None and snap.weekly is not None
    assert snap.weekly.tokens_limit is None and snap.weekly.estimated_limit == 2_000_000
    text = render_text(Status(snap, None, None, [], UTC))
    assert "170,000 tokens (85% of a guessed 200,000)" in text
    from daemon import alerts

    meters = alerts.quota_meters(snap, [80, 90, 95], [80, 90, 95])
    assert [m.kind for m in meters] == ["five_hour"]  # no weekly alerts from a guessed weekly limit
    (alert,) = [a for a in alerts.due(meters, [], UTC, to_ms(now)) if a.send]
    assert "guessed limit of 200,000 tokens" in alert.body and "tokens left" not in alert.body


def test_status_says_which_tokens_it_counts(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newcomer review #3: `report blocks` (all kinds) and `status` (no cache reads) differ: say why."""
    monkeypatch.setenv("BATON_QUOTA__PLAN", "custom")
    monkeypatch.setenv("BATON_QUOTA__TOKEN_LIMIT", "200000")
    line = assistant_line(
        datetime.now(UTC) - timedelta(minutes=3),
        input_tokens=962,
        output_tokens=7000,
        cache_creation=10_000,
        cache_read=88_231,
    )
    append(claude_dir / "projects" / "-home-me-app" / "s.jsonl", [line])
    text = status()
    assert text.returncode == 0, text.stderr
    assert (
        "  Used        17,962 of 200,000 tokens (182,038 left), counting input + output + cache writes"
        in text.stdout.splitlines()
    )
    data = json.loads(status("--json").stdout)
    assert data["tokens_used"] == 17_962  # the 88,231 cache reads are not counted
    assert data["counted_token_kinds"] == ["input", "output", "cache_creation"]
    assert data["weekly"]["counted_token_kinds"] == ["input", "output", "cache_creation"]
    official = render_text(Status(_official_55(plans.resolve("pro")), None, None, [], UTC))
    assert "80,000 tokens counted here (input + output + cache writes)" in official
