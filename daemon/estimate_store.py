"""Saved estimates and tracked sessions in the ledger database; `status_lines` for `baton status`, `attach`
for the daemon (the figures come from `daemon.estimate_progress`, the text from `daemon.estimate_view`).

Tables (component "estimates"):
- `estimates`: one saved estimate of a plan (the whole estimate as JSON, and its headline figures);
- `estimate_phases`: the planned phases of a saved estimate;
- `tracked_sessions`: a session worked against an estimate, from the first `baton phase start` to the end of
  its last phase (or `baton phase finish`), with the project directory whose usage counts (NULL: all);
- `tracked_phases`: each phase as it was worked: start, end, and the tokens it used when it ended.

Tokens are never copied out of the ledger for good: a phase's usage is the sum of `usage_events` between its
start and its end (input + output + cache creation, the tokens that count against the quota, as in
`daemon.plans`), computed again whenever it is shown, so a line ingested late is counted once, in its phase.
The figure stored at the end of a phase is what the notification said at the time.

Reads that `baton status` makes go through the stdlib sqlite3 connection (`daemon.db.connect_fast`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daemon.db import Migration, connect_fast
from daemon.estimate import Estimate
from daemon.estimate_model import TrackedPhase, TrackedSession
from daemon.estimate_progress import NO_USAGE, PhaseRow, PlannedRow, SessionView, Usage
from daemon.estimate_view import saved_estimate_line, session_lines
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from daemon.context import DaemonContext

HOUR_MS = 3_600_000

_SCHEMA_V1 = (
    """CREATE TABLE estimates (
        id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, plan_path TEXT NOT NULL, title TEXT NOT NULL,
        kind VARCHAR(16) NOT NULL, mid INTEGER NOT NULL, buffered INTEGER NOT NULL, limit_tokens INTEGER,
        limit_source TEXT, body TEXT NOT NULL)""",
    """CREATE TABLE estimate_phases (
        id INTEGER PRIMARY KEY, estimate_id INTEGER NOT NULL REFERENCES estimates(id) ON DELETE CASCADE,
        number INTEGER NOT NULL, name TEXT NOT NULL, task_type VARCHAR(16) NOT NULL, hours_low REAL NOT NULL,
        hours_high REAL NOT NULL, multiplier REAL NOT NULL, factors TEXT NOT NULL, libraries TEXT NOT NULL,
        low INTEGER NOT NULL,
        mid INTEGER NOT NULL, high INTEGER NOT NULL, given INTEGER NOT NULL)""",
    "CREATE INDEX ix_estimate_phases_estimate ON estimate_phases (estimate_id, number)",
    """CREATE TABLE tracked_sessions (
        id INTEGER PRIMARY KEY, estimate_id INTEGER REFERENCES estimates(id) ON DELETE SET NULL,
        title TEXT NOT NULL, project_dir TEXT, started_ms INTEGER NOT NULL, ended_ms INTEGER)""",
    """CREATE TABLE tracked_phases (
        id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES tracked_sessions(id) ON DELETE CASCADE,
        estimate_phase_id INTEGER REFERENCES estimate_phases(id) ON DELETE SET NULL,
        name TEXT NOT NULL, task_type VARCHAR(16) NOT NULL, planned_hours REAL, multiplier REAL NOT NULL,
        factors TEXT NOT NULL, libraries TEXT NOT NULL, estimated INTEGER, started_ms INTEGER NOT NULL,
        ended_ms INTEGER, tokens_at_end INTEGER, note TEXT)""",
    "CREATE INDEX ix_tracked_phases_session ON tracked_phases (session_id, started_ms)",
)


def _create_v1(conn: Connection) -> None:
    from sqlalchemy import text

    for statement in _SCHEMA_V1:
        conn.execute(text(statement))


MIGRATIONS: list[Migration] = [
    Migration("estimates", 1, "estimates, estimate_phases, tracked_sessions, tracked_phases", _create_v1),
]


# ---- reading -----------------------------------------------------------------------------------------------


def usage_between(conn: sqlite3.Connection, start_ms: int, end_ms: int, project_dir: str | None) -> Usage:
    """Return the ledger's usage with start_ms <= ts_ms < end_ms, under `project_dir` (None: everywhere)."""
    sql = (
        "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        "COALESCE(SUM(cache_creation_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), COUNT(*) "
        "FROM usage_events WHERE ts_ms >= ? AND ts_ms < ?"
    )
    args: list[Any] = [start_ms, end_ms]
    if project_dir is not None:
        prefix = project_dir.rstrip("/") + "/"
        sql += " AND (cwd = ? OR substr(cwd, 1, ?) = ?)"
        args += [project_dir.rstrip("/") or "/", len(prefix), prefix]
    try:
        row = conn.execute(sql, args).fetchone()
    except sqlite3.OperationalError:  # no ledger yet
        return NO_USAGE
    i, o, cc, cr, n = (int(v) for v in row)
    return Usage(i + o + cc, i, o, cc, cr, n)


def _has_tables(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='tracked_sessions'"
    ).fetchone()
    return found is not None


def _libs(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _factors(raw: str | None) -> tuple[tuple[str, str], ...]:
    """Return the stored complexity levels, keeping only the known ones (a bad row never stops a report)."""
    from daemon.estimate import MULTIPLIERS

    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return ()
    if not isinstance(value, dict):
        return ()
    return tuple((k, v) for k, v in value.items() if v in MULTIPLIERS.get(k, {}))


def _planned(conn: sqlite3.Connection, estimate_id: int | None) -> tuple[PlannedRow, ...]:
    if estimate_id is None:
        return ()
    rows = conn.execute(
        "SELECT id, number, name, task_type, hours_low, hours_high, multiplier, libraries, mid, factors "
        "FROM estimate_phases WHERE estimate_id = ? ORDER BY number, id",
        (estimate_id,),
    ).fetchall()
    return tuple(
        PlannedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _libs(r[7]), r[8], _factors(r[9])) for r in rows
    )


def _session(conn: sqlite3.Connection, row: Sequence[Any], now_ms: int) -> SessionView:
    sid, estimate_id, title, project_dir, started_ms, ended_ms = row
    estimate = None
    if estimate_id is not None:
        body = conn.execute("SELECT body FROM estimates WHERE id = ?", (estimate_id,)).fetchone()
        estimate = json.loads(body[0]) if body else None
    planned = _planned(conn, estimate_id)
    numbers = {p.id: p.number for p in planned}
    phases = []
    for r in conn.execute(
        "SELECT id, name, task_type, planned_hours, multiplier, libraries, estimated, started_ms, ended_ms, "
        "tokens_at_end, note, estimate_phase_id, factors FROM tracked_phases WHERE session_id = ? "
        "ORDER BY started_ms, id",
        (sid,),
    ).fetchall():
        usage = usage_between(conn, r[7], r[8] if r[8] is not None else now_ms + 1, project_dir)
        phases.append(
            PhaseRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                _libs(r[5]),
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                usage,
                numbers.get(r[11]),
                _factors(r[12]),
                r[11],
            )
        )
    return SessionView(
        sid, title, project_dir, started_ms, ended_ms, estimate_id, estimate, planned, tuple(phases)
    )


_SESSION_COLUMNS = "id, estimate_id, title, project_dir, started_ms, ended_ms"


def load_session(conn: sqlite3.Connection, session_id: int | None, now_ms: int) -> SessionView | None:
    """Return the tracked session `session_id` (None: the latest one), or None when there is none."""
    if not _has_tables(conn):
        return None
    if session_id is None:
        row = conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM tracked_sessions ORDER BY started_ms DESC, id DESC"
        )
    else:
        row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM tracked_sessions WHERE id = ?", (session_id,))
    found = row.fetchone()
    return None if found is None else _session(conn, found, now_ms)


def active_session(conn: sqlite3.Connection, now_ms: int) -> SessionView | None:
    """Return the tracked session still open (the latest if several), or None."""
    if not _has_tables(conn):
        return None
    found = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM tracked_sessions WHERE ended_ms IS NULL "
        "ORDER BY started_ms DESC, id DESC"
    ).fetchone()
    return None if found is None else _session(conn, found, now_ms)


def all_sessions(conn: sqlite3.Connection, now_ms: int) -> list[SessionView]:
    """Return every tracked session, oldest first."""
    if not _has_tables(conn):
        return []
    rows = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM tracked_sessions ORDER BY started_ms, id").fetchall()
    return [_session(conn, r, now_ms) for r in rows]


def latest_estimate(conn: sqlite3.Connection) -> tuple[int, dict[str, Any]] | None:
    """Return (id, estimate) of the latest saved estimate, or None."""
    if not _has_tables(conn):
        return None
    row = conn.execute("SELECT id, body FROM estimates ORDER BY created_ms DESC, id DESC").fetchone()
    return None if row is None else (int(row[0]), json.loads(row[1]))


def tracked_history(conn: sqlite3.Connection, now_ms: int) -> list[TrackedSession]:
    """Return the finished phases of every tracked session as the model's input, oldest session first."""
    history = []
    for s in all_sessions(conn, now_ms):
        phases = tuple(
            TrackedPhase(
                task_type=p.task_type,
                planned_hours=p.planned_hours,
                actual_hours=(p.ended_ms - p.started_ms) / HOUR_MS,
                tokens=p.usage.tokens,
                multiplier=p.multiplier,
                libraries=p.libraries,
                estimated=p.estimated,
                factors=p.factors,
            )
            for p in s.phases
            if p.ended_ms is not None
        )
        if not phases:
            continue
        estimated = sum(p.estimated or 0 for p in phases) if all(p.estimated for p in phases) else None
        history.append(TrackedSession(str(s.id), s.started_ms, phases, estimated, s.title))
    return history


def read_history(paths: BatonPaths, now_ms: int) -> list[TrackedSession]:
    """Return the tracked history from the ledger file, or [] when there is no ledger yet."""
    if not paths.ledger_db.exists():
        return []
    with connect_fast(paths.ledger_db, readonly=True) as conn:
        return tracked_history(conn, now_ms)


# ---- what `baton status` shows ------------------------------------------------------------------------


def status_lines(paths: BatonPaths, now_ms: int | None = None) -> list[str]:
    """Return what `baton status` shows: the tracked session, else the saved estimate, else []."""
    import time

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not paths.ledger_db.exists():
        return []
    try:
        with connect_fast(paths.ledger_db, readonly=True) as conn:
            view = active_session(conn, now_ms)
            if view is not None:
                return session_lines(view, now_ms)
            latest = latest_estimate(conn)
            started = (
                latest is not None
                and conn.execute(
                    "SELECT 1 FROM tracked_sessions WHERE estimate_id = ?", (latest[0],)
                ).fetchone()
            )
    except sqlite3.Error:
        return []
    if latest is None or started:
        return []
    return [saved_estimate_line(latest[1])]


# ---- writing (the CLI's side; SQLAlchemy Core on the migrated engine) --------------------------------------


def save_estimate(conn: Connection, est: Estimate, plan_path: str, kind: str, now_ms: int) -> int:
    """Store `est` and its phases; return the new estimate's id."""
    from sqlalchemy import text

    limit = est.limit
    new_id = conn.execute(
        text(
            "INSERT INTO estimates (created_ms, plan_path, title, kind, mid, buffered, limit_tokens, "
            "limit_source, body) VALUES (:c, :p, :t, :k, :m, :b, :lt, :ls, :body) RETURNING id"
        ),
        {
            "c": now_ms,
            "p": plan_path,
            "t": est.title,
            "k": kind,
            "m": est.mid,
            "b": est.buffered,
            "lt": limit.tokens if limit else None,
            "ls": limit.source if limit else None,
            "body": json.dumps(est.to_dict()),
        },
    ).scalar_one()
    for p in est.phases:
        conn.execute(
            text(
                "INSERT INTO estimate_phases (estimate_id, number, name, task_type, hours_low, hours_high, "
                "multiplier, factors, libraries, low, mid, high, given) "
                "VALUES (:e, :n, :name, :t, :lo, :hi, :m, :f, :libs, :low, :mid, :high, :g)"
            ),
            {
                "e": new_id,
                "n": p.number,
                "name": p.name,
                "t": p.task_type,
                "lo": p.hours_low,
                "hi": p.hours_high,
                "m": p.multiplier,
                "f": json.dumps(dict(p.levels)),
                "libs": json.dumps(list(p.libraries)),
                "low": p.low,
                "mid": p.mid,
                "high": p.high,
                "g": int(p.given),
            },
        )
    return int(new_id)


def start_session(
    conn: Connection, estimate_id: int | None, title: str, project_dir: str | None, now_ms: int
) -> int:
    """Open a tracked session; return its id."""
    from sqlalchemy import text

    return int(
        conn.execute(
            text(
                "INSERT INTO tracked_sessions (estimate_id, title, project_dir, started_ms) "
                "VALUES (:e, :t, :p, :s) RETURNING id"
            ),
            {"e": estimate_id, "t": title, "p": project_dir, "s": now_ms},
        ).scalar_one()
    )


def start_phase(
    conn: Connection, session_id: int, planned: PlannedRow | None, name: str, task_type: str, now_ms: int
) -> int:
    """Open a phase of a tracked session (matching a planned phase when there is one); return its id."""
    from sqlalchemy import text

    hours = (planned.hours_low + planned.hours_high) / 2 if planned else None
    return int(
        conn.execute(
            text(
                "INSERT INTO tracked_phases (session_id, estimate_phase_id, name, task_type, planned_hours, "
                "multiplier, factors, libraries, estimated, started_ms) "
                "VALUES (:s, :ep, :n, :t, :h, :m, :f, :l, :e, :at) "
                "RETURNING id"
            ),
            {
                "s": session_id,
                "ep": planned.id if planned else None,
                "n": planned.name if planned else name,
                "t": planned.task_type if planned else task_type,
                "h": hours,
                "m": planned.multiplier if planned else 1.0,
                "f": json.dumps(dict(planned.factors) if planned else {}),
                "l": json.dumps(list(planned.libraries) if planned else []),
                "e": planned.mid if planned else None,
                "at": now_ms,
            },
        ).scalar_one()
    )


def end_phase(conn: Connection, phase_id: int, tokens: int, note: str | None, now_ms: int) -> None:
    """Close a phase at `now_ms`, keeping the tokens it had used then and the note."""
    from sqlalchemy import text

    conn.execute(
        text(
            "UPDATE tracked_phases SET ended_ms = :at, tokens_at_end = :tok, note = COALESCE(:n, note) "
            "WHERE id = :id"
        ),
        {"at": now_ms, "tok": tokens, "n": note, "id": phase_id},
    )


def move_session_start(conn: Connection, session_id: int, at_ms: int) -> None:
    """Move a tracked session's start back to `at_ms` (a phase was marked as started earlier)."""
    from sqlalchemy import text

    conn.execute(
        text("UPDATE tracked_sessions SET started_ms = :at WHERE id = :id"), {"at": at_ms, "id": session_id}
    )


def end_session(conn: Connection, session_id: int, now_ms: int) -> None:
    """Close a tracked session at `now_ms`."""
    from sqlalchemy import text

    conn.execute(
        text("UPDATE tracked_sessions SET ended_ms = :at WHERE id = :id"), {"at": now_ms, "id": session_id}
    )


# ---- the daemon --------------------------------------------------------------------------------------------


def attach(ctx: DaemonContext) -> None:
    """Register the control-socket op "estimate.status" (the lines `baton status` shows) in the daemon."""

    def _status(_request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "lines": status_lines(ctx.paths)}

    ctx.handlers["estimate.status"] = _status
