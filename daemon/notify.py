"""Desktop notifications, with a fallback chain and no silent failures.

Backends, tried in order for `backend = "auto"`:
- Linux: `dbus` (the freedesktop Notify call, sent with jeepney; the reply proves a server took it), then
  `plyer`.
- macOS: `osascript`, the title and body passed as argv (never spliced into AppleScript), then `plyer`.
- Windows and others: `plyer`.

plyer fails silently in several cases on Linux (platform-recipes.md §1): with no session bus or no server its
notify-send path only writes to stderr, and when a directory `/app` exists it assumes Flatpak and talks to a
portal that is usually not there. Those cases are checked *before* calling plyer and reported as failures.
Every attempt is logged; when every backend fails the caller still has the alert in the log (and the daemon in
its `alerts_fired` table, shown by `baton status`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.logs import get_logger

if TYPE_CHECKING:
    from daemon.config import Settings

NAME = "org.freedesktop.Notifications"
OBJECT = "/org/freedesktop/Notifications"
TIMEOUT_S = 3.0
URGENCY = {"alert": 1, "info": 1, "launch": 1, "critical": 2}  # freedesktop: 0 low, 1 normal, 2 critical

log = get_logger("baton.notify")


class NotifyFailed(Exception):
    """A backend could not deliver the notification; the message says why."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification: `backend` that delivered it ('log' when none did) and the failures."""

    delivered: bool
    backend: str
    failures: tuple[tuple[str, str], ...]


def session_bus_address(env: dict[str, str] | None = None) -> str | None:
    """Return the session bus address from the environment or the standard per-user socket, else None."""
    env = dict(os.environ) if env is None else env
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    bus = Path(runtime) / "bus"
    return f"unix:path={bus}" if bus.exists() else None


def _dbus_connection() -> Any:
    """Return an open jeepney connection to the session bus. Raise NotifyFailed if there is none."""
    address = session_bus_address()
    if address is None:
        raise NotifyFailed(
            "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no user bus)"
        )
    try:
        from jeepney.io.blocking import open_dbus_connection
    except ImportError as exc:
        raise NotifyFailed("jeepney is not installed") from exc
    try:
        return open_dbus_connection(bus=address)
    except Exception as exc:  # jeepney raises OSError, ValueError or its own errors
        raise NotifyFailed(f"cannot connect to the session bus {address}: {exc}") from exc


def check_server(conn: Any) -> None:
    """Raise NotifyFailed unless some process owns, or can be started for, org.freedesktop.Notifications."""
    from jeepney.bus_messages import message_bus

    owned = conn.send_and_get_reply(message_bus.NameHasOwner(NAME), timeout=TIMEOUT_S).body[0]
    if owned:
        return
    activatable = conn.send_and_get_reply(message_bus.ListActivatableNames(), timeout=TIMEOUT_S).body[0]
    if NAME not in activatable:
        raise NotifyFailed(
            "no notification server on the session bus (nothing owns org.freedesktop.Notifications)"
        )


def send_dbus(app_name: str, title: str, body: str, kind: str) -> str:
    """Send through the freedesktop Notify call; return the server's notification id. Raise NotifyFailed."""
    from jeepney import DBusAddress, MessageType, new_method_call

    conn = _dbus_connection()
    try:
        check_server(conn)
        address = DBusAddress(OBJECT, bus_name=NAME, interface=NAME)
        hints = {"urgency": ("y", URGENCY.get(kind, 1))}
        msg = new_method_call(
            address, "Notify", "susssasa{sv}i", (app_name, 0, "", title, body, [], hints, -1)
        )
        reply = conn.send_and_get_reply(msg, timeout=TIMEOUT_S)
        if reply.header.message_type == MessageType.error:
            raise NotifyFailed(f"the notification server refused: {reply.body}")
        return str(reply.body[0])
    except NotifyFailed:
        raise
    except Exception as exc:  # a timeout or a broken connection
        raise NotifyFailed(f"D-Bus Notify failed: {exc}") from exc
    finally:
        conn.close()


def plyer_trap(app_dir: Path = Path("/app"), flatpak_info: Path = Path("/.flatpak-info")) -> str | None:
    """Return why plyer would silently lose a notification on this Linux machine, or None."""
    if not sys.platform.startswith("linux"):
        return None
    if app_dir.is_dir() and not flatpak_info.exists():
        return "a directory /app exists, so plyer would use the Flatpak portal (not running in Flatpak)"
    try:
        conn = _dbus_connection()
    except NotifyFailed as exc:
        return str(exc)
    try:
        check_server(conn)
    except NotifyFailed as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot query the session bus: {exc}"
    finally:
        conn.close()
    return None


def send_plyer(app_name: str, title: str, body: str, kind: str) -> str:
    """Send through plyer after checking for its silent failures. Raise NotifyFailed."""
    trap = plyer_trap()
    if trap:
        raise NotifyFailed(trap)
    try:
        from plyer import notification

        notification.notify(title=title, message=body, app_name=app_name, timeout=10)
    except Exception as exc:  # plyer raises NotImplementedError, DBusException, OSError...
        raise NotifyFailed(f"plyer: {type(exc).__name__}: {exc}") from exc
    return "sent"


def send_osascript(app_name: str, title: str, body: str, kind: str) -> str:
    """Send through macOS `osascript`, with the texts as argv. Raise NotifyFailed."""
    exe = shutil.which("osascript")
    if exe is None:
        raise NotifyFailed("osascript not found (not macOS?)")
    script = [
        "-e",
        "on run a",
        "-e",
        'display notification (item 2 of a) with title (item 1 of a) sound name "Glass"',
    ]
    argv = [exe, *script, "-e", "end run", "--", title, body]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotifyFailed(f"osascript: {exc}") from exc
    if done.returncode != 0:
        raise NotifyFailed(f"osascript exited {done.returncode}: {done.stderr.strip()}")
    return "sent"


Backend = Callable[[str, str, str, str], str]
BACKENDS: dict[str, Backend] = {"dbus": send_dbus, "plyer": send_plyer, "osascript": send_osascript}


def chain(backend: str, platform: str = sys.platform) -> list[str]:
    """Return the backends to try, in order, for the configured `backend` on `platform`."""
    if backend == "log":
        return []
    if backend != "auto":
        return [backend]
    if platform.startswith("linux"):
        return ["dbus", "plyer"]
    if platform == "darwin":
        return ["osascript", "plyer"]
    return ["plyer"]


def deliver(settings: Settings, title: str, body: str, kind: str = "alert") -> Delivery:
    """Try each backend in turn; log the notification and every failure; return the outcome (never raises)."""
    failures: list[tuple[str, str]] = []
    for name in chain(settings.notify.backend):
        try:
            BACKENDS[name](settings.notify.app_name, title, body, kind)
        except NotifyFailed as exc:
            failures.append((name, str(exc)))
            log.info("notification_failed", backend=name, error=str(exc), title=title)
            continue
        log.info("notification_sent", backend=name, title=title, kind=kind)
        return Delivery(True, name, tuple(failures))
    reasons = "; ".join(f"{name}: {error}" for name, error in failures)
    log.warning("notification_not_delivered", title=title, body=body, kind=kind, reasons=reasons)
    return Delivery(False, "log", tuple(failures))


def send(settings: Settings, title: str, body: str, kind: str = "alert") -> bool:
    """Send a desktop notification (kind: 'alert'|'info'|'launch'); return True if a backend delivered it."""
    return deliver(settings, title, body, kind).delivered
