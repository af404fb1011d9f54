"""A first `baton run` over existing history, with no ledger yet, builds the ledger aside in worker processes
as `baton ingest` does (the daemon itself never holds the bulk load), then follows new lines as ever."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.processes import DaemonProcess, append, assistant_line


def events(home: Path, name: str) -> list[dict[str, object]]:
    lines = (home / "logs" / "baton.log").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == name]


def stored(home: Path) -> int:
    with sqlite3.connect(home / "baton.db") as conn:
        return int(conn.execute("SELECT count(*) FROM usage_events").fetchone()[0])


def test_a_first_start_builds_the_ledger_aside_then_follows(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    path = claude_dir / "projects" / "-home-me-app" / "s1.jsonl"
    first = datetime.now(UTC) - timedelta(hours=2)
    append(path, [assistant_line(first + timedelta(seconds=i), input_tokens=0) for i in range(50)])
    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "100000"})
    (built,) = events(baton_home, "built")
    assert "50 new events" in str(built["summary"]) and built["pid"] == daemon.pid
    assert "0 new events" in str(events(baton_home, "caught_up")[0]["summary"])  # nothing read twice
    assert stored(baton_home) == 50 and not list(baton_home.glob("baton.db.new-*"))
    assert (daemon.snapshot() or {})["tokens_used"] == 5000

    append(path, [assistant_line(datetime.now(UTC), input_tokens=0)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 5100, what="the new line")
    assert stored(baton_home) == 51
    daemon.stop()
    start_daemon()  # a restart finds the ledger: no second build, nothing counted again
    assert len(events(baton_home, "built")) == 1 and stored(baton_home) == 51
