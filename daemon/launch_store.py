"""Every launch recorded (table `launches`, component "launches"): when, which handoff, how, how it ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select, update

from daemon.db import Migration

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

metadata = MetaData()
launches = Table(
    "launches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", Integer, nullable=False),  # UTC epoch ms
    Column("handoff_id", String(64), nullable=False, index=True),
    Column("handoff_path", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("trigger", String(16), nullable=False),  # 'scheduled' | 'manual' | 'auto'
    Column("mode", String(16), nullable=False),  # 'tmux' | 'terminal' | 'headless'
    Column("argv", Text, nullable=False),  # JSON list: what was run
    Column("tmux_session", String(128)),
    Column("pid", Integer),
    Column("log_path", Text),
    Column("status", String(16), nullable=False),  # 'started' | 'failed' | 'exited'
    Column("exit_code", Integer),
    Column("ended_ms", Integer),
    Column("error", Text),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[launches])


MIGRATIONS = [Migration("launches", 1, "launches: one row per launch of a primed session", _v1)]


@dataclass(frozen=True)
class LaunchRecord:
    id: int
    ts: datetime
    handoff_id: str
    handoff_path: str
    project: str
    trigger: str
    mode: str
    argv: tuple[str, ...]
    tmux_session: str | None
    pid: int | None
    log_path: str | None
    status: str
    exit_code: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ts": self.ts.isoformat(), "argv": list(self.argv)}


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def record(
    engine: Engine,
    *,
    now: datetime,
    handoff_id: str,
    handoff_path: str,
    project: str,
    trigger: str,
    mode: str,
    argv: list[str],
    tmux_session: str | None,
    pid: int | None,
    log_path: str | None,
    error: str | None,
    exit_code: int | None = None,
) -> int:
    """Insert one launch and return its id. A launch with `error` is stored as failed."""
    status = "failed" if error else ("exited" if exit_code is not None else "started")
    with engine.begin() as conn:
        values = {
            "ts_ms": _ms(now), "handoff_id": handoff_id, "handoff_path": handoff_path, "project": project,
            "trigger": trigger, "mode": mode, "argv": json.dumps(argv, ensure_ascii=False),
            "tmux_session": tmux_session, "pid": pid, "log_path": log_path, "status": status,
            "exit_code": exit_code, "error": error,
            "ended_ms": _ms(now) if exit_code is not None or error else None,
        }  # fmt: skip
        result = conn.execute(insert(launches).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish(engine: Engine, launch_id: int, *, exit_code: int, now: datetime) -> None:
    """Record that launch `launch_id` exited with `exit_code`."""
    with engine.begin() as conn:
        conn.execute(
            update(launches)
            .where(launches.c.id == launch_id)
            .values(status="exited", exit_code=exit_code, ended_ms=_ms(now))
        )


def _row(r: Any) -> LaunchRecord:
    return LaunchRecord(
        id=r.id, ts=datetime.fromtimestamp(r.ts_ms / 1000, UTC), handoff_id=r.handoff_id,
        handoff_path=r.handoff_path, project=r.project, trigger=r.trigger, mode=r.mode,
        argv=tuple(json.loads(r.argv)), tmux_session=r.tmux_session, pid=r.pid, log_path=r.log_path,
        status=r.status, exit_code=r.exit_code, error=r.error,
    )  # fmt: skip


def recent(engine: Engine, *, handoff_id: str | None = None, limit: int = 20) -> list[LaunchRecord]:
    """Return the latest launches (of one handoff when `handoff_id` is given), newest first."""
    query = select(launches).order_by(launches.c.id.desc()).limit(limit)
    if handoff_id is not None:
        query = query.where(launches.c.handoff_id == handoff_id)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]
