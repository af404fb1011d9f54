"""Small, pure time helpers shared by the ledger and its reports: ISO timestamps, epoch ms, local days.

Everything here takes its inputs explicitly (no clock, no environment) except `local_zone()`, which names the
system zone once at the edge.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ccusage accepts exactly these shapes: YYYY-MM-DDTHH:MM:SS[.mmm](Z|±HH:MM) (20, 24, 25 or 29 characters).
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?(?:Z|[+-]\d{2}:\d{2})")
_ISO_LENGTHS = frozenset((20, 24, 25, 29))


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HOURS: dict[str, int] = {}  # "YYYY-MM-DDTHH" -> its epoch ms, for Claude Code's own shape


def parse_ts_ms(text: str) -> int | None:
    """Return the UTC epoch ms of an ISO timestamp in one of ccusage's accepted shapes, else None."""
    if len(text) == 24 and text[23] == "Z":  # Claude Code's own shape: no datetime on the hot path
        base = _HOURS.get(text[:13])
        if base is None:
            base = _hour_ms(text)
            if base is None:
                return None
        if text[13] != ":" or text[16] != ":" or text[19] != ".":
            return None
        mm, ss, frac = text[14:16], text[17:19], text[20:23]
        if not (mm.isdigit() and ss.isdigit() and frac.isdigit()):
            return None
        try:
            m, sec, milli = int(mm), int(ss), int(frac)
        except ValueError:  # non-ASCII digits
            return None
        if m > 59 or sec > 59:
            return None
        return base + m * 60_000 + sec * 1000 + milli
    if len(text) not in _ISO_LENGTHS or not _ISO.fullmatch(text):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return int(dt.timestamp() * 1000 + (0.5 if dt.timestamp() >= 0 else -0.5))


def _hour_ms(text: str) -> int | None:
    if not _ISO.fullmatch(text):
        return None
    try:
        day = date.fromisoformat(text[:10]).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    h = int(text[11:13])
    if h > 23:
        return None
    base = (day * 24 + h) * 3_600_000
    if len(_HOURS) < 200_000:
        _HOURS[text[:13]] = base
    return base


def iso_ms(ts_ms: int) -> str:
    """Return `ts_ms` as JavaScript's `toISOString()` would: `2026-02-10T21:58:20.101Z`."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def local_minute(ts_ms: int, zone: tzinfo) -> str:
    """Return `ts_ms` as the wall-clock minute in `zone`: `2026-02-11 06:00`."""
    return datetime.fromtimestamp(ts_ms / 1000, zone).strftime("%Y-%m-%d %H:%M")


def local_iso(ts_ms: int, zone: tzinfo) -> str:
    """Return `ts_ms` as ISO 8601 in `zone` with its offset, to the second: `2026-02-11T06:00:00+09:00`."""
    return datetime.fromtimestamp(ts_ms // 1000, zone).isoformat(timespec="seconds")


def zone_label(zone: tzinfo) -> str:
    """Return a zone's IANA name (`Asia/Tokyo`), `UTC` for UTC, else `local time`."""
    key = getattr(zone, "key", None)
    if key:
        return str(key)
    return "UTC" if zone is UTC else "local time"


def resolve_zone(name: str | None) -> tzinfo:
    """Return the IANA zone `name`, or the local zone when `name` is empty or unknown (as ccusage)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return local_zone()


def local_zone() -> tzinfo:
    """Return the local zone: TZ or the /etc/localtime link when they name an IANA zone, else tzlocal."""
    quick = _named_local_zone()
    if quick is not None:
        return quick
    try:
        import tzlocal

        return tzlocal.get_localzone()
    except Exception:  # pragma: no cover - a broken system zone must not stop a report
        return UTC


def _named_local_zone() -> tzinfo | None:
    import os

    name = os.environ.get("TZ", "").removeprefix(":")
    if not name:
        try:
            target = os.readlink("/etc/localtime")
        except OSError:
            return None
        _, sep, name = target.partition("zoneinfo/")
        if not sep:
            return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def offset_ranges(zone: tzinfo, start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
    """Return [(from_ms, to_ms, utc_offset_ms)] covering [start_ms, end_ms] for `zone`, split at DST changes.

    Offsets are found by stepping a day at a time, then narrowing each change down to the quarter hour, so a
    few years of data give a handful of ranges that SQL can join on to group by local day.
    """

    def offset(ms: int) -> int:
        dt = datetime.fromtimestamp(ms / 1000, tz=zone)
        delta = dt.utcoffset() or timedelta(0)
        return int(delta.total_seconds() * 1000)

    day, quarter = 86_400_000, 900_000
    lo = (start_ms - day) // quarter * quarter  # every real zone changes offset on a UTC quarter hour
    ranges: list[tuple[int, int, int]] = []
    current = offset(lo)
    range_start = lo
    t = lo
    while t < end_ms + day:
        nxt = t + day
        if offset(nxt) != current:
            step = t
            while offset(step + quarter) == current:
                step += quarter
            ranges.append((range_start, step + quarter, current))
            range_start, current = step + quarter, offset(step + quarter)
        t = nxt
    ranges.append((range_start, max(t, end_ms + day) + 1, current))
    return ranges
