"""`baton report estimate [SESSION]`: a tracked session against its estimate, in Markdown."""

from __future__ import annotations

import time
from datetime import datetime

import click

from daemon.errors import BatonError
from daemon.estimate import fmt_hours, fmt_tokens, rating, variance_pct
from daemon.estimate_model import Holdout, holdout
from daemon.estimate_store import SessionView, progress
from daemon.paths import BatonPaths

DEVIATION_PCT = 10.0  # phases further off than this are listed as deviations


def _k(tokens: float) -> str:
    return f"{tokens / 1000:.1f}k"


def _signed_k(tokens: float) -> str:
    return f"{'+' if tokens >= 0 else '-'}{abs(tokens) / 1000:.1f}k"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _phase_table(view: SessionView, now_ms: int) -> list[str]:
    rows = [
        "| Phase | Type | Est. | Actual | Var. | % | Time | Accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in view.phases:
        label = f"{p.number}. {p.name}" if p.number is not None else p.name
        minutes = ((p.ended_ms or now_ms) - p.started_ms) / 60_000
        state = "" if p.ended_ms is not None else " (running)"
        if p.estimated:
            var = variance_pct(p.estimated, p.usage.tokens)
            rows.append(
                f"| {label}{state} | {p.task_type} | {_k(p.estimated)} | {_k(p.usage.tokens)} | "
                f"{_signed_k(p.usage.tokens - p.estimated)} | {_pct(var)} | {fmt_hours(minutes / 60)} | "
                f"{rating(var) if p.ended_ms is not None else '-'} |"
            )
        else:
            rows.append(
                f"| {label}{state} | {p.task_type} | - | {_k(p.usage.tokens)} | - | - | "
                f"{fmt_hours(minutes / 60)} "
                "| not planned |"
            )
    tracked = view.tracked_ids
    for planned in view.planned:
        if planned.id not in tracked:
            rows.append(
                f"| {planned.number}. {planned.name} | {planned.task_type} | {_k(planned.mid)} | - | - | - "
                "| - | not worked |"
            )
    return rows


def _deviations(view: SessionView) -> list[str]:
    out = []
    for p in view.phases:
        var = variance_pct(p.estimated, p.usage.tokens) if p.estimated else None
        if p.ended_ms is None or ((var is None or abs(var) < DEVIATION_PCT) and not p.note):
            continue
        impact = (
            f"{p.usage.tokens - (p.estimated or 0):+,} tokens ({_pct(var)})"
            if var is not None
            else "not planned"
        )
        out.append(f"- **{p.name}**: {impact}" + (f". Note: {p.note}" if p.note else ""))
    return out or [f"- None: every finished phase was within {DEVIATION_PCT:.0f}% of its estimate."]


def _history(sessions: list[SessionView], current_id: int, check: Holdout, now_ms: int) -> list[str]:
    rows = ["| Session | Date | Title | Est. | Actual | Var. | Accuracy |", "|---|---|---|---|---|---|---|"]
    for s in sessions:
        prog = progress(s)
        if not prog.done_estimated:
            continue
        var = prog.done_variance_pct
        accuracy = "n/a" if var is None else f"{max(0.0, 100 - abs(var)):.0f}%"
        mark = "**" if s.id == current_id else ""
        rows.append(
            f"| {mark}{s.id}{mark} | {_when(s.started_ms)[:10]} | {s.title} | {_k(prog.done_estimated)} | "
            f"{_k(prog.done_actual)} | {_pct(var)} | {accuracy} |"
        )
    if check.mape is not None:
        rows.append("")
        rows.append(
            f"Held-out check (each session estimated by the model fitted on the sessions before it): MAPE "
            f"{check.mape:.1f}% over {len(check.points)} session{'s' if len(check.points) != 1 else ''}; "
            f"first half {_pct_plain(check.mape_first_half)}, "
            f"second half {_pct_plain(check.mape_second_half)}."
        )
    return rows


def _pct_plain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def render_report(view: SessionView, sessions: list[SessionView], check: Holdout, now_ms: int) -> str:
    """Return the Markdown report of tracked session `view`, with the history of `sessions`."""
    prog = progress(view)
    est = view.estimate or {}
    end_ms = view.ended_ms or now_ms
    worked_h = (end_ms - view.started_ms) / 3_600_000
    out = [f"# Estimate report: {view.title}", ""]
    out.append(
        f"- **Session**: {view.id} ({'finished' if view.ended_ms else 'in progress'}), "
        f"{_when(view.started_ms)} to {_when(view.ended_ms)}"
    )
    planned_h = f" (estimated {fmt_hours(est['hours_low'])} - {fmt_hours(est['hours_high'])})" if est else ""
    out.append(f"- **Duration**: {fmt_hours(worked_h)}{planned_h}")
    if prog.original is not None:
        out.append(
            f"- **Tokens used**: {fmt_tokens(prog.used)} (estimated {fmt_tokens(prog.original)}, "
            f"{_pct(variance_pct(prog.original, prog.used))})"
        )
        out.append(
            f"- **Finished phases**: {fmt_tokens(prog.done_actual)} against {fmt_tokens(prog.done_estimated)}"
            f" estimated, {_pct(prog.done_variance_pct)}: {rating(prog.done_variance_pct)}"
        )
    else:
        out.append(f"- **Tokens used**: {fmt_tokens(prog.used)} (no estimate was saved for this session)")
    if view.project_dir:
        out.append(f"- **Counted in**: {view.project_dir}")
    out += ["", "## Phases", "", *_phase_table(view, now_ms), "", "## Deviations", "", *_deviations(view)]
    out += ["", "## Accuracy across sessions", "", *_history(sessions, view.id, check, now_ms), ""]
    return "\n".join(out)


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
    click.echo(render_report(view, sessions, check, now_ms))
