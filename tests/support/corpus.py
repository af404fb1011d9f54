"""The real transcript corpus kept in `tests/data/corpus`, laid out as a Claude config folder."""

from __future__ import annotations

import shutil
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
TRANSCRIPTS = CORPUS / "transcripts"
GOLDEN = CORPUS / "ccusage-golden-20.0.24"

# (source folder or file under TRANSCRIPTS, destination under <config>/projects/): the layout ccusage's golden
# output was produced from; the destination folder names are the projects the reports show.
_LAYOUT: tuple[tuple[str, str], ...] = (
    ("marot__spotter/test/fixtures/transcripts", "-home-marco-projects-spotter"),
    ("daaain__claude-code-log/test/test_data", "daaain"),
    ("ryoppippi__ccusage/apps/ccusage/test/fixtures/claude/projects", ""),
    ("ryoppippi__ccusage/apps/ccusage/test/test-transcript.jsonl", "ccusage-test/test-transcript.jsonl"),
)


def lay_out_real(dest: Path) -> Path:
    """Copy the corpus into `dest/projects/...` (replacing `dest`) and return `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    projects = dest / "projects"
    projects.mkdir(parents=True)
    for source, target in _LAYOUT:
        src, out = TRANSCRIPTS / source, projects / target
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    return dest
