"""Session figures: hook latency, refreshing session records, warm session reports; ccusage side by side.

    python benchmarks/sessions_bench.py [--events 100000] [--sessions 3000] [--runs 7]

Builds a private BATON_HOME with a ledger of synthetic usage rows (through the real migrations), then prints
medians of `--runs` runs:
- `baton hook user-prompt-submit` (above 80 %, prints the note) and `hook session-end`, as whole processes,
  beside `python -c pass` (interpreter start-up);
- a full refresh of every session record, an incremental one after one appended response, and a no-op;
- `baton report summary --json` and `baton export sessions-json` as whole warm processes;
- on the real corpus, `ccusage session --json --offline` beside `baton export sessions-json` (warm).
PYTHONDONTWRITEBYTECODE=1 is set on this machine: imports are compiled on every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daemon import sessions  # noqa: E402
from daemon.config import SessionSettings  # noqa: E402
from daemon.db import open_ledger  # noqa: E402

COLUMNS = (
    "dedup_key, ts_ms, session_id, project, cwd, git_branch, model, source, is_sidechain, input_tokens, "
    "output_tokens, cache_creation_tokens, cache_5m_tokens, cache_1h_tokens, cache_read_tokens, "
    "total_tokens, cost_calc, file_id, line_no"
)


def build_ledger(db: Path, events: int, n_sessions: int, seed: int = 1) -> None:
    """Fill a migrated ledger with `events` responses spread over `n_sessions` sessions in 90 days."""
    open_ledger(db).dispose()
    rng = random.Random(seed)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    per = max(1, events // n_sessions)
    rows = []
    n = 0
    for s in range(n_sessions):
        t = start + rng.randrange(90 * 86_400_000)
        cwd = f"/home/me/src/{rng.choice(['api', 'web', 'terraform-aws', 'notes', 'infra'])}-{s % 40}"
        for _ in range(per):
            n += 1
            t += rng.choice([5_000, 20_000, 60_000, 240_000, 900_000])
            tin, tout, cc, cr = (
                rng.randrange(1, 50),
                rng.randrange(10, 3000),
                rng.randrange(5000),
                rng.randrange(90_000),
            )
            cost = (tin * 5 + tout * 25 + cc * 6.25 + cr * 0.5) / 1e6
            ident = (f"k{n}", t, f"sess-{s:05d}", "p", cwd, "main", "claude-opus-4-6", "assistant", 0)
            rows.append((*ident, tin, tout, cc, 0, cc, cr, tin + tout + cc + cr, cost, 1, n))
    conn = sqlite3.connect(db)
    conn.executemany(f"INSERT INTO usage_events ({COLUMNS}) VALUES ({','.join('?' * 19)})", rows)
    conn.commit()
    conn.close()


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def process(args: list[str], env: dict[str, str], stdin: str = "") -> Callable[[], object]:
    return lambda: subprocess.run(
        args, input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=7)
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="baton-sessions-bench-"))
    try:
        run(tmp, a.events, a.sessions, a.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, events: int, n_sessions: int, runs: int) -> None:
    home, claude = tmp / "home", tmp / "claude"
    (claude / "projects").mkdir(parents=True)
    home.mkdir(mode=0o700)
    env = {**os.environ, "BATON_HOME": str(home), "CLAUDE_CONFIG_DIR": str(claude), "HOME": str(tmp)}
    db = home / "baton.db"
    build_ledger(db, events, n_sessions)
    settings = SessionSettings()
    pristine = tmp / "pristine.db"
    shutil.copy(db, pristine)

    def full() -> float:
        shutil.copy(pristine, db)
        t = time.perf_counter()
        with sessions.connect(db) as conn:
            sessions.refresh(conn, settings, now_ms=0)
        return (time.perf_counter() - t) * 1000

    print(f"ledger: {events:,} responses in {n_sessions:,} sessions")
    first = statistics.median(full() for _ in range(max(3, runs // 2)))
    print(f"refresh, every session from scratch: {first:.0f} ms")
    n = [events + 10]

    def one_more() -> None:
        n[0] += 1
        c = sqlite3.connect(db)
        c.execute(
            f"INSERT INTO usage_events ({COLUMNS}) VALUES ({','.join('?' * 19)})",
            (
                *(f"x{n[0]}", 1_770_000_000_000 + n[0], "sess-00007", "p", "/home/me/src/api-7", "main"),
                *("claude-opus-4-6", "assistant", 0, 1, 1, 0, 0, 0, 0, 2, 0.0, 1, n[0]),
            ),
        )
        c.commit()
        c.close()
        with sessions.connect(db) as conn:
            sessions.refresh(conn, settings, now_ms=0)

    def noop() -> None:
        with sessions.connect(db) as conn:
            sessions.refresh(conn, settings, now_ms=0)

    def grown() -> None:
        # A streamed response that grew: the ledger rewrites its row in place (same id).
        c = sqlite3.connect(db)
        c.execute("UPDATE usage_events SET output_tokens = output_tokens + 1 WHERE id = 42")
        c.commit()
        c.close()
        with sessions.connect(db) as conn:
            sessions.refresh(conn, settings, now_ms=0)

    print(f"refresh after one appended response (insert + refresh): {median_ms(one_more, runs):.1f} ms")
    print(f"refresh after a response rewritten in place (update + refresh): {median_ms(grown, runs):.1f} ms")
    print(f"refresh with nothing new (dirty-table check): {median_ms(noop, runs):.1f} ms")

    from daemon import snapshot
    from daemon.paths import BatonPaths

    reset = (datetime.now(UTC) + timedelta(minutes=40)).isoformat()
    snap = {
        "percent": 85.0,
        "level": "danger",
        "reset_at": reset,
        "tokens_remaining": 30_000,
        "runway_minutes": 20,
    }
    snapshot.write(BatonPaths(home, home, home), snap)
    py = sys.executable
    prompt = json.dumps({"session_id": "sess-00007", "hook_event_name": "UserPromptSubmit", "prompt": "go"})
    end = json.dumps({"session_id": "sess-00007", "hook_event_name": "SessionEnd", "reason": "other"})
    print(f"python -c pass: {median_ms(process([py, '-c', 'pass'], env), runs):.0f} ms")
    hook_p = median_ms(process([py, "-m", "daemon", "hook", "user-prompt-submit"], env, prompt), runs)
    print(f"baton hook user-prompt-submit (note printed): {hook_p:.0f} ms")
    hook_e = median_ms(process([py, "-m", "daemon", "hook", "session-end"], env, end), runs)
    print(f"baton hook session-end: {hook_e:.0f} ms")
    for args in (["report", "summary", "--json"], ["export", "sessions-json"]):
        t = median_ms(process([py, "-m", "daemon", *args], env), runs)
        print(f"baton {' '.join(args)} (warm, {n_sessions:,} sessions): {t:.0f} ms")
    compare_ccusage(tmp, runs)


def compare_ccusage(tmp: Path, runs: int) -> None:
    ccusage = shutil.which("ccusage") or str(ROOT / ".ci/node/node_modules/.bin/ccusage")
    if not Path(ccusage).exists():
        print("ccusage not found: skipped the side-by-side run")
        return
    from tests.support.corpus import lay_out_real

    corpus = lay_out_real(tmp / "real")
    home = tmp / "real-home"
    home.mkdir(mode=0o700)
    env = {**os.environ, "BATON_HOME": str(home), "CLAUDE_CONFIG_DIR": str(corpus), "HOME": str(tmp)}
    py = sys.executable
    process([py, "-m", "daemon", "export", "sessions-json"], env)()  # first run ingests
    ours = median_ms(process([py, "-m", "daemon", "export", "sessions-json"], env), runs)
    theirs = median_ms(process([ccusage, "session", "--json", "--offline"], env), runs)
    print(f"real corpus, per-session JSON: baton export sessions-json {ours:.0f} ms", end=" | ")
    print(f"ccusage session --json {theirs:.0f} ms")


if __name__ == "__main__":
    main()
