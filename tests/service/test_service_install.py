"""Install and uninstall with real files in a temporary home; the system commands are recorded, not run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import service
from daemon.paths import BatonPaths

UID = 501


def _install(
    platform: service.Platform,
    home: Path,
    baton_home: Path,
    runner: service.RecordingRunner,
    *,
    booted: bool = True,
) -> list[str]:
    env = {"BATON_HOME": str(baton_home), "PATH": "/usr/bin"}
    spec = service.build_spec(platform, env, python=sys.executable, home=home, which=lambda t: None)
    text = service.render(platform, spec)
    target = service.service_file(platform, home)
    previous = target.read_text() if target.exists() else None
    plan = service.install_plan(platform, spec, text, home=home, uid=UID, booted=booted, previous=previous)
    return service.execute(plan, runner, dry_run=False, echo=lambda _: None)


def test_linux_install_writes_a_private_unit_and_enables_it(home_dir: Path, baton_home: Path) -> None:
    runner = service.RecordingRunner()
    assert _install("linux", home_dir, baton_home, runner) == []

    unit = home_dir / ".config/systemd/user/baton.service"
    assert unit.is_file() and stat.S_IMODE(unit.stat().st_mode) == 0o600
    assert f'Environment="BATON_HOME={baton_home}"' in unit.read_text()
    assert not (baton_home / "logs").exists()  # systemd logs to the journal
    assert runner.calls == [
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "enable", "--now", "baton.service"),
    ]


def test_reinstalling_a_changed_unit_restarts_a_running_service(home_dir: Path, baton_home: Path) -> None:
    _install("linux", home_dir, baton_home, service.RecordingRunner())
    runner = service.RecordingRunner()
    _install("linux", home_dir, baton_home, runner)
    assert (
        "systemctl",
        "--user",
        "try-restart",
        "baton.service",
    ) not in runner.calls  # same text: no restart

    _install("linux", home_dir, baton_home / "moved", runner)
    assert runner.calls[-2:] == [
        ("systemctl", "--user", "try-restart", "baton.service"),
        ("systemctl", "--user", "enable", "--now", "baton.service"),
    ]


def test_uninstall_removes_the_unit_and_keeps_the_ledger_and_handoffs(
    home_dir: Path, baton_home: Path
) -> None:
    paths = BatonPaths.from_env()
    paths.handoffs_dir.mkdir(parents=True)
    (paths.handoffs_dir / "h.md").write_text("next steps")
    paths.ledger_db.write_bytes(b"SQLite format 3\0")
    _install("linux", home_dir, baton_home, service.RecordingRunner())

    runner = service.RecordingRunner()
    plan = service.uninstall_plan("linux", home=home_dir, uid=UID, booted=True)
    assert service.execute(plan, runner, dry_run=False, echo=lambda _: None) == []

    assert not (home_dir / ".config/systemd/user/baton.service").exists()
    assert paths.ledger_db.exists() and (paths.handoffs_dir / "h.md").read_text() == "next steps"
    assert runner.calls == [
        ("systemctl", "--user", "disable", "--now", "baton.service"),
        ("systemctl", "--user", "daemon-reload"),
    ]


def test_macos_install_bootstraps_the_agent_in_the_gui_domain(home_dir: Path, baton_home: Path) -> None:
    runner = service.RecordingRunner(replies={("launchctl", "bootout"): service.Result(3, "", "not loaded")})
    assert _install("macos", home_dir, baton_home, runner) == []  # bootout of an unloaded agent is fine

    plist = home_dir / "Library/LaunchAgents/com.baton.agent.plist"
    assert plist.is_file()
    assert (baton_home / "logs").is_dir()  # launchd writes its stdout/stderr logs there
    assert runner.calls == [
        ("launchctl", "bootout", f"gui/{UID}/com.baton.agent"),
        ("launchctl", "bootstrap", f"gui/{UID}", str(plist)),
        ("launchctl", "enable", f"gui/{UID}/com.baton.agent"),
    ]
    runner = service.RecordingRunner()
    service.execute(
        service.uninstall_plan("macos", home=home_dir, uid=UID, booted=True),
        runner,
        dry_run=False,
        echo=print,
    )
    assert not plist.exists()
    assert runner.calls == [("launchctl", "bootout", f"gui/{UID}/com.baton.agent")]


def test_a_failing_start_is_reported_with_its_output(home_dir: Path, baton_home: Path) -> None:
    runner = service.RecordingRunner(
        replies={("systemctl", "--user", "enable"): service.Result(1, "", "Failed to connect to bus")}
    )
    failures = _install("linux", home_dir, baton_home, runner)
    assert failures == [
        "`systemctl --user enable --now baton.service` failed (exit 1): Failed to connect to bus"
    ]


def test_without_a_service_manager_the_file_is_written_and_nothing_is_run(
    home_dir: Path, baton_home: Path
) -> None:
    runner = service.RecordingRunner()
    assert _install("linux", home_dir, baton_home, runner, booted=False) == []
    assert runner.calls == []
    assert (home_dir / ".config/systemd/user/baton.service").is_file()


def test_dry_run_prints_every_file_and_command_and_changes_nothing(home_dir: Path, baton_home: Path) -> None:
    spec = service.build_spec("linux", {}, python=sys.executable, home=home_dir, which=lambda t: None)
    plan = service.install_plan(
        "linux", spec, "UNIT TEXT\n", home=home_dir, uid=UID, booted=True, previous=None
    )
    lines: list[str] = []
    runner = service.RecordingRunner()
    service.execute(plan, runner, dry_run=True, echo=lines.append)
    assert runner.calls == [] and not (home_dir / ".config").exists()
    out = "\n".join(lines)
    assert f"would write {home_dir}/.config/systemd/user/baton.service:\n    UNIT TEXT" in out
    assert "would run: systemctl --user enable --now baton.service" in out


def test_dry_run_without_a_service_manager_lists_the_commands_it_would_run_there(
    home_dir: Path, baton_home: Path
) -> None:
    spec = service.build_spec("linux", {}, python=sys.executable, home=home_dir, which=lambda t: None)
    plan = service.install_plan(
        "linux", spec, "UNIT\n", home=home_dir, uid=UID, booted=False, previous=None, dry_run=True
    )
    lines: list[str] = []
    runner = service.RecordingRunner()
    service.execute(plan, runner, dry_run=True, echo=lines.append)
    assert runner.calls == [] and not (home_dir / ".config").exists()
    assert "would run where systemd runs: systemctl --user daemon-reload" in lines
    assert "would run where systemd runs: systemctl --user enable --now baton.service" in lines
    out = "\n".join(lines)
    assert "warning: systemd is not running on this machine, so `baton service install` would write" in out
    assert "is written" not in out and "wrote" not in out  # nothing was written

    # The macOS dry run words it the same way for launchctl.
    mac = service.install_plan(
        "macos", spec, "PLIST\n", home=home_dir, uid=UID, booted=False, previous=None, dry_run=True
    )
    lines.clear()
    service.execute(mac, runner, dry_run=True, echo=lines.append)
    assert f"would run where launchd runs: launchctl bootstrap gui/{UID} {mac.service_file}" in lines
    assert runner.calls == []


def test_a_real_install_without_a_service_manager_names_the_commands_it_did_not_run(
    home_dir: Path, baton_home: Path
) -> None:
    spec = service.build_spec("linux", {}, python=sys.executable, home=home_dir, which=lambda t: None)
    plan = service.install_plan("linux", spec, "UNIT\n", home=home_dir, uid=UID, booted=False, previous=None)
    lines: list[str] = []
    runner = service.RecordingRunner()
    assert service.execute(plan, runner, dry_run=False, echo=lines.append) == []
    assert runner.calls == []
    assert "not run (systemd is not running here): systemctl --user enable --now baton.service" in lines
    assert any("the service file is written but was not enabled or started" in line for line in lines)


def test_uninstall_dry_run_without_a_service_manager_lists_its_commands(home_dir: Path) -> None:
    plan = service.uninstall_plan("linux", home=home_dir, uid=UID, booted=False)
    lines: list[str] = []
    runner = service.RecordingRunner()
    service.execute(plan, runner, dry_run=True, echo=lines.append)
    assert runner.calls == []
    assert "would run where systemd runs: systemctl --user disable --now baton.service" in lines


# --- the real command, as a subprocess, on this machine ---


def _baton(args: list[str], home: Path, baton_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "BATON_HOME": str(baton_home)}
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here: install would start it")
def test_install_without_systemd_writes_the_unit_warns_and_exits_zero(
    home_dir: Path, baton_home: Path
) -> None:
    done = _baton(["service", "install"], home_dir, baton_home)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "warning: systemd is not running on this machine" in done.stdout
    assert "baton run" in done.stdout
    unit = home_dir / ".config/systemd/user/baton.service"
    assert unit.is_file()

    done = _baton(["service", "uninstall"], home_dir, baton_home)
    assert done.returncode == 0, done.stderr
    assert not unit.exists() and "kept" in done.stdout


def test_platform_macos_renders_a_plist_anywhere_and_writes_nothing(home_dir: Path, baton_home: Path) -> None:
    done = _baton(["service", "install", "--dry-run", "--platform", "macos"], home_dir, baton_home)
    assert done.returncode == 0, done.stderr
    assert "<key>RunAtLoad</key>" in done.stdout
    assert f"would run: launchctl bootstrap gui/{os.getuid()} {home_dir}/Library/LaunchAgents/" in done.stdout
    assert not (home_dir / "Library").exists()


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here: the commands would run")
def test_the_dry_run_command_without_systemd_changes_nothing_and_says_what_it_would_do(
    home_dir: Path, baton_home: Path
) -> None:
    baton_home.mkdir(exist_ok=True)
    baton_home.chmod(0o755)
    done = _baton(["service", "install", "--dry-run"], home_dir, baton_home)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    unit = home_dir / ".config/systemd/user/baton.service"
    assert f"would write {unit}:" in out
    assert "would run where systemd runs: systemctl --user daemon-reload" in out
    assert "would run where systemd runs: systemctl --user enable --now baton.service" in out
    assert f"would make {baton_home} private (mode 700)" in out
    assert "is written" not in out and "\nwrote " not in out and "\nmade " not in out
    assert not unit.exists() and stat.S_IMODE(baton_home.stat().st_mode) == 0o755  # nothing changed
