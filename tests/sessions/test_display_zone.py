"""Times shown to a person use `general.timezone` when set; Claude settings are found as Claude finds them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon import hooks, zones
from daemon.cli import cli
from daemon.paths import BatonPaths

AREA = [
    "daemon/sessions.py",
    "daemon/session_reports.py",
    "daemon/charts.py",
    "daemon/exports.py",
    "daemon/hooks.py",
    "daemon/claude_settings.py",
    "daemon/maintenance.py",
    "daemon/zones.py",
    "daemon/commands/hook.py",
    "daemon/commands/log.py",
    "daemon/commands/export.py",
    "daemon/commands/db.py",
    "daemon/commands/report_sessions.py",
    "daemon/commands/claude_hooks.py",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", AREA)
def test_no_display_time_in_the_process_zone(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert not re.findall(r"\.astimezone\(\)", text), "use daemon.zones (general.timezone)"
    assert not re.findall(r"datetime\.now\(\)", text), "naive local time: use zones.now_in(zone)"


def test_the_planning_note_gives_the_reset_in_the_daemons_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the shell Claude Code runs the hook from
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    snap = {"percent": 90, "reset_at": "2026-03-02T12:30:00Z", "timezone": "Asia/Tokyo"}
    assert "(21:30)" in hooks.planning_note(snap, now)
    assert "(12:30)" in hooks.planning_note({**snap, "timezone": ""}, now)  # none configured: the system's
    assert "(12:30)" in hooks.planning_note({**snap, "timezone": "Not/AZone"}, now)


def test_zone_comes_from_the_environment_then_the_config(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = BatonPaths.from_env()
    assert zones.configured_name(paths) is None
    paths.config_file.write_text('[general]\ntimezone = "Europe/Paris"\n', encoding="utf-8")
    assert str(zones.zone_for(paths)) == "Europe/Paris"
    monkeypatch.setenv("BATON_GENERAL__TIMEZONE", "Asia/Tokyo")
    assert str(zones.zone_for(paths)) == "Asia/Tokyo"
    from daemon.errors import BatonError

    with pytest.raises(BatonError, match="unknown time zone"):
        zones.strict_zone("Mars/Olympus")


def test_install_hooks_writes_the_first_of_several_config_dirs(
    tmp_path: Path, baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "claude", tmp_path / "b" / "claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{first}, {second}")
    result = CliRunner().invoke(cli, ["claude", "install-hooks"])
    assert result.exit_code == 0, result.output
    assert f"to {first / 'settings.json'}:" in result.output
    data = json.loads((first / "settings.json").read_text(encoding="utf-8"))
    assert set(data["hooks"]) == {"SessionEnd", "UserPromptSubmit"}
    assert not second.exists() and not list(tmp_path.glob("a/claude, *"))
