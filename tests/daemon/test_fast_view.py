"""The fast paths (statusline, prompt hook) never show a figure as newer than it is.

Newcomer review #2: after `baton statusline` recorded 30 %, a later input without `rate_limits` printed
"5h 91% critical ... official" from the snapshot of a daemon that had since stopped, and the prompt hook told
Claude to wrap up at 91 %.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon import official, snapshot
from daemon.paths import BatonPaths
from daemon.quota import HOUR_MS, OfficialFigure, format_local
from tests.support.processes import ROOT

NO_RATE_LIMITS = json.dumps({"session_id": "x", "model": {"id": "claude-opus-4-8"}})
PROMPT = json.dumps({"session_id": "x", "hook_event_name": "UserPromptSubmit", "prompt": "go on"})


def baton(*args: str, stdin: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=20,
        check=True,
    )
    assert done.stderr == ""
    return done.stdout


def line() -> str:
    return baton("statusline", stdin=NO_RATE_LIMITS).strip()


def hook() -> str:
    return baton("hook", "user-prompt-submit", stdin=PROMPT)


RESET_MS = (int(time.time()) // 60 + 100) * 60_000  # a reset 1 h 40 min or so ahead, on the minute


def record(
    percent: float, *, ago_min: float = 0, reset_ms: int = RESET_MS, window: str = "five_hour"
) -> None:
    """Store an official figure as `baton statusline` would have `ago_min` minutes ago."""
    now_ms = int(time.time() * 1000) - int(ago_min * 60_000)
    figure = OfficialFigure(now_ms, "statusline", window, percent, reset_ms)
    with sqlite3.connect(BatonPaths.from_env().ledger_db) as conn:
        official.record(conn, [figure])


def write_snapshot(percent: float, *, pid: int, written_ago_min: float = 0, **extra: Any) -> None:
    """The file a daemon with `pid` wrote `written_ago_min` minutes ago (an official 5-hour figure)."""
    now = datetime.now(UTC)
    data = {
        "window": "five_hour",
        "percent": percent,
        "level": "critical" if percent >= 90 else "good",
        "source": "official",
        "source_detail": "statusline",
        "reset_at": datetime.fromtimestamp(RESET_MS / 1000, UTC).isoformat(),
        "active": True,
        "limited": False,
        "tokens_remaining": 18_000,
        "runway_minutes": 20.0,
        "weekly": {"window": "seven_day", "percent": 82.0, "source": "official"},
        "written_at": (now - timedelta(minutes=written_ago_min)).isoformat(),
        "pid": pid,
        "timezone": "UTC",
        **extra,
    }
    snapshot.write(BatonPaths.from_env(), data)


def gone_pid() -> int:
    """The pid of a process that has exited (a daemon that has since stopped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stopped_daemons_snapshot_never_beats_a_newer_official_figure(baton_home: Path) -> None:
    write_snapshot(91.0, pid=gone_pid(), written_ago_min=30)
    record(30.0)
    assert line().startswith("5h 30% good · resets ") and line().endswith("· official")
    assert hook() == ""  # not "91% (CRITICAL) ... wrap up"


def test_without_a_running_daemon_the_newest_official_figure_wins_even_over_a_newer_snapshot(
    baton_home: Path,
) -> None:
    record(30.0, ago_min=1)
    write_snapshot(91.0, pid=gone_pid(), written_ago_min=0)
    assert line().startswith("5h 30% good · ")


def test_a_stopped_daemons_snapshot_alone_is_shown_with_its_age(baton_home: Path) -> None:
    write_snapshot(91.0, pid=gone_pid(), written_ago_min=125)
    # "Mon 00:23", in the snapshot's zone ("timezone": "UTC"), not the machine's
    reset = format_local(datetime.fromtimestamp(RESET_MS / 1000, UTC), UTC, now=datetime.now(UTC))
    assert line() == f"5h 91% critical · resets {reset} · 7d 82% · official · 2 h old, daemon stopped"
    note = hook()
    assert note.startswith("[baton] As of 2 hours ago (baton's daemon is not running, so it may be higher")
    assert "was at 91% (CRITICAL)" in note


def test_an_old_official_figure_says_how_old_it_is(baton_home: Path) -> None:
    record(85.0, ago_min=45)
    assert line().endswith("· official · 45 min old")
    assert hook().startswith("[baton] As of 45 minutes ago (the latest figure baton has), the 5-hour usage")
    record(86.0)  # a fresh one: no age
    assert line().endswith("· official") and "old" not in line()
    assert hook().startswith("[baton] The 5-hour usage window is at 86% (DANGER).")


def test_a_running_daemons_snapshot_is_shown_unless_a_newer_figure_says_otherwise(
    baton_home: Path, running_daemon: int
) -> None:
    record(88.0, ago_min=3)
    write_snapshot(88.0, pid=running_daemon, written_ago_min=2)
    assert line().startswith("5h 88% good · resets ") and "old" not in line()  # the daemon's snapshot
    assert "About 18,000 tokens left" in hook()  # ... with its token figures
    record(88.0)  # re-stamped, saying the same: still the snapshot, which already shows it
    assert "About 18,000 tokens left" in hook()
    record(93.0)  # newer than the snapshot and different: the daemon has not caught up yet
    assert line().startswith("5h 93% critical · resets ")
    assert "93% (CRITICAL)" in hook() and "tokens left" not in hook()


def test_a_snapshot_from_an_earlier_daemon_is_not_the_running_ones(
    baton_home: Path, running_daemon: int
) -> None:
    write_snapshot(91.0, pid=gone_pid(), written_ago_min=20)
    assert line().endswith("· 20 min old, daemon stopped")


def test_a_window_that_has_reset_is_never_shown_as_current(baton_home: Path) -> None:
    now = datetime.now(UTC)
    write_snapshot(97.0, pid=gone_pid(), reset_at=(now - timedelta(minutes=5)).isoformat())
    assert "97%" not in line() and "window reset" in line()
    assert hook() == ""


def test_only_a_weekly_figure_shows_the_week(baton_home: Path) -> None:
    record(82.0, window="seven_day", reset_ms=RESET_MS + 48 * HOUR_MS)
    assert line() == "7d 82% · official"
    assert hook() == ""
