"""`baton hook ...`: what Claude Code runs on its hook events. The CLI dispatches here before click loads.

Claude Code waits for a hook and, for UserPromptSubmit, adds what it prints to the conversation, so this
module imports only the standard library (plus `daemon.paths` and `daemon.snapshot`), answers in a few tens of
milliseconds, and never fails the prompt: every error ends in an exit status of 0 with nothing on stdout.

- `session-end`: reads the SessionEnd JSON on stdin ({"session_id", "cwd", "reason", ...}) and closes the
  session record at once (the daemon would otherwise close it after `sessions.idle_minutes`).
- `user-prompt-submit`: at or past 80 % of the 5-hour window, prints a short note for Claude: the level, the
  tokens and minutes left, and to plan the next session (/plan-next-session). The figure is
  `daemon.snapshot.fast_view`: the running daemon's snapshot, else the newest official figure, else a stopped
  daemon's last snapshot; one not known to be current is given with its age ("As of 42 minutes ago ...").
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import IO, Any, TypeGuard

PLAN_AT_PERCENT = 80.0
STALE_AFTER_S = 300.0  # as daemon.snapshot.STALE_AFTER_S (not imported: planning_note stays pure)
_MAX_STDIN = 1_000_000  # a hook payload is a few hundred bytes; never read an unbounded stream


def _read_payload(stream: IO[str]) -> dict[str, Any]:
    """Return the hook's JSON object from `stream`. Raise ValueError if it is not one."""
    data = json.loads(stream.read(_MAX_STDIN) or "null")
    if not isinstance(data, dict):
        raise ValueError("hook input is not a JSON object")
    return data


def session_end(stdin: IO[str], stderr: IO[str], now_ms: int) -> int:
    """Close the session named in the SessionEnd payload; return 0 (hooks never block Claude Code)."""
    try:
        payload = _read_payload(stdin)
        session_id = payload.get("session_id")
        if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
            raise ValueError("no session_id in the SessionEnd input")
        reason = str(payload.get("reason") or "other")[:40]
        cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else None
        _close(session_id, reason, cwd, now_ms)
    except (ValueError, OSError, sqlite3.Error) as exc:
        print(f"baton hook session-end: {exc}", file=stderr)
    return 0


def _close(session_id: str, reason: str, cwd: str | None, now_ms: int) -> None:
    from daemon.paths import BatonPaths

    db = BatonPaths.from_env().ledger_db
    if not db.exists():
        raise OSError(f"no ledger at {db} yet (is the daemon running?)")
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, no fsync per commit
        conn.execute(
            "INSERT INTO sessions (session_id, cwd, closed_ms, close_reason, updated_ms) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET closed_ms = excluded.closed_ms, "
            "close_reason = excluded.close_reason, cwd = COALESCE(sessions.cwd, excluded.cwd)",
            (session_id, cwd, now_ms, f"hook:{reason}", now_ms),
        )
        conn.commit()
    finally:
        conn.close()


def _reset_at(value: Any) -> datetime | None:
    """Return the reset time of a snapshot (ISO 8601, or epoch seconds/ms), None if absent or impossible."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10_000_000_000 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return None


def _age_words(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{minutes // 60} hours" if minutes < 48 * 60 else f"{minutes // 1440} days"


def planning_note(snapshot: Mapping[str, Any], now: datetime, zone: tzinfo | None = None) -> str:
    """Return the note for Claude when the 5-hour window is at or past 80 %, else "" (also for a stale
    snapshot whose window has already reset). Clock times are in `zone` (default: the snapshot's
    `timezone`, the daemon's `general.timezone`, else the system's). Raise ValueError/TypeError on a
    malformed snapshot.

    A figure not known to be current (`age_s` of STALE_AFTER_S or more, from `daemon.snapshot.fast_view`)
    is given as of when it was true; percent only grows within a window, so it is still a floor."""
    if snapshot.get("percent") is None:  # only the week is known
        return ""
    percent = float(snapshot["percent"])
    if percent < PLAN_AT_PERCENT:
        return ""
    reset_at = _reset_at(snapshot.get("reset_at"))
    if reset_at is not None and reset_at <= now:
        return ""
    level = str(snapshot.get("level") or "").upper() or "DANGER"
    age = snapshot.get("age_s")
    if _number(age) and age >= STALE_AFTER_S:
        why = (
            "baton's daemon is not running, so it may be higher now"
            if snapshot.get("daemon_stopped")
            else "the latest figure baton has"
        )
        parts = [
            f"[baton] As of {_age_words(age)} ago ({why}), the 5-hour usage window was at "
            f"{percent:.0f}% ({level})."
        ]
    else:
        parts = [f"[baton] The 5-hour usage window is at {percent:.0f}% ({level})."]
    remaining = _tokens_left(snapshot)
    runway = snapshot.get("runway_minutes")
    if remaining is not None:
        pace = f" (~{int(runway)} min at the current pace)" if _number(runway) else ""
        parts.append(f"About {remaining:,} tokens left{pace}.")
    if reset_at is not None:
        minutes = int((reset_at - now).total_seconds() // 60)
        if zone is None:
            from daemon.zones import display_zone

            tz_name = snapshot.get("timezone")
            zone = display_zone(tz_name if isinstance(tz_name, str) else None)
        clock = reset_at.astimezone(zone).strftime("%H:%M")
        parts.append(f"The window resets in {minutes} minutes ({clock}).")
    if percent >= 100 or snapshot.get("limited"):
        parts.append("The limit is reached: save the state of the work now.")
    else:
        parts.append(
            "Keep to small tasks, finish the current one, and plan the next session with /plan-next-session."
        )
    return " ".join(parts)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tokens_left(snapshot: Mapping[str, Any]) -> int | None:
    remaining = snapshot.get("tokens_remaining")
    if _number(remaining):
        return max(0, int(remaining))
    used, limit = snapshot.get("tokens_used"), snapshot.get("tokens_limit")
    if _number(used) and _number(limit) and limit > 0:
        return max(0, int(limit - used))
    return None


def user_prompt_submit(stdin: IO[str], stdout: IO[str], now: datetime) -> int:
    """Print the planning note when the window is at or past 80 %; print nothing otherwise or on any error."""
    try:
        import importlib

        from daemon.paths import BatonPaths

        snapshot_module = importlib.import_module("daemon.snapshot")  # the daemon's (engineer B's) file

        stdin.read(_MAX_STDIN)  # Claude Code writes the prompt; drain it so it never blocks on a full pipe
        data = snapshot_module.fast_view(BatonPaths.from_env(), now)
        if not isinstance(data, Mapping):
            return 0
        note = planning_note(data, now)
        if note:
            stdout.write(note + "\n")
            stdout.flush()
    except Exception:  # a hook must never fail the prompt
        pass
    return 0


HOOKS: dict[str, Callable[[], int]] = {
    "session-end": lambda: session_end(sys.stdin, sys.stderr, int(time.time() * 1000)),
    "user-prompt-submit": lambda: user_prompt_submit(sys.stdin, sys.stdout, datetime.now(UTC)),
}


def main(argv: list[str]) -> int:
    """Run the hook named in `argv[0]` and return its exit status; anything else shows the help (click)."""
    if argv and argv[0] in HOOKS:  # extra arguments are ignored: a hook must not fail on them
        return HOOKS[argv[0]]()
    from daemon.commands.hook import hook

    try:
        hook.main(args=argv, prog_name="baton hook", standalone_mode=False)
    except Exception as exc:  # click usage errors; never 2, which Claude Code takes as "block the prompt"
        print(f"baton hook: {exc}", file=sys.stderr)
        return 1
    return 0
