"""Upkeep of the database: online backups, pruning old rows, and where the file is.

`backup` uses SQLite's online backup API, so the copy is consistent even while the daemon writes (WAL); the
copy is checked with `PRAGMA integrity_check` and renamed into place only when it is sound. `prune` deletes
rows older than a cutoff from the tables that grow with time, then runs VACUUM to give the space back.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from daemon.errors import BatonError

# table -> the SQL expression of a row's time (epoch ms). Tables that do not exist are skipped.
PRUNABLE: dict[str, str] = {
    "usage_events": "ts_ms",
    "limit_events": "ts_ms",
    "official_figures": "ts_ms",
    "value_logs": "ts_ms",
    "sessions": "COALESCE(ended_ms, closed_ms, updated_ms)",
}

_AGE = re.compile(r"^\s*(\d+)\s*([dwh])\s*$")


def parse_age(text: str) -> timedelta:
    """Return the age `text` names ("90d", "12w", "36h"). Raise BatonError on another form."""
    m = _AGE.match(text.lower())
    if not m or int(m.group(1)) == 0:
        raise BatonError(f"not an age: {text!r}", hint="use a number of days, weeks or hours: 90d, 12w, 36h")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "w": timedelta(weeks=n), "h": timedelta(hours=n)}[unit]


def _require(db: Path) -> None:
    if not db.exists():
        raise BatonError(f"no database at {db}", hint="baton creates it on `baton ingest` or `baton run`")


def backup(db: Path, dest: Path) -> Path:
    """Copy the live database at `db` to `dest` (private to the user) with the online backup API; return
    `dest`. Raise BatonError if `db` is missing, `dest` exists, or the copy fails its integrity check."""
    _require(db)
    if dest.exists():
        raise BatonError(f"{dest} already exists", hint="name another file, or remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        out = sqlite3.connect(tmp)
        try:
            src.backup(out, pages=1024)
            out.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file, no -wal beside it
            check = out.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            out.close()
            src.close()
        if check != "ok":
            raise BatonError(f"the backup failed its integrity check: {check}")
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        raise BatonError(f"backup of {db} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@dataclass(frozen=True)
class PruneResult:
    """Rows deleted (or, in a dry run, that would be) per table, and the file size before and after."""

    deleted: dict[str, int]
    size_before: int
    size_after: int
    dry_run: bool


def prune(db: Path, cutoff_ms: int, *, dry_run: bool = False) -> PruneResult:
    """Delete rows older than `cutoff_ms` (epoch ms) from the PRUNABLE tables, then VACUUM; return the counts.
    Notes and tags of a deleted session go with it. Raise BatonError if `db` is missing or locked."""
    _require(db)
    before = _size(db)
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        deleted: dict[str, int] = {}
        for table, when in PRUNABLE.items():
            if table not in existing:
                continue
            where = f"{when} < ?"
            if dry_run:
                deleted[table] = conn.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE {where}", (cutoff_ms,)
                ).fetchone()[0]
            else:
                deleted[table] = conn.execute(f"DELETE FROM {table} WHERE {where}", (cutoff_ms,)).rowcount
        conn.commit()
        if not dry_run:
            conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise BatonError(
            f"pruning {db} failed: {exc}", hint="try again; the daemon may hold a long write"
        ) from exc
    finally:
        conn.close()
    return PruneResult(deleted, before, _size(db), dry_run)


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
