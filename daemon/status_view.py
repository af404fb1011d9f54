"""What `baton status` shows: read from the ledger (daemon running or not), rendered as text or JSON.

`gather` is the edge (reads files); `render_text` and `to_json` are pure over the gathered `Status`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from daemon import alerts_store, quota, quota_data
from daemon.config import Settings
from daemon.instance import holder_pid
from daemon.paths import BatonPaths
from daemon.quota import QuotaSnapshot, format_local

BAR_WIDTH = 30
# The token kinds the quota counts against a limit (daemon.quota_data.counted_points; cache reads are left
# out, see the README), in words for the text and as the ledger's column stems for `--json`.
COUNTED_TOKENS = "input + output + cache writes"
COUNTED_TOKEN_KINDS = ("input", "output", "cache_creation")
LEVEL_ICON = {
    "fresh": "FRESH",
    "excellent": "EXCELLENT",
    "good": "GOOD",
    "moderate": "MODERATE",
    "danger": "DANGER: plan the next session",
    "critical": "CRITICAL: wrap up and commit",
    "emergency": "EMERGENCY: save now",
}


@dataclass(frozen=True)
class NextAlert:
    """The next threshold of the 5-hour window and how far it is."""

    threshold: int
    tokens_to_go: int | None


@dataclass(frozen=True)
class Status:
    """Everything `baton status` shows."""

    snapshot: QuotaSnapshot
    daemon_pid: int | None
    next_alert: NextAlert | None
    last_alerts: list[alerts_store.StoredAlert]
    tz: tzinfo | None
    extra_lines: list[str] = field(default_factory=list)


def next_alert(snap: QuotaSnapshot, thresholds: list[int]) -> NextAlert | None:
    """Return the lowest threshold above the current percent, with the tokens left to it (None above all)."""
    ahead = [t for t in thresholds if t > snap.percent]
    if not ahead:
        return None
    t = min(ahead)
    to_go = None if snap.tokens_limit is None else round(snap.tokens_limit * (t - snap.percent) / 100)
    return NextAlert(t, to_go)


def _extra_lines(paths: BatonPaths) -> list[str]:
    """Return the lines the scheduler (C) and the estimates (F) add, when those parts exist."""
    import importlib

    lines: list[str] = []
    for name in ("daemon.scheduler", "daemon.estimate_store"):
        try:
            module = importlib.import_module(name)
            lines += list(module.status_lines(paths))
        except Exception:  # a part not written yet, or failing: status still shows the quota
            continue
    return lines


def gather(paths: BatonPaths, settings: Settings, now: datetime, tz: tzinfo | None) -> Status:
    """Return the status at `now` from the ledger, the official figures and the alerts record."""
    db = paths.ledger_db
    if db.exists():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    else:
        conn = sqlite3.connect(":memory:")
    with contextlib.closing(conn):
        snap = quota_data.current(conn, settings.quota, now)
        recent = alerts_store.recent(conn)
    return Status(
        snapshot=snap,
        daemon_pid=holder_pid(paths),
        next_alert=next_alert(snap, settings.alerts.thresholds),
        last_alerts=recent,
        tz=tz,
        extra_lines=_extra_lines(paths),
    )


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    """Return a text bar for `percent` (clamped to 0-100)."""
    filled = round(min(max(percent, 0.0), 100.0) / 100 * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _duration(minutes: float) -> str:
    if minutes < 60:
        return f"{minutes:.0f} min"
    return f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def _source(s: QuotaSnapshot) -> str:
    if s.source == "official":
        age = ""
        if s.official_age_s is not None:
            age = ", just now" if s.official_age_s < 60 else f", {_duration(s.official_age_s / 60)} ago"
        return f"official ({s.source_detail.replace('_', ' ')}{age})"
    return f"estimate ({s.limit_label})"


def _five_hour_lines(st: Status) -> list[str]:
    """Return the 5-hour window's lines: the full picture while one runs, one plain line when none does."""
    s = st.snapshot
    now = s.computed_at
    if not s.active:
        return [
            "5-hour window  none running, nothing used: your next message starts one "
            f"({_window_length(s)} from then)",
            f"  Limit       {_limit(s)}",
        ]
    used = used_text(s)
    started = format_local(s.window_start, st.tz, now=now)
    lines = [
        f"5-hour window  started {started}, resets {format_local(s.reset_at, st.tz, now=now)} "
        f"(in {_duration(s.minutes_to_reset())})",
        f"  {bar(s.percent)} {s.percent:5.1f}%  {LEVEL_ICON.get(s.level, s.level.upper())}",
        f"  Used        {used}" + (" · LIMIT REACHED" if s.limited else ""),
        *_unknown_limit_line(s),
        f"  Burn rate   {s.burn_rate_recent:,.0f} tokens/min (last 10 min) · "
        f"{s.burn_rate_window:,.0f} tokens/min (since the window started)",
        "  Runway      "
        + (
            ("- (no recent use)" if s.limit_known else "- (needs the plan's token limit)")
            if s.runway_minutes is None
            else f"~{_duration(s.runway_minutes)} at the current pace"
            + (" (past the reset: the window ends first)" if s.runway_minutes > s.minutes_to_reset() else "")
        ),
    ]
    if s.projected_percent is not None and s.source == "estimate":
        if s.projected_percent >= 100:
            lines.append(
                f"  Projected   the limit comes before the reset at this window's pace "
                f"({s.projected_percent:.0f}% by {format_local(s.reset_at, st.tz, now=now)})"
            )
        else:
            lines.append(f"  Projected   {s.projected_percent:.0f}% by the reset at this window's pace")
    lines.append(f"  Source      {_source(s)}")
    if st.next_alert is not None:
        to_go = (
            "" if st.next_alert.tokens_to_go is None else f" (~{st.next_alert.tokens_to_go:,} tokens to go)"
        )
        lines.append(f"  Next alert  at {st.next_alert.threshold}%{to_go}")
    return lines


def used_text(s: QuotaSnapshot) -> str:
    """Return what is known of the tokens used: token figures only against a known limit, adding up to it
    (official: the share of the limit the official percent means); a guessed limit is named as such. It
    says which tokens it counts (COUNTED_TOKENS: cache reads are not), so it can be told from reports."""
    counted = f"{s.tokens_used:,} tokens counted here ({COUNTED_TOKENS})"
    kinds = f", counting {COUNTED_TOKENS}"
    if s.source == "official":
        if s.tokens_limit and s.tokens_remaining is not None:
            at = s.tokens_limit - s.tokens_remaining
            return (
                f"~{at:,} of {s.tokens_limit:,} tokens (~{s.tokens_remaining:,} left) at the official "
                f"{s.percent:g}% · {counted}"
            )
        return f"{s.percent:g}% used, {max(0.0, 100 - s.percent):g}% left (official) · {counted}"
    if s.tokens_limit:
        left = s.tokens_remaining if s.tokens_remaining is not None else 0
        return f"{s.tokens_used:,} of {s.tokens_limit:,} tokens ({left:,} left){kinds}"
    if s.estimated_limit:
        return f"{s.tokens_used:,} tokens ({s.percent:g}% of a guessed {s.estimated_limit:,}){kinds}"
    return f"{s.tokens_used:,} tokens{kinds}"


def _unknown_limit_line(s: QuotaSnapshot) -> list[str]:
    if s.limit_known or not s.estimated_limit:
        return []
    return [f"  Limit       unknown: set quota.plan for token figures ({s.estimated_limit:,} is a guess)"]


def _limit(s: QuotaSnapshot) -> str:
    """Return the window's limit and where it comes from."""
    if s.tokens_limit is None and s.estimated_limit:
        guess = f"{s.estimated_limit:,} tokens per window"
        return f"unknown: guessed at {guess} ({s.limit_label}); set quota.plan"
    if s.tokens_limit is None:
        return s.limit_label
    return f"{s.tokens_limit:,} tokens per window ({s.limit_label})"


def _window_length(s: QuotaSnapshot) -> str:
    minutes = (s.reset_at - s.window_start).total_seconds() / 60
    return f"{minutes / 60:g} hours" if minutes >= 60 else _duration(minutes)


def _week_lines(w: QuotaSnapshot, tz: tzinfo | None, now: datetime) -> list[str]:
    """Return the week's lines: an official figure with its reset; an estimate as a rolling 7 days."""
    limit = f" of {w.tokens_limit:,}" if w.tokens_limit else ""
    if w.estimated_limit:
        limit = f" (of a guessed {w.estimated_limit:,})"
    if w.source == "official":
        return [
            f"Week          {w.percent:.1f}% {w.level} · resets {format_local(w.reset_at, tz, now=now)} "
            f"· {_source(w)}"
        ]
    if not w.active:
        return ["Week          nothing used in the last 7 days (estimate, rolling 7 days)"]
    return [
        f"Week          {w.percent:.1f}% {w.level} · {w.tokens_used:,}{limit} tokens in the last 7 days"
        if not w.estimated_limit
        else f"Week          {w.percent:.1f}% {w.level} · {w.tokens_used:,} tokens in the last 7 days{limit}",
        "              rolling 7 days (estimate): no fixed reset; the oldest usage drops out "
        + format_local(w.reset_at, tz, now=now),
    ]


def _delivery(a: alerts_store.StoredAlert) -> str:
    if a.delivered is None:
        return "pending"
    if a.delivered:
        return f"shown via {a.delivered_via}" if a.delivered_via else "shown"
    return "not shown on the desktop; it is in the log"


def render_text(st: Status) -> str:
    """Return the human-readable status."""
    s = st.snapshot
    now = s.computed_at
    lines = _five_hour_lines(st)
    if s.weekly is not None:
        lines += _week_lines(s.weekly, st.tz, now)
    if st.last_alerts:
        lines.append("Alerts sent")
        for a in st.last_alerts:
            when = format_local(quota.to_datetime(a.fired_ms), st.tz, now=now)
            lines.append(f"  {when:>9}  {a.title} ({_delivery(a)})")
    lines += st.extra_lines
    running = (
        f"running (pid {st.daemon_pid})"
        if st.daemon_pid
        else "not running (start it: `baton service start`, or `baton run` in a terminal)"
    )
    lines.append(f"Daemon        {running}")
    return "\n".join(lines)


def to_json(st: Status) -> dict[str, Any]:
    """Return the `--json` object: the 5-hour snapshot's fields at the top, the week under `weekly`."""
    data = st.snapshot.to_dict()
    data["counted_token_kinds"] = list(COUNTED_TOKEN_KINDS)  # what tokens_used and the limits count
    if isinstance(data.get("weekly"), dict):
        data["weekly"]["counted_token_kinds"] = list(COUNTED_TOKEN_KINDS)
    data["daemon_running"] = st.daemon_pid is not None
    data["daemon_pid"] = st.daemon_pid
    data["next_alert"] = None if st.next_alert is None else vars(st.next_alert)
    data["last_alerts"] = [
        {
            "title": a.title,
            "threshold": a.threshold,
            "kind": a.kind,
            "fired_at": quota.to_datetime(a.fired_ms).isoformat(),
            "delivered": a.delivered,
            "via": a.delivered_via,
        }
        for a in st.last_alerts
    ]
    # With `active` false no window runs: `reset_at` is then when one started now would end.
    data["reset_at_local"] = (
        format_local(st.snapshot.reset_at, st.tz, now=st.snapshot.computed_at) if st.snapshot.active else None
    )
    return data
