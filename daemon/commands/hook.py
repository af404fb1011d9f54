"""`baton hook`: the commands Claude Code runs on its hook events (help text; the work is in daemon.hooks)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import click

from daemon import hooks


@click.group()
def hook() -> None:
    """Claude Code hooks. Install them with `baton claude install-hooks`.

    Claude Code runs these itself; they read its hook JSON on stdin, answer in milliseconds and never fail
    the prompt or the session.
    """


@hook.command("session-end")
def session_end() -> None:
    """SessionEnd hook: close the session record at once (reads {"session_id", "reason", ...} on stdin)."""
    sys.exit(hooks.session_end(sys.stdin, sys.stderr, int(time.time() * 1000)))


@hook.command("user-prompt-submit")
def user_prompt_submit() -> None:
    """UserPromptSubmit hook: at or past 80 % of the 5-hour window, tell Claude to plan the next session."""
    sys.exit(hooks.user_prompt_submit(sys.stdin, sys.stdout, datetime.now(UTC)))
