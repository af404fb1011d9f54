"""A real D-Bus session bus and a fake desktop notification server that records what it receives.

Fixtures (registered for every test through tests/conftest.py):

- `dbus_session` -> str: starts a private `dbus-daemon --session`, sets `DBUS_SESSION_BUS_ADDRESS` for the
  test (and for subprocesses it starts), yields the address, and stops the bus afterwards. No notification
  server owns `org.freedesktop.Notifications` on it: use it alone to test the "no server" failure.
- `notifications` -> NotificationServer: the same bus plus a fake server (a real process speaking D-Bus with
  jeepney) that answers `Notify`, `GetServerInformation`, `GetCapabilities` and `CloseNotification`, and
  appends every `Notify` to a JSONL file as `{"app_name", "summary", "body", "expire_timeout", "hints",
  "replaces_id", "id"}`.

      def test_alert_reaches_the_desktop(notifications):
          subprocess.run([...])                      # anything that sends a notification on the session bus
          got = notifications.wait_for(1, timeout=5)  # list of dicts, raises AssertionError on timeout
          assert got[0]["summary"] == "80% of the 5-hour window used"

  `.received()` returns what has arrived so far; `.address` is the bus address; `.path` the JSONL file.

Run as a script (`python desktop.py OUT.jsonl`) this file is the fake server itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME = "org.freedesktop.Notifications"
OBJECT = "/org/freedesktop/Notifications"


class NotificationServer:
    """Handle on the fake notification server: what it received, and a way to wait for more."""

    def __init__(self, address: str, path: Path, process: subprocess.Popen[bytes]) -> None:
        self.address = address
        self.path = path
        self.process = process

    def received(self) -> list[dict[str, Any]]:
        """Return every notification received so far, oldest first."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Return the notifications once at least `n` have arrived. Raise AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {n} notification(s) within {timeout} s, got {len(got)}: {got}"
                )
            time.sleep(0.02)


def start_bus() -> tuple[str, int]:
    """Start a private session bus; return (address, pid). Skips (fails under CI) without dbus-daemon."""
    from tests.support.real import require_real

    exe = require_real("dbus-daemon")
    out = subprocess.run(
        [exe, "--session", "--fork", "--print-address=1", "--print-pid=1", "--nosyslog"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    return out[0], int(out[1])


def stop_pid(pid: int) -> None:
    """Terminate process `pid` if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def start_server(address: str, path: Path, timeout: float = 10.0) -> NotificationServer:
    """Start the fake server on `address`, recording to `path`; return once it owns the name."""
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
    proc = subprocess.Popen([sys.executable, __file__, str(path)], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server prints "ready" once the name is owned
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"fake notification server did not start (said {line!r})")
    return NotificationServer(address, path, proc)


try:
    import pytest
except ImportError:  # running as the server script without pytest around
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def dbus_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
        """A private D-Bus session bus (no notification server on it); yields its address."""
        address, pid = start_bus()
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        try:
            yield address
        finally:
            stop_pid(pid)

    @pytest.fixture
    def notifications(dbus_session: str, tmp_path: Path) -> Iterator[NotificationServer]:
        """A fake notification server on `dbus_session` that records every Notify (see module docstring)."""
        server = start_server(dbus_session, tmp_path / "notifications.jsonl")
        try:
            yield server
        finally:
            server.process.terminate()
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.process.kill()


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def serve(path: Path) -> None:
    """Own org.freedesktop.Notifications and record each Notify to `path` (runs forever)."""
    from jeepney import HeaderFields, MessageType, new_error, new_method_return
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(bus="SESSION")
    reply = conn.send_and_get_reply(message_bus.RequestName(NAME, 4), timeout=5)  # 4: do not queue
    if reply.body[0] != 1:
        raise SystemExit(f"could not own {NAME}: {reply.body}")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    next_id = 0
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        if member == "Notify":
            next_id += 1
            app, replaces, _icon, summary, body, _actions, hints, expire = msg.body
            record = {
                "app_name": app,
                "summary": summary,
                "body": body,
                "expire_timeout": expire,
                "hints": _jsonable(hints),
                "replaces_id": replaces,
                "id": next_id,
            }
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            conn.send(new_method_return(msg, "u", (next_id,)))
        elif member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("fake-notifyd", "baton-tests", "1.0", "1.2")))
        elif member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (["body", "actions"],)))
        elif member == "CloseNotification":
            conn.send(new_method_return(msg))
        else:
            conn.send(
                new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",))
            )


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
