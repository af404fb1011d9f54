"""A ledger on disk filled with hand-written usage events, through the real migrations.

If the ledger component (engineer A) has not created `usage_events`, the table is made here with the columns
DEVELOPING.md documents, so these tests run either way.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.db import open_ledger

_USAGE_EVENTS = """
CREATE TABLE IF NOT EXISTS usage_events (
  id INTEGER PRIMARY KEY, dedup_key TEXT UNIQUE NOT NULL, message_id TEXT, request_id TEXT,
  ts_ms INTEGER NOT NULL, session_id TEXT, project TEXT, cwd TEXT, git_branch TEXT, version TEXT,
  model TEXT, speed TEXT, is_sidechain INTEGER, source TEXT,
  input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_creation_tokens INTEGER NOT NULL DEFAULT 0, cache_5m_tokens INTEGER NOT NULL DEFAULT 0,
  cache_1h_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL, cost_calc REAL, file_id INTEGER, line_no INTEGER
)
"""

_counter = itertools.count(1)


def ms(text: str) -> int:
    """Epoch ms of an ISO time ("2026-03-02T10:00:00Z")."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass(frozen=True)
class Ev:
    session: str
    ts: str
    model: str = "claude-opus-4-6"
    inp: int = 0
    out: int = 0
    cc: int = 0
    cr: int = 0
    cost: float | None = None
    cwd: str | None = "/work/repos/app"
    branch: str = "main"
    project: str = "-work-repos-app"


def make_ledger(db: Path) -> Path:
    """Create a migrated ledger at `db` with a `usage_events` table; return `db`."""
    open_ledger(db).dispose()
    conn = sqlite3.connect(db)
    try:
        conn.execute(_USAGE_EVENTS)
        conn.commit()
    finally:
        conn.close()
    return db


def add(db: Path, events: list[Ev]) -> None:
    """Append events to the ledger as the ingester would (one row per API response)."""
    conn = sqlite3.connect(db)
    try:
        for e in events:
            n = next(_counter)
            conn.execute(
                "INSERT INTO usage_events (dedup_key, message_id, request_id, ts_ms, session_id, project, "
                "cwd, git_branch, version, model, speed, is_sidechain, source, input_tokens, output_tokens, "
                "cache_creation_tokens, cache_5m_tokens, cache_1h_tokens, cache_read_tokens, total_tokens, "
                "cost_usd, cost_calc, file_id, line_no) VALUES (" + ",".join("?" * 24) + ")",
                (
                    f"msg_{n}:req_{n}",
                    f"msg_{n}",
                    f"req_{n}",
                    ms(e.ts),
                    e.session,
                    e.project,
                    e.cwd,
                    e.branch,
                    "2.1.197",
                    e.model,
                    "standard",
                    0,
                    "assistant",
                    e.inp,
                    e.out,
                    e.cc,
                    0,
                    e.cc,
                    e.cr,
                    e.inp + e.out + e.cc + e.cr,
                    e.cost,  # as costUSD written in the line: the ledger's repricing leaves it alone
                    None,
                    1,
                    n,
                ),
            )
        conn.commit()
    finally:
        conn.close()


def repeat(session: str, times: list[str], **kw: object) -> list[Ev]:
    return [Ev(session, t, **kw) for t in times]  # type: ignore[arg-type]


# The hand-computed fixture (all times UTC). Expected figures are worked out in test_reports.py.
A = "aaaa1111-0000-4000-8000-000000000001"  # terraform-aws, opus, 5 events, active 6 min, wall 32 min
B = "bbbb2222-0000-4000-8000-000000000002"  # webapp, sonnet, crosses midnight UTC, active 16 min
C = "cccc3333-0000-4000-8000-000000000003"  # webapp, haiku + opus + a <synthetic> line
D = "dddd4444-0000-4000-8000-000000000004"  # /home/u/notes, 23:30 UTC = 00:30 next day in Paris
E = "eeee5555-0000-4000-8000-000000000005"  # terraform-gcp, across the DST change in Europe/Paris


def fixture_events() -> list[Ev]:
    tf_aws = {"cwd": "/work/repos/terraform-aws", "project": "-work-repos-terraform-aws"}
    webapp = {"cwd": "/work/repos/webapp", "project": "-work-repos-webapp"}
    return [
        *repeat(
            A,
            [
                "2026-03-02T10:00:00Z",
                "2026-03-02T10:02:00Z",
                "2026-03-02T10:04:00Z",
                "2026-03-02T10:30:00Z",
                "2026-03-02T10:32:00Z",
            ],
            inp=10,
            out=100,
            cc=1000,
            cr=10000,
            cost=0.5,
            **tf_aws,
        ),
        *repeat(
            B,
            [
                "2026-03-02T23:50:00Z",
                "2026-03-02T23:54:00Z",
                "2026-03-02T23:58:00Z",
                "2026-03-03T00:02:00Z",
                "2026-03-03T00:06:00Z",
            ],
            model="claude-sonnet-4-5",
            inp=20,
            out=200,
            cr=2000,
            cost=0.1,
            **webapp,
        ),
        Ev(
            C,
            "2026-03-05T12:00:00Z",
            model="claude-haiku-4-5",
            inp=5,
            out=50,
            cost=0.01,
            branch="feat",
            **webapp,
        ),
        Ev(C, "2026-03-05T12:01:00Z", inp=10, out=100, cc=100, cr=1000, cost=0.2, branch="feat", **webapp),
        Ev(C, "2026-03-05T12:01:30Z", model="<synthetic>", cost=0.0, branch="feat", **webapp),
        *repeat(
            D,
            ["2026-03-08T23:30:00Z", "2026-03-08T23:40:00Z"],
            inp=1,
            out=10,
            cost=0.05,
            cwd="/home/u/notes",
            project="-home-u-notes",
        ),
        *repeat(
            E,
            ["2026-03-29T00:30:00Z", "2026-03-29T00:33:00Z", "2026-03-29T01:27:00Z", "2026-03-29T01:30:00Z"],
            inp=100,
            out=1000,
            cost=1.0,
            cwd="/work/repos/terraform-gcp",
            project="-work-repos-terraform-gcp",
        ),
    ]


def cli_ok(*args: str) -> str:
    """Run `baton ARGS` in process; return its output, failing the test unless it exits 0."""
    from click.testing import CliRunner

    from daemon.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return str(result.output)


def cli_fail(*args: str) -> str:
    """Run `baton ARGS` in process; return its output and error, failing the test if it exits 0."""
    from click.testing import CliRunner

    from daemon.cli import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 0, result.output
    return str(result.output) + str(result.exception or "")


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    """Return the rows `sql` selects from the SQLite file `db`."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def run_session_end(payload: dict[str, object]) -> None:
    """Run the real `baton hook session-end` in a second process with Claude Code's JSON on stdin."""
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "daemon", "hook", "session-end"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ.copy(),
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
