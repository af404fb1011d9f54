"""The usage ledger: its schema (SQLAlchemy Core, versioned migrations). Rows are written by
`daemon.ledger_write` over the stdlib sqlite3, the one way rows get written.

Exactly once is the database's job. Every usage row has a unique `dedup_key` (ccusage's `(message.id,
requestId)`, or for a line without a message id a digest of session, file name, line number and line); a
row is replaced only by a better candidate by ccusage's rule — a non-sidechain beats a sidechain, else the
larger token total, then one with `speed`, then the first seen (file path order, then line order) — written
as the upsert's WHERE clause, so any order of arrival, a restart, or two processes racing give the same
ledger. Events and the files' new offsets commit together.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from daemon.db import Migration
from daemon.ledger_write import _ROLLUP_SELECT, BUCKET_MS  # noqa: F401  (re-exported)

metadata = MetaData()

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("device", Integer, nullable=False, default=0),
    Column("inode", Integer, nullable=False, default=0),
    Column("size", Integer, nullable=False, default=0),
    Column("offset", Integer, nullable=False, default=0),
    Column("lines", Integer, nullable=False, default=0),
    Column("mtime_ns", Integer, nullable=False, default=0),
    Column("head", String(64), nullable=False, default=""),
    # "tail" (the bytes before the offset) is added by migration 4, not here: v1 creates this table as it was
    Column("session_id", Text),
    Column("project", Text),
    Column("deleted", Integer, nullable=False, default=0),
    Column("skipped_lines", Integer, nullable=False, default=0),
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dedup_key", Text, nullable=False, unique=True),
    Column("message_id", Text),
    Column("request_id", Text),
    Column("ts_ms", Integer, nullable=False),
    Column("session_id", Text),
    Column("project", Text),
    Column("cwd", Text),
    Column("git_branch", Text),
    Column("version", Text),
    Column("model", Text),
    Column("speed", Text),
    Column("is_sidechain", Integer, nullable=False, default=0),
    Column("source", String(16), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_creation_tokens", Integer, nullable=False),
    Column("cache_5m_tokens", Integer, nullable=False),
    Column("cache_1h_tokens", Integer, nullable=False),
    Column("cache_read_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("cost_calc", Float),
    Column("file_id", Integer, nullable=False),
    Column("line_no", Integer, nullable=False),
    Index("ix_usage_events_ts", "ts_ms"),
    Index("ix_usage_events_message", "message_id"),
    Index("ix_usage_events_session", "session_id", "ts_ms"),
)

limit_events = Table(
    "limit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dedup_key", Text, nullable=False, unique=True),
    Column("ts_ms", Integer, nullable=False),
    Column("session_id", Text),
    Column("project", Text),
    Column("cwd", Text),
    Column("kind", String(16), nullable=False),
    Column("reset_at_ms", Integer),
    Column("text", Text, nullable=False),
    Column("file_id", Integer),
    Column("line_no", Integer),
    Index("ix_limit_events_ts", "ts_ms"),
)

ledger_meta = Table(
    "ledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# 15-minute sums of usage_events (every real zone's day starts on a quarter hour), so that daily, weekly and
# monthly reports in any zone read a few rows per day instead of every event. Derived data: rebuilt for the
# touched time range in the same transaction as the events.
usage_rollup = Table(
    "usage_rollup",
    metadata,
    Column("bucket", Integer, primary_key=True),  # ts_ms // BUCKET_MS
    Column("label", Text, primary_key=True),  # model, '-fast' appended in fast mode; '' when none
    Column("project", Text, primary_key=True),
    Column("events", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_creation_tokens", Integer, nullable=False),
    Column("cache_read_tokens", Integer, nullable=False),
    Column("cost_auto", Float, nullable=False),
    Column("cost_calc", Float, nullable=False),
    Column("cost_display", Float, nullable=False),
    Column("unpriced_auto", Integer, nullable=False),
    Column("unpriced_calc", Integer, nullable=False),
)
_V1_TABLES = [files, usage_events, limit_events, ledger_meta]


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=_V1_TABLES)


def _create_v2(conn: Connection) -> None:
    from sqlalchemy import text

    usage_rollup.create(conn, checkfirst=True)
    conn.execute(text(f"INSERT INTO usage_rollup {_ROLLUP_SELECT} GROUP BY 1, 2, 3"))


def _rekey_idless_v3(conn: Connection) -> None:
    """Lines without a message id were keyed by path and line text, now by session, file name, line number
    and text: drop those rows of the transcripts still on disk and read those files again from their start
    (their other rows dedup as ever). Rows of deleted transcripts keep their old keys, and their history."""
    from sqlalchemy import text

    idless = "SELECT DISTINCT file_id FROM usage_events WHERE dedup_key LIKE 'line:%'"
    conn.execute(
        text(
            "UPDATE files SET offset = 0, lines = 0, size = -1, head = '', skipped_lines = 0 "
            f"WHERE deleted = 0 AND id IN ({idless})"
        )
    )
    conn.execute(
        text(
            "DELETE FROM usage_events WHERE dedup_key LIKE 'line:%' "
            "AND file_id IN (SELECT id FROM files WHERE deleted = 0 AND size = -1)"
        )
    )
    conn.execute(text("DELETE FROM usage_rollup"))
    conn.execute(text(f"INSERT INTO usage_rollup {_ROLLUP_SELECT} GROUP BY 1, 2, 3"))


def _tail_digest_v4(conn: Connection) -> None:
    """files.tail: a digest of the bytes just before the offset, so that a transcript rewritten in place (same
    inode, same first bytes, a newline where the old offset was) is read again, not taken for an append.
    Existing rows get '' (unknown): their next read checks only the newline, then records the digest."""
    from sqlalchemy import text

    conn.execute(text("ALTER TABLE files ADD COLUMN tail VARCHAR(64) NOT NULL DEFAULT ''"))


MIGRATIONS: list[Migration] = [
    Migration("ledger", 1, "files, usage_events, limit_events, ledger_meta", _create_v1),
    Migration("ledger", 2, "usage_rollup: 15-minute sums for fast reports", _create_v2),
    Migration("ledger", 3, "re-key lines without a message id (line number in the key)", _rekey_idless_v3),
    Migration("ledger", 4, "files.tail: digest of the bytes before the offset", _tail_digest_v4),
]
