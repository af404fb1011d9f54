"""The daemon under a service manager: Type=notify on a real socket, and exit 78 on a bad config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _messages(sock: socket.socket, until: Callable[[list[str]], bool], timeout: float = 30.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError as exc:
            raise AssertionError(f"no more sd_notify messages; got {got}") from exc
    return got


@pytest.mark.slow
def test_baton_run_speaks_the_notify_protocol_ready_watchdog_stopping(
    baton_home: Path, claude_dir: Path, tmp_path: Path, start_daemon: Callable[..., Any]
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        daemon: object = start_daemon(
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, wait=False
        )

        got = _messages(sock, lambda m: sum(x == "WATCHDOG=1" for x in m) >= 2)
        assert any(m.startswith("READY=1") for m in got)
        ready = next(i for i, m in enumerate(got) if m.startswith("READY=1"))
        assert "WATCHDOG=1" in got[ready:]

        assert daemon.stop() == 0
        rest = _messages(sock, lambda m: "STOPPING=1" in m, timeout=5)
        assert "STOPPING=1" in rest


def test_invalid_config_stops_the_daemon_with_exit_78_and_the_validate_message(
    baton_home: Path, claude_dir: Path
) -> None:
    (baton_home / "config.toml").write_text("[general]\ntimezone = 'Mars/Base'\n")

    def baton(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", *args], capture_output=True, text=True, check=False, timeout=60
        )

    run, validate = baton("run"), baton("config", "validate")
    assert run.returncode == validate.returncode == 78  # RestartPreventExitStatus=78 in the unit
    assert "At 'general.timezone' (config.toml line 2): unknown time zone 'Mars/Base'" in run.stderr
    assert run.stderr.strip().splitlines()[:3] == validate.stderr.strip().splitlines()[:3]
    assert os.environ["BATON_HOME"] in run.stderr
