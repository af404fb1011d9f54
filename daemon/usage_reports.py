"""ccusage-compatible usage reports (daily, weekly, monthly, session, blocks) read from the ledger.

This module is on the warm path of `baton report daily --json`: it imports only the standard library and
light parts of baton. Aggregation happens in SQL (local days grouped with DST-correct offsets); Python
only shapes one row per period and model. `--json` output has ccusage 20's structure and field names.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from daemon.errors import BatonError
from daemon.timeutil import iso_ms, local_iso, local_minute, offset_ranges, resolve_zone, zone_label

if TYPE_CHECKING:
    from daemon.blocks import Block

SYNTHETIC = "<synthetic>"  # daemon.blocks.SYNTHETIC (imported only by the blocks report)

COST_SQL = {
    "auto": "COALESCE(e.cost_usd, e.cost_calc, 0)",
    "calculate": "COALESCE(e.cost_calc, 0)",
    "display": "COALESCE(e.cost_usd, 0)",
}
UNPRICED_SQL = {
    "auto": "(e.cost_usd IS NULL AND e.cost_calc IS NULL)",
    "calculate": "(e.cost_calc IS NULL)",
    "display": "0",
}
LABEL_SQL = "CASE WHEN e.speed = 'fast' THEN e.model || '-fast' ELSE e.model END"


class ReportOptions(NamedTuple):
    """What to report: dates are local `YYYYMMDD` strings (inclusive), `zone` an IANA name ('' = local)."""

    since: str | None = None
    until: str | None = None
    zone: str = ""
    project: str | tuple[str, ...] | None = None  # one slug, or the slugs `resolve_project` found
    mode: str = "auto"


# Plain classes rather than dataclasses: a dataclass compiles its methods when the module loads, and this
# module is on the path of every warm report.


class Tokens:
    """Token sums and their cost."""

    __slots__ = ("cache_creation", "cache_read", "cost", "input", "output")

    def __init__(
        self, input: int = 0, output: int = 0, cache_creation: int = 0, cache_read: int = 0, cost: float = 0.0
    ) -> None:
        self.input, self.output, self.cache_creation, self.cache_read = (
            input,
            output,
            cache_creation,
            cache_read,
        )
        self.cost = cost

    def __repr__(self) -> str:
        return (
            f"Tokens(input={self.input}, output={self.output}, cache_creation={self.cache_creation}, "
            f"cache_read={self.cache_read}, cost={self.cost})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokens):
            return NotImplemented
        mine = (self.input, self.output, self.cache_creation, self.cache_read, self.cost)
        return mine == (other.input, other.output, other.cache_creation, other.cache_read, other.cost)

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read

    def add(self, other: Tokens) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_creation += other.cache_creation
        self.cache_read += other.cache_read
        self.cost += other.cost


class PeriodRow:
    """One report row (a day, week, month or session) with its per-model breakdown."""

    __slots__ = ("first_seen", "last_ms", "models", "period", "project", "tokens")

    def __init__(self, period: str) -> None:
        self.period = period
        self.tokens = Tokens()
        self.models: dict[str, Tokens] = {}
        self.first_seen: dict[str, str] = {}
        self.last_ms = 0
        self.project: str | None = None


class Report:
    """A daily, weekly, monthly or session report: its rows and the models that have no price."""

    __slots__ = ("kind", "rows", "unpriced")

    def __init__(self, kind: str, rows: list[PeriodRow], unpriced: list[str]) -> None:
        self.kind, self.rows, self.unpriced = kind, rows, unpriced

    @property
    def totals(self) -> Tokens:
        t = Tokens()
        for r in self.rows:
            t.add(r.tokens)
        return t


def normalise_date(text: str | None, flag: str) -> str | None:
    """Return `YYYYMMDD` for a `YYYY-MM-DD` or `YYYYMMDD` flag value; raise BatonError otherwise."""
    if text is None:
        return None
    digits = text.replace("-", "")
    try:
        if len(digits) != 8 or not digits.isdigit():
            raise ValueError(text)
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise BatonError(
            f"not a date: {text!r} ({flag})", hint="use YYYY-MM-DD or YYYYMMDD, e.g. 2026-03-01"
        ) from None
    return digits


def project_slug(text: str) -> str:
    """Return the folder name Claude Code gives a project directory: every character other than an ASCII
    letter or digit becomes '-' (`/home/me/spotter` -> `-home-me-spotter`)."""
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in text)


def resolve_project(conn: sqlite3.Connection, text: str) -> tuple[str, ...]:
    """Return the ledger's project slugs that `--project text` means; raise BatonError when none matches.

    In order: the exact slug (the folder under projects/); a path (`~/code/spotter`, `.`) as Claude Code
    names its folder; else the project's own directory name, i.e. every slug ending in `-<name>`.
    """
    known = sorted({str(r[0]) for r in conn.execute("SELECT DISTINCT project FROM files") if r[0]})
    if text in known:
        return (text,)
    if "/" in text or text in (".", "..") or text.startswith("~"):
        slug = project_slug(os.path.abspath(os.path.expanduser(text)))
        if slug in known:
            return (slug,)
    tail = "-" + project_slug(text.rstrip("/").rsplit("/", 1)[-1])
    found = tuple(k for k in known if k.endswith(tail))
    if found:
        return found
    shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
    raise BatonError(
        f"no project matches {text!r}",
        hint=f"give its directory name, its path or its folder under projects/ ({shown or 'none yet'})",
    )


# ---- queries -------------------------------------------------------------------------------------


DAY_MS = 86_400_000
BUCKET_MS = 900_000  # daemon.ledger.BUCKET_MS (not imported: it would pull in SQLAlchemy)
_EPOCH = date(1970, 1, 1)


def _tz_cte(conn: sqlite3.Connection, zone_name: str) -> tuple[str, list[int]]:
    lo, hi = conn.execute("SELECT min(ts_ms), max(ts_ms) FROM usage_events").fetchone()
    if lo is None:
        return "tz(lo, hi, off) AS (SELECT 0, 0, 0)", []
    ranges = offset_ranges(resolve_zone(zone_name), int(lo), int(hi))
    values = ", ".join("(?, ?, ?)" for _ in ranges)
    return f"tz(lo, hi, off) AS (VALUES {values})", [v for r in ranges for v in r]


def _local_midnight_ms(day: str, zone_name: str, add_days: int = 0) -> int:
    d = date(int(day[:4]), int(day[4:6]), int(day[6:8])) + timedelta(days=add_days)
    return int(datetime(d.year, d.month, d.day, tzinfo=resolve_zone(zone_name)).timestamp() * 1000)


def _filters(opts: ReportOptions) -> tuple[str, list[Any]]:
    """Return SQL conditions for the options: local days become UTC bounds, so the time index is used."""
    where, params = [], list[Any]()
    if opts.since:
        where.append("e.ts_ms >= ?")
        params.append(_local_midnight_ms(opts.since, opts.zone))
    if opts.until:
        where.append("e.ts_ms < ?")
        params.append(_local_midnight_ms(opts.until, opts.zone, 1))
    if opts.project:
        slugs = (opts.project,) if isinstance(opts.project, str) else opts.project
        where.append(f"e.project IN ({', '.join('?' for _ in slugs)})")
        params.extend(slugs)
    return (" AND " + " AND ".join(where)) if where else "", params


def _grouped(
    conn: sqlite3.Connection, opts: ReportOptions, session: bool
) -> tuple[list[Sequence[Any]], list[str]]:
    """Return rows (group, label, 4 token sums, cost, last ms, unpriced, project, first seen) and the
    unpriced models.

    Periods are grouped by local day number in SQL (integer arithmetic on DST-correct offsets); days roll up
    into weeks and months in Python, one row per day and model.
    """
    where, params = _filters(opts)
    cost, unpriced = COST_SQL[opts.mode], UNPRICED_SQL[opts.mode]
    if session:
        # Sessions list their models in the order ccusage meets them: file path order, then line order.
        # Sums per session, model and file first, so that the path is looked up per file, not per event.
        sql = (
            "SELECT g.grp, g.label, sum(g.i), sum(g.o), sum(g.cc), sum(g.cr), sum(g.cost), max(g.last), "
            "max(g.unpriced), max(g.project), min(f.path || char(1) || substr('000000000' || g.line, -10)) "
            f"FROM (SELECT e.session_id AS grp, {LABEL_SQL} AS label, e.file_id AS file_id, "
            "sum(e.input_tokens) AS i, sum(e.output_tokens) AS o, sum(e.cache_creation_tokens) AS cc, "
            f"sum(e.cache_read_tokens) AS cr, sum({cost}) AS cost, max(e.ts_ms) AS last, "
            f"max({unpriced}) AS unpriced, max(e.project) AS project, min(e.line_no) AS line "
            f"FROM usage_events e WHERE 1 = 1{where} GROUP BY grp, label, e.file_id) g "
            "JOIN files f ON f.id = g.file_id GROUP BY g.grp, g.label"
        )
        rows = conn.execute(sql, params).fetchall()
    else:
        # The 15-minute rollup holds the same sums as the events, a few rows per day.
        cte, tz_params = _tz_cte(conn, opts.zone)
        mode = opts.mode
        r_unpriced = {"auto": "r.unpriced_auto", "calculate": "r.unpriced_calc", "display": "0"}[mode]
        r_cost = {"auto": "r.cost_auto", "calculate": "r.cost_calc", "display": "r.cost_display"}[mode]
        r_where = where.replace("e.ts_ms", f"r.bucket * {BUCKET_MS}").replace("e.project", "r.project")
        start = f"r.bucket * {BUCKET_MS}"
        sql = (
            f"WITH {cte} SELECT ({start} + tz.off) / {DAY_MS} AS grp, NULLIF(r.label, '') AS label, "
            "sum(r.input_tokens), sum(r.output_tokens), sum(r.cache_creation_tokens), "
            f"sum(r.cache_read_tokens), sum({r_cost}), max({start}), max({r_unpriced}), NULL, '' "
            f"FROM usage_rollup r JOIN tz ON {start} >= tz.lo AND {start} < tz.hi WHERE 1 = 1{r_where} "
            "GROUP BY grp, label"
        )
        rows = conn.execute(sql, [*tz_params, *params]).fetchall()
    unpriced_models = sorted({str(r[1]) for r in rows if r[8] and r[1] and r[1] != SYNTHETIC})
    return rows, unpriced_models


def period_key(kind: str, day_number: int) -> str:
    """Return the period label (day, Monday of the week, or month) of a local day number (days since 1970)."""
    d = _EPOCH + timedelta(days=day_number)
    if kind == "weekly":
        return (d - timedelta(days=d.weekday())).isoformat()
    if kind == "monthly":
        return d.isoformat()[:7]
    return d.isoformat()


def period_report(conn: sqlite3.Connection, kind: str, opts: ReportOptions) -> Report:
    """Return the daily, weekly, monthly or session report from the ledger."""
    session = kind == "session"
    rows, unpriced = _grouped(conn, opts, session)
    by_period: dict[str, PeriodRow] = {}
    for grp, label, inp, out, cc, cr, cost, last, _unpriced, project, seen in rows:
        key = str(grp) if session else period_key(kind, int(grp))
        row = by_period.setdefault(key, PeriodRow(key))
        t = Tokens(int(inp), int(out), int(cc), int(cr), float(cost))
        row.tokens.add(t)
        row.last_ms = max(row.last_ms, int(last))
        row.project = row.project or project
        if label and label != SYNTHETIC:
            row.models.setdefault(str(label), Tokens()).add(t)
            row.first_seen[str(label)] = min(row.first_seen.get(str(label), str(seen)), str(seen))
    ordered = list(by_period.values())
    if session:
        ordered.sort(key=lambda r: -r.tokens.cost)
    else:
        ordered.sort(key=lambda r: r.period)
    return Report(kind, ordered, unpriced)


def blocks_report(
    conn: sqlite3.Connection, opts: ReportOptions, now_ms: int, *, by_model: bool = False
) -> tuple[list[Block], list[str]]:
    """Return ccusage's 5-hour blocks over the ledger (local-day and project filters), and unpriced models;
    with `by_model`, each block carries its sums per model."""
    cte, tz_params = _tz_cte(conn, opts.zone)
    where, params = _filters(opts)
    sql = (
        f"WITH {cte} SELECT e.ts_ms, e.input_tokens, e.output_tokens, e.cache_creation_tokens, "
        f"e.cache_read_tokens, {COST_SQL[opts.mode]}, {LABEL_SQL}, {UNPRICED_SQL[opts.mode]} "
        f"FROM usage_events e JOIN tz ON e.ts_ms >= tz.lo AND e.ts_ms < tz.hi WHERE 1 = 1{where} "
        "ORDER BY e.ts_ms, e.file_id, e.line_no"
    )
    from daemon.blocks import BlockEntry, identify_blocks

    entries: list[BlockEntry] = []
    unpriced: set[str] = set()
    for ts, inp, out, cc, cr, cost, label, no_price in conn.execute(sql, [*tz_params, *params]):
        entries.append(BlockEntry(ts, inp, out, cc, cr, float(cost), label))
        if no_price and label and label != SYNTHETIC:
            unpriced.add(label)
    blocks = identify_blocks(entries, now_ms, by_model=by_model)
    resets = conn.execute(
        "SELECT ts_ms, reset_at_ms FROM limit_events WHERE reset_at_ms IS NOT NULL ORDER BY ts_ms"
    ).fetchall()
    return [_with_reset(b, resets) for b in blocks], sorted(unpriced)


def _with_reset(block: Block, resets: list[tuple[int, int]]) -> Block:
    if block.is_gap or block.actual_end_ms is None:
        return block
    for ts, reset in resets:
        if block.start_ms <= ts <= block.actual_end_ms:
            from dataclasses import replace

            return replace(block, limit_reset_ms=reset)
    return block


# ---- ccusage JSON --------------------------------------------------------------------------------


def _breakdowns(row: PeriodRow) -> list[dict[str, Any]]:
    items = sorted(row.models.items(), key=lambda kv: (-kv[1].cost, kv[0]))
    return [
        {
            "cacheCreationTokens": t.cache_creation,
            "cacheReadTokens": t.cache_read,
            "cost": t.cost,
            "inputTokens": t.input,
            "modelName": name,
            "outputTokens": t.output,
        }
        for name, t in items
    ]


def _token_fields(t: Tokens) -> dict[str, Any]:
    return {
        "cacheCreationTokens": t.cache_creation,
        "cacheReadTokens": t.cache_read,
        "inputTokens": t.input,
        "outputTokens": t.output,
        "totalCost": t.cost,
        "totalTokens": t.total,
    }


def report_json(report: Report) -> dict[str, Any]:
    """Return the report as ccusage 20's `--json` object (`{"daily": [...], "totals": {...}}` and so on)."""
    rows = []
    for r in report.rows:
        item = _token_fields(r.tokens)
        item["modelBreakdowns"] = _breakdowns(r)
        item["period"] = r.period
        if report.kind == "session":
            item["agent"] = "claude"
            item["metadata"] = {"lastActivity": iso_ms(r.last_ms)}
            item["modelsUsed"] = sorted(r.models, key=lambda m: r.first_seen[m])
        else:
            item["agent"] = "all"
            item["metadata"] = {"agents": ["claude"]}
            item["modelsUsed"] = sorted(r.models)
        rows.append(item)
    return {report.kind: rows, "totals": _token_fields(report.totals)}


def blocks_json(blocks: list[Block], breakdown: bool = False) -> dict[str, Any]:
    """Return blocks as ccusage 20's `blocks --json` object; with `breakdown`, each block also has
    `modelBreakdowns` shaped as in the daily report (ccusage's blocks have no such field)."""
    return {"blocks": [_block_json(b, breakdown) for b in blocks]}


def _block_json(b: Block, breakdown: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "actualEndTime": iso_ms(b.actual_end_ms) if b.actual_end_ms is not None else None,
        "burnRate": None,
        "costUSD": b.cost,
        "endTime": iso_ms(b.end_ms),
        "entries": b.entries,
        "id": ("gap-" if b.is_gap else "") + iso_ms(b.start_ms),
        "isActive": b.is_active,
        "isGap": b.is_gap,
        "models": list(b.models),
        "projection": None,
        "startTime": iso_ms(b.start_ms),
        "tokenCounts": {
            "cacheCreationInputTokens": b.cache_creation_tokens,
            "cacheReadInputTokens": b.cache_read_tokens,
            "inputTokens": b.input_tokens,
            "outputTokens": b.output_tokens,
        },
        "totalTokens": b.total_tokens,
    }
    if b.burn_rate is not None:
        item["burnRate"] = {
            "costPerHour": b.burn_rate.cost_per_hour,
            "tokensPerMinute": b.burn_rate.tokens_per_minute,
            "tokensPerMinuteForIndicator": b.burn_rate.tokens_per_minute_for_indicator,
        }
    if b.projection is not None:
        item["projection"] = {
            "remainingMinutes": b.projection.remaining_minutes,
            "totalCost": b.projection.total_cost,
            "totalTokens": b.projection.total_tokens,
        }
    if b.limit_reset_ms is not None:
        item["usageLimitResetTime"] = iso_ms(b.limit_reset_ms)
    if breakdown:
        item["modelBreakdowns"] = [
            {
                "cacheCreationTokens": u.cache_creation_tokens,
                "cacheReadTokens": u.cache_read_tokens,
                "cost": u.cost,
                "entries": u.entries,
                "inputTokens": u.input_tokens,
                "modelName": u.model,
                "outputTokens": u.output_tokens,
            }
            for u in b.by_model
        ]
    return item


def dumps(data: Mapping[str, Any]) -> str:
    """Return JSON as ccusage prints it (keys sorted, two-space indent, non-ASCII as is). The stdlib's json,
    already loaded by every report, rather than msgspec, whose import costs a warm report about 10 ms."""
    import json

    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


# ---- tables, CSV and the chart -------------------------------------------------------------------

_HEADERS = ("Input", "Output", "Cache Create", "Cache Read", "Total Tokens", "Cost (USD)")
_FIRST = {"session": "Session", "daily": "Date", "weekly": "Week", "monthly": "Month"}


def _cells(t: Tokens) -> list[str]:
    return [
        f"{t.input:,}",
        f"{t.output:,}",
        f"{t.cache_creation:,}",
        f"{t.cache_read:,}",
        f"{t.total:,}",
        f"${t.cost:,.2f}",
    ]


def plain_number(x: float) -> str:
    """Return a cost for machines: every digit `--json` gives, as a plain decimal (`0.00001`, not `1e-05`)."""
    from decimal import Decimal

    return format(Decimal(repr(x)), "f")


def _plain_cells(t: Tokens) -> list[str]:
    return [str(v) for v in (t.input, t.output, t.cache_creation, t.cache_read, t.total)] + [
        plain_number(t.cost)
    ]


def _short(model: str) -> str:
    return model.removeprefix("claude-")


def _by_cost(models: Mapping[str, Tokens]) -> list[tuple[str, Tokens]]:
    return sorted(models.items(), key=lambda kv: (-kv[1].cost, kv[0]))


def table_rows(report: Report, breakdown: bool) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the readable table (with breakdown: a row per model under each)."""
    header = [_FIRST[report.kind], "Models", *_HEADERS]
    rows: list[list[str]] = []
    for r in report.rows:
        rows.append([r.period, ", ".join(_short(m) for m in sorted(r.models)), *_cells(r.tokens)])
        if breakdown:
            for name, t in _by_cost(r.models):
                rows.append(["  └─", _short(name), *_cells(t)])
    rows.append(["Total", "", *_cells(report.totals)])
    return header, rows


def csv_rows(report: Report, breakdown: bool) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the CSV: plain integers, costs with every digit, full model names.

    With breakdown the second column is `Model`: each period's row leaves it empty and is followed by one
    row per model (the period repeated), so a machine can filter either.
    """
    header = [_FIRST[report.kind], "Model" if breakdown else "Models", *_HEADERS]
    rows: list[list[str]] = []
    for r in report.rows:
        rows.append([r.period, "" if breakdown else ", ".join(sorted(r.models)), *_plain_cells(r.tokens)])
        if breakdown:
            rows.extend([r.period, name, *_plain_cells(t)] for name, t in _by_cost(r.models))
    rows.append(["Total", "", *_plain_cells(report.totals)])
    return header, rows


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 2) -> str:
    """Return rows as an aligned text table: the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("─" * w for w in widths)
    body = [line(r) for r in rows]
    return "\n".join([line(header), rule, *body[:-1], rule, body[-1]]) if body else line(header)


def render_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return the rows of `csv_rows` or `blocks_csv_rows` as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def render_chart(report: Report, width: int = 40) -> str:
    """Return one bar per period, scaled to the largest total tokens, with tokens and cost."""
    if not report.rows:
        return "(no usage)"
    peak = max(r.tokens.total for r in report.rows) or 1
    label_w = max(len(r.period) for r in report.rows)
    lines = []
    for r in report.rows:
        n = r.tokens.total * width / peak
        bar = "█" * int(n) + ("▌" if n - int(n) >= 0.5 else "")
        lines.append(
            f"{r.period.ljust(label_w)}  {bar.ljust(width + 1)} {r.tokens.total:>14,}  ${r.tokens.cost:,.2f}"
        )
    return "\n".join(lines)


def _status(b: Block) -> str:
    return "gap" if b.is_gap else ("ACTIVE" if b.is_active else "")


def blocks_table(
    blocks: list[Block], zone: tzinfo, breakdown: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the readable blocks table, times in `zone` (named in the header); with
    breakdown, a row per model under each block."""
    header = [
        f"Block start ({zone_label(zone)})",
        "Status",
        "Models",
        "Entries",
        "Total Tokens",
        "Cost (USD)",
    ]
    rows = []
    for b in blocks:
        models = ", ".join(_short(m) for m in b.models)
        cells = [str(b.entries), f"{b.total_tokens:,}", f"${b.cost:,.2f}"]
        rows.append([local_minute(b.start_ms, zone), _status(b), models, *cells])
        if breakdown:
            for u in b.by_model:
                rows.append(
                    ["  └─", "", _short(u.model), str(u.entries), f"{u.total_tokens:,}", f"${u.cost:,.2f}"]
                )
    total = sum(b.total_tokens for b in blocks)
    rows.append(
        [
            "Total",
            "",
            "",
            str(sum(b.entries for b in blocks)),
            f"{total:,}",
            f"${sum(b.cost for b in blocks):,.2f}",
        ]
    )
    return header, rows


def blocks_csv_rows(
    blocks: list[Block], zone: tzinfo, breakdown: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Return the header and rows of the blocks CSV: start times as ISO 8601 in `zone` with its offset, the
    four token kinds, plain numbers, full model names; with breakdown, a `Model` column as in `csv_rows`."""
    header = ["Block start", "Status", "Model" if breakdown else "Models", "Entries", *_HEADERS]
    rows: list[list[str]] = []
    sums = Tokens()
    entries = 0
    for b in blocks:
        t = Tokens(b.input_tokens, b.output_tokens, b.cache_creation_tokens, b.cache_read_tokens, b.cost)
        start = local_iso(b.start_ms, zone)
        rows.append(
            [start, _status(b), "" if breakdown else ", ".join(b.models), str(b.entries), *_plain_cells(t)]
        )
        sums.add(t)
        entries += b.entries
        if breakdown:
            for u in b.by_model:
                m = Tokens(
                    u.input_tokens, u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens, u.cost
                )
                rows.append([start, _status(b), u.model, str(u.entries), *_plain_cells(m)])
    rows.append(["Total", "", "", str(entries), *_plain_cells(sums)])
    return header, rows


# ---- the warm path: is there anything new to read? -----------------------------------------------


class QuickSettings(NamedTuple):
    """The few settings reports need, read without pydantic; `exact` False: only full validation will do."""

    timezone: str = ""
    roots: tuple[Path, ...] = ()
    pricing_mode: str = "auto"
    pricing_file: Path | None = None
    exact: bool = True


def quick_settings(config_file: Path, env: Mapping[str, str]) -> QuickSettings:
    """Return the report settings from `config.toml` via tomllib; `exact=False` when env overrides exist."""
    from daemon.paths import setting_variables

    if setting_variables(env):
        return QuickSettings(exact=False)
    if not config_file.exists():
        return QuickSettings()
    import tomllib

    try:
        doc = tomllib.loads(config_file.read_text(encoding="utf-8"))
        general, transcripts, pricing = (doc.get(k, {}) for k in ("general", "transcripts", "pricing"))
        roots = tuple(Path(os.path.expanduser(str(p))) for p in transcripts.get("roots", []))
        file = pricing.get("file")
        return QuickSettings(
            timezone=str(general.get("timezone", "")),
            roots=roots,
            pricing_mode=str(pricing.get("mode", "auto")),
            pricing_file=Path(os.path.expanduser(str(file))) if file else None,
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return QuickSettings(exact=False)


def read_only(db_path: Path) -> sqlite3.Connection:
    """Return a read-only stdlib connection on the ledger (as `daemon.db.connect_fast(readonly=True)`, whose
    module this path does not import)."""
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)


def needs_ingest(db_path: Path, roots: list[Path], prices_digest: str | None) -> bool:
    """True when some transcript under `roots` is new or changed since the ledger read it, or stored costs
    are stale.

    While no directory the last listing walked has changed (the ledger's 'tree'), no transcript can have
    appeared, so only the known files are stat'ed; otherwise the tree is listed again, and if nothing needs
    reading its new shape is stored for the next time.
    """
    if not db_path.exists():
        return True
    from daemon.transcripts import scan, tree_unchanged

    try:
        with closing(read_only(db_path)) as conn:
            stored = {
                r[0]: (r[1], r[2], r[3], r[4])
                for r in conn.execute(
                    "SELECT path, device, inode, size, mtime_ns FROM files WHERE deleted = 0"
                )
            }
            conn.execute("SELECT 1 FROM usage_rollup LIMIT 1")  # a ledger from before the rollup: migrate
            meta = dict(
                conn.execute("SELECT key, value FROM ledger_meta WHERE key IN ('prices_digest', 'tree')")
            )
    except sqlite3.Error:
        return True
    if prices_digest is not None and meta.get("prices_digest") != prices_digest:
        return True
    tree = _stored_tree(meta.get("tree"), roots)
    if tree is not None and tree_unchanged(tree):
        return _changed(stored, stored)
    listing, dirs = scan(roots)
    if _changed(stored, listing):
        return True
    _save_tree(db_path, roots, dirs)
    return False


def _stored_tree(text: str | None, roots: list[Path]) -> dict[str, int] | None:
    if not text:
        return None
    import json

    try:
        doc = json.loads(text)
        if doc["roots"] != [str(r) for r in roots]:
            return None
        return {str(k): int(v) for k, v in doc["dirs"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _changed(stored: Mapping[str, tuple[int, int, int, int]], listing: Iterable[str]) -> bool:
    for path in listing:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stored.get(path) != (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
            return True
    return False


def _save_tree(db_path: Path, roots: list[Path], dirs: dict[str, int]) -> None:
    from daemon.transcripts import TREE_UPSERT, tree_json

    try:
        with closing(sqlite3.connect(db_path, timeout=10.0)) as conn:  # WAL: the ledger is already in it
            conn.execute(TREE_UPSERT, (tree_json(roots, dirs),))
            conn.commit()
    except sqlite3.Error:
        pass  # only an optimisation: the next report lists the tree again


# ---- the warm path: was config.toml validated? ----------------------------------------------------

CONFIG_OK = "config_ok"  # ledger_meta key: the stamp of the config.toml that last passed full validation


def config_stamp(config_file: Path) -> str | None:
    """Return the identity of `config.toml` (inode, size, mtime), or None when there is none."""
    try:
        st = os.stat(config_file)
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def stored_meta(db_path: Path, key: str) -> str | None:
    """Return a `ledger_meta` value, or None when the ledger or the key is missing."""
    if not db_path.exists():
        return None
    try:
        with closing(read_only(db_path)) as conn:
            row = conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def save_meta(db_path: Path, key: str, value: str) -> None:
    """Store a `ledger_meta` value (best effort: a stamp only saves work, so errors are ignored)."""
    try:
        with closing(sqlite3.connect(db_path, timeout=10.0)) as conn:
            conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
            conn.commit()
    except sqlite3.Error:
        pass
