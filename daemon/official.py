"""Official quota figures (table `official_figures`, migrations component "official").

Where they come from: Claude Code's statusline input (`rate_limits`, recorded by `baton statusline`), the
OAuth usage endpoint (opt-in, `daemon.oauth`), and limit messages in the transcripts (the ledger's
`limit_events`, read here as figures of 100 % until their reset).

This module is on the statusline's fast path: stdlib `sqlite3` only. The table is created with the same DDL by
the migration and by the first statusline write, so either may come first.

Nothing implausible is stored: a `used_percentage` that is not a number from 0 to 100 drops that window's
figure, and a `resets_at` that is not a plausible instant (`daemon.quota.plausible_reset`: from 8 days
before the reading to 1 day after it for the 5-hour window, 8 days after it for the week; a time in
milliseconds is not one) is stored as unknown (NULL) while the percent is kept. `load` skips any row that is
still out of range (written by an older version, or by hand) and reports it to the caller.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from daemon.db import Migration
from daemon.quota import UNKNOWN_RESET_FRESH_MS, OfficialFigure, plausible_percent, plausible_reset, usable

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


def _reset_ms(window: str, value: Any, now_ms: int) -> int | None:
    """Return a statusline `resets_at` (unix seconds) as epoch ms, or None unless it is plausible."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    resets_ms = round(value * 1000)
    return resets_ms if plausible_reset(window, resets_ms, now_ms) else None


def from_rate_limits(rate_limits: Any, now_ms: int, source: str = "statusline") -> list[OfficialFigure]:
    """Return the figures in a statusline `rate_limits` object (resets_at in unix seconds); skip anything
    malformed rather than raise: a window whose percent is not from 0 to 100 is left out, an implausible
    reset time becomes None (unknown)."""
    if not isinstance(rate_limits, Mapping):
        return []
    out = []
    for window in WINDOWS:
        entry = rate_limits.get(window)
        if not isinstance(entry, Mapping):
            continue
        percent = plausible_percent(entry.get("used_percentage"))
        if percent is None:
            continue
        resets_ms = _reset_ms(window, entry.get("resets_at"), now_ms)
        out.append(OfficialFigure(now_ms, source, window, percent, resets_ms))
    return out


def sanitize(f: OfficialFigure) -> OfficialFigure | None:
    """Return `f` fit to store: None if its percent is out of range, its reset None if implausible."""
    if plausible_percent(f.used_percent) is None:
        return None
    if f.resets_at_ms is not None and not plausible_reset(f.window, f.resets_at_ms, f.ts_ms):
        f = replace(f, resets_at_ms=None)
    return f if usable(f) else None


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the table if no migration has yet (the statusline may run before the daemon ever did)."""
    for statement in DDL:
        conn.execute(statement)


def record(
    conn: sqlite3.Connection, figures: Sequence[OfficialFigure], session_id: str | None = None
) -> bool:
    """Store `figures`, skipping one equal to the latest of its source and window (re-stamped once a minute).

    Return True if anything changed in a way the daemon should re-evaluate for. Every figure goes through
    `sanitize` first (whoever made it: statusline, OAuth endpoint): nothing out of range is stored.
    """
    ensure_table(conn)
    changed = False
    clean = [g for g in (sanitize(f) for f in figures) if g is not None]
    with conn:
        for f in clean:
            last = conn.execute(
                "SELECT id, ts_ms, used_percent, resets_at_ms FROM official_figures "
                "WHERE window = ? AND source = ? ORDER BY ts_ms DESC, id DESC LIMIT 1",
                (f.window, f.source),
            ).fetchone()
            if last is not None and last[2] == f.used_percent and last[3] == f.resets_at_ms:
                # Without a reset nothing tells when its window ends: the same figure repeated is not
                # re-stamped, so it ages out UNKNOWN_RESET_FRESH_MS after it was first seen.
                if f.resets_at_ms is not None and f.ts_ms - last[1] >= REFRESH_MS:
                    conn.execute("UPDATE official_figures SET ts_ms = ? WHERE id = ?", (f.ts_ms, last[0]))
                continue
            conn.execute(
                "INSERT INTO official_figures (ts_ms, source, window, used_percent, resets_at_ms, "
                "session_id) VALUES (?, ?, ?, ?, ?, ?)",
                (f.ts_ms, f.source, f.window, f.used_percent, f.resets_at_ms, session_id),
            )
            changed = True
    return changed


def _row_figure(ts: Any, source: Any, window: Any, percent: Any, resets: Any) -> OfficialFigure | None:
    """Return a stored row as a figure, or None if it is not `usable` (wrong types included)."""
    if isinstance(percent, int) and not isinstance(percent, bool):
        percent = float(percent)
    if not isinstance(source, str) or not isinstance(window, str):
        return None
    f = OfficialFigure(ts, source, window, percent, resets)
    try:
        return f if usable(f) else None
    except (TypeError, ValueError, OverflowError):
        return None


def load(conn: sqlite3.Connection, now_ms: int, skipped: list[str] | None = None) -> list[OfficialFigure]:
    """Return the figures whose window is still open at `now_ms` (the latest such per source and window,
    plus the ledger's limit messages as 100 % figures), the latest per source and window without a reset if
    recorded within UNKNOWN_RESET_FRESH_MS, and, per window, the one with the latest reset already past within
    PAST_RESET_MS (the quota counts no usage before it). Missing tables give no figures.

    A row out of range (`daemon.quota.usable`) is left out and, when `skipped` is given, described there
    (one string per row, stable across calls, so a caller can log each once)."""
    out: list[OfficialFigure] = []
    since = now_ms - PAST_RESET_MS
    try:
        rows = conn.execute(  # per source and window: the latest still open, the latest without a reset
            "SELECT f.id, f.ts_ms, f.source, f.window, f.used_percent, f.resets_at_ms "
            "FROM official_figures f WHERE f.resets_at_ms > ? AND f.ts_ms = (SELECT MAX(g.ts_ms) "
            "FROM official_figures g WHERE g.source = f.source AND g.window = f.window "
            "AND g.resets_at_ms > ?) "
            "UNION ALL SELECT f.id, f.ts_ms, f.source, f.window, f.used_percent, f.resets_at_ms "
            "FROM official_figures f WHERE f.resets_at_ms IS NULL AND f.ts_ms > ? AND f.ts_ms = (SELECT "
            "MAX(g.ts_ms) FROM official_figures g WHERE g.source = f.source AND g.window = f.window "
            "AND g.resets_at_ms IS NULL)",
            (now_ms, now_ms, now_ms - UNKNOWN_RESET_FRESH_MS),
        ).fetchall()
        for window in WINDOWS:
            rows += conn.execute(
                "SELECT id, ts_ms, source, window, used_percent, resets_at_ms FROM official_figures "
                "WHERE window = ? AND ts_ms > ? AND resets_at_ms <= ? AND resets_at_ms > ? "
                "ORDER BY resets_at_ms DESC LIMIT 1",
                (window, since, now_ms, since),
            ).fetchall()
        for row_id, *values in rows:
            figure = _row_figure(*values)
            if figure is not None:
                out.append(figure)
            elif skipped is not None:
                skipped.append(f"official_figures id {row_id}: {values!r}")
    except sqlite3.OperationalError:
        pass
    try:
        limits = conn.execute(
            "SELECT id, ts_ms, kind, reset_at_ms FROM limit_events WHERE reset_at_ms > ? AND ts_ms <= ?",
            (now_ms, now_ms),
        ).fetchall()
        limits += conn.execute(  # the latest reset already past, per kind
            "SELECT NULL, ts_ms, kind, MAX(reset_at_ms) FROM limit_events "
            "WHERE reset_at_ms <= ? AND reset_at_ms > ? AND ts_ms <= ? GROUP BY kind",
            (now_ms, since, now_ms),
        ).fetchall()
        for _id, ts, kind, reset in limits:
            limit_window = LIMIT_KIND_WINDOW.get(kind)
            if limit_window is None:
                continue
            figure = _row_figure(ts, "limit_message", limit_window, 100.0, reset)
            if figure is not None:
                out.append(figure)
            elif skipped is not None:
                skipped.append(f"limit_events {kind!r}: reset_at_ms {reset!r} at ts_ms {ts!r}")
    except sqlite3.OperationalError:
        pass
    return out
