"""Tell systemd how the daemon is doing (the sd_notify protocol), so `Type=notify` and `WatchdogSec=` work.

Each call sends one datagram to `$NOTIFY_SOCKET`; without it (a terminal, launchd, tests) every call is a
no-op. A socket path starting with `@` is in Linux's abstract namespace. The protocol is small and
stable, so it is written here rather than pulled in as a dependency; failures are logged, never raised: the
daemon must not die because its supervisor went away.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

_log = logging.getLogger("baton.sdnotify")


def _address(env: Mapping[str, str]) -> str | None:
    """Return the socket address from NOTIFY_SOCKET (abstract names start with NUL), or None when unset."""
    raw = env.get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    return raw


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1") to systemd. Return True if sent, False outside systemd or on error."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        _log.warning("sd_notify to %r failed: %s", address.replace("\0", "@"), exc)
        return False
    return True


def ready(env: Mapping[str, str] | None = None) -> bool:
    """Say start-up is complete (READY=1); systemd holds `systemctl start` until then. Return True if sent."""
    return notify(f"READY=1\nMAINPID={os.getpid()}", env)


def watchdog(env: Mapping[str, str] | None = None) -> bool:
    """Ping the watchdog (WATCHDOG=1); silent past WatchdogSec=, systemd restarts us. Return True if sent."""
    return notify("WATCHDOG=1", env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    """Say a clean shutdown has begun (STOPPING=1). Return True if sent."""
    return notify("STOPPING=1", env)


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status `systemctl --user status baton` shows. Return True if sent."""
    line = " ".join(text.splitlines())  # the protocol is newline-separated: a newline would end the field
    return notify(f"STATUS={line}", env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Return how often to call `watchdog()`, in seconds (half of WATCHDOG_USEC, as systemd advises).

    Return None when the watchdog is off: WATCHDOG_USEC unset, not a positive integer, or WATCHDOG_PID naming
    another process (the variables were inherited, not meant for us).
    """
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000
