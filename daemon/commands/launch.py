"""`baton launch now HANDOFF`: start the primed session of a handoff immediately."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import click

from daemon.errors import BatonError
from daemon.paths import BatonPaths


@click.group()
def launch() -> None:
    """Launch a session from a handoff now."""


@launch.command("now")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="print the launch record as JSON")
def now(ref: str, as_json: bool) -> None:
    """Launch the session of a handoff (id, id prefix or path) now, through the daemon when it runs."""
    from daemon import control
    from daemon import handoff as ho

    paths = BatonPaths.from_env().ensure()
    path = ho.resolve(paths, ref)
    try:
        reply = control.call(paths, "launch.now", timeout=60.0, handoff=str(path))
    except control.DaemonNotRunning:
        reply = _launch_here(paths, path)
    if as_json:
        click.echo(json.dumps({k: v for k, v in reply.items() if k != "ok"}, indent=2))
    else:
        click.echo(reply["message"])
    if reply.get("error"):
        raise SystemExit(1)


def _launch_here(paths: BatonPaths, path: object) -> dict[str, object]:
    from pathlib import Path

    from daemon.config import load_settings
    from daemon.db import open_ledger
    from daemon.launch import launch_handoff
    from daemon.scheduler import request_cancel

    settings = load_settings(paths)
    engine = open_ledger(paths.ledger_db)
    launched = launch_handoff(paths, settings, Path(str(path)), now=datetime.now(UTC), engine=engine,
                              trigger="manual")  # fmt: skip
    if launched.result.ok and paths.jobs_db.exists():
        with contextlib.suppress(BatonError):  # nothing was scheduled: fine
            request_cancel(paths, launched.handoff_id)
    plan = launched.result.plan
    return {"launch_id": launched.launch_id, "mode": plan.mode, "tmux_session": plan.tmux_session,
            "attach": plan.attach_command, "pid": launched.result.pid, "log_path": plan.log_path,
            "error": launched.result.error, "message": launched.describe()}  # fmt: skip


@launch.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--limit", default=20, show_default=True, help="how many, newest first")
def list_(as_json: bool, limit: int) -> None:
    """List recent launches: when, which handoff, how, and how each ended when known."""
    from daemon.db import open_ledger
    from daemon.launch_store import recent

    paths = BatonPaths.from_env().ensure()
    records = recent(open_ledger(paths.ledger_db), limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("No launches yet.", err=True)
    for r in records:
        where = r.tmux_session or (f"pid {r.pid}" if r.pid else "-")
        ended = f"exit {r.exit_code}" if r.exit_code is not None else r.status
        when = r.ts.astimezone().strftime("%Y-%m-%d %H:%M")
        click.echo(f"{when}  {r.handoff_id}  {r.trigger:<9}  {r.mode:<8}  {where:<20}  {ended}")
