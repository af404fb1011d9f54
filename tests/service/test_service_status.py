"""`baton service status` and `logs` without systemd: file state, daemon state, baton's own log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon import service


def _baton(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
        timeout=60,
    )


pytestmark = pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here")


def test_status_without_service_or_daemon_says_so(home_dir: Path, baton_home: Path) -> None:
    done = _baton("service", "status")
    assert done.returncode == 0, done.stderr
    assert f"{home_dir}/.config/systemd/user/baton.service (not installed)" in done.stdout
    assert "systemd is not running on this machine" in done.stdout
    assert "daemon: not running" in done.stdout


@pytest.mark.slow
def test_status_and_logs_with_a_running_daemon(
    home_dir: Path, baton_home: Path, claude_dir: Path, start_daemon: Callable[..., Any]
) -> None:
    daemon = start_daemon()
    done = _baton("service", "status")
    assert f"daemon: running (pid {daemon.pid})" in done.stdout

    logs = _baton("service", "logs", "-n", "5")
    assert logs.returncode == 0, logs.stderr
    assert f"(from {baton_home}/logs/baton.log;" in logs.stdout
    assert "Scheduler started" not in logs.stdout and "  info     running  followed=" in logs.stdout
    assert 1 <= len(logs.stdout.strip().splitlines()) <= 6


def test_logs_before_any_run_is_a_clear_error(home_dir: Path, baton_home: Path) -> None:
    done = _baton("service", "logs")
    assert done.returncode == 1
    assert "no log yet" in done.stderr and "Traceback" not in done.stderr


def test_status_and_log_commands_per_platform(tmp_path: Path) -> None:
    assert service.status_commands("linux", 501)[0].argv == (
        "systemctl", "--user", "status", "--no-pager", "--lines=0", "baton.service",
    )  # fmt: skip
    assert service.status_commands("macos", 501)[0].argv == ("launchctl", "print", "gui/501/com.baton.agent")
    assert service.log_command("linux", 20, True, tmp_path).argv[-1] == "--follow"
    assert service.log_command("macos", 20, True, tmp_path).argv == (
        "tail", "-F", "-n", "20", str(tmp_path / "launchd.err.log"),
    )  # fmt: skip
