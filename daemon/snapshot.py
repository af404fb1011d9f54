"""The latest quota snapshot as a small JSON file, for commands that must answer fast (statusline, hooks).

The daemon writes it after every evaluation; readers never import SQLAlchemy or pydantic. Its top level is
the 5-hour `QuotaSnapshot.to_dict()` (`percent`, `level`, `source`, `reset_at`, `tokens_used`, `limited`...,
the week under `weekly`; with `limit_known` false the plan's limit is a guess, kept in `estimated_limit`, and
`tokens_limit`, `tokens_remaining` and `runway_minutes` are null rather than made up), plus `written_at`
(ISO 8601), `pid` (the daemon's) and `timezone` (IANA name or "").
The write is atomic (a temporary file renamed over the old one), so a reader never sees half a file.

`fast_view` is what the fast paths (statusline, prompt hook) show, so that they never present a figure as
newer than it is. The snapshot is trusted only while the daemon that wrote it still runs (it re-evaluates
on every change); an official figure recorded after the snapshot was written (and saying something else)
wins over it, and without a running daemon the newest official figure wins over any snapshot. What is not
known to be current carries `age_s` (seconds since it was true): renderers show it from STALE_AFTER_S on.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from daemon.quota import OfficialFigure

FILE_NAME = "quota-snapshot.json"
STALE_AFTER_S = 300.0  # older than this, a figure not known to be current is shown with its age


def path(paths: BatonPaths) -> Path:
    """Return where the snapshot lives."""
    return paths.data_dir / FILE_NAME


def write(paths: BatonPaths, data: dict[str, Any]) -> None:
    """Replace the snapshot with `data` atomically (file private to the user). Raise OSError on failure."""
    target = path(paths)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=target.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(paths: BatonPaths) -> dict[str, Any] | None:
    """Return the last snapshot written, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _written_ms(paths: BatonPaths, snap: Mapping[str, Any]) -> int | None:
    """Return when the snapshot was written: its `written_at`, else the file's modification time."""
    try:
        written = datetime.fromisoformat(str(snap["written_at"]))
        if written.tzinfo is None:
            written = written.replace(tzinfo=UTC)
        return round(written.timestamp() * 1000)
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    try:
        return path(paths).stat().st_mtime_ns // 1_000_000
    except OSError:
        return None


def _writer_runs(paths: BatonPaths, snap: Mapping[str, Any]) -> bool:
    """Return True if the daemon that wrote `snap` is the one holding the instance lock now."""
    from daemon.instance import holder_pid

    pid = holder_pid(paths)
    return pid is not None and (snap.get("pid") == pid or pid == -1)


def official_figures(paths: BatonPaths, now_ms: int) -> list[OfficialFigure]:
    """Return the usable official figures in the ledger at `now_ms` (stdlib sqlite3, read-only)."""
    import sqlite3

    from daemon import official
    from daemon.db import connect_fast

    if not paths.ledger_db.exists():
        return []
    try:
        with connect_fast(paths.ledger_db, readonly=True) as conn:
            return official.load(conn, now_ms)
    except sqlite3.Error:
        return []


def _same(figure: OfficialFigure, part: Mapping[str, Any]) -> bool:
    """Return True if the snapshot's `part` already shows `figure` (so the figure adds nothing newer)."""
    if part.get("source") != "official" or part.get("source_detail") != figure.source:
        return False
    percent = part.get("percent")
    if not isinstance(percent, int | float) or abs(percent - figure.used_percent) > 0.01:
        return False
    if figure.resets_at_ms is None:
        return True
    try:
        reset = datetime.fromisoformat(str(part["reset_at"]))
    except (KeyError, TypeError, ValueError):
        return False
    return abs(reset.timestamp() * 1000 - figure.resets_at_ms) < 1000


def _figure_view(figure: OfficialFigure, now_ms: int) -> dict[str, Any]:
    """Return a snapshot-shaped dict for an official figure (no token figures: a percent is all it says)."""
    from daemon.quota import level_for, to_datetime

    limited = figure.source == "limit_message" or figure.used_percent >= 100
    percent = 100.0 if figure.source == "limit_message" else figure.used_percent
    return {
        "window": figure.window,
        "percent": percent,
        "level": level_for(percent),
        "source": "official",
        "source_detail": figure.source,
        "reset_at": None if figure.resets_at_ms is None else to_datetime(figure.resets_at_ms).isoformat(),
        "limited": limited,
        "active": True,
        "tokens_remaining": None,
        "runway_minutes": None,
        "age_s": max(0.0, (now_ms - figure.ts_ms) / 1000),
    }


def fast_view(paths: BatonPaths, now: datetime) -> dict[str, Any] | None:
    """Return what a fast path should show at `now` (snapshot-shaped, see the module's docstring), or None.

    Per window: the running daemon's snapshot unless a newer official figure says otherwise; else the
    newest official figure in the ledger (with `age_s`); else a snapshot the daemon left when it stopped,
    with `age_s` and `daemon_stopped`. Never raises for bad files; a reset already past is left to the
    renderer (it must not show that window as current).
    """
    from daemon.quota import UNKNOWN_RESET_FRESH_MS, best_official

    now_ms = round(now.timestamp() * 1000)
    snap = read(paths)
    figures = official_figures(paths, now_ms)
    fresh_from = now_ms - UNKNOWN_RESET_FRESH_MS  # a figure without a reset: only while fresh
    five = best_official(figures, "five_hour", now_ms, fresh_from)
    week = best_official(figures, "seven_day", now_ms, fresh_from)
    written_ms = _written_ms(paths, snap) if snap is not None else None
    trusted = snap is not None and _writer_runs(paths, snap)

    def newer(figure: OfficialFigure | None, part: Any) -> bool:
        if figure is None:
            return False
        if not trusted or not isinstance(part, Mapping) or written_ms is None:
            return True
        return figure.ts_ms > written_ms and not _same(figure, part)

    weekly: Any
    if snap is not None and not newer(five, snap):
        view = dict(snap)
        weekly = snap.get("weekly")
        if not trusted:
            view["daemon_stopped"] = True
            if written_ms is not None:
                view["age_s"] = max(0.0, (now_ms - written_ms) / 1000)
    elif five is not None:
        view = _figure_view(five, now_ms)
        weekly = snap.get("weekly") if snap is not None and trusted else None
        if snap is not None and isinstance(snap.get("timezone"), str):
            view["timezone"] = snap["timezone"]
    elif week is not None:  # only the week is known
        view = {"window": "five_hour", "percent": None, "source": "official"}
        weekly = None
    else:
        return None
    if week is not None and (not isinstance(weekly, Mapping) or newer(week, weekly)):
        weekly = _figure_view(week, now_ms)
    view["weekly"] = dict(weekly) if isinstance(weekly, Mapping) else None
    return view
