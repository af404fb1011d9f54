"""The database: one SQLite file (WAL, so the daemon writes while CLI commands read) and versioned migrations.

Schema and migrations are SQLAlchemy Core, so the same code can run on PostgreSQL later. Each part of baton
that owns tables lists its migrations in a module named in MIGRATION_MODULES; a migration and the row that
records it commit in one transaction, so a failing migration leaves nothing half-applied.

Start-up matters for commands that Claude Code runs on every refresh (statusline, hooks) and for warm reports:
`connect_fast` opens the same file through the stdlib `sqlite3` without importing SQLAlchemy (~240 ms here).
Queries on that path are plain portable SQL.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

# Modules that define `MIGRATIONS: list[Migration]`. Order matters only between components that reference
# each other's tables; versions are per component.
MIGRATION_MODULES: tuple[str, ...] = (
    "daemon.ledger",
    "daemon.alerts_store",
    "daemon.official",
    "daemon.sessions",
    "daemon.launch_store",
    "daemon.estimate_store",
)

BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Migration:
    """One step of one component's schema: `apply` runs inside the transaction that records it."""

    component: str
    version: int
    description: str
    apply: Callable[[Connection], None]


def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    # Triggers on usage_events make SQLite keep statement journals; in memory they cost a third, not 3x.
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def make_engine(path: Path) -> Engine:
    """Return an engine on the SQLite file at `path` (created private to the user), WAL mode."""
    from sqlalchemy import create_engine, event

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        path.touch(mode=0o600)
    engine = create_engine(f"sqlite:///{path}", future=True)
    event.listen(engine, "connect", _on_connect)
    return engine


def _collect() -> list[Migration]:
    found: list[Migration] = []
    for name in MIGRATION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a part not written yet
                continue
            raise
        found.extend(getattr(module, "MIGRATIONS", []))
    return found


def migrate(engine: Engine) -> list[Migration]:
    """Apply every migration not yet recorded, each in its own transaction; return the ones applied.

    Safe when several processes start at once (the daemon, a CLI catch-up): they take turns on a lock file
    beside the database, and each re-reads what is already applied once it holds the lock.
    """
    database = engine.url.database
    if not database or database == ":memory:":
        return _migrate_locked(engine)
    with _file_lock(Path(database).with_name(Path(database).name + ".migrate-lock")):
        return _migrate_locked(engine)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _migrate_locked(engine: Engine) -> list[Migration]:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component VARCHAR(64) NOT NULL, "
                "version INTEGER NOT NULL, description TEXT NOT NULL, applied_at VARCHAR(40) NOT NULL, "
                "PRIMARY KEY (component, version))"
            )
        )
        done = {(r[0], r[1]) for r in conn.execute(text("SELECT component, version FROM schema_migrations"))}
    applied = []
    for m in sorted(_collect(), key=lambda m: (MIGRATION_MODULES.index(_module_of(m)), m.version)):
        if (m.component, m.version) in done:
            continue
        with engine.begin() as conn:
            m.apply(conn)
            conn.execute(
                text(
                    "INSERT INTO schema_migrations (component, version, description, applied_at) "
                    "VALUES (:c, :v, :d, datetime('now'))"
                ),
                {"c": m.component, "v": m.version, "d": m.description},
            )
        applied.append(m)
    return applied


def _module_of(m: Migration) -> str:
    module = getattr(m.apply, "__module__", "")
    return module if module in MIGRATION_MODULES else MIGRATION_MODULES[0]


def open_ledger(path: Path) -> Engine:
    """Return a migrated engine on the ledger at `path`."""
    engine = make_engine(path)
    migrate(engine)
    return engine


@contextmanager
def connect_fast(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """Yield a stdlib sqlite3 connection on the ledger (no SQLAlchemy import), closed afterwards."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
        os.chmod(path, 0o600)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA temp_store=MEMORY")
    try:
        yield conn
    finally:
        conn.close()
