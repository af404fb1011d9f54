"""The click application behind `baton`: a group whose sub-commands are imported on first use."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from daemon import __version__
from daemon.cli import COMMANDS, load


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use; `lazy` maps name -> (target, help)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            try:
                command = load(self.lazy[cmd_name][0])
            except (ImportError, AttributeError):
                return None
            if isinstance(command, click.Command):
                return command
            return None
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy) if self._available(name)]
        for name in click.Group.list_commands(self, ctx):
            command = click.Group.get_command(self, ctx, name)
            if name not in self.lazy and command is not None:
                rows.append((name, command.get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))

    def _available(self, name: str) -> bool:
        module_name = self.lazy[name][0].partition(":")[0]
        return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="baton")
def cli() -> None:
    """baton follows Claude Code's usage, warns before the quota runs out, and carries the work
    across the reset."""
