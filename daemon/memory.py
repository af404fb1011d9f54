"""Project memory: what baton knows of a project across sessions, and the summary a launch prompt carries.

Per project (a directory), one JSON file under `paths.memory_dir`: the sessions the ledger saw in that
directory (id, start, end, tokens), accomplishments, the latest next objectives, key decisions, and the tech
stack read from marker files. Merging and summarising are pure; reading the ledger and the files is the
thin edge.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.logs import get_logger
from daemon.paths import BatonPaths

log = get_logger("baton.memory")
MAX_ITEMS = 200  # per list: memory grows for months; the oldest entries go first

# marker file -> technology it shows
STACK_MARKERS: tuple[tuple[str, str], ...] = (
    ("pyproject.toml", "Python"), ("setup.py", "Python"), ("requirements.txt", "Python"),
    ("package.json", "Node.js"), ("tsconfig.json", "TypeScript"), ("Cargo.toml", "Rust"), ("go.mod", "Go"),
    ("Gemfile", "Ruby"), ("pom.xml", "Java (Maven)"), ("build.gradle", "Java/Kotlin (Gradle)"),
    ("build.gradle.kts", "Kotlin (Gradle)"), ("composer.json", "PHP"), ("mix.exs", "Elixir"),
    ("CMakeLists.txt", "C/C++ (CMake)"), ("Makefile", "Make"), ("Dockerfile", "Docker"),
    ("deno.json", "Deno"), ("pubspec.yaml", "Dart/Flutter"), ("Package.swift", "Swift"),
)  # fmt: skip


@dataclass(frozen=True)
class SessionEntry:
    id: str
    start: str  # ISO 8601 UTC
    end: str
    tokens: int


@dataclass(frozen=True)
class Memory:
    project: str
    sessions: tuple[SessionEntry, ...] = ()
    accomplishments: tuple[str, ...] = ()
    next_objectives: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    tech_stack: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    updated: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Memory:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            project=str(data["project"]),
            sessions=tuple(SessionEntry(**s) for s in data.get("sessions", [])),
            accomplishments=tuple(data.get("accomplishments", [])),
            next_objectives=tuple(data.get("next_objectives", [])),
            decisions=tuple(data.get("decisions", [])),
            tech_stack=tuple(data.get("tech_stack", [])),
            handoffs=tuple(data.get("handoffs", [])),
            updated=str(data.get("updated", "")),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _merge(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    seen = set(old)
    merged = list(old) + [x for x in new if x.strip() and not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]
    return tuple(merged[-MAX_ITEMS:])


def merge_handoff(mem: Memory, h: Any, now: datetime) -> Memory:
    """Return `mem` with the handoff `h` (a daemon.handoff.Handoff) folded in, once."""
    if h.id in mem.handoffs:
        return mem
    return replace(
        mem,
        accomplishments=_merge(mem.accomplishments, tuple(h.accomplished)),
        next_objectives=tuple(o.text for o in h.objectives),
        decisions=_merge(mem.decisions, tuple(h.decisions)),
        handoffs=_merge(mem.handoffs, (h.id,)),
        updated=now.astimezone(UTC).isoformat(),
    )


def merge_sessions(mem: Memory, sessions: list[SessionEntry], stack: list[str], now: datetime) -> Memory:
    """Return `mem` with the ledger's sessions (newer figures win) and the tech stack."""
    by_id = {s.id: s for s in mem.sessions}
    by_id.update({s.id: s for s in sessions})
    ordered = sorted(by_id.values(), key=lambda s: s.start)[-MAX_ITEMS:]
    return replace(
        mem,
        sessions=tuple(ordered),
        tech_stack=_merge(mem.tech_stack, tuple(stack)) if stack else mem.tech_stack,
        updated=now.astimezone(UTC).isoformat(),
    )


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.0f}k" if n >= 10_000 else f"{n / 1000:.1f}k"
    return str(n)


def summary(mem: Memory, limit: int = 5, skip: Iterable[str] = ()) -> str:
    """Return a short Markdown summary of `mem` for a launch prompt (empty when nothing is known).

    Items in `skip` (the launched handoff's own accomplishments and decisions, already in the prompt) are
    left out.
    """
    known = set(skip)
    mem = replace(
        mem,
        accomplishments=tuple(a for a in mem.accomplishments if a not in known),
        decisions=tuple(d for d in mem.decisions if d not in known),
    )
    lines: list[str] = []
    if mem.tech_stack:
        lines.append(f"- Tech stack: {', '.join(mem.tech_stack)}")
    if mem.sessions:
        total = sum(s.tokens for s in mem.sessions)
        last = mem.sessions[-1]
        lines.append(
            f"- Sessions seen: {len(mem.sessions)} ({_tokens(total)} tokens in all); the latest, "
            f"{last.id[:8]}, ran {last.start[:16].replace('T', ' ')} to {last.end[11:16]} UTC "
            f"and used {_tokens(last.tokens)} tokens"
        )
    if mem.accomplishments:
        lines.append("- Done in earlier sessions:")
        lines += [f"  - {a.splitlines()[0]}" for a in mem.accomplishments[-limit:]]
    if mem.decisions:
        lines.append("- Key decisions so far:")
        lines += [f"  - {d.splitlines()[0]}" for d in mem.decisions[-limit * 2 :]]
    if not lines:
        return ""
    return f"Project memory for {Path(mem.project).name} ({mem.project}):\n" + "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- the edge


def memory_path(paths: BatonPaths, project: str) -> Path:
    from daemon.handoff import project_slug

    return paths.memory_dir / f"{project_slug(project)}.json"


def load(paths: BatonPaths, project: str) -> Memory:
    """Return the stored memory of `project` (an empty one if none, or if the file is unreadable)."""
    path = memory_path(paths, project)
    try:
        return Memory.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Memory(project=project)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("project memory unreadable; starting afresh", path=str(path), error=str(exc))
        return Memory(project=project)


def save(paths: BatonPaths, mem: Memory) -> Path:
    from daemon.handoff import write_private

    path = memory_path(paths, mem.project)
    write_private(path, json.dumps(mem.to_json(), indent=2, ensure_ascii=False) + "\n")
    os.chmod(paths.memory_dir, 0o700)
    return path


_TOKENS = (
    "COALESCE(input_tokens,0) + COALESCE(output_tokens,0) + COALESCE(cache_creation_tokens,0) + "
    "COALESCE(cache_read_tokens,0)"
)
# The sessions table (daemon.sessions) holds one row per session with its cwd, times and tokens: a small
# table, read whole. Sessions the refresh has not reached yet come from the ledger itself.
_FROM_SESSIONS = (
    f"SELECT session_id, started_ms, ended_ms, {_TOKENS} FROM sessions "
    "WHERE started_ms IS NOT NULL AND (cwd = ? OR substr(cwd, 1, ?) = ?)"
)
_FROM_EVENTS = (
    f"SELECT session_id, MIN(ts_ms), MAX(ts_ms), SUM({_TOKENS}) FROM usage_events "
    "WHERE session_id IS NOT NULL AND (cwd = ? OR substr(cwd, 1, ?) = ?) {newer} GROUP BY session_id"
)
_NEWER = "AND ts_ms > (SELECT COALESCE(MAX(ended_ms), 0) FROM sessions)"


def ledger_sessions(ledger_db: Path, project: str) -> list[SessionEntry]:
    """Return the ledger's sessions whose working directory is `project` or below (none without a ledger).

    Read from the `sessions` table, plus the ledger's usage after the latest session it holds (the daemon
    refreshes it; the ts_ms index keeps that part small); from `usage_events` alone without that table.
    """
    if not ledger_db.exists():
        return []
    prefix = project.rstrip("/") + "/"
    args = (project, len(prefix), prefix)
    rows: list[tuple[Any, ...]] = []
    try:
        conn = sqlite3.connect(f"file:{ledger_db}?mode=ro", uri=True, timeout=10)
        try:
            try:
                rows = conn.execute(_FROM_SESSIONS, args).fetchall()
                newer = _NEWER
            except sqlite3.OperationalError:  # no sessions table (yet)
                newer = ""
            rows += conn.execute(_FROM_EVENTS.format(newer=newer), args).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.info("ledger not readable for project memory", error=str(exc))
        return []

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

    merged: dict[str, tuple[int, int, int]] = {}
    for sid, a, b, t in rows:
        a0, b0, t0 = merged.get(str(sid), (int(a), int(b or a), 0))
        merged[str(sid)] = (min(a0, int(a)), max(b0, int(b or a)), t0 + int(t or 0))
    return [SessionEntry(sid, iso(a), iso(b), t) for sid, (a, b, t) in merged.items()]


def detect_stack(project: str) -> list[str]:
    """Return the technologies whose marker files sit at the top of `project`."""
    root = Path(project)
    found: list[str] = []
    for marker, tech in STACK_MARKERS:
        if (root / marker).exists() and tech not in found:
            found.append(tech)
    return found


def refresh(paths: BatonPaths, project: str, *, now: datetime, handoff: Any = None) -> Memory:
    """Update the project's memory from the ledger, its files and a handoff if given; save it."""
    mem = load(paths, project)
    mem = merge_sessions(mem, ledger_sessions(paths.ledger_db, project), detect_stack(project), now)
    if handoff is not None:
        mem = merge_handoff(mem, handoff, now)
    save(paths, mem)
    return mem


def summary_for(paths: BatonPaths, project: str, *, now: datetime, skip: Iterable[str] = ()) -> str:
    """Return the memory summary for a launch prompt, refreshed first; empty if memory cannot be read."""
    try:
        return summary(refresh(paths, project, now=now), skip=skip)
    except OSError as exc:
        log.warning("project memory not available", project=project, error=str(exc))
        return ""
