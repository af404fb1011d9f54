"""What the running daemon shares with the parts it hosts (scheduler, control socket, alerts, sessions).

`daemon.runner` builds one DaemonContext at start and passes it to each part's `attach(ctx)`; nothing deep
reads the environment or opens its own database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.config import Settings
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from sqlalchemy import Engine

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class DaemonContext:
    """The running daemon's shared parts.

    notify(title, body, kind) sends a desktop notification and returns True if it was delivered.
    quota_state() returns the latest quota snapshot (daemon.quota.QuotaSnapshot) or None before the first one.
    handlers maps control-socket ops ("schedule.add", ...) to functions of a request dict
    returning a reply dict.
    quota_listeners are called with each new quota snapshot, on the daemon's evaluation thread.
    """

    paths: BatonPaths
    settings: Settings
    engine: Engine
    notify: Callable[[str, str, str], bool]
    quota_state: Callable[[], Any]
    handlers: dict[str, Handler] = field(default_factory=dict)
    quota_listeners: list[Callable[[Any], None]] = field(default_factory=list)
    shutdown_hooks: list[Callable[[], None]] = field(default_factory=list)
