"""Per-session records derived from the ledger: one row per Claude Code session in the `sessions` table.

The ledger (`usage_events`, one row per deduplicated API response) is the only source of figures. A session's
row is always recomputed from all of its events, never incremented, so a refresh that runs twice, or after a
crash, counts every response exactly once. Refreshes are incremental all the same: only sessions that received
events since the last refresh (`sessions_state.last_event_id`) are recomputed.

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
    from sqlalchemy import Connection

    from daemon.config import CategoryRule, SessionSettings, Settings
    from daemon.context import DaemonContext
    from daemon.paths import BatonPaths

COMPONENT = "sessions"
SYNTHETIC = "<synthetic>"
VALUES = ("high", "medium", "low", "zero", "creation", "maintenance", "debt", "refactor")
_CHUNK = 400  # session ids per IN (...) query: well under SQLite's variable limit


# --------------------------------------------------------------------------------------------------- schema


def _create_tables(conn: Connection) -> None:
    from sqlalchemy import (
        BigInteger,
        Column,
        Float,
        ForeignKey,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
    )

    md = MetaData()
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
        "session_notes",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "session_id", String(200), ForeignKey("sessions.session_id", ondelete="CASCADE"), nullable=False
        ),
        Column("ts_ms", BigInteger, nullable=False),
        Column("text", Text, nullable=False),
        Index("ix_session_notes_session", "session_id"),
    )
    Table(
        "session_tags",
        md,
        Column(
            "session_id", String(200), ForeignKey("sessions.session_id", ondelete="CASCADE"), primary_key=True
        ),
        Column("tag", String(200), primary_key=True),
        Column("ts_ms", BigInteger, nullable=False),
        Index("ix_session_tags_tag", "tag"),
    )
    Table(
        "value_logs",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("session_id", String(200), ForeignKey("sessions.session_id", ondelete="SET NULL")),
        Column("ts_ms", BigInteger, nullable=False),
        Column("task", Text, nullable=False),
        Column("outcome", Text),
        Column("value", String(20), nullable=False),
        Column("tokens", BigInteger),
        Column("model", Text),
        Index("ix_value_logs_session", "session_id"),
    )
    Table(
        "sessions_state",
        md,
        Column("key", String(100), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )
    md.create_all(conn)


MIGRATIONS: list[Migration] = [
    Migration(COMPONENT, 1, "sessions, session_notes, session_tags, value_logs", _create_tables),
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
    """What one refresh did: sessions recomputed and the ledger position reached."""

    sessions: int
    last_event_id: int


_EVENT_SQL = (
    "SELECT session_id, ts_ms, project, cwd, git_branch, model, input_tokens, output_tokens, "
    "cache_creation_tokens, cache_read_tokens, cost_usd, cost_calc FROM usage_events "
    "WHERE session_id IN ({marks}) ORDER BY session_id, ts_ms"
)


def refresh(
    conn: sqlite3.Connection,
    settings: SessionSettings,
    *,
    now_ms: int,
    pricing_mode: str = "auto",
    full: bool = False,
) -> RefreshResult:
    """Recompute every session whose ledger events changed since the last refresh (all of them when `full`).

    New rows are found by id; rows the ledger rewrote in place (a streamed response that grew, a repricing)
    or deleted are found by comparing per-session fingerprints (events, tokens, cost) once the ledger-wide
    fingerprint differs from the one stored. Returns how many sessions were written; the caller commits.
    Raises sqlite3.Error on a database problem.
    """
    rules = settings_digest(settings)
    if rules != _state(conn, "settings_digest"):
        full = True  # new category rules or active gap: every record is recomputed once
    last = 0 if full else _state(conn, "last_event_id")
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage_events").fetchone()[0]
    # Everything below reads rows up to `top` only, so rows appended meanwhile wait for the next refresh.
    now_fp = ledger_fingerprint(conn, pricing_mode, upto=top)
    stored = _stored_fingerprint(conn)
    if top <= last and now_fp == stored:
        return RefreshResult(0, last)
    dirty = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT session_id FROM usage_events "
            "WHERE id > ? AND id <= ? AND session_id IS NOT NULL",
            (last, top),
        )
    }
    if last and not _explained(now_fp, stored, ledger_fingerprint(conn, pricing_mode, after=last, upto=top)):
        dirty |= _changed_sessions(conn, pricing_mode, top)  # not only appends: find the rewritten sessions
    ids = sorted(dirty)
    gap_ms = settings.active_gap_minutes * 60_000
    repos: dict[str, str | None] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        grouped: dict[str, list[Event]] = {}
        for row in conn.execute(_EVENT_SQL.format(marks=",".join("?" * len(chunk))), chunk):
            grouped.setdefault(row[0], []).append(_event(row, pricing_mode))
        for sid, events in grouped.items():
            _write(conn, summarize(sid, events, gap_ms), settings, repos, now_ms)
    _set_state(conn, "last_event_id", top)
    _set_state(conn, "settings_digest", rules)
    for key, value in zip(_FP_KEYS, now_fp, strict=True):
        _set_state(conn, key, value)
    return RefreshResult(len(ids), top)


def settings_digest(settings: SessionSettings) -> int:
    """Return a number that changes whenever a setting that shapes the records (rules, gap) changes."""
    shape = [
        settings.active_gap_minutes,
        settings.default_category,
        [(r.pattern, r.category) for r in settings.categories],
    ]
    return zlib.crc32(json.dumps(shape).encode())


_FP_KEYS = ("fp_events", "fp_tokens", "fp_cost_micro")
_TOKENS = "(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens)"


def _cost_sql(mode: str) -> str:
    return {"display": "cost_usd", "calculate": "cost_calc"}.get(mode, "COALESCE(cost_usd, cost_calc)")


def ledger_fingerprint(
    conn: sqlite3.Connection, pricing_mode: str, *, after: int = 0, upto: int | None = None
) -> tuple[int, int, int]:
    """Return (events, tokens, cost in micro-USD) over the ledger rows with a session id and an id in
    (after, upto] (all rows by default)."""
    row = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM({_TOKENS}), 0), TOTAL({_cost_sql(pricing_mode)}) FROM usage_events "
        "WHERE session_id IS NOT NULL AND id > ? AND id <= ?",
        (after, upto if upto is not None else 2**62),
    ).fetchone()
    return int(row[0]), int(row[1]), round(float(row[2]) * 1_000_000)


def _explained(now: tuple[int, int, int], stored: tuple[int, int, int], new: tuple[int, int, int]) -> bool:
    """True when the ledger moved by exactly the new rows (appends only); cost sums may differ by rounding."""
    return (
        now[0] == stored[0] + new[0]
        and now[1] == stored[1] + new[1]
        and abs(now[2] - stored[2] - new[2]) <= 2
    )


def needs_refresh(conn: sqlite3.Connection, pricing_mode: str) -> bool:
    """Return True when the ledger has rows, or changes, that the session records have not taken in."""
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage_events").fetchone()[0]
    if top > _state(conn, "last_event_id"):
        return True
    return ledger_fingerprint(conn, pricing_mode) != _stored_fingerprint(conn)


def _stored_fingerprint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    a, b, c = (_state(conn, k) for k in _FP_KEYS)
    return a, b, c


def _changed_sessions(conn: sqlite3.Connection, pricing_mode: str, upto: int) -> set[str]:
    """Return the sessions whose stored figures no longer match their ledger rows (only looked for when the
    ledger-wide fingerprint moved other than by the new rows)."""
    stored = {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            f"SELECT session_id, events, {_TOKENS}, cost_usd FROM sessions WHERE started_ms IS NOT NULL"
        )
    }
    changed = set()
    for sid, events, tokens, cost in conn.execute(
        f"SELECT session_id, COUNT(*), COALESCE(SUM({_TOKENS}), 0), TOTAL({_cost_sql(pricing_mode)}) "
        "FROM usage_events WHERE session_id IS NOT NULL AND id <= ? GROUP BY session_id",
        (upto,),
    ):
        old = stored.get(sid)
        if old is None or old[0] != events or old[1] != tokens or abs(old[2] - cost) > 1e-6:
            changed.add(sid)
    return changed


def _event(row: Sequence[Any], mode: str) -> Event:
    # Token columns are NOT NULL integers in the ledger; `or 0` only guards hand-made rows.
    return Event(
        row[1], row[2], row[3], row[4], row[5], row[6] or 0, row[7] or 0, row[8] or 0, row[9] or 0,
        pick_cost(row[10], row[11], mode),
    )  # fmt: skip


def _write(
    conn: sqlite3.Connection,
    s: SessionStats,
    settings: SessionSettings,
    repos: dict[str, str | None],
    now_ms: int,
) -> None:
    old = conn.execute("SELECT cwd, git_repo FROM sessions WHERE session_id = ?", (s.session_id,)).fetchone()
    if old is not None and old[0] == s.cwd and old[1]:
        repo = old[1]
    else:
        key = s.cwd or ""
        if key not in repos:
            repos[key] = git_repo_name(s.cwd)
        repo = repos[key]
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
    """Return the id of the session with the most recent activity, or None when there is none."""
    row = conn.execute(
        "SELECT session_id FROM sessions ORDER BY COALESCE(ended_ms, closed_ms, 0) DESC, session_id LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None


def resolve_session(conn: sqlite3.Connection, ref: str | None) -> str | None:
    """Return the session named by `ref` (a full id or a unique prefix), or the latest one when `ref` is None.

    Raise BatonError if `ref` matches no session or several.
    """
    from daemon.errors import BatonError

    if ref is None:
        return latest_session(conn)
    rows = [
        r[0] for r in conn.execute("SELECT session_id FROM sessions WHERE session_id LIKE ? || '%'", (ref,))
    ]
    if ref in rows:
        return ref
    if not rows:
        raise BatonError(f"no session matches {ref!r}", hint="`baton report recent` lists the sessions")
    if len(rows) > 1:
        raise BatonError(f"{ref!r} matches {len(rows)} sessions", hint="give more characters of the id")
    return str(rows[0])


def refresh_db(db_path: Path, settings: SessionSettings, *, pricing_mode: str = "auto") -> RefreshResult:
    """Bring the sessions in the ledger at `db_path` up to date and close idle ones; return what was done."""
    ensure_schema(db_path)
    now = int(time.time() * 1000)
    with _connect(db_path) as conn:
        if not _has_table(conn, "usage_events"):
            return RefreshResult(0, 0)
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
        return {"ok": True, "sessions": result.sessions, "last_event_id": result.last_event_id}

    ctx.handlers["sessions.refresh"] = _refresh_op
    ctx.quota_listeners.append(keeper.poke)
    ctx.shutdown_hooks.append(keeper.stop)
    keeper.start()
    return keeper
