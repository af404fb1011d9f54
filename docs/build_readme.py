"""Assemble README.md from docs/readme/*.md, in the order of their numeric prefixes."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["00", "10", "30", "40", "20", "50", "60", "90"]  # the reader's path: start, quota, handoffs, reports


def assemble() -> str:
    """Return the README text built from the section files."""
    parts = {p.name[:2]: p for p in (ROOT / "docs" / "readme").glob("[0-9][0-9]-*.md")}
    ordered = [parts[k] for k in ORDER if k in parts] + [parts[k] for k in sorted(parts) if k not in ORDER]
    return "\n".join(p.read_text(encoding="utf-8").rstrip() + "\n" for p in ordered)


if __name__ == "__main__":
    text = assemble()
    if "--check" in sys.argv:
        sys.exit(0 if (ROOT / "README.md").read_text(encoding="utf-8") == text else 1)
    (ROOT / "README.md").write_text(text, encoding="utf-8")
