"""A small daemon for the handoff tests: the control socket plus `daemon.scheduler.attach`, nothing else.

It hosts the scheduler exactly as `baton run` does (a DaemonContext, the control socket, quota listeners), so
the tests exercise real restarts and kill -9 without depending on the rest of the daemon. The quota it reports
is the snapshot file (`daemon.snapshot`), which a test writes; each new snapshot goes to the quota listeners.

Run: `python harness.py` with BATON_HOME set. Prints "ready <pid>" once it serves; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daemon import db, notify, scheduler, snapshot
from daemon.config import load_settings
from daemon.context import DaemonContext
from daemon.control import ControlServer
from daemon.logs import configure
from daemon.paths import BatonPaths


def main() -> int:
    paths = BatonPaths.from_env().ensure()
    settings = load_settings(paths)
    configure(paths.log_file, level="debug", console=True)
    engine = db.open_ledger(paths.ledger_db)

    def send(title: str, body: str, kind: str) -> bool:
        return notify.send(settings, title, body, kind)

    ctx = DaemonContext(paths, settings, engine, notify=send, quota_state=lambda: snapshot.read(paths))
    ctx.handlers["ping"] = lambda req: {"pid": os.getpid()}
    server = ControlServer(paths, ctx.handlers)
    scheduler.attach(ctx)
    server.start()
    print(f"ready {os.getpid()}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last: str | None = None
    while not stop.wait(0.1):
        snap: dict[str, Any] | None = snapshot.read(paths)
        key = json.dumps(snap, sort_keys=True)
        if snap is not None and key != last:
            last = key
            for listener in ctx.quota_listeners:
                listener(snap)
    for hook in ctx.shutdown_hooks:
        hook()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
