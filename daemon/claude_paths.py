"""Where Claude Code keeps its files, resolved one way for every part of baton.

Claude Code writes to `$CLAUDE_CONFIG_DIR` when set, else `~/.claude` (claude-data-formats.md §1).
ccusage reads a comma-separated list in that variable and, without it, both
`${XDG_CONFIG_HOME:-~/.config}/claude` and `~/.claude`. Reading (transcripts) follows every candidate;
writing (settings.json, slash commands) and the login file use the one directory Claude Code itself uses:
the first entry of the list, else `~/.claude`.
Pure: the environment is passed in; nothing here touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or os.path.expanduser("~"))


def _expand(entry: str, env: Mapping[str, str]) -> Path:
    if entry == "~" or entry.startswith("~/"):
        entry = str(_home(env)) + entry[1:]
    path = Path(entry)
    return path.parent if path.name == "projects" else path


def configured_dirs(env: Mapping[str, str]) -> list[Path]:
    """Return CLAUDE_CONFIG_DIR's entries (trimmed, `~` expanded, trailing /projects dropped), or []."""
    raw = env.get("CLAUDE_CONFIG_DIR", "")
    return [_expand(e.strip(), env) for e in raw.split(",") if e.strip()]


def candidate_dirs(env: Mapping[str, str]) -> list[Path]:
    """Return every config dir whose projects/ may hold transcripts, whether or not it exists yet."""
    configured = configured_dirs(env)
    if configured:
        return configured
    home = _home(env)
    xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return [Path(xdg) / "claude", home / ".claude"]


def primary_dir(env: Mapping[str, str]) -> Path:
    """Return the config dir Claude Code itself writes: the first CLAUDE_CONFIG_DIR entry, else ~/.claude."""
    configured = configured_dirs(env)
    return configured[0] if configured else _home(env) / ".claude"


def settings_file(env: Mapping[str, str]) -> Path:
    """Return Claude Code's user settings file (hooks, statusLine)."""
    return primary_dir(env) / "settings.json"


def commands_dir(env: Mapping[str, str]) -> Path:
    """Return the folder of the user's slash commands."""
    return primary_dir(env) / "commands"


def credentials_file(env: Mapping[str, str]) -> Path:
    """Return the login file on Linux/Windows (`$CLAUDE_SECURESTORAGE_CONFIG_DIR` wins when set)."""
    secure = env.get("CLAUDE_SECURESTORAGE_CONFIG_DIR")
    return (Path(secure) if secure else primary_dir(env)) / ".credentials.json"
