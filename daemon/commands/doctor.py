"""`baton doctor`: check everything baton needs, with a fix for each problem."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from daemon import doctor as checks
from daemon.paths import BatonPaths


@click.command()
@click.option("--no-notify", is_flag=True, help="Skip the test notification.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def doctor(no_notify: bool, as_json: bool) -> None:
    """Check that everything baton needs works, with fixes. Exit 1 if something stops baton from working."""
    from daemon import logs
    from daemon.commands.service import daemon_state

    logs.configure(None, level="error")  # the report says what failed; no log lines on the terminal

    probe = checks.prepare(BatonPaths.from_env(), notify=not no_notify, daemon_state=daemon_state)
    results = checks.run_checks(probe)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
    else:
        click.echo(checks.render(results))
    raise SystemExit(checks.exit_code(results))
