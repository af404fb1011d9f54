"""`baton statusline`: the line Claude Code shows under its prompt, and a source of official figures.

Claude Code runs the configured command on every refresh and writes a JSON object to its stdin (see
claude-data-formats.md §5). When that object carries `rate_limits`, they are recorded in `official_figures`
and the daemon is woken through a stamp file. The line printed comes from those figures, else from
`daemon.snapshot.fast_view`: the running daemon's snapshot, or the newest official figure recorded (by any
session), or a stopped daemon's last snapshot; whatever is not known to be current says how old it is
("· 42 min old"). Enable it in `~/.claude/settings.json`:

    "statusLine": {"type": "command", "command": "baton statusline"}

Fast path: stdlib only (no click, SQLAlchemy or pydantic); whatever arrives on stdin, it prints a line and
exits 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from daemon.quota import OfficialFigure, level_for, to_datetime
from daemon.snapshot import STALE_AFTER_S

MAX_STDIN = 4 * 1024 * 1024


def parse_stdin(raw: bytes) -> dict[str, Any]:
    """Return the statusline JSON object, or {} for anything that is not one."""
    try:
        data = json.loads(raw.decode("utf-8", "replace")) if raw.strip() else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError: fall back to the system's zone
        return None


def _clock(ts: datetime, tz: tzinfo | None, now: datetime) -> str:
    local = ts.astimezone(tz)
    return (
        local.strftime("%H:%M") if local.date() == now.astimezone(tz).date() else local.strftime("%a %H:%M")
    )


def render_official(figures: list[OfficialFigure], now: datetime, tz: tzinfo | None) -> str | None:
    """Return the line for official figures (5-hour first), or None when there is no 5-hour figure."""
    now_ms = int(now.timestamp() * 1000)
    by_window = {f.window: f for f in figures if f.resets_at_ms is None or f.resets_at_ms > now_ms}
    five = by_window.get("five_hour")
    if five is None:
        return None
    parts = [f"5h {five.used_percent:.0f}% {level_for(five.used_percent)}"]
    if five.resets_at_ms:
        parts.append(f"resets {_clock(to_datetime(five.resets_at_ms), tz, now)}")
    week = by_window.get("seven_day")
    if week is not None:
        parts.append(f"7d {week.used_percent:.0f}%")
    return " · ".join(parts) + " · official"


def age_text(seconds: float) -> str:
    """Return a short age: "7 min", "2 h", "3 d"."""
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} d"


def _age_part(view: Mapping[str, Any]) -> list[str]:
    age = view.get("age_s")
    if isinstance(age, bool) or not isinstance(age, int | float) or age < STALE_AFTER_S:
        return ["daemon stopped"] if view.get("daemon_stopped") else []
    stopped = ", daemon stopped" if view.get("daemon_stopped") else ""
    return [f"{age_text(age)} old{stopped}"]


def _week_part(weekly: Any) -> list[str]:
    if isinstance(weekly, Mapping) and isinstance(weekly.get("percent"), int | float):
        week_approx = "" if weekly.get("source") == "official" else "~"
        return [f"7d {week_approx}{weekly['percent']:.0f}%"]
    return []


def render_snapshot(snap: Mapping[str, Any], now: datetime, tz: tzinfo | None) -> str | None:
    """Return the line for a `daemon.snapshot.fast_view` (or a bare snapshot), or None when it is unusable.

    A window whose reset has passed is never shown as current ("window reset"); a view that is not known to
    be current ends with its age."""
    percent = snap.get("percent")
    weekly = snap.get("weekly")
    if percent is None:  # only the week is known
        week = _week_part(weekly)
        if not week or not isinstance(weekly, Mapping):
            return None
        return " · ".join([*week, str(weekly.get("source", "estimate")), *_age_part(weekly)])
    try:
        percent = float(percent)
        raw_reset = snap.get("reset_at")
        reset = None if raw_reset is None else datetime.fromisoformat(str(raw_reset))
        if reset is not None and reset.tzinfo is None:
            return None
    except (TypeError, ValueError):
        return None
    if reset is not None and reset <= now:
        return "5h 0% fresh · window reset"
    approx = "" if snap.get("source") == "official" else "~"
    if snap.get("active") is False:  # no window runs: nothing used, no reset to show
        parts = ["5h 0% · no window yet"]
    else:
        head = "5h LIMIT" if snap.get("limited") else f"5h {approx}{percent:.0f}% {snap.get('level', '')}"
        parts = [head.rstrip()]
        if reset is not None:
            parts.append(f"resets {_clock(reset, tz, now)}")
    parts += _week_part(weekly)
    parts.append(str(snap.get("source", "estimate")))
    return " · ".join(parts + _age_part(snap))


def _record(figures: list[OfficialFigure], session_id: Any) -> None:
    """Store the figures and touch the daemon's stamp when they changed (errors are swallowed: fast path)."""
    from daemon import official
    from daemon.db import connect_fast
    from daemon.paths import BatonPaths

    paths = BatonPaths.from_env()
    with connect_fast(paths.ledger_db) as conn:
        sid = session_id if isinstance(session_id, str) and len(session_id) <= 200 else None
        changed = official.record(conn, figures, sid)
    if changed:
        poke(paths.data_dir / official.STAMP_NAME, figures[0].ts_ms)


def poke(stamp: Path, now_ms: int) -> None:
    """Wake the daemon: write the time into its stamp file (a write is a modification on every platform's
    file watcher, where a bare touch is only an attribute change). Never blocks on the daemon."""
    fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{now_ms}\n".encode())
    finally:
        os.close(fd)


def line_for(data: Mapping[str, Any], now: datetime) -> str:
    """Return the status line for the statusline input `data`, recording its official figures on the way."""
    from daemon import official, snapshot
    from daemon.paths import BatonPaths

    figures = official.from_rate_limits(data.get("rate_limits"), int(now.timestamp() * 1000))
    if figures:
        # a locked or read-only database must not break Claude Code's status bar
        with contextlib.suppress(Exception):
            _record(figures, data.get("session_id"))
    paths = BatonPaths.from_env()
    if any(f.window == "five_hour" for f in figures):  # this input's own figures: current by definition
        snap = snapshot.read(paths)
        line = render_official(figures, now, _zone(snap.get("timezone")) if snap else None)
        if line is not None:
            return line
    view = snapshot.fast_view(paths, now)
    line = None if view is None else render_snapshot(view, now, _zone(view.get("timezone")))
    return line or "baton · no quota data yet"


def main(argv: list[str] | None = None) -> int:
    """Read the statusline JSON on stdin, print one line, return 0 (always)."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        raw = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read(MAX_STDIN)
    except (OSError, ValueError):
        raw = b""
    now = datetime.now().astimezone()
    try:
        line = line_for(parse_stdin(raw), now)
    except Exception:
        line = "baton · status unavailable"
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass
    return 0


def __getattr__(name: str) -> Any:
    """Build the click `command` only when asked (`baton --help`): the fast path never imports click."""
    if name != "command":
        raise AttributeError(name)
    import click

    @click.command(name="statusline", help=__doc__, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        sys.exit(main(list(args)))

    return command
