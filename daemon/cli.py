"""The `baton` command. Sub-commands live in `daemon.commands.*` and are imported only when called, so that
a command pays start-up only for what it uses. `statusline` and `hook` skip click entirely: Claude Code runs
them on every refresh and every prompt.

Errors: any BatonError raised below is printed once, here, and becomes the exit code.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from daemon.errors import BatonError

# name -> "module:attribute" of a click command or group; help text is shown without importing the module.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("daemon.commands.ingest:ingest", "Catch up on new transcript lines once, then exit."),
    "report": ("daemon.commands.report:report", "Usage reports (ccusage-compatible) and session reports."),
    "status": ("daemon.commands.status:status", "Where the quota stands now: percent, level, runway, reset."),
    "run": ("daemon.commands.run:run", "Run the daemon in the foreground (what launchd/systemd start)."),
    "statusline": ("daemon.statusline:command", "Status line for Claude Code (reads its JSON on stdin)."),
    "hook": ("daemon.commands.hook:hook", "Claude Code hooks (session-end, user-prompt-submit)."),
    "handoff": ("daemon.commands.handoff:handoff", "Write, list, show, edit and cancel handoffs."),
    "schedule": (
        "daemon.commands.schedule:schedule",
        "Schedule a primed Claude Code session after the reset.",
    ),
    "launch": ("daemon.commands.launch:launch", "Launch a session from a handoff now."),
    "memory": ("daemon.commands.memory:memory", "Show what baton remembers of a project."),
    "claude": ("daemon.commands.claude:claude", "Install baton's slash commands and hooks into Claude Code."),
    "service": ("daemon.commands.service:service", "Install, remove and inspect the background service."),
    "config": ("daemon.commands.config:config", "Write, show and validate the configuration."),
    "doctor": ("daemon.commands.doctor:doctor", "Check that everything baton needs works, with fixes."),
    "demo": (
        "daemon.commands.demo:demo",
        "Watch baton work on a synthetic session (touches none of your data).",
    ),
    "log": ("daemon.commands.log:log", "Log what a session delivered (value) and its outcome."),
    "note": ("daemon.commands.log:note", "Attach a note to a session (default: the latest)."),
    "tag": ("daemon.commands.log:tag", "Tag a session (default: the latest)."),
    "export": ("daemon.commands.export:export", "Export sessions (sessions.json, TRACKER.md, JSONL)."),
    "db": ("daemon.commands.db:db", "Back up, prune and locate the database."),
    "estimate": ("daemon.commands.estimate:estimate", "Estimate the tokens a planned session will use."),
    "phase": ("daemon.commands.estimate:phase", "Mark the start and end of a planned phase."),
}

# Commands that must answer in tens of milliseconds: dispatched before click is set up.
FAST_PATHS: dict[str, str] = {
    "statusline": "daemon.statusline:main",
    "hook": "daemon.hooks:main",
    "ingest": "daemon.commands.ingest:main",  # click's import is a tenth of a first ingest's start-up
    "report": "daemon.commands.usage_fast:main",  # `report daily --json`; other reports go through click
}


def load(target: str) -> Any:
    """Import "module:attribute" and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `baton` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in FAST_PATHS:
        # one-shot commands whose objects are nearly all acyclic and die at exit: the cyclic collector's
        # passes over the modules being imported only cost start-up time (about 10 ms of a first ingest),
        # and its last pass at exit, over every object left, as long again (frozen objects are skipped)
        gc.disable()
        try:
            fast = load(FAST_PATHS[args[0]])
        except ImportError:
            fast = None
        if fast is not None:
            code = fast(args[1:])
            gc.freeze()
            sys.exit(code)
    run_click(args)


def run_fast(action: Callable[[], object]) -> int:
    """Run a fast path's `action` and return the exit code, errors reported as click would report them."""
    try:
        action()
    except BatonError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `baton ... | head -c1`
        return 0
    except KeyboardInterrupt:  # Ctrl-C, as click reports it
        print("\nAborted.", file=sys.stderr)
        return 130
    return 0


def run_click(args: list[str]) -> None:
    """Run `args` through the click application; errors end the process with their exit code."""
    gc.enable()  # a fast path may hand its arguments over: whatever click runs gets the usual collector
    import click

    from daemon.cli_app import cli

    try:
        cli.main(args=args, prog_name="baton", standalone_mode=False)
    except BatonError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)


def __getattr__(name: str) -> Any:
    # `cli` and `LazyGroup` need click, which the fast paths never import: built on first access.
    if name in ("cli", "LazyGroup"):
        from daemon import cli_app

        return getattr(cli_app, name)
    raise AttributeError(name)
