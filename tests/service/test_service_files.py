"""Service files: rendered units pass systemd's own checker; plists load with the right keys and types."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import service
from daemon.errors import BatonError
from tests.support.real import require_real


def _spec(platform: service.Platform, home: Path, env: dict[str, str], python: str = sys.executable):
    return service.build_spec(platform, env, python=python, home=home, which=lambda t: f"/opt/{t}-bin/{t}")


def _verify(unit: Path, home: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(exist_ok=True, mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    analyze = require_real("systemd-analyze")
    return subprocess.run(
        [analyze, "--user", "verify", str(unit)], capture_output=True, text=True, env=env, check=False
    )


def test_rendered_unit_passes_systemd_analyze_with_no_output_at_all(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # A path with a space, a `%` (a systemd specifier) and a `$` (expanded in ExecStart) must survive quoting.
    odd = tmp_path / "my python %h $HOME"
    odd.mkdir()
    python = odd / "python3"
    python.symlink_to(sys.executable)
    spec = _spec(
        "linux", home, {"BATON_HOME": str(tmp_path / "baton home %i"), "PATH": "/usr/bin"}, str(python)
    )
    unit = home / ".config" / "systemd" / "user" / "baton.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(service.render("linux", spec))

    done = _verify(unit, home, tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    text = unit.read_text()
    assert f'ExecStart="{str(odd).replace("%", "%%")}/python3" "-m" "daemon" "run"' in text
    assert f'Environment="BATON_HOME={tmp_path}/baton home %%i"' in text
    assert "/opt/claude-bin" in text and "/opt/tmux-bin" in text


def test_systemd_analyze_does_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above is meaningful: the same tool fails a unit with a misspelt type."""
    home = tmp_path / "home"
    unit = home / "baton.service"
    home.mkdir()
    unit.write_text(service.render("linux", _spec("linux", home, {})).replace("Type=notify", "Type=notfy"))
    done = _verify(unit, home, tmp_path)
    assert done.returncode != 0 or done.stderr


def test_unit_has_the_supervision_settings() -> None:
    text = service.render("linux", _spec("linux", Path("/home/u"), {}))
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=60",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "StartLimitBurst=5",
        "KillMode=process",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WantedBy=default.target",
    ):
        assert line in text.splitlines()
    assert "ProtectHome" not in text.replace("ProtectHome=,", "") and "PrivateTmp=yes" not in text


PLIST_TYPES: dict[str, type] = {
    "Label": str,
    "ProgramArguments": list,
    "RunAtLoad": bool,
    "KeepAlive": dict,
    "EnvironmentVariables": dict,
    "StandardOutPath": str,
    "StandardErrorPath": str,
    "ThrottleInterval": int,
    "ExitTimeOut": int,
    "AbandonProcessGroup": bool,
    "ProcessType": str,
}


def test_rendered_plist_loads_and_has_the_right_keys_and_types(tmp_path: Path) -> None:
    baton_home = tmp_path / "a & b <c>"
    spec = _spec(
        "macos", Path("/Users/u"), {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": "/Users/u/.claude"}
    )
    data = plistlib.loads(service.render("macos", spec).encode(), fmt=plistlib.FMT_XML)

    assert set(data) == set(PLIST_TYPES)
    for key, kind in PLIST_TYPES.items():
        assert type(data[key]) is kind, key
    assert data["Label"] == service.LABEL
    assert data["RunAtLoad"] is True and data["KeepAlive"] == {"SuccessfulExit": False}
    program = data["ProgramArguments"]
    assert all(isinstance(a, str) for a in program) and os.path.isabs(program[0])
    assert program[1:] == ["-m", "daemon", "run"]
    env = data["EnvironmentVariables"]
    assert env["BATON_HOME"] == str(baton_home.resolve())
    assert env["CLAUDE_CONFIG_DIR"] == "/Users/u/.claude"
    assert {"/opt/claude-bin", "/opt/tmux-bin", "/opt/homebrew/bin"} <= set(env["PATH"].split(":"))
    assert data["StandardErrorPath"] == str(baton_home.resolve() / "logs" / "launchd.err.log")


def test_plist_without_baton_home_logs_to_the_macos_data_dir() -> None:
    spec = _spec("macos", Path("/Users/u"), {"HOME": "/Users/u"})
    data = plistlib.loads(service.render("macos", spec).encode())
    assert "BATON_HOME" not in data["EnvironmentVariables"]
    assert data["StandardOutPath"].endswith("Library/Application Support/baton/logs/launchd.out.log")


def test_a_relative_interpreter_or_a_newline_in_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BatonError, match="not absolute"):
        _spec("linux", tmp_path, {}, python="python3")
    with pytest.raises(BatonError, match="newline"):
        service.render("linux", _spec("linux", tmp_path, {"BATON_HOME": "/tmp/a\nExecStartPre=/bin/evil"}))


def test_a_template_field_without_a_value_is_an_error() -> None:
    with pytest.raises(BatonError, match="nothing_here"):
        service.fill("x={{nothing_here}}", {})
