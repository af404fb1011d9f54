"""Reading the times people give the scheduler: `+90s`, `in 5m`, `18:05`, `6:05pm`, ISO 8601. Pure.

A local clock time that does not exist (inside a daylight-saving gap, e.g. 02:30 on the spring-forward day)
moves to the first minute that does, and `When.note` says so. An ambiguous one (the autumn hour that happens
twice) means its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from daemon.errors import BatonError

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?$", re.I)


@dataclass(frozen=True)
class When:
    """A time read from text: `at` (aware, UTC), and `note`, a sentence for the person when it was moved."""

    at: datetime
    note: str | None = None


def parse_duration(text: str) -> timedelta:
    """Return the duration in `text` ("5m", "90s", "1h30m", "2 hours", "0"). Raise BatonError if malformed."""
    s = text.strip().lower()
    if s in ("0", "0s", "0m"):
        return timedelta(0)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if s[pos : m.start()].strip() or m.group(2) not in _UNITS:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    else:
        if pos and not s[pos:].strip():
            return timedelta(seconds=total)
    raise BatonError(f"not a duration: {text!r}", hint="write it like 90s, 5m, 1h30m or 2 hours")


def local_time(day: date, clock: time, tz: tzinfo) -> When:
    """Return the instant of the wall time `day` `clock` in `tz`.

    A wall time in a DST gap becomes the first minute after the gap (with a note); an ambiguous one its
    first occurrence.
    """
    wall = datetime.combine(day, clock)
    first = wall.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return When(first.astimezone(UTC))
    # In a gap: fold=1 reads the wall time with the offset after the change, fold=0 with the one before;
    # the change itself lies between the two instants. Walk to the first minute whose wall time is later.
    lo, hi = sorted((wall.replace(tzinfo=tz, fold=1).astimezone(UTC), first.astimezone(UTC)))
    t = lo.replace(second=0, microsecond=0)
    while t < hi and t.astimezone(tz).replace(tzinfo=None) < wall:
        t += timedelta(minutes=1)
    shown = t.astimezone(tz)
    note = (
        f"{wall:%Y-%m-%d %H:%M} does not exist in {tz} (the clocks move forward then); "
        f"using {shown:%H:%M}, the first minute after the change"
    )
    return When(t, note)


def parse_when_explained(text: str, now: datetime, tz: tzinfo) -> When:
    """Return the time `text` names, relative to `now` (aware), with a note when it had to be moved.

    Accepted: relative (`+90s`, `in 5m`), a local clock time (`18:05`, `6:05pm`: today, or tomorrow if that
    has passed), or ISO 8601 (`2026-11-23T18:05`, local when it has no offset). Raise BatonError otherwise, or
    if an absolute time is in the past.
    """
    s = text.strip()
    low = s.lower()
    if low.startswith("+") or low.startswith("in "):
        return When((now + parse_duration(low[1:] if low.startswith("+") else low[3:])).astimezone(UTC))
    if low == "now":
        return When(now.astimezone(UTC))
    m = _CLOCK.match(low)
    if m:
        hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if m.group(4):
            if not 1 <= hour <= 12:
                raise BatonError(f"not a clock time: {text!r}")
            hour = hour % 12 + (12 if m.group(4) == "pm" else 0)
        if hour > 23 or minute > 59 or second > 59:
            raise BatonError(f"not a clock time: {text!r}")
        today = now.astimezone(tz).date()
        candidate = local_time(today, time(hour, minute, second), tz)
        if candidate.at <= now:
            candidate = local_time(today + timedelta(days=1), time(hour, minute, second), tz)
        return candidate
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise BatonError(
            f"not a time: {text!r}",
            hint="use an ISO time (2026-11-23T18:05), a clock time (18:05), +90s or 'in 5m'",
        ) from None
    found = When(dt.astimezone(UTC)) if dt.tzinfo is not None else local_time(dt.date(), dt.timetz(), tz)
    if found.at <= now:
        raise BatonError(f"{text!r} is in the past")
    return found


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime:
    """Return the aware UTC time `text` names (see `parse_when_explained`). Raise BatonError if malformed."""
    return parse_when_explained(text, now, tz).at


def display(dt: datetime, tz: tzinfo, now: datetime) -> str:
    """Return `dt` as read in `tz`: `18:30` today, `tomorrow 18:30`, else `Mon 24 Nov 18:30`."""
    local, today = dt.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today + timedelta(days=1):
        return local.strftime("tomorrow %H:%M")
    return local.strftime("%a %d %b %H:%M")
