"""Session records from the ledger: figures, incremental refresh, exactly-once, closing, categories, git."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from daemon import sessions
from daemon.config import CategoryRule, SessionSettings, load_settings
from tests.sessions.fixture_ledger import A, B, C, D, E, Ev, add, ms


def _settings() -> SessionSettings:
    return load_settings().sessions


def _row(db: Path, sid: str) -> dict[str, object]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM sessions WHERE session_id = ?", (sid,)).fetchone()
        return dict(row) if row else {}
    finally:
        conn.close()


def _refresh(db: Path, now: str = "2026-03-02T10:40:00Z") -> sessions.RefreshResult:
    with sessions.connect(db) as conn:
        return sessions.refresh(conn, _settings(), now_ms=ms(now))


def test_active_time_counts_only_gaps_under_five_minutes() -> None:
    stamps = [ms(f"2026-03-02T14:{m:02d}:00Z") for m in (0, 2, 4, 30, 32)]
    assert sessions.active_ms(stamps, 5 * 60_000) == 6 * 60_000
    assert sessions.active_ms([stamps[0]], 5 * 60_000) == 0


def test_session_record_matches_hand_computed_figures(filled: Path) -> None:
    _refresh(filled)
    a = _row(filled, A)
    assert (a["started_ms"], a["ended_ms"]) == (ms("2026-03-02T10:00:00Z"), ms("2026-03-02T10:32:00Z"))
    assert (a["wall_ms"], a["active_ms"], a["messages"]) == (32 * 60_000, 6 * 60_000, 5)
    assert (a["input_tokens"], a["output_tokens"], a["cache_creation_tokens"], a["cache_read_tokens"]) == (
        50,
        500,
        5000,
        50000,
    )
    assert a["cost_usd"] == pytest.approx(2.5)
    assert (a["git_repo"], a["git_branch"], a["category"]) == ("terraform-aws", "main", "terraform")
    c = _row(filled, C)
    # haiku + opus + one '<synthetic>' line: the synthetic one is not a message and not a model.
    assert c["messages"] == 2
    assert json.loads(str(c["models"])) == ["claude-opus-4-6", "claude-haiku-4-5"]
    assert c["model"] == "claude-opus-4-6"
    assert c["active_ms"] == 90_000
    assert c["cost_usd"] == pytest.approx(0.21)
    assert c["git_branch"] == "feat"
    assert (_row(filled, D)["category"], _row(filled, D)["git_repo"]) == ("personal", "notes")
    assert _row(filled, B)["category"] == "general"
    e = _row(filled, E)
    assert (e["wall_ms"], e["active_ms"]) == (60 * 60_000, 6 * 60_000)  # DST does not stretch real time


def test_refresh_twice_counts_every_response_once(filled: Path) -> None:
    first = _refresh(filled)
    assert first.sessions == 5
    again = _refresh(filled)
    assert again.sessions == 0  # nothing new: nothing recomputed
    assert _row(filled, A)["messages"] == 5
    with sessions.connect(filled) as conn:
        sessions.refresh(conn, _settings(), now_ms=0, full=True)  # a full rebuild gives the same figures
    assert _row(filled, A)["input_tokens"] == 50


def test_refresh_is_incremental_and_updates_only_touched_sessions(filled: Path) -> None:
    _refresh(filled)
    before_b = _row(filled, B)
    add(filled, [Ev(A, "2026-03-02T10:35:00Z", inp=1, out=1, cost=0.25, cwd="/work/repos/terraform-aws")])
    result = _refresh(filled)
    assert result.sessions == 1
    a = _row(filled, A)
    assert (a["messages"], a["input_tokens"], a["active_ms"]) == (6, 51, 9 * 60_000)
    assert a["cost_usd"] == pytest.approx(2.75)
    assert _row(filled, B) == before_b


def test_idle_sessions_close_and_new_activity_reopens_them(filled: Path) -> None:
    _refresh(filled)
    with sessions.connect(filled) as conn:
        # At 10:50, A (last event 10:32) has been idle 18 min: still open with the 30-minute default.
        assert sessions.close_idle(conn, now_ms=ms("2026-03-02T10:50:00Z"), idle_minutes=30) == 0
        closed = sessions.close_idle(conn, now_ms=ms("2026-03-02T11:10:00Z"), idle_minutes=30)
    assert closed == 1  # only A: the others started later than this "now"... but are in the past too
    a = _row(filled, A)
    assert (a["closed_ms"], a["close_reason"]) == (ms("2026-03-02T11:10:00Z"), "idle")
    add(filled, [Ev(A, "2026-03-02T12:00:00Z", inp=1, cwd="/work/repos/terraform-aws")])
    _refresh(filled)
    assert _row(filled, A)["closed_ms"] is None  # resumed: open again


def test_notes_tags_and_values_survive_recomputation(filled: Path) -> None:
    _refresh(filled)
    with sessions.connect(filled) as conn:
        conn.execute("INSERT INTO session_notes (session_id, ts_ms, text) VALUES (?, 1, 'kept')", (A,))
        conn.execute("INSERT INTO session_tags (session_id, tag, ts_ms) VALUES (?, 'x', 1)", (A,))
        sessions.refresh(conn, _settings(), now_ms=0, full=True)
        assert conn.execute("SELECT text FROM session_notes").fetchall() == [("kept",)]
        assert conn.execute("SELECT tag FROM session_tags").fetchall() == [("x",)]


def test_category_rules_first_match_wins() -> None:
    rules = [
        CategoryRule(pattern="*/terraform-*", category="terraform"),
        CategoryRule(pattern="*", category="all"),
    ]
    assert sessions.categorize("/x/terraform-aws", rules, "general") == "terraform"
    assert sessions.categorize("/x/web", rules, "general") == "all"
    assert sessions.categorize("/x/web", [], "general") == "general"
    assert sessions.categorize(None, rules, "general") == "general"


def test_git_repository_comes_from_the_work_tree_top(tmp_path: Path) -> None:
    top = tmp_path / "my-repo"
    (top / "src" / "deep").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    assert sessions.git_repo_name(str(top / "src" / "deep")) == "my-repo"
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    assert sessions.git_repo_name(str(plain)) == "not-a-repo"
    assert sessions.git_repo_name("/no/such/dir/proj") == "proj"
    # A cwd with shell syntax in it is only ever an argv element.
    assert sessions.git_repo_name(str(tmp_path / "x; touch pwned")) == "x; touch pwned"
    assert not (Path.cwd() / "pwned").exists()


def test_latest_and_prefix_resolution(filled: Path) -> None:
    _refresh(filled)
    with sessions.connect(filled) as conn:
        assert sessions.resolve_session(conn, None) == E
        assert sessions.resolve_session(conn, "cccc") == C
        from daemon.errors import BatonError

        with pytest.raises(BatonError, match="no session matches"):
            sessions.resolve_session(conn, "zzzz")


def test_rows_the_ledger_rewrites_in_place_or_deletes_are_picked_up(filled: Path) -> None:
    _refresh(filled)
    conn = sqlite3.connect(filled)
    # A streamed response that grew: the ledger's upsert rewrites the row under the same id.
    conn.execute(
        "UPDATE usage_events SET output_tokens = output_tokens + 1000, total_tokens = total_tokens + 1000 "
        "WHERE id = (SELECT MIN(id) FROM usage_events WHERE session_id = ?)",
        (B,),
    )
    conn.execute(
        "DELETE FROM usage_events WHERE id = (SELECT MAX(id) FROM usage_events WHERE session_id = ?)", (A,)
    )
    conn.commit()
    conn.close()
    result = _refresh(filled)
    assert result.sessions == 2
    assert _row(filled, B)["output_tokens"] == 1000 + 1000
    assert (_row(filled, A)["messages"], _row(filled, A)["ended_ms"]) == (4, ms("2026-03-02T10:30:00Z"))
    assert _refresh(filled).sessions == 0


def test_changed_category_rules_recategorize_every_session(filled: Path) -> None:
    _refresh(filled)
    assert _row(filled, B)["category"] == "general"
    settings = _settings().model_copy(
        update={
            "categories": [CategoryRule(pattern="*/webapp", category="frontend")],
            "active_gap_minutes": 15,
        }
    )
    with sessions.connect(filled) as conn:
        assert sessions.refresh(conn, settings, now_ms=0).sessions == 5
        assert sessions.refresh(conn, settings, now_ms=0).sessions == 0
    assert (_row(filled, B)["category"], _row(filled, A)["category"]) == ("frontend", "general")
    assert _row(filled, D)["active_ms"] == 10 * 60_000  # the 10-minute gap is now under the 15-minute rule
