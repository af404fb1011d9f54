"""`baton run`: the daemon in the foreground (what systemd and launchd start)."""

from __future__ import annotations

import sys

import click


@click.command()
def run() -> None:
    """Run the daemon in the foreground: follow transcripts, keep the quota current, send alerts.

    Stops on SIGTERM or Ctrl-C; SIGHUP reloads the configuration. Only one instance runs per user. An invalid
    configuration stops it at once with exit code 78 and the problems listed.
    """
    from daemon.config import load_settings
    from daemon.paths import BatonPaths
    from daemon.runner import run as run_daemon

    paths = BatonPaths.from_env()
    settings = load_settings(paths)
    sys.exit(run_daemon(paths, settings))
