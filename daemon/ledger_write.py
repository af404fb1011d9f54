"""Writing the ledger with the stdlib `sqlite3` (no SQLAlchemy import, so that parser processes and fast
paths start quickly): the dedup rule in memory (`Merger`) and in the database (the upsert's WHERE clause), and
the 15-minute rollup the reports read. The schema itself lives in `daemon.ledger`.

Exactly once is the database's job. Every usage row has a unique `dedup_key` (ccusage's `(message.id,
requestId)`, or a digest of file and line for lines without a message id); a row is replaced only by a better
candidate by ccusage's rule — a non-sidechain beats a sidechain, else the larger token total, then one with
`speed`, then the first seen (file path order, then line order) — written as the upsert's WHERE clause, so any
order of arrival, a restart, or two processes racing give the same ledger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BUCKET_MS = 900_000


def _null(value: None) -> None:
    return None


# The sqlite3 module binds int, float, str and bytearray as they are, but for None it first looks for an
# adapter, and not finding one costs an AttributeError formatted and dropped (CPython 3.11-3.13): about
# 0.3-0.45 us per NULL parameter, and a usage row has two or three. This one keeps None a NULL.
sqlite3.register_adapter(type(None), _null)

_ROLLUP_SELECT = (
    f"SELECT ts_ms / {BUCKET_MS}, "
    "COALESCE(CASE WHEN speed = 'fast' THEN model || '-fast' ELSE model END, ''), COALESCE(project, ''), "
    "count(*), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), "
    "sum(cache_read_tokens), sum(COALESCE(cost_usd, cost_calc, 0)), sum(COALESCE(cost_calc, 0)), "
    "sum(COALESCE(cost_usd, 0)), max(cost_usd IS NULL AND cost_calc IS NULL), max(cost_calc IS NULL) "
    "FROM usage_events"
)


def refresh_rollup(conn: sqlite3.Connection, lo_ms: int | None = None, hi_ms: int | None = None) -> None:
    """Rebuild the 15-minute sums covering [lo_ms, hi_ms] (everything when no bounds), in the caller's
    transaction."""
    if lo_ms is None or hi_ms is None:
        conn.execute("DELETE FROM usage_rollup")
        conn.execute(f"INSERT INTO usage_rollup {_ROLLUP_SELECT} GROUP BY 1, 2, 3")
        return
    lo, hi = lo_ms // BUCKET_MS, hi_ms // BUCKET_MS
    conn.execute("DELETE FROM usage_rollup WHERE bucket >= ? AND bucket <= ?", (lo, hi))
    conn.execute(
        f"INSERT INTO usage_rollup {_ROLLUP_SELECT} WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1, 2, 3",
        (lo * BUCKET_MS, (hi + 1) * BUCKET_MS),
    )


# ---- writing -----------------------------------------------------------------------------------------------

EVENT_COLUMNS: tuple[str, ...] = (
    "dedup_key",
    "message_id",
    "request_id",
    "ts_ms",
    "session_id",
    "project",
    "cwd",
    "git_branch",
    "version",
    "model",
    "speed",
    "is_sidechain",
    "source",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_5m_tokens",
    "cache_1h_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
    "cost_calc",
    "file_id",
    "line_no",
)
KEY, MSG, TS, SIDE, SPEED, TOTAL, FILE, LINE = (
    EVENT_COLUMNS.index(c)
    for c in (
        "dedup_key",
        "message_id",
        "ts_ms",
        "is_sidechain",
        "speed",
        "total_tokens",
        "file_id",
        "line_no",
    )
)
Row = tuple[object, ...]  # one usage row in EVENT_COLUMNS order

_BETTER = """
  (excluded.is_sidechain < usage_events.is_sidechain)
  OR (excluded.is_sidechain = usage_events.is_sidechain AND (
       excluded.total_tokens > usage_events.total_tokens
       OR (excluded.total_tokens = usage_events.total_tokens AND (
            (excluded.speed IS NOT NULL AND usage_events.speed IS NULL)
            OR ((excluded.speed IS NULL) = (usage_events.speed IS NULL)
                AND ((SELECT path FROM files WHERE id = excluded.file_id), excluded.line_no)
                    < ((SELECT path FROM files WHERE id = usage_events.file_id), usage_events.line_no))))))
"""
UPSERT_EVENT = (
    f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "
    f"ON CONFLICT (dedup_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in EVENT_COLUMNS if c != "dedup_key")
    + f" WHERE {_BETTER}"
)
INSERT_LIMIT = (
    "INSERT INTO limit_events (dedup_key, ts_ms, session_id, project, cwd, kind, reset_at_ms, text, file_id, "
    "line_no) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING"
)


def rank(row: Row, path: str) -> tuple[int, int, int, _Reverse]:
    """Return a key whose maximum is the row ccusage keeps among duplicates (path order breaks ties)."""
    side, total, line = row[SIDE], row[TOTAL], row[LINE]
    assert isinstance(side, int) and isinstance(total, int) and isinstance(line, int)
    return (-side, total, int(row[SPEED] is not None), _Reverse(path, line))


@dataclass(frozen=True, order=False)
class _Reverse:
    """Orders (path, line) backwards, so that `max` prefers the first seen."""

    path: str
    line: int

    def __lt__(self, other: _Reverse) -> bool:
        return (self.path, self.line) > (other.path, other.line)

    def __gt__(self, other: _Reverse) -> bool:
        return (self.path, self.line) < (other.path, other.line)

    def __le__(self, other: _Reverse) -> bool:
        return not self > other

    def __ge__(self, other: _Reverse) -> bool:
        return not self < other


def replaces(candidate: Row, cand_path: str, existing: Row, existing_path: str) -> bool:
    """True if `candidate` wins over `existing` under ccusage's replacement rule (as `rank` orders them)."""
    c_side, c_total = candidate[SIDE], candidate[TOTAL]
    assert isinstance(c_side, int) and isinstance(c_total, int)
    outranks = ranks_above(c_side, c_total, candidate[SPEED] is not None, existing)
    if outranks is not None:
        return outranks
    c_line, e_line = candidate[LINE], existing[LINE]
    assert isinstance(c_line, int) and isinstance(e_line, int)
    return (cand_path, c_line) < (existing_path, e_line)  # else the first seen stays


def ranks_above(side: int, total: int, has_speed: bool, existing: Row) -> bool | None:
    """Whether a row with these fields beats `existing` before their places in the files are compared: a
    non-sidechain beats a sidechain, else the larger token total wins, else one with `speed`. None on a
    tie (then the first seen stays)."""
    e_side = existing[SIDE]
    if side != e_side:
        return bool(e_side)
    e_total = existing[TOTAL]
    if total != e_total:
        assert isinstance(e_total, int)
        return total > e_total
    if has_speed != (existing[SPEED] is not None):
        return has_speed
    return None


class Merger:
    """Dedups usage rows in memory exactly as ccusage does (exact key, then the sidechain cross-match)."""

    def __init__(self) -> None:
        self.best: dict[str, tuple[Row, str]] = {}
        self.by_message: dict[str, list[str]] = {}

    def add(self, row: Row, path: str) -> None:
        """Offer one row (from file `path`); keep it if it is new or better than its duplicate."""
        key = row[KEY]
        assert isinstance(key, str)
        current = self.best.get(key)
        if current is None:
            msg = row[MSG]
            known = self.by_message.get(msg) if isinstance(msg, str) else None
            other = self._sidechain_match(row, known) if known else None
            if other is None:
                self.best[key] = (row, path)
                if known is not None:
                    known.append(key)
                elif isinstance(msg, str):
                    self.by_message[msg] = [key]
                return
            key, current = other, self.best[other]
        if replaces(row, path, current[0], current[1]):
            self._replace(key, row, path)

    def _sidechain_match(self, row: Row, keys: list[str]) -> str | None:
        for key in keys:
            if row[SIDE] or self.best[key][0][SIDE]:
                return key
        return None

    def _replace(self, old_key: str, row: Row, path: str) -> None:
        new_key = row[KEY]
        assert isinstance(new_key, str)
        if new_key != old_key:
            del self.best[old_key]
            keys = self.by_message[str(row[MSG])]
            keys[keys.index(old_key)] = new_key
        self.best[new_key] = (row, path)

    def rows(self) -> list[tuple[Row, str]]:
        return list(self.best.values())


@dataclass(frozen=True)
class WriteResult:
    new_events: int
    new_limits: int


def existing_matches(conn: sqlite3.Connection, rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Return the stored rows (with their file path) sharing a message id or a dedup key with `rows`."""
    msgs = sorted({r[MSG] for r in rows if r[MSG] is not None}, key=str)
    keys = sorted({r[KEY] for r in rows if r[MSG] is None}, key=str)
    cols = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    found: list[tuple[Row, str]] = []
    for column, values in (("message_id", msgs), ("dedup_key", keys)):
        for i in range(0, len(values), 500):
            part = values[i : i + 500]
            sql = (
                f"SELECT {cols}, f.path FROM usage_events e JOIN files f ON f.id = e.file_id "
                f"WHERE e.{column} IN ({', '.join('?' * len(part))})"
            )
            found.extend((tuple(r[:-1]), r[-1]) for r in conn.execute(sql, part))
    return found


def write_events(
    conn: sqlite3.Connection, candidates: Iterable[tuple[Row, str]], *, table_empty: bool
) -> int:
    """Upsert deduped candidate rows (file_id set) inside the caller's transaction; return how many are new.

    Stored rows take part in the dedup (exact key and sidechain cross-match); the upsert's WHERE clause
    repeats the rule, so a racing writer can never leave two rows for one response.
    """
    cand = list(candidates)
    if not cand:
        return 0
    if table_empty:
        conn.executemany(UPSERT_EVENT, [r for r, _ in cand])
        _refresh_rollup_for(conn, [r for r, _ in cand])
        return len(cand)
    merger = Merger()
    stored = existing_matches(conn, [r for r, _ in cand])
    stored_keys = {str(r[KEY]) for r, _ in stored}
    for row, path in stored:
        merger.add(row, path)
    for row, path in cand:
        merger.add(row, path)
    kept = merger.rows()
    kept_keys = {str(r[KEY]) for r, _ in kept}
    gone = [k for k in stored_keys if k not in kept_keys]
    if gone:
        conn.executemany("DELETE FROM usage_events WHERE dedup_key = ?", [(k,) for k in gone])
    fresh = [r for r, _ in kept if str(r[KEY]) not in stored_keys]
    changed = [r for r, _ in kept if str(r[KEY]) in stored_keys]
    conn.executemany(UPSERT_EVENT, fresh + changed)
    _refresh_rollup_for(conn, [r for r, _ in cand] + [r for r, _ in stored])
    return len(fresh) - len(gone)


def _refresh_rollup_for(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
    times = [t for r in rows if isinstance(t := r[TS], int)]
    if times:
        refresh_rollup(conn, min(times), max(times))


# ---- the bulk path: a catch-up into a ledger that only it has written ---------------------------------

INSERT_EVENT = (
    f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
_ROLLUP_ADD = (
    f"INSERT INTO usage_rollup {_ROLLUP_SELECT} WHERE id > ? GROUP BY 1, 2, 3 "
    "ON CONFLICT (bucket, label, project) DO UPDATE SET events = events + excluded.events, "
    "input_tokens = input_tokens + excluded.input_tokens, "
    "output_tokens = output_tokens + excluded.output_tokens, "
    "cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens, "
    "cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, "
    "cost_auto = cost_auto + excluded.cost_auto, cost_calc = cost_calc + excluded.cost_calc, "
    "cost_display = cost_display + excluded.cost_display, "
    "unpriced_auto = max(unpriced_auto, excluded.unpriced_auto), "
    "unpriced_calc = max(unpriced_calc, excluded.unpriced_calc)"
)


def insert_new(conn: sqlite3.Connection, rows: Sequence[Row]) -> int:
    """Insert rows that have no duplicate anywhere in the ledger (file_id set), and add them to the rollup;
    return how many. Raise sqlite3.IntegrityError if one does have a duplicate: the caller's transaction must
    then be rolled back and the rows written with `write_events`."""
    if not rows:
        return 0
    last = conn.execute("SELECT COALESCE(max(id), 0) FROM usage_events").fetchone()[0]
    conn.executemany(INSERT_EVENT, rows)
    conn.execute(_ROLLUP_ADD, (last,))
    return len(rows)
