"""Which session `baton log`, `note` and `tag` attach to, on a real ledger: by default the latest session with
messages (by its last message), never a row the SessionEnd hook wrote for a session without usage.

`baton hook session-end` records every session id it is given, including a Claude Code session left before
any prompt (the usual "opened claude, quit"): such a row has no figures and shows in no report, so an entry
attached to it would be lost from view.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon import sessions
from daemon.config import load_settings
from daemon.errors import BatonError
from tests.sessions.fixture_ledger import A, E, Ev, add, cli_fail, cli_ok, rows, run_session_end

ROOT = Path(__file__).resolve().parents[2]
PHANTOM = "eeee5555-0000-4000-8000-0000000000ff"  # shares E's first 8 characters


def _session_end(session_id: str) -> None:
    """Run the real SessionEnd hook, as Claude Code does when someone quits."""
    run_session_end({"session_id": session_id, "hook_event_name": "SessionEnd", "reason": "other"})


def test_quitting_claude_without_a_prompt_does_not_steal_log_note_and_tag(
    filled: Path, claude_dir: Path
) -> None:
    cli_ok("report", "summary")  # the records exist, as they would under the daemon
    _session_end("../../etc")  # the reviewer's repro: a session with no usage, closed now
    assert rows(filled, "SELECT COUNT(*) FROM sessions WHERE session_id = '../../etc'") == [(1,)]

    out = cli_ok("log", "quick", "shipped it", "high")
    assert "Logged high: shipped it -> session eeee5555 (terraform-gcp, $4.00)" in out
    cli_ok("note", "the real one")
    cli_ok("tag", "kept")
    assert rows(filled, "SELECT session_id FROM value_logs") == [(E,)]
    assert rows(filled, "SELECT session_id FROM session_notes") == [(E,)]
    assert rows(filled, "SELECT session_id FROM session_tags") == [(E,)]
    # ... and what was logged shows where people look.
    assert json.loads(cli_ok("report", "value", "--json"))["rows"][0] == {
        "value": "high",
        "sessions": 1,
        "tokens": 4_400,
        "cost_usd": 4.0,
        "avg_cost_usd": 4.0,
    }
    assert json.loads(cli_ok("report", "recent", "--json", "-n", "1"))["rows"][0]["tags"] == "kept"


def test_the_default_is_the_session_with_the_last_message(filled: Path, claude_dir: Path) -> None:
    # A started first but is resumed after E's last message: it is the latest session now.
    add(filled, [Ev(A, "2026-03-29T02:00:00Z", inp=1, cwd="/work/repos/terraform-aws")])
    # A session whose only line is a '<synthetic>' one (no message) is later still, and is not the default.
    add(filled, [Ev("9999aaaa-synthetic-only", "2026-03-30T00:00:00Z", model="<synthetic>")])
    out = cli_ok("log", "quick", "resumed the migration", "medium")
    assert "-> session aaaa1111 (terraform-aws, $2.50)" in out
    assert rows(filled, "SELECT session_id FROM value_logs") == [(A,)]


def test_naming_a_session_without_usage_is_a_clear_error(filled: Path, claude_dir: Path) -> None:
    cli_ok("report", "summary")
    _session_end(PHANTOM)
    for args in (
        ("log", "quick", "x", "high", "--session", PHANTOM),
        ("note", PHANTOM, "text"),
        ("tag", PHANTOM, "t"),
        ("log", "quick", "x", "high", "--session", "eeee5555-0000-4000-8000-0000000000f"),  # its prefix
    ):
        message = cli_fail(*args)
        assert f"session '{PHANTOM}' has no usage recorded" in message
        assert "no report would show" in message
    assert rows(filled, "SELECT COUNT(*) FROM value_logs") == [(0,)]
    assert rows(filled, "SELECT COUNT(*) FROM session_notes") == [(0,)]
    # It shares E's first characters, yet a prefix still names E alone: rows without usage are not candidates.
    assert "-> session eeee5555 " in cli_ok("log", "quick", "by prefix", "low", "--session", "eeee")
    assert rows(filled, "SELECT session_id FROM value_logs") == [(E,)]


def test_with_only_sessions_without_usage_nothing_is_attached(baton_home: Path, claude_dir: Path) -> None:
    _session_end("0123abcd-never-prompted")
    assert "kept unattached" in cli_ok("log", "quick", "planned the week", "maintenance")
    assert rows(baton_home / "baton.db", "SELECT session_id FROM value_logs") == [(None,)]
    assert "no session recorded yet" in cli_fail("note", "text")


def test_prefixes_are_plain_text_not_like_patterns(filled: Path) -> None:
    with sessions.connect(filled) as conn:
        sessions.refresh(conn, load_settings().sessions, now_ms=0)
        assert sessions.resolve_session(conn, "aaaa1111") == A
        for pattern in ("aaaa_111", "%111", "AAAA1111"):  # LIKE would have matched each of these
            with pytest.raises(BatonError, match="no session matches"):
                sessions.resolve_session(conn, pattern)


def test_entries_older_versions_attached_to_a_session_without_usage_still_show(
    filled: Path, claude_dir: Path
) -> None:
    cli_ok("report", "summary")
    _session_end("../../etc")
    with sessions.connect(filled) as conn:  # what `baton log quick "shipped it" high` used to write
        conn.execute(
            "INSERT INTO value_logs (session_id, ts_ms, task, value, tokens) VALUES (?, 1, 'shipped it', "
            "'high', 900)",
            ("../../etc",),
        )
    report = json.loads(cli_ok("report", "value", "--json"))
    assert report["unattached_logs"] == {"high": {"entries": 1, "tokens": 900}}
    assert "Entries logged without a session: high 1" in cli_ok("report", "value")
