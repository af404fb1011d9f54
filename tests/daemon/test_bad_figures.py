"""Implausible official figures: refused field by field when recorded, skipped when read, never a crash.

Newcomer review #1: a `resets_at` in milliseconds was stored, then `baton status` died with "year 58901 is
out of range" and the daemon logged `evaluation_failed` on every evaluation (no alert went out).
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon import official, plans
from daemon.paths import BatonPaths
from daemon.quota import DAY_MS, HOUR_MS, OfficialFigure, UsagePoint, evaluate, to_ms, usable
from tests.support.ledger_fixtures import run_baton
from tests.support.processes import ROOT, DaemonProcess, append, assistant_line

NOW_S = int(time.time())
IN_2H = NOW_S + 2 * 3600


def statusline(rate_limits: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        input=json.dumps({"session_id": "s", "rate_limits": rate_limits}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=20,
        check=False,
    )


def status(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_baton("status", *args, env=env, check=False, timeout=60)


def stored() -> list[tuple[Any, ...]]:
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:
        return conn.execute(
            "SELECT window, used_percent, resets_at_ms, ts_ms FROM official_figures ORDER BY id"
        ).fetchall()


def recent_usage(claude_dir: Path) -> None:
    """A message a few minutes ago, so a 5-hour window runs (the ledger's blocks)."""
    path = claude_dir / "projects" / "-home-me-app" / "s.jsonl"
    append(path, [assistant_line(datetime.now(UTC) - timedelta(minutes=3), input_tokens=0, output_tokens=10)])


def test_a_reset_in_milliseconds_is_refused_the_percent_kept_and_status_works(
    baton_home: Path, claude_dir: Path
) -> None:
    done = statusline({"five_hour": {"used_percentage": 42, "resets_at": IN_2H * 1000}})
    assert (done.returncode, done.stdout, done.stderr) == (0, "5h 42% good · official\n", "")
    [(window, percent, resets, _ts)] = stored()
    assert (window, percent, resets) == ("five_hour", 42.0, None)
    recent_usage(claude_dir)
    shown = status("--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["percent"], data["source"], data["source_detail"]) == (42.0, "official", "statusline")
    # the reset is the window the ledger shows running, not a made-up instant
    assert datetime.fromisoformat(data["reset_at"]) <= datetime.now(UTC) + timedelta(hours=5)


def test_a_far_past_reset_does_not_drop_a_valid_91_percent(baton_home: Path) -> None:
    done = statusline({"five_hour": {"used_percentage": 91, "resets_at": 1000}})
    assert (done.returncode, done.stdout) == (0, "5h 91% critical · official\n")
    assert [row[:3] for row in stored()] == [("five_hour", 91.0, None)]


def test_a_later_good_reset_is_borrowed_by_a_figure_without_one(baton_home: Path, claude_dir: Path) -> None:
    statusline({"five_hour": {"used_percentage": 40, "resets_at": IN_2H}})
    statusline({"five_hour": {"used_percentage": 47, "resets_at": "soon"}})
    recent_usage(claude_dir)
    data = json.loads(status("--json").stdout)
    assert data["percent"] == 47.0 and datetime.fromisoformat(data["reset_at"]).timestamp() == IN_2H


BAD_PERCENTS: list[object] = [150, -5, 100.5, 1e308, True, "42", None, [42], {"v": 1}]
BAD_RESETS: list[object] = [
    IN_2H * 1000,  # milliseconds
    1000,  # 1970
    -1,
    0,
    1e300,
    True,
    "1767380400",
    NOW_S - 9 * 86400,  # older than the quota ever reads
]


@pytest.mark.parametrize("window", ["five_hour", "seven_day"])
def test_nothing_out_of_range_is_ever_stored_and_status_never_crashes(
    baton_home: Path, claude_dir: Path, window: str
) -> None:
    other = "seven_day" if window == "five_hour" else "five_hour"
    good = {"used_percentage": 30, "resets_at": IN_2H + (86400 if other == "seven_day" else 0)}
    cases: list[dict[str, object]] = [{"used_percentage": p, "resets_at": IN_2H} for p in BAD_PERCENTS]
    cases += [{"used_percentage": 64, "resets_at": r} for r in BAD_RESETS]
    ahead = NOW_S + (2 * 86400 if window == "five_hour" else 9 * 86400)  # past the window's own horizon
    cases.append({"used_percentage": 64, "resets_at": ahead})
    for entry in cases:
        done = statusline({window: entry, other: good})
        assert done.returncode == 0 and done.stdout.count("\n") == 1 and done.stderr == "", entry
    # NaN and Infinity are what Python's json (and some writers) emit for non-finite floats
    for raw in (
        '{"%s":{"used_percentage":NaN,"resets_at":%d}}',
        '{"%s":{"used_percentage":64,"resets_at":Infinity}}',
    ):
        text = raw % (window, IN_2H) if "%d" in raw else raw % window
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "statusline"],
            input='{"rate_limits":' + text + "}",
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=20,
            check=False,
        )
        assert done.returncode == 0 and done.stdout.count("\n") == 1
    rows = stored()
    assert rows, "the good window and the kept percents are stored"
    for w, percent, resets, ts in rows:
        assert isinstance(percent, float) and 0 <= percent <= 100 and not math.isnan(percent)
        assert resets is None or ts - 8 * DAY_MS <= resets <= ts + (
            DAY_MS if w == "five_hour" else 8 * DAY_MS
        )
    assert {p for w, p, r, _ in rows if w == window} == {64.0}  # every bad percent refused, 64 always kept
    assert all(r is None for w, p, r, _ in rows if w == window)
    assert {(p, r) for w, p, r, _ in rows if w == other} == {(30.0, good["resets_at"] * 1000)}  # type: ignore[operator]
    recent_usage(claude_dir)
    shown = status("--json")
    assert shown.returncode == 0, shown.stderr
    json.loads(shown.stdout)


def _store_bad_rows() -> None:
    """Rows an older version (or a hand edit) left behind: every value that once crashed an evaluation."""
    now_ms = int(time.time() * 1000)
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:
        official.ensure_table(conn)
        conn.executemany(
            "INSERT INTO official_figures (ts_ms, source, window, used_percent, resets_at_ms) "
            "VALUES (?, 'statusline', ?, ?, ?)",
            [
                (now_ms, "five_hour", 42.0, (now_ms + 2 * HOUR_MS) * 1000),  # year 58901
                (now_ms, "seven_day", 1e300, now_ms + DAY_MS),
                (now_ms - 1000, "seven_day", "lots", now_ms + DAY_MS),
            ],
        )


def test_status_skips_stored_bad_rows_and_says_so_once(baton_home: Path, claude_dir: Path) -> None:
    recent_usage(claude_dir)
    assert status("--json").returncode == 0  # creates the ledger
    _store_bad_rows()
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:  # a limit message "resetting" in 3026
        now_ms = int(time.time() * 1000)
        conn.execute(
            "INSERT INTO limit_events (dedup_key, ts_ms, kind, reset_at_ms, text) VALUES (?, ?, ?, ?, ?)",
            ("bad", now_ms, "session", now_ms + 1000 * 365 * DAY_MS, "You've hit your limit"),
        )
    done = status("--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["source"] == "estimate" and data["weekly"]["source"] == "estimate"
    skipped = [line for line in done.stderr.splitlines() if "official_figure_skipped" in line]
    assert len(skipped) == 3, done.stderr  # the 5-hour row, the week's latest, the limit message; once each
    text = status()
    assert text.returncode == 0 and "5-hour window" in text.stdout


def test_evaluate_skips_figures_out_of_range() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    now_ms = to_ms(now)
    bad = [
        OfficialFigure(now_ms, "statusline", "five_hour", 42.0, (now_ms + HOUR_MS) * 1000),
        OfficialFigure(now_ms, "statusline", "five_hour", float("nan"), now_ms + HOUR_MS),
        OfficialFigure(now_ms, "statusline", "five_hour", -3.0, now_ms + HOUR_MS),
        OfficialFigure(now_ms, "statusline", "seven_day", 1e300, now_ms + DAY_MS),
        OfficialFigure(now_ms, "statusline", "seven_day", 50.0, -(2**62)),
        OfficialFigure(2**62, "statusline", "seven_day", 50.0, 2**62),
        OfficialFigure(now_ms, "oauth", "five_hour", 150.0, now_ms + HOUR_MS),
    ]
    assert not any(usable(f) for f in bad)
    snap = evaluate([UsagePoint(now_ms - 60_000, 1000)], bad, plans.resolve("pro"), now)
    assert snap.source == "estimate" and snap.weekly is not None and snap.weekly.source == "estimate"


def test_a_figure_without_a_reset_tells_only_the_window_running_when_it_was_fresh() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    now_ms = to_ms(now)
    points = [UsagePoint(now_ms - 20 * 60_000, 1000)]
    fresh = OfficialFigure(now_ms - 5 * 60_000, "statusline", "five_hour", 91.0, None)
    snap = evaluate(points, [fresh], plans.resolve("pro"), now)
    assert (snap.percent, snap.source, snap.level) == (91.0, "official", "critical")
    assert snap.reset_at == datetime(2026, 3, 10, 19, 0, tzinfo=UTC)  # the ledger's block
    old = OfficialFigure(now_ms - 40 * 60_000, "statusline", "five_hour", 91.0, None)
    assert evaluate(points, [old], plans.resolve("pro"), now).source == "estimate"  # no longer fresh
    idle = evaluate([], [fresh], plans.resolve("pro"), now)
    assert idle.source == "estimate"  # no window runs that it could belong to


def test_the_oauth_endpoint_cannot_store_a_percent_out_of_range(baton_home: Path) -> None:
    now_ms = int(time.time() * 1000)
    figures = [
        OfficialFigure(now_ms, "oauth", "five_hour", 240.0, now_ms + HOUR_MS),
        OfficialFigure(now_ms, "oauth", "seven_day", 12.0, now_ms * 1000),
    ]
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:
        assert official.record(conn, figures)
    assert [row[:3] for row in stored()] == [("seven_day", 12.0, None)]


@pytest.mark.slow
def test_the_daemon_still_alerts_with_bad_rows_stored(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    env = {"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "10000", "BATON_NOTIFY__BACKEND": "log"}
    daemon = start_daemon(env)
    _store_bad_rows()
    append(
        claude_dir / "projects" / "-home-me-app" / "s.jsonl",
        [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=8500)],
    )
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 85.0, what="85 %")
    done = status(env=env)
    assert "80% of the 5-hour window used" in done.stdout, done.stdout
    log = BatonPaths.from_env().log_file.read_text()
    assert "evaluation_failed" not in log and "evaluation_failed" not in daemon.output()
    assert log.count("official_figure_skipped") == 2  # each bad row once, however often it evaluated


def test_an_oversized_session_id_is_not_stored(baton_home: Path) -> None:
    limits = {"five_hour": {"used_percentage": 5, "resets_at": IN_2H}}
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        input=json.dumps({"session_id": "x" * 100_000, "rate_limits": limits}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=20,
        check=False,
    )
    assert done.stdout.startswith("5h 5% fresh · resets ")
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:
        assert conn.execute("SELECT session_id FROM official_figures").fetchall() == [(None,)]
