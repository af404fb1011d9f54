"""Reading the ledger for the quota: counted usage, spend, official figures and the plan's limits.

The thin I/O edge around `daemon.quota` (pure), shared by the daemon and `baton status`. stdlib sqlite3 only.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from daemon import official, plans, quota
from daemon.config import QuotaSettings

# A week plus a day before it. Blocks restart after any 5-hour break, so this matches ccusage's blocks unless
# someone used Claude Code for over a day without one.
HISTORY_MS = 8 * 24 * quota.HOUR_MS
# The `auto` plan learns from the windows of the last 12 weeks: limits change, and the whole history would
# cost a row per API response ever made, every hour.
AUTO_HISTORY_MS = 12 * 7 * 24 * quota.HOUR_MS
_reported: set[str] = set()  # bad stored rows already logged by this process


def _report_skipped(skipped: list[str]) -> None:
    """Log each stored row the quota could not use, once per process (the daemon evaluates often)."""
    new = [row for row in skipped if row not in _reported]
    if not new:
        return
    _reported.update(new)
    from daemon.logs import get_logger

    for row in new:
        get_logger("baton.quota").warning("official_figure_skipped", row=row, reason="out of range")


def counted_points(conn: sqlite3.Connection, since_ms: int) -> list[quota.UsagePoint]:
    """Return the usage since `since_ms` as the tokens that count against a limit (see daemon.plans)."""
    try:
        rows = conn.execute(
            "SELECT ts_ms, input_tokens + output_tokens + cache_creation_tokens, "
            "COALESCE(cost_usd, cost_calc, 0) FROM usage_events WHERE ts_ms >= ? ORDER BY ts_ms",
            (since_ms,),
        ).fetchall()
    except sqlite3.OperationalError:  # no ledger yet
        return []
    return [quota.UsagePoint(int(r[0]), int(r[1]), float(r[2])) for r in rows]


def spent_between(conn: sqlite3.Connection, start_ms: int, end_ms: int) -> float:
    """Return the USD spent in [start_ms, end_ms) according to the ledger."""
    row = conn.execute(
        "SELECT COALESCE(SUM(COALESCE(cost_usd, cost_calc, 0)), 0) FROM usage_events "
        "WHERE ts_ms >= ? AND ts_ms < ?",
        (start_ms, end_ms),
    ).fetchone()
    return float(row[0])


def resolve_limits(
    conn: sqlite3.Connection, q: QuotaSettings, now_ms: int, subscription: str | None = None
) -> plans.Limits:
    """Return the configured plan's limits; `auto` reads the windows and limit messages of the last
    AUTO_HISTORY_MS, and falls back on `subscription` (default: what Claude Code's login says, unless
    `read_login_plan` is off: `daemon.subscription.detect`)."""
    kwargs = {
        "token_limit": q.token_limit,
        "cost_limit": q.cost_limit,
        "message_limit": q.message_limit,
        "weekly_token_limit": q.weekly_token_limit,
    }
    if q.plan != "auto" or q.token_limit:
        return plans.resolve(q.plan, **kwargs)  # type: ignore[arg-type]
    since = now_ms - AUTO_HISTORY_MS
    blocks = quota.identify_blocks(counted_points(conn, since), int(q.window_hours * quota.HOUR_MS))
    try:
        limit_ts = [
            int(r[0])
            for r in conn.execute(
                "SELECT ts_ms FROM limit_events WHERE kind IN ('session', 'unknown') AND ts_ms >= ?", (since,)
            )
        ]
    except sqlite3.OperationalError:
        limit_ts = []
    limited, completed = quota.window_totals(blocks, limit_ts, now_ms)
    if subscription is None and not limited:
        from daemon import subscription as claude_login

        subscription = claude_login.detect(keychain=q.oauth_usage, enabled=q.read_login_plan)
    return plans.resolve(
        "auto",
        limited_window_totals=limited,
        completed_window_totals=completed,
        subscription=subscription,
        **kwargs,  # type: ignore[arg-type]
    )


def current(
    conn: sqlite3.Connection, q: QuotaSettings, now: datetime, limits: plans.Limits | None = None
) -> quota.QuotaSnapshot:
    """Return the quota snapshot at `now` from the ledger and the official figures."""
    now_ms = quota.to_ms(now)
    points = counted_points(conn, now_ms - HISTORY_MS)
    skipped: list[str] = []
    figures = official.load(conn, now_ms, skipped)
    if skipped:
        _report_skipped(skipped)
    limits = limits or resolve_limits(conn, q, now_ms)
    return quota.evaluate(points, figures, limits, now, window_hours=q.window_hours)
