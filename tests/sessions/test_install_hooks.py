"""`baton claude install-hooks`: merged into an existing settings.json, never clobbering, with a backup."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.claude_settings import install_hooks, merge_hooks
from daemon.commands.claude_hooks import install_hooks as install_command
from daemon.errors import BatonError

EXISTING = {
    "model": "opus",
    "permissions": {"allow": ["Bash(git status)"]},
    "statusLine": {"type": "command", "command": "~/.claude/my-statusline.sh"},
    "hooks": {
        "SessionEnd": [{"hooks": [{"type": "command", "command": "~/.claude/hooks/session-end.sh"}]}],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit-bash"}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": "echo remember the style guide"}]}],
    },
}


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_existing_hooks_and_settings_are_all_kept(claude_dir: Path) -> None:
    settings = _write(claude_dir / "settings.json", EXISTING)
    result = install_hooks(command="baton")
    assert result.path == settings
    assert result.added == ("SessionEnd", "UserPromptSubmit")  # the status line was already set: left alone
    data = json.loads(settings.read_text())
    assert data["model"] == "opus" and data["permissions"] == EXISTING["permissions"]
    assert data["statusLine"] == EXISTING["statusLine"]
    assert data["hooks"]["PreToolUse"] == EXISTING["hooks"]["PreToolUse"]
    session_end = [h["command"] for g in data["hooks"]["SessionEnd"] for h in g["hooks"]]
    assert session_end == ["~/.claude/hooks/session-end.sh", "baton hook session-end"]
    prompt = [h["command"] for g in data["hooks"]["UserPromptSubmit"] for h in g["hooks"]]
    assert prompt == ["echo remember the style guide", "baton hook user-prompt-submit"]
    assert result.backup is not None and json.loads(result.backup.read_text()) == EXISTING
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600


def test_running_it_again_changes_nothing(claude_dir: Path) -> None:
    settings = _write(claude_dir / "settings.json", EXISTING)
    install_hooks(command="baton")
    first = settings.read_text()
    again = install_hooks(command="/opt/venv/bin/python -m daemon")
    assert again.added == () and again.backup is None
    assert settings.read_text() == first
    assert len(list(claude_dir.glob("settings.json.baton-backup-*"))) == 1


def test_a_new_settings_file_gets_hooks_and_the_status_line(claude_dir: Path) -> None:
    result = install_hooks(command="baton")
    assert result.added == ("SessionEnd", "UserPromptSubmit", "statusLine") and result.backup is None
    data = json.loads((claude_dir / "settings.json").read_text())
    assert data["statusLine"]["command"] == "baton statusline"


def test_invalid_json_is_refused_with_its_line(claude_dir: Path) -> None:
    settings = claude_dir / "settings.json"
    settings.write_text('{\n  "model": "opus",\n  "hooks": {,\n}\n', encoding="utf-8")
    before = settings.read_text()
    with pytest.raises(BatonError, match=r"settings.json line 3"):
        install_hooks(command="baton")
    assert settings.read_text() == before


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(BatonError, match="not an object"):
        merge_hooks({"hooks": []}, "baton")
    with pytest.raises(BatonError, match="not a list"):
        merge_hooks({"hooks": {"SessionEnd": {"command": "x"}}}, "baton")


def test_command_dry_run_writes_nothing(claude_dir: Path) -> None:
    settings = _write(claude_dir / "settings.json", EXISTING)
    before = settings.read_text()
    result = CliRunner().invoke(install_command, ["--dry-run"])
    assert result.exit_code == 0 and "Would add" in result.output
    assert settings.read_text() == before
    result = CliRunner().invoke(install_command, [])
    assert result.exit_code == 0 and "Backup of the previous file" in result.output


def test_baton_claude_install_hooks_goes_through_the_claude_group(claude_dir: Path, baton_home: Path) -> None:
    from daemon.cli import cli

    _write(claude_dir / "settings.json", EXISTING)
    result = CliRunner().invoke(cli, ["claude", "install-hooks"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Added to" in result.output and "SessionEnd, UserPromptSubmit" in result.output


def test_the_default_command_is_the_absolute_path_of_baton_on_path(
    claude_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code runs hooks with the PATH of wherever it was started, so the command must not rely on it."""
    bin_dir = tmp_path / "some bin"
    bin_dir.mkdir()
    exe = bin_dir / "baton"
    exe.write_text("#!/bin/sh\n", encoding="utf-8")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    install_hooks()
    data = json.loads((claude_dir / "settings.json").read_text())
    assert data["statusLine"]["command"] == f"'{exe}' statusline"
    session_end = [h["command"] for g in data["hooks"]["SessionEnd"] for h in g["hooks"]]
    assert session_end == [f"'{exe}' hook session-end"]
