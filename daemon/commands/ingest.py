"""`baton ingest`: catch up on new transcript lines once, then exit with a one-line summary."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from daemon.paths import BatonPaths


@click.command("ingest")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ingest(as_json: bool) -> None:
    """Catch up on new transcript lines once, then exit."""
    from daemon.commands.report import run_catch_up
    from daemon.ingest import exit_on_sigterm

    exit_on_sigterm()  # a stop cleans up as an error does: no half-built ledger left behind
    paths = BatonPaths.from_env()
    summary = run_catch_up(paths, quiet_log=as_json)
    if as_json:
        click.echo(json.dumps(asdict(summary), indent=2))
    else:
        click.echo(summary.line())
