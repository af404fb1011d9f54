"""Tracking phases end to end: `baton` run as a real subprocess, usage rows in a real ledger file created
by the ledger's migration, the phase-end notification on a real D-Bus session bus, and the Markdown report."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.db import open_ledger
from daemon.estimate_store import status_lines
from daemon.paths import BatonPaths
from tests.support.ledger_fixtures import run_baton

PLAN = """\
# Session 7: Export pipeline
**Tech stack**: familiar
**Quota**: 200,000 tokens

### Phase 1: Build the exporter (1h)
### Phase 2: Write tests (30 min)
Type: testing
"""
HOUR = 3_600_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def add_usage(db: Path, rows: list[dict[str, Any]]) -> None:
    """Insert usage rows into the ledger's own usage_events table, filling its other required columns."""
    with sqlite3.connect(db) as conn:
        info = conn.execute("PRAGMA table_info(usage_events)").fetchall()
        for i, row in enumerate(rows):
            full: dict[str, Any] = {"dedup_key": f"k{time.time_ns()}-{i}", "source": "assistant"}
            for _cid, name, kind, notnull, default, pk in info:
                if notnull and not pk and name not in full and default is None:
                    full[name] = (
                        0 if "INT" in kind.upper() or "REAL" in kind.upper() or "FLOAT" in kind else ""
                    )
            full.update(row)
            cols = ", ".join(full)
            conn.execute(
                f"INSERT INTO usage_events ({cols}) VALUES ({', '.join('?' * len(full))})",
                list(full.values()),
            )


def usage(
    ts_ms: int, cwd: str, inp: int, out: int, cache_create: int = 0, cache_read: int = 0
) -> dict[str, Any]:
    return {
        "ts_ms": ts_ms,
        "cwd": cwd,
        "session_id": "s1",
        "model": "claude-sonnet-4-5",
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_tokens": cache_create,
        "cache_read_tokens": cache_read,
        "total_tokens": inp + out + cache_create + cache_read,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "exporter"
    (root / "src").mkdir(parents=True)
    (root / "SESSION_7_PLAN.md").write_text(PLAN, encoding="utf-8")
    return root


@pytest.mark.slow
def test_phases_are_tracked_against_the_estimate_end_to_end(
    ledger_env: dict[str, str], baton_home: Path, project: Path, notifications: Any
) -> None:
    env = {**ledger_env, "DBUS_SESSION_BUS_ADDRESS": notifications.address}
    saved = run_baton("estimate", str(project / "SESSION_7_PLAN.md"), "--save", "--json", env=env)
    est = json.loads(saved.stdout)
    assert est["saved_id"] == 1 and [p["mid"] for p in est["phases"]] == [63_000, 29_700]
    db = baton_home / "baton.db"
    assert db.stat().st_mode & 0o777 == 0o600
    open_ledger(db).dispose()  # the ledger's own migration made usage_events

    t0 = int(time.time() * 1000) - 2 * HOUR
    t1, t2 = t0 + HOUR, t0 + HOUR + 30 * 60_000
    add_usage(
        db,
        [
            usage(t0 - 1, str(project), 9_999, 9_999),  # before the phase: not counted
            usage(t0, str(project), 20_000, 30_000, cache_create=10_000, cache_read=500_000),
            usage(t0 + 600_000, str(project / "src"), 5_000, 5_000),  # a sub-directory counts
            usage(t0 + 700_000, str(project) + "-other", 7_777, 7_777),  # a sibling project does not
            usage(t1 - 1, "/elsewhere", 1_111, 1_111),  # another project does not
            usage(t1, str(project), 8_000, 12_000),  # phase 2
            usage(t2, str(project), 4_444, 4_444),  # after the end: not counted
        ],
    )
    started = run_baton("phase", "start", "--project", str(project), "--at", iso(t0), env=env)
    assert "Started phase 1/2: Build the exporter (implementation, estimated 63,000 tokens)" in started.stdout

    lines = status_lines(BatonPaths.from_env({"BATON_HOME": str(baton_home)}), now_ms=t0 + 30 * 60_000)
    assert lines[0] == "Plan: Session 7: Export pipeline"
    assert (
        "phase 1/2 Build the exporter (implementation): 70,000 of 63,000 estimated (111%), 30 min in"
        in lines[1]
    )

    ended = run_baton("phase", "end", "--at", iso(t1), "--note", "CSV quoting took longer", env=env)
    assert "Estimated 63,000, actual 70,000 tokens: +7,000 (+11.1%) in 60 min." in ended.stdout
    # the one finished phase ran 11.1 % over; the rest is scaled by half that: 29,700 x 1.0556 = 31,350
    assert "Projection for the session: 101,350 (estimate 92,700, +9.3%)." in ended.stdout
    assert "Still within the quota (200,000)." in ended.stdout
    got = notifications.wait_for(1, timeout=10)
    assert got[0]["summary"] == "Phase 1 done: Build the exporter"
    assert "+7,000 (+11.1%)" in got[0]["body"] and "101,350" in got[0]["body"]

    overlap = run_baton("phase", "start", "--at", iso(t1 - 60_000), env=env, check=False)
    assert overlap.returncode == 1 and "cannot start before that" in overlap.stderr

    run_baton("phase", "start", "tests", "--at", iso(t1), env=env)
    done = run_baton("phase", "end", "--at", iso(t2), "--no-ingest", env=env)
    assert "Estimated 29,700, actual 20,000 tokens: -9,700 (-32.7%) in 30 min." in done.stdout
    assert status_lines(BatonPaths.from_env({"BATON_HOME": str(baton_home)})) == []  # the session is over

    out = run_baton("report", "estimate", env=env).stdout
    assert "# Estimate report: Session 7: Export pipeline" in out
    assert "**Duration**: 1h 30m (estimated 1h 30m - 1h 30m)" in out
    assert (
        "| 1. Build the exporter | implementation | 63.0k | 70.0k | +7.0k | +11.1% | 1h 00m | ★★★☆☆ GOOD |"
        in out
    )
    assert "| 2. Write tests | testing | 29.7k | 20.0k | -9.7k | -32.7% | 30m | ★★☆☆☆ FAIR |" in out
    assert "**Build the exporter**: +7,000 tokens (+11.1%). Note: CSV quoting took longer" in out
    assert "| **1** |" in out and "Held-out check" in out

    # the model now learns from this session: one session behind each fitted figure, shrunk toward the default
    explained = run_baton("estimate", str(project / "SESSION_7_PLAN.md"), "--explain", env=env).stdout
    assert "Model: fitted on 1 tracked session;" in explained
    assert "implementation: 25,000 + " in explained and "(default 45,000/h; 1 session, median" in explained
    assert "planning: 15,000 + 20,000/h (default 20,000/h; default)" in explained


def test_phase_end_without_a_running_phase_is_a_clear_error(ledger_env: dict[str, str]) -> None:
    res = run_baton("phase", "end", "--no-ingest", env=ledger_env, check=False)
    assert res.returncode == 1 and "no phase is running" in res.stderr and "Traceback" not in res.stderr


def test_estimate_of_a_plan_without_phases_names_the_file(ledger_env: dict[str, str], tmp_path: Path) -> None:
    plan = tmp_path / "EMPTY.md"
    plan.write_text("# Nothing\n", encoding="utf-8")
    res = run_baton("estimate", str(plan), env=ledger_env, check=False)
    assert res.returncode == 1 and f"{plan}: no phases found" in res.stderr


def test_estimate_prints_ranges_totals_quota_and_confidence(
    ledger_env: dict[str, str], project: Path
) -> None:
    res = run_baton("estimate", str(project / "SESSION_7_PLAN.md"), "--explain", env=ledger_env)
    out = res.stdout
    assert "Phase 1: Build the exporter (1h, implementation, inferred from its words)" in out
    assert "tokens, mid 63,000; confidence medium (implementation is medium)" in out
    # every figure says where it comes from: 25,000 + 45,000 x 1h, times 0.9 for the familiar stack
    assert "  mid = (25,000 + 45,000/h x 1h) x 0.9; range ±15%" in out
    assert "Total: " in out and "mid 92,700" in out
    assert "  mid 92,700: the phases' mids added up" in out
    assert "Recommended buffer: +20% = 111,240 tokens (the default until 3 tracked sessions" in out
    assert "Quota: 200,000 tokens (from the Quota line of" in out
    assert "fits at mid (92,700)? yes; with the buffer (111,240)? yes" in out
    assert "Confidence: MEDIUM (no tracked implementation sessions yet" in out
    assert "implementation: 25,000 + 45,000/h (default 45,000/h; default)" in out
    assert not (Path(ledger_env["BATON_HOME"]) / "baton.db").exists()  # without --save nothing is written


def test_a_handoff_starts_a_session_on_its_objectives(ledger_env: dict[str, str], tmp_path: Path) -> None:
    handoff = tmp_path / "handoff.md"
    handoff.write_text(
        "# Session Handoff: Auth\n## Next Session Objectives\n"
        "1. **Add refresh token logic** (Est: 18k tokens)\n"
        "2. **Error handling improvements** (Est: 12k tokens)\n",
        encoding="utf-8",
    )
    res = run_baton("phase", "start", "--handoff", str(handoff), "--all-projects", env=ledger_env)
    assert (
        "Started phase 1/2: Add refresh token logic (implementation, estimated 18,000 tokens)" in res.stdout
    )
    assert "Counting usage in every project." in res.stdout
