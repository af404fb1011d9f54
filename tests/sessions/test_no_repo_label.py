"""A session with no repository reads alike in every report: "(no repository)" in tables, null in JSON."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.session_reports import NO_REPO
from tests.sessions.fixture_ledger import Ev, add, cli_ok


def test_recent_and_by_repo_name_a_session_without_repository_alike(filled: Path) -> None:
    add(filled, [Ev("no-repo-session", "2026-03-31T10:00:00Z", inp=10, out=100, cost=0.5, cwd=None)])
    table = cli_ok("report", "recent", "-n", "1")
    assert NO_REPO in table.splitlines()[3]
    assert NO_REPO in cli_ok("report", "by-repo")
    (row,) = json.loads(cli_ok("report", "recent", "--json", "-n", "1"))["rows"]
    assert row["repo"] is None and "_shown_repo" not in row
