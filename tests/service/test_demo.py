"""`baton demo` end to end: a real daemon, a real D-Bus notification server, a stand-in claude."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from daemon import demo


@pytest.mark.slow
def test_demo_fires_the_alerts_and_launches_after_the_reset_touching_nothing_else(
    notifications: Any, baton_home: Path, home_dir: Path, tmp_path: Path
) -> None:
    (baton_home / "config.toml").write_text("[quota]\nplan = 'max20'\n")  # the person's own config

    def listing() -> tuple[list[str], list[str]]:
        return sorted(p.name for p in baton_home.iterdir()), sorted(p.name for p in home_dir.iterdir())

    before = listing()
    root = tmp_path / "demo"

    done = subprocess.run(
        [sys.executable, "-m", "daemon", "demo", "--keep", "--dir", str(root)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    summaries = [n["summary"] for n in notifications.received()]
    for percent in (80, 90, 95):
        assert sum(s.startswith(f"{percent}% of the 5-hour window") for s in summaries) == 1, summaries
    assert "Claude Code resumed project" in summaries
    assert "on your desktop" in done.stdout
    for turn in range(1, len(demo.TURNS) + 1):
        assert f"turn {turn}: +" in done.stdout
    assert f"the daemon started `claude` in {root / 'project'}" in done.stdout

    record = json.loads((root / "claude-was-started.json").read_text())
    assert record["cwd"] == str(root / "project")
    assert "-p" in record["argv"]
    assert any("Finish the CSV importer" in a for a in record["argv"])
    # The demo used only its own folder: the person's BATON_HOME and HOME are as they were.
    assert (
        sorted(p.name for p in baton_home.iterdir()),
        sorted(p.name for p in home_dir.iterdir()),
    ) == before
    assert (root / "baton-home" / "baton.db").is_file()


def test_the_synthetic_session_reaches_each_threshold_on_its_own_turn() -> None:
    used, crossed = 0, []
    for turn, tokens in enumerate(demo.TURNS, start=1):
        before, used = used, used + tokens
        crossed += [(t, turn) for t in (80, 90, 95) if before * 100 < t * demo.TOKEN_LIMIT <= used * 100]
    assert [t for t, _ in crossed] == [80, 90, 95]
    assert len({turn for _, turn in crossed}) == 3 and used < demo.TOKEN_LIMIT


def test_synthetic_lines_are_real_transcript_lines_counted_by_the_ledger(tmp_path: Path) -> None:
    from daemon.parse import UsageEvent, parse_line

    line = demo.assistant_line(demo.datetime.now(demo.UTC), 12_000, 1, "/tmp/p")
    event = parse_line(line.encode(), demo.UTC)
    assert isinstance(event, UsageEvent) and event.session_id == demo.SESSION_ID
    assert event.cache_5m_tokens + event.cache_1h_tokens == event.cache_creation_tokens
    counted = event.input_tokens + event.output_tokens + event.cache_creation_tokens
    assert counted == 12_000


def test_workspace_config_is_valid_and_points_at_the_stand_in(tmp_path: Path) -> None:
    ws = demo.Workspace.create(tmp_path / "d")
    data = tomllib.loads((ws.baton_home / "config.toml").read_text())
    assert data["launch"]["claude_path"] == str(ws.stand_in) and os.access(ws.stand_in, os.X_OK)
    env = ws.env({"BATON_HOME": "/mine", "BATON_QUOTA__PLAN": "pro", "CLAUDE_CONFIG_DIR": "/me/.claude"})
    assert env["BATON_HOME"] == str(ws.baton_home) and "BATON_QUOTA__PLAN" not in env
    assert env["CLAUDE_CONFIG_DIR"] == str(ws.claude_dir)
    from daemon.config import load_settings
    from daemon.paths import BatonPaths

    settings = load_settings(BatonPaths.from_env(env))
    assert settings.quota.token_limit == demo.TOKEN_LIMIT and settings.launch.mode == "headless"
