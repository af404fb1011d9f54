"""The control socket: how CLI commands talk to the running daemon.

A Unix stream socket at `paths.socket_path` (mode 0600 in a 0700 directory), one JSON object per line each
way. Request `{"op": "schedule.add", ...}`; reply `{"ok": true, ...}` or `{"ok": false, "error": "...",
"hint": ...}`. A connection may carry several requests in turn. On Linux the server also checks that the peer
runs as the same user (SO_PEERCRED), so a socket left with loose permissions by mistake answers no one else.

The daemon (`daemon.runner`) owns one ControlServer; each part registers its ops in `DaemonContext.handlers`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.errors import BatonError
from daemon.logs import get_logger
from daemon.paths import BatonPaths

Handler = Callable[[dict[str, Any]], dict[str, Any]]

MAX_LINE = 4 * 1024 * 1024  # a request carries a handoff path, never a handoff: 4 MiB is generous
log = get_logger("baton.control")


class DaemonNotRunning(BatonError):
    """No daemon answers on the control socket."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(
            f"the baton daemon is not running (no answer on {socket_path})",
            hint="start it with `baton run`, or install the service with `baton service install`",
        )
        self.socket_path = socket_path


class ControlError(BatonError):
    """The daemon answered a request with an error; `kind` names the error's class there (e.g.
    "NotPending"), so that a client can tell errors apart without reading their text."""

    def __init__(self, message: str, *, hint: str | None = None, kind: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


def dispatch(handlers: Mapping[str, Handler], raw: bytes) -> dict[str, Any]:
    """Given one request line, return the reply object. Never raises: every failure becomes `ok: false`."""
    try:
        request = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return {"ok": False, "error": f"bad request: not JSON ({exc})"}
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        return {"ok": False, "error": 'bad request: expected an object with a string "op"'}
    op = request["op"]
    handler = handlers.get(op)
    if handler is None:
        return {"ok": False, "error": f"unknown op {op!r}", "ops": sorted(handlers)}
    try:
        reply = handler(request)
    except BatonError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    except Exception as exc:  # a bug in one op must not take the daemon down
        log.exception("control op failed", op=op)
        return {"ok": False, "error": f"internal error in {op}: {type(exc).__name__}: {exc}"}
    return {"ok": True, **reply}


def _peer_uid(sock: socket.socket) -> int | None:
    """Return the uid of the process at the other end (Linux), or None where the platform cannot say."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class _RequestHandler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 300  # seconds a connection may stay silent before its thread gives up on it

    def handle(self) -> None:
        uid = _peer_uid(self.request)
        if uid is not None and uid != os.getuid():
            log.warning("control socket: refused a peer of another user", uid=uid)
            return
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except OSError:
                return
            if not line:
                return
            if len(line) > MAX_LINE:
                self._send({"ok": False, "error": f"bad request: longer than {MAX_LINE} bytes"})
                return
            if not line.strip():
                continue
            if not self._send(dispatch(self.server.handlers, line)):
                return

    def _send(self, reply: dict[str, Any]) -> bool:
        data = json.dumps(reply, ensure_ascii=False, default=str).encode() + b"\n"
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        return True


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        super().__init__(path, _RequestHandler, bind_and_activate=False)

    def server_bind(self) -> None:
        # The directory is 0700, so no other user can reach the socket in the instant before the chmod; the
        # process-wide umask is left alone because other threads of the daemon create files too.
        super().server_bind()
        os.chmod(str(self.server_address), 0o600)


class ControlServer:
    """Serves `handlers` on the control socket from a background thread.

    `handlers` is shared, not copied: ops registered after start() are served too.
    """

    def __init__(self, paths: BatonPaths, handlers: dict[str, Handler]) -> None:
        self.paths = paths
        self.handlers = handlers
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.paths.socket_path

    def start(self) -> None:
        """Bind the socket and serve in a thread. Raise BatonError if another daemon already answers on it,
        or if the runtime directory is not a private directory of this user (see BatonPaths.ensure)."""
        self.paths.ensure()
        _remove_stale_socket(self.path)
        server = _Server(str(self.path), self.handlers)
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:
            server.server_close()
            raise BatonError(f"cannot listen on {self.path}: {exc.strerror or exc}") from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="baton-control", daemon=True
        )
        self._thread.start()
        log.info("control socket listening", path=str(self.path))

    def stop(self) -> None:
        """Stop serving, close the socket and remove its file. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a daemon that died; raise BatonError if a live daemon answers on it."""
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            path.unlink(missing_ok=True)
            return
        raise BatonError(f"cannot use {path}: {exc.strerror or exc}") from exc
    finally:
        probe.close()
    raise BatonError(
        f"another baton daemon is already running (it answers on {path})",
        hint="stop that daemon first (`baton status` shows its pid), or use a different BATON_HOME",
    )


def request(paths: BatonPaths, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to the daemon and return its reply (`ok` true or false).

    Raise DaemonNotRunning if nothing listens on the socket, BatonError if the daemon does not answer in time.
    """
    path = paths.socket_path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning(path) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise DaemonNotRunning(path) from exc
            raise BatonError(f"cannot reach the daemon on {path}: {exc.strerror or exc}") from exc
        sock.sendall(json.dumps(payload, ensure_ascii=False).encode() + b"\n")
        reply = _read_line(sock)
    except TimeoutError as exc:
        raise BatonError(
            f"the daemon did not answer within {timeout:g} s",
            hint="see its log: `baton doctor` shows where it is",
        ) from exc
    finally:
        sock.close()
    if not reply:
        raise BatonError("the daemon closed the connection without answering")
    try:
        data = json.loads(reply)
    except ValueError as exc:
        raise BatonError(f"the daemon sent a reply that is not JSON: {reply[:200]!r}") from exc
    if not isinstance(data, dict):
        raise BatonError(f"the daemon sent an unexpected reply: {reply[:200]!r}")
    return data


def call(paths: BatonPaths, op: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
    """Send `op` with `fields` and return the reply. Raise ControlError if the daemon answers `ok: false`."""
    reply = request(paths, {"op": op, **fields}, timeout=timeout)
    if not reply.get("ok"):
        message = str(reply.get("error") or "the daemon refused the request")
        kind = reply.get("kind")
        raise ControlError(message, hint=reply.get("hint"), kind=str(kind) if kind else None)
    return reply


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_LINE:
            raise BatonError("the daemon's reply is too long")
    return b"".join(chunks)
