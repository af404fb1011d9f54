"""`baton log`, `baton note`, `baton tag`: what a session delivered, in the person's words.

A logged entry attaches to the session named with --session (a full id or a unique prefix) or, by default, the
latest session with messages (by its last message). A session without usage (Claude Code left before any
prompt: the SessionEnd hook still records its id) is never the default, and naming one is an error, since no
report would show what is attached to it. Entries, notes and tags live in their own tables and survive every
refresh.
"""

from __future__ import annotations

import time

import click

from daemon import sessions
from daemon.errors import BatonError
from daemon.paths import BatonPaths

VALUE_HELP = "high, medium, low, zero, or creation, maintenance, debt, refactor"


def _prepare(paths: BatonPaths) -> None:
    """Bring the session records up to date (creating the database if there is none yet)."""
    if paths.ledger_db.exists():
        from daemon.commands.report_sessions import refresh_sessions

        refresh_sessions(paths)
    else:
        paths.ensure()
        sessions.ensure_schema(paths.ledger_db)


def _value(text: str) -> str:
    v = text.strip().lower()
    if v not in sessions.VALUES:
        raise BatonError(f"unknown value {text!r}", hint=f"use one of: {VALUE_HELP}")
    return v


def _describe(paths: BatonPaths, sid: str | None) -> str:
    if sid is None:
        return "no session recorded yet: kept unattached"
    with sessions.connect(paths.ledger_db) as conn:
        row = conn.execute("SELECT git_repo, cost_usd FROM sessions WHERE session_id = ?", (sid,)).fetchone()
    repo, cost = (row[0], row[1]) if row else (None, 0.0)
    return f"session {_short(paths, sid)}" + (f" ({repo}, ${cost:.2f})" if repo else "")


def _short(paths: BatonPaths, sid: str) -> str:
    """Return the id as `baton report recent` shows it: its shortest unambiguous prefix (8 or more)."""
    from daemon import session_reports

    with sessions.connect(paths.ledger_db) as conn:
        known = session_reports.load_session_ids(conn)
    return session_reports.short_ids([sid], known)[sid]


def record_value(
    paths: BatonPaths,
    *,
    task: str,
    value: str,
    outcome: str | None = None,
    tokens: int | None = None,
    model: str | None = None,
    session: str | None = None,
) -> str | None:
    """Store one value entry and return the session it attached to (None when there is no session yet).
    Raise BatonError for an unknown value or a session reference that matches none or several."""
    v = _value(value)
    _prepare(paths)
    with sessions.connect(paths.ledger_db) as conn:
        sid = sessions.resolve_session(conn, session)
        conn.execute(
            "INSERT INTO value_logs (session_id, ts_ms, task, outcome, value, tokens, model) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, int(time.time() * 1000), task, outcome, v, tokens, model),
        )
    return sid


@click.group(invoke_without_command=True)
@click.option("--task", help="What the session was for.")
@click.option("--outcome", help="What it produced.")
@click.option("--value", "value_", metavar="VALUE", help=f"One of: {VALUE_HELP}.")
@click.option("--tokens", type=click.IntRange(min=0), help="Tokens, if you counted them yourself.")
@click.option("--model", help="The model, if it matters to you.")
@click.option("--session", metavar="ID", help="Session id or prefix (default: the latest session).")
@click.pass_context
def log(
    ctx: click.Context,
    task: str | None,
    outcome: str | None,
    value_: str | None,
    tokens: int | None,
    model: str | None,
    session: str | None,
) -> None:
    """Log what a session delivered: `baton log --task ... --outcome ... --value high` or `baton log quick`.

    Values: high, medium, low, zero, creation, maintenance, debt, refactor.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not task or not value_:
        raise BatonError(
            "give at least --task and --value", hint='or: baton log quick "fixed CI pipeline" high'
        )
    paths = BatonPaths.from_env()
    sid = record_value(
        paths, task=task, value=value_, outcome=outcome, tokens=tokens, model=model, session=session
    )
    click.echo(f"Logged {value_.lower()}: {task} -> {_describe(paths, sid)}")


@log.command("quick")
@click.argument("task")
@click.argument("value")
@click.option("--tokens", type=click.IntRange(min=0), help="Tokens, if you counted them yourself.")
@click.option("--session", metavar="ID", help="Session id or prefix (default: the latest session).")
def quick(task: str, value: str, tokens: int | None, session: str | None) -> None:
    """One line: `baton log quick "fixed CI pipeline" high [--tokens 8000]`."""
    paths = BatonPaths.from_env()
    sid = record_value(paths, task=task, value=value, tokens=tokens, session=session)
    click.echo(f"Logged {value.lower()}: {task} -> {_describe(paths, sid)}")


def _target(paths: BatonPaths, args: tuple[str, ...], what: str) -> tuple[str, str]:
    if len(args) == 1:
        ref, text = None, args[0]
    elif len(args) == 2:
        ref, text = args[0], args[1]
    else:
        raise BatonError(f"give [SESSION] {what.upper()}")
    if not text.strip():
        raise BatonError(f"the {what} is empty")
    _prepare(paths)
    with sessions.connect(paths.ledger_db) as conn:
        sid = sessions.resolve_session(conn, ref)
    if sid is None:
        raise BatonError(
            "no session recorded yet", hint="start the daemon (`baton run`) or run `baton ingest`"
        )
    return sid, text.strip()


@click.command("note")
@click.argument("args", nargs=-1, required=True, metavar="[SESSION] TEXT")
def note(args: tuple[str, ...]) -> None:
    """Attach a note to a session (default: the latest)."""
    paths = BatonPaths.from_env()
    sid, text = _target(paths, args, "text")
    with sessions.connect(paths.ledger_db) as conn:
        conn.execute(
            "INSERT INTO session_notes (session_id, ts_ms, text) VALUES (?, ?, ?)",
            (sid, int(time.time() * 1000), text),
        )
    click.echo(f"Noted on session {_short(paths, sid)}.")


@click.command("tag")
@click.argument("args", nargs=-1, required=True, metavar="[SESSION] TAG")
def tag(args: tuple[str, ...]) -> None:
    """Tag a session (default: the latest); `baton report compare --tag A --tag B` compares tags."""
    paths = BatonPaths.from_env()
    sid, name = _target(paths, args, "tag")
    with sessions.connect(paths.ledger_db) as conn:
        conn.execute(
            "INSERT INTO session_tags (session_id, tag, ts_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (sid, name, int(time.time() * 1000)),
        )
    click.echo(f"Tagged session {_short(paths, sid)}: {name}")
