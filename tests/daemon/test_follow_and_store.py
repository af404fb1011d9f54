"""The watcher in-process (its own reads never wake it) and the alerts record (crash-safe, no duplicates)."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from daemon import alerts_store
from daemon.alerts import Alert
from daemon.db import open_ledger
from daemon.follow import RESCAN, STAMP, TranscriptWatcher, candidate_roots


def collect_until(q: queue.SimpleQueue[str], expected: str, timeout: float = 10.0) -> list[str]:
    """Return what arrived until `expected` did (or `timeout` passed): a loaded machine delays inotify."""
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while expected not in out and (left := deadline - time.monotonic()) > 0:
        try:
            out.append(q.get(timeout=left))
        except queue.Empty:
            break
    return out


def test_reads_do_not_wake_the_watcher_and_writes_do(tmp_path: Path) -> None:
    root = tmp_path / "claude"
    (root / "projects" / "p").mkdir(parents=True)
    stamp = tmp_path / "data" / "official.stamp"
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    watcher = TranscriptWatcher([root], events.put, stamps={stamp: "official"})
    watcher.start()
    try:
        f = root / "projects" / "p" / "s.jsonl"
        f.write_text("{}\n")
        assert str(f) in collect_until(events, str(f))
        # A marker written after it: one folder's events arrive in order, so once the marker's event is in,
        # every event of the write is too (a fixed wait lost a late one on a loaded machine).
        first = root / "projects" / "p" / "marker-1.jsonl"
        first.write_text("{}\n")
        assert set(collect_until(events, str(first))) <= {str(f), str(first)}
        for _ in range(5):
            f.read_bytes()
        (root / "projects" / "p" / "notes.txt").write_text("x")
        (tmp_path / "data" / "baton.db-wal").write_text("own write")
        # Markers after the reads and writes, in each folder: what arrives before both is what they caused.
        second = root / "projects" / "p" / "marker-2.jsonl"
        second.write_text("{}\n")
        got = collect_until(events, str(second))
        stamp.touch()
        got += collect_until(events, f"{STAMP}:official")
        assert str(second) in got and f"{STAMP}:official" in got
        assert set(got) <= {str(first), str(second), f"{STAMP}:official"}  # nothing from the reads or writes
    finally:
        watcher.stop()


def test_a_root_that_appears_later_is_followed_and_rescanned(tmp_path: Path) -> None:
    root = tmp_path / "home" / ".claude"
    (tmp_path / "home").mkdir()
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    watcher = TranscriptWatcher([root], events.put)
    watcher.start()
    try:
        assert watcher.followed_dirs() == []
        (root / "projects" / "p").mkdir(parents=True)
        got = collect_until(events, RESCAN)
        assert RESCAN in got and watcher.followed_dirs() == [root / "projects"]
        new = root / "projects" / "p" / "s.jsonl"
        new.write_text("{}\n")
        assert str(new) in collect_until(events, str(new))
    finally:
        watcher.stop()


def test_candidate_roots_follow_claude_code_rules(tmp_path: Path) -> None:
    assert candidate_roots([], {"CLAUDE_CONFIG_DIR": "/a, /b/projects"}) == [Path("/a"), Path("/b")]
    assert candidate_roots([], {"HOME": "/h"}) == [Path("/h/.config/claude"), Path("/h/.claude")]
    assert candidate_roots([Path("/c")], {"CLAUDE_CONFIG_DIR": "/a"}) == [Path("/c")]


def alert(threshold: int, send: bool = True) -> Alert:
    return Alert("five_hour", threshold, 1000, 2000, "estimate", send, f"{threshold}%", "body")


def test_an_alert_is_recorded_once_and_a_crash_before_sending_leaves_it_pending(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / "baton.db")
    first = alerts_store.record(engine, alert(80), now_ms=1500)
    assert first is not None and alerts_store.record(engine, alert(80), now_ms=1600) is None
    assert alerts_store.pending(engine, now_ms=1700) == [(first, "80%", "body")]  # "killed" before sending
    alerts_store.mark_delivered(engine, first, True, "dbus")
    assert alerts_store.pending(engine, now_ms=1700) == []
    alerts_store.record(engine, alert(70, send=False), now_ms=1500)  # superseded: stored, never pending
    assert alerts_store.pending(engine, now_ms=1700) == []
    fired = alerts_store.load_fired(engine, since_ms=0)
    assert sorted((f.threshold, f.delivered) for f in fired) == [(70, False), (80, True)]
    engine.dispose()
