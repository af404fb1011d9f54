"""What the estimates area shows people (pure: records and figures in, text out).

`render_text`: the estimate `baton estimate` prints; `session_lines`: where a tracked session stands, for
`baton status` and `baton phase status`; `phase_message`: the text of the phase-end notification;
`render_report`: the Markdown of `baton report estimate`. Clock times are shown in the zone passed in
(`general.timezone`, else the system's).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from daemon.estimate import Estimate, PhaseEstimate, fmt_hours, fmt_tokens, rating, variance_pct
from daemon.estimate_model import Holdout
from daemon.estimate_progress import SessionView, progress

DEVIATION_PCT = 10.0  # phases further off than this are listed as deviations in the report


# ---- baton estimate ----------------------------------------------------------------------------------------


def _yes(flag: bool | None) -> str:
    return "unknown" if flag is None else ("yes" if flag else "NO")


def _span(low: float, high: float) -> str:
    """Return planned hours as "1-1.5h", "2h" or, under an hour, "30-45 min"."""
    if high < 1:
        lo, hi = round(low * 60), round(high * 60)
        return f"{lo} min" if lo == hi else f"{lo}-{hi} min"
    return f"{low:g}h" if low == high else f"{low:g}-{high:g}h"


_TYPE_SOURCE = {"given": "given", "inferred": "inferred from its words", "default": "no clue: default"}


def _phase_lines(p: PhaseEstimate) -> list[str]:
    """Return a phase's lines: its range and confidence, then how its figures were made."""
    span = _span(p.hours_low, p.hours_high) + (" assumed: no duration given" if p.hours_assumed else "")
    head = f"Phase {p.number}: {p.name} ({span}, {p.task_type}, "
    lines = [
        head + f"{_TYPE_SOURCE.get(p.type_source, p.type_source)})",
        f"  {fmt_tokens(p.low)} - {fmt_tokens(p.high)} tokens, mid {fmt_tokens(p.mid)}; "
        f"confidence {p.confidence} ({p.confidence_reason})",
    ]
    spread = f"{p.spread:.0%}"
    if p.given:
        lines.append(f"  mid = the plan's own figure; range ±{spread}")
    else:
        hours = (p.hours_low + p.hours_high) / 2
        pace = f" x pace {p.pace:.2f}" if round(p.pace, 2) != 1 else ""
        formula = f"{fmt_tokens(p.base)} + {fmt_tokens(p.rate)}/h x {hours:g}h{pace}"
        if p.multiplier != 1:
            formula = f"({formula}) x {p.multiplier:g}"
        if p.library_tokens:
            formula += f" + {fmt_tokens(p.library_tokens)}"
        if p.hours_low == p.hours_high:
            spread_text = f"range ±{spread}"
        else:
            low_h, high_h = _span(p.hours_low, p.hours_low), _span(p.hours_high, p.hours_high)
            spread_text = f"range: the {low_h} figure -{spread} to the {high_h} figure +{spread}"
        lines.append(f"  mid = {formula}; {spread_text}")
    details = [*p.factors]
    if p.libraries:
        details.append(f"new libraries {', '.join(p.libraries)} +{fmt_tokens(p.library_tokens)}")
    if p.stated is not None:
        low, high = p.stated
        figure = fmt_tokens(low) if low == high else f"{fmt_tokens(low)} - {fmt_tokens(high)}"
        details.append(f"the plan's own figure: {figure}")
    if details:
        lines.append(f"  {'; '.join(details)}")
    return lines


def render_text(est: Estimate) -> str:
    """Return the estimate as the text `baton estimate` prints."""
    out = [f"Estimate for {est.title}  ({est.source})", ""]
    for p in est.phases:
        out += _phase_lines(p)
    out += [
        "",
        f"Total: {fmt_tokens(est.conservative)} - {fmt_tokens(est.aggressive)} tokens",
        f"  mid {fmt_tokens(est.mid)}: the phases' mids added up",
        f"  conservative {fmt_tokens(est.conservative)}: every phase at its low end; "
        f"aggressive {fmt_tokens(est.aggressive)}: every phase at its high end",
        f"Recommended buffer: +{est.buffer:.0%} = {fmt_tokens(est.buffered)} tokens ({est.buffer_reason})",
    ]
    if est.limit is None:
        out.append(
            "Quota: no token limit known (set quota.token_limit, or write `**Quota**: 200,000 tokens` "
            "in the plan, or pass --limit)"
        )
    else:
        out.append(f"Quota: {fmt_tokens(est.limit.tokens)} tokens (from {est.limit.source})")
        out.append(
            f"  fits at mid ({fmt_tokens(est.mid)})? {_yes(est.fits)}; "
            f"with the buffer ({fmt_tokens(est.buffered)})? {_yes(est.fits_with_buffer)}; "
            f"at the aggressive end ({fmt_tokens(est.aggressive)})? {_yes(est.fits_aggressive)}"
        )
    if est.phases_that_fit is not None:
        n = est.phases_that_fit
        head = sum(p.mid for p in est.phases[:n])
        out.append(
            f"  to fit with the buffer, plan {'phase 1' if n == 1 else f'phases 1-{n}'} for this window "
            f"({fmt_tokens(head)} tokens, "
            f"{fmt_tokens(head * (1 + est.buffer))} with the buffer) and hand off the rest"
            if n
            else "  even the first phase does not fit with the buffer: split it into smaller phases"
        )
    out.append(
        f"Burn rate: about {fmt_tokens(est.burn_per_minute)} tokens/min (mid over "
        f"{fmt_hours(est.hours_mid)}); duration "
        f"{fmt_hours(est.hours_low)} - {fmt_hours(est.hours_high)}"
    )
    out.append(f"Confidence: {est.confidence.upper()} ({est.confidence_reason})")
    for w in est.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out)


# ---- baton status / baton phase status ---------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _pct_plain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def session_lines(view: SessionView, now_ms: int) -> list[str]:
    """Return the lines that show a tracked session: the current phase, used vs estimated, the projection."""
    prog = progress(view)
    lines = [f"Plan: {view.title}"]
    current = view.open_phase
    total = len(view.planned) or len(view.phases)
    if current is not None:
        number = f"{current.number}/{total} " if current.number is not None else ""
        est = f" of {fmt_tokens(current.estimated)} estimated" if current.estimated else ""
        share = f" ({current.usage.tokens / current.estimated:.0%})" if current.estimated else ""
        minutes = (now_ms - current.started_ms) // 60_000
        lines.append(
            f"  phase {number}{current.name} ({current.task_type}): {fmt_tokens(current.usage.tokens)}{est}"
            f"{share}, {minutes} min in"
        )
    elif view.ended_ms is None:
        lines.append("  no phase running: `baton phase start` marks the next one")
    if prog.done_estimated:
        lines.append(
            f"  phases done: {fmt_tokens(prog.done_actual)} used vs "
            f"{fmt_tokens(prog.done_estimated)} estimated "
            f"({_pct(prog.done_variance_pct)})"
        )
    if prog.original is not None and prog.projected is not None:
        limit = view.limit_tokens
        fits = ""
        if limit is not None:
            fits = f"; {'within' if prog.projected <= limit else 'OVER'} the {fmt_tokens(limit)} limit"
        lines.append(
            f"  session: {fmt_tokens(prog.used)} used; projection {fmt_tokens(prog.projected)} vs estimate "
            f"{fmt_tokens(prog.original)} ({_pct(prog.projected_variance_pct)}){fits}"
        )
    return lines


def saved_estimate_line(est: dict[str, Any]) -> str:
    """Return the line that shows a saved estimate no session tracks yet."""
    return (
        f"Plan: {est['title']} estimated {fmt_tokens(est['mid'])} tokens "
        f"({fmt_tokens(est['buffered'])} with the buffer); `baton phase start` tracks it"
    )


def phase_message(view: SessionView, phase_id: int) -> tuple[str, str]:
    """Return (title, body) saying how phase `phase_id` of `view` went against its estimate, and the new
    projection for the session."""
    done = next(p for p in view.phases if p.id == phase_id)
    label = f"Phase {done.number}" if done.number is not None else "Phase"
    minutes = ((done.ended_ms or done.started_ms) - done.started_ms) // 60_000
    lines = []
    if done.estimated:
        var = done.usage.tokens - done.estimated
        lines.append(
            f"Estimated {fmt_tokens(done.estimated)}, actual {fmt_tokens(done.usage.tokens)} tokens: "
            f"{var:+,} ({_pct(variance_pct(done.estimated, done.usage.tokens))}) in {minutes} min."
        )
    else:
        lines.append(f"{fmt_tokens(done.usage.tokens)} tokens in {minutes} min (no estimate for this phase).")
    if done.note:
        lines.append(f"Note: {done.note}")
    prog = progress(view)
    if prog.original is not None and prog.projected is not None:
        lines.append(
            f"Projection for the session: {fmt_tokens(prog.projected)} "
            f"(estimate {fmt_tokens(prog.original)}, {_pct(prog.projected_variance_pct)})."
        )
        limit = view.limit_tokens
        if limit is not None:
            within = prog.projected <= limit
            lines.append(f"{'Still within' if within else 'Over'} the quota ({fmt_tokens(limit)}).")
    return f"{label} done: {done.name}", "\n".join(lines)


# ---- baton report estimate ---------------------------------------------------------------------------------


def _k(tokens: float) -> str:
    """Return tokens in thousands to one decimal, halves rounded up (36,450: 36.5k; 16,450: 16.5k)."""
    tenths = (round(abs(tokens)) + 50) // 100
    return f"{'-' if tokens < 0 else ''}{tenths // 10}.{tenths % 10}k"


def _signed_k(tokens: float) -> str:
    return ("+" if tokens >= 0 else "") + _k(tokens)


def _when(ms: int | None, zone: tzinfo) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M %Z")


def _phase_table(view: SessionView, now_ms: int) -> list[str]:
    rows = [
        "| Phase | Type | Est. | Actual | Var. | % | Time | Accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in view.phases:
        label = f"{p.number}. {p.name}" if p.number is not None else p.name
        time = fmt_hours(((p.ended_ms or now_ms) - p.started_ms) / 3_600_000)
        state = "" if p.ended_ms is not None else " (running)"
        if p.estimated:
            var = variance_pct(p.estimated, p.usage.tokens)
            rows.append(
                f"| {label}{state} | {p.task_type} | {_k(p.estimated)} | {_k(p.usage.tokens)} | "
                f"{_signed_k(p.usage.tokens - p.estimated)} | {_pct(var)} | {time} | "
                f"{rating(var) if p.ended_ms is not None else '-'} |"
            )
        else:
            rows.append(
                f"| {label}{state} | {p.task_type} | - | {_k(p.usage.tokens)} | - | - | {time} "
                "| not planned |"
            )
    for planned in view.planned:
        if planned.id not in view.tracked_ids:
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


def _history(sessions: list[SessionView], current_id: int, check: Holdout, zone: tzinfo) -> list[str]:
    rows = ["| Session | Date | Title | Est. | Actual | Var. | Accuracy |", "|---|---|---|---|---|---|---|"]
    for s in sessions:
        prog = progress(s)
        if not prog.done_estimated:
            continue
        var = prog.done_variance_pct
        accuracy = "n/a" if var is None else f"{max(0.0, 100 - abs(var)):.1f}%"
        mark = "**" if s.id == current_id else ""
        rows.append(
            f"| {mark}{s.id}{mark} | {_when(s.started_ms, zone)[:10]} | {s.title} | "
            f"{_k(prog.done_estimated)} | {_k(prog.done_actual)} | {_pct(var)} | {accuracy} |"
        )
    if check.mape is not None:
        rows.append("")
        rows.append(
            "Held-out check (each session estimated again by the model fitted on the sessions before it; "
            f"MAPE: the mean of |actual - estimate| / actual): MAPE {check.mape:.1f}% over "
            f"{len(check.points)} session{'s' if len(check.points) != 1 else ''}; "
            f"first half {_pct_plain(check.mape_first_half)}, "
            f"second half {_pct_plain(check.mape_second_half)}."
        )
    return rows


def render_report(
    view: SessionView, sessions: list[SessionView], check: Holdout, now_ms: int, zone: tzinfo
) -> str:
    """Return the Markdown report of tracked session `view`, with the history of `sessions`; clock times in
    `zone`."""
    prog = progress(view)
    est = view.estimate or {}
    worked_h = ((view.ended_ms or now_ms) - view.started_ms) / 3_600_000
    out = [f"# Estimate report: {view.title}", ""]
    out.append(
        f"- **Session**: {view.id} ({'finished' if view.ended_ms else 'in progress'}), "
        f"{_when(view.started_ms, zone)} to {_when(view.ended_ms, zone)}"
    )
    planned_h = f" (estimated {fmt_hours(est['hours_low'])} - {fmt_hours(est['hours_high'])})" if est else ""
    out.append(f"- **Duration**: {fmt_hours(worked_h)}{planned_h}")
    if prog.original is not None and view.ended_ms is None:
        share = prog.used / prog.original if prog.original else 0.0
        out.append(
            f"- **Tokens used so far**: {fmt_tokens(prog.used)}, {share:.0%} of the "
            f"{fmt_tokens(prog.original)} estimated (the session is still running)"
        )
        if prog.projected is not None:
            out.append(
                f"- **Projected**: {fmt_tokens(prog.projected)} at the session's end "
                f"({_pct(prog.projected_variance_pct)} against the estimate)"
            )
    elif prog.original is not None:
        out.append(
            f"- **Tokens used**: {fmt_tokens(prog.used)} (estimated {fmt_tokens(prog.original)}, "
            f"{_pct(variance_pct(prog.original, prog.used))})"
        )
    if prog.original is not None:
        out.append(
            f"- **Finished phases**: {fmt_tokens(prog.done_actual)} against {fmt_tokens(prog.done_estimated)}"
            f" estimated, {_pct(prog.done_variance_pct)}: {rating(prog.done_variance_pct)}"
        )
    else:
        out.append(f"- **Tokens used**: {fmt_tokens(prog.used)} (no estimate was saved for this session)")
    if view.project_dir:
        out.append(f"- **Counted in**: {view.project_dir}")
    out += ["", "## Phases", "", *_phase_table(view, now_ms), "", "## Deviations", "", *_deviations(view)]
    out += ["", "## Accuracy across sessions", "", *_history(sessions, view.id, check, zone), ""]
    return "\n".join(out)
