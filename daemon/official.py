"""Official quota figures (table `official_figures`, migrations component "official").

Where they come from: Claude Code's statusline input (`rate_limits`, recorded by `baton statusline`), the
OAuth usage endpoint (opt-in, `daemon.oauth`), and limit messages in the transcripts (the ledger's
`limit_events`, read here as figures of 100 % until their reset).

This module is on the statusline's fast path: stdlib `sqlite3` only. The table is created with the same DDL by
the migration and by the first statusline write, so either may come first.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from daemon.db import Migration
from daemon.quota import OfficialFigure

if TYPE_CHECKING:
    from sqlalchemy import Connection

DDL = (
    "CREATE TABLE IF NOT EXISTS official_figures (id INTEGER PRIMARY KEY, ts_ms BIGINT NOT NULL, "
    "source VARCHAR(32) NOT NULL, window VARCHAR(32) NOT NULL, used_percent REAL NOT NULL, "
    "resets_at_ms BIGINT NULL, session_id TEXT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_official_figures_window_ts ON official_figures (window, ts_ms)",
)
WINDOWS = ("five_hour", "seven_day")
LIMIT_KIND_WINDOW = {"session": "five_hour", "weekly": "seven_day", "unknown": "five_hour"}
STAMP_NAME = "official.stamp"  # touched by `baton statusline` on a new figure; the daemon watches it
PAST_RESET_MS = 8 * 24 * 3_600_000  # how far back a past reset still matters (the quota reads 8 days)
REFRESH_MS = 60_000  # an unchanged figure is re-stamped at most once a minute


def _v1(conn: Connection) -> None:
    from sqlalchemy import text

    for statement in DDL:
        conn.execute(text(statement))


MIGRATIONS = [Migration("official", 1, "official_figures: percentages Anthropic reported", _v1)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def from_rate_limits(rate_limits: Any, now_ms: int, source: str = "statusline") -> list[OfficialFigure]:
    """Return the figures in a statusline `rate_limits` object (resets_at in unix seconds); skip anything
    malformed rather than raise."""
    if not isinstance(rate_limits, Mapping):
        return []
    out = []
    for window in WINDOWS:
        entry = rate_limits.get(window)
        if not isinstance(entry, Mapping):
            continue
        percent = _number(entry.get("used_percentage"))
        resets = _number(entry.get("resets_at"))
        if percent is None or not 0 <= percent <= 1000:
            continue
        resets_ms = int(resets * 1000) if resets is not None and resets > 0 else None
        out.append(OfficialFigure(now_ms, source, window, percent, resets_ms))
    return out


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the table if no migration has yet (the statusline may run before the daemon ever did)."""
    for statement in DDL:
        conn.execute(statement)


def record(
    conn: sqlite3.Connection, figures: Sequence[OfficialFigure], session_id: str | None = None
) -> bool:
    """Store `figures`, skipping one equal to the latest of its source and window (re-stamped once a minute).

    Return True if anything changed in a way the daemon should re-evaluate for.
    """
    ensure_table(conn)
    changed = False
    with conn:
        for f in figures:
            last = conn.execute(
                "SELECT id, ts_ms, used_percent, resets_at_ms FROM official_figures "
                "WHERE window = ? AND source = ? ORDER BY ts_ms DESC, id DESC LIMIT 1",
                (f.window, f.source),
            ).fetchone()
            if last is not None and last[2] == f.used_percent and last[3] == f.resets_at_ms:
                if f.ts_ms - last[1] >= REFRESH_MS:
                    conn.execute("UPDATE official_figures SET ts_ms = ? WHERE id = ?", (f.ts_ms, last[0]))
                continue
            conn.execute(
                "INSERT INTO official_figures (ts_ms, source, window, used_percent, resets_at_ms, "
                "session_id) VALUES (?, ?, ?, ?, ?, ?)",
                (f.ts_ms, f.source, f.window, f.used_percent, f.resets_at_ms, session_id),
            )
            changed = True
    return changed


def load(conn: sqlite3.Connection, now_ms: int) -> list[OfficialFigure]:
    """Return the figures whose window is still open at `now_ms` (the latest per source and window, plus the
    ledger's limit messages as 100 % figures) and, per window, the one with the latest reset already past
    within PAST_RESET_MS (the quota counts no usage before it). Missing tables give no figures."""
    out: list[OfficialFigure] = []
    since = now_ms - PAST_RESET_MS
    try:
        rows = conn.execute(
            "SELECT f.ts_ms, f.source, f.window, f.used_percent, f.resets_at_ms FROM official_figures f "
            "WHERE f.resets_at_ms > ? AND f.ts_ms = (SELECT MAX(g.ts_ms) FROM official_figures g "
            "WHERE g.source = f.source AND g.window = f.window)",
            (now_ms,),
        ).fetchall()
        for window in WINDOWS:
            rows += conn.execute(
                "SELECT ts_ms, source, window, used_percent, resets_at_ms FROM official_figures "
                "WHERE window = ? AND ts_ms > ? AND resets_at_ms <= ? AND resets_at_ms > ? "
                "ORDER BY resets_at_ms DESC LIMIT 1",
                (window, since, now_ms, since),
            ).fetchall()
        out += [OfficialFigure(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]
    except sqlite3.OperationalError:
        pass
    try:
        limits = conn.execute(
            "SELECT ts_ms, kind, reset_at_ms FROM limit_events WHERE reset_at_ms > ? AND ts_ms <= ?",
            (now_ms, now_ms),
        ).fetchall()
        limits += conn.execute(  # the latest reset already past, per kind
            "SELECT ts_ms, kind, MAX(reset_at_ms) FROM limit_events "
            "WHERE reset_at_ms <= ? AND reset_at_ms > ? AND ts_ms <= ? GROUP BY kind",
            (now_ms, since, now_ms),
        ).fetchall()
        for ts, kind, reset in limits:
            limit_window = LIMIT_KIND_WINDOW.get(kind)
            if limit_window is not None:
                out.append(OfficialFigure(ts, "limit_message", limit_window, 100.0, reset))
    except sqlite3.OperationalError:
        pass
    return out
