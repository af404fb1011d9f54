"""`baton statusline` with Claude Code's real stdin shape, without rate_limits, and with garbage."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import plans, snapshot
from daemon.paths import BatonPaths
from daemon.quota import UsagePoint, evaluate, to_ms

RESETS = int(time.time()) + 3 * 3600


def stdin_json(rate_limits: bool = True) -> bytes:
    """The object Claude Code 2.1.197 writes to the statusline command (claude-data-formats.md §5)."""
    data = {
        "session_id": "0b7e2c1a-5d7e-4c3e-9a41-2f1c9d0e8a11",
        "transcript_path": "/home/me/.claude/projects/-home-me-app/0b7e2c1a.jsonl",
        "cwd": "/home/me/app",
        "permission_mode": "default",
        "session_name": "fix login",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
        "workspace": {"current_dir": "/home/me/app", "project_dir": "/home/me/app", "added_dirs": []},
        "version": "2.1.197",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 1.87, "total_duration_ms": 252000, "total_api_duration_ms": 61000},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521, "used_percentage": 8},
        "exceeds_200k_tokens": False,
        "fast_mode": False,
        "effort": {"level": "high"},
        "thinking": {"enabled": True},
    }
    if rate_limits:
        data["rate_limits"] = {
            "five_hour": {"used_percentage": 55.0, "resets_at": RESETS},
            "seven_day": {"used_percentage": 82.0, "resets_at": RESETS + 86400},
        }
    return json.dumps(data).encode()


def run(stdin: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        input=stdin.decode("utf-8", "replace"),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_rate_limits_are_recorded_and_shown(baton_home: Path) -> None:
    done = run(stdin_json())
    assert done.returncode == 0, done.stderr
    local = datetime.fromtimestamp(RESETS).astimezone().strftime("%H:%M")
    assert done.stdout.startswith("5h 55% moderate · resets ") and "7d 82% · official" in done.stdout
    assert local in done.stdout
    paths = BatonPaths.from_env()
    with sqlite3.connect(paths.ledger_db) as conn:
        rows = conn.execute(
            "SELECT source, window, used_percent, resets_at_ms FROM official_figures"
        ).fetchall()
    assert sorted(rows) == [
        ("statusline", "five_hour", 55.0, RESETS * 1000),
        ("statusline", "seven_day", 82.0, (RESETS + 86400) * 1000),
    ]
    assert (paths.data_dir / "official.stamp").exists()
    assert oct(paths.ledger_db.stat().st_mode & 0o777) == "0o600"
    run(stdin_json())  # the same figures again: no new rows
    with sqlite3.connect(paths.ledger_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM official_figures").fetchone() == (2,)


def test_without_rate_limits_and_without_a_daemon_says_so(baton_home: Path) -> None:
    done = run(stdin_json(rate_limits=False))
    assert (done.returncode, done.stdout) == (0, "baton · no quota data yet\n")


def test_without_rate_limits_shows_the_daemons_snapshot(running_daemon: int) -> None:
    now = datetime.now(UTC)
    snap = evaluate([UsagePoint(to_ms(now - timedelta(minutes=5)), 120_000)], [], plans.resolve("pro"), now)
    snapshot.write(BatonPaths.from_env(), {**snap.to_dict(), "timezone": "UTC", "pid": running_daemon})
    done = run(stdin_json(rate_limits=False))
    assert done.returncode == 0
    assert done.stdout.startswith("5h ~60% moderate · resets ") and done.stdout.strip().endswith("estimate")


def test_with_no_window_running_no_reset_time_is_shown(running_daemon: int) -> None:
    now = datetime.now(UTC)
    snap = evaluate([UsagePoint(to_ms(now - timedelta(hours=6)), 120_000)], [], plans.resolve("pro"), now)
    snapshot.write(BatonPaths.from_env(), {**snap.to_dict(), "timezone": "UTC", "pid": running_daemon})
    done = run(stdin_json(rate_limits=False))
    assert (done.returncode, done.stdout) == (0, "5h 0% · no window yet · 7d ~6% · estimate\n")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not json",
        b"[1,2]",
        b"\xff\xfe\x00",
        b'{"rate_limits": {"five_hour": {"used_percentage": "x"}}}',
        b'{"rate_limits": {"five_hour": {"used_percentage": 1e999, "resets_at": -4}}}',
        b'{"rate_limits": 7}',
    ],
)
def test_garbage_on_stdin_still_prints_a_line_and_exits_0(baton_home: Path, garbage: bytes) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        input=garbage,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.decode().count("\n") == 1 and done.stderr == b""


def test_statusline_imports_nothing_heavy(baton_home: Path) -> None:
    code = (
        "import sys, io; sys.stdin = io.TextIOWrapper(io.BytesIO(b'{}'));"
        "from daemon.cli import main\n"
        "try:\n main(['statusline'])\nexcept SystemExit: pass\n"
        "heavy = ('sqlalchemy', 'pydantic', 'pydantic_settings', 'structlog')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_statusline_has_help_for_baton_help() -> None:
    from daemon import statusline

    assert statusline.command.name == "statusline"


def test_a_figure_whose_window_has_reset_is_not_shown(baton_home: Path) -> None:
    two_hours_ago = int(time.time()) - 2 * 3600  # a real reset, already past (not an implausible instant)
    stale = {"rate_limits": {"five_hour": {"used_percentage": 97.0, "resets_at": two_hours_ago}}}
    done = run(json.dumps(stale).encode())
    assert (done.returncode, done.stdout) == (0, "baton · no quota data yet\n")
