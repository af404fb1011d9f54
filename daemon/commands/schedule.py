"""`baton schedule`: launch a primed session at a time or after the reset; list and cancel the schedule."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from daemon import handoff as ho
from daemon.errors import BatonError
from daemon.paths import BatonPaths


def adopt(paths: BatonPaths, ref: str, project: str | None, now: datetime) -> Path:
    """Return the stored handoff for `ref` (an id, or a file).

    A file without baton's header is stored as a new pending handoff whose body is the file's text, for
    `project` (default: the current directory).
    """
    candidate = Path(ref).expanduser()
    if not candidate.is_file():
        return ho.resolve(paths, ref)
    text = candidate.read_text(encoding="utf-8")
    try:
        h = ho.parse(text, str(candidate))
    except ho.HandoffError:
        h = None
    if h is not None:
        stored = ho.path_for(paths, h)
        if candidate.resolve() != stored.resolve():
            ho.write_private(stored, text)
        return stored
    folder = str(Path(project or os.getcwd()).expanduser().resolve())
    if not Path(folder).is_dir():
        raise BatonError(f"the project directory does not exist: {folder}")
    h = ho.Handoff(id=ho.new_id(now), project=folder, created=now, title=candidate.stem, start="time")
    stored = ho.path_for(paths, h)
    ho.write_private(stored, ho.render_header(h) + text)
    return stored


@click.group(invoke_without_command=True)
@click.option("--at", "at_text", help="ISO time, local clock time (18:05), +90s or 'in 5m'")
@click.option("--at-reset", is_flag=True, help="at the 5-hour window's reset (plus --offset)")
@click.option("--offset", help="after the reset by this much (default: scheduler.offset_minutes)")
@click.option("--handoff", "handoff_ref", help="the handoff: id, id prefix, or a Markdown file")
@click.option(
    "--project", type=click.Path(file_okay=False), help="project of a plain Markdown --handoff file"
)
@click.pass_context
def schedule(ctx: click.Context, at_text: str | None, at_reset: bool, offset: str | None,
             handoff_ref: str | None, project: str | None) -> None:  # fmt: skip
    """Schedule a primed Claude Code session after the reset; `list` and `cancel` what is scheduled."""
    if ctx.invoked_subcommand is not None:
        if at_text or at_reset or handoff_ref:
            raise click.UsageError("options go after `baton schedule`, not before a sub-command")
        return
    from datetime import timedelta

    from daemon import scheduler
    from daemon.config import load_settings

    if not handoff_ref or bool(at_text) == at_reset:
        raise click.UsageError("give --handoff and one of --at TIME or --at-reset")
    paths = BatonPaths.from_env().ensure()
    settings = load_settings(paths)
    now = datetime.now(UTC).replace(microsecond=0)
    at = scheduler.parse_when(at_text, now, scheduler._zone(settings)) if at_text else None
    delta = (
        scheduler.parse_duration(offset) if offset else timedelta(minutes=settings.scheduler.offset_minutes)
    )
    path = adopt(paths, handoff_ref, project, now)
    result = scheduler.request_add(paths, settings, path, at=at, offset=None if at else delta, now=now)
    for job in result.jobs:
        click.echo(f"{job['id']}  {job['kind']:<8}  {job['run_at']}  {job['project']}")
    if not result.via_daemon:
        click.echo(
            "baton is not running: the launch is stored and runs when the daemon starts (`baton run`).",
            err=True,
        )


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON: id, kind, run_at, handoff, project")
def list_(as_json: bool) -> None:
    """List scheduled launches and reminders, soonest first."""
    from daemon import scheduler

    paths = BatonPaths.from_env().ensure()
    result = scheduler.request_list(paths)
    if as_json:
        click.echo(json.dumps(result.jobs, indent=2))
        return
    if not result.jobs:
        click.echo("Nothing scheduled.", err=True)
    for job in result.jobs:
        click.echo(f"{job['id']}  {job['kind']:<8}  {job['run_at']}  {job['project']}")


@schedule.command("cancel")
@click.argument("ref")
def cancel(ref: str) -> None:
    """Cancel a scheduled launch (by job id or handoff id); the handoff stays pending."""
    from daemon import scheduler

    paths = BatonPaths.from_env().ensure()
    removed, _ = scheduler.request_cancel(paths, ref)
    click.echo(f"Cancelled: {', '.join(removed)}")
