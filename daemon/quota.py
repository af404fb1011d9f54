"""Where the quota stands: the 5-hour window and the rolling week, from the best source available.

Pure: every function takes the data and `now` and returns values; nothing here reads a file or the clock.
All arithmetic is on UTC epoch milliseconds, so DST changes and time zones only matter when a time is shown
(`format_local`) or a calendar period is cut (`calendar_periods`).

Sources, best first, each labelled in the snapshot:
1. official `statusline`: `rate_limits` that Claude Code gave its status line (percent and reset time);
2. official `limit_message`: a "you've hit your limit · resets …" line in a transcript (100 %, reset time);
3. official `oauth`: Anthropic's usage endpoint (opt-in);
4. `estimate`: counted tokens in the window against the plan's limit (see daemon.plans for what counts).
An official figure is used while its window is open (its reset time is still ahead). Once that reset time
has passed the figure is stale: it is never used again, and the usage before it no longer counts in the
window that follows (a new window starts fresh at 0 %, whatever the estimate's blocks would say).
The weekly estimate is a rolling 7 days: it has no reset, only the time its oldest usage leaves it.

What an official figure may hold (`plausible_percent`, `plausible_reset`, `usable`): a percent from 0 to 100
and a reset time within [recorded − 8 days, recorded + 1 day] for the 5-hour window (5 hours plus room for a
wrong clock) or [recorded − 8 days, recorded + 8 days] for the week. 8 days back is as far as the quota reads;
anything outside (a reset in milliseconds, 0, year 58901) is not an instant Anthropic could have meant.
`baton statusline` refuses such a field before storing it; `evaluate` skips any figure that is not `usable`,
so a bad row can never stop an evaluation. A figure whose reset was refused (`resets_at_ms` None) still
tells the percent of the current 5-hour window while it is fresh (UNKNOWN_RESET_FRESH_MS) and falls in the
window the ledger's blocks show running (or an official figure's reset tells that window's end).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from daemon.plans import Limits

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
WEEK_MS = 7 * 24 * HOUR_MS
RECENT_MS = 10 * MINUTE_MS  # "burn rate, last 10 minutes"
NEVER_MS = 2**62  # a `now` after every block: the ledger's blocks then compute no burn rate

# (lower bound in percent, name); a percent belongs to the last level whose bound it reaches.
LEVELS: tuple[tuple[float, str], ...] = (
    (0.0, "fresh"),
    (10.0, "excellent"),
    (25.0, "good"),
    (50.0, "moderate"),
    (80.0, "danger"),
    (90.0, "critical"),
    (95.0, "emergency"),
)
OFFICIAL_SOURCES = ("statusline", "limit_message", "oauth")  # best first
DAY_MS = 24 * HOUR_MS
RESET_BEHIND_MS = 8 * DAY_MS  # the oldest plausible reset of a figure, before it was recorded
RESET_AHEAD_MS = {"five_hour": DAY_MS, "seven_day": 8 * DAY_MS}  # the latest, after it was recorded
UNKNOWN_RESET_FRESH_MS = 30 * MINUTE_MS  # how long a figure without a usable reset tells the current window
MIN_MS, MAX_MS = 0, 253_402_300_799_000  # what a datetime holds: 1970 to 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class UsagePoint:
    """One deduplicated API response: when, the tokens that count against a limit, and its cost."""

    ts_ms: int
    tokens: int
    cost_usd: float = 0.0


@dataclass(frozen=True)
class OfficialFigure:
    """A percentage Anthropic reported for `window` (five_hour, seven_day), from one of OFFICIAL_SOURCES."""

    ts_ms: int
    source: str
    window: str
    used_percent: float
    resets_at_ms: int | None


@dataclass(frozen=True)
class Block:
    """The quota's view of a 5-hour block (`daemon.blocks` computes them): its span, first and last usage,
    and the tokens that count."""

    start_ms: int
    end_ms: int
    first_ms: int
    last_ms: int
    tokens: int


@dataclass(frozen=True)
class QuotaSnapshot:
    """Where one window stands at `computed_at`. Times are aware UTC datetimes."""

    window: str  # 'five_hour' | 'seven_day'
    percent: float
    level: str
    source: str  # 'official' | 'estimate'
    source_detail: str  # 'statusline' | 'limit_message' | 'oauth' | 'estimate'
    reset_at: datetime
    window_start: datetime
    limited: bool
    active: bool  # False: no usage in an open window (the next message starts one)
    tokens_used: int
    tokens_limit: int | None
    tokens_remaining: int | None
    cost_usd: float
    messages: int
    burn_rate_recent: float  # counted tokens per minute over the last 10 minutes
    burn_rate_window: float  # counted tokens per minute since the window opened
    runway_minutes: float | None  # at the recent pace (else the window's); None when idle or unknown
    projected_tokens: int  # at the window's end, at the window's pace
    projected_percent: float | None
    limit_label: str
    computed_at: datetime
    official_age_s: float | None = None
    rolling: bool = False  # the weekly estimate: `reset_at` is when its oldest usage leaves the window
    previous_reset: datetime | None = None  # the latest official reset already past: earlier usage is over
    # False: the token limit is a guess (plan unknown). Then tokens_limit, tokens_remaining, runway_minutes
    # and projected_percent are None (token figures are not stated as facts) and `estimated_limit` holds
    # the guess an estimated percent was computed against.
    limit_known: bool = True
    estimated_limit: int | None = None
    weekly: QuotaSnapshot | None = field(default=None)

    def minutes_to_reset(self) -> float:
        """Return the minutes from `computed_at` to `reset_at` (0 when past)."""
        return max(0.0, (self.reset_at - self.computed_at).total_seconds() / 60)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: datetimes as ISO 8601 with offset, `weekly` nested."""
        data = asdict(self)
        for key in ("reset_at", "window_start", "computed_at", "previous_reset"):
            value = getattr(self, key)
            data[key] = None if value is None else value.isoformat()
        data["weekly"] = self.weekly.to_dict() if self.weekly is not None else None
        return data


def plausible_percent(value: Any) -> float | None:
    """Return `value` as a used percent if it is a real number from 0 to 100 (not a bool, str, NaN or inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= 100:
        return None
    return float(value)


def plausible_reset(window: str, resets_at_ms: Any, at_ms: int) -> bool:
    """Return True if `resets_at_ms` (an int) can be `window`'s reset as reported at `at_ms`: within
    [at_ms − RESET_BEHIND_MS, at_ms + RESET_AHEAD_MS[window]] (8 days ahead for a window not listed)."""
    if isinstance(resets_at_ms, bool) or not isinstance(resets_at_ms, int):
        return False
    ahead = RESET_AHEAD_MS.get(window, 8 * DAY_MS)
    return at_ms - RESET_BEHIND_MS <= resets_at_ms <= at_ms + ahead


def usable(f: OfficialFigure) -> bool:
    """Return True if `f` can be evaluated: a percent from 0 to 100, a sane recording time and a reset that
    is None or plausible (see the module's docstring). Stored rows are checked with this before use."""
    if isinstance(f.ts_ms, bool) or not isinstance(f.ts_ms, int):
        return False
    if not MIN_MS + RESET_BEHIND_MS <= f.ts_ms <= MAX_MS - 8 * DAY_MS:  # so any plausible reset is a datetime
        return False
    if plausible_percent(f.used_percent) is None:
        return False
    return f.resets_at_ms is None or plausible_reset(f.window, f.resets_at_ms, f.ts_ms)


def level_for(percent: float) -> str:
    """Return the level name for `percent` (fresh 0-10, excellent 10-25, ..., emergency 95+)."""
    name = LEVELS[0][1]
    for bound, level in LEVELS:
        if percent >= bound:
            name = level
    return name


def floor_unit_ms(window_ms: int) -> int:
    """Return what a window's start is floored to: the UTC hour (ccusage), or for a window shorter than an
    hour (a test configuration) the second, so the window still holds the usage that opened it."""
    return HOUR_MS if window_ms >= HOUR_MS else 1000


def floor_start_ms(ts_ms: int, window_ms: int) -> int:
    """Return where a window opened by usage at `ts_ms` starts (see `floor_unit_ms`)."""
    return ts_ms - ts_ms % floor_unit_ms(window_ms)


def to_datetime(ts_ms: int) -> datetime:
    """Return the aware UTC datetime for epoch milliseconds."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def to_ms(dt: datetime) -> int:
    """Return epoch milliseconds of an aware datetime. Raise ValueError for a naive one."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return round(dt.timestamp() * 1000)


def identify_blocks(points: Sequence[UsagePoint], window_ms: int = 5 * HOUR_MS) -> list[Block]:
    """Return the non-gap blocks of `points` with ccusage's rules (data formats §3), computed by the
    ledger's `daemon.blocks.identify_blocks` (the one implementation), counted tokens as its totals."""
    from daemon import blocks as ledger_blocks

    entries = [ledger_blocks.BlockEntry(p.ts_ms, p.tokens, 0, 0, 0, p.cost_usd, None) for p in points]
    found = ledger_blocks.identify_blocks(
        entries, NEVER_MS, block_ms=window_ms, floor_ms=floor_unit_ms(window_ms)
    )
    return [
        Block(b.start_ms, b.end_ms, b.first_ms or b.start_ms, b.actual_end_ms or b.start_ms, b.total_tokens)
        for b in found
        if not b.is_gap
    ]


def active_block(blocks: Sequence[Block], now_ms: int, window_ms: int = 5 * HOUR_MS) -> Block | None:
    """Return the last block if it is active at `now_ms` (ccusage: less than 5 h since its last entry and
    `now` before its end), else None."""
    if not blocks:
        return None
    b = blocks[-1]
    return b if now_ms - b.last_ms < window_ms and now_ms < b.end_ms else None


def window_totals(
    blocks: Sequence[Block], limit_ts_ms: Iterable[int], now_ms: int
) -> tuple[list[int], list[int]]:
    """Return (totals of completed blocks holding a limit message, totals of all completed blocks)."""
    limits = sorted(limit_ts_ms)
    limited: list[int] = []
    completed: list[int] = []
    for b in blocks:
        if b.end_ms > now_ms:
            continue
        completed.append(b.tokens)
        i = bisect.bisect_left(limits, b.start_ms)
        if i < len(limits) and limits[i] < b.end_ms:
            limited.append(b.tokens)
    return limited, completed


def _rates(points: Sequence[UsagePoint], start_ms: int, now_ms: int) -> tuple[float, float, int, float, int]:
    """Return (recent rate, window rate, tokens, cost, messages) of the points in [start_ms, now_ms].

    `points` are sorted by time: the window and the last 10 minutes are found by bisection, so a week of
    heavy use costs one pass over the window, not several.
    """
    lo = bisect.bisect_left(points, start_ms, key=_ts)
    hi = bisect.bisect_right(points, now_ms, key=_ts)
    in_window = points[lo:hi]
    tokens = sum(p.tokens for p in in_window)
    cost = sum(p.cost_usd for p in in_window)
    recent_lo = bisect.bisect_left(in_window, now_ms - RECENT_MS, key=_ts)
    recent_rate = sum(p.tokens for p in in_window[recent_lo:]) / (RECENT_MS / MINUTE_MS)
    window_rate = 0.0
    if in_window:  # since the window opened (its first message, for the week), at least a minute
        minutes = (now_ms - min(start_ms, in_window[0].ts_ms)) / MINUTE_MS
        window_rate = tokens / max(minutes, 1.0)
    return recent_rate, window_rate, tokens, cost, len(in_window)


def _ts(p: UsagePoint) -> int:
    return p.ts_ms


def _after_last_gap(points: Sequence[UsagePoint], window_ms: int) -> Sequence[UsagePoint]:
    """Return the points from the last gap longer than a window on: blocks restart there, so the earlier
    points cannot change the current block (this keeps a week of history cheap to evaluate)."""
    for i in range(len(points) - 1, 0, -1):
        if points[i].ts_ms - points[i - 1].ts_ms > window_ms:
            return points[i:]
    return points


def last_official_reset(figures: Sequence[OfficialFigure], window: str, now_ms: int) -> int | None:
    """Return the latest reset time of `window` that official figures report as already past, or None.

    Usage before it belongs to a window that has ended: it never counts in the current one.
    """
    past = [
        f.resets_at_ms
        for f in figures
        if f.window == window and f.resets_at_ms is not None and f.resets_at_ms <= now_ms
    ]
    return max(past, default=None)


def best_official(
    figures: Sequence[OfficialFigure], window: str, now_ms: int, since_ms: int | None = None
) -> OfficialFigure | None:
    """Return the most useful official figure for `window` whose reset is still ahead, or None.

    A limit message (100 %) wins while it holds; else the newest figure (the statusline on a tie). A figure
    without a reset counts only when `since_ms` (the start of the window the ledger shows running) is given
    and it was recorded since then and within UNKNOWN_RESET_FRESH_MS; it then takes the reset of an open
    figure of the same window, if there is one.
    """
    open_ = [
        f for f in figures if f.window == window and f.resets_at_ms is not None and f.resets_at_ms > now_ms
    ]
    limits = [f for f in open_ if f.source == "limit_message"]
    if limits:
        return max(limits, key=lambda f: f.ts_ms)
    unknown = []
    if since_ms is not None:
        fresh_from = max(since_ms, now_ms - UNKNOWN_RESET_FRESH_MS)
        unknown = [
            f
            for f in figures
            if f.window == window and f.resets_at_ms is None and fresh_from <= f.ts_ms <= now_ms
        ]
    candidates = open_ + unknown
    if not candidates:
        return None
    best = max(candidates, key=lambda f: (f.ts_ms, f.resets_at_ms is not None, -_source_rank(f.source)))
    if best.resets_at_ms is None and open_:
        best = replace(best, resets_at_ms=max(open_, key=lambda f: f.ts_ms).resets_at_ms)
    return best


def _source_rank(source: str) -> int:
    return OFFICIAL_SOURCES.index(source) if source in OFFICIAL_SOURCES else len(OFFICIAL_SOURCES)


def _percent(tokens: int, cost: float, messages: int, limits: Limits, token_limit: int | None) -> float:
    """Return the estimated percent: the most used of the limited dimensions (0 when none is limited)."""
    shares = []
    if token_limit:
        shares.append(tokens / token_limit * 100)
    if limits.cost_usd:
        shares.append(cost / limits.cost_usd * 100)
    if limits.messages:
        shares.append(messages / limits.messages * 100)
    return max(shares, default=0.0)


def _window(
    *,
    window: str,
    points: Sequence[UsagePoint],
    start_ms: int,
    end_ms: int,
    length_ms: int,
    active: bool,
    official: OfficialFigure | None,
    limits: Limits,
    token_limit: int | None,
    now_ms: int,
    limit_known: bool = True,
) -> QuotaSnapshot:
    """Return one window's snapshot: the official figure when there is one, else the estimate. With
    `limit_known` False, `token_limit` is a guess: it makes the estimated percent, never a token figure."""
    age: float | None = None
    if official is not None:
        if official.resets_at_ms is not None:
            end_ms = official.resets_at_ms
            start_ms = end_ms - length_ms
        active = True
        age = (now_ms - official.ts_ms) / 1000
    counted_from = start_ms if active else now_ms
    recent_rate, window_rate, tokens, cost, messages = _rates(points, counted_from, now_ms)
    if official is not None:
        percent = 100.0 if official.source == "limit_message" else max(0.0, official.used_percent)
        source, detail = "official", official.source
        limited = official.source == "limit_message" or percent >= 100.0
    else:
        percent = _percent(tokens, cost, messages, limits, token_limit)
        source, detail, limited = "estimate", "estimate", False
    known_limit = token_limit if limit_known else None
    remaining = None if known_limit is None else max(0, round(known_limit * (100 - min(percent, 100)) / 100))
    pace = recent_rate or window_rate
    runway = remaining / pace if (remaining is not None and pace > 0) else None
    minutes_left = max(0.0, (end_ms - now_ms) / MINUTE_MS)
    projected = round(tokens + window_rate * minutes_left) if active else tokens
    projected_percent = None
    if known_limit:
        projected_percent = percent + (projected - tokens) / known_limit * 100
    return QuotaSnapshot(
        window=window,
        percent=round(percent, 2),
        level=level_for(percent),
        source=source,
        source_detail=detail,
        reset_at=to_datetime(end_ms),
        window_start=to_datetime(start_ms),
        limited=limited,
        active=active,
        tokens_used=tokens,
        tokens_limit=known_limit,
        tokens_remaining=remaining,
        cost_usd=round(cost, 6),
        messages=messages,
        burn_rate_recent=round(recent_rate, 1),
        burn_rate_window=round(window_rate, 1),
        runway_minutes=None if runway is None else round(runway, 1),
        projected_tokens=projected,
        projected_percent=None if projected_percent is None else round(projected_percent, 2),
        limit_label=limits.label,
        computed_at=to_datetime(now_ms),
        official_age_s=age,
        limit_known=known_limit is not None or token_limit is None,
        estimated_limit=None if limit_known else token_limit,
    )


def evaluate(
    points: Sequence[UsagePoint],
    figures: Sequence[OfficialFigure],
    limits: Limits,
    now: datetime,
    *,
    window_hours: float = 5.0,
) -> QuotaSnapshot:
    """Return the 5-hour snapshot at `now`, with the rolling week under `.weekly`.

    `points` must be sorted by time and should reach back at least a week (older ones are ignored).
    """
    now_ms = to_ms(now)
    window_ms = int(window_hours * HOUR_MS)
    figures = [f for f in figures if usable(f)]  # a bad stored row is skipped, never a crash
    reset_ms = last_official_reset(figures, "five_hour", now_ms)
    lo = 0 if reset_ms is None else bisect.bisect_left(points, reset_ms, key=_ts)
    current = points[lo : bisect.bisect_right(points, now_ms, key=_ts)]  # after the last official reset
    blocks = identify_blocks(_after_last_gap(current, window_ms), window_ms)
    block = active_block(blocks, now_ms, window_ms)
    if block is not None:
        start_ms, end_ms, active = block.start_ms, block.end_ms, True
    else:  # idle: the next message opens a window at the top of its hour
        start_ms = floor_start_ms(now_ms, window_ms)
        end_ms, active = start_ms + window_ms, False
    if reset_ms is not None and start_ms < reset_ms:  # the new window cannot reach back before the reset
        start_ms = reset_ms
    five = _window(
        window="five_hour",
        points=current,
        start_ms=start_ms,
        end_ms=end_ms,
        length_ms=window_ms,
        active=active,
        official=best_official(figures, "five_hour", now_ms, start_ms if active else None),
        limits=limits,
        token_limit=limits.tokens,
        now_ms=now_ms,
        limit_known=limits.known,
    )
    return replace(
        five,
        previous_reset=None if reset_ms is None else to_datetime(reset_ms),
        weekly=evaluate_week(points, figures, limits, now_ms),
    )


def evaluate_week(
    points: Sequence[UsagePoint], figures: Sequence[OfficialFigure], limits: Limits, now_ms: int
) -> QuotaSnapshot:
    """Return the 7-day snapshot: the official figure while its reset is ahead, else the estimate over a
    rolling 7 days (`rolling`: its `reset_at` is when the oldest usage in it leaves the window, or a week
    from now when it holds none). Usage before a past official weekly reset does not count."""
    since = now_ms - WEEK_MS
    figures = [f for f in figures if usable(f)]
    reset_ms = last_official_reset(figures, "seven_day", now_ms)
    if reset_ms is not None:
        since = max(since, reset_ms - 1)
    week = points[bisect.bisect_right(points, since, key=_ts) : bisect.bisect_right(points, now_ms, key=_ts)]
    start_ms = week[0].ts_ms if week else now_ms
    weekly_limits = replace(limits, cost_usd=None, messages=None)
    official = best_official(figures, "seven_day", now_ms)
    snap = _window(
        window="seven_day",
        points=week,
        start_ms=start_ms,
        end_ms=start_ms + WEEK_MS,
        length_ms=WEEK_MS,
        active=bool(week),
        official=official,
        limits=weekly_limits,
        token_limit=limits.weekly_tokens,
        now_ms=now_ms,
        limit_known=limits.weekly_known,
    )
    return replace(
        snap,
        rolling=official is None,
        previous_reset=None if reset_ms is None else to_datetime(reset_ms),
    )


def format_local(dt: datetime, tz: tzinfo | None = None, *, now: datetime | None = None) -> str:
    """Return `dt` as local wall-clock text: "18:05" on `now`'s local day, "Tue 18:05" within the next six
    days, else "Tue 01 Dec 18:05"."""
    local = dt.astimezone(tz)
    if now is None:
        return local.strftime("%a %H:%M")
    days = (local.date() - now.astimezone(tz).date()).days
    if days == 0:
        return local.strftime("%H:%M")
    return local.strftime("%a %H:%M") if 0 < days < 7 else local.strftime("%a %d %b %H:%M")


def calendar_periods(now: datetime, tz: tzinfo) -> dict[str, tuple[datetime, datetime]]:
    """Return {'daily'|'weekly'|'monthly': (start, end)} of the local day, ISO week (Monday) and month holding
    `now`, as aware datetimes in `tz` (a DST day is 23 or 25 hours long)."""
    local = now.astimezone(tz)
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    next_day_date = local.date() + timedelta(days=1)
    next_day = datetime(next_day_date.year, next_day_date.month, next_day_date.day, tzinfo=tz)
    monday = local.date() - timedelta(days=local.weekday())
    next_monday = monday + timedelta(days=7)
    month = datetime(local.year, local.month, 1, tzinfo=tz)
    next_month = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=tz)
    return {
        "daily": (day, next_day),
        "weekly": (
            datetime(monday.year, monday.month, monday.day, tzinfo=tz),
            datetime(next_monday.year, next_monday.month, next_monday.day, tzinfo=tz),
        ),
        "monthly": (month, next_month),
    }
