"""`baton db backup|prune|path`: keep the database safe and small."""

from __future__ import annotations

import time
from pathlib import Path

import click

from daemon import maintenance, zones
from daemon.paths import BatonPaths


@click.group()
def db() -> None:
    """Back up, prune and locate baton's database."""


@db.command("path")
def path() -> None:
    """Print where the database file is."""
    click.echo(str(BatonPaths.from_env().ledger_db))


@db.command("backup")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path | None) -> None:
    """Copy the database to FILE (default: backups/baton-<time>.db beside it), safe while the daemon runs."""
    paths = BatonPaths.from_env()
    stamp = zones.now_in(zones.zone_for(paths)).strftime("%Y%m%d-%H%M%S")
    dest = file or paths.data_dir / "backups" / f"baton-{stamp}.db"
    written = maintenance.backup(paths.ledger_db, dest)
    click.echo(f"Backed up {paths.ledger_db} to {written} ({written.stat().st_size:,} bytes).")


@db.command("prune")
@click.option("--older-than", "age", required=True, metavar="AGE", help="e.g. 90d, 12w, 36h.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
def prune(age: str, dry_run: bool) -> None:
    """Delete usage, limit, session and value rows older than AGE, then VACUUM."""
    paths = BatonPaths.from_env()
    delta = maintenance.parse_age(age)
    cutoff = int((time.time() - delta.total_seconds()) * 1000)
    result = maintenance.prune(paths.ledger_db, cutoff, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    parts = [f"{n:,} from {table}" for table, n in result.deleted.items()]
    click.echo(f"{verb} rows older than {age}: {', '.join(parts) or 'nothing'}.")
    if not dry_run:
        click.echo(f"Database: {result.size_before:,} -> {result.size_after:,} bytes.")
