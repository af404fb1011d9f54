"""Fixtures for the handoff, scheduler and launcher tests: a project, a fake `claude`, a private tmux server,
the `baton` command as a real subprocess, and the stand-in daemon (harness.py) that can be killed with -9.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daemon.paths import BatonPaths
from tests.support.real import require_real

HARNESS = Path(__file__).with_name("harness.py")


@pytest.fixture
def paths(baton_home: Path) -> BatonPaths:
    return BatonPaths.from_env().ensure()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git work tree whose name has a space and non-ASCII, with one commit and one modified file."""
    root = tmp_path / "my app ü"
    root.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    subprocess.run(["git", "init", "-q", "-b", "feature/auth", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "Add JWT endpoints"], check=True, env=env)
    (root / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    return root


@dataclass
class FakeClaude:
    """A `claude` stand-in that appends {argv (exact bytes), cwd, t, env} to a JSONL file per start."""

    path: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            rec = json.loads(line)
            rec["argv"] = [base64.b64decode(a) for a in rec["argv_b64"]]
            out.append(rec)
        return out

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.calls()
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {n} claude start(s) within {timeout} s, got {len(self.calls())}")


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeClaude:
    """The fake, configured as `launch.claude_path`; it prints a line, stays up `FAKE_CLAUDE_SLEEP` s (default
    60, so that its tmux session can be seen) and exits with `FAKE_CLAUDE_EXIT` (default 0)."""
    log = tmp_path / "claude-calls.jsonl"
    script = tmp_path / "bin" / "claude"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import base64, json, os, sys, time
        argv = [base64.b64encode(os.fsencode(a)).decode() for a in sys.argv[1:]]
        rec = {{"argv_b64": argv, "cwd": os.getcwd(), "t": time.time(),
                "baton_home": os.environ.get("BATON_HOME")}}
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps(rec) + "\\n")
        print("fake claude started", flush=True)
        time.sleep(float(os.environ.get("FAKE_CLAUDE_SLEEP", "60")))
        sys.exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "0")))
        """)
    )
    script.chmod(0o755)
    monkeypatch.setenv("BATON_LAUNCH__CLAUDE_PATH", str(script))
    return FakeClaude(script, log)


@pytest.fixture(autouse=True)
def private_tmux_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test's tmux server is its own: launch mode `auto` is tmux on Linux, and without this a test that
    launches (without the `tmux` fixture) opened its session in the machine's default tmux server, shared
    with the person's own sessions and with any other test run, and left it running."""
    tmpdir = tempfile.mkdtemp(prefix="bt-tmux-", dir="/tmp")  # short: the socket path must fit in sun_path
    monkeypatch.setenv("TMUX_TMPDIR", tmpdir)
    monkeypatch.delenv("TMUX", raising=False)
    yield
    exe = shutil.which("tmux")
    if exe is not None:
        env = {**os.environ, "TMUX_TMPDIR": tmpdir}
        subprocess.run([exe, "kill-server"], capture_output=True, check=False, env=env)
    shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture
def tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private tmux server (TMUX_TMPDIR), killed afterwards; returns the tmux path. Launch mode is tmux."""
    exe = require_real("tmux")
    tmpdir = tempfile.mkdtemp(prefix="bt-tmux-", dir="/tmp")  # short: the socket path must fit in sun_path
    monkeypatch.setenv("TMUX_TMPDIR", tmpdir)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.setenv("BATON_LAUNCH__MODE", "tmux")
    yield exe
    subprocess.run([exe, "kill-server"], capture_output=True, check=False)
    shutil.rmtree(tmpdir, ignore_errors=True)


def tmux_sessions(exe: str) -> list[str]:
    out = subprocess.run([exe, "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


def run_baton(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `baton` command (`python -m daemon`) in a subprocess with the test's environment."""
    out = subprocess.run([sys.executable, "-m", "daemon", *args], input=input, capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    if check and out.returncode != 0:
        raise AssertionError(f"baton {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def baton() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_baton


class Daemons:
    """Starts daemons: the stand-in (harness.py), or with `real=True` the real `baton run`. Each start is a
    new process; every process is stopped at the end."""

    def __init__(self, log_dir: Path, paths: BatonPaths) -> None:
        self.log_dir = log_dir
        self.paths = paths
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, real: bool = False) -> subprocess.Popen[str]:
        n = len(self.procs)
        err = open(self.log_dir / f"daemon-{n}.log", "w")  # noqa: SIM115 - closed with the process
        argv = [sys.executable, "-m", "daemon", "run"] if real else [sys.executable, str(HARNESS)]
        root = Path(__file__).resolve().parents[2]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=root)
        self.procs.append(proc)
        if real:
            self._wait_for_socket(proc)
            return proc
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.kill()
            raise AssertionError(f"daemon did not start: {line!r}\n{self.logs()}")
        return proc

    def _wait_for_socket(self, proc: subprocess.Popen[str]) -> None:
        from daemon.control import DaemonNotRunning, request

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if request(self.paths, {"op": "ping"}).get("pid") == proc.pid:
                    return
            except DaemonNotRunning:
                pass
            time.sleep(0.05)
        proc.kill()
        raise AssertionError(f"baton run did not answer on its socket:\n{self.logs()}")

    def kill9(self, proc: subprocess.Popen[str]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("daemon-*.log")))


@pytest.fixture
def daemons(paths: BatonPaths, tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path, paths)
    yield d
    d.stop_all()


def write_handoff(project: Path, *extra: str, start: str = "manual") -> Path:
    """Write a handoff with the real CLI and return its path."""
    args = ["--accomplished", "Built the JWT endpoints", "--objective", "Integrate auth ~15k"]
    args += ["--command", "git status", "--start", start, *extra]
    out = run_baton("handoff", "new", "--project", str(project), *args)
    return Path(out.stdout.strip())
