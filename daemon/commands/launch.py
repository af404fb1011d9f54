"""`baton launch now HANDOFF`: start the primed session of a handoff immediately; `launch list`."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from daemon.paths import BatonPaths


@click.group()
def launch() -> None:
    """Launch a session from a handoff now."""


@launch.command("now")
@click.argument("ref")
@click.option("--force", is_flag=True, help="launch even a handoff that was launched (or closed) already")
@click.option("--json", "as_json", is_flag=True, help="print the launch record as JSON")
def now(ref: str, force: bool, as_json: bool) -> None:
    """Launch the session of a handoff (id, a unique part of one, or path) now, through the daemon when it
    runs. Only a pending handoff is launched, once, unless --force."""
    from daemon import control
    from daemon import handoff as ho
    from daemon.commands.schedule import local_claude
    from daemon.config import load_settings

    paths = BatonPaths.from_env().ensure()
    settings = load_settings(paths)
    path = ho.resolve(paths, ref)
    # claude as found here: the daemon uses it when its own PATH (fixed when the service was installed)
    # lacks it.
    fields = {"handoff": str(path), "force": force, "claude_path": local_claude(settings)}
    try:
        reply = control.call(paths, "launch.now", timeout=60.0, **fields)
    except control.DaemonNotRunning:
        reply = _launch_here(paths, path, force)
    if as_json:
        click.echo(json.dumps({k: v for k, v in reply.items() if k != "ok"}, indent=2))
    else:
        click.echo(reply["message"])
    if reply.get("error"):
        raise SystemExit(1)


def _launch_here(paths: BatonPaths, path: Path, force: bool) -> dict[str, Any]:
    from daemon.commands.schedule import request_cancel
    from daemon.config import load_settings
    from daemon.db import open_ledger
    from daemon.launch import launch_handoff
    from daemon.scheduler import NothingScheduled

    settings = load_settings(paths)
    engine = open_ledger(paths.ledger_db)
    launched = launch_handoff(paths, settings, path, now=datetime.now(UTC), engine=engine, trigger="manual",
                              force=force)  # fmt: skip
    if launched.result.ok and paths.jobs_db.exists():
        with contextlib.suppress(NothingScheduled):
            request_cancel(paths, launched.handoff_id)
    return launched.to_dict()


@launch.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--limit", default=20, show_default=True, help="how many, newest first")
def list_(as_json: bool, limit: int) -> None:
    """List recent launches: when, which handoff, how, and how each ended when known."""
    from daemon.config import load_settings
    from daemon.db import open_ledger
    from daemon.launch_store import recent
    from daemon.scheduler import zone

    paths = BatonPaths.from_env().ensure()
    records = recent(open_ledger(paths.ledger_db), limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("No launches yet.", err=True)
    tz = zone(load_settings(paths))
    for r in records:
        where = r.tmux_session or (f"pid {r.pid}" if r.pid else "-")
        ended = f"exit {r.exit_code}" if r.exit_code is not None else r.status
        when = r.ts.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{when}  {r.handoff_id}  {r.trigger:<9}  {r.mode:<8}  {where:<20}  {ended}")
