"""`baton report daily|weekly|monthly|session --json` runs without click and prints exactly what the click
command prints; every other use of `baton report` still goes through click."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.corpus import GOLDEN, lay_out_real
from tests.support.ledger_fixtures import ROOT, run_baton

THROUGH_CLICK = (  # the same report, forced through the click command
    "import sys; from daemon.cli import run_click; run_click(['report', *sys.argv[1:]])"
)
IMPORTS = (
    "import sys; from daemon.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
    "    print(sorted(m for m in ('click', 'pydantic', 'sqlalchemy') if m in sys.modules), file=sys.stderr)"
)


def run_python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -c code ARGS` as baton runs (cwd, environment), whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def real_env(baton_home: Path, claude_dir: Path) -> dict[str, str]:
    lay_out_real(claude_dir)
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(claude_dir), "TZ": "UTC"}
    run_baton("ingest", env=env)
    return env


@pytest.mark.parametrize("kind", ["daily", "weekly", "monthly", "session"])
def test_the_fast_path_prints_what_click_prints(kind: str, real_env: dict[str, str]) -> None:
    fast = run_baton("report", kind, "--json", env=real_env).stdout
    assert fast == run_python(THROUGH_CLICK, kind, "-j", env=real_env).stdout
    tokens = json.loads((GOLDEN / "daily.json").read_text())["totals"]["totalTokens"]
    assert json.loads(fast)["totals"]["totalTokens"] == tokens  # the whole corpus, as ccusage counts it


def test_the_fast_path_imports_no_click_and_the_rest_goes_through_click(real_env: dict[str, str]) -> None:
    out = run_python(IMPORTS, "report", "daily", "--json", env=real_env)
    assert json.loads(out.stdout)["daily"] and out.stderr.strip() == "[]"
    out = run_python(IMPORTS, "report", "daily", "--json", "--since", "2025-01-01", env=real_env)
    assert json.loads(out.stdout)["daily"] and out.stderr.strip() == "['click']"
    assert "Usage by local day" in run_baton("report", "daily", "--help", env=real_env).stdout
    wrong = run_baton("report", "daily", "--jsn", env=real_env, check=False)
    assert wrong.returncode == 2 and "No such option" in wrong.stderr


def test_an_invalid_config_fails_the_fast_path_as_it_fails_click(
    real_env: dict[str, str], baton_home: Path
) -> None:
    (baton_home / "config.toml").write_text("[general]\nlog_level = 42\n")
    fast = run_baton("report", "daily", "--json", env=real_env, check=False)
    slow = run_python(THROUGH_CLICK, "daily", "--json", env=real_env)
    assert fast.returncode == slow.returncode == 78 and "invalid configuration" in fast.stderr
    assert fast.stderr == slow.stderr and fast.stdout == slow.stdout == ""
