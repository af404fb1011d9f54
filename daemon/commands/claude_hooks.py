"""`baton claude install-hooks`: add baton's hooks and status line to Claude Code's settings.json."""

from __future__ import annotations

from pathlib import Path

import click

from daemon.claude_settings import install_hooks as do_install


@click.command("install-hooks")
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The settings file (default: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json).",
)
@click.option("--no-statusline", is_flag=True, help="Leave the status line alone.")
@click.option("--dry-run", is_flag=True, help="Say what would be added; write nothing.")
def install_hooks(settings_path: Path | None, no_statusline: bool, dry_run: bool) -> None:
    """Add the SessionEnd and UserPromptSubmit hooks (and the status line if none) to Claude Code's settings.

    Merges into the file, keeps every other setting and hook, backs the file up first; running it again
    changes nothing.
    """
    result = do_install(settings_path, statusline=not no_statusline, dry_run=dry_run)
    if not result.added:
        click.echo(f"Nothing to add: {result.path} already has baton's hooks.")
        return
    verb = "Would add" if dry_run else "Added"
    click.echo(f"{verb} to {result.path}: {', '.join(result.added)}")
    if result.backup is not None:
        click.echo(f"Backup of the previous file: {result.backup}")
