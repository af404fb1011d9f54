"""One daemon per user: an exclusive `flock` on `paths.lock_file`, which also tells others the daemon's pid.

The kernel drops the lock when the process dies, kill -9 included, so there is never a stale lock to clean.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from daemon.errors import BatonError
from daemon.paths import BatonPaths


class InstanceLock:
    """An exclusive lock on a file, held for the life of the daemon."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid. Raise BatonError (exit 75) naming the holder if it is taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BatonError(
                f"baton is already running (pid {other}; lock {self.path})",
                exit_code=75,  # EX_TEMPFAIL
                hint="stop it with `baton service stop` (the service or a `baton run`); see `baton status`",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Release the lock (the file stays; its content no longer matters)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def holder_pid(paths: BatonPaths) -> int | None:
    """Return the running daemon's pid (-1 if unreadable), or None when no daemon holds the lock."""
    try:
        fd = os.open(paths.lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
