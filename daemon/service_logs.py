"""Reading baton's own log file for people: `baton service logs` where there is no journal.

The log file holds one JSON object per line (daemon/logs.py). Each becomes one readable line: local time,
level, event, then the other fields as key=value. Libraries' routine lines (APScheduler's "Added job ..."
and the like, watchdog's debug output) are hidden unless asked for; their warnings and errors always show.
Pure: lines in, lines out; the edge (`follow`) only reads the file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

# Libraries log through stdlib logging; their records carry a logger name when the log has one, and
# otherwise are recognised by their message. Baton's own events are structlog keys (`caught_up`, `alert`).
_LIBRARY_LOGGERS = ("apscheduler", "watchdog", "urllib3", "asyncio", "sqlalchemy", "tzlocal", "filelock")
_LIBRARY_MESSAGES = re.compile(
    r"^(Added job |Removed job |Running job |Job \".*\" executed successfully|Adding job tentatively"
    r"|Scheduler started|Scheduler has been shut down|Resumed scheduler job processing"
    r"|Paused scheduler job processing|Looking for jobs to run|Next wakeup is due|No jobs; waiting"
    r"|Run time of job |Removed job store |Added job store |Removed all jobs)"
)
_QUIET_LEVELS = {"debug", "info", "notset"}
_FIRST_KEYS = ("timestamp", "level", "event", "logger")


@dataclass(frozen=True)
class LogLine:
    """One parsed line of the log file: `raw` when it was not JSON."""

    fields: dict[str, Any]
    raw: str


def parse(line: str) -> LogLine:
    """Return the line's fields, or an empty dict with the raw text when it is not a JSON object."""
    try:
        data = json.loads(line)
    except ValueError:
        return LogLine({}, line.rstrip("\n"))
    return LogLine(data if isinstance(data, dict) else {}, line.rstrip("\n"))


def is_library_noise(entry: LogLine) -> bool:
    """Return True for a library's routine (debug/info) line; warnings and errors are never noise."""
    f = entry.fields
    if not f or str(f.get("level", "info")).lower() not in _QUIET_LEVELS:
        return False
    logger = str(f.get("logger") or f.get("logger_name") or "")
    if logger:
        return logger.split(".")[0] in _LIBRARY_LOGGERS
    return bool(_LIBRARY_MESSAGES.match(str(f.get("event", ""))))


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return repr(text) if isinstance(v, str) and (" " in text or not text) else text


def _when(stamp: Any, zone: tzinfo | None) -> str:
    try:
        ts = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)[:19]
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def render(entry: LogLine, zone: tzinfo | None = None) -> str:
    """Return one readable line: `time  level  event  key=value ...` (a traceback on the lines after)."""
    f = entry.fields
    if not f:
        return entry.raw
    exception = f.get("exception")
    extra = [f"{k}={_value(v)}" for k, v in f.items() if k not in _FIRST_KEYS and k != "exception"]
    head = (
        f"{_when(f.get('timestamp', ''), zone)}  {str(f.get('level', '')).lower():<7}  {f.get('event', '')}"
    )
    text = "  ".join([head, *extra]) if extra else head
    if exception:
        text += "\n" + "\n".join(f"    {line}" for line in str(exception).rstrip().splitlines())
    return text


def readable(lines: Iterable[str], *, everything: bool = False, zone: tzinfo | None = None) -> Iterator[str]:
    """Return the readable form of `lines`, without library noise unless `everything`."""
    for line in lines:
        if not line.strip():
            continue
        entry = parse(line)
        if everything or not is_library_noise(entry):
            yield render(entry, zone)


def tail(
    path: Path, count: int, *, everything: bool = False, zone: tzinfo | None = None
) -> tuple[list[str], int]:
    """Return the last `count` readable lines of the log at `path` (after filtering), and the byte offset
    where reading stopped (where `follow` goes on)."""
    with path.open("rb") as handle:
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    text = complete.decode("utf-8", errors="replace").splitlines()
    shown = list(readable(text, everything=everything, zone=zone))
    return (shown[-count:] if count > 0 else []), len(complete)


def follow(
    path: Path,
    echo: Callable[[str], None],
    *,
    everything: bool = False,
    zone: tzinfo | None = None,
    poll_s: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
    start: int | None = None,
) -> None:
    """Print lines appended to `path` from byte `start` (default: its end) as they come, until `stop()`;
    follows the file across rotation."""
    handle = path.open(encoding="utf-8", errors="replace")
    if start is None:
        handle.seek(0, os.SEEK_END)
    else:
        handle.seek(start)
    inode = os.fstat(handle.fileno()).st_ino
    partial = ""
    try:
        while not stop():
            chunk = handle.read()
            if chunk:
                partial += chunk
                *complete, partial = partial.split("\n")
                for text in readable(complete, everything=everything, zone=zone):
                    echo(text)
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = False
            if rotated:
                handle.close()
                handle = path.open(encoding="utf-8", errors="replace")
                inode = os.fstat(handle.fileno()).st_ino
                continue
            time.sleep(poll_s)
    finally:
        handle.close()
