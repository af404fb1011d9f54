"""Exports of the session records: sessions.json (sessions, by_day, totals), TRACKER.md and a JSONL log.

The builders are pure (session rows and a zone in, text or JSON data out); `append_jsonl` is the one edge
here, and it never writes a session twice: the ids already in the file are read first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from daemon.errors import BatonError
from daemon.session_reports import SessionRow, local


def _min(ms: int) -> float:
    return round(ms / 60_000, 1)


def session_entry(s: SessionRow, tz: tzinfo) -> dict[str, Any]:
    """Return one session in the sessions.json shape (times ISO 8601 with the zone's offset)."""
    return {
        "session_id": s.session_id,
        "started": local(s.started_ms, tz).isoformat(timespec="seconds"),
        "ended": local(s.ended_ms, tz).isoformat(timespec="seconds"),
        "duration_wall_min": _min(s.wall_ms),
        "duration_active_min": _min(s.active_ms),
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cache_read_tokens": s.cache_read_tokens,
        "cache_create_tokens": s.cache_creation_tokens,
        "total_tokens": s.total_tokens,
        "all_tokens": s.all_tokens,
        "messages": s.messages,
        "cost_usd": round(s.cost_usd, 4),
        "model": s.model,
        "day": s.day(tz).isoformat(),
    }


def _main_model(sessions: Iterable[SessionRow]) -> str | None:
    tokens: dict[str, int] = {}
    for s in sessions:
        if s.model:
            tokens[s.model] = tokens.get(s.model, 0) + s.all_tokens
    return min(tokens, key=lambda m: (-tokens[m], m)) if tokens else None


def sessions_json(sessions: Sequence[SessionRow], tz: tzinfo) -> dict[str, Any]:
    """Return {"sessions", "by_day", "totals"} for `sessions` (each counted on the day it started)."""
    entries = [session_entry(s, tz) for s in sorted(sessions, key=lambda s: (s.started_ms, s.session_id))]
    by_day: dict[str, dict[str, Any]] = {}
    for e in entries:
        d = by_day.setdefault(e["day"], {"sessions": 0, "cost_usd": 0.0, "active_min": 0.0, "messages": 0})
        d["sessions"] += 1
        d["cost_usd"] += e["cost_usd"]
        d["active_min"] += e["duration_active_min"]
        d["messages"] += e["messages"]
    for d in by_day.values():
        d["cost_usd"], d["active_min"] = round(d["cost_usd"], 4), round(d["active_min"], 1)
    totals = {
        "total_sessions": len(entries),
        "total_cost_usd": round(sum(s.cost_usd for s in sessions), 4),
        "total_active_min": _min(sum(s.active_ms for s in sessions)),
        "total_wall_min": _min(sum(s.wall_ms for s in sessions)),
        "total_input_tokens": sum(s.input_tokens for s in sessions),
        "total_output_tokens": sum(s.output_tokens for s in sessions),
        "total_cache_read_tokens": sum(s.cache_read_tokens for s in sessions),
        "total_cache_create_tokens": sum(s.cache_creation_tokens for s in sessions),
        "total_all_tokens": sum(s.all_tokens for s in sessions),
        "total_messages": sum(s.messages for s in sessions),
        "model": _main_model(sessions),
    }
    return {"sessions": entries, "by_day": dict(sorted(by_day.items())), "totals": totals}


def tracker_markdown(sessions: Sequence[SessionRow], tz: tzinfo, now: datetime) -> str:
    """Return TRACKER.md: totals, a daily table (newest first) and averages per session and per active day."""
    data = sessions_json(sessions, tz)
    t = data["totals"]
    n = t["total_sessions"]
    days = len(data["by_day"])
    lines = [
        "# Claude Code usage tracker",
        "",
        f"_Written by baton on {now.isoformat(timespec='minutes')}; days in {tz}._",
        "",
        "## Totals",
        "",
        "| Sessions | Cost | Tokens | Messages | Active | Wall |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {n:,} | ${t['total_cost_usd']:,.2f} | {t['total_all_tokens']:,} | {t['total_messages']:,} "
        f"| {_hours(t['total_active_min'])} | {_hours(t['total_wall_min'])} |",
        "",
        "## Daily log",
        "",
        "| Day | Sessions | Cost | Active | Messages |",
        "|---|---:|---:|---:|---:|",
    ]
    for day, d in sorted(data["by_day"].items(), reverse=True):
        lines.append(
            f"| {day} | {d['sessions']} | ${d['cost_usd']:,.2f} | {_hours(d['active_min'])} "
            f"| {d['messages']:,} |"
        )
    lines += [
        "",
        "## Averages",
        "",
        f"- Per session: ${_avg(t['total_cost_usd'], n):,.2f}, {_avg(t['total_all_tokens'], n):,.0f} tokens, "
        f"{_avg(t['total_active_min'], n):,.1f} active minutes, {_avg(t['total_messages'], n):,.1f} messages",
        f"- Per day with sessions: ${_avg(t['total_cost_usd'], days):,.2f}, {_avg(n, days):,.1f} sessions, "
        f"{_avg(t['total_active_min'], days):,.1f} active minutes",
        "",
    ]
    return "\n".join(lines)


def _avg(total: float, n: int) -> float:
    return total / n if n else 0.0


def _hours(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60}h{whole % 60:02d}" if whole >= 60 else f"{whole} min"


def jsonl_entry(s: SessionRow, tz: tzinfo) -> dict[str, Any]:
    """Return one finished session as a JSONL record: the sessions.json fields plus repo, branch, category,
    models, value, tags and notes."""
    return {
        **session_entry(s, tz),
        "models": list(s.models),
        "cwd": s.cwd,
        "repo": s.git_repo,
        "branch": s.git_branch,
        "category": s.category,
        "value": s.value,
        "tags": list(s.tags),
        "notes": list(s.notes),
    }


def existing_ids(path: Path) -> set[str]:
    """Return the session ids already in the JSONL file at `path` (lines that are not JSON are skipped)."""
    seen: set[str] = set()
    if not path.exists():
        return seen
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("session_id"), str):
                seen.add(data["session_id"])
    return seen


def append_jsonl(path: Path, sessions: Sequence[SessionRow], tz: tzinfo) -> int:
    """Append one line per finished (closed) session not yet in the file; return how many were written.
    Raise BatonError if the file cannot be read or written."""
    try:
        seen = existing_ids(path)
        new = [s for s in sessions if s.closed and s.session_id not in seen]
        if not new:
            return 0
        text = "".join(json.dumps(jsonl_entry(s, tz), ensure_ascii=False) + "\n" for s in new)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            if fh.tell() > 0 and not _ends_with_newline(path):
                fh.write("\n")
            fh.write(text)
    except OSError as exc:
        raise BatonError(f"cannot append to {path}: {exc.strerror}") from exc
    return len(new)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
