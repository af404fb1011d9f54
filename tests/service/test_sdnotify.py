"""sd_notify against a real datagram socket, as systemd would listen on it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def test_ready_watchdog_status_and_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    env = {"NOTIFY_SOCKET": path}
    assert sdnotify.ready(env)
    assert sock.recv(4096).decode() == f"READY=1\nMAINPID={os.getpid()}"
    assert sdnotify.watchdog(env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.status("following 3 sessions\n82 % used", env)
    assert sock.recv(4096).decode() == "STATUS=following 3 sessions 82 % used"
    assert sdnotify.stopping(env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_are_supported() -> None:
    name = f"baton-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert sdnotify.watchdog({"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    assert not sdnotify.ready({})
    assert not sdnotify.watchdog({})
    assert not sdnotify.status("x", {})
    assert not sdnotify.stopping({})


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path) -> None:
    assert not sdnotify.ready({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})


def test_process_environment_is_the_default(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_and_only_for_us(
    env: dict[str, str], expected: float | None
) -> None:
    assert sdnotify.watchdog_interval(env) == expected
