"""`baton db backup|prune|path`, and the daemon keeping session records fresh on its own thread."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daemon import maintenance, sessions
from daemon.cli import cli
from daemon.config import load_settings
from daemon.context import DaemonContext
from daemon.errors import BatonError
from daemon.paths import BatonPaths
from tests.sessions.fixture_ledger import A, Ev, add

ROOT = Path(__file__).resolve().parents[2]

# A second process that keeps appending ledger rows, one transaction each, until it is killed.
WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=10)
conn.execute("PRAGMA journal_mode=WAL")
n = 0
while True:
    n += 1
    conn.execute(
        "INSERT INTO usage_events (dedup_key, ts_ms, session_id, model, source, is_sidechain, "
        "input_tokens, output_tokens, cache_creation_tokens, cache_5m_tokens, cache_1h_tokens, "
        "cache_read_tokens, total_tokens, file_id, line_no) "
        "VALUES (?, ?, 'writer', 'claude-opus-4-6', 'assistant', 0, 1, 1, 0, 0, 0, 0, 2, 1, ?)",
        (f"writer-{n}", 1_772_000_000_000 + n, n),
    )
    conn.commit()
    if n == 50:
        print("ready", flush=True)
"""


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
def test_backup_is_consistent_while_another_process_writes(filled: Path, tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(filled)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        copies = [maintenance.backup(filled, tmp_path / f"copy-{i}.db") for i in range(3)]
    finally:
        writer.kill()
        writer.wait()
    counts = []
    for copy in copies:
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts.append(conn.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0])
        conn.close()
        assert not Path(str(copy) + "-wal").exists()
    assert counts == sorted(counts) and counts[0] >= 19 + 50  # the fixture rows and what the writer had
    assert _count(filled) >= counts[-1]


def test_backup_command_default_location_and_refusal_to_overwrite(filled: Path, baton_home: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "backup"])
    assert result.exit_code == 0, result.output
    made = list((baton_home / "backups").glob("baton-*.db"))
    assert len(made) == 1 and _count(made[0]) == 19
    with pytest.raises(BatonError, match="already exists"):
        maintenance.backup(filled, made[0])


def test_prune_deletes_old_rows_then_vacuums(filled: Path) -> None:
    with sessions.connect(filled) as conn:
        sessions.refresh(conn, load_settings().sessions, now_ms=0)
        conn.execute("INSERT INTO session_notes (session_id, ts_ms, text) VALUES (?, 1, 'old note')", (A,))
    cutoff = 1_773_000_000_000  # 2026-03-08T20:00Z: A, B, C are older; D (03-08 23:30) and E are not
    dry = maintenance.prune(filled, cutoff, dry_run=True)
    assert dry.deleted["usage_events"] == 13 and dry.deleted["sessions"] == 3
    assert _count(filled) == 19
    done = maintenance.prune(filled, cutoff)
    assert done.deleted == dry.deleted | {"value_logs": 0}
    assert _count(filled) == 6
    conn = sqlite3.connect(filled)
    assert conn.execute("SELECT COUNT(*) FROM session_notes").fetchone()[0] == 0  # went with its session
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2
    conn.close()


def test_prune_command_and_age_parsing(filled: Path) -> None:
    assert maintenance.parse_age("90d").days == 90 and maintenance.parse_age("2w").days == 14
    for bad in ("90", "0d", "ninety days", "-3d"):
        with pytest.raises(BatonError):
            maintenance.parse_age(bad)
    result = CliRunner().invoke(cli, ["db", "prune", "--older-than", "36500d", "--dry-run"])
    assert (
        result.exit_code == 0 and "Would delete rows older than 36500d: 0 from usage_events" in result.output
    )


def test_db_path(baton_home: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "path"])
    assert result.output.strip() == str(BatonPaths.from_env().ledger_db)


def test_attach_refreshes_in_the_background_and_serves_the_control_op(filled: Path) -> None:
    from daemon.db import open_ledger

    paths = BatonPaths.from_env()
    engine = open_ledger(paths.ledger_db)
    ctx = DaemonContext(
        paths=paths,
        settings=load_settings(paths),
        engine=engine,
        notify=lambda *a: True,
        quota_state=lambda: None,
    )
    keeper = sessions.attach(ctx)
    try:
        deadline = time.monotonic() + 10
        while keeper.last is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keeper.last is not None and keeper.last.sessions == 5
        add(filled, [Ev("abab0000-late", "2026-03-30T10:00:00Z", inp=3, cost=0.3)])
        for listener in ctx.quota_listeners:  # what the daemon does after each evaluation
            listener(object())
        deadline = time.monotonic() + 10
        while keeper.last.sessions != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keeper.last.sessions == 1
        reply: dict[str, Any] = ctx.handlers["sessions.refresh"]({"op": "sessions.refresh"})
        assert reply == {"ok": True, "sessions": 0}
    finally:
        for hook in ctx.shutdown_hooks:
            hook()
        engine.dispose()
    assert not any(t.name == "baton-sessions" for t in __import__("threading").enumerate())
    assert os.path.exists(filled)
