"""Following the transcripts: a watchdog observer that reports which files changed, and nothing else.

- Every transcript root's `projects/` is watched recursively, so folders and files created later are seen.
- A root whose `projects/` does not exist yet is waited for: its nearest existing parent is watched (not
  recursively) and, once `projects/` appears, the recursive watch starts and a full rescan is asked for.
- Only create, modify, move and delete events are subscribed to: the daemon's own reads cause `opened` and
  `closed_no_write` events, which would otherwise wake it in a loop (platform-recipes.md §3).
- Extra single files (the statusline's stamp) can be watched in a directory; other events there are dropped
  in the observer thread (the daemon's own database writes land in the same directory).

The watcher only calls `on_change(path)` (a transcript that changed), `on_change(RESCAN)` or
`on_change(f"{STAMP}:{name}")`; the daemon's loop does the work on its own thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from daemon.logs import get_logger

RESCAN = "\0rescan"
STAMP = "\0stamp"
EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]
# The stamp's folder also hears a touch (attributes only) and a close after writing: an older `baton
# statusline` only touched the stamp, which inotify reports as IN_ATTRIB, not as a modification.
STAMP_EVENTS = [*EVENTS, FileAttribEvent, FileClosedEvent]

log = get_logger("baton.follow")


def candidate_roots(configured: Iterable[Path], env: Mapping[str, str]) -> list[Path]:
    """Return the Claude config dirs to follow, existing or not: the configured ones, else CLAUDE_CONFIG_DIR's
    entries, else `${XDG_CONFIG_HOME:-~/.config}/claude` and `~/.claude`."""
    roots = [Path(os.path.expanduser(str(p))) for p in configured]
    if not roots and env.get("CLAUDE_CONFIG_DIR", "").strip():
        roots = [
            Path(os.path.expanduser(e.strip())) for e in env["CLAUDE_CONFIG_DIR"].split(",") if e.strip()
        ]
        roots = [r.parent if r.name == "projects" else r for r in roots]
    if not roots:
        home = Path(env.get("HOME") or os.path.expanduser("~"))
        roots = [Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "claude", home / ".claude"]
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def _nearest_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.is_dir():
            return parent
    return Path(path.anchor or "/")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: TranscriptWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.dispatch(event)


class TranscriptWatcher:
    """Watches the transcript roots (and optional stamp files) and calls `on_change` from its thread."""

    def __init__(
        self,
        roots: list[Path],
        on_change: Callable[[str], None],
        *,
        stamps: Mapping[Path, str] | None = None,
    ) -> None:
        self.roots = roots
        self.on_change = on_change
        self.stamps = {str(p): name for p, name in (stamps or {}).items()}
        self.observer: BaseObserver = Observer()
        self.handler = _Handler(self)
        self.followed: dict[Path, ObservedWatch] = {}  # projects dir -> recursive watch
        self.waiting: dict[Path, ObservedWatch] = {}  # parent dir -> watch, for roots not there yet
        self.lock = threading.Lock()

    def start(self) -> None:
        """Schedule every watch and start the observer thread."""
        for stamp_dir in {str(Path(p).parent) for p in self.stamps}:
            Path(stamp_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            self.observer.schedule(self.handler, stamp_dir, recursive=False, event_filter=STAMP_EVENTS)
        self.refresh()
        self.observer.start()

    def stop(self, timeout: float = 1.5) -> None:
        """Stop the observer thread (waits at most `timeout` seconds)."""
        self.observer.stop()
        self.observer.join(timeout)

    def followed_dirs(self) -> list[Path]:
        """Return the `projects/` dirs being followed."""
        with self.lock:
            return sorted(self.followed)

    def set_roots(self, roots: list[Path]) -> bool:
        """Follow `roots` from now on (a reloaded configuration): drop the watches of roots no longer
        listed, add the new ones; True if one was added (its files then need a rescan)."""
        with self.lock:
            self.roots = roots
            wanted = {r / "projects" for r in roots}
            for projects in [p for p in self.followed if p not in wanted]:
                self.observer.unschedule(self.followed.pop(projects))
                log.info("unfollowing", dir=str(projects))
        return self.refresh()

    def refresh(self) -> bool:
        """Follow every root whose `projects/` exists now, wait for others; True if one was added."""
        added = False
        with self.lock:
            for root in self.roots:
                added = self._follow_or_wait(root / "projects") or added
            self._drop_unneeded_waits()
        return added

    def _follow_or_wait(self, projects: Path) -> bool:
        """Follow `projects` if it exists, else watch its nearest parent; re-check after each new watch,
        since the folders may be created (mkdir -p) faster than the watches are set."""
        while projects not in self.followed:
            if projects.is_dir():
                self.followed[projects] = self.observer.schedule(
                    self.handler, str(projects), recursive=True, event_filter=EVENTS
                )
                log.info("following", dir=str(projects))
                return True
            parent = _nearest_existing(projects)
            if parent in self.waiting:
                return False
            self.waiting[parent] = self.observer.schedule(
                self.handler, str(parent), recursive=False, event_filter=EVENTS
            )
            log.info("waiting_for_transcripts", dir=str(projects), watching=str(parent))
        return False

    def _drop_unneeded_waits(self) -> None:
        needed = {
            _nearest_existing(r / "projects") for r in self.roots if (r / "projects") not in self.followed
        }
        for parent in [p for p in self.waiting if p not in needed]:
            self.observer.unschedule(self.waiting.pop(parent))

    def dispatch(self, event: FileSystemEvent) -> None:
        """Turn one watchdog event into at most one `on_change` call (runs on the observer thread)."""
        path = os.fsdecode(
            event.dest_path if isinstance(event, FileMovedEvent | DirMovedEvent) else event.src_path
        )
        if path in self.stamps:
            self.on_change(f"{STAMP}:{self.stamps[path]}")
            return
        if isinstance(event, DirCreatedEvent | DirMovedEvent):
            if self._is_waited_parent(path) and self.refresh():
                self.on_change(RESCAN)
            elif self._under_followed(path):
                self._emit_existing(path)  # files written before the new folder's watch was set
            return
        if path.endswith(".jsonl") and not isinstance(event, FileDeletedEvent) and self._under_followed(path):
            self.on_change(path)

    def _is_waited_parent(self, path: str) -> bool:
        with self.lock:
            return any(Path(path).parent == p or Path(path) == p for p in self.waiting)

    def _under_followed(self, path: str) -> bool:
        with self.lock:
            return any(path.startswith(str(p) + os.sep) for p in self.followed)

    def _emit_existing(self, directory: str) -> None:
        for top, _dirs, files in os.walk(directory):
            for name in files:
                if name.endswith(".jsonl"):
                    self.on_change(os.path.join(top, name))
