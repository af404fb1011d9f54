"""Per-session records derived from the ledger: one row per Claude Code session in the `sessions` table.

The ledger (`usage_events`, one row per deduplicated API response) is the only source of figures. A session's
row is always recomputed from all of its events, never incremented, so a refresh that runs twice, or after a
crash, counts every response exactly once. Refreshes are incremental all the same: new rows are found by id,
and triggers on `usage_events` mark every session whose rows were rewritten or deleted (`sessions_dirty`);
only those sessions are recomputed. `git` (for the repository name) runs once per directory, outside any
write transaction.

What people add by hand (notes, tags, value logs) lives in its own tables and survives every recompute.

The pure core (`summarize`, `categorize`, `active_ms`) has no I/O and no clock; `refresh`, `close_idle`,
`close_now` and `attach` are the thin edges. All SQL here is plain portable SQL on a stdlib sqlite3 connection
(`daemon.db.connect_fast`), so commands that refresh before reporting never import SQLAlchemy.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import sqlite3
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from daemon.db import Migration

if TYPE_CHECKING:
    from sqlalchemy import Connection, MetaData

    from daemon.config import CategoryRule, SessionSettings, Settings
    from daemon.context import DaemonContext
    from daemon.paths import BatonPaths

COMPONENT = "sessions"
SYNTHETIC = "<synthetic>"
VALUES = ("high", "medium", "low", "zero", "creation", "maintenance", "debt", "refactor")
_CHUNK = 400  # session ids per IN (...) query: well under SQLite's variable limit


# --------------------------------------------------------------------------------------------------- schema


def _create_tables(conn: Connection) -> None:
    from sqlalchemy import MetaData

    md = MetaData()
    _sessions_table(md)
    _hand_tables(md)
    md.create_all(conn)


def _sessions_table(md: MetaData) -> None:
    from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

    Table(
        "sessions",
        md,
        Column("session_id", String(200), primary_key=True),
        Column("project", Text),
        Column("cwd", Text),
        Column("git_repo", Text),
        Column("git_branch", Text),
        Column("category", Text),
        Column("started_ms", BigInteger),
        Column("ended_ms", BigInteger),
        Column("wall_ms", BigInteger, nullable=False, server_default="0"),
        Column("active_ms", BigInteger, nullable=False, server_default="0"),
        Column("messages", Integer, nullable=False, server_default="0"),
        Column("events", Integer, nullable=False, server_default="0"),  # ledger rows, '<synthetic>' included
        Column("input_tokens", BigInteger, nullable=False, server_default="0"),
        Column("output_tokens", BigInteger, nullable=False, server_default="0"),
        Column("cache_creation_tokens", BigInteger, nullable=False, server_default="0"),
        Column("cache_read_tokens", BigInteger, nullable=False, server_default="0"),
        Column("cost_usd", Float, nullable=False, server_default="0"),
        Column("unpriced", Integer, nullable=False, server_default="0"),
        Column("model", Text),
        Column("models", Text),  # JSON list, most tokens first
        Column("closed_ms", BigInteger),
        Column("close_reason", Text),
        Column("updated_ms", BigInteger),
        Index("ix_sessions_started", "started_ms"),
        Index("ix_sessions_ended", "ended_ms"),
    )
    Table(
        "sessions_state",
        md,
        Column("key", String(100), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


def _hand_tables(md: MetaData) -> None:
    """What people add by hand: notes, tags, value logs."""
    from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

    def session_fk(ondelete: str) -> ForeignKey:
        return ForeignKey("sessions.session_id", ondelete=ondelete)

    Table(
        "session_notes",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("session_id", String(200), session_fk("CASCADE"), nullable=False),
        Column("ts_ms", BigInteger, nullable=False),
        Column("text", Text, nullable=False),
        Index("ix_session_notes_session", "session_id"),
    )
    Table(
        "session_tags",
        md,
        Column("session_id", String(200), session_fk("CASCADE"), primary_key=True),
        Column("tag", String(200), primary_key=True),
        Column("ts_ms", BigInteger, nullable=False),
        Index("ix_session_tags_tag", "tag"),
    )
    Table(
        "value_logs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("session_id", String(200), session_fk("SET NULL")),
        Column("ts_ms", BigInteger, nullable=False),
        Column("task", Text, nullable=False),
        Column("outcome", Text),
        Column("value", String(20), nullable=False),
        Column("tokens", BigInteger),
        Column("model", Text),
        Index("ix_value_logs_session", "session_id"),
    )


# Change tracking. New ledger rows are found by id (`sessions_state.last_event_id`, a rowid range scan). Rows
# the ledger rewrites in place (a streamed response that grew, a repricing) or deletes (dedup, prune) are
# recorded by triggers in `sessions_dirty`, inside the ledger writer's own transaction, so nothing the ledger
# does can be missed and a refresh reads exactly the touched sessions. There is no INSERT trigger: any
# trigger that an INSERT can fire makes SQLite keep a statement journal for every row (measured: cold ingest
# 3-5x slower), while UPDATE and DELETE triggers cost nothing to the ledger's bulk INSERT. When the row with
# the highest id is deleted, SQLite may hand its id out again, so that trigger moves the watermark back.
# A refresh first moves the new and dirty ids to `sessions_claimed` (one short write), computes them from a
# read snapshot, and deletes them from `sessions_claimed` when their records are written; a row touched
# meanwhile is dirty again (or new), so it is recomputed by the next refresh, and a refresh that dies halfway
# leaves its claims for the next one.
# PostgreSQL would need a trigger function instead of a trigger body: `CREATE FUNCTION sessions_mark() RETURNS
# trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO sessions_dirty VALUES (...) ON CONFLICT DO NOTHING; ... $$`
# with `CREATE TRIGGER ... AFTER UPDATE OR DELETE ON usage_events FOR EACH ROW EXECUTE FUNCTION
# sessions_mark()` (or a statement-level trigger with REFERENCING NEW TABLE AS ... to mark once per batch),
# and ids from a sequence, which are never reused (so no watermark step back).
# No `INSERT OR IGNORE`: inside a trigger, the conflict policy of the statement that fired it wins (the
# ledger's UPSERT would turn it into ABORT), so the body avoids the conflict instead.
_MARK = (
    "INSERT INTO sessions_dirty (session_id) SELECT {0} WHERE {0} IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM sessions_dirty WHERE session_id = {0})"
)
_TRIGGERS = {  # v2 and v3 (v4 drops the INSERT one)
    "sessions_mark_insert": f"AFTER INSERT ON usage_events BEGIN {_MARK.format('NEW.session_id')}; END",
    "sessions_mark_update": "AFTER UPDATE ON usage_events BEGIN "
    f"{_MARK.format('NEW.session_id')}; {_MARK.format('OLD.session_id')}; END",
    "sessions_mark_delete": f"AFTER DELETE ON usage_events BEGIN {_MARK.format('OLD.session_id')}; END",
}
_STEP_BACK = (
    "UPDATE sessions_state SET value = OLD.id - 1 WHERE key = 'last_event_id' AND value >= OLD.id "
    "AND NOT EXISTS (SELECT 1 FROM usage_events WHERE id > OLD.id)"
)
_TRIGGERS_V4 = {
    "sessions_changed_update": "AFTER UPDATE ON usage_events BEGIN "
    f"{_MARK.format('NEW.session_id')}; {_MARK.format('OLD.session_id')}; END",
    "sessions_changed_delete": f"AFTER DELETE ON usage_events BEGIN {_MARK.format('OLD.session_id')}; "
    f"{_STEP_BACK}; END",
}


def _track_changes(conn: Connection) -> None:
    from sqlalchemy import text

    statements = [
        "CREATE TABLE IF NOT EXISTS sessions_dirty (session_id VARCHAR(200) PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS sessions_claimed (session_id VARCHAR(200) PRIMARY KEY)",
        # repo name per cwd, so that `git` runs once per directory and never inside a write transaction
        "CREATE TABLE IF NOT EXISTS session_repos (cwd TEXT PRIMARY KEY, git_repo TEXT, checked_ms BIGINT)",
        "INSERT OR IGNORE INTO session_repos (cwd, git_repo, checked_ms) SELECT cwd, MAX(git_repo), "
        "MAX(updated_ms) FROM sessions WHERE cwd IS NOT NULL AND git_repo IS NOT NULL GROUP BY cwd",
        *(f"CREATE TRIGGER IF NOT EXISTS {name} {body}" for name, body in _TRIGGERS.items()),
        # Whatever v1's watermark had not taken in yet: every session is computed once more.
        "INSERT OR IGNORE INTO sessions_dirty (session_id) "
        "SELECT DISTINCT session_id FROM usage_events WHERE session_id IS NOT NULL",
        "DELETE FROM sessions_state WHERE key IN "
        "('last_event_id', 'fp_events', 'fp_tokens', 'fp_cost_micro')",
    ]
    for statement in statements:
        conn.execute(text(statement))


def _recreate_triggers(conn: Connection) -> None:
    """v3: the first v2 trigger bodies used INSERT OR IGNORE, which the ledger's UPSERT turned into ABORT."""
    from sqlalchemy import text

    for name, body in _TRIGGERS.items():
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        conn.execute(text(f"CREATE TRIGGER {name} {body}"))


def _no_insert_trigger(conn: Connection) -> None:
    """v4: new rows by id again (an INSERT trigger slows the ledger's bulk insert several times over); the
    rows inserted so far are all marked already, so the watermark starts at the top."""
    from sqlalchemy import text

    for name in _TRIGGERS:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
    for name, body in _TRIGGERS_V4.items():
        conn.execute(text(f"CREATE TRIGGER IF NOT EXISTS {name} {body}"))
    conn.execute(
        text(
            "INSERT INTO sessions_state (key, value) SELECT 'last_event_id', COALESCE(MAX(id), 0) "
            "FROM usage_events WHERE 1 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    )


MIGRATIONS: list[Migration] = [
    Migration(COMPONENT, 1, "sessions, session_notes, session_tags, value_logs", _create_tables),
    Migration(COMPONENT, 2, "sessions_dirty triggers on usage_events; session_repos cache", _track_changes),
    Migration(COMPONENT, 3, "sessions_dirty triggers that never conflict", _recreate_triggers),
    Migration(COMPONENT, 4, "new rows by id; UPDATE and DELETE triggers only", _no_insert_trigger),
]


def ensure_schema(db_path: Path) -> None:
    """Make sure the ledger at `db_path` exists and has this component's tables (migrating at most once)."""
    if db_path.exists():
        try:
            with _connect(db_path) as conn:
                row = conn.execute(
                    "SELECT MAX(version) FROM schema_migrations WHERE component = ?", (COMPONENT,)
                ).fetchone()
            if row and row[0] is not None and row[0] >= MIGRATIONS[-1].version:
                return
        except sqlite3.Error:
            pass
    from daemon.db import open_ledger

    open_ledger(db_path).dispose()


class _Closing:
    """A sqlite3 connection used as a context manager that commits (or rolls back) and then closes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def _connect(db_path: Path) -> _Closing:
    conn = sqlite3.connect(db_path, timeout=10.0)
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")  # as daemon.db sets it: WAL makes this safe
    conn.execute("PRAGMA foreign_keys=ON")
    return _Closing(conn)


def connect(db_path: Path) -> _Closing:
    """Return a context manager yielding a read-write sqlite3 connection on the ledger, committed on exit."""
    return _connect(db_path)


# ------------------------------------------------------------------------------------------------ pure core


class Event(NamedTuple):
    """One ledger row, as much of it as a session record needs (a NamedTuple: a first refresh makes one per
    ledger row, and tuples are several times cheaper to build than dataclasses)."""

    ts_ms: int
    project: str | None
    cwd: str | None
    git_branch: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: float | None  # costUSD written in the line, else the computed cost; None = unpriced model


@dataclass(frozen=True)
class SessionStats:
    """What the events of one session add up to."""

    session_id: str
    project: str | None
    cwd: str | None
    git_branch: str | None
    started_ms: int
    ended_ms: int
    wall_ms: int
    active_ms: int
    messages: int
    events: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float
    unpriced: int
    models: tuple[str, ...]  # most tokens first; '<synthetic>' left out

    @property
    def model(self) -> str | None:
        return self.models[0] if self.models else None


def active_ms(timestamps: Iterable[int], gap_ms: int) -> int:
    """Return the active time: the sum of the gaps between consecutive timestamps shorter than `gap_ms`.

    Example (gap 5 min): 14:00, 14:02, 14:04, 14:30, 14:32 -> 6 minutes (the 26-minute pause is left out).
    """
    ordered = sorted(timestamps)
    return sum(b - a for a, b in itertools.pairwise(ordered) if b - a < gap_ms)


def summarize(session_id: str, events: Sequence[Event], gap_ms: int) -> SessionStats:
    """Return the record of one session from all its events (any order). Raise ValueError if none."""
    if not events:
        raise ValueError(f"session {session_id} has no events")
    ordered = sorted(events, key=lambda e: e.ts_ms)
    per_model: dict[str, int] = {}
    for e in ordered:
        if e.model and e.model != SYNTHETIC:
            per_model[e.model] = per_model.get(e.model, 0) + _all_tokens(e)
    models = tuple(sorted(per_model, key=lambda m: (-per_model[m], m)))
    first_cwd = next((e.cwd for e in ordered if e.cwd), None)
    last_branch = next((e.git_branch for e in reversed(ordered) if e.git_branch), None)
    return SessionStats(
        session_id=session_id,
        project=next((e.project for e in ordered if e.project), None),
        cwd=first_cwd,
        git_branch=last_branch,
        started_ms=ordered[0].ts_ms,
        ended_ms=ordered[-1].ts_ms,
        wall_ms=ordered[-1].ts_ms - ordered[0].ts_ms,
        active_ms=active_ms((e.ts_ms for e in ordered), gap_ms),
        messages=sum(1 for e in ordered if e.model != SYNTHETIC),
        events=len(ordered),
        input_tokens=sum(e.input_tokens for e in ordered),
        output_tokens=sum(e.output_tokens for e in ordered),
        cache_creation_tokens=sum(e.cache_creation_tokens for e in ordered),
        cache_read_tokens=sum(e.cache_read_tokens for e in ordered),
        cost_usd=round(sum(e.cost or 0.0 for e in ordered), 10),
        unpriced=sum(1 for e in ordered if e.cost is None and _all_tokens(e) > 0),
        models=models,
    )


def _all_tokens(e: Event) -> int:
    return e.input_tokens + e.output_tokens + e.cache_creation_tokens + e.cache_read_tokens


def categorize(cwd: str | None, rules: Sequence[CategoryRule], default: str) -> str:
    """Return the category of the first rule whose fnmatch pattern matches `cwd`, else `default`."""
    if cwd:
        for rule in rules:
            if fnmatch.fnmatchcase(cwd, rule.pattern):
                return rule.category
    return default


def pick_cost(cost_usd: float | None, cost_calc: float | None, mode: str) -> float | None:
    """Return an event's cost under the pricing mode ('auto': the written costUSD, else the computed one)."""
    if mode == "display":
        return cost_usd
    if mode == "calculate":
        return cost_calc
    return cost_usd if cost_usd is not None else cost_calc


# ----------------------------------------------------------------------------------------------- the edges


def git_repo_name(cwd: str | None, *, timeout: float = 2.0) -> str | None:
    """Return the repository name for `cwd`: the basename of `git rev-parse --show-toplevel` when `cwd` exists
    and is in a work tree, else the basename of `cwd` (None without a cwd). Never raises."""
    if not cwd:
        return None
    fallback = os.path.basename(cwd.rstrip("/")) or cwd
    if not os.path.isdir(cwd):
        return fallback
    try:
        done = subprocess.run(
            # The directory comes from a transcript: argv only, no fsmonitor hook, no pager, no prompts.
            ["git", "-c", "core.fsmonitor=false", "-C", cwd, "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return fallback
    top = done.stdout.strip()
    return os.path.basename(top) if done.returncode == 0 and top else fallback


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: how many session records it wrote."""

    sessions: int


_EVENT_SQL = (
    "SELECT session_id, ts_ms, project, cwd, git_branch, model, input_tokens, output_tokens, "
    "cache_creation_tokens, cache_read_tokens, cost_usd, cost_calc FROM usage_events "
    "WHERE session_id IN ({marks}) ORDER BY session_id, ts_ms"
)


@dataclass(frozen=True)
class _Plan:
    """What a refresh computed from one read snapshot of the ledger, before it writes anything."""

    ids: tuple[str, ...]  # every session recomputed (written, or emptied when it has no events left)
    stats: dict[str, SessionStats]
    repos: dict[str, str | None]  # cwd -> repo, from the cache
    digest: int


def refresh(
    conn: sqlite3.Connection,
    settings: SessionSettings,
    *,
    now_ms: int,
    pricing_mode: str = "auto",
    full: bool = False,
    repo_of: Callable[[str | None], str | None] | None = None,
) -> RefreshResult:
    """Recompute every session the ledger touched since the last refresh (all of them when `full`, or when
    the category rules, the active gap or the pricing mode changed); commit, and return how many were written.

    Three steps keep the ledger's write lock short: claim the dirty session ids (a short write), compute the
    records from a read snapshot and run `git` for directories not seen before (no lock held), then write the
    records and the repo cache in one short transaction. Commits whatever `conn` had open first.
    Raises sqlite3.Error on a database problem.
    """
    resolve = repo_of or git_repo_name
    if conn.in_transaction:
        conn.commit()
    _claim(conn)
    plan = _read_plan(conn, settings, pricing_mode, full)
    unknown = {s.cwd for s in plan.stats.values() if s.cwd and s.cwd not in plan.repos}
    found = {cwd: resolve(cwd) for cwd in sorted(unknown)}  # outside any transaction
    unchanged = (_state(conn, "settings_digest"), _state(conn, "pricing_mode")) == (
        plan.digest,
        _mode_code(pricing_mode),
    )
    if not plan.ids and unchanged:
        return RefreshResult(0)  # nothing to write: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT OR REPLACE INTO session_repos (cwd, git_repo, checked_ms) VALUES (?, ?, ?)",
            [(cwd, repo, now_ms) for cwd, repo in found.items()],
        )
        repos = plan.repos | found
        for sid in plan.ids:
            stats = plan.stats.get(sid)
            if stats is None:
                conn.execute(_EMPTY_SQL, (now_ms, sid))  # every event went (pruned, deduplicated away)
            else:
                _write(conn, stats, settings, repos.get(stats.cwd or ""), now_ms)
        for start in range(0, len(plan.ids), _CHUNK):
            chunk = plan.ids[start : start + _CHUNK]
            conn.execute(f"DELETE FROM sessions_claimed WHERE session_id IN ({_marks(chunk)})", chunk)
        _set_state(conn, "settings_digest", plan.digest)
        _set_state(conn, "pricing_mode", _mode_code(pricing_mode))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return RefreshResult(len(plan.stats))


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


def _claim(conn: sqlite3.Connection) -> None:
    """Move the sessions of new ledger rows (id above the watermark) and those the triggers marked to
    `sessions_claimed`, and move the watermark to the top: one short write, none when nothing changed."""
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage_events").fetchone()[0]
    last = _state(conn, "last_event_id")
    if top == last and conn.execute("SELECT 1 FROM sessions_dirty LIMIT 1").fetchone() is None:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage_events").fetchone()[0]
        conn.execute(
            "INSERT OR IGNORE INTO sessions_claimed (session_id) SELECT DISTINCT session_id "
            "FROM usage_events WHERE id > ? AND id <= ? AND session_id IS NOT NULL",
            (_state(conn, "last_event_id"), top),
        )
        conn.execute(
            "INSERT OR IGNORE INTO sessions_claimed (session_id) SELECT session_id FROM sessions_dirty"
        )
        conn.execute("DELETE FROM sessions_dirty")
        _set_state(conn, "last_event_id", top)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _read_plan(conn: sqlite3.Connection, settings: SessionSettings, pricing_mode: str, full: bool) -> _Plan:
    """Compute the records to write from one read snapshot (a deferred transaction, ended before return)."""
    digest = settings_digest(settings, pricing_mode)
    gap_ms = settings.active_gap_minutes * 60_000
    conn.execute("BEGIN")
    try:
        if full or digest != _state(conn, "settings_digest"):
            ids = {r[0] for r in conn.execute("SELECT session_id FROM sessions_claimed")}
            ids |= {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT session_id FROM usage_events WHERE session_id IS NOT NULL"
                )
            }
        else:
            ids = {r[0] for r in conn.execute("SELECT session_id FROM sessions_claimed")}
        ordered = tuple(sorted(ids))
        stats: dict[str, SessionStats] = {}
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            grouped: dict[str, list[Event]] = {}
            for row in conn.execute(_EVENT_SQL.format(marks=_marks(chunk)), chunk):
                grouped.setdefault(row[0], []).append(_event(row, pricing_mode))
            for sid, events in grouped.items():
                stats[sid] = summarize(sid, events, gap_ms)
        cwds = sorted({s.cwd for s in stats.values() if s.cwd})
        repos: dict[str, str | None] = {}
        for start in range(0, len(cwds), _CHUNK):
            dirs = cwds[start : start + _CHUNK]
            sql = f"SELECT cwd, git_repo FROM session_repos WHERE cwd IN ({_marks(dirs)})"
            repos.update((str(r[0]), r[1]) for r in conn.execute(sql, dirs))
    finally:
        conn.rollback()  # a read transaction: nothing to keep
    return _Plan(ordered, stats, repos, digest)


def settings_digest(settings: SessionSettings, pricing_mode: str = "auto") -> int:
    """Return a number that changes whenever a setting that shapes the records (rules, gap, pricing mode)
    changes."""
    shape = [
        settings.active_gap_minutes,
        settings.default_category,
        [(r.pattern, r.category) for r in settings.categories],
        pricing_mode,
    ]
    return zlib.crc32(json.dumps(shape).encode())


def _mode_code(pricing_mode: str) -> int:
    return zlib.crc32(pricing_mode.encode())


def needs_refresh(conn: sqlite3.Connection, pricing_mode: str) -> bool:
    """Return True when the ledger has changes the session records have not taken in (or the pricing mode
    differs from the one they were computed with). A few index probes: cheap enough for every report."""
    if conn.execute("SELECT 1 FROM sessions_dirty LIMIT 1").fetchone() is not None:
        return True
    if conn.execute("SELECT 1 FROM sessions_claimed LIMIT 1").fetchone() is not None:
        return True
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage_events").fetchone()[0]
    if top > _state(conn, "last_event_id"):
        return True
    return _state(conn, "pricing_mode") != _mode_code(pricing_mode)


def _event(row: Sequence[Any], mode: str) -> Event:
    # Token columns are NOT NULL integers in the ledger; `or 0` only guards hand-made rows.
    return Event(
        row[1], row[2], row[3], row[4], row[5], row[6] or 0, row[7] or 0, row[8] or 0, row[9] or 0,
        pick_cost(row[10], row[11], mode),
    )  # fmt: skip


def _write(
    conn: sqlite3.Connection, s: SessionStats, settings: SessionSettings, repo: str | None, now_ms: int
) -> None:
    category = categorize(s.cwd, settings.categories, settings.default_category)
    values = {
        "session_id": s.session_id,
        "project": s.project,
        "cwd": s.cwd,
        "git_repo": repo,
        "git_branch": s.git_branch,
        "category": category,
        "started_ms": s.started_ms,
        "ended_ms": s.ended_ms,
        "wall_ms": s.wall_ms,
        "active_ms": s.active_ms,
        "messages": s.messages,
        "events": s.events,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cache_creation_tokens": s.cache_creation_tokens,
        "cache_read_tokens": s.cache_read_tokens,
        "cost_usd": s.cost_usd,
        "unpriced": s.unpriced,
        "model": s.model,
        "models": json.dumps(list(s.models)),
        "updated_ms": now_ms,
    }
    conn.execute(_UPSERT_SQL.format(", ".join(values), ", ".join("?" * len(values))), list(values.values()))


# A session whose ledger rows are all gone keeps its notes, tags and values, with no figures.
_EMPTY_SQL = (
    "UPDATE sessions SET started_ms = NULL, ended_ms = NULL, wall_ms = 0, active_ms = 0, messages = 0, "
    "events = 0, input_tokens = 0, output_tokens = 0, cache_creation_tokens = 0, cache_read_tokens = 0, "
    "cost_usd = 0, unpriced = 0, model = NULL, models = '[]', updated_ms = ? WHERE session_id = ?"
)


_STAT_COLUMNS = (
    "project",
    "cwd",
    "git_repo",
    "git_branch",
    "category",
    "started_ms",
    "ended_ms",
    "wall_ms",
    "active_ms",
    "messages",
    "events",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "cost_usd",
    "unpriced",
    "model",
    "models",
    "updated_ms",
)
# New activity after a close (a resumed session) opens the record again; notes, tags and values are elsewhere.
_REOPENED = "sessions.closed_ms IS NOT NULL AND excluded.ended_ms > sessions.closed_ms"
_UPSERT_SQL = (
    "INSERT INTO sessions ({}) VALUES ({}) ON CONFLICT (session_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _STAT_COLUMNS)
    + f", closed_ms = CASE WHEN {_REOPENED} THEN NULL ELSE sessions.closed_ms END"
    + f", close_reason = CASE WHEN {_REOPENED} THEN NULL ELSE sessions.close_reason END"
)


def _state(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM sessions_state WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_state(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO sessions_state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def close_idle(conn: sqlite3.Connection, *, now_ms: int, idle_minutes: int) -> int:
    """Close every open session idle for more than `idle_minutes`; return how many. The caller commits."""
    cutoff = now_ms - idle_minutes * 60_000
    cur = conn.execute(
        "UPDATE sessions SET closed_ms = ?, close_reason = 'idle' "
        "WHERE closed_ms IS NULL AND ended_ms IS NOT NULL AND ended_ms < ?",
        (now_ms, cutoff),
    )
    return cur.rowcount


def close_now(
    conn: sqlite3.Connection, session_id: str, *, now_ms: int, reason: str, cwd: str | None
) -> None:
    """Mark `session_id` closed at `now_ms` (creating a placeholder row if the ledger has not seen it yet)."""
    conn.execute(
        "INSERT INTO sessions (session_id, cwd, closed_ms, close_reason, updated_ms) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (session_id) DO UPDATE SET closed_ms = excluded.closed_ms, "
        "close_reason = excluded.close_reason, cwd = COALESCE(sessions.cwd, excluded.cwd)",
        (session_id, cwd, now_ms, reason, now_ms),
    )


def latest_session(conn: sqlite3.Connection) -> str | None:
    """Return the id of the latest session with messages, by the time of its last message, or None when
    there is none.

    Rows with no usage are never the default: `baton hook session-end` writes one for every session id it is
    given, including a Claude Code session left before any prompt, and such a row shows in no report.
    """
    row = conn.execute(
        "SELECT session_id FROM sessions WHERE messages > 0 AND ended_ms IS NOT NULL "
        "ORDER BY ended_ms DESC, session_id LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None


# A session the reports show: one with ledger rows (a row the hook made for a session without usage has none).
_HAS_USAGE = "started_ms IS NOT NULL"


def resolve_session(conn: sqlite3.Connection, ref: str | None) -> str | None:
    """Return the session named by `ref` (a full id or a unique prefix), or the latest one when `ref` is None.

    Only sessions with usage (the ones the reports show) are matched. Raise BatonError if `ref` matches no
    session or several, or names a session with no usage recorded (an entry there would show nowhere).
    """
    from daemon.errors import BatonError

    if ref is None:
        return latest_session(conn)
    rows = [
        r[0]
        for r in conn.execute(
            f"SELECT session_id FROM sessions WHERE {_HAS_USAGE} AND substr(session_id, 1, ?) = ?",
            (len(ref), ref),
        )
    ]
    if ref in rows:
        return ref
    if len(rows) > 1:
        from daemon.session_reports import short_ids

        shown = sorted(short_ids(rows, rows).values())
        listed = ", ".join(shown[:5]) + (", ..." if len(shown) > 5 else "")
        raise BatonError(
            f"{ref!r} matches {len(rows)} sessions: {listed}", hint="give more characters of the id"
        )
    if rows:
        return str(rows[0])
    empty = conn.execute(
        f"SELECT session_id FROM sessions WHERE NOT ({_HAS_USAGE}) AND substr(session_id, 1, ?) = ? "
        "ORDER BY session_id = ? DESC, session_id LIMIT 1",
        (len(ref), ref, ref),
    ).fetchone()
    if empty is not None:
        raise BatonError(
            f"session {empty[0]!r} has no usage recorded, so no report would show what you attach to it",
            hint="Claude Code ended it before any response (or baton does not read its transcript's "
            "directory); `baton report recent` lists the sessions with usage",
        )
    raise BatonError(f"no session matches {ref!r}", hint="`baton report recent` lists the sessions")


def refresh_db(db_path: Path, settings: SessionSettings, *, pricing_mode: str = "auto") -> RefreshResult:
    """Bring the sessions in the ledger at `db_path` up to date and close idle ones; return what was done."""
    ensure_schema(db_path)
    now = int(time.time() * 1000)
    with _connect(db_path) as conn:
        if not _has_table(conn, "usage_events"):
            return RefreshResult(0)
        result = refresh(conn, settings, now_ms=now, pricing_mode=pricing_mode)
        close_idle(conn, now_ms=now, idle_minutes=settings.idle_minutes)
    return result


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
        is not None
    )


# ---------------------------------------------------------------------------------------------- the daemon


class SessionKeeper:
    """A thread that refreshes the session records when poked (after ingests) and every `interval` seconds."""

    def __init__(
        self, paths: BatonPaths, settings: Callable[[], Settings], *, interval: float = 30.0
    ) -> None:
        self.paths = paths
        self.settings = settings  # read on every refresh: the daemon swaps its settings on SIGHUP
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="baton-sessions", daemon=True)
        self.last: RefreshResult | None = None

    def start(self) -> None:
        self._thread.start()

    def poke(self, *_: Any) -> None:
        """Ask for a refresh soon (used as a quota listener: a new snapshot follows an ingest)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def run_once(self) -> RefreshResult:
        """Refresh now, on the calling thread; return what was done."""
        settings = self.settings()
        with self._lock:
            self.last = refresh_db(
                self.paths.ledger_db, settings.sessions, pricing_mode=settings.pricing.mode
            )
            return self.last

    def _loop(self) -> None:
        from daemon.logs import get_logger

        log = get_logger("baton.sessions")
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the daemon must outlive a locked or damaged database
                log.warning("sessions refresh failed", error=str(exc))
            self._wake.wait(self.interval)
            self._wake.clear()


def attach(ctx: DaemonContext) -> SessionKeeper:
    """Keep the session records fresh inside the daemon: refresh after each quota evaluation and every 30 s,
    close sessions idle for `settings.sessions.idle_minutes`, and answer the "sessions.refresh" control op."""
    keeper = SessionKeeper(ctx.paths, lambda: ctx.settings)

    def _refresh_op(_request: dict[str, Any]) -> dict[str, Any]:
        result = keeper.run_once()
        return {"ok": True, "sessions": result.sessions}

    ctx.handlers["sessions.refresh"] = _refresh_op
    ctx.quota_listeners.append(keeper.poke)
    ctx.shutdown_hooks.append(keeper.stop)
    keeper.start()
    return keeper
