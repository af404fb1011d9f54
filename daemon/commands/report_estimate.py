"""`baton report estimate [SESSION]`: a tracked session against its estimate, in Markdown."""

from __future__ import annotations

import time

import click

from daemon.commands.estimate import display_zone
from daemon.errors import BatonError
from daemon.estimate_model import holdout
from daemon.estimate_view import render_report
from daemon.paths import BatonPaths


@click.command()
@click.argument("session", required=False)
def estimate(session: str | None) -> None:
    """A tracked session against its estimate, in Markdown (SESSION: its number; default the latest)."""
    from daemon.db import connect_fast
    from daemon.estimate_store import all_sessions, load_session, tracked_history

    paths = BatonPaths.from_env()
    now_ms = int(time.time() * 1000)
    if session is not None and not session.isdigit():
        raise BatonError(f"session {session!r}: give the number `baton phase finish` printed")
    if not paths.ledger_db.exists():
        raise BatonError(
            "no tracked session yet", hint="track one with `baton phase start` and `baton phase end`"
        )
    with connect_fast(paths.ledger_db, readonly=True) as conn:
        view = load_session(conn, int(session) if session else None, now_ms)
        if view is None:
            raise BatonError(
                f"no tracked session {session}" if session else "no tracked session yet",
                hint="track one with `baton phase start` and `baton phase end`",
            )
        sessions = all_sessions(conn, now_ms)
        check = holdout(tracked_history(conn, now_ms))
    click.echo(render_report(view, sessions, check, now_ms, display_zone(paths)))
