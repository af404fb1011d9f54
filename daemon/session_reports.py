"""Session reports: summary, by-repo, by-category, by-model, recent, trends, value, compare, the HTML page.

Every report is a pure function of session records (and, for by-model, per-model rows from the ledger) that
returns a `Report`: named columns, rows of plain values, optional totals. `render` turns a Report into a
table, JSON or CSV; the CLI only loads, calls and prints. A session counts on the day it started, in the
chosen time zone (a session that runs past midnight stays on its first day).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from daemon.errors import BatonError

LOW_VALUES = ("low", "zero")
UNRATED = "unrated"


@dataclass(frozen=True)
class SessionRow:
    """One session record as the reports see it."""

    session_id: str
    started_ms: int
    ended_ms: int
    wall_ms: int
    active_ms: int
    messages: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float
    model: str | None
    models: tuple[str, ...]
    cwd: str | None
    git_repo: str | None
    git_branch: str | None
    category: str | None
    closed: bool
    value: str | None = None
    tags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def all_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens (without the cache), as in the sessions.json format."""
        return self.input_tokens + self.output_tokens

    def day(self, tz: tzinfo) -> date:
        return local(self.started_ms, tz).date()


@dataclass(frozen=True)
class ModelRow:
    """Ledger totals of one model over a period."""

    model: str
    sessions: int
    messages: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost_usd: float

    @property
    def all_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | usd | minutes | percent | float


@dataclass(frozen=True)
class Report:
    """A report ready to render: `rows` hold plain JSON values keyed by column key."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Any], ...]
    totals: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def local(ms: int, tz: tzinfo) -> datetime:
    """Return the aware local time of a UTC epoch-ms timestamp in `tz`."""
    return datetime.fromtimestamp(ms / 1000, tz=tz)


def parse_day(text: str, tz: tzinfo, *, end: bool = False) -> int:
    """Return the epoch ms of the start (or, with `end`, the end) of the day `text` (YYYY-MM-DD or YYYYMMDD)
    in `tz`. Raise BatonError on another format."""
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            day = datetime.strptime(text, fmt).date()
            break
        except ValueError:
            continue
    else:
        raise BatonError(f"not a date: {text!r}", hint="use YYYY-MM-DD, e.g. 2026-03-01")
    if end:
        day += timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    return int(start.timestamp() * 1000) - (1 if end else 0)


# ------------------------------------------------------------------------------------------------ loading


def load_sessions(
    conn: sqlite3.Connection, since_ms: int | None = None, until_ms: int | None = None
) -> list[SessionRow]:
    """Return the sessions that started in [since_ms, until_ms] (both optional), oldest first, with their
    latest value rating, tags and notes."""
    where, args = ["started_ms IS NOT NULL"], []
    if since_ms is not None:
        where.append("started_ms >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("started_ms <= ?")
        args.append(until_ms)
    rows = conn.execute(
        "SELECT session_id, started_ms, ended_ms, wall_ms, active_ms, messages, input_tokens, "
        "output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, model, models, cwd, git_repo, "
        f"git_branch, category, closed_ms FROM sessions WHERE {' AND '.join(where)} "
        "ORDER BY started_ms, session_id",
        args,
    ).fetchall()
    tags = _grouped(conn, "SELECT session_id, tag FROM session_tags ORDER BY tag")
    notes = _grouped(conn, "SELECT session_id, text FROM session_notes ORDER BY ts_ms, id")
    values = dict(
        conn.execute(
            "SELECT v.session_id, v.value FROM value_logs v WHERE v.session_id IS NOT NULL AND v.id = "
            "(SELECT MAX(w.id) FROM value_logs w WHERE w.session_id = v.session_id)"
        ).fetchall()
    )
    return [
        SessionRow(
            session_id=r[0],
            started_ms=r[1],
            ended_ms=r[2] if r[2] is not None else r[1],
            wall_ms=r[3],
            active_ms=r[4],
            messages=r[5],
            input_tokens=r[6],
            output_tokens=r[7],
            cache_creation_tokens=r[8],
            cache_read_tokens=r[9],
            cost_usd=r[10],
            model=r[11],
            models=tuple(json.loads(r[12] or "[]")),
            cwd=r[13],
            git_repo=r[14],
            git_branch=r[15],
            category=r[16],
            closed=r[17] is not None,
            value=values.get(r[0]),
            tags=tuple(tags.get(r[0], ())),
            notes=tuple(notes.get(r[0], ())),
        )
        for r in rows
    ]


def load_session_ids(conn: sqlite3.Connection) -> list[str]:
    """Return the ids of every session with usage (the ones a prefix can name), whatever the period."""
    return [str(r[0]) for r in conn.execute("SELECT session_id FROM sessions WHERE started_ms IS NOT NULL")]


def short_ids(ids: Iterable[str], known: Iterable[str] = (), minimum: int = 8) -> dict[str, str]:
    """Return each of `ids` shortened, as git shortens commit ids: the shortest prefix of at least `minimum`
    characters that no other id (of `ids` and `known`) starts with. An id that is the start of another stays
    whole (naming it in full picks it).

    Example: session-alpha, session-beta -> session-a, session-b; 4d5611e5-... -> 4d5611e5.
    """
    wanted = list(ids)
    ordered = sorted(set(known) | set(wanted))
    at = {sid: i for i, sid in enumerate(ordered)}

    def common(a: str, b: str) -> int:
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        return n

    out: dict[str, str] = {}
    for sid in wanted:
        i = at[sid]
        # In sorted order the ids sharing the longest prefix with `sid` are its neighbours.
        shared = max((common(sid, ordered[j]) for j in (i - 1, i + 1) if 0 <= j < len(ordered)), default=0)
        out[sid] = sid[: max(minimum, shared + 1)]
    return out


def _grouped(conn: sqlite3.Connection, sql: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sid, text in conn.execute(sql):
        out.setdefault(sid, []).append(text)
    return out


def load_unattached(
    conn: sqlite3.Connection, since_ms: int | None, until_ms: int | None
) -> list[tuple[str, int | None]]:
    """Return (value, tokens) of the value entries logged in the period that belong to no session the reports
    show: none at all, or one without usage (older versions attached entries to the row the SessionEnd hook
    writes for a session left before any prompt)."""
    lo = since_ms if since_ms is not None else -(2**62)
    hi = until_ms if until_ms is not None else 2**62
    rows = conn.execute(
        "SELECT v.value, v.tokens FROM value_logs v LEFT JOIN sessions s ON s.session_id = v.session_id "
        "WHERE s.started_ms IS NULL AND v.ts_ms >= ? AND v.ts_ms <= ? ORDER BY v.id",
        (lo, hi),
    ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def load_models(
    conn: sqlite3.Connection, since_ms: int | None, until_ms: int | None, pricing_mode: str = "auto"
) -> list[ModelRow]:
    """Return per-model ledger totals for events in [since_ms, until_ms], most costly first ('<synthetic>'
    rows, which carry no usage, left out)."""
    cost = {"display": "cost_usd", "calculate": "cost_calc"}.get(
        pricing_mode, "COALESCE(cost_usd, cost_calc)"
    )
    where, args = ["model IS NOT NULL", "model <> '<synthetic>'"], []
    if since_ms is not None:
        where.append("ts_ms >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("ts_ms <= ?")
        args.append(until_ms)
    rows = conn.execute(
        "SELECT model, COUNT(DISTINCT session_id), COUNT(*), SUM(input_tokens), SUM(output_tokens), "
        f"SUM(cache_creation_tokens), SUM(cache_read_tokens), COALESCE(SUM({cost}), 0) FROM usage_events "
        f"WHERE {' AND '.join(where)} GROUP BY model",
        args,
    ).fetchall()
    models = [
        ModelRow(r[0], r[1], r[2], r[3] or 0, r[4] or 0, r[5] or 0, r[6] or 0, float(r[7])) for r in rows
    ]
    return sorted(models, key=lambda m: (-m.cost_usd, -m.all_tokens, m.model))


# ------------------------------------------------------------------------------------------------ reports

_GROUP_COLUMNS = (
    Column("sessions", "Sessions", "int"),
    Column("tokens", "Tokens", "int"),
    Column("cost_usd", "Cost", "usd"),
    Column("active_min", "Active", "minutes"),
    Column("share", "Share", "percent"),
)


def _minutes(ms: int) -> float:
    return round(ms / 60_000, 2)


def _money(x: float) -> float:
    return round(x, 6)


def summary(sessions: Sequence[SessionRow], tz: tzinfo, models: Sequence[ModelRow] | None = None) -> Report:
    """Return the overall figures: sessions, tokens by kind, cost, time, averages, first and last day, and the
    top repository, category and model by cost.

    Each "top" is the first row of the matching breakdown, so the two never disagree: the top repository is
    `by_repo`'s first group, "(no repository)" included (a third of the cost with no known repository is worth
    seeing, not hiding behind the next one), and the top model is `by_model`'s first row when `models` (the
    ledger's per-model totals) is given, else the model most of each session's cost went to.
    """
    n = len(sessions)
    tokens = sum(s.all_tokens for s in sessions)
    cost = sum(s.cost_usd for s in sessions)
    active = sum(s.active_ms for s in sessions)
    days = sorted({s.day(tz) for s in sessions})
    rows: list[tuple[str, Any, str]] = [
        ("sessions", n, "int"),
        ("days_with_sessions", len(days), "int"),
        ("first_day", days[0].isoformat() if days else None, "text"),
        ("last_day", days[-1].isoformat() if days else None, "text"),
        ("messages", sum(s.messages for s in sessions), "int"),
        ("input_tokens", sum(s.input_tokens for s in sessions), "int"),
        ("output_tokens", sum(s.output_tokens for s in sessions), "int"),
        ("cache_creation_tokens", sum(s.cache_creation_tokens for s in sessions), "int"),
        ("cache_read_tokens", sum(s.cache_read_tokens for s in sessions), "int"),
        ("all_tokens", tokens, "int"),
        ("cost_usd", _money(cost), "usd"),
        ("active_min", _minutes(active), "minutes"),
        ("wall_min", _minutes(sum(s.wall_ms for s in sessions)), "minutes"),
        ("avg_tokens_per_session", round(tokens / n, 2) if n else 0, "float"),
        ("avg_cost_per_session", _money(cost / n) if n else 0.0, "usd"),
        ("avg_active_min_per_session", _minutes(active // n) if n else 0.0, "minutes"),
    ]
    tops = {
        "top_repo": _top(by_repo(sessions), "repo"),
        "top_category": _top(by_category(sessions), "category"),
        "top_model": _top(by_model(models), "model") if models is not None else _top_session_model(sessions),
    }
    rows += [(k, name, "text") for k, (name, _) in tops.items()]
    return Report(
        "Summary",
        (Column("metric", "Metric"), Column("value", "Value")),
        tuple(
            {"metric": _LABELS.get(k, k), "value": v, "_kind": kind}
            | ({"_shown_value": tops[k][1]} if k in tops and tops[k][1] else {})
            for k, v, kind in rows
        ),
        extra={k: v for k, v, _ in rows},
    )


_LABELS = {
    "days_with_sessions": "days with sessions",
    "first_day": "first day",
    "last_day": "last day",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "cache_creation_tokens": "cache write tokens",
    "cache_read_tokens": "cache read tokens",
    "all_tokens": "all tokens",
    "cost_usd": "cost",
    "active_min": "active time",
    "wall_min": "wall time",
    "avg_tokens_per_session": "tokens per session",
    "avg_cost_per_session": "cost per session",
    "avg_active_min_per_session": "active time per session",
    "top_repo": "top repository (cost)",
    "top_category": "top category (cost)",
    "top_model": "top model (cost)",
}


def _top(breakdown: Report, key: str) -> tuple[str | None, str | None]:
    """Return the first group of a breakdown and how the table shows it: "name ($cost, share%)"."""
    if not breakdown.rows:
        return None, None
    first = breakdown.rows[0]
    return str(first[key]), f"{first[key]} (${first['cost_usd']:,.2f}, {first['share']:.1f}%)"


def _top_session_model(sessions: Sequence[SessionRow]) -> tuple[str | None, str | None]:
    """The model most cost went to, counting each session's whole cost under its main model."""
    return _top(group_by(sessions, lambda s: s.model, "model", NO_MODEL), "model")


NO_REPO = "(no repository)"  # no working directory recorded for the session
NO_CATEGORY = "(no category)"
NO_MODEL = "(no model)"


def group_by(
    sessions: Sequence[SessionRow], key: Callable[[SessionRow], str | None], label: str, missing: str
) -> Report:
    """Return sessions, tokens, cost, active minutes and share of cost per `key` value, most costly first;
    sessions without one form the group named `missing`."""
    groups: dict[str, list[SessionRow]] = {}
    for s in sessions:
        groups.setdefault(key(s) or missing, []).append(s)
    total_cost = sum(s.cost_usd for s in sessions)
    total_tokens = sum(s.all_tokens for s in sessions)
    rows: list[dict[str, Any]] = [
        {
            label: name,
            "sessions": len(members),
            "tokens": sum(s.all_tokens for s in members),
            "cost_usd": _money(sum(s.cost_usd for s in members)),
            "active_min": _minutes(sum(s.active_ms for s in members)),
            "share": _share(
                sum(s.cost_usd for s in members), total_cost, sum(s.all_tokens for s in members), total_tokens
            ),
        }
        for name, members in groups.items()
    ]
    rows.sort(key=lambda r: (-r["cost_usd"], -r["tokens"], r[label]))
    totals = {
        label: "Total",
        "sessions": len(sessions),
        "tokens": total_tokens,
        "cost_usd": _money(total_cost),
        "active_min": _minutes(sum(s.active_ms for s in sessions)),
        "share": 100.0 if sessions else 0.0,
    }
    title = {"repo": "By repository", "category": "By category"}.get(label, f"By {label}")
    return Report(title, (Column(label, label.capitalize()), *_GROUP_COLUMNS), tuple(rows), totals)


def _share(cost: float, total_cost: float, tokens: int, total_tokens: int) -> float:
    """Share of cost in percent (of tokens when nothing is priced)."""
    if total_cost > 0:
        return round(100 * cost / total_cost, 2)
    return round(100 * tokens / total_tokens, 2) if total_tokens else 0.0


def by_repo(sessions: Sequence[SessionRow]) -> Report:
    return group_by(sessions, lambda s: s.git_repo, "repo", NO_REPO)


def by_category(sessions: Sequence[SessionRow]) -> Report:
    return group_by(sessions, lambda s: s.category, "category", NO_CATEGORY)


def by_model(models: Sequence[ModelRow]) -> Report:
    """Return the per-model ledger totals with each model's share of the cost."""
    total_cost = sum(m.cost_usd for m in models)
    total_tokens = sum(m.all_tokens for m in models)
    rows = tuple(
        {
            "model": m.model,
            "sessions": m.sessions,
            "messages": m.messages,
            "input_tokens": m.input_tokens,
            "output_tokens": m.output_tokens,
            "cache_creation_tokens": m.cache_creation_tokens,
            "cache_read_tokens": m.cache_read_tokens,
            "tokens": m.all_tokens,
            "cost_usd": _money(m.cost_usd),
            "share": _share(m.cost_usd, total_cost, m.all_tokens, total_tokens),
        }
        for m in models
    )
    columns = (
        Column("model", "Model"),
        Column("sessions", "Sessions", "int"),
        Column("messages", "Messages", "int"),
        Column("tokens", "Tokens", "int"),
        Column("cost_usd", "Cost", "usd"),
        Column("share", "Share", "percent"),
    )
    totals = {
        "model": "Total",
        "messages": sum(m.messages for m in models),
        "tokens": total_tokens,
        "cost_usd": _money(total_cost),
        "share": 100.0 if models else 0.0,
    }
    return Report("By model", columns, rows, totals)


def recent(sessions: Sequence[SessionRow], tz: tzinfo, limit: int = 10, known: Iterable[str] = ()) -> Report:
    """Return the `limit` most recently started sessions, newest first. The table shows each id by its
    shortest unambiguous prefix among the sessions and `known` (every session id, for prefixes that
    `--session` accepts); JSON and CSV keep the full ids."""
    chosen = sorted(sessions, key=lambda s: (s.started_ms, s.session_id), reverse=True)[:limit]
    short = short_ids([s.session_id for s in chosen], [*known, *(s.session_id for s in sessions)])
    rows = tuple(
        {
            "session_id": s.session_id,
            "_shown_session_id": short[s.session_id],
            "started": local(s.started_ms, tz).isoformat(timespec="seconds"),
            "active_min": _minutes(s.active_ms),
            "messages": s.messages,
            "tokens": s.all_tokens,
            "cost_usd": _money(s.cost_usd),
            "model": s.model,
            "repo": s.git_repo,
            **({} if s.git_repo else {"_shown_repo": NO_REPO}),  # the label by-repo uses; JSON keeps null
            "category": s.category,
            "value": s.value,
            "tags": ",".join(s.tags),
            "notes": " | ".join(s.notes),
            "open": not s.closed,
        }
        for s in chosen
    )
    columns = (
        Column("session_id", "Session", "id"),
        Column("started", "Started", "time"),
        Column("active_min", "Active", "minutes"),
        Column("messages", "Msgs", "int"),
        Column("tokens", "Tokens", "int"),
        Column("cost_usd", "Cost", "usd"),
        Column("repo", "Repo"),
        Column("category", "Category"),
        Column("value", "Value"),
        Column("tags", "Tags"),
    )
    return Report("Recent sessions", columns, rows)


def daily_series(sessions: Sequence[SessionRow], tz: tzinfo, first: date, last: date) -> list[dict[str, Any]]:
    """Return one row per calendar day from `first` to `last` (zero days included): sessions, tokens, cost."""
    per_day: dict[date, list[SessionRow]] = {}
    for s in sessions:
        per_day.setdefault(s.day(tz), []).append(s)
    out = []
    day = first
    while day <= last:
        members = per_day.get(day, [])
        out.append(
            {
                "date": day.isoformat(),
                "sessions": len(members),
                "tokens": sum(s.all_tokens for s in members),
                "cost_usd": _money(sum(s.cost_usd for s in members)),
                "active_min": _minutes(sum(s.active_ms for s in members)),
                "messages": sum(s.messages for s in members),
            }
        )
        day += timedelta(days=1)
    return out


def trends(sessions: Sequence[SessionRow], tz: tzinfo, first: date, last: date, window: int = 7) -> Report:
    """Return daily tokens and cost from `first` to `last` with their rolling average over the `window`
    calendar days ending on each day (days before `first` count too; a day without sessions counts as 0)."""
    series = daily_series(sessions, tz, first - timedelta(days=window - 1), last)
    rows = []
    for i in range(window - 1, len(series)):
        span = series[i - window + 1 : i + 1]
        rows.append(
            {
                **series[i],
                "avg_tokens_7d": round(sum(r["tokens"] for r in span) / window, 2),
                "avg_cost_7d": _money(sum(r["cost_usd"] for r in span) / window),
            }
        )
    columns = (
        Column("date", "Date"),
        Column("sessions", "Sessions", "int"),
        Column("tokens", "Tokens", "int"),
        Column("avg_tokens_7d", f"Tokens ({window}d avg)", "float"),
        Column("cost_usd", "Cost", "usd"),
        Column("avg_cost_7d", f"Cost ({window}d avg)", "usd"),
    )
    return Report(f"Trends ({window}-day rolling average)", columns, tuple(rows))


NOT_RATED = (
    "No session in this period is rated yet, so there is no zero-value share and no pattern to show.",
    'Rate the latest session with: baton log quick "what it delivered" high',
    "(--session ID for another one; values: high, medium, low, zero, creation, maintenance, debt, refactor)",
)


def _value_patterns(
    rated: Sequence[SessionRow], known: Iterable[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Return the value report's figures (zero share, median, patterns) and notes, from rated sessions (ids in
    the notes shortened among `known`). With none rated there is no share, median or pattern: the figures are
    None (empty lists for the patterns) and the notes say how to rate a session instead."""
    if not rated:
        return {
            "rated_sessions": 0,
            "zero_value_share": None,
            "median_cost_usd": None,
            "high_cost_low_value": [],
            "low_cost_high_value": [],
            "debt": {"sessions": 0, "cost_usd": 0.0},
            "refactor": {"sessions": 0, "cost_usd": 0.0},
            "debt_to_refactor": None,
        }, NOT_RATED
    median = statistics.median(s.cost_usd for s in rated)
    high_low = [s.session_id for s in rated if s.cost_usd >= median and s.value in LOW_VALUES]
    low_high = [s.session_id for s in rated if s.cost_usd < median and s.value == "high"]
    debt = [s for s in rated if s.value == "debt"]
    refactor = [s for s in rated if s.value == "refactor"]
    zero = sum(1 for s in rated if s.value == "zero")
    short = short_ids([*high_low, *low_high], known)
    high_low_ids = ", ".join(short[i] for i in high_low) or "none"
    low_high_ids = ", ".join(short[i] for i in low_high) or "none"
    extra: dict[str, Any] = {
        "rated_sessions": len(rated),
        "zero_value_share": round(100 * zero / len(rated), 2),
        "median_cost_usd": _money(median),
        "high_cost_low_value": high_low,
        "low_cost_high_value": low_high,
        "debt": {"sessions": len(debt), "cost_usd": _money(sum(s.cost_usd for s in debt))},
        "refactor": {"sessions": len(refactor), "cost_usd": _money(sum(s.cost_usd for s in refactor))},
        "debt_to_refactor": round(len(debt) / len(refactor), 2) if refactor else None,
    }
    notes: tuple[str, ...] = (
        f"Rated sessions: {len(rated)}; zero value: {extra['zero_value_share']}%.",
        f"High cost + low value (cost >= median ${median:.2f}): {high_low_ids} (burning tokens on busywork?)",
        f"Low cost + high value: {low_high_ids} (leverage: document and repeat)",
        f"Debt vs refactor: {len(debt)} vs {len(refactor)} sessions"
        + (f" (ratio {extra['debt_to_refactor']})" if refactor else ""),
    )
    return extra, notes


def value(
    sessions: Sequence[SessionRow],
    unattached: Sequence[tuple[str, int | None]] = (),
    known: Iterable[str] = (),
) -> Report:
    """Return cost per value class, the share of zero-value sessions among rated ones, and the patterns:
    high cost with low value, low cost with high value (against the median cost of rated sessions), and
    debt against refactor. `unattached` lists (value, tokens) of entries logged before any session existed;
    `known` (every session id) makes the ids the notes name unambiguous prefixes."""
    groups: dict[str, list[SessionRow]] = {}
    for s in sessions:
        groups.setdefault(s.value or UNRATED, []).append(s)
    order = ("high", "medium", "low", "zero", "creation", "maintenance", "debt", "refactor", UNRATED)
    rows = tuple(
        {
            "value": name,
            "sessions": len(groups[name]),
            "tokens": sum(s.all_tokens for s in groups[name]),
            "cost_usd": _money(sum(s.cost_usd for s in groups[name])),
            "avg_cost_usd": _money(sum(s.cost_usd for s in groups[name]) / len(groups[name])),
        }
        for name in order
        if name in groups
    )
    extra, notes = _value_patterns(
        [s for s in sessions if s.value], [*known, *(s.session_id for s in sessions)]
    )
    if unattached:
        loose: dict[str, dict[str, int]] = {}
        for v, tokens in unattached:
            entry = loose.setdefault(v, {"entries": 0, "tokens": 0})
            entry["entries"] += 1
            entry["tokens"] += tokens or 0
        extra["unattached_logs"] = loose
        listed = ", ".join(f"{v} {e['entries']}" for v, e in sorted(loose.items()))
        notes += (f"Entries logged without a session: {listed} (tokens as logged).",)
    columns = (
        Column("value", "Value"),
        Column("sessions", "Sessions", "int"),
        Column("tokens", "Tokens", "int"),
        Column("cost_usd", "Cost", "usd"),
        Column("avg_cost_usd", "Avg cost", "usd"),
    )
    return Report("Cost per value class", columns, rows, extra=extra, notes=notes)


def compare(groups: Sequence[tuple[str, Sequence[SessionRow]]]) -> Report:
    """Return sessions, total and average tokens and cost per named group, with the change of the average
    tokens from the first group to each other one, in percent. A group without sessions has no average and
    no change (None, shown as "-", with a note), rather than a misleading 0 and -100 %."""
    rows = []
    base: dict[str, Any] | None = None
    for name, members in groups:
        n = len(members)
        tokens = sum(s.all_tokens for s in members)
        cost = sum((s.cost_usd for s in members), 0.0)
        row: dict[str, Any] = {
            "group": name,
            "sessions": n,
            "total_tokens": tokens,
            "avg_tokens": round(tokens / n, 2) if n else None,
            "total_cost_usd": _money(cost),
            "avg_cost_usd": _money(cost / n) if n else None,
        }
        if base is None:
            base = row
            row["avg_tokens_change"] = None
        elif base["avg_tokens"] is None or row["avg_tokens"] is None:
            row["avg_tokens_change"] = None
        else:
            row["avg_tokens_change"] = _change(base["avg_tokens"], row["avg_tokens"])
        rows.append(row)
    empty = [str(r["group"]) for r in rows if not r["sessions"]]
    notes = (f"No sessions for {', '.join(empty)} in this period: nothing to compare.",) if empty else ()
    columns = (
        Column("group", "Group"),
        Column("sessions", "Sessions", "int"),
        Column("total_tokens", "Tokens", "int"),
        Column("avg_tokens", "Avg tokens", "float"),
        Column("total_cost_usd", "Cost", "usd"),
        Column("avg_cost_usd", "Avg cost", "usd"),
        Column("avg_tokens_change", "Avg tokens vs first", "percent"),
    )
    return Report("Compare", columns, tuple(rows), notes=notes)


def _change(before: float, after: float) -> float | None:
    return round(100 * (after - before) / before, 2) if before else None


# ------------------------------------------------------------------------------------------------ render


def _cell(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else ""
    if kind == "id":
        return str(v)  # render_table passes the shortest unique prefix the report computed
    if kind == "time":
        return str(v)[:16].replace("T", " ")
    if kind == "int" and isinstance(v, (int, float)):
        return f"{int(v):,}"
    if kind == "usd" and isinstance(v, (int, float)):
        return f"${v:,.2f}"
    if kind == "minutes" and isinstance(v, (int, float)):
        return f"{v:,.1f} min"
    if kind == "percent" and isinstance(v, (int, float)):
        return f"{v:.1f}%"
    if kind == "float" and isinstance(v, (int, float)):
        return f"{v:,.1f}"
    return str(v)


def _shown(row: dict[str, Any], column: Column) -> Any:
    """Return the value a table cell shows: the row's `_shown_<key>` when it has one (an id's shortest unique
    prefix, a top group with its cost), else the value (an id cut to 8 characters)."""
    if f"_shown_{column.key}" in row:
        return row[f"_shown_{column.key}"]
    v = row.get(column.key)
    return str(v)[:8] if column.kind == "id" and v is not None else v


def _kind(row: dict[str, Any], column: Column) -> str:
    return str(row.get("_kind", column.kind)) if column.key == "value" else column.kind


def render_table(report: Report) -> str:
    """Return the report as an aligned text table (numbers right-aligned), with totals and notes below."""
    cols = report.columns
    body = [[_cell(_shown(r, c), _kind(r, c)) for c in cols] for r in report.rows]
    if report.totals:
        body.append([_cell(report.totals.get(c.key), c.kind) if c.key in report.totals else "" for c in cols])
    header = [c.header for c in cols]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=False)]
    right = [c.kind not in ("text", "id", "time") for c in cols]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = [report.title, line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body[: len(report.rows)]]
    if report.totals:
        out += ["  ".join("-" * w for w in widths), line(body[-1])]
    if not report.rows:
        out.append("(no sessions in this period)")
    out += ["", *report.notes] if report.notes else []
    return "\n".join(out)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def render_json(report: Report) -> str:
    """Return the report as JSON: {"report", "rows", "totals"?, ...extra}."""
    data: dict[str, Any] = {"report": report.title, "rows": [_plain(r) for r in report.rows]}
    if report.totals is not None:
        data["totals"] = report.totals
    data.update(report.extra)
    return json.dumps(data, indent=2, ensure_ascii=False)


def render_csv(report: Report) -> str:
    """Return the rows as CSV with a header of column keys (every key of the rows, in column order first)."""
    keys = [c.key for c in report.columns]
    for r in report.rows:
        keys += [k for k in r if k not in keys and not k.startswith("_")]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in report.rows:
        writer.writerow({k: ("" if v is None else v) for k, v in _plain(r).items()})
    return buf.getvalue()


def render(report: Report, fmt: str) -> str:
    """Return the report in `fmt`: 'table', 'json' or 'csv'."""
    return {"json": render_json, "csv": render_csv}.get(fmt, render_table)(report)


# ------------------------------------------------------------------------------------------------ html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} p.sub{color:#666;margin:0 0 18px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:18px}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:20px} .card span{color:#666;font-size:12px}
section{margin:18px 0} svg .title{font-size:15px;font-weight:600;fill:#222}
svg .tick{font-size:11px;fill:#555} svg .label{font-size:12px;fill:#333} svg .axis{stroke:#999}
"""


def html_page(
    sessions: Sequence[SessionRow],
    models: Sequence[ModelRow],
    tz: tzinfo,
    first: date,
    last: date,
    now: datetime,
) -> str:
    """Return one self-contained HTML page (inline CSS and SVG, no external assets): headline figures and the
    daily cost, by-model and by-repo charts."""
    from html import escape

    from daemon.charts import svg_columns, svg_hbars

    s = summary(sessions, tz).extra
    daily = daily_series(sessions, tz, first, last)
    repos = by_repo(sessions).rows[:15]
    usd: Callable[[float], str] = lambda v: f"${v:,.2f}"  # noqa: E731
    cards = [
        ("Sessions", f"{s['sessions']:,}"),
        ("Cost", usd(s["cost_usd"])),
        ("Tokens", f"{s['all_tokens']:,}"),
        ("Active time", f"{s['active_min'] / 60:,.1f} h"),
        ("Avg cost / session", usd(s["avg_cost_per_session"])),
    ]
    charts = [
        svg_columns([(d["date"][5:], d["cost_usd"]) for d in daily], title="Cost per day (USD)", fmt=usd),
        svg_columns(
            [(d["date"][5:], float(d["tokens"])) for d in daily],
            title="Tokens per day",
            fmt=lambda v: f"{v:,.0f}",
            color="#59a14f",
        ),
        svg_hbars([(m.model, m.cost_usd) for m in models], title="Cost by model (USD)", fmt=usd),
        svg_hbars(
            [(str(r["repo"]), float(r["cost_usd"])) for r in repos], title="Cost by repository (USD)", fmt=usd
        ),
    ]
    card_html = "".join(
        f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in cards
    )
    body = "\n".join(f"<section>{c}</section>" for c in charts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>baton: sessions {first} to {last}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>Claude Code sessions, {first} to {last}</h1>"
        f'<p class="sub">Written by baton at {escape(now.isoformat(timespec="minutes"))}; '
        f"days in {escape(str(tz))}.</p>\n"
        f'<div class="cards">{card_html}</div>\n{body}\n</body></html>\n'
    )
