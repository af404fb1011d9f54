"""`baton estimate PLAN.md` and `baton phase start|end|finish|status`: estimate a plan, then track it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.control import DaemonNotRunning
from daemon.errors import BatonError
from daemon.estimate import Estimate, QuotaLimit, estimate_plan, fmt_tokens, resolve_limit
from daemon.estimate_model import explain, fit, holdout
from daemon.estimate_view import phase_message, render_text
from daemon.paths import BatonPaths
from daemon.plan_parse import Plan, infer_task_type, parse_plan

if TYPE_CHECKING:
    import sqlite3

    from sqlalchemy import Connection

    from daemon.estimate_progress import PlannedRow, SessionView


def _now_ms() -> int:
    return int(time.time() * 1000)


def display_zone(paths: BatonPaths) -> tzinfo:
    """Return the zone clock times are read and shown in: `general.timezone`, else the system's zone."""
    from daemon.zones import zone_for

    return zone_for(paths)


def parse_at(value: str | None, now_ms: int, zone: tzinfo) -> int:
    """Return epoch ms for --at: "14:05" (today in `zone`) or an ISO 8601 time (in `zone` when it names
    none); `now_ms` when None.

    Raise BatonError when the text is neither, or names a time more than a minute ahead.
    """
    if value is None:
        return now_ms
    try:
        if len(value) <= 5 and ":" in value:
            hh, mm = (int(v) for v in value.split(":"))
            today = datetime.fromtimestamp(now_ms / 1000, zone)
            moment = today.replace(hour=hh, minute=mm, second=0, microsecond=0)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BatonError(f"--at {value!r}: not a time", hint="write 14:05 or 2026-01-06T14:05") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    at_ms = int(moment.timestamp() * 1000)
    if at_ms > now_ms + 60_000:
        raise BatonError(f"--at {value!r} is in the future", hint="phases are marked when they happen")
    return at_ms


def read_plan(path: Path) -> Plan:
    """Return the plan in the file at `path`. Raise BatonError when it cannot be read or holds no phase."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BatonError(f"{path}: no such plan file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BatonError(f"{path}: cannot read the plan ({exc})") from exc
    return parse_plan(text, str(path))


def _plan_limits(paths: BatonPaths) -> tuple[dict[str, int], dict[str, str]]:
    """Return tokens per window by plan name (from daemon.plans), with "auto" the daemon's current figure
    (from its last snapshot), else the fallback plan's; and a note saying which "auto" is."""
    from daemon import snapshot
    from daemon.plans import AUTO_FALLBACK_PLAN, PLAN_TOKENS

    limits = dict(PLAN_TOKENS)
    snap = snapshot.read(paths) or {}
    if isinstance(snap.get("tokens_limit"), int) and snap["tokens_limit"] > 0:
        limits["auto"] = snap["tokens_limit"]
        note = "the daemon's current figure"
    else:
        limits["auto"] = limits[AUTO_FALLBACK_PLAN]
        note = f"{AUTO_FALLBACK_PLAN}'s figure until the daemon has worked out your plan"
    return limits, {"auto": note}


def _limit(plan: Plan, override: int | None, paths: BatonPaths) -> QuotaLimit | None:
    from daemon.config import load_settings

    settings = load_settings(paths)
    limits, notes = _plan_limits(paths)
    return resolve_limit(
        plan,
        override=override,
        settings_tokens=settings.quota.token_limit,
        settings_plan=settings.quota.plan,
        plan_limits=limits,
        plan_notes=notes,
    )


def build_estimate(
    plan: Plan, paths: BatonPaths, override: int | None, *, explained: bool = False
) -> tuple[Estimate, list[str]]:
    """Return the estimate of `plan` by the model fitted on the tracked history, and (when `explained`) the
    model's explanation with its held-out check, which refits the model once per past session."""
    from daemon.estimate_store import read_history

    history = read_history(paths, _now_ms())
    calibration = fit(history)
    est = estimate_plan(plan, calibration, _limit(plan, override, paths))
    return est, explain(calibration, holdout(history)) if explained else []


@contextmanager
def _ledger(paths: BatonPaths) -> Iterator[tuple[Connection, sqlite3.Connection]]:
    """Yield (SQLAlchemy connection, its sqlite3 connection) in one transaction on the migrated ledger."""
    from daemon.db import open_ledger

    paths.ensure()
    engine = open_ledger(paths.ledger_db)
    try:
        with engine.begin() as conn:
            # Take the write lock first: two `baton phase` commands at once then run one after the other
            # instead of both reading "no session open" and each opening one.
            conn.exec_driver_sql("UPDATE tracked_sessions SET id = id WHERE 0 = 1")
            raw = conn.connection.dbapi_connection
            assert raw is not None
            yield conn, raw  # type: ignore[misc]
    finally:
        engine.dispose()


@click.command()
@click.argument("plan_file", metavar="PLAN.md", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--save", is_flag=True, help="Store the estimate for the session that follows (baton phase start)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
@click.option("--explain", is_flag=True, help="Show where each figure of the model came from.")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Check against this many tokens instead of the quota."
)
def estimate(plan_file: Path, save: bool, as_json: bool, explain: bool, limit: int | None) -> None:
    """Estimate the tokens a planned session will use and whether it fits the quota."""
    paths = BatonPaths.from_env()
    plan = read_plan(plan_file)
    est, model_lines = build_estimate(plan, paths, limit, explained=explain)
    saved_id = None
    if save:
        from daemon.estimate_store import save_estimate

        with _ledger(paths) as (conn, _raw):
            saved_id = save_estimate(conn, est, str(plan_file.resolve()), plan.kind, _now_ms())
    if as_json:
        data: dict[str, Any] = est.to_dict()
        data["saved_id"] = saved_id
        if explain:
            data["model"] = model_lines
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render_text(est))
    if explain:
        click.echo("")
        click.echo("\n".join(model_lines))
    if saved_id is not None:
        click.echo(f"\nSaved as estimate {saved_id}; `baton phase start` begins tracking it.")


@click.group()
def phase() -> None:
    """Mark the start and end of a planned phase; tokens per phase come from the ledger."""


def _match(planned: tuple[PlannedRow, ...], name: str, tracked: set[int] | None = None) -> PlannedRow | None:
    """Return the planned phase `name` refers to: its number, its name (the first not `tracked` yet when two
    share it), or a unique part of its name; None when nothing matches."""
    key = name.strip().lower().removeprefix("phase").strip(" :#")
    if key.isdigit():
        return next((p for p in planned if p.number == int(key)), None)
    exact = sorted((p for p in planned if p.name.lower() == key), key=lambda p: p.id in (tracked or set()))
    if exact:
        return exact[0]
    partial = [p for p in planned if key and key in p.name.lower()]
    return partial[0] if len(partial) == 1 else None


def _catch_up(paths: BatonPaths) -> None:
    """Bring the ledger up to date: a running daemon has read every line already; else read them here.

    Raise BatonError when the daemon is there but does not answer (`--no-ingest` then ends the phase).
    """
    from daemon.config import load_settings
    from daemon.control import request
    from daemon.ingest import catch_up

    try:
        request(paths, {"op": "ping"}, timeout=2.0)
        return
    except DaemonNotRunning:
        pass
    except BatonError as exc:
        raise BatonError(
            f"cannot ask the daemon whether it has read the latest usage: {exc.message}",
            hint="`baton phase end --no-ingest` ends the phase with what the ledger holds now",
        ) from exc
    try:
        catch_up(paths, load_settings(paths))
    except BatonError as exc:
        click.echo(f"warning: could not read new transcript lines first: {exc.message}", err=True)


def _catch_up_if_running(paths: BatonPaths, at_ms: int) -> None:
    """Bring the ledger up to date when a phase is running: the command is about to end it."""
    from daemon.db import connect_fast
    from daemon.estimate_store import active_session

    if not paths.ledger_db.exists():
        return
    with connect_fast(paths.ledger_db, readonly=True) as conn:
        view = active_session(conn, at_ms)
    if view is not None and view.open_phase is not None:
        _catch_up(paths)


def _notify(paths: BatonPaths, title: str, body: str) -> bool:
    from daemon.config import load_settings
    from daemon.notify import send

    try:
        return send(load_settings(paths), title, body, "info")
    except Exception as exc:  # a notification must never lose the phase that was just recorded
        click.echo(f"warning: notification failed: {exc}", err=True)
        return False


def _close_phase(
    conn: Connection, raw: sqlite3.Connection, view: SessionView, note: str | None, at_ms: int
) -> tuple[str, str]:
    """End the open phase of `view` at `at_ms`; return the notification's (title, body)."""
    from daemon.estimate_store import end_phase, end_session, load_session, usage_between

    current = view.open_phase
    assert current is not None
    if at_ms <= current.started_ms:
        raise BatonError(f"phase {current.name!r} started after that time; nothing to end")
    usage = usage_between(raw, current.started_ms, at_ms, view.project_dir)
    end_phase(conn, current.id, usage.tokens, note, at_ms)
    after = load_session(raw, view.id, at_ms)
    assert after is not None
    if after.planned and after.next_planned() is None and after.open_phase is None:
        end_session(conn, view.id, at_ms)
    return phase_message(after, current.id)


def _open_session(
    conn: Connection,
    raw: sqlite3.Connection,
    paths: BatonPaths,
    handoff: Path | None,
    name: str | None,
    project: str | None,
    at_ms: int,
) -> SessionView:
    """Return the open tracked session, or a new one on the handoff, the latest untracked estimate or none."""
    from daemon.estimate_store import (
        active_session,
        latest_estimate,
        load_session,
        save_estimate,
        start_session,
    )

    view = active_session(raw, at_ms)
    if view is not None and handoff is None:
        return view
    estimate_id: int | None = None
    title = name or "ad-hoc session"
    if handoff is not None:
        plan = read_plan(handoff)
        est, _ = build_estimate(plan, paths, None)
        estimate_id = save_estimate(conn, est, str(handoff.resolve()), plan.kind, at_ms)
        title = est.title
    elif (latest := latest_estimate(raw)) is not None:
        used = raw.execute("SELECT 1 FROM tracked_sessions WHERE estimate_id = ?", (latest[0],)).fetchone()
        if not used:
            estimate_id, title = latest[0], str(latest[1]["title"])
    if view is not None:  # a handoff replaces the session that was open
        from daemon.estimate_store import end_session

        end_session(conn, view.id, at_ms)
    sid = start_session(conn, estimate_id, title, project, at_ms)
    new = load_session(raw, sid, at_ms)
    assert new is not None
    return new


def _check_order(view: SessionView, at_ms: int, zone: tzinfo) -> None:
    """Raise BatonError when a phase would start before the last one ended (its tokens would count twice)."""
    last_end = max((p.ended_ms or 0 for p in view.phases), default=0)
    if at_ms < last_end:
        ended = datetime.fromtimestamp(last_end / 1000, zone).strftime("%H:%M:%S %Z")
        raise BatonError(
            f"the previous phase ended at {ended}; a phase cannot start before that",
            hint="phases do not overlap, so that no token is counted twice",
        )


@phase.command("start")
@click.argument("name", required=False)
@click.option(
    "--handoff",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Track the objectives of this handoff as the session's phases.",
)
@click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    help="Count usage in this directory (and below). Default: the current directory.",
)
@click.option("--all-projects", is_flag=True, help="Count usage in every project.")
@click.option("--at", "at", metavar="TIME", help="When the phase started (14:05 or ISO 8601). Default: now.")
@click.option("--no-ingest", is_flag=True, help="Do not read new transcript lines before ending a phase.")
def start(
    name: str | None,
    handoff: Path | None,
    project: Path | None,
    all_projects: bool,
    at: str | None,
    no_ingest: bool,
) -> None:
    """Start a phase: NAME (or number) of a planned phase, the next planned one, or a new ad-hoc phase."""
    from daemon.estimate_store import active_session, move_session_start, start_phase

    paths = BatonPaths.from_env()
    zone = display_zone(paths)
    at_ms = parse_at(at, _now_ms(), zone)
    if not no_ingest:
        _catch_up_if_running(paths, at_ms)
    where = None if all_projects else str((project or Path(os.getcwd())).resolve())
    messages: list[tuple[str, str]] = []
    with _ledger(paths) as (conn, raw):
        running = active_session(raw, at_ms)
        if running is not None and running.open_phase is not None:  # starting a phase ends the running one
            messages.append(_close_phase(conn, raw, running, None, at_ms))
        view = _open_session(conn, raw, paths, handoff, name, where, at_ms)
        _check_order(view, at_ms, zone)
        planned = _match(view.planned, name, view.tracked_ids) if name else view.next_planned()
        if name is None and planned is None:
            raise BatonError("every planned phase has been tracked", hint="give the new phase a NAME")
        if planned is not None and planned.id in view.tracked_ids:
            raise BatonError(
                f"phase {planned.number} ({planned.name}) was already tracked; its estimate is spent",
                hint=f'name the continuation: `baton phase start "{planned.name}, continued"`',
            )
        task = planned.task_type if planned else infer_task_type(name or "", "")[0]
        start_phase(conn, view.id, planned, name or "", task, at_ms)
        if at_ms < view.started_ms:
            move_session_start(conn, view.id, at_ms)
    for title, body in messages:
        click.echo(f"{title}\n{body}\n")
        _notify(paths, title, body)
    if planned is not None:
        click.echo(
            f"Started phase {planned.number}/{len(view.planned)}: {planned.name} ({planned.task_type}, "
            f"estimated {fmt_tokens(planned.mid)} tokens) in {view.title}"
        )
    else:
        click.echo(f"Started phase {name} ({task}; not in the plan, so no estimate) in {view.title}")
    click.echo(f"Counting usage in {view.project_dir or 'every project'}.")


@phase.command("end")
@click.option("--note", help="What made this phase differ from its estimate (shown in the report).")
@click.option("--at", "at", metavar="TIME", help="When the phase ended (14:05 or ISO 8601). Default: now.")
@click.option("--no-ingest", is_flag=True, help="Do not read new transcript lines first.")
def end(note: str | None, at: str | None, no_ingest: bool) -> None:
    """End the running phase: tokens used against its estimate, the variance and the new projection."""
    from daemon.estimate_store import active_session

    paths = BatonPaths.from_env()
    zone = display_zone(paths)
    at_ms = parse_at(at, _now_ms(), zone)
    if not no_ingest:
        _catch_up(paths)
    with _ledger(paths) as (conn, raw):
        view = active_session(raw, at_ms)
        if view is None or view.open_phase is None:
            raise BatonError("no phase is running", hint="start one with `baton phase start [NAME]`")
        title, body = _close_phase(conn, raw, view, note, at_ms)
    click.echo(f"{title}\n{body}")
    _notify(paths, title, body)


@phase.command("finish")
@click.option("--at", "at", metavar="TIME", help="When the session ended (14:05 or ISO 8601). Default: now.")
@click.option("--no-ingest", is_flag=True, help="Do not read new transcript lines before ending a phase.")
def finish(at: str | None, no_ingest: bool) -> None:
    """End the tracked session (and its running phase) even if planned phases remain."""
    from daemon.estimate_store import active_session, end_session

    paths = BatonPaths.from_env()
    zone = display_zone(paths)
    at_ms = parse_at(at, _now_ms(), zone)
    if not no_ingest:
        _catch_up_if_running(paths, at_ms)
    with _ledger(paths) as (conn, raw):
        view = active_session(raw, at_ms)
        if view is None:
            raise BatonError("no tracked session is open")
        message = _close_phase(conn, raw, view, None, at_ms) if view.open_phase else None
        end_session(conn, view.id, at_ms)
    if message:
        click.echo(f"{message[0]}\n{message[1]}\n")
        _notify(paths, *message)
    click.echo(
        f"Finished tracking {view.title} (session {view.id}); `baton report estimate {view.id}` shows it."
    )


@phase.command("status")
@click.option("--no-ingest", is_flag=True, help="Do not read new transcript lines first.")
def status(no_ingest: bool) -> None:
    """Show the tracked session: the running phase, used against estimated, the projection."""
    from daemon.estimate_store import status_lines

    paths = BatonPaths.from_env()
    if not no_ingest:
        _catch_up_if_running(paths, _now_ms())
    lines = status_lines(paths)
    click.echo("\n".join(lines) if lines else "No estimate saved and no session tracked.")
