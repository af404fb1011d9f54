"""Ledger test helpers: run baton in a real subprocess, and an environment for a private ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_baton(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m daemon ARGS` in a real subprocess with `env` added to the environment."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


@pytest.fixture
def ledger_env(baton_home: Path, claude_dir: Path) -> dict[str, str]:
    """Environment pointing baton at a private BATON_HOME and an empty Claude config dir."""
    return {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir)}
