"""The control socket: a real Unix socket, served from a thread, reached by real clients and processes."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from daemon.control import ControlServer, DaemonNotRunning, call, request
from daemon.errors import BatonError
from daemon.paths import BatonPaths


@pytest.fixture
def paths(baton_home: Path) -> BatonPaths:
    return BatonPaths.from_env().ensure()


def echo(req: dict[str, Any]) -> dict[str, Any]:
    return {"echo": req}


def failing(req: dict[str, Any]) -> dict[str, Any]:
    raise BatonError("no such handoff", hint="see `baton handoff list`")


def crashing(req: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("boom")


def test_request_gets_the_handlers_reply_and_the_socket_is_private(paths: BatonPaths) -> None:
    with ControlServer(paths, {"echo": echo}):
        reply = request(paths, {"op": "echo", "text": "café $(x) `y`;\nz"})
        mode = stat.S_IMODE(paths.socket_path.stat().st_mode)
        dir_mode = stat.S_IMODE(paths.runtime_dir().stat().st_mode)
    assert reply == {"ok": True, "echo": {"op": "echo", "text": "café $(x) `y`;\nz"}}
    assert mode == 0o600
    assert dir_mode == 0o700
    assert not paths.socket_path.exists()


def test_no_daemon_raises_daemon_not_running(paths: BatonPaths) -> None:
    with pytest.raises(DaemonNotRunning) as info:
        request(paths, {"op": "ping"})
    assert "not running" in info.value.message


def test_a_stale_socket_file_from_a_killed_daemon_is_replaced(paths: BatonPaths) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(paths.socket_path))
    dead.close()  # the file stays, nobody listens: what kill -9 leaves behind
    with pytest.raises(DaemonNotRunning):
        request(paths, {"op": "ping"})
    with ControlServer(paths, {"echo": echo}):
        assert request(paths, {"op": "echo"})["ok"] is True


def test_a_second_server_refuses_to_steal_a_live_socket(paths: BatonPaths) -> None:
    with ControlServer(paths, {"echo": echo}):
        with pytest.raises(BatonError, match="already running"):
            ControlServer(paths, {}).start()
        assert request(paths, {"op": "echo"})["ok"] is True


def test_errors_become_ok_false_replies_and_the_server_keeps_serving(paths: BatonPaths) -> None:
    handlers = {"fail": failing, "crash": crashing}
    with ControlServer(paths, handlers):
        assert request(paths, {"op": "fail"}) == {
            "ok": False,
            "error": "no such handoff",
            "hint": "see `baton handoff list`",
            "kind": "BatonError",  # the error's class, so that clients need not match on its text
        }
        crash = request(paths, {"op": "crash"})
        assert crash["ok"] is False and "RuntimeError: boom" in crash["error"]
        unknown = request(paths, {"op": "nope"})
        assert unknown["ok"] is False and "unknown op 'nope'" in unknown["error"]
        with pytest.raises(BatonError, match="no such handoff"):
            call(paths, "fail")
        handlers["late"] = echo  # registered after start: served too
        assert call(paths, "late", x=1)["echo"] == {"op": "late", "x": 1}


def test_malformed_lines_get_a_clear_error_on_the_same_connection(paths: BatonPaths) -> None:
    with ControlServer(paths, {"echo": echo}):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(5)
        client.connect(str(paths.socket_path))
        stream = client.makefile("rwb")
        stream.write(b"not json\n[1, 2]\n" + json.dumps({"op": "echo"}).encode() + b"\n")
        stream.flush()
        replies = [json.loads(stream.readline()) for _ in range(3)]
        client.close()
    assert replies[0]["ok"] is False and "not JSON" in replies[0]["error"]
    assert replies[1]["ok"] is False and '"op"' in replies[1]["error"]
    assert replies[2] == {"ok": True, "echo": {"op": "echo"}}


def test_another_process_reaches_the_server(paths: BatonPaths) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from daemon.control import request
        from daemon.paths import BatonPaths
        print(json.dumps(request(BatonPaths.from_env(), {"op": "echo", "n": 7})))
        """
    )
    with ControlServer(paths, {"echo": echo}):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"ok": True, "echo": {"op": "echo", "n": 7}}
