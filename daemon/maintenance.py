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

    One transaction deletes the rows and rebuilds the ledger's 15-minute rollup over the pruned time range, so
    daily/weekly/monthly reports agree with the events left at every moment. Deleting usage events marks their
    sessions for recomputation (the sessions triggers): a session that straddles the cutoff keeps only its
    newer figures at the next refresh. Notes and tags of a deleted session go with it.
    Raise BatonError if `db` is missing or locked.
    """
    _require(db)
    before = _size(db)
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)  # transactions below are explicit
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        tables = [(table, when) for table, when in PRUNABLE.items() if table in existing]
        if dry_run:
            count = "SELECT COUNT(*) FROM {} WHERE {} < ?"
            deleted = {t: conn.execute(count.format(t, w), (cutoff_ms,)).fetchone()[0] for t, w in tables}
        else:
            deleted = _delete(conn, tables, cutoff_ms, rollup="usage_rollup" in existing)
            conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise BatonError(
            f"pruning {db} failed: {exc}", hint="try again; the daemon may hold a long write"
        ) from exc
    finally:
        conn.close()
    return PruneResult(deleted, before, _size(db), dry_run)


def _delete(
    conn: sqlite3.Connection, tables: list[tuple[str, str]], cutoff_ms: int, *, rollup: bool
) -> dict[str, int]:
    """Delete the old rows of `tables` and rebuild the rollup they fed, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        oldest = None
        if rollup:
            oldest = conn.execute(
                "SELECT MIN(ts_ms) FROM usage_events WHERE ts_ms < ?", (cutoff_ms,)
            ).fetchone()[0]
        deleted = {
            t: conn.execute(f"DELETE FROM {t} WHERE {w} < ?", (cutoff_ms,)).rowcount for t, w in tables
        }
        if oldest is not None:
            _refresh_rollup(conn, int(oldest), cutoff_ms - 1)  # the bucket holding the cutoff is summed again
        if rollup:
            _record_cutoff(conn, cutoff_ms)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return deleted


def _record_cutoff(conn: sqlite3.Connection, cutoff_ms: int) -> None:
    """Remember in `ledger_meta.pruned_before_ms` (the latest cutoff) that older usage was pruned on purpose,
    so that an ingest reading a transcript again from its start can leave those lines out."""
    conn.execute(
        "INSERT INTO ledger_meta (key, value) VALUES ('pruned_before_ms', ?) ON CONFLICT (key) DO UPDATE SET "
        "value = CAST(MAX(CAST(ledger_meta.value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
        (str(cutoff_ms),),
    )


def _refresh_rollup(conn: sqlite3.Connection, lo_ms: int, hi_ms: int) -> None:
    """Rebuild the ledger's rollup over [lo_ms, hi_ms] with the ledger's own function, in this transaction."""
    import importlib

    # The ledger's writing half is moving from daemon.ledger to daemon.ledger_write: take it where it is.
    for name in ("daemon.ledger_write", "daemon.ledger"):
        try:
            refresh = getattr(importlib.import_module(name), "refresh_rollup", None)
        except ImportError:
            continue
        if refresh is not None:
            refresh(conn, lo_ms, hi_ms)
            return
    raise BatonError("this baton has no ledger rollup function; the prune was rolled back")


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
