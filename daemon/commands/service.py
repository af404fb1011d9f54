"""`baton service install|uninstall|start|stop|restart|status|logs`: baton in the background (systemd,
launchd)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
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


def daemon_pid(paths: BatonPaths) -> int | None:
    """Return the pid of the daemon answering a ping on its control socket (0 if it gives none), else None."""
    from daemon import control

    try:
        reply: dict[str, Any] = control.request(paths, {"op": "ping"}, timeout=2.0)
    except BatonError:
        return None
    if not reply.get("ok"):
        return None
    pid = reply.get("pid")
    return pid if isinstance(pid, int) and pid > 0 else 0


def daemon_state(paths: BatonPaths) -> str | None:
    """Return "running (pid N)" when the daemon answers a ping on its control socket, else None."""
    pid = daemon_pid(paths)
    if pid is None:
        return None
    return f"running (pid {pid})" if pid else "running"


def _link_record() -> Path:
    """Return the file where install notes the `baton` link it made."""
    return BatonPaths.from_env().data_dir / "command-link"


def _script() -> Path:
    """Return this install's `baton` console script: next to the running interpreter."""
    return Path(sys.executable).parent / "baton"


def stop_process(pid: int, timeout_s: float = 15.0) -> bool:
    """Send SIGTERM to `pid` and return True once it has exited (False if it still runs after `timeout_s`)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    """Return True while `pid` runs; an exited process its parent has not reaped yet (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _make_private(folder: Path, *, dry_run: bool = False) -> None:
    """Make baton's data folder (ledger, handoffs, logs) private to the user when it exists and is not:
    a virtualenv created inside it (the README's install) leaves it readable by others. With `dry_run`,
    only say so."""
    try:
        info = folder.stat()
    except OSError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        if dry_run:
            click.echo(f"would make {folder} private (mode 700)")
            return
        folder.chmod(0o700)
        click.echo(f"made {folder} private (mode 700)")


def _stop_foreground(paths: BatonPaths, why: str) -> None:
    """Stop a daemon that is not the service (e.g. `baton run` in a terminal) through its pid."""
    pid = daemon_pid(paths)
    if pid is None:
        click.echo(f"{why}; no baton daemon is running.")
        return
    if pid == 0:
        raise BatonError("the running daemon did not say its pid", hint="stop it with Ctrl-C where it runs")
    click.echo(f"{why}; stopping the daemon running as pid {pid} (SIGTERM)")
    if not stop_process(pid):
        raise BatonError(f"pid {pid} is still running after 15 s", hint=f"kill -9 {pid}")
    click.echo("stopped.")


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
    link = None
    if not foreign:
        path_env = os.environ.get("PATH", "")
        link = svc.command_link(
            home,
            _script(),
            path_env,
            shutil.which("baton", path=path_env),
            _link_record(),
            profile="~/.zprofile" if target == "macos" else "~/.profile",  # zsh is macOS's login shell
        )
    plan = svc.install_plan(
        target,
        spec,
        text,
        home=home,
        uid=os.getuid(),
        booted=booted,
        previous=previous,
        link=link,
        dry_run=dry_run,
    )
    failures = svc.execute(plan, svc.SystemRunner(), dry_run=dry_run, echo=_echo)
    if not foreign:
        _make_private(BatonPaths.from_env().data_dir, dry_run=dry_run)
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
    """Stop the service and remove its file (and install's `baton` link). The ledger, handoffs and
    configuration stay."""
    target = _platform(platform)
    foreign = target != svc.current_platform()
    dry_run = dry_run or foreign
    home = Path.home()
    link = None if foreign else svc.own_link(home, _script(), _link_record())
    plan = svc.uninstall_plan(
        target,
        home=home,
        uid=os.getuid(),
        booted=svc.manager_running(target),
        link=link,
        record=_link_record() if link is not None else None,
    )
    failures = svc.execute(plan, svc.SystemRunner(), dry_run=dry_run, echo=_echo)
    if failures:
        raise BatonError("\n".join(failures))


def _control(action: svc.Action, dry_run: bool) -> None:
    """Start, stop or restart the service; without a service manager, `stop` stops a foreground daemon."""
    target = svc.current_platform()
    home = Path.home()
    manager = "launchd" if target == "macos" else "systemd"
    installed = svc.service_file(target, home).is_file()
    if not svc.manager_running(target) or not installed:
        why = f"{manager} is not running on this machine" if installed else "the service is not installed"
        if action == "stop":
            if dry_run:
                click.echo(
                    f"{why}; would stop the daemon answering on the control socket (SIGTERM to its pid)"
                )
                return
            _stop_foreground(BatonPaths.from_env(), why)
            return
        hint = "run baton in the foreground: `baton run`" if installed else "baton service install"
        if action == "restart" and daemon_pid(BatonPaths.from_env()) is not None:
            hint = "`baton service stop`, then `baton run`"
        raise BatonError(f"cannot {action} the service: {why}", hint=hint)
    plan = svc.control_plan(action, target, home=home, uid=os.getuid())
    failures = svc.execute(plan, svc.SystemRunner(), dry_run=dry_run, echo=_echo)
    if failures:
        raise BatonError("\n".join(failures), hint="see `baton service status` and `baton service logs`")
    if dry_run:
        return
    if action == "stop":
        # A daemon started by hand (`baton run`) is not the service; stop it too, as asked.
        if daemon_pid(BatonPaths.from_env()) is not None:
            _stop_foreground(BatonPaths.from_env(), f"the {manager} service is stopped")
        else:
            click.echo("baton is stopped (it starts again at your next login; `baton service start` now).")
    else:
        click.echo(f"baton is {'re' if action == 'restart' else ''}started.")


@service.command()
@_dry_run_option
def start(dry_run: bool) -> None:
    """Start the installed service."""
    _control("start", dry_run)


@service.command()
@_dry_run_option
def stop(dry_run: bool) -> None:
    """Stop the service, or a daemon started with `baton run` (its handoffs and ledger stay)."""
    _control("stop", dry_run)


@service.command()
@_dry_run_option
def restart(dry_run: bool) -> None:
    """Restart the service (after upgrading baton, for instance)."""
    _control("restart", dry_run)


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


def _display_zone(paths: BatonPaths) -> Any:
    """Return the configured display zone, the system's when the config is unset or invalid."""
    from daemon import timeutil
    from daemon.config import load_settings
    from daemon.errors import ConfigError

    try:
        name = load_settings(paths).general.timezone
    except ConfigError:
        name = ""
    return timeutil.resolve_zone(name)


@service.command()
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--all", "everything", is_flag=True, help="Include libraries' routine lines (APScheduler...).")
def logs(lines: int, follow: bool, everything: bool) -> None:
    """Show the service's recent output (the journal, or launchd's log), else baton's own log file, one
    readable line per event."""
    from daemon import service_logs

    target = svc.current_platform()
    paths = BatonPaths.from_env()
    if svc.manager_running(target):
        command = svc.log_command(target, lines, follow, paths.log_dir)
        os.execvp(command.argv[0], list(command.argv))  # argv list: nothing goes through a shell
    log_file = paths.log_file
    if not log_file.is_file():
        raise BatonError(f"no log yet: {log_file} does not exist", hint="start baton with `baton run`")
    zone = _display_zone(paths)
    more = "" if everything else "; --all adds the libraries' routine lines"
    click.echo(f"(from {log_file}{more})")
    shown, offset = service_logs.tail(log_file, lines, everything=everything, zone=zone)
    for line in shown:
        click.echo(line)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends following
            service_logs.follow(log_file, click.echo, everything=everything, zone=zone, start=offset)
