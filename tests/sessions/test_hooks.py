"""`baton hook ...` run as Claude Code runs it: a real process, JSON on stdin, never failing the prompt."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon import hooks, sessions, snapshot
from daemon.config import load_settings
from daemon.paths import BatonPaths
from tests.sessions.fixture_ledger import A, ms

ROOT = Path(__file__).resolve().parents[2]

# The SessionEnd payload as Claude Code 2.1.x writes it (common fields + reason).
SESSION_END = {
    "session_id": A,
    "transcript_path": f"/home/me/.claude/projects/-work-repos-terraform-aws/{A}.jsonl",
    "cwd": "/work/repos/terraform-aws",
    "permission_mode": "default",
    "hook_event_name": "SessionEnd",
    "reason": "prompt_input_exit",
}


def _hook(name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "hook", name],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=30,
    )


def _closed(db: Path, sid: str) -> tuple[object, object]:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT closed_ms, close_reason FROM sessions WHERE session_id = ?", (sid,)
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)
    finally:
        conn.close()


def test_session_end_closes_the_record_at_once(filled: Path) -> None:
    with sessions.connect(filled) as conn:
        sessions.refresh(conn, load_settings().sessions, now_ms=ms("2026-03-02T10:33:00Z"))
    assert _closed(filled, A) == (None, None)
    done = _hook("session-end", json.dumps(SESSION_END))
    assert (done.returncode, done.stdout) == (0, "")
    closed_ms, reason = _closed(filled, A)
    assert reason == "hook:prompt_input_exit" and isinstance(closed_ms, int)


def test_session_end_before_the_ledger_saw_the_session_leaves_a_closed_placeholder(ledger: Path) -> None:
    payload = dict(SESSION_END, session_id="ffff0000-new", reason="clear")
    assert _hook("session-end", json.dumps(payload)).returncode == 0
    assert _closed(ledger, "ffff0000-new")[1] == "hook:clear"


@pytest.mark.parametrize(
    "garbage",
    ["", "not json", "[1, 2]", '{"reason": "other"}', '{"session_id": 42}', "\x00\xff" * 10, "{" * 5000],
)
def test_session_end_with_garbage_exits_0_with_a_message_on_stderr(ledger: Path, garbage: str) -> None:
    done = _hook("session-end", garbage)
    assert done.returncode == 0
    assert done.stdout == ""
    assert "baton hook session-end:" in done.stderr


def test_session_end_without_a_database_does_not_fail(baton_home: Path) -> None:
    done = _hook("session-end", json.dumps(SESSION_END))
    assert done.returncode == 0 and "no ledger" in done.stderr


def _snap(percent: float, *, reset_in_min: float = 42, **extra: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "window": "five_hour",
        "percent": percent,
        "level": "danger" if percent >= 80 else "moderate",
        "source": "estimate",
        "reset_at": (now + timedelta(minutes=reset_in_min)).isoformat(),
        "limited": False,
        "tokens_used": 160_000,
        "tokens_limit": 200_000,
        "tokens_remaining": 40_000,
        "runway_minutes": 27.4,
        **extra,
    }


PROMPT = json.dumps(
    {"session_id": A, "hook_event_name": "UserPromptSubmit", "prompt": "next step", "cwd": "/x"}
)


def test_user_prompt_submit_at_80_percent_tells_claude_to_plan(baton_home: Path) -> None:
    snapshot.write(BatonPaths.from_env(), _snap(82.0))
    done = _hook("user-prompt-submit", PROMPT)
    assert done.returncode == 0 and done.stderr == ""
    out = done.stdout
    assert "82%" in out and "DANGER" in out
    assert "40,000 tokens left" in out and "~27 min at the current pace" in out
    assert "resets in 4" in out  # 41 or 42 minutes, by when the process ran
    assert "/plan-next-session" in out


def test_user_prompt_submit_below_80_percent_prints_nothing(baton_home: Path) -> None:
    snapshot.write(BatonPaths.from_env(), _snap(79.9))
    done = _hook("user-prompt-submit", PROMPT)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("content", [None, "garbage{", '{"percent": "lots"}', "[]", '{"level": "danger"}'])
def test_user_prompt_submit_never_fails_the_prompt(baton_home: Path, content: str | None) -> None:
    if content is not None:
        target = snapshot.path(BatonPaths.from_env())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    done = _hook("user-prompt-submit", "not even json")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_planning_note_edge_cases() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    stale = {"percent": 95, "reset_at": "2026-03-02T11:00:00+00:00"}
    assert hooks.planning_note(stale, now) == ""  # the window already reset
    limited = {
        "percent": 100,
        "limited": True,
        "reset_at": "2026-03-02T12:30:00Z",
        "tokens_used": 5,
        "tokens_limit": 5,
    }
    note = hooks.planning_note(limited, now)
    assert "limit is reached" in note and "0 tokens left" in note and "resets in 30 minutes" in note


def test_hook_help_goes_through_click() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "hook", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 0 and "session-end" in done.stdout and "user-prompt-submit" in done.stdout


def test_hooks_import_nothing_heavy() -> None:
    code = (
        "import sys, io; from daemon import hooks; "
        "hooks.user_prompt_submit(io.StringIO('{}'), io.StringIO(), __import__('datetime').datetime.now()); "
        "heavy = ('sqlalchemy', 'pydantic', 'click', 'pydantic_settings'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.stdout.strip() == "[]"


def test_planning_note_gives_a_stale_figure_as_of_when_it_was_true() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    old = {"percent": 91, "level": "critical", "reset_at": "2026-03-02T13:00:00+00:00", "age_s": 45 * 60}
    note = hooks.planning_note(old, now, UTC)
    assert note.startswith("[baton] As of 45 minutes ago (the latest figure baton has), the 5-hour usage")
    assert "was at 91% (CRITICAL)" in note
    stopped = hooks.planning_note({**old, "age_s": 3 * 3600, "daemon_stopped": True}, now, UTC)
    assert stopped.startswith("[baton] As of 3 hours ago (baton's daemon is not running")
    fresh = hooks.planning_note({**old, "age_s": 60}, now, UTC)
    assert fresh.startswith("[baton] The 5-hour usage window is at 91%")
    assert hooks.planning_note({"percent": None, "weekly": {"percent": 99}}, now, UTC) == ""
