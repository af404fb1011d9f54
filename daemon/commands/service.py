"""`baton service install|uninstall|status|logs`: run baton in the background under systemd or launchd."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from daemon import service as svc
from daemon.errors import BatonError
from daemon.paths import BatonPaths

_platform_option = click.option(
    "--platform",
    type=click.Choice(["linux", "macos"]),
    default=None,
    help="Render for this platform instead of the current one (for review; implies nothing is started).",
)
_dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print every file and command; change nothing."
)


def _platform(value: str | None) -> svc.Platform:
    return "macos" if value == "macos" else "linux" if value == "linux" else svc.current_platform()


def _echo(text: str) -> None:
    click.echo(text)


def daemon_state(paths: BatonPaths) -> str | None:
    """Return "running (pid N)" when the daemon answers a ping on its control socket, else None."""
    try:
        from daemon import control
    except ImportError:
        return None
    try:
        reply: dict[str, Any] = control.request(paths, {"op": "ping"}, timeout=2.0)
    except BatonError:
        return None
    if not reply.get("ok"):
        return None
    pid = reply.get("pid")
    return f"running (pid {pid})" if pid else "running"


@click.group()
def service() -> None:
    """Install, remove and inspect the background service (systemd user unit or LaunchAgent)."""


@service.command()
@_dry_run_option
@_platform_option
def install(dry_run: bool, platform: str | None) -> None:
    """Write the service file and start the service. Safe to run again (it updates the file)."""
    target = _platform(platform)
    foreign = target != svc.current_platform()
    if foreign and not dry_run:
        click.echo(f"(rendering for {target} on another platform: nothing is written or run)")
        dry_run = True
    home = Path.home()
    spec = svc.build_spec(target, os.environ, python=sys.executable, home=home)
    text = svc.render(target, spec)
    booted = foreign or svc.manager_running(target)  # foreign: show the commands that would run there
    path = svc.service_file(target, home)
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    plan = svc.install_plan(target, spec, text, home=home, uid=os.getuid(), booted=booted, previous=previous)
    failures = svc.execute(plan, svc.SystemRunner(), dry_run=dry_run, echo=_echo)
    if failures:
        raise BatonError(
            "the service file was written but the service did not start:\n"
            + "\n".join(f"  {f}" for f in failures),
            hint="see `baton service logs` and `baton doctor`",
        )
    if not dry_run and booted:
        click.echo(
            f"baton is installed and running as a {'LaunchAgent' if target == 'macos' else 'user service'}."
        )


@service.command()
@_dry_run_option
@_platform_option
def uninstall(dry_run: bool, platform: str | None) -> None:
    """Stop the service and remove its file. The ledger, handoffs and configuration stay."""
    target = _platform(platform)
    dry_run = dry_run or target != svc.current_platform()
    plan = svc.uninstall_plan(target, home=Path.home(), uid=os.getuid(), booted=svc.manager_running(target))
    failures = svc.execute(plan, svc.SystemRunner(), dry_run=dry_run, echo=_echo)
    if failures:
        raise BatonError("\n".join(failures))


@service.command()
def status() -> None:
    """Show whether the service is installed and running, and whether the daemon answers."""
    target = svc.current_platform()
    path = svc.service_file(target, Path.home())
    click.echo(f"service file: {path} ({'installed' if path.is_file() else 'not installed'})")
    if svc.manager_running(target):
        runner = svc.SystemRunner()
        for command in svc.status_commands(target, os.getuid()):
            result = runner.run(command.argv)
            click.echo((result.stdout or result.stderr).rstrip())
    else:
        click.echo(f"{'launchd' if target == 'macos' else 'systemd'} is not running on this machine.")
    state = daemon_state(BatonPaths.from_env())
    click.echo(f"daemon: {state or 'not running (no answer on the control socket)'}")


@service.command()
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(lines: int, follow: bool) -> None:
    """Show the service's recent output (the journal, or launchd's log), else baton's own log file."""
    target = svc.current_platform()
    paths = BatonPaths.from_env()
    if svc.manager_running(target):
        command = svc.log_command(target, lines, follow, paths.log_dir)
        os.execvp(command.argv[0], list(command.argv))  # argv list: nothing goes through a shell
    log_file = paths.log_file
    if not log_file.is_file():
        raise BatonError(f"no log yet: {log_file} does not exist", hint="start baton with `baton run`")
    if follow:
        os.execvp("tail", ["tail", "-n", str(lines), "-F", str(log_file)])
    with log_file.open(encoding="utf-8", errors="replace") as handle:
        tail = handle.readlines()[-lines:]
    click.echo(f"(from {log_file})")
    click.echo("".join(tail).rstrip())
