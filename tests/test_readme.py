"""The README is what newcomers run: it is assembled from its sections and carries the two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_assembled_from_its_sections() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "build_readme.py"), "--check"])
    assert result.returncode == 0, "README.md is stale: run `python3 docs/build_readme.py`"


def test_readme_test_command_is_the_one_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert command in readme
    assert re.search(r"^python3 -m venv \.venv\b", ci, re.MULTILINE)
    assert re.search(r"^\.venv/bin/pip install .*-e '\.\[test\]'", ci, re.MULTILINE)
    assert re.search(r"^\.venv/bin/python -m pytest\s*$", ci, re.MULTILINE)


def test_readme_install_command_installs_and_starts_the_service() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    venv = "~/.local/share/baton/venv"
    assert f"python3 -m venv {venv} && {venv}/bin/pip install . && {venv}/bin/baton service install" in readme
