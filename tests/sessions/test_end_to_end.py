"""End to end: a real `baton run`, transcript lines appended by a second process, the real SessionEnd hook,
kill -9 and restart. The session record follows the transcript exactly once throughout."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.sessions.fixture_ledger import run_session_end
from tests.support.processes import DaemonProcess, append, assistant_line

ROOT = Path(__file__).resolve().parents[2]
SID = "5e55e55e-1111-4222-8333-444455556666"


def _session(db: Path) -> dict[str, Any]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return {}
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM sessions WHERE session_id = ?", (SID,)).fetchone()
        return dict(row) if row else {}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def _line(ts: datetime, **kw: Any) -> str:
    return assistant_line(
        ts, input_tokens=10, output_tokens=100, cache_read=1000, session_id=SID, cwd=str(ROOT), **kw
    )


@pytest.mark.slow
def test_daemon_keeps_the_session_record_exact_across_hook_kill_9_and_resume(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    db = baton_home / "baton.db"
    transcript = claude_dir / "projects" / "-work-main" / f"{SID}.jsonl"
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    daemon = start_daemon()
    # Three responses; the first is streamed as three lines sharing message and request id: it counts once.
    streamed = {"message_id": "msg_stream_1", "request_id": "req_stream_1"}
    append(
        transcript,
        [_line(t0, **streamed)] * 3 + [_line(t0 + timedelta(minutes=2)), _line(t0 + timedelta(minutes=3))],
    )
    daemon.wait_until(lambda: _session(db).get("messages") == 3, timeout=60, what="the session record")
    s = _session(db)
    assert (s["input_tokens"], s["output_tokens"], s["cache_read_tokens"]) == (30, 300, 3000)
    assert (s["active_ms"], s["wall_ms"]) == (3 * 60_000, 3 * 60_000)
    assert s["git_repo"] == ROOT.name and s["closed_ms"] is None

    payload = {
        "session_id": SID,
        "transcript_path": str(transcript),
        "cwd": str(ROOT),
        "hook_event_name": "SessionEnd",
        "reason": "prompt_input_exit",
    }
    run_session_end(payload)
    assert _session(db)["close_reason"] == "hook:prompt_input_exit"

    daemon.kill9()
    # Resumed while baton was down: two more responses, one of them again a streamed duplicate.
    t1 = datetime.now(UTC)
    again = {"message_id": "msg_stream_2", "request_id": "req_stream_2"}
    append(transcript, [_line(t1, **again), _line(t1, **again), _line(t1 + timedelta(seconds=1))])
    daemon = start_daemon()
    daemon.wait_until(lambda: _session(db).get("messages") == 5, timeout=60, what="the resumed session")
    s = _session(db)
    assert (s["input_tokens"], s["output_tokens"], s["cache_read_tokens"]) == (50, 500, 5000)
    assert s["closed_ms"] is None  # new activity after the SessionEnd opened it again
    daemon.stop()

    report = subprocess.run(
        [sys.executable, "-m", "daemon", "report", "recent", "--json", "-n", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    row = json.loads(report.stdout)["rows"][0]
    assert (row["session_id"], row["messages"], row["tokens"]) == (SID, 5, 5 * 1110)
