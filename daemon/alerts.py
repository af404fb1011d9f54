"""Which alerts are due, and what they say. Pure: the fired records and `now` are passed in.

A *meter* is one thing with thresholds: the 5-hour window, the week, or a cost budget (day, week, month).
Each threshold fires once per window. Windows are told apart by their time span, not by the source that
reported them: an estimated window and an official one that overlap are the same window, so a later
official figure never repeats an alert the estimate already gave (and the other way round). An alert also
belongs to the window that was running when it fired: the estimate's block starts at a whole hour, so it can
overlap the official window it really is by only seconds (a block begun at 10:00 while the official window
ends at 10:00:14).

When several thresholds are crossed at once (the daemon was down, or one big response), only the highest is
sent; the lower ones are recorded as superseded so they never fire later in that window. When a window that
had alerts ends, one "quota is back" notice is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo

from daemon.quota import QuotaSnapshot, format_local, to_datetime, to_ms

RESET = 0  # the threshold value that records a "quota is back" notice
OVERLAP_TOLERANCE_MS = 60_000  # sources disagree on a reset by a few hundred ms; never by a minute
HANDOFF_HINT = "baton handoff new, or /plan-next-session in Claude Code"

WINDOW_NAMES = {
    "five_hour": "the 5-hour window",
    "seven_day": "the weekly quota",
    "budget_daily": "the daily budget",
    "budget_weekly": "the weekly budget",
    "budget_monthly": "the monthly budget",
}


@dataclass(frozen=True)
class Meter:
    """One thing that thresholds apply to, as it stands now."""

    kind: str  # a key of WINDOW_NAMES
    window_start_ms: int
    window_end_ms: int
    percent: float
    source: str  # 'official' | 'estimate' | 'ledger'
    thresholds: tuple[int, ...]
    tokens_remaining: int | None = None
    runway_minutes: float | None = None
    spent_usd: float | None = None
    budget_usd: float | None = None
    previous_reset_ms: int | None = None  # an official reset already past: windows before it have ended
    rolling: bool = False  # the weekly estimate: no reset, `window_end_ms` is when its oldest usage leaves
    guessed_limit: int | None = None  # an estimate against a guessed token limit (the plan is unknown)


@dataclass(frozen=True)
class Fired:
    """An alert already recorded: `delivered` is None while its sending is pending (crash-safe resend)."""

    kind: str
    threshold: int
    window_start_ms: int
    window_end_ms: int
    delivered: bool | None = True
    fired_ms: int | None = None  # when it was recorded; None in records that do not say


@dataclass(frozen=True)
class Alert:
    """An alert that is due: `send` is False for a superseded threshold (recorded, not shown)."""

    kind: str
    threshold: int
    window_start_ms: int
    window_end_ms: int
    source: str
    send: bool
    title: str
    body: str


def same_window(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Return True if two windows overlap by more than the tolerance (then they are the same window)."""
    return a_start < b_end - OVERLAP_TOLERANCE_MS and b_start < a_end - OVERLAP_TOLERANCE_MS


def fired_during(f: Fired, start_ms: int, end_ms: int) -> bool:
    """Return True if `f` fired while its own window was open, inside the window `start_ms`..`end_ms`.

    The start keeps the overlap tolerance, so an alert given in the last instant of one official window is
    not taken for the next one's when the two disagree on the reset by a few hundred ms.
    """
    if f.fired_ms is None or f.fired_ms >= f.window_end_ms:
        return False
    return start_ms + OVERLAP_TOLERANCE_MS <= f.fired_ms < end_ms


def _fired_in(meter: Meter, fired: Sequence[Fired]) -> set[int]:
    return {
        f.threshold
        for f in fired
        if f.kind == meter.kind
        and f.threshold != RESET
        and (
            same_window(f.window_start_ms, f.window_end_ms, meter.window_start_ms, meter.window_end_ms)
            or fired_during(f, meter.window_start_ms, meter.window_end_ms)
        )
    }


def threshold_alerts(meter: Meter, fired: Sequence[Fired], tz: tzinfo | None, now_ms: int) -> list[Alert]:
    """Return the alerts `meter` makes due: the highest new threshold sent, lower ones superseded."""
    done = _fired_in(meter, fired)
    crossed = sorted(t for t in meter.thresholds if meter.percent >= t and t not in done)
    out = []
    for t in crossed:
        send = t == crossed[-1]
        title, body = compose(meter, t, tz, now_ms) if send else ("", "")
        out.append(
            Alert(meter.kind, t, meter.window_start_ms, meter.window_end_ms, meter.source, send, title, body)
        )
    return out


def reset_alerts(
    kind: str, fired: Sequence[Fired], current: Meter | None, tz: tzinfo | None, now_ms: int
) -> list[Alert]:
    """Return the "quota is back" notice due for `kind`: one for the latest ended window that had alerts."""
    ended: dict[int, Fired] = {}
    noticed = {f.window_start_ms for f in fired if f.kind == kind and f.threshold == RESET}
    for f in fired:
        if f.kind == kind and f.threshold != RESET and f.window_end_ms <= now_ms:
            if current is not None and same_window(
                f.window_start_ms, f.window_end_ms, current.window_start_ms, current.window_end_ms
            ):
                continue  # sources disagree on the end; the window is still open
            ended.setdefault(f.window_start_ms, f)
    pending = [f for start, f in sorted(ended.items()) if start not in noticed]
    out = []
    for i, f in enumerate(pending):
        send = i == len(pending) - 1
        name = WINDOW_NAMES.get(kind, kind)
        reset_text = format_local(to_datetime(f.window_end_ms), tz, now=to_datetime(now_ms))
        title = f"Quota is back: {name} reset"
        body = f"{name.capitalize()} reset at {reset_text}. The next message starts a fresh window."
        out.append(Alert(kind, RESET, f.window_start_ms, f.window_end_ms, "reset", send, title, body))
    return out


def ended_by_reset(meters: Sequence[Meter], fired: Sequence[Fired]) -> list[Fired]:
    """Return `fired` with every window that began before a meter's past official reset ending at that reset.

    An alert recorded against the estimate's window (ccusage's block, which may reach past the official
    reset) belongs to the window the reset ended: it must neither hold back the new window's alerts nor
    keep its own "quota is back" notice from coming.
    """
    resets = {m.kind: m.previous_reset_ms for m in meters if m.previous_reset_ms is not None}
    out = []
    for f in fired:
        r = resets.get(f.kind)
        if r is not None and f.window_start_ms < r < f.window_end_ms:
            f = replace(f, window_end_ms=r)
        out.append(f)
    return out


def due(
    meters: Sequence[Meter],
    fired: Sequence[Fired],
    tz: tzinfo | None,
    now_ms: int,
    *,
    reset_notice: bool = True,
) -> list[Alert]:
    """Return every alert due now for `meters` given what has `fired`, reset notices first."""
    fired = ended_by_reset(meters, fired)
    out: list[Alert] = []
    if reset_notice:
        by_kind = {m.kind: m for m in meters}
        for kind in ("five_hour", "seven_day"):
            out += reset_alerts(kind, fired, by_kind.get(kind), tz, now_ms)
    for m in meters:
        out += threshold_alerts(m, fired, tz, now_ms)
    return out


def _minutes(value: float | None) -> str:
    if value is None:
        return "unknown time"
    if value >= 120:
        return f"about {value / 60:.1f} h"
    return f"about {round(value)} min"


def _pace(meter: Meter, reset: str, now_ms: int) -> str:
    """Return what is left and how long it lasts at the current pace, and when the window resets."""
    name = WINDOW_NAMES.get(meter.kind, meter.kind)
    if meter.rolling:
        ends = f"It is a rolling 7 days: the oldest usage in it drops out {reset}."
    else:
        ends = f"{name[0].upper()}{name[1:]} resets at {reset}."
    if meter.tokens_remaining is None:
        return ends
    left = f"{meter.tokens_remaining:,} tokens left"
    if meter.runway_minutes is None:
        return f"{left}. {ends}"
    if not meter.rolling and meter.runway_minutes * 60_000 >= meter.window_end_ms - now_ms:
        return f"{left}, enough until the reset at {reset} at the current pace."
    return f"{left}: {_minutes(meter.runway_minutes)} at the current pace. {ends}"


def compose(meter: Meter, threshold: int, tz: tzinfo | None, now_ms: int) -> tuple[str, str]:
    """Return (title, body) for `threshold` of `meter`: the title names the threshold, the body what to do."""
    name = WINDOW_NAMES.get(meter.kind, meter.kind)
    reset = format_local(to_datetime(meter.window_end_ms), tz, now=to_datetime(now_ms))
    if meter.kind.startswith("budget_"):
        places = 2 if (meter.budget_usd or 0) >= 1 else 4  # cents hide a small budget's progress
        spent = f"${meter.spent_usd or 0:,.{places}f} of ${meter.budget_usd or 0:,.{places}f}"
        return f"{threshold}% of {name} spent", f"{spent} spent; the period ends {reset}."
    title = f"{threshold}% of {name} used"
    pace = _pace(meter, reset, now_ms)
    if meter.guessed_limit is not None:
        pace += (
            f" (Estimated against a guessed limit of {meter.guessed_limit:,} tokens: baton does not know "
            "your plan. Set quota.plan, or enable the status line for official figures.)"
        )
    if threshold >= 95:
        body = f"Save now: commit and write the handoff ({HANDOFF_HINT}). {pace}"
    elif threshold >= 90:
        body = f"Wrap up the current task and commit; keep new work small. {pace}"
    elif threshold >= 80:
        body = f"Strategic planning time: write the handoff for the next session ({HANDOFF_HINT}). {pace}"
    else:
        body = f"Heads-up. {pace}"
    return title, body


def quota_meters(
    snapshot: QuotaSnapshot, thresholds: Sequence[int], weekly_thresholds: Sequence[int]
) -> list[Meter]:
    """Return the 5-hour and weekly meters of `snapshot` (the week when it has a limit or official figure)."""
    out = [_meter("five_hour", snapshot, thresholds)]
    week = snapshot.weekly
    if week is not None and (week.source == "official" or week.tokens_limit):
        out.append(_meter("seven_day", week, weekly_thresholds))
    return out


def _meter(kind: str, s: QuotaSnapshot, thresholds: Sequence[int]) -> Meter:
    return Meter(
        kind=kind,
        window_start_ms=to_ms(s.window_start),
        window_end_ms=to_ms(s.reset_at),
        percent=s.percent,
        source=s.source,
        thresholds=tuple(thresholds),
        tokens_remaining=s.tokens_remaining,
        runway_minutes=s.runway_minutes,
        previous_reset_ms=None if s.previous_reset is None else to_ms(s.previous_reset),
        rolling=s.rolling,
        guessed_limit=s.estimated_limit if s.source == "estimate" else None,
    )


def budget_meter(
    period: str, start_ms: int, end_ms: int, spent_usd: float, budget_usd: float, thresholds: Sequence[int]
) -> Meter:
    """Return the meter of a cost budget (`period`: daily, weekly or monthly)."""
    return Meter(
        kind=f"budget_{period}",
        window_start_ms=start_ms,
        window_end_ms=end_ms,
        percent=spent_usd / budget_usd * 100,
        source="ledger",
        thresholds=tuple(thresholds),
        spent_usd=spent_usd,
        budget_usd=budget_usd,
    )
