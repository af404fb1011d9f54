"""`baton schedule`: launch a primed session at a time or after the reset; list and cancel the schedule.

Also the CLI's client half of the scheduler, used by `handoff new/cancel` and `launch now` too: each request
goes to the daemon over the control socket when it runs, else into the job store through a paused scheduler
(`daemon.scheduler.offline_scheduler`), whose jobs the daemon runs when it starts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon import handoff as ho
from daemon.errors import BatonError
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from daemon.config import Settings


# ------------------------------------------------------------------------------------------ the client


@dataclass(frozen=True)
class ClientResult:
    """What a schedule request did: the jobs (JSON form), whether a running daemon took it, and a warning
    for the person (the quota will likely still be used up at the chosen time)."""

    jobs: list[dict[str, Any]]
    via_daemon: bool
    warning: str | None = None


def call_daemon(paths: BatonPaths, op: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any] | None:
    """Return the daemon's reply to `op`, or None when no daemon runs. Raise BatonError if it refuses."""
    from daemon import control

    try:
        return control.call(paths, op, timeout=timeout, **fields)
    except control.DaemonNotRunning:
        return None


def local_claude(settings: Settings) -> str | None:
    """Return claude's absolute path as this process finds it (`launch.claude_path`, PATH), or None."""
    found = shutil.which(settings.launch.claude_path)
    return os.path.abspath(found) if found else None


def request_add(
    paths: BatonPaths,
    settings: Settings,
    handoff_path: Path,
    *,
    at: datetime | None,
    offset: timedelta | None,
    now: datetime,
) -> ClientResult:
    """Schedule a handoff's launch at `at`, or at the reset plus `offset` when `at` is None; return the jobs.

    Through the daemon when it runs, else into the job store directly; the reset is then computed as
    `baton status` computes it. Raise ResetUnknown if the reset time is not known, BatonError if the time
    is past or the handoff not pending.
    """
    from daemon import control, scheduler

    quota = None if at is None else scheduler.current_quota(paths, settings, now)
    fields: dict[str, Any] = {"handoff": str(handoff_path), "claude_path": local_claude(settings)}
    if at is not None:
        fields["at"] = at.isoformat()
    else:
        fields.update(at_reset=True, offset_seconds=(offset or timedelta(0)).total_seconds())
    try:
        reply = call_daemon(paths, "schedule.add", **fields)
    except control.ControlError as exc:
        if exc.kind == "ResetUnknown":
            raise scheduler.ResetUnknown() from None
        raise
    if reply is not None:
        jobs = list(reply.get("jobs", []))
    else:
        at_reset = at is None
        if at is None:
            reset = scheduler.reset_time(scheduler.current_quota(paths, settings, now))
            if reset is None or reset + (offset or timedelta(0)) <= now:
                raise scheduler.ResetUnknown()
            at = reset + (offset or timedelta(0))
        with scheduler.offline_scheduler(paths) as sched:
            added = scheduler.add_launch(sched, settings, handoff_path, at, now=now, at_reset=at_reset,
                                         claude_path=fields["claude_path"])  # fmt: skip
        jobs = [j.to_dict(scheduler.zone(settings)) for j in added]
    return ClientResult(jobs, reply is not None, _warning(quota, at, settings, now))


def _warning(quota: Any, at: datetime | None, settings: Settings, now: datetime) -> str | None:
    from daemon import scheduler
    from daemon.when import display

    reset = None if at is None or quota is None else scheduler.exhausted_at(quota, at)
    if reset is None:
        return None
    return (
        f"Note: the quota is used up and resets at {display(reset, scheduler.zone(settings), now)}; the "
        "session starts at the time you gave anyway and may stop at once. Use --at-reset to start after it."
    )


def request_list(paths: BatonPaths, settings: Settings | None = None) -> ClientResult:
    """Return the scheduled jobs, from the daemon when it runs, else from the job store."""
    from daemon import scheduler

    reply = call_daemon(paths, "schedule.list")
    if reply is not None:
        return ClientResult(list(reply.get("jobs", [])), True)
    if not paths.jobs_db.exists():
        return ClientResult([], False)
    if settings is None:
        from daemon.config import load_settings

        settings = load_settings(paths)
    with scheduler.offline_scheduler(paths) as sched:
        return ClientResult([j.to_dict(scheduler.zone(settings)) for j in scheduler.list_jobs(sched)], False)


def request_cancel(paths: BatonPaths, ref: str) -> tuple[list[str], bool]:
    """Cancel the jobs `ref` names; return (removed job ids, whether the daemon did it).

    Raise NothingScheduled if nothing matches, BatonError if the daemon refuses.
    """
    from daemon import control, scheduler

    try:
        reply = call_daemon(paths, "schedule.cancel", id=ref)
    except control.ControlError as exc:
        if exc.kind == "NothingScheduled":
            raise scheduler.NothingScheduled(exc.message, hint=exc.hint) from None
        raise
    if reply is not None:
        return list(reply.get("removed", [])), True
    if not paths.jobs_db.exists():
        raise scheduler.NothingScheduled(f"nothing scheduled for {ref!r}", hint="see `baton schedule list`")
    with scheduler.offline_scheduler(paths) as sched:
        return scheduler.cancel(sched, paths, ref), False


# ------------------------------------------------------------------------------------------ the command


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
@click.option(
    "--at-reset",
    is_flag=True,
    help="after the quota's reset: reset + --offset (default scheduler.offset_minutes, 5 min)",
)
@click.option("--offset", help="with --at-reset: this long after the reset (0 for the reset itself)")
@click.option("--handoff", "handoff_ref", help="the handoff: id, a unique part of one, or a Markdown file")
@click.option(
    "--project", type=click.Path(file_okay=False), help="project of a plain Markdown --handoff file"
)
@click.pass_context
def schedule(ctx: click.Context, at_text: str | None, at_reset: bool, offset: str | None,
             handoff_ref: str | None, project: str | None) -> None:  # fmt: skip
    """Schedule a primed Claude Code session after the reset; `list` and `cancel` what is scheduled.

    A launch at the reset checks first that the quota really reset (and tries again later if not); a
    launch at a time you give starts at that time.
    """
    if ctx.invoked_subcommand is not None:
        if at_text or at_reset or handoff_ref:
            raise click.UsageError("options go after `baton schedule`, not before a sub-command")
        return
    from daemon import scheduler
    from daemon.config import load_settings
    from daemon.when import parse_duration, parse_when_explained

    if not handoff_ref or bool(at_text) == at_reset:
        raise click.UsageError("give --handoff and one of --at TIME or --at-reset")
    if offset and not at_reset:
        raise click.UsageError("--offset goes with --at-reset")
    paths = BatonPaths.from_env().ensure()
    settings = load_settings(paths)
    tz = scheduler.zone(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    at = None
    if at_text:
        when = parse_when_explained(at_text, now, tz)
        at = when.at
        if when.note:
            click.echo(f"Note: {when.note}.", err=True)
    minutes = settings.scheduler.offset_minutes
    delta = parse_duration(offset) if offset else timedelta(minutes=minutes)
    path = adopt(paths, handoff_ref, project, now)
    result = request_add(paths, settings, path, at=at, offset=None if at else delta, now=now)
    for job in result.jobs:
        click.echo(f"{job['id']}  {job['kind']:<8}  {job['run_at']}  {job['project']}")
    if at_reset:
        how = f"{_minutes(delta)} after the reset" if delta else "at the reset"
        default = "" if offset else " (scheduler.offset_minutes; --offset 0 for the reset itself)"
        click.echo(f"The launch is {how}{default}; it checks first that the quota really reset.", err=True)
    if result.warning:
        click.echo(result.warning, err=True)
    if not result.via_daemon:
        click.echo(
            "baton is not running: the launch is stored and runs when the daemon starts (`baton run`).",
            err=True,
        )


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON: id, kind, run_at, handoff, project")
def list_(as_json: bool) -> None:
    """List scheduled launches and reminders, soonest first (times with their UTC offset)."""
    paths = BatonPaths.from_env().ensure()
    result = request_list(paths)
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
    paths = BatonPaths.from_env().ensure()
    removed, _ = request_cancel(paths, ref)
    click.echo(f"Cancelled: {', '.join(removed)}")
