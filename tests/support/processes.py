"""Real processes for tests: a `baton run` daemon, and a second process that appends transcript lines.

- `assistant_line(ts, ...)` returns one real-format Claude Code `assistant` line (claude-data-formats.md §2).
- `limit_line(ts, text)` returns a synthetic "you've hit your limit" line (§4).
- `append(path, lines, pause=0.0)` appends lines from a *separate* Python process, one `write()` per line.
- `alert_on_record(home, threshold)`: whether an alert's delivery is recorded (wait for it before a kill -9).
- `DaemonProcess` / fixture `start_daemon`: `start_daemon()` launches `python -m daemon run` with the test's
  environment and returns once the daemon has written its first snapshot; `.stop()` sends SIGTERM and waits,
  `.kill9()` kills it, `.snapshot()` reads what it wrote. Every daemon started is stopped after the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def iso(ts: datetime) -> str:
    """Return `ts` as Claude Code writes timestamps (UTC, milliseconds, Z)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def assistant_line(
    ts: datetime,
    *,
    input_tokens: int = 10,
    output_tokens: int = 100,
    cache_creation: int = 0,
    cache_read: int = 0,
    session_id: str = "0b7e2c1a-5d7e-4c3e-9a41-2f1c9d0e8a11",
    cwd: str = "/home/me/app",
    model: str = "claude-sonnet-4-5-20250929",
    message_id: str | None = None,
    request_id: str | None = None,
) -> str:
    """Return one `assistant` transcript line with this usage (ids are random unless given)."""
    line = {
        "parentUuid": str(uuid.uuid4()),
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "2.1.197",
        "gitBranch": "main",
        "type": "assistant",
        "requestId": request_id or f"req_{uuid.uuid4().hex[:24]}",
        "uuid": str(uuid.uuid4()),
        "timestamp": iso(ts),
        "message": {
            "id": message_id or f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "Done."}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": cache_read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": cache_creation,
                },
                "service_tier": "standard",
            },
        },
    }
    return json.dumps(line, separators=(",", ":"))


def limit_line(ts: datetime, text: str, session_id: str = "0b7e2c1a-5d7e-4c3e-9a41-2f1c9d0e8a11") -> str:
    """Return the synthetic line Claude Code writes when a limit is hit, with `text` as its message."""
    line = {
        "type": "assistant",
        "isSidechain": False,
        "cwd": "/home/me/app",
        "sessionId": session_id,
        "version": "2.1.197",
        "uuid": str(uuid.uuid4()),
        "timestamp": iso(ts),
        "isApiErrorMessage": True,
        "error": "rate_limit",
        "apiErrorStatus": 429,
        "message": {
            "id": str(uuid.uuid4()),
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>",
            "content": [{"type": "text", "text": text}],
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


_APPEND = """
import sys, time
path, pause = sys.argv[1], float(sys.argv[2])
lines = sys.stdin.read().splitlines()
with open(path, "a", encoding="utf-8") as f:
    for line in lines:
        f.write(line + "\\n")
        f.flush()
        if pause:
            time.sleep(pause)
"""


def append(path: Path, lines: list[str], pause: float = 0.0) -> None:
    """Append `lines` to `path` from a separate process (creating folders as Claude Code would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", _APPEND, str(path), str(pause)],
        input="\n".join(lines),
        text=True,
        check=True,
        timeout=60,
    )


def alert_on_record(home: Path, threshold: int) -> bool:
    """Return whether the daemon has recorded the delivery of its alert for `threshold` (0: "quota is back").

    Wait for this before a kill -9: a kill between the notification and its record sends it again on
    restart by design (never lost, at worst repeated)."""
    import sqlite3

    with sqlite3.connect(home / "baton.db") as conn:
        row = conn.execute(
            "SELECT delivered FROM alerts_fired WHERE threshold = ? AND delivered IS NOT NULL", (threshold,)
        ).fetchone()
    return row is not None


class DaemonProcess:
    """A `baton run` child process."""

    def __init__(self, proc: subprocess.Popen[bytes], home: Path, log: Path) -> None:
        self.proc = proc
        self.home = home
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def snapshot(self) -> dict[str, Any] | None:
        """Return the snapshot this daemon wrote (None before its first one)."""
        try:
            data = json.loads((self.home / "quota-snapshot.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("pid") == self.pid else None

    def wait_until(self, check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        """Wait until `check()` holds. Raise AssertionError with the daemon's output if it never does."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited {self.proc.returncode} waiting for {what}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `sig` and return the exit code once the daemon is gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        """Kill the daemon with SIGKILL (no clean-up at all) and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def launch(home: Path, env: dict[str, str] | None = None, wait: bool = True) -> DaemonProcess:
    """Start `python -m daemon run`; with `wait`, return once it has written its first snapshot."""
    log = home.parent / f"daemon-{time.monotonic_ns()}.out"
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    daemon = DaemonProcess(proc, home, log)
    if wait:
        daemon.wait_until(lambda: daemon.snapshot() is not None, timeout=30, what="the first snapshot")
    return daemon


try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def start_daemon(baton_home: Path) -> Iterator[Callable[..., DaemonProcess]]:
        """Return a function that starts `baton run` (see DaemonProcess); all are stopped afterwards."""
        started: list[DaemonProcess] = []

        def start(env: dict[str, str] | None = None, wait: bool = True) -> DaemonProcess:
            daemon = launch(baton_home, env, wait)
            started.append(daemon)
            return daemon

        yield start
        for d in started:
            if d.proc.poll() is None:
                d.kill9()

    @pytest.fixture
    def running_daemon(baton_home: Path) -> Iterator[int]:
        """Hold the daemon's instance lock in this process, as a running `baton run` does (its snapshot is
        then trusted); yield this process's pid."""
        from daemon.instance import InstanceLock
        from daemon.paths import BatonPaths

        lock = InstanceLock(BatonPaths.from_env().lock_file)
        lock.acquire()
        try:
            yield os.getpid()
        finally:
            lock.release()
