"""Real peers (ccusage, claude, tmux, dbus-daemon): found on PATH, else skipped (failed under CI)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_real(tool: str) -> str:
    """Return the path of `tool`, or skip the test (fail under CI, where BATON_REQUIRE_REAL=1)."""
    found = shutil.which(tool)
    if found:
        return found
    message = f"{tool} is not installed (CI installs it; see .ci/run)"
    if os.environ.get("BATON_REQUIRE_REAL"):
        pytest.fail(message)
    pytest.skip(message)
