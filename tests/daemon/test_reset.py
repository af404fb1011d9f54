"""A window's reset with a real `baton run`: the quota starts fresh and one "quota is back" notice comes.

The configuration shrinks the window (`quota.window_hours = 0.004`, 14.4 s) so a whole window passes within
the test; the daemon wakes at the reset itself rather than at its minute tick.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.desktop import NotificationServer
from tests.support.processes import ROOT, DaemonProcess, alert_on_record, append, assistant_line

BACK = "Quota is back: the 5-hour window reset"


def transcript(claude: Path) -> Path:
    return claude / "projects" / "-home-me-app" / "s1.jsonl"


@pytest.mark.slow
def test_a_short_window_resets_with_one_notice_that_survives_kill_9(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    env = {
        "BATON_QUOTA__PLAN": "custom",
        "BATON_QUOTA__TOKEN_LIMIT": "10000",
        "BATON_QUOTA__WINDOW_HOURS": "0.004",
    }
    daemon = start_daemon(env)
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=8500)])
    (eighty,) = notifications.wait_for(1)
    assert eighty["summary"] == "80% of the 5-hour window used"
    snap = daemon.snapshot() or {}
    assert snap["active"] is True and snap["percent"] == 85.0
    back = notifications.wait_for(2, timeout=30)[1]
    assert back["summary"] == BACK and "The next message starts a fresh window." in back["body"]
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("active") is False, what="the idle window")
    snap = daemon.snapshot() or {}
    assert snap["percent"] == 0 and snap["tokens_used"] == 0
    # The notice reaches the desktop just before its delivery is recorded; a kill -9 in between re-sends it.
    daemon.wait_until(lambda: alert_on_record(baton_home, 0), what="the notice on record")
    daemon.kill9()
    daemon = start_daemon(env)
    time.sleep(0.5)
    assert [n["summary"] for n in notifications.received()] == ["80% of the 5-hour window used", BACK]


@pytest.mark.slow
def test_after_the_official_reset_the_quota_reads_fresh_not_the_old_windows_estimate(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """97 % used (estimate and statusline agree); the statusline's window resets a few seconds later. The
    estimate's block is still open, but the daemon must now say 0 %, and say the quota is back."""
    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "10000"})
    now = datetime.now(UTC)
    append(
        transcript(claude_dir),
        [assistant_line(now - timedelta(seconds=20), input_tokens=0, output_tokens=9700)],
    )
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 97.0, what="97 % estimated")
    resets = math.ceil(time.time()) + 4
    payload = {
        "session_id": "s",
        "rate_limits": {"five_hour": {"used_percentage": 97.0, "resets_at": resets}},
    }
    subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        cwd=ROOT,
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        timeout=30,
        check=True,
    )
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("source") == "official", what="the official figure"
    )
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("source") == "estimate", timeout=20, what="the reset"
    )
    snap = daemon.snapshot() or {}
    assert (snap["percent"], snap["tokens_used"], snap["active"]) == (0, 0, False)
    assert snap["previous_reset"] == datetime.fromtimestamp(resets, UTC).isoformat()
    got = notifications.wait_for(2)
    assert [n["summary"] for n in got] == ["95% of the 5-hour window used", BACK]
    # new usage after the reset is the new window's, alone
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=1200)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 1200, what="the new window")
    assert (daemon.snapshot() or {})["percent"] == 12.0
