"""After `baton db prune`, every report agrees with the events left: daily (the rollup), session, summary."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daemon import maintenance
from daemon.cli import cli
from tests.sessions.fixture_ledger import Ev, add

HOUR = 3_600_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _json(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _figures(db: Path) -> tuple[int, int, int, int]:
    """(ledger, report daily, report session, report summary) token totals."""
    conn = sqlite3.connect(db)
    try:
        ledger = conn.execute(
            "SELECT SUM(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens) "
            "FROM usage_events"
        ).fetchone()[0]
    finally:
        conn.close()
    daily = _json("report", "daily", "--json")["totals"]["totalTokens"]
    session = _json("report", "session", "--json")["totals"]["totalTokens"]
    summary = _json("report", "summary", "--json")["all_tokens"]
    return ledger, daily, session, summary


@pytest.mark.slow
def test_daily_session_and_summary_totals_match_the_ledger_after_a_prune(
    ledger: Path, claude_dir: Path
) -> None:
    now = int(time.time() * 1000)
    old, recent = now - 13 * HOUR, now - 2 * HOUR
    add(
        ledger,
        [Ev("0ld00000-gone", _iso(old + i * 60_000), inp=1000, out=100) for i in range(5)]
        # a session that straddles the cutoff: its two old responses go, its five recent ones stay
        + [Ev("5ad00000-half", _iso(old + i * 60_000), inp=500, out=50) for i in range(2)]
        + [Ev("5ad00000-half", _iso(recent + i * 60_000), inp=10, out=5) for i in range(5)],
    )
    conn = sqlite3.connect(ledger)
    # The fixture writes events only: the file row they name (for `report session`) and the rollup.
    conn.execute(
        'INSERT INTO files (id, path, device, inode, size, "offset", lines, mtime_ns, head, deleted, '
        "skipped_lines) VALUES (1, '/t/s.jsonl', 0, 0, 0, 0, 0, 0, '', 0, 0)"
    )
    maintenance._refresh_rollup(conn, 0, now)
    conn.commit()
    conn.close()
    assert _figures(ledger) == (5 * 1100 + 2 * 550 + 5 * 15,) * 4

    out = CliRunner().invoke(cli, ["db", "prune", "--older-than", "12h"])
    assert out.exit_code == 0, out.output
    assert "7 from usage_events" in out.output
    assert _figures(ledger) == (5 * 15,) * 4
    sessions = _json("report", "recent", "--json")
    assert [r["session_id"] for r in sessions["rows"]] == ["5ad00000-half"]


def test_prune_remembers_its_latest_cutoff_for_the_ingester(filled: Path) -> None:
    maintenance.prune(filled, 1_773_000_000_000)
    maintenance.prune(filled, 1_700_000_000_000)  # an older cutoff never moves it back
    conn = sqlite3.connect(filled)
    try:
        row = conn.execute("SELECT value FROM ledger_meta WHERE key = 'pruned_before_ms'").fetchone()
    finally:
        conn.close()
    assert row == ("1773000000000",)
