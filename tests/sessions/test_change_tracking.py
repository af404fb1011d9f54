"""The ledger's triggers tell the refresh which sessions changed; git never runs under the write lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon import sessions
from daemon.config import SessionSettings, load_settings
from tests.sessions.fixture_ledger import A, B, C, Ev, add, ms


def _settings() -> SessionSettings:
    return load_settings().sessions


def _refresh(db: Path, **kw: object) -> sessions.RefreshResult:
    with sessions.connect(db) as conn:
        return sessions.refresh(conn, _settings(), now_ms=ms("2026-03-30T00:00:00Z"), **kw)  # type: ignore[arg-type]


def _one(db: Path, sql: str, *args: object) -> object:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def _run(db: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def test_a_rewrite_that_keeps_the_totals_is_still_picked_up(filled: Path) -> None:
    _refresh(filled)
    # The ledger replaces A's last response in place with a later copy of the same size (same tokens, same
    # cost): no count or sum moves, only the time does.
    _run(
        filled,
        "UPDATE usage_events SET ts_ms = ? "
        "WHERE id = (SELECT MAX(id) FROM usage_events WHERE session_id = ?)",
        ms("2026-03-02T10:45:00Z"),
        A,
    )
    assert _refresh(filled).sessions == 1
    assert _one(filled, "SELECT ended_ms FROM sessions WHERE session_id = ?", A) == ms("2026-03-02T10:45:00Z")
    assert _refresh(filled).sessions == 0


def test_a_streamed_rewrite_reads_only_its_own_session(filled: Path) -> None:
    _refresh(filled)
    _run(
        filled,
        "UPDATE usage_events SET output_tokens = output_tokens + 7 "
        "WHERE id = (SELECT MIN(id) FROM usage_events WHERE session_id = ?)",
        B,
    )
    statements: list[str] = []
    with sessions.connect(filled) as conn:
        conn.set_trace_callback(statements.append)
        result = sessions.refresh(conn, _settings(), now_ms=0)
    assert result.sessions == 1
    assert _one(filled, "SELECT output_tokens FROM sessions WHERE session_id = ?", B) == 1007
    reads = [s for s in statements if "FROM usage_events" in s and "MAX(id)" not in s]
    # the new rows by id range (none here), then B's rows only: never a scan of the whole ledger
    by_session = [s for s in reads if "WHERE id > " not in s]
    assert by_session and all(f"IN ('{B}')" in s for s in by_session), reads
    assert not [s for s in statements if "GROUP BY" in s]


def test_a_row_moved_to_another_session_recomputes_both(filled: Path) -> None:
    _refresh(filled)
    _run(filled, "UPDATE usage_events SET session_id = ? WHERE id = (SELECT MIN(id) FROM usage_events "
         "WHERE session_id = ?)", C, A)  # fmt: skip
    assert _refresh(filled).sessions == 2
    assert _one(filled, "SELECT messages FROM sessions WHERE session_id = ?", A) == 4
    assert _one(filled, "SELECT events FROM sessions WHERE session_id = ?", C) == 4


def test_a_session_whose_rows_all_went_keeps_its_notes_and_loses_its_figures(filled: Path) -> None:
    _refresh(filled)
    _run(filled, "INSERT INTO session_notes (session_id, ts_ms, text) VALUES (?, 1, 'kept')", A)
    _run(filled, "DELETE FROM usage_events WHERE session_id = ?", A)
    _refresh(filled)
    assert _one(
        filled, "SELECT started_ms IS NULL AND input_tokens = 0 FROM sessions WHERE session_id = ?", A
    )
    assert _one(filled, "SELECT text FROM session_notes WHERE session_id = ?", A) == "kept"


def test_a_changed_pricing_mode_recomputes_every_session(filled: Path) -> None:
    _refresh(filled)
    with sessions.connect(filled) as conn:
        assert not sessions.needs_refresh(conn, "auto")
        assert sessions.needs_refresh(conn, "calculate")
    assert _refresh(filled, pricing_mode="calculate").sessions == 5
    assert _one(filled, "SELECT cost_usd FROM sessions WHERE session_id = ?", A) == 0  # no computed cost here


def test_git_runs_once_per_directory_and_never_under_the_write_lock(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str | None] = []
    blocked: list[str] = []

    def fake_git(cwd: str | None, *, timeout: float = 2.0) -> str | None:
        # What a concurrent ledger writer (the daemon's ingest) sees while git runs.
        calls.append(cwd)
        other = sqlite3.connect(filled, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
        except sqlite3.OperationalError as exc:
            blocked.append(f"{cwd}: {exc}")
        finally:
            other.close()
        return f"repo-of-{Path(str(cwd)).name}"

    monkeypatch.setattr(sessions, "git_repo_name", fake_git)
    assert _refresh(filled).sessions == 5
    assert blocked == []
    assert sorted(c for c in calls if c) == ["/home/u/notes", "/work/repos/terraform-aws",
                                             "/work/repos/terraform-gcp", "/work/repos/webapp"]  # fmt: skip
    assert _one(filled, "SELECT git_repo FROM sessions WHERE session_id = ?", B) == "repo-of-webapp"
    calls.clear()
    _refresh(filled, full=True)
    add(filled, [Ev("ffff0000-new", "2026-03-29T09:00:00Z", inp=1, cwd="/work/repos/webapp")])
    _refresh(filled)
    assert calls == []  # the cache answers for directories already seen
    assert _one(filled, "SELECT git_repo FROM sessions WHERE session_id = 'ffff0000-new'") == "repo-of-webapp"


def test_the_ledgers_upsert_of_a_streamed_response_marks_its_session_without_a_conflict(filled: Path) -> None:
    # The ledger writes with INSERT ... ON CONFLICT DO UPDATE; inside a trigger that policy would turn an
    # `INSERT OR IGNORE` into ABORT when the session is already marked.
    upsert = (
        "INSERT INTO usage_events (dedup_key, ts_ms, session_id, output_tokens, is_sidechain, source, "
        "input_tokens, cache_creation_tokens, cache_5m_tokens, cache_1h_tokens, cache_read_tokens, "
        "total_tokens, file_id, line_no) VALUES (?, ?, ?, ?, 0, 'assistant', 0, 0, 0, 0, 0, 0, 1, 99) "
        "ON CONFLICT (dedup_key) DO UPDATE SET output_tokens = excluded.output_tokens"
    )
    _run(
        filled, upsert, "msg_s:req_s", ms("2026-03-02T10:33:00Z"), A, 5
    )  # A is already marked: no refresh yet
    _run(filled, upsert, "msg_s:req_s", ms("2026-03-02T10:33:00Z"), A, 9)  # the same response, grown
    _refresh(filled)
    assert _one(filled, "SELECT output_tokens FROM sessions WHERE session_id = ?", A) == 500 + 9


def test_an_id_handed_out_again_after_the_top_row_was_deleted_is_still_read(filled: Path) -> None:
    _refresh(filled)
    top = _one(filled, "SELECT MAX(id) FROM usage_events")
    _run(filled, "DELETE FROM usage_events WHERE id = ?", top)
    add(filled, [Ev("abcd0000-reused", "2026-03-30T09:00:00Z", inp=7)])
    assert _one(filled, "SELECT MAX(id) FROM usage_events") == top  # SQLite reused the id
    _refresh(filled)
    assert _one(filled, "SELECT input_tokens FROM sessions WHERE session_id = 'abcd0000-reused'") == 7


def test_no_trigger_slows_the_ledgers_inserts(filled: Path) -> None:
    conn = sqlite3.connect(filled)
    try:
        found = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'usage_events'"
        ).fetchall()
    finally:
        conn.close()
    assert sorted(name for name, _ in found) == ["sessions_changed_delete", "sessions_changed_update"]
    assert not [sql for _, sql in found if "AFTER INSERT" in sql.upper()]


def test_a_refresh_with_nothing_to_do_takes_no_write_lock(filled: Path) -> None:
    _refresh(filled)
    holder = sqlite3.connect(filled, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # the daemon's ingest in the middle of a write
    try:
        with sessions.connect(filled) as conn:
            conn.execute("PRAGMA busy_timeout=0")
            assert sessions.refresh(conn, _settings(), now_ms=0).sessions == 0
    finally:
        holder.rollback()
        holder.close()
