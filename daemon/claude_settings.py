"""Add baton's hooks (SessionEnd, UserPromptSubmit) and status line to Claude Code's `settings.json`.

The file belongs to the person: entries are merged in, nothing there is removed or rewritten, a backup is made
before any change, the write is atomic, and running it again changes nothing. The pure part (`merge_hooks`)
takes and returns plain JSON data; `install_hooks` is the edge that reads and writes the file.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon import claude_paths
from daemon.errors import BatonError

HOOK_EVENTS: dict[str, str] = {"SessionEnd": "session-end", "UserPromptSubmit": "user-prompt-submit"}


def claude_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the config dir Claude Code writes (`daemon.claude_paths.primary_dir`: the first entry of
    $CLAUDE_CONFIG_DIR, else ~/.claude). Kept for callers of the old name."""
    return claude_paths.primary_dir(os.environ if env is None else env)


def baton_command() -> str:
    """Return how Claude Code should call baton: the absolute path of the `baton` on PATH, else this Python
    with `-m daemon`. Absolute, because Claude Code runs hooks with the PATH of wherever it was started
    (a launcher, an IDE), which may not hold ~/.local/bin."""
    found = shutil.which("baton")
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(sys.executable)} -m daemon"


@dataclass(frozen=True)
class MergeResult:
    """The merged settings and what was added (event names, and "statusLine")."""

    settings: dict[str, Any]
    added: tuple[str, ...]


def _is_baton_command(command: Any, sub: str) -> bool:
    text = str(command or "").strip()
    return text.endswith(f"hook {sub}") and ("baton" in text or "-m daemon" in text)


def _has_baton_hook(groups: list[Any], sub: str) -> bool:
    return any(
        _is_baton_command(h.get("command"), sub)
        for group in groups
        if isinstance(group, dict) and isinstance(group.get("hooks"), list)
        for h in group["hooks"]
        if isinstance(h, dict)
    )


def merge_hooks(settings: Mapping[str, Any], command: str, *, statusline: bool = True) -> MergeResult:
    """Return `settings` with baton's hook entries (and the status line, if none is set) added.

    Entries already there, baton's or anyone's, are kept as they are. Raise BatonError if `hooks` or an
    event's entry has a shape Claude Code would not accept either (not an object / not a list).
    """
    merged = copy.deepcopy(dict(settings))
    hooks = merged.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise BatonError("`hooks` in Claude Code's settings.json is not an object; fix it by hand first")
    added: list[str] = []
    for event, sub in HOOK_EVENTS.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise BatonError(
                f"`hooks.{event}` in Claude Code's settings.json is not a list; fix it by hand first"
            )
        if _has_baton_hook(groups, sub):
            continue
        groups.append({"hooks": [{"type": "command", "command": f"{command} hook {sub}"}]})
        added.append(event)
    if statusline and "statusLine" not in merged:
        merged["statusLine"] = {"type": "command", "command": f"{command} statusline", "padding": 0}
        added.append("statusLine")
    return MergeResult(merged, tuple(added))


@dataclass(frozen=True)
class InstallResult:
    """Where the settings are, what was added, and the backup made (None when nothing changed)."""

    path: Path
    added: tuple[str, ...]
    backup: Path | None


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatonError(f"cannot read {path}: {exc.strerror}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BatonError(
            f"{path} line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})",
            hint="fix the file (Claude Code would not read it either), then run this again",
        ) from exc
    if not isinstance(data, dict):
        raise BatonError(f"{path}: the top level is not a JSON object")
    return data


def _write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_hooks(
    settings_path: Path | None = None,
    *,
    command: str | None = None,
    statusline: bool = True,
    dry_run: bool = False,
    now: datetime | None = None,
) -> InstallResult:
    """Merge baton's hooks into Claude Code's settings.json (default: `claude_paths.settings_file`, in the
    first $CLAUDE_CONFIG_DIR entry, else ~/.claude).

    Returns what was added and the backup written first (`settings.json.baton-backup-YYYYmmdd-HHMMSS`);
    nothing is written when nothing is missing or with `dry_run`. Raise BatonError on invalid JSON.
    """
    path = settings_path or claude_paths.settings_file(os.environ)
    current = _load(path)
    result = merge_hooks(current, command or baton_command(), statusline=statusline)
    if not result.added or dry_run:
        return InstallResult(path, result.added, None)
    backup = None
    if path.exists():
        if now is None:
            from daemon import zones
            from daemon.paths import BatonPaths

            now = zones.now_in(zones.zone_for(BatonPaths.from_env()))
        stamp = now.strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.baton-backup-{stamp}")
        shutil.copy2(path, backup)
    _write_atomic(path, result.settings)
    return InstallResult(path, result.added, backup)
