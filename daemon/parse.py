"""One transcript line (bytes) -> a usage event, a limit event, or a reason to skip it. Pure: no I/O, no
clock.

The rules are ccusage 20's (claude-data-formats.md §3), in its order: the `"usage":{` prefilter, the
`"<key>":null` rule, a typed decode of only the fields used (msgspec: wrong types are rejected, as ccusage's
Rust parser does), the timestamp shapes, and the version / empty-id checks. Usage nested in `progress` lines
(`data.message.message.usage`) counts too. "Usage limit reached" lines of every era (§4) become LimitEvents
whose reset time is resolved to an absolute UTC instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from daemon.timeutil import parse_ts_ms

USAGE_MARKER = b'"usage":{'
_NULL_KEYS = (
    "id",
    "cwd",
    "model",
    "speed",
    "costUSD",
    "version",
    "sessionId",
    "requestId",
    "isApiErrorMessage",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_NULL_KEY_BYTES = frozenset(k.encode() for k in _NULL_KEYS)
_NULL = b'":null'
_API_ERROR_MARKER = b'"isApiErrorMessage":true'
_VERSION = re.compile(r"\d+\.\d+\.\d")
SYNTHETIC_MODEL = "<synthetic>"


# ---- records -----------------------------------------------------------------------------------------------


class UsageEvent(msgspec.Struct, frozen=True, gc=False):
    """One API response's usage as a line wrote it (before dedup); `cache_5m + cache_1h == cache_creation`.

    A frozen msgspec Struct rather than a dataclass: built once per usage line, it costs a third of the time.
    """

    ts_ms: int
    message_id: str | None
    request_id: str | None
    session_id: str | None
    cwd: str | None
    git_branch: str | None
    version: str | None
    model: str | None
    speed: str | None
    is_sidechain: bool
    source: str  # 'assistant' | 'progress'
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_5m_tokens: int
    cache_1h_tokens: int
    cache_read_tokens: int
    cost_usd: float | None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens + self.cache_read_tokens

    @property
    def dedup_key(self) -> str | None:
        """Return ccusage's key `(message.id, requestId or none)`, or None when the line has no message id."""
        if not self.message_id:
            return None
        return f"{self.message_id}\x1f{self.request_id or ''}"


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """A "usage limit reached" line: its kind, the reset it names (UTC epoch ms, None if it gives none)."""

    ts_ms: int
    session_id: str | None
    cwd: str | None
    kind: str  # session | weekly | opus | sonnet | model | monthly_spend | credits | unknown
    reset_at_ms: int | None
    text: str
    usage: UsageEvent | None  # the same line's (zero) usage, counted like any other line


@dataclass(frozen=True, slots=True)
class Skip:
    """A line that yields nothing; `bad` marks malformed input (counted and logged), not merely irrelevant."""

    reason: str
    bad: bool = False


Parsed = UsageEvent | LimitEvent | Skip

NO_USAGE = Skip("no usage")


# ---- typed decoding of only the fields used ----------------------------------------------------------------


class _CacheCreation(msgspec.Struct, gc=False):
    ephemeral_5m_input_tokens: int | None = None
    ephemeral_1h_input_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: _CacheCreation | None = None
    speed: str | None = None


class _Message(msgspec.Struct, gc=False):
    usage: _Usage | None = None
    id: str | None = None
    model: str | None = None


class _Line(msgspec.Struct, gc=False):
    timestamp: str | None = None
    message: _Message | None = None
    requestId: str | None = None
    sessionId: str | None = None
    version: str | None = None
    cwd: str | None = None
    gitBranch: str | None = None
    isSidechain: bool | None = None
    costUSD: float | None = None
    isApiErrorMessage: Any = None  # True on "usage limit reached" lines: the limit parser looks further
    data: msgspec.Raw = msgspec.Raw(b"")  # decoded lazily, only for lines without top-level usage


class _Nested(msgspec.Struct, gc=False):
    timestamp: str | None = None
    requestId: str | None = None
    costUSD: float | None = None
    isSidechain: bool | None = None
    message: _Message | None = None


class _Data(msgspec.Struct, gc=False):
    message: _Nested | None = None


class _TextBlock(msgspec.Struct, gc=False):
    text: Any = None


class _ErrMessage(msgspec.Struct, gc=False):
    content: list[_TextBlock] | str | None = None


class _ErrLine(msgspec.Struct, gc=False):
    timestamp: str | None = None
    sessionId: str | None = None
    cwd: str | None = None
    error: Any = None
    isApiErrorMessage: Any = None
    message: _ErrMessage | None = None


_LINE = msgspec.json.Decoder(_Line)
_DATA = msgspec.json.Decoder(_Data)
_ERR = msgspec.json.Decoder(_ErrLine)


# ---- the line parser ---------------------------------------------------------------------------------------


def parse_line(line: bytes, local: tzinfo) -> Parsed:
    """Return what one transcript line holds. `local` is the zone for limit texts that name none.

    Never raises on bad input: malformed JSON, invalid UTF-8, a non-object line or wrong types give
    Skip(bad=True).
    """
    if USAGE_MARKER not in line:
        return NO_USAGE
    return parse_marked_line(line, local)


def parse_marked_line(line: bytes, local: tzinfo) -> Parsed:
    """`parse_line` for a line already known to hold the usage marker (the ingest prefilter found it)."""
    key = null_key(line)
    if key is not None:
        usage: UsageEvent | Skip = Skip(f'"{key}":null (ccusage skips such lines)')
        api_error = _API_ERROR_MARKER in line
    else:
        try:
            entry = _LINE.decode(line)
        except msgspec.ValidationError as exc:
            usage, api_error = Skip(f"unexpected field type: {exc}", bad=True), _API_ERROR_MARKER in line
        except msgspec.DecodeError as exc:
            usage, api_error = Skip(f"malformed JSON: {exc}", bad=True), _API_ERROR_MARKER in line
        except UnicodeDecodeError:
            usage, api_error = Skip("not valid UTF-8", bad=True), _API_ERROR_MARKER in line
        else:
            usage, api_error = _usage_of(entry), entry.isApiErrorMessage is True
    if not api_error:
        return usage
    limit = _parse_limit(line, local)
    if limit is None:
        return usage
    return LimitEvent(
        limit.ts_ms,
        limit.session_id,
        limit.cwd,
        limit.kind,
        limit.reset_at_ms,
        limit.text,
        usage if isinstance(usage, UsageEvent) else None,
    )


def null_key(line: bytes) -> str | None:
    """Return the first of ccusage's listed keys written as `"<key>":null` anywhere in `line`, else None."""
    pos = line.find(_NULL)
    while pos != -1:
        key = line[line.rfind(b'"', 0, pos) + 1 : pos]
        if key in _NULL_KEY_BYTES:
            return key.decode()
        pos = line.find(_NULL, pos + 6)
    return None


def _usage_of(entry: _Line) -> UsageEvent | Skip:
    msg = entry.message
    if msg is not None and msg.usage is not None:
        return _assistant_event(entry, msg, msg.usage)
    if entry.data:
        return _progress_event(entry)
    return NO_USAGE


def _assistant_event(entry: _Line, msg: _Message, usage: _Usage) -> UsageEvent | Skip:
    if entry.timestamp is None:
        return Skip("usage without a timestamp", bad=True)
    ts = parse_ts_ms(entry.timestamp)
    if ts is None:
        return Skip(f"bad timestamp {entry.timestamp[:40]!r}", bad=True)
    if entry.version is not None and not _VERSION.match(entry.version):
        return Skip(f"bad version {entry.version[:40]!r}", bad=True)
    if "" in (entry.sessionId, entry.requestId, msg.id, msg.model):
        return Skip("empty sessionId, requestId, message.id or model", bad=True)
    return _event(ts, entry.requestId, entry.costUSD, entry.isSidechain, msg, usage, entry, "assistant")


def _progress_event(entry: _Line) -> UsageEvent | Skip:
    try:
        nested = _DATA.decode(entry.data).message
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return NO_USAGE  # other progress kinds carry other shapes under data.message
    if nested is None or nested.message is None or nested.message.usage is None:
        return NO_USAGE
    if nested.timestamp is None or (ts := parse_ts_ms(nested.timestamp)) is None:
        return Skip("progress usage without a valid timestamp", bad=True)
    msg = nested.message
    assert msg.usage is not None
    return _event(ts, nested.requestId, nested.costUSD, nested.isSidechain, msg, msg.usage, entry, "progress")


def _event(
    ts: int,
    request_id: str | None,
    cost: float | None,
    sidechain: bool | None,
    msg: _Message,
    usage: _Usage,
    entry: _Line,
    source: str,
) -> UsageEvent:
    cc = usage.cache_creation
    if cc is not None:
        c5, c1 = cc.ephemeral_5m_input_tokens or 0, cc.ephemeral_1h_input_tokens or 0
    else:  # without a breakdown every cache write is priced as 5m
        c5, c1 = usage.cache_creation_input_tokens, 0
    return UsageEvent(
        ts_ms=ts,
        message_id=msg.id,
        request_id=request_id,
        session_id=entry.sessionId,
        cwd=entry.cwd,
        git_branch=entry.gitBranch,
        version=entry.version,
        model=msg.model,
        speed=usage.speed,
        is_sidechain=bool(sidechain),
        source=source,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_tokens=c5 + c1,
        cache_5m_tokens=c5,
        cache_1h_tokens=c1,
        cache_read_tokens=usage.cache_read_input_tokens,
        cost_usd=cost,
    )


# ---- the ingest's fast path --------------------------------------------------------------------------------

# (ts_ms, message id, requestId, cwd, gitBranch, version, model, speed, is_sidechain, input, output, cache 5m,
# cache 1h, cache read, costUSD)
_S = str | None
Fields = tuple[int, _S, _S, _S, _S, _S, _S, _S, int, int, int, int, int, int, float | None]
_HOURS: dict[str, int] = {}  # "YYYY-MM-DDTHH" -> its epoch ms, filled from parse_ts_ms's answers


def usage_fields(line: bytes) -> Fields | None:
    """The common case of `parse_marked_line`, for the ingest's hot loop: the usage of an ordinary assistant
    line (top-level usage, not an API error, valid timestamp and version, a message id, no empty id) as a
    plain tuple, without building a UsageEvent. None when the line needs the full parser.

    The `"<key>":null` rule (`null_key`) is the caller's: a line with such a null is skipped as no line, never
    counted as bad, so the ingest applies it only to the lines it keeps. For every line accepted here and by
    `null_key`, the full parser's answer is a UsageEvent with these same values (tests/ledger/test_parse.py).
    """
    try:
        entry = _LINE.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None
    msg = entry.message
    if msg is None or msg.usage is None or entry.isApiErrorMessage is True:
        return None
    text = entry.timestamp
    if text is None:
        return None
    ts = _ts_ms(text)
    version = entry.version
    if ts is None or (version is not None and not _VERSION.match(version)):
        return None
    mid, rid, model = msg.id, entry.requestId, msg.model
    if not mid or rid == "" or model == "" or entry.sessionId == "":  # no message id: keyed by its line
        return None
    usage = msg.usage
    cc = usage.cache_creation
    if cc is not None:
        c5, c1 = cc.ephemeral_5m_input_tokens or 0, cc.ephemeral_1h_input_tokens or 0
    else:
        c5, c1 = usage.cache_creation_input_tokens, 0
    return (
        ts,
        mid,
        rid,
        entry.cwd,
        entry.gitBranch,
        version,
        model,
        usage.speed,
        1 if entry.isSidechain else 0,
        usage.input_tokens,
        usage.output_tokens,
        c5,
        c1,
        usage.cache_read_input_tokens,
        entry.costUSD,
    )


def _ts_ms(text: str) -> int | None:
    """`parse_ts_ms`, with Claude Code's own shape (`...T12:34:56.789Z`) answered from the hour it starts
    with once `parse_ts_ms` has accepted that hour; anything else goes to `parse_ts_ms`."""
    if len(text) == 24 and text[13] == ":" and text[16] == ":" and text[19] == "." and text[23] == "Z":
        digits = text[14:16] + text[17:19] + text[20:23]  # MMSSmmm
        if digits.isascii() and digits.isdigit():
            n = int(digits)
            minute, sec, milli = n // 100_000, n // 1000 % 100, n % 1000
            if minute <= 59 and sec <= 59:
                base = _HOURS.get(text[:13])
                if base is not None:
                    return base + minute * 60_000 + sec * 1000 + milli
                ts = parse_ts_ms(text)
                if ts is not None:
                    if len(_HOURS) >= 100_000:  # a long-running daemon: bounded memory
                        _HOURS.clear()
                    _HOURS[text[:13]] = ts - minute * 60_000 - sec * 1000 - milli
                return ts
    return parse_ts_ms(text)


# ---- usage limit messages (§4) -----------------------------------------------------------------------------

_UNIX_RESET = re.compile(r"usage limit reached\|(\d{9,11})")
_HIT = re.compile(r"(?:hit|reached) your (?P<name>.*?)limit", re.IGNORECASE)
_OLD = re.compile(r"(?P<name>5-hour|weekly|opus weekly|sonnet weekly)\s+limit reached", re.IGNORECASE)
_RESETS = re.compile(
    r"resets\s+(?:(?P<mon>[A-Z][a-z]{2})\w*\s+(?P<day>\d{1,2})(?:,|\s+at)?\s+)?"
    r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)(?:\s*\((?P<tz>[A-Za-z0-9_+\-/]+)\))?",
    re.IGNORECASE,
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}


def _parse_limit(line: bytes, local: tzinfo) -> LimitEvent | None:
    try:
        entry = _ERR.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    if entry.isApiErrorMessage is not True or entry.timestamp is None:
        return None
    ts = parse_ts_ms(entry.timestamp)
    if ts is None:
        return None
    text = _first_text(entry.message)
    kind = limit_kind(text)
    if kind is None and entry.error != "rate_limit":
        return None
    return LimitEvent(
        ts_ms=ts,
        session_id=entry.sessionId,
        cwd=entry.cwd,
        kind=kind or "unknown",
        reset_at_ms=reset_at_ms(text, ts, local),
        text=text[:500],
        usage=None,
    )


def _first_text(message: _ErrMessage | None) -> str:
    if message is None or message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    for block in message.content:
        if isinstance(block.text, str):
            return block.text
    return ""


def limit_kind(text: str) -> str | None:
    """Return the kind of limit a message names (session, weekly, opus, ...), or None if it is not one."""
    if _UNIX_RESET.search(text):
        return "session"
    if "out of usage credits" in text.lower():
        return "credits"
    found = _OLD.search(text)
    if found:
        name = found.group("name").lower()
        return {"5-hour": "session", "weekly": "weekly"}.get(name, name.split()[0])
    found = _HIT.search(text)
    if not found:
        return None
    name = found.group("name").strip().lower()
    if name in ("", "usage"):
        return "unknown"
    for word, kind in (("session", "session"), ("monthly spend", "monthly_spend"), ("weekly", "weekly")):
        if word in name:
            return kind
    if "opus" in name:
        return "opus"
    if "sonnet" in name:
        return "sonnet"
    return "model"


def reset_at_ms(text: str, line_ts_ms: int, local: tzinfo) -> int | None:
    """Return the reset instant a limit text names (UTC epoch ms), or None when it names none.

    `|<unix seconds>` is taken as is. Clock text ("resets 9:50pm (Asia/Saigon)", "resets Oct 9, 5pm") is read
    in the quoted zone, else in `local`, as the first such time after the line's own timestamp.
    """
    unix = _UNIX_RESET.search(text)
    if unix:
        return int(unix.group(1)) * 1000
    found = _RESETS.search(text)
    if not found:
        return None
    zone = local
    if found.group("tz"):
        try:
            zone = ZoneInfo(found.group("tz"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = local
    hour = int(found.group("h")) % 12 + (12 if found.group("ampm").lower() == "pm" else 0)
    minute = int(found.group("m") or 0)
    if hour > 23 or minute > 59:
        return None
    ref = datetime.fromtimestamp(line_ts_ms / 1000, tz=zone)
    return _next_occurrence(ref, found.group("mon"), found.group("day"), hour, minute)


def _next_occurrence(ref: datetime, mon: str | None, day: str | None, hour: int, minute: int) -> int | None:
    zone = ref.tzinfo
    if mon is None:
        for add in range(3):
            d = ref.date() + timedelta(days=add)
            candidate = datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone)
            if candidate > ref:
                return int(candidate.timestamp() * 1000)
        return None
    month = _MONTHS.get(mon[:3].lower())
    if month is None or day is None:
        return None
    for year in (ref.year, ref.year + 1):
        try:
            candidate = datetime(year, month, int(day), hour, minute, tzinfo=zone)
        except ValueError:
            continue
        if candidate > ref:
            return int(candidate.timestamp() * 1000)
    return None
