"""Value logs, notes and tags; sessions.json, TRACKER.md and the append-only JSONL export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon import sessions
from tests.sessions.fixture_ledger import A, B, C, D, E, cli_fail, cli_ok, rows


def test_quick_log_attaches_to_the_latest_session(filled: Path, claude_dir: Path) -> None:
    out = cli_ok("log", "quick", "fixed CI pipeline", "high", "--tokens", "8000")
    assert "Logged high: fixed CI pipeline -> session eeee5555 (terraform-gcp, $4.00)" in out
    assert rows(filled, "SELECT session_id, task, value, tokens FROM value_logs") == [
        (E, "fixed CI pipeline", "high", 8000)
    ]


def test_full_log_with_session_prefix_and_model(filled: Path, claude_dir: Path) -> None:
    cli_ok(
        "log",
        "--task",
        "researched competitors",
        "--outcome",
        "5-company analysis",
        "--value",
        "Medium",
        "--tokens",
        "12500",
        "--model",
        "claude-opus-4-5",
        "--session",
        "bbbb",
    )
    assert rows(filled, "SELECT session_id, outcome, value, model FROM value_logs") == [
        (B, "5-company analysis", "medium", "claude-opus-4-5")
    ]


def test_log_errors_are_clean(filled: Path, claude_dir: Path) -> None:
    assert "unknown value 'great'" in cli_fail("log", "quick", "x", "great")
    assert "no session matches 'zzzz'" in cli_fail("log", "quick", "x", "high", "--session", "zzzz")
    assert "--task and --value" in cli_fail("log", "--task", "only a task")


def test_log_before_any_session_is_kept_unattached(baton_home: Path, claude_dir: Path) -> None:
    out = cli_ok("log", "quick", "planned the week", "maintenance")
    assert "kept unattached" in out


def test_note_and_tag_default_to_the_latest_session(filled: Path, claude_dir: Path) -> None:
    cli_ok("note", "CPE-5208 module updates")
    cli_ok("note", "aaaa", "first try")
    cli_ok("tag", "using-index-first")
    cli_ok("tag", "using-index-first")  # twice: still one tag
    assert rows(filled, "SELECT session_id, text FROM session_notes ORDER BY id") == [
        (E, "CPE-5208 module updates"),
        (A, "first try"),
    ]
    assert rows(filled, "SELECT session_id, tag FROM session_tags") == [(E, "using-index-first")]
    recent = json.loads(cli_ok("report", "recent", "--json", "-n", "1"))["rows"][0]
    assert recent["tags"] == "using-index-first"
    assert recent["notes"] == "CPE-5208 module updates"


def test_sessions_json_has_the_metrics_design_fields(filled: Path, claude_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sessions.json"
    cli_ok("export", "sessions-json", "-o", str(out), "--timezone", "UTC")
    data = json.loads(out.read_text())
    a = next(s for s in data["sessions"] if s["session_id"] == A)
    assert a == {
        "session_id": A,
        "started": "2026-03-02T10:00:00+00:00",
        "ended": "2026-03-02T10:32:00+00:00",
        "duration_wall_min": 32.0,
        "duration_active_min": 6.0,
        "input_tokens": 50,
        "output_tokens": 500,
        "cache_read_tokens": 50_000,
        "cache_create_tokens": 5_000,
        "total_tokens": 550,
        "all_tokens": 55_550,
        "messages": 5,
        "cost_usd": 2.5,
        "model": "claude-opus-4-6",
        "day": "2026-03-02",
    }
    assert data["by_day"]["2026-03-02"] == {
        "sessions": 2,
        "cost_usd": 3.0,
        "active_min": 22.0,
        "messages": 10,
    }
    assert "2026-03-03" not in data["by_day"]  # B crosses midnight but counts on the day it started
    t = data["totals"]
    assert (t["total_sessions"], t["total_all_tokens"], t["total_messages"]) == (5, 72_337, 18)
    assert t["total_cost_usd"] == pytest.approx(7.31) and t["total_active_min"] == 29.5
    assert t["total_wall_min"] == 119.5 and t["model"] == "claude-opus-4-6"


def test_tracker_markdown(filled: Path, claude_dir: Path) -> None:
    md = cli_ok("export", "tracker", "--timezone", "UTC")
    assert "| 5 | $7.31 | 72,337 | 18 | 30 min | 1h60 |" not in md  # minutes never print as 60
    assert "| 5 | $7.31 | 72,337 | 18 | 30 min | 2h00 |" in md
    assert "| 2026-03-02 | 2 | $3.00 | 22 min | 10 |" in md
    assert "- Per session: $1.46, 14,467 tokens, 5.9 active minutes, 3.6 messages" in md
    assert "- Per day with sessions: $1.83, 1.2 sessions" in md


def test_jsonl_appends_finished_sessions_once(filled: Path, claude_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "usage.jsonl"
    # Every fixture session ended long ago, so the first report's refresh closes them all as idle.
    assert "Appended 5 sessions" in cli_ok("export", "jsonl", str(log))
    assert "Appended 0 sessions" in cli_ok("export", "jsonl", str(log))
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(x["session_id"] for x in lines) == sorted([A, B, C, D, E])
    assert {x["session_id"]: x["category"] for x in lines}[A] == "terraform"
    # A session still open is not exported until it finishes.
    from tests.sessions.fixture_ledger import Ev, add

    add(filled, [Ev("ffff6666-open", "2099-01-01T00:00:00Z", inp=1)])
    assert "Appended 0 sessions" in cli_ok("export", "jsonl", str(log))
    with sessions.connect(filled) as conn:
        conn.execute("UPDATE sessions SET closed_ms = 1 WHERE session_id = 'ffff6666-open'")
    log.write_text(log.read_text() + "not json\n")
    assert "Appended 1 session " in cli_ok("export", "jsonl", str(log))
    assert len(log.read_text().splitlines()) == 7


def test_value_report_counts_entries_logged_before_any_session(baton_home: Path, claude_dir: Path) -> None:
    cli_ok("log", "quick", "planned the week", "maintenance", "--tokens", "1200")
    cli_ok("log", "quick", "checked the inbox", "zero")
    report = json.loads(cli_ok("report", "value", "--json"))
    assert report["rows"] == []
    assert report["unattached_logs"] == {
        "maintenance": {"entries": 1, "tokens": 1200},
        "zero": {"entries": 1, "tokens": 0},
    }
    assert "Entries logged without a session: maintenance 1, zero 1" in cli_ok("report", "value")
