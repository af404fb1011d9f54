"""The record of alerts fired (table `alerts_fired`, migrations component "alerts").

Crash safety: an alert is inserted as pending (delivered NULL) in its own transaction *before* it is sent,
then marked. After a kill -9 between the two, the daemon finds the pending row on start and sends it,
so an alert is never lost; the unique key (kind, threshold, window_start_ms) means it is never recorded twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.alerts import Alert, Fired
from daemon.db import Migration

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

DDL = """
CREATE TABLE IF NOT EXISTS alerts_fired (
    id INTEGER PRIMARY KEY,
    kind VARCHAR(32) NOT NULL,
    threshold INTEGER NOT NULL,
    window_start_ms BIGINT NOT NULL,
    window_end_ms BIGINT NOT NULL,
    source VARCHAR(32) NOT NULL,
    sent INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    fired_ms BIGINT NOT NULL,
    delivered INTEGER NULL,
    delivered_via VARCHAR(32) NULL,
    UNIQUE (kind, threshold, window_start_ms)
)
"""


def _v1(conn: Connection) -> None:
    from sqlalchemy import text

    conn.execute(text(DDL))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_alerts_fired_end ON alerts_fired (window_end_ms)"))


MIGRATIONS = [Migration("alerts", 1, "alerts_fired: what fired, per window and threshold", _v1)]


@dataclass(frozen=True)
class StoredAlert:
    """One row of `alerts_fired`, for `baton status`."""

    id: int
    kind: str
    threshold: int
    title: str
    body: str
    fired_ms: int
    sent: bool
    delivered: bool | None
    delivered_via: str | None


def load_fired(engine: Engine, since_ms: int) -> list[Fired]:
    """Return the fired records of windows that ended at or after `since_ms`."""
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, threshold, window_start_ms, window_end_ms, delivered, fired_ms "
                "FROM alerts_fired WHERE window_end_ms >= :since"
            ),
            {"since": since_ms},
        ).all()
    return [Fired(r[0], r[1], r[2], r[3], None if r[4] is None else bool(r[4]), r[5]) for r in rows]


def record(engine: Engine, alert: Alert, now_ms: int) -> int | None:
    """Insert `alert` as pending (done when not sent); return its id, None if already recorded."""
    from sqlalchemy import text

    with engine.begin() as conn:
        result = conn.execute(
            text(
                "INSERT INTO alerts_fired (kind, threshold, window_start_ms, window_end_ms, source, sent, "
                "title, body, fired_ms, delivered) VALUES (:kind, :threshold, :ws, :we, :source, :sent, "
                ":title, :body, :now, :delivered) ON CONFLICT (kind, threshold, window_start_ms) DO NOTHING"
            ),
            {
                "kind": alert.kind,
                "threshold": alert.threshold,
                "ws": alert.window_start_ms,
                "we": alert.window_end_ms,
                "source": alert.source,
                "sent": int(alert.send),
                "title": alert.title,
                "body": alert.body,
                "now": now_ms,
                "delivered": None if alert.send else 0,
            },
        )
        return int(result.lastrowid) if result.rowcount else None


def mark_delivered(engine: Engine, alert_id: int, delivered: bool, via: str) -> None:
    """Record whether alert `alert_id` reached the desktop, and through which backend."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE alerts_fired SET delivered = :d, delivered_via = :via WHERE id = :id"),
            {"d": int(delivered), "via": via, "id": alert_id},
        )


def pending(engine: Engine, now_ms: int) -> list[tuple[int, str, str]]:
    """Return (id, title, body) of alerts recorded but never sent (a crash between record and send)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, title, body FROM alerts_fired WHERE delivered IS NULL AND sent = 1 "
                "AND (window_end_ms > :now OR threshold = 0) ORDER BY id"
            ),
            {"now": now_ms},
        ).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def recent(conn: sqlite3.Connection, limit: int = 5) -> list[StoredAlert]:
    """Return the last `limit` alerts sent (stdlib sqlite3; empty when the table does not exist yet)."""
    try:
        rows: list[Any] = conn.execute(
            "SELECT id, kind, threshold, title, body, fired_ms, sent, delivered, delivered_via "
            "FROM alerts_fired WHERE sent = 1 ORDER BY fired_ms DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [
        StoredAlert(
            r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), None if r[7] is None else bool(r[7]), r[8]
        )
        for r in rows
    ]
