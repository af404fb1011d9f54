"""`baton claude`: install baton's slash commands (`install-commands`) and hooks (`install-hooks`)."""

from __future__ import annotations

from pathlib import Path

import click

from daemon.cli import load

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "install-hooks": (
        "daemon.commands.claude_hooks:install_hooks",
        "Add baton's hooks and status line to Claude Code's settings.json.",
    ),
}
MESSAGES = {
    "installed": "installed",
    "updated": "updated to this version of baton",
    "unchanged": "already up to date",
    "kept-user-file": "left alone: a file of that name is yours (rename it to get baton's)",
    "kept-edited": "left alone: you edited it (delete it to get baton's version back)",
}


class _Group(click.Group):
    """A group whose `SUBCOMMANDS` live in other modules, imported when used (or when help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        try:
            command = load(SUBCOMMANDS[cmd_name][0])
        except (ImportError, AttributeError):
            return None
        return command if isinstance(command, click.Command) else None


@click.group(cls=_Group)
def claude() -> None:
    """Install baton's slash commands and hooks into Claude Code."""


@claude.command("install-commands")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where to write (default: commands/ in the first $CLAUDE_CONFIG_DIR entry, else ~/.claude/commands)",
)
@click.option("--dry-run", is_flag=True, help="say what would change; write nothing")
def install_commands(target: Path | None, dry_run: bool) -> None:
    """Add /plan-next-session and /session-status to Claude Code; never overwrites your own files."""
    from daemon.claude_commands import install

    for outcome in install(target, dry_run=dry_run):
        verb = MESSAGES[outcome.action]
        if dry_run and outcome.action in ("installed", "updated"):
            verb = f"would be {verb}"
        click.echo(f"/{outcome.name}: {verb} ({outcome.path})")
