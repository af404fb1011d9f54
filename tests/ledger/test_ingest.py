"""Ingestion is exactly once: every good line counted, none twice, whatever happens to files and processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import load_settings
from daemon.ingest import Ingestor, catch_up, parse_file
from daemon.paths import BatonPaths
from daemon.pricing import load_prices
from daemon.transcripts import FileState
from tests.support.ledger_fixtures import ROOT, run_baton
from tests.support.transcript_writer import assistant_line, limit_line, progress_line, user_line

WRITER = Path(__file__).resolve().parents[1] / "support" / "transcript_writer.py"


@pytest.fixture
def ingestor(baton_home: Path, claude_dir: Path) -> Iterator[Ingestor]:
    paths = BatonPaths.from_env()
    ing = Ingestor(paths, load_settings(paths))
    yield ing
    ing.close()


def transcript(claude_dir: Path, name: str = "s1.jsonl", project: str = "-home-me-app") -> Path:
    path = claude_dir / "projects" / project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


ROLLUP_CHECK = (
    "SELECT {b}, sum({n}), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), "
    "sum(cache_read_tokens) FROM {t} GROUP BY 1 ORDER BY 1"
)


def totals(baton_home: Path) -> tuple[int, int]:
    """Return (events, tokens) of the ledger, checking first that the 15-minute rollup agrees with them."""
    with sqlite3.connect(baton_home / "baton.db") as conn:
        count, tokens = conn.execute(
            "SELECT count(*), coalesce(sum(total_tokens), 0) FROM usage_events"
        ).fetchone()
        events = conn.execute(ROLLUP_CHECK.format(b="ts_ms / 900000", n="1", t="usage_events")).fetchall()
        rollup = conn.execute(ROLLUP_CHECK.format(b="bucket", n="events", t="usage_rollup")).fetchall()
    assert rollup == events
    return int(count), int(tokens)


def write(path: Path, *lines: bytes, mode: str = "ab") -> None:
    with open(path, mode) as f:
        f.write(b"".join(lines))


PER_LINE = 10 + 100 + 1000 + 5000  # tokens of one default assistant_line


def test_reingesting_counts_nothing_twice(ingestor: Ingestor, claude_dir: Path, baton_home: Path) -> None:
    f = transcript(claude_dir)
    write(f, *(assistant_line(i) for i in range(5)), user_line(99))
    assert ingestor.ingest_file(f).new_events == 5
    assert ingestor.ingest_file(f).new_events == 0
    assert ingestor.catch_up().new_events == 0
    assert totals(baton_home) == (5, 5 * PER_LINE)


def test_streamed_duplicates_keep_the_larger_usage(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, assistant_line(1, output_tokens=1))
    ingestor.ingest_file(f)
    write(f, assistant_line(1, output_tokens=500))
    ingestor.ingest_file(f)
    write(f, assistant_line(1, output_tokens=2))  # a later, smaller copy never shrinks the count
    ingestor.ingest_file(f)
    assert totals(baton_home) == (1, 10 + 500 + 1000 + 5000)


@pytest.mark.parametrize(
    ("copies", "kept"),
    [
        # (output_tokens, sidechain, speed) of each line of one response, in file order -> the line kept
        ([(100, False, None), (100, False, None), (100, False, None)], 1),  # repeats: the first stays
        ([(100, False, None), (500, False, None), (2, False, None)], 2),  # the larger total
        ([(100, True, None), (100, False, None)], 2),  # a non-sidechain beats a sidechain
        ([(500, False, None), (900, True, None)], 1),  # ... even with fewer tokens
        ([(100, False, None), (100, False, "standard"), (100, False, None)], 2),  # one with speed
    ],
)
def test_one_files_repeats_of_a_response_keep_the_line_ccusage_keeps(
    claude_dir: Path, copies: list[tuple[int, bool, str | None]], kept: int
) -> None:
    """The parser skips a repeat that does not beat the line kept so far without building its row; what it
    keeps is still ccusage's choice (the line number shows which line won)."""
    import datetime

    f = transcript(claude_dir)
    write(f, *(assistant_line(1, output_tokens=o, sidechain=sc, speed=sp) for o, sc, sp in copies))
    res = parse_file(str(f), FileState(), load_prices(), datetime.UTC)
    assert [row[-1] for row in res.rows] == [kept]
    assert res.message_ids == {json.loads(assistant_line(1))["message"]["id"]}


def test_the_null_rule_holds_for_kept_lines_and_repeats_alike(claude_dir: Path) -> None:
    """The parser applies the `"<key>":null` rule only to lines it would keep; a repeat that loses is dropped
    either way. What it keeps, and counts as bad, is what the full parser line by line gives."""
    import datetime

    def nulled(line: bytes) -> bytes:  # a listed key written as null (ccusage skips the whole line)
        entry = json.loads(line)
        entry["costUSD"] = None
        return (json.dumps(entry) + "\n").encode()

    f = transcript(claude_dir)
    lines = [
        assistant_line(1),  # kept
        nulled(assistant_line(1)),  # a repeat that loses, with a null: dropped
        nulled(assistant_line(1, output_tokens=900)),  # a repeat that would win, with a null: skipped
        nulled(assistant_line(2)),  # a new response with a null: skipped, not bad
        assistant_line(2, output_tokens=50),  # so this one is response 2's first line
        b'{"usage":{bad\n',  # bad
    ]
    write(f, *lines)
    res = parse_file(str(f), FileState(), load_prices(), datetime.UTC)
    assert sorted((row[1], row[14], row[-1]) for row in res.rows) == [
        (json.loads(lines[0])["message"]["id"], 100, 1),
        (json.loads(lines[4])["message"]["id"], 50, 5),
    ]
    assert res.bad == 1


def test_restart_in_the_middle_of_a_file(baton_home: Path, claude_dir: Path) -> None:
    paths = BatonPaths.from_env()
    f = transcript(claude_dir)
    write(f, *(assistant_line(i) for i in range(5)))
    first = Ingestor(paths, load_settings(paths))
    first.ingest_file(f)
    first.close()
    write(f, *(assistant_line(i) for i in range(5, 12)))
    second = Ingestor(paths, load_settings(paths))
    assert second.ingest_file(f).new_events == 7
    second.close()
    assert totals(baton_home) == (12, 12 * PER_LINE)


def test_partial_line_waits_for_the_second_process_to_finish_it(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, assistant_line(0))
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(f), "--start", "1", "--count", "1", "--split-pause", "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "half"
    assert ingestor.ingest_file(f).new_events == 1  # only the complete first line; the half waits
    state = ingestor.writer.state(str(f))
    assert state.offset == len(assistant_line(0)) and state.lines == 1
    assert proc.stdout.readline().strip() == "done"
    assert proc.wait(timeout=30) == 0
    assert ingestor.ingest_file(f).new_events == 1
    assert totals(baton_home) == (2, 2 * PER_LINE)


def test_partial_line_is_consumed_once_complete(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    line = assistant_line(7)
    write(f, assistant_line(6), line[:40])
    assert ingestor.ingest_file(f).new_events == 1
    write(f, line[40:])
    assert ingestor.ingest_file(f).new_events == 1
    assert ingestor.writer.state(str(f)).lines == 2
    assert totals(baton_home) == (2, 2 * PER_LINE)


def test_truncated_file_is_read_again_without_double_counting(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, *(assistant_line(i) for i in range(10)))
    ingestor.ingest_file(f)
    write(f, assistant_line(0), assistant_line(1), assistant_line(100), mode="wb")  # shorter than before
    summary = ingestor.ingest_file(f)
    assert summary.new_events == 1
    assert totals(baton_home) == (11, 11 * PER_LINE)  # the lost lines' history stays
    assert ingestor.writer.state(str(f)).lines == 3


def test_replaced_file_new_inode_is_detected(ingestor: Ingestor, claude_dir: Path, baton_home: Path) -> None:
    f = transcript(claude_dir)
    write(f, *(assistant_line(i) for i in range(3)))
    ingestor.ingest_file(f)
    tmp = f.with_suffix(".tmp")
    write(tmp, *(assistant_line(i) for i in range(6)), mode="wb")
    os.replace(tmp, f)
    assert ingestor.ingest_file(f).new_events == 3
    assert totals(baton_home) == (6, 6 * PER_LINE)


def test_rewritten_head_with_same_inode_is_detected(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, assistant_line(1, session="aaaa"), assistant_line(2, session="aaaa"))
    ingestor.ingest_file(f)
    # same inode, longer file, but different first bytes: not an append
    write(
        f,
        assistant_line(1, session="bbbb"),
        assistant_line(2, session="bbbb"),
        assistant_line(3, session="bbbb"),
        mode="r+b",
    )
    assert ingestor.ingest_file(f).new_events == 3
    assert totals(baton_home)[0] == 5


def test_deleted_transcript_keeps_its_history(ingestor: Ingestor, claude_dir: Path, baton_home: Path) -> None:
    f = transcript(claude_dir)
    write(f, *(assistant_line(i) for i in range(4)))
    ingestor.catch_up()
    f.unlink()
    summary = ingestor.catch_up()
    assert summary.files == 0
    assert totals(baton_home) == (4, 4 * PER_LINE)
    with sqlite3.connect(baton_home / "baton.db") as conn:
        assert conn.execute("SELECT deleted FROM files").fetchone() == (1,)


@pytest.mark.slow
def test_bad_input_never_stops_the_rest_of_the_file(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    f = transcript(claude_dir)
    huge_text = "x" * (50 << 20)
    write(
        f,
        assistant_line(0),
        b'{"message":{"usage":{"input_tokens":1,"output_tokens":1}\n',  # 2: malformed JSON
        assistant_line(1),
        # 4: not UTF-8
        b'{"timestamp":"2026-02-10T21:00:00Z","cwd":"\xff\xfe","message":{"usage":{"input_tokens":1}}}\n',
        b'["usage":{"not an object"]\n',  # 5: non-object, not even JSON
        b'{"type":"assistant","message":{"usage":{"input_tokens":1,"output_tokens":1}}}\n',  # 6: no timestamp
        assistant_line(2, extra={"requestId": None}),  # 7: null key (ccusage skips it; not "bad")
        b'{"type":"brand-new-type","payload":[1,2,3]}\n',  # 8: unknown type without usage: ignored
        b"42\n",  # 9: a bare number
        b'{"garbage":"' + b"y" * (50 << 20) + b'","usage":{\n',  # 10: a 50 MB malformed line
        assistant_line(3, text=huge_text),  # 11: a 50 MB good line
        assistant_line(4),
    )
    with caplog.at_level(logging.WARNING, logger="baton.ingest"):
        summary = ingestor.ingest_file(f)
    assert summary.new_events == 4  # lines 1, 3, 11 (50 MB) and 12
    assert summary.skipped_lines == 5
    assert totals(baton_home) == (4, 4 * PER_LINE)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for line_no in (2, 4, 5, 6, 10):
        assert f"{f}:{line_no}:" in logged


def test_unreadable_file_is_reported_not_raised(ingestor: Ingestor, claude_dir: Path) -> None:
    missing = transcript(claude_dir, "gone.jsonl")
    summary = ingestor.ingest_file(missing)
    assert summary.errors and "gone.jsonl" in summary.errors[0]
    folder = transcript(claude_dir, "dir.jsonl")
    folder.mkdir()
    res = parse_file(str(folder), FileState(), load_prices(), __import__("datetime").UTC)
    assert res.error is not None


def test_non_sidechain_beats_sidechain_in_any_order(claude_dir: Path, baton_home: Path) -> None:
    main = transcript(claude_dir, "a-main.jsonl")
    side = transcript(claude_dir, "z-side.jsonl")
    write(main, assistant_line(1, output_tokens=5, request_id="req_main"))
    write(side, assistant_line(1, output_tokens=900, sidechain=True, request_id="req_side"))
    paths = BatonPaths.from_env()
    ing = Ingestor(paths, load_settings(paths))
    ing.ingest_file(side)  # the sidechain copy arrives first and is bigger
    ing.ingest_file(main)
    ing.close()
    with sqlite3.connect(baton_home / "baton.db") as conn:
        rows = conn.execute("SELECT request_id, is_sidechain, output_tokens FROM usage_events").fetchall()
    assert rows == [("req_main", 0, 5)]


def test_arrival_order_does_not_change_the_ledger(
    tmp_path: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = transcript(claude_dir, "a.jsonl")
    b = transcript(claude_dir, "b.jsonl")
    write(a, assistant_line(1, output_tokens=50), assistant_line(2))
    write(b, assistant_line(1, output_tokens=50, speed="standard"), assistant_line(3))
    results = []
    for order in ((a, b), (b, a)):
        home = tmp_path / f"home-{order[0].name}"
        monkeypatch.setenv("BATON_HOME", str(home))
        paths = BatonPaths.from_env()
        ing = Ingestor(paths, load_settings(paths))
        for f in order:
            ing.ingest_file(f)
        ing.close()
        with sqlite3.connect(home / "baton.db") as conn:
            results.append(
                conn.execute(
                    "SELECT dedup_key, speed, f.path, line_no FROM usage_events e "
                    "JOIN files f ON f.id = e.file_id ORDER BY dedup_key"
                ).fetchall()
            )
    assert results[0] == results[1]
    assert results[0][0][1] == "standard"  # equal totals: the entry with speed wins


def test_progress_usage_counts_once_when_the_subagent_file_has_it_too(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    main = transcript(claude_dir, "sess-1.jsonl")
    write(main, assistant_line(1), progress_line(2))
    agent = transcript(claude_dir, "sess-1/subagents/agent-afb92ff.jsonl")
    write(
        agent,
        assistant_line(
            2,
            sidechain=True,
            message_id="msg_agent_sess-1_2",
            request_id="req_agent_sess-1_2",
            model="claude-haiku-4-5-20251001",
            input_tokens=10,
            output_tokens=200,
            cache_5m=900,
            cache_1h=0,
            cache_read=0,
        ),
    )
    ingestor.catch_up()
    with sqlite3.connect(baton_home / "baton.db") as conn:
        rows = conn.execute(
            "SELECT session_id, source, total_tokens FROM usage_events ORDER BY ts_ms"
        ).fetchall()
    assert rows == [("sess-1", "assistant", PER_LINE), ("sess-1", "progress", 1110)]


def test_limit_messages_are_stored_with_kind_and_reset(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, limit_line("You've hit your session limit · resets 9:50pm (Asia/Saigon)"), assistant_line(1))
    summary = ingestor.ingest_file(f)
    assert (summary.new_events, summary.new_limits) == (2, 1)
    assert ingestor.ingest_file(f).new_limits == 0
    with sqlite3.connect(baton_home / "baton.db") as conn:
        kind, reset, session = conn.execute(
            "SELECT kind, reset_at_ms, session_id FROM limit_events"
        ).fetchone()
    assert (kind, session) == ("session", "s1")
    # the line is at 04:00 on Feb 11 in Saigon, so 9:50pm is that evening: 2026-02-11T14:50Z
    assert reset == 1770821400000


def start_script(
    baton_home: Path, claude_dir: Path, script: str, *, capture: bool = True
) -> subprocess.Popen[str]:
    """Start `python -c SCRIPT` in its own session: a real second process."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)},
        cwd=Path(__file__).resolve().parents[2],
        stdout=out,
        stderr=out,
        text=True,
        start_new_session=True,
    )


def make_corpus(claude_dir: Path, files: int, lines: int) -> int:
    """Write `files` transcripts of `lines` streamed responses each; return the expected token total."""
    for n in range(files):
        f = transcript(claude_dir, f"s{n:03d}.jsonl")
        data = []
        for i in range(lines):
            data.append(assistant_line(i, session=f"s{n}", output_tokens=1, text="thinking " * 40))
            data.append(assistant_line(i, session=f"s{n}", text="answer " * 200))
            data.append(user_line(i, session=f"s{n}", text="tool output " * 300))
        write(f, *data)
    return files * lines * PER_LINE


@pytest.mark.slow
def test_kill_9_during_ingestion_then_restart_is_exact(baton_home: Path, claude_dir: Path) -> None:
    from daemon.ingest import open_writer

    expected = make_corpus(claude_dir, files=60, lines=400)
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    open_writer(baton_home / "baton.db").conn.close()  # an existing ledger: written batch by batch
    # small write batches, so that the kill lands after some commits and before others
    script = "import daemon.ingest as i; i.BATCH_ROWS = 1500; from daemon.cli import main; main(['ingest'])"
    proc = start_script(baton_home, claude_dir, script, capture=False)
    db = baton_home / "baton.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once some, but not all, batches have committed
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=0.1) as conn:
                    n = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
                if n > 0:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = totals(baton_home)
    assert partial[0] < 60 * 400
    run_baton("ingest", env=env)
    assert totals(baton_home) == (60 * 400, expected)


@pytest.mark.slow
def test_kill_9_while_building_a_new_ledger_leaves_none_then_restart_is_exact(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=60, lines=400)
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    script = "import daemon.ingest as i; i.BATCH_ROWS = 1500; from daemon.cli import main; main(['ingest'])"
    proc = start_script(baton_home, claude_dir, script, capture=False)
    deadline = time.monotonic() + 60
    building: list[Path] = []
    while time.monotonic() < deadline and not building:  # kill while the new ledger is being written
        building = [p for p in baton_home.glob("baton.db.new-*") if p.stat().st_size > 200_000]
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert building and not (baton_home / "baton.db").exists()  # no ledger rather than half of one
    run_baton("ingest", env=env)
    assert totals(baton_home) == (60 * 400, expected)
    assert not list(baton_home.glob("baton.db.new-*"))  # the killed build's file is cleaned up


@pytest.mark.parametrize(
    ("workers", "hand_back", "held"),
    [(1, True, ""), (2, True, ""), (2, False, ""), (2, False, "all"), (2, False, "capped")],
)
def test_a_new_ledger_is_built_aside_and_matches_one_written_in_place(
    baton_home: Path,
    claude_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    hand_back: bool,
    held: str,
) -> None:
    import daemon.ingest as ingest_mod
    from daemon.ingest import open_writer

    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)  # workers parse the build's files
    monkeypatch.setattr(ingest_mod, "HAND_BACK_EARLY", hand_back)  # False: the workers write it all
    if held:  # the lock always taken: every batch waits in its worker, one file a batch, until the last task
        assert sys.platform != "linux" or threading.active_count() == 1  # forked workers see the patches
        monkeypatch.setattr(ingest_mod, "_try_lock", lambda fd: False)
        monkeypatch.setattr(ingest_mod, "_batches", lambda tasks, workers, sizes: [[t] for t in tasks])
    if held == "capped":  # ... but a worker holding enough waits for its turn: every batch written at once
        monkeypatch.setattr(ingest_mod, "HELD_MAX_BYTES", 1)
    make_corpus(claude_dir, files=6, lines=30)
    # responses replayed in other files (a sub-agent's copy, an id-less line copied with its session):
    # the build merges them with the stored rows as the usual writer does
    copy = transcript(claude_dir, "replay.jsonl", project="-home-me-other")
    write(copy, assistant_line(3, session="s1", sidechain=True, output_tokens=7), assistant_line(900))
    write(copy, b'{"usage":{bad\n', assistant_line(4, session="s2", output_tokens=5000))
    twin = transcript(claude_dir, "s1.jsonl", project="-home-me-twin")
    write(twin, idless_line(1), idless_line(2))
    write(transcript(claude_dir, "s1.jsonl", project="-home-me-twin2"), idless_line(1))
    settings = load_settings(BatonPaths.from_env())
    built = catch_up(BatonPaths.from_env(), settings, workers=workers)
    db = baton_home / "baton.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        rows_built = conn.execute(f"SELECT {COMPARED} FROM usage_events ORDER BY dedup_key").fetchall()
        files_built = conn.execute(FILES_COMPARED).fetchall()
    assert {"ix_usage_events_ts", "ix_usage_events_session", "ix_usage_events_message"} <= indexes
    assert built.skipped_lines == 1 and not list(baton_home.glob("baton.db.new-*"))
    db.unlink()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    open_writer(db).conn.close()  # an existing, empty ledger: the usual path
    again = catch_up(BatonPaths.from_env(), settings, workers=workers)
    with sqlite3.connect(db) as conn:
        rows_in_place = conn.execute(f"SELECT {COMPARED} FROM usage_events ORDER BY dedup_key").fetchall()
        files_in_place = conn.execute(FILES_COMPARED).fetchall()
    assert rows_built == rows_in_place and files_built == files_in_place
    assert built.new_events == again.new_events == len(rows_built)
    assert totals(baton_home)[0] == len(rows_built)


COMPARED = "dedup_key, session_id, project, ts_ms, total_tokens, cost_calc, is_sidechain, line_no"
FILES_COMPARED = "SELECT path, offset, lines, skipped_lines, session_id, project FROM files ORDER BY 1"


@pytest.mark.slow
def test_two_processes_racing_never_double_count(baton_home: Path, claude_dir: Path) -> None:
    expected = make_corpus(claude_dir, files=30, lines=200)
    env = {**os.environ, "BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "daemon", "ingest"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert totals(baton_home) == (30 * 200, expected)


def test_catch_up_in_parallel_workers_matches_in_process(
    tmp_path: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_corpus(claude_dir, files=8, lines=30)
    import daemon.ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "PARALLEL_MIN_BYTES", 0)
    got = []
    for workers in (1, 2):
        monkeypatch.setenv("BATON_HOME", str(tmp_path / f"w{workers}"))
        paths = BatonPaths.from_env()
        summary = catch_up(paths, load_settings(paths), workers=workers)
        assert summary.new_events == 8 * 30
        got.append(totals(tmp_path / f"w{workers}"))
    assert got[0] == got[1] == (240, 240 * PER_LINE)


def test_rewritten_in_place_with_the_same_head_is_read_again_from_the_start(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    write(f, assistant_line(1), assistant_line(2))
    ingestor.ingest_file(f)
    # same inode, same first line, longer: line 2 grew (a longer update of the same response) and line 3 came
    write(
        f,
        assistant_line(1),
        assistant_line(2, output_tokens=900, text="x" * 300),
        assistant_line(3),
        mode="r+b",
    )
    summary = ingestor.ingest_file(f)
    assert summary.skipped_lines == 0
    assert totals(baton_home) == (3, 3 * PER_LINE + 800)  # line 2's update kept, line 3 counted
    with sqlite3.connect(baton_home / "baton.db") as conn:
        assert [r[0] for r in conn.execute("SELECT line_no FROM usage_events ORDER BY line_no")] == [1, 2, 3]
    assert ingestor.writer.state(str(f)).lines == 3


def test_rewritten_in_place_with_a_newline_at_the_old_offset_is_read_again_not_taken_for_an_append(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    """Same inode, same first 512 bytes, and a line of the same length in place of line 2, so that a newline
    still stands at the old offset: only the bytes before the offset tell that it is not an append."""
    f = transcript(claude_dir)
    first = assistant_line(1, text="x" * 600)
    write(f, first, assistant_line(2))
    ingestor.ingest_file(f)
    assert len(first) > 512 and len(assistant_line(3)) == len(assistant_line(2))
    write(f, first, assistant_line(3), assistant_line(4), mode="r+b")
    summary = ingestor.ingest_file(f)
    assert summary.new_events == 2  # lines 3 and 4; line 2's history stays
    assert totals(baton_home) == (4, 4 * PER_LINE)
    assert ingestor.writer.state(str(f)).lines == 3
    assert ingestor.ingest_file(f).new_events == 0


def test_a_ledger_without_tail_digests_checks_the_newline_then_records_the_digest(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    """Rows written before migration 4 have tail '': an append is still an append, then the digest is kept."""
    f = transcript(claude_dir)
    write(f, assistant_line(1), assistant_line(2))
    ingestor.ingest_file(f)
    ingestor.writer.conn.execute("UPDATE files SET tail = ''")
    ingestor.writer.conn.commit()
    write(f, assistant_line(3))
    assert ingestor.ingest_file(f).new_events == 1
    assert totals(baton_home) == (3, 3 * PER_LINE)
    assert ingestor.writer.state(str(f)).tail != ""


def test_reads_are_bounded_chunks_cut_at_newlines(claude_dir: Path) -> None:
    from daemon.transcripts import read_new_lines

    f = transcript(claude_dir)
    lines = [assistant_line(i) for i in range(20)]
    write(f, *lines)
    state, seen, sizes = FileState(), [], []
    while True:
        chunk = read_new_lines(str(f), state, max_bytes=3 * len(lines[0]))
        if not chunk.data:
            break
        sizes.append(len(chunk.data))
        seen.extend(chunk.data.splitlines(keepends=True))
        assert chunk.first_line == state.lines + 1 and chunk.data.endswith(b"\n")
        state = chunk.state
    assert seen == lines and max(sizes) <= 3 * len(lines[0]) and state.lines == 20


def test_parse_file_in_small_chunks_equals_one_read(
    claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime

    from daemon import transcripts

    f = transcript(claude_dir)
    write(
        f,
        *(assistant_line(i % 7, output_tokens=100 + i) for i in range(30)),
        b'{"usage":{bad\n',
        assistant_line(99),
    )
    whole = parse_file(str(f), FileState(), load_prices(), datetime.UTC)
    monkeypatch.setattr(transcripts, "CHUNK_BYTES", 1000)
    small = parse_file(str(f), FileState(), load_prices(), datetime.UTC)
    assert small.rows == whole.rows and small.bad == whole.bad == 1 and small.state == whole.state


def test_a_growing_long_partial_line_is_not_scanned_again_from_its_start(claude_dir: Path) -> None:
    from daemon import transcripts

    f = transcript(claude_dir)
    write(f, assistant_line(1), b'{"partial":"' + b"x" * 5000)
    first = transcripts.read_new_lines(str(f), FileState(), max_bytes=1000)
    assert first.state.lines == 1
    after = transcripts.read_new_lines(str(f), first.state, max_bytes=1000)
    key = (str(f), after.state.device, after.state.inode, first.state.offset)
    assert after.data == b"" and transcripts._SCANNED[key] == f.stat().st_size  # where the search stopped
    write(f, b"y" * 3000)
    transcripts._SCANNED[key] = f.stat().st_size - 10  # the search resumes here, not at the line's start
    write(f, b'"}\n', assistant_line(2))
    done = transcripts.read_new_lines(str(f), after.state, max_bytes=1000)
    assert done.data.startswith(b'{"partial"') and done.data.endswith(b'"}\n') and done.state.lines == 2
    assert key not in transcripts._SCANNED


def test_a_line_over_the_limit_is_skipped_as_bad_and_numbering_goes_on(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon import transcripts

    monkeypatch.setattr(transcripts, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(transcripts, "MAX_LINE_BYTES", 20_000)
    f = transcript(claude_dir)
    write(f, assistant_line(1), assistant_line(2, text="z" * 50_000), assistant_line(3))
    summary = ingestor.ingest_file(f)
    assert summary.new_events == 2 and summary.skipped_lines == 1
    with sqlite3.connect(baton_home / "baton.db") as conn:
        assert [r[0] for r in conn.execute("SELECT line_no FROM usage_events ORDER BY line_no")] == [1, 3]


def test_ensure_current_reads_only_when_something_changed(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    from daemon.ingest import ensure_current

    paths = BatonPaths.from_env()
    f = transcript(claude_dir)
    write(f, assistant_line(1), assistant_line(2))
    first = ensure_current(paths)
    assert first is not None and first.new_events == 2
    assert ensure_current(paths, load_settings(paths)) is None  # nothing changed: stat only
    write(f, assistant_line(3))
    again = ensure_current(paths)
    assert again is not None and again.new_events == 1
    write(f, assistant_line(4))
    assert ingestor.ingest_file(f).new_events == 1  # the running daemon got there first
    assert ensure_current(paths) is None
    assert totals(baton_home) == (4, 4 * PER_LINE)


def idless_line(i: int) -> bytes:
    import json

    entry = json.loads(assistant_line(i))
    del entry["requestId"], entry["message"]["id"]
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def test_idless_lines_count_each_time_and_survive_rereads_and_renames(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir, project="-home-me-old")
    write(f, idless_line(1), idless_line(1), assistant_line(2), idless_line(1))
    ingestor.catch_up()
    assert totals(baton_home) == (4, 4 * PER_LINE)  # three identical id-less lines: three responses
    write(f, idless_line(1), idless_line(1), assistant_line(2), mode="wb")  # truncated: read again
    ingestor.catch_up()
    assert totals(baton_home) == (4, 4 * PER_LINE)
    moved = transcript(claude_dir, project="-home-me-new")
    f.rename(moved)  # a renamed project folder
    ingestor.catch_up()
    assert totals(baton_home) == (4, 4 * PER_LINE)


@pytest.mark.slow
def test_idless_lines_count_as_ccusage_counts_them(baton_home: Path, claude_dir: Path) -> None:
    import json

    from tests.support.real import require_real

    ccusage = require_real("ccusage")
    f = transcript(claude_dir)
    write(f, idless_line(1), idless_line(1), assistant_line(2), idless_line(3), idless_line(1))
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    ours = json.loads(run_baton("report", "daily", "--json", "-z", "UTC", env=env).stdout)["totals"]
    theirs = json.loads(
        subprocess.run(
            [ccusage, "daily", "--json", "--offline", "--timezone", "UTC"],
            env={**os.environ, "CLAUDE_CONFIG_DIR": str(claude_dir), "TZ": "UTC"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["totals"]
    assert ours["totalTokens"] == theirs["totalTokens"] == 5 * PER_LINE


def test_skipped_lines_are_recounted_when_a_file_is_read_again(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    f = transcript(claude_dir)
    bad = b'{"usage":{broken\n'
    write(f, assistant_line(1), bad, assistant_line(2))
    ingestor.ingest_file(f)
    write(f, assistant_line(1), bad, mode="wb")  # truncated: read again from the start
    ingestor.ingest_file(f)
    write(f, bad)  # one more bad line appended
    ingestor.ingest_file(f)
    with sqlite3.connect(baton_home / "baton.db") as conn:
        assert conn.execute("SELECT skipped_lines FROM files").fetchone() == (2,)


def test_new_prices_recompute_every_stored_cost(
    ingestor: Ingestor, claude_dir: Path, baton_home: Path
) -> None:
    import json

    f = transcript(claude_dir)
    write(f, *(assistant_line(i, model="claude-sonnet-4-5-20250929") for i in range(5)))
    write(f, assistant_line(9, model="claude-nonexistent-1"))
    ingestor.ingest_file(f)
    user = baton_home / "prices.json"
    user.write_text(json.dumps({"claude-sonnet-4-5": {"input": 100, "output": 200}}))
    prices = load_prices(user)
    assert ingestor.writer.refresh_costs(prices) == 6
    assert ingestor.writer.refresh_costs(prices) == 0  # same digest: nothing to do
    with sqlite3.connect(baton_home / "baton.db") as conn:
        rows = conn.execute(
            "SELECT model, speed, input_tokens, output_tokens, cache_5m_tokens, cache_1h_tokens, "
            "cache_read_tokens, cost_calc FROM usage_events"
        ).fetchall()
    for *args, cost in rows:
        assert cost == prices.cost(*args)
    assert sum(1 for r in rows if r[-1] is None) == 1  # the unknown model stays unpriced


def test_a_line_written_with_spaces_is_ignored_as_ccusage_does(ingestor: Ingestor, claude_dir: Path) -> None:
    import json

    f = transcript(claude_dir)
    spaced = json.dumps(json.loads(assistant_line(1))).encode() + b"\n"  # `"usage": {`, as the README says
    assert b'"usage": {' in spaced
    write(f, spaced, assistant_line(2))
    summary = ingestor.ingest_file(f)
    assert (summary.new_events, summary.skipped_lines) == (1, 0)


def test_upgrade_rekeys_idless_lines_without_double_counting(baton_home: Path, claude_dir: Path) -> None:
    import hashlib

    f = transcript(claude_dir)
    write(f, idless_line(1), idless_line(1), assistant_line(2))
    paths = BatonPaths.from_env()
    catch_up(paths, load_settings(paths))
    # the ledger as the previous version wrote it: id-less keys from path and line, migrated to version 2
    old_key = (
        "line:"
        + hashlib.blake2b(str(f).encode() + b"\0" + idless_line(1).rstrip(b"\n"), digest_size=16).hexdigest()
    )
    with sqlite3.connect(baton_home / "baton.db") as conn:
        conn.execute("DELETE FROM usage_events WHERE dedup_key LIKE 'line:%' AND line_no = 2")
        conn.execute("UPDATE usage_events SET dedup_key = ? WHERE dedup_key LIKE 'line:%'", (old_key,))
        conn.execute("DELETE FROM schema_migrations WHERE component = 'ledger' AND version >= 3")
        conn.execute("ALTER TABLE files DROP COLUMN tail")  # migration 4's
    write(f, idless_line(1))  # appended after the upgrade
    summary = catch_up(paths, load_settings(paths))
    assert totals(baton_home) == (4, 4 * PER_LINE)  # three id-less lines and one keyed, each once
    assert summary.skipped_lines == 0
    assert catch_up(paths, load_settings(paths)).new_events == 0


def test_ledger_version_is_the_number_of_migrations() -> None:
    from daemon.ingest import LEDGER_VERSION
    from daemon.ledger import MIGRATIONS

    assert LEDGER_VERSION == len(MIGRATIONS) == max(m.version for m in MIGRATIONS)


def test_a_first_ingest_with_an_invalid_configuration_leaves_nothing_behind(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=2, lines=5)
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    (baton_home / "config.toml").write_text("[general]\nlog_level = 42\n")  # invalid
    out = run_baton("ingest", env=env, check=False)
    assert out.returncode == 78 and "invalid configuration" in out.stderr
    assert not (baton_home / "baton.db").exists() and not list(baton_home.glob("baton.db.new-*"))
    (baton_home / "config.toml").unlink()
    assert "10 new events" in run_baton("ingest", env=env).stdout
    assert totals(baton_home) == (10, expected) and not list(baton_home.glob("baton.db.new-*"))


HEAVY = (  # baton ingest, then which of the heavy imports it made
    "import sys; from daemon.cli import main\ntry:\n    main(['ingest'])\nfinally:\n"
    "    print(sorted(m for m in ('click', 'pydantic', 'structlog', 'sqlalchemy') if m in sys.modules))"
)


def test_ingest_with_nothing_to_validate_imports_no_pydantic_and_logs_only_when_needed(
    baton_home: Path, claude_dir: Path
) -> None:
    f = transcript(claude_dir)
    write(f, assistant_line(1), assistant_line(2))
    proc = start_script(baton_home, claude_dir, HEAVY)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "2 new events" in out and out.strip().splitlines()[-1] == "[]" and err == ""
    log = baton_home / "logs" / "baton.log"
    assert log.read_bytes() == b"" and log.stat().st_mode & 0o777 == 0o600  # created, private, nothing logged
    write(f, b'{"usage":{bad\n')  # a bad line is logged: structlog is set up for it
    proc = start_script(baton_home, claude_dir, HEAVY)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "['sqlalchemy', 'structlog']"  # (the ledger is migrated)
    assert err.startswith(f"baton: warning: skipped {f}:3: ")
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["level"] for r in logged] == ["warning"] and logged[0]["event"].startswith(f"skipped {f}:3")


def test_ingest_runs_without_click_but_help_and_usage_errors_are_clicks(ledger_env: dict[str, str]) -> None:
    assert "-j, --json  Print the summary as JSON." in run_baton("ingest", "--help", env=ledger_env).stdout
    wrong = run_baton("ingest", "--jsn", env=ledger_env, check=False)
    assert wrong.returncode == 2 and "No such option --jsn" in wrong.stderr.replace("'", "").replace(":", "")
    assert json.loads(run_baton("ingest", "--json", env=ledger_env).stdout)["files"] == 0


@pytest.mark.slow
def test_ctrl_c_during_a_first_ingest_says_aborted_and_leaves_nothing_behind(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=12, lines=100)
    proc = start_slow_build(baton_home, claude_dir)
    workers = wait_for_build(baton_home, proc)
    os.kill(proc.pid, signal.SIGINT)
    err = stderr_when_done(proc)
    assert proc.returncode == 130 and err == "\nAborted.\n"
    assert gone(workers) and not list(baton_home.glob("baton.db*"))
    assert ingest_again(baton_home, claude_dir) == (12 * 100, expected)


def test_a_first_report_builds_the_ledger_without_pydantic_when_nothing_is_set(
    baton_home: Path, claude_dir: Path
) -> None:
    write(transcript(claude_dir), assistant_line(1), assistant_line(2))
    script = (
        "import sys; from daemon.cli import main\ntry:\n    main(['report', 'daily', '--json'])\nfinally:\n"
        "    print(sorted(m for m in ('pydantic', 'sqlalchemy') if m in sys.modules), file=sys.stderr)"
    )
    proc = start_script(baton_home, claude_dir, script)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["totals"]["totalTokens"] == 2 * PER_LINE and err.strip() == "[]"
    assert totals(baton_home) == (2, 2 * PER_LINE)


def test_the_defaults_ingest_runs_on_are_what_validation_gives_with_nothing_set(baton_home: Path) -> None:
    from daemon.commands.ingest import DEFAULT_LOG_LEVEL, nothing_to_validate

    paths = BatonPaths.from_env()
    assert nothing_to_validate(paths, os.environ)
    settings = load_settings(paths)
    assert settings.general.log_level == DEFAULT_LOG_LEVEL
    assert settings.transcripts.roots == [] and settings.pricing.file is None
    assert not nothing_to_validate(paths, {**os.environ, "BATON_GENERAL__LOG_LEVEL": "debug"})
    assert not nothing_to_validate(paths, {**os.environ, "baton_pricing__file": "x.json"})
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("")
    assert not nothing_to_validate(paths, os.environ)


def test_a_first_ingest_with_nothing_to_validate_writes_the_same_ledger_as_with_the_settings_loaded(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_corpus(claude_dir, files=3, lines=10)
    write(transcript(claude_dir, "bad.jsonl"), b'{"usage":{bad\n', assistant_line(7))
    first = run_baton("ingest", env={"CLAUDE_CONFIG_DIR": str(claude_dir)})
    rows = _ledger_rows(baton_home)
    (baton_home / "baton.db").unlink()
    (baton_home / "config.toml").write_text("[general]\nlog_level = 'info'\n")  # validated this time
    second = run_baton("ingest", env={"CLAUDE_CONFIG_DIR": str(claude_dir)})
    assert _ledger_rows(baton_home) == rows
    assert first.stdout.split(" in ")[0] == second.stdout.split(" in ")[0]
    assert first.stderr == second.stderr != ""


def _ledger_rows(baton_home: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(baton_home / "baton.db") as conn:
        return conn.execute(f"SELECT {COMPARED} FROM usage_events ORDER BY dedup_key").fetchall()


# a first ingest whose workers write slowly (so that a kill lands mid-build), in batches of 1 MB
SLOW_BUILD = (
    "import time, daemon.ingest as i; i.PARALLEL_MIN_BYTES = 0; i.BUILD_BATCH_BYTES = 1 << 20; "
    "i.HAND_BACK_EARLY = False; i.worker_count = lambda: 2; "
    "w = i._write_batch; i._write_batch = lambda c, r: (time.sleep(0.3), w(c, r))[1]; "
    "from daemon.cli import main; main(['ingest'])"
)


def start_slow_build(baton_home: Path, claude_dir: Path) -> subprocess.Popen[str]:
    return start_script(baton_home, claude_dir, SLOW_BUILD)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return sorted(int(p) for p in f.read().split())


def wait_for_build(baton_home: Path, proc: subprocess.Popen[str]) -> list[int]:
    """Wait until the workers write the new ledger (its schema is there); return the build's workers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(baton_home.glob("baton.db.new-*.ready")):
        assert proc.poll() is None
        time.sleep(0.01)
    time.sleep(0.2)
    workers = children(proc.pid)
    assert len(workers) >= 2
    return workers


def stderr_when_done(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """Wait for `proc` (an ingest that must end on its own) and return its stderr; kill its group if not."""
    try:
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def ingest_again(baton_home: Path, claude_dir: Path) -> tuple[int, int]:
    """Run `baton ingest` once more in a new process; return the ledger's totals after it."""
    run_baton("ingest", env={"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)})
    return totals(baton_home)


def gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[0] != "Z":
                        alive.append(pid)
            except FileNotFoundError:
                pass
        if not alive:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_during_a_first_ingest_ends_it_with_an_error_then_restart_is_exact(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=12, lines=100)
    proc = start_slow_build(baton_home, claude_dir)
    workers = wait_for_build(baton_home, proc)
    os.kill(workers[-1], signal.SIGKILL)  # the others wait for the writers' lock or write meanwhile
    err = stderr_when_done(proc)  # it used to hang here for ever
    assert proc.returncode == 1
    assert (
        err.strip()
        == "baton: a worker process died while building the new ledger; nothing was written, run it again"
    )
    assert gone(workers)
    assert not list(baton_home.glob("baton.db*"))  # the build is discarded whole
    assert ingest_again(baton_home, claude_dir) == (12 * 100, expected)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
def test_the_workers_of_a_first_ingest_die_with_it_and_its_files_go_with_the_next_run(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=12, lines=100)
    proc = start_slow_build(baton_home, claude_dir)
    workers = wait_for_build(baton_home, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must not live on
    proc.communicate()
    try:
        assert gone(workers)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert list(baton_home.glob("baton.db.new-*")) and not (baton_home / "baton.db").exists()
    assert ingest_again(baton_home, claude_dir) == (12 * 100, expected)
    assert not list(baton_home.glob("baton.db.new-*"))


def test_a_build_is_opened_never_created(tmp_path: Path) -> None:
    from daemon.ingest import _connect_build

    missing = tmp_path / "baton.db.new-1-abcd"
    with pytest.raises(sqlite3.OperationalError):
        _connect_build(missing)
    assert not missing.exists()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stray_builds_of_dead_processes_are_removed_even_when_a_ledger_exists(
    baton_home: Path, claude_dir: Path
) -> None:
    expected = make_corpus(claude_dir, files=2, lines=5)
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    run_baton("ingest", env=env)  # the ledger exists: the first-ingest path is not taken again
    dead, live = f"baton.db.new-{dead_pid()}-0badf00d", f"baton.db.new-{os.getpid()}-600dcafe"
    for name in (dead, live):
        for suffix in ("", "-wal", "-shm", ".migrate-lock", ".lock"):
            (baton_home / f"{name}{suffix}").write_bytes(b"x")
    run_baton("ingest", env=env)
    left = sorted(p.name for p in baton_home.glob("baton.db.new-*"))
    assert left == sorted(f"{live}{s}" for s in ("", "-wal", "-shm", ".migrate-lock", ".lock"))  # live: kept
    assert totals(baton_home) == (10, expected)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_during_a_first_ingest_removes_its_build_quietly(baton_home: Path, claude_dir: Path) -> None:
    expected = make_corpus(claude_dir, files=12, lines=100)
    proc = start_slow_build(baton_home, claude_dir)
    workers = wait_for_build(baton_home, proc)
    proc.send_signal(signal.SIGTERM)  # the parent only, as `kill` or systemd's stop would
    err = stderr_when_done(proc)
    assert proc.returncode != 0
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert gone(workers)
    assert not list(baton_home.glob("baton.db*"))
    assert ingest_again(baton_home, claude_dir) == (12 * 100, expected)


@pytest.mark.parametrize("first", [True, False], ids=["new-ledger", "existing-ledger"])
def test_a_file_unreadable_at_a_catch_up_is_retried_by_the_next_report(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """Unit level (works as root, where chmod 000 does not stop reads): the read fails as an open would."""
    import daemon.ingest as ingest_mod
    from daemon.ingest import FileResult, ensure_current, open_writer

    paths = BatonPaths.from_env()
    if not first:
        open_writer(baton_home / "baton.db").conn.close()
    write(transcript(claude_dir, "a.jsonl"), assistant_line(1))
    locked = transcript(claude_dir, "b.jsonl")
    write(locked, assistant_line(2, session="s2"))
    real = ingest_mod.parse_file

    def unreadable(path: str, *args: object, **kwargs: object) -> FileResult:
        if path == str(locked):
            return FileResult(path, FileState(), False, [], [], 0, [], 0, error=f"{path}: Permission denied")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_mod, "parse_file", unreadable)
    summary = ensure_current(paths)
    assert summary is not None and summary.new_events == 1 and len(summary.errors) == 1
    monkeypatch.setattr(ingest_mod, "parse_file", real)  # readable again; the folder did not change
    again = ensure_current(paths)
    assert again is not None and again.new_events == 1 and not again.errors
    assert totals(baton_home) == (2, 2 * PER_LINE)
    assert ensure_current(paths) is None  # all read: the warm path again


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a chmod 000 file anyway (covered at unit level above)"
)
def test_a_transcript_made_readable_again_is_counted_by_the_next_report(
    baton_home: Path, claude_dir: Path
) -> None:
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    write(transcript(claude_dir, "a.jsonl"), assistant_line(1))
    locked = transcript(claude_dir, "b.jsonl")
    write(locked, assistant_line(2, session="s2"))
    locked.chmod(0o000)
    try:
        run_baton("report", "daily", env=env)
        assert totals(baton_home) == (1, PER_LINE)
    finally:
        locked.chmod(0o644)
    run_baton("report", "daily", env=env)
    assert totals(baton_home) == (2, 2 * PER_LINE)


def run_with_file_size_limit(limit: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `baton ingest` unable to write files past `limit` bytes: a full disk, as root too."""
    import resource

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "daemon", "ingest"],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        preexec_fn=limited,
    )


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True], ids=["new-ledger", "existing-ledger"])
def test_a_full_disk_ends_ingest_with_one_clean_error_then_restart_is_exact(
    baton_home: Path, claude_dir: Path, existing: bool
) -> None:
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    expected = make_corpus(claude_dir, files=12, lines=100)
    if existing:  # a ledger holding a little, then much more to add than fits
        extra = transcript(claude_dir, "zz-first.jsonl", project="-home-me-first")
        write(extra, assistant_line(1, session="first"))
        for f in claude_dir.glob("projects/-home-me-app/*.jsonl"):
            f.rename(f.with_suffix(".later"))
        run_baton("ingest", env=env)
        for f in claude_dir.glob("projects/-home-me-app/*.later"):
            f.rename(f.with_suffix(".jsonl"))
        expected += PER_LINE
    out = run_with_file_size_limit(300_000, env)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(f"baton: cannot write {baton_home / 'baton.db'}: "), out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 2  # the message and a hint
    assert not list(baton_home.glob("baton.db.new-*"))
    run_baton("ingest", env=env)
    assert totals(baton_home) == (12 * 100 + existing, expected)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only folder anyway")
def test_a_read_only_data_folder_ends_ingest_with_one_clean_error(baton_home: Path, claude_dir: Path) -> None:
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
    make_corpus(claude_dir, files=2, lines=5)
    baton_home.chmod(0o500)
    try:
        out = run_baton("ingest", env=env, check=False)
    finally:
        baton_home.chmod(0o700)
    assert out.returncode == 1 and out.stderr.startswith(f"baton: cannot write {baton_home}")
    assert "Traceback" not in out.stderr


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_during_a_catch_up_into_a_ledger_ends_it_with_an_error_then_restart_is_exact(
    baton_home: Path, claude_dir: Path
) -> None:
    from daemon.ingest import open_writer

    expected = make_corpus(claude_dir, files=12, lines=100)
    open_writer(baton_home / "baton.db").conn.close()  # an existing ledger: the usual path, parsed in workers
    script = (
        "import time, daemon.ingest as i; i.PARALLEL_MIN_BYTES = 0; i.BATCH_ROWS = 100; p = i.parse_file; "
        "i.worker_count = lambda: 2; "
        "i.parse_file = lambda *a, **k: (time.sleep(0.2), p(*a, **k))[1]; "
        "from daemon.cli import main; main(['ingest'])"
    )
    proc = start_script(baton_home, claude_dir, script)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(children(proc.pid)) < 2:
        time.sleep(0.01)
    time.sleep(0.3)
    workers = children(proc.pid)
    os.kill(workers[-1], signal.SIGKILL)
    err = stderr_when_done(proc)  # it used to wait for the lost files for ever
    assert proc.returncode == 1
    assert err.strip() == "baton: a worker process died while reading transcripts; run it again"
    assert gone(workers)
    assert ingest_again(baton_home, claude_dir) == (12 * 100, expected)


def test_none_is_bound_as_null_through_the_registered_adapter(tmp_path: Path) -> None:
    """daemon.ledger_write registers an adapter for None (sqlite3 otherwise pays a formatted AttributeError
    per NULL parameter); it must still bind NULL, in executemany as in execute."""
    import daemon.ledger_write  # noqa: F401  (registers it)

    assert sqlite3.adapters.get((type(None), sqlite3.PrepareProtocol)) is not None
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, 1))
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(None, 2), ("x", None)])
    assert conn.execute("SELECT a IS NULL, b IS NULL FROM t ORDER BY rowid").fetchall() == [
        (1, 0),
        (1, 0),
        (0, 1),
    ]
    conn.close()


STOPPED_IN_FLUSH = r"""
import os, time, daemon.ingest as i
marks = os.environ["MARKS"]
i.PARALLEL_MIN_BYTES = 0; i.BUILD_BATCH_BYTES = 1 << 20; i.HAND_BACK_EARLY = False
i.worker_count = lambda: 2
i.FLUSH_WAIT_S = 1.0  # the time limit elsewhere than Linux, far shorter than the stop below
i._try_lock = lambda fd: False  # every batch is held until the workers' last tasks
flush, write = i._flush_build_work, i._write_batch
def marked_flush():
    open(f"{marks}/flush-{os.getpid()}", "w").close()
    return flush()
def slow_write(conn, results):
    time.sleep(1.0)
    return write(conn, results)
marked_flush.__module__, marked_flush.__qualname__ = "daemon.ingest", "_flush_build_work"
i._flush_build_work, i._write_batch = marked_flush, slow_write
from daemon.cli import main; main(["ingest"])
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the flush waits without limit on Linux")
def test_a_build_stopped_during_its_last_tasks_finishes_when_resumed(
    baton_home: Path, claude_dir: Path, tmp_path: Path
) -> None:
    """Ctrl-Z while one worker waits for the others at its last task and another still writes, then `fg`
    much later: the build finishes, exact, instead of the barrier breaking."""
    expected = make_corpus(claude_dir, files=12, lines=100)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "MARKS": str(marks)}
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPED_IN_FLUSH],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.glob("flush-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(list(marks.glob("flush-*"))) == 2, proc.stderr
        time.sleep(0.5)  # one worker is at the barrier, the other writes what it held (1 s a write)
        os.killpg(proc.pid, signal.SIGSTOP)
        time.sleep(2.5)  # longer than any time limit the barrier had
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert totals(baton_home) == (1200, expected)
    assert not list(baton_home.glob("baton.db.new-*"))
