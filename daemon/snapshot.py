"""The latest quota snapshot as a small JSON file, for commands that must answer fast (statusline, hooks).

The daemon writes it after every evaluation; readers never import SQLAlchemy or pydantic. Its top level is
the 5-hour `QuotaSnapshot.to_dict()` (`percent`, `level`, `source`, `reset_at`, `tokens_used`, `limited`...,
the week under `weekly`; with `limit_known` false the plan's limit is a guess, kept in `estimated_limit`, and
`tokens_limit`, `tokens_remaining` and `runway_minutes` are null rather than made up), plus `written_at`
(ISO 8601), `pid` (the daemon's) and `timezone` (IANA name or "").
The write is atomic (a temporary file renamed over the old one), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from daemon.paths import BatonPaths

FILE_NAME = "quota-snapshot.json"


def path(paths: BatonPaths) -> Path:
    """Return where the snapshot lives."""
    return paths.data_dir / FILE_NAME


def write(paths: BatonPaths, data: dict[str, Any]) -> None:
    """Replace the snapshot with `data` atomically (file private to the user). Raise OSError on failure."""
    target = path(paths)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=target.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(paths: BatonPaths) -> dict[str, Any] | None:
    """Return the last snapshot written, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
