"""Migrations: recorded once, atomic, and safe when several processes start at the same moment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon.db import connect_fast, open_ledger


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / "baton.db"
    open_ledger(db).dispose()
    with connect_fast(db, readonly=True) as conn:
        first = conn.execute("SELECT component, version FROM schema_migrations ORDER BY 1, 2").fetchall()
    open_ledger(db).dispose()
    with connect_fast(db, readonly=True) as conn:
        again = conn.execute("SELECT component, version FROM schema_migrations ORDER BY 1, 2").fetchall()
    assert first == again
    assert ("ledger", 1) in first


def test_processes_migrating_the_same_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    code = (
        f"import pathlib; from daemon.db import open_ledger; open_ledger(pathlib.Path({str(db)!r})).dispose()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with connect_fast(db, readonly=True) as conn:
        rows = conn.execute(
            "SELECT component, version, COUNT(*) FROM schema_migrations GROUP BY 1, 2"
        ).fetchall()
    assert rows and all(count == 1 for _, _, count in rows)


def test_database_file_is_private_to_the_user(tmp_path: Path) -> None:
    db = tmp_path / "private.db"
    open_ledger(db).dispose()
    assert db.stat().st_mode & 0o077 == 0
