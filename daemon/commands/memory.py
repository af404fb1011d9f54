"""`baton memory show [PROJECT]`: what baton remembers of a project."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from daemon.paths import BatonPaths


@click.group()
def memory() -> None:
    """Show what baton remembers of a project."""


@memory.command("show")
@click.argument("project", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the whole memory as JSON")
def show(project: str | None, as_json: bool) -> None:
    """Show a project's memory (default: the current directory), refreshed from the ledger."""
    from daemon import memory as mem

    paths = BatonPaths.from_env().ensure()
    folder = str(Path(project or os.getcwd()).expanduser().resolve())
    m = mem.refresh(paths, folder, now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(m.to_json(), indent=2, ensure_ascii=False))
        return
    text = mem.summary(m, limit=10)
    click.echo(text.rstrip("\n") if text else f"baton remembers nothing of {folder} yet.")
    if m.next_objectives:
        click.echo("- Next objectives:")
        for o in m.next_objectives:
            click.echo(f"  - {o}")
