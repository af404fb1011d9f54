"""baton's Claude Code slash commands, `/plan-next-session` and `/session-status`: Markdown command files.

Claude is the best author of a handoff: `/plan-next-session` has it gather the sections from the conversation
and the repository, then pipe them as JSON to `baton handoff new --from-json -`. The texts ship in
`handoffs/commands/`. Installing merges into `<claude config dir>/commands/`: a file baton wrote and
nobody changed is updated; anything else (the person's own file of the same name, or baton's file they edited)
is left alone and reported. baton knows its files by a marker line carrying the hash of the text it wrote.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- installed by baton (claude-baton); sha256:{digest} -->"
_MARKER_RE = re.compile(r"^<!-- installed by baton \(claude-baton\); sha256:([0-9a-f]{64}) -->\n", re.M)

NAMES = ("plan-next-session.md", "session-status.md")


def shipped() -> dict[str, str]:
    """Return baton's command files (name -> text), from the bundled `handoffs/commands/` folder."""
    from daemon.resources import template_dir

    folder = template_dir("handoffs") / "commands"
    return {name: (folder / name).read_text(encoding="utf-8") for name in NAMES}


@dataclass(frozen=True)
class Outcome:
    name: str
    path: Path
    action: str  # 'installed' | 'updated' | 'unchanged' | 'kept-user-file' | 'kept-edited'


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_marker(text: str) -> str:
    """Return `text` with baton's marker line (after the front matter, where Claude Code ignores it)."""
    head, sep, body = text.partition("\n---\n")
    return f"{head}{sep}{MARKER.format(digest=_digest(text))}\n{body}"


def owned_unchanged(existing: str) -> bool:
    """Return True if `existing` is a file baton wrote and nobody has changed since."""
    m = _MARKER_RE.search(existing)
    return m is not None and _digest(_MARKER_RE.sub("", existing, count=1)) == m.group(1)


def decide(existing: str | None, shipped: str) -> str:
    """Return what to do with one command file: install, update, leave it, or keep the person's file."""
    wanted = with_marker(shipped)
    if existing is None:
        return "installed"
    if existing == wanted:
        return "unchanged"
    if owned_unchanged(existing):
        return "updated"
    return "kept-edited" if _MARKER_RE.search(existing) else "kept-user-file"


def commands_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return Claude Code's user commands dir: in the first CLAUDE_CONFIG_DIR entry, else ~/.claude."""
    from daemon import claude_paths

    return claude_paths.commands_dir(os.environ if env is None else env)


def install(target: Path | None = None, *, dry_run: bool = False) -> list[Outcome]:
    """Install or update baton's command files in `target` (default: commands_dir()); return what happened."""
    folder = target or commands_dir()
    outcomes = []
    for name, text in shipped().items():
        path = folder / name
        try:
            existing: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = None
        action = decide(existing, text)
        if action in ("installed", "updated") and not dry_run:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.baton-tmp")
            tmp.write_text(with_marker(text), encoding="utf-8")
            os.replace(tmp, path)
        outcomes.append(Outcome(name.removesuffix(".md"), path, action))
    return outcomes
