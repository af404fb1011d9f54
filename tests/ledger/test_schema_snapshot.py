"""A new ledger's schema comes from a checked-in snapshot (no SQLAlchemy): it must be exactly what every
part's migrations produce, so that it can never drift. After adding a migration, regenerate it:
python -m daemon.ledger_schema"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from daemon import ledger_schema
from daemon.db import MIGRATION_MODULES, _collect, open_ledger
from tests.support.transcript_writer import assistant_line

ROOT = Path(__file__).resolve().parents[2]

REGENERATE = "the schema snapshot is stale: run `python -m daemon.ledger_schema` and commit the result"


def test_the_snapshot_is_exactly_what_running_every_migration_produces(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    open_ledger(migrated).dispose()
    snapped = tmp_path / "snapshot.db"
    with sqlite3.connect(snapped) as conn:
        ledger_schema.create(conn)
    with sqlite3.connect(migrated) as a, sqlite3.connect(snapped) as b:
        assert ledger_schema.describe(b) == ledger_schema.describe(a), REGENERATE
        times = b.execute("SELECT DISTINCT length(applied_at) FROM schema_migrations").fetchall()
        assert times == [(19,)]  # datetime('now'), as the migrations record it
        recorded = set(b.execute("SELECT component, version FROM schema_migrations"))
    assert recorded == {(m.component, m.version) for m in _collect()}
    assert ledger_schema.SNAPSHOT.read_text(encoding="utf-8") == ledger_schema.generate(), REGENERATE


def test_a_ledger_created_from_the_snapshot_needs_no_migration(tmp_path: Path) -> None:
    from daemon.db import make_engine, migrate

    db = tmp_path / "ledger.db"
    with sqlite3.connect(db) as conn:
        ledger_schema.create(conn)
    engine = make_engine(db)
    try:
        assert migrate(engine) == []
    finally:
        engine.dispose()
    assert MIGRATION_MODULES[0] == "daemon.ledger"


def test_a_first_ingest_creates_the_schema_without_sqlalchemy(baton_home: Path, claude_dir: Path) -> None:
    folder = claude_dir / "projects" / "-home-me-app"
    folder.mkdir(parents=True)
    (folder / "s1.jsonl").write_bytes(b"".join(assistant_line(i, session="s1") for i in range(3)))
    script = (
        "import sys; from daemon.cli import main\n"
        "try:\n    main(['ingest'])\nfinally:\n    print('sqlalchemy' in sys.modules)"
    )
    env = {**os.environ, "BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "3 new events" in out.stdout and out.stdout.strip().splitlines()[-1] == "False"
    reference = baton_home / "reference.db"
    open_ledger(reference).dispose()
    with sqlite3.connect(baton_home / "baton.db") as built, sqlite3.connect(reference) as migrated:
        assert ledger_schema.describe(built)["objects"] == ledger_schema.describe(migrated)["objects"]
        versions = "SELECT component, version, description FROM schema_migrations ORDER BY 1, 2"
        assert built.execute(versions).fetchall() == migrated.execute(versions).fetchall()
