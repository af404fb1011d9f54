"""Locate the templates shipped in the wheel (`daemon/_templates/...`) or, from a checkout,
the repository's folders."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def template_dir(kind: str) -> Path:
    """Return the folder holding the bundled `kind` templates ("systemd", "launchd" or "handoffs").

    Raise FileNotFoundError if neither the installed copy nor the checkout's folder exists.
    """
    for candidate in (_PACKAGE / "_templates" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled templates not found: {kind}")
