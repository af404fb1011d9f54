"""Session ids are shown as git shows commits: the shortest prefix (8 characters or more) that names one
session, among all sessions, not only the ones on screen, so that what you read is what `--session` takes."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.session_reports import short_ids
from tests.sessions.fixture_ledger import E, Ev, add, cli_fail, cli_ok, rows

ALPHA, BETA = "session-alpha", "session-beta"  # as in ccusage's own test transcripts


def test_shortest_unambiguous_prefix_of_at_least_eight() -> None:
    ids = [ALPHA, BETA, E, "short", "short-2", "abcdefgh12", "abcdefgh13", "zz"]
    assert short_ids(ids) == {
        ALPHA: "session-a",
        BETA: "session-b",
        E: "eeee5555",
        "short": "short",  # the start of another id: shown whole (the full id names it)
        "short-2": "short-2",
        "abcdefgh12": "abcdefgh12",
        "abcdefgh13": "abcdefgh13",
        "zz": "zz",
    }
    # Ambiguity counts against every known id, shown or not.
    assert short_ids([E], known=[E, "eeee5555-1"]) == {E: "eeee5555-0"}
    assert short_ids([E], known=[]) == {E: "eeee5555"}


def test_recent_log_and_value_tell_similar_ids_apart(filled: Path, claude_dir: Path) -> None:
    add(
        filled,
        [
            Ev(ALPHA, "2026-03-30T10:00:00Z", inp=10, out=100, cost=1.0),
            Ev(BETA, "2026-03-31T10:00:00Z", inp=10, out=100, cost=0.1),
        ],
    )
    lines = cli_ok("report", "recent", "-n", "3").splitlines()
    assert [line.split()[0] for line in lines[3:]] == ["session-b", "session-a", "eeee5555"]
    # The sibling is off screen and out of the period, yet the one shown is still told apart from it.
    one = cli_ok("report", "recent", "-n", "1", "--since", "2026-03-31").splitlines()
    assert one[3].split()[0] == "session-b"
    # JSON and CSV keep the full ids.
    recent = json.loads(cli_ok("report", "recent", "--json", "-n", "2"))["rows"]
    assert [r["session_id"] for r in recent] == [BETA, ALPHA]
    assert "_shown_session_id" not in recent[0]
    assert cli_ok("report", "recent", "--csv", "-n", "1").splitlines()[1].startswith(f"{BETA},")

    # What the table shows is what --session takes, and the confirmation shows it the same way.
    assert "-> session session-a " in cli_ok("log", "quick", "busywork", "zero", "--session", "session-a")
    assert "-> session session-b " in cli_ok("log", "quick", "quick win", "high", "--session", "session-b")
    assert "Noted on session session-b." in cli_ok("note", "session-b", "kept")
    assert "Tagged session session-a: x" in cli_ok("tag", "session-a", "x")
    # Too short a prefix names the candidates the same way.
    assert "'session' matches 2 sessions: session-a, session-b" in cli_fail("tag", "session", "y")
    assert rows(filled, "SELECT session_id, value FROM value_logs ORDER BY id") == [
        (ALPHA, "zero"),
        (BETA, "high"),
    ]
    value = cli_ok("report", "value")
    assert "High cost + low value (cost >= median $0.55): session-a " in value
    assert "Low cost + high value: session-b " in value
