"""`baton service start|stop|restart`, the `baton` command link made by install, and readable logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from daemon import service, service_logs

UID = 501
NO_SYSTEMD = pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here")


def _baton(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        check=False,
        timeout=60,
    )


# --- start / stop / restart: the commands, recorded ---


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_systemd_actions_are_systemctl_user(action: service.Action, home_dir: Path) -> None:
    runner = service.RecordingRunner()
    plan = service.control_plan(action, "linux", home=home_dir, uid=UID)
    assert service.execute(plan, runner, dry_run=False, echo=lambda _: None) == []
    assert runner.calls == [("systemctl", "--user", action, "baton.service")]


def test_launchd_actions_bootout_and_kickstart(home_dir: Path) -> None:
    plist = str(home_dir / "Library/LaunchAgents/com.baton.agent.plist")
    calls = {}
    for action in ("start", "stop", "restart"):
        # bootstrap of an agent that is already loaded fails; that must not fail the start.
        runner = service.RecordingRunner(
            replies={("launchctl", "bootstrap"): service.Result(5, "", "loaded")}
        )
        plan = service.control_plan(action, "macos", home=home_dir, uid=UID)  # type: ignore[arg-type]
        assert service.execute(plan, runner, dry_run=False, echo=lambda _: None) == []
        calls[action] = runner.calls
    agent = f"gui/{UID}/com.baton.agent"
    assert calls == {
        "start": [("launchctl", "bootstrap", f"gui/{UID}", plist), ("launchctl", "kickstart", agent)],
        "stop": [("launchctl", "bootout", agent)],
        "restart": [("launchctl", "bootstrap", f"gui/{UID}", plist), ("launchctl", "kickstart", "-k", agent)],
    }


def test_a_failing_stop_is_reported(home_dir: Path) -> None:
    runner = service.RecordingRunner(
        replies={("systemctl",): service.Result(5, "", "Unit baton.service not loaded.")}
    )
    plan = service.control_plan("stop", "linux", home=home_dir, uid=UID)
    assert service.execute(plan, runner, dry_run=False, echo=lambda _: None) == [
        "`systemctl --user stop baton.service` failed (exit 5): Unit baton.service not loaded."
    ]


@NO_SYSTEMD
def test_without_systemd_start_says_how_to_run_in_the_foreground(home_dir: Path, baton_home: Path) -> None:
    done = _baton("service", "start")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the service is not installed" in done.stderr and "baton service install" in done.stderr
    (home_dir / ".config/systemd/user").mkdir(parents=True)
    (home_dir / ".config/systemd/user/baton.service").write_text("[Service]\n")
    done = _baton("service", "restart")
    assert "systemd is not running on this machine" in done.stderr and "baton run" in done.stderr
    done = _baton("service", "stop")
    assert done.returncode == 0 and "no baton daemon is running" in done.stdout


@NO_SYSTEMD
@pytest.mark.slow
def test_stop_without_systemd_stops_the_foreground_daemon_the_lock_hint_names(
    home_dir: Path, baton_home: Path, claude_dir: Path, start_daemon: Callable[..., Any]
) -> None:
    daemon = start_daemon()
    second = _baton("run")
    assert second.returncode == 75
    assert "`baton service stop`" in second.stderr  # the hint of the single-instance lock names this command

    done = _baton("service", "stop")
    assert done.returncode == 0, done.stderr
    assert f"stopping the daemon running as pid {daemon.pid}" in done.stdout and "stopped." in done.stdout
    assert daemon.proc.wait(timeout=10) == 0  # a clean exit on SIGTERM
    assert "daemon: not running" in _baton("service", "status").stdout


# --- the `baton` command link ---


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "venv" / "bin" / "baton"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def test_install_links_baton_into_local_bin_and_warns_when_it_is_not_on_path(
    home_dir: Path, tmp_path: Path
) -> None:
    script = _script(tmp_path)
    record = tmp_path / "data" / "command-link"
    link = service.command_link(home_dir, script, "/usr/bin:/bin", None, record)
    target = home_dir / ".local/bin/baton"
    assert link.links == ((target, script),)
    assert any(f"{home_dir}/.local/bin is not on your PATH" in n for n in link.notes)

    spec = service.build_spec("linux", {}, python=sys.executable, home=home_dir, which=lambda t: None)
    plan = service.install_plan(
        "linux", spec, "UNIT\n", home=home_dir, uid=UID, booted=True, previous=None, link=link
    )
    lines: list[str] = []
    service.execute(plan, service.RecordingRunner(), dry_run=True, echo=lines.append)
    assert f"would link {target} -> {script}" in lines and not target.is_symlink()
    service.execute(plan, service.RecordingRunner(), dry_run=False, echo=lines.append)
    assert target.is_symlink() and os.readlink(target) == str(script)
    assert service.own_link(home_dir, script, record) == target  # the record says install made it

    assert "  echo 'export PATH=\"$HOME/.local/bin:$PATH\"' >> ~/.profile" in link.notes
    on_macos = service.command_link(home_dir, script, "/usr/bin", None, profile="~/.zprofile")
    assert any(n.endswith(">> ~/.zprofile") for n in on_macos.notes)

    # Again, with ~/.local/bin on PATH: nothing to do, nothing to warn about.
    again = service.command_link(home_dir, script, f"{home_dir}/.local/bin:/usr/bin", None)
    assert again.links == () and not any("warning" in n for n in again.notes)


def test_no_link_when_baton_is_already_a_command_or_the_name_is_taken(home_dir: Path, tmp_path: Path) -> None:
    script = _script(tmp_path)
    assert service.command_link(home_dir, script, "/x", str(script)) == service.CommandLink()
    other = service.command_link(home_dir, script, "/x", "/opt/other/baton")
    assert other.links == () and "/opt/other/baton" in other.notes[0]

    taken = home_dir / ".local/bin/baton"
    taken.parent.mkdir(parents=True)
    taken.write_text("#!/bin/sh\necho mine\n")
    kept = service.command_link(home_dir, script, "/x", None)
    assert kept.links == () and "left alone" in kept.notes[0]
    record = tmp_path / "command-link"
    record.write_text(service.link_record_text(taken, script))
    assert service.own_link(home_dir, script, record) is None  # uninstall leaves someone else's file alone


def test_uninstall_removes_only_its_own_link(home_dir: Path, tmp_path: Path) -> None:
    script = _script(tmp_path)
    record = tmp_path / "command-link"
    link = home_dir / ".local/bin/baton"
    link.parent.mkdir(parents=True)
    link.symlink_to(script)  # pipx's link, or the person's: the same target, but install did not make it
    assert service.own_link(home_dir, script, record) is None
    record.write_text(service.link_record_text(link, script))
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere" / "baton")  # replaced since by another install's link
    assert service.own_link(home_dir, script, record) is None
    link.unlink()
    link.symlink_to(script)
    assert service.own_link(home_dir, script, record) == link
    plan = service.uninstall_plan("linux", home=home_dir, uid=UID, booted=False, link=link, record=record)
    service.execute(plan, service.RecordingRunner(), dry_run=False, echo=lambda _: None)
    assert not link.is_symlink() and not record.exists() and script.is_file()


@NO_SYSTEMD
def test_the_real_install_and_uninstall_make_and_remove_the_link(home_dir: Path, baton_home: Path) -> None:
    script = Path(sys.executable).parent / "baton"
    if not script.is_file():
        pytest.skip("this interpreter has no `baton` console script")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    link = home_dir / ".local/bin/baton"
    dry = _baton("service", "install", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"would link {link} -> {script}" in dry.stdout and not link.is_symlink()
    done = _baton("service", "install", env=env)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(script)
    assert f"link {link} -> {script}" in done.stdout and "is not on your PATH" in done.stdout
    assert (baton_home / "command-link").read_text() == f"{link} -> {script}\n"
    done = _baton("service", "uninstall", env=env)
    assert done.returncode == 0, done.stderr
    assert not link.is_symlink() and f"remove {link}" in done.stdout
    assert not (baton_home / "command-link").exists()


# --- readable logs ---

T = "2026-11-23T18:"
LOG = [
    {"summary": "3 files", "pid": 300, "event": "caught_up", "level": "info", "timestamp": T + "43:30.300Z"},
    {"event": 'Added job "launch x" to job store "default"', "level": "info", "timestamp": T + "45:06Z"},
    {"event": "Scheduler started", "level": "info", "timestamp": T + "43:30Z"},
    {"event": "Run time of job was missed by 0:00:05", "level": "warning", "timestamp": T + "46:00Z"},
    {"event": "in-event", "level": "debug", "logger": "watchdog.observers", "timestamp": T + "46:00Z"},
    {"title": "80% used", "event": "alert", "level": "warning", "timestamp": T + "47:00Z"},
]  # fmt: skip


def test_log_lines_are_rendered_readably_and_library_noise_is_hidden() -> None:
    lines = [json.dumps(d) + "\n" for d in LOG] + ["not json at all\n"]
    shown = list(service_logs.readable(lines, zone=UTC))
    assert shown == [
        "2026-11-23 18:43:30  info     caught_up  summary='3 files'  pid=300",
        "2026-11-23 18:46:00  warning  Run time of job was missed by 0:00:05",  # a library's warning stays
        "2026-11-23 18:47:00  warning  alert  title='80% used'",
        "not json at all",
    ]
    assert len(list(service_logs.readable(lines, everything=True, zone=UTC))) == len(lines)


def test_service_logs_command_reads_the_file_readably(home_dir: Path, baton_home: Path) -> None:
    log = baton_home / "logs" / "baton.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(d) + "\n" for d in LOG))
    env = {**os.environ, "TZ": "UTC"}
    done = _baton("service", "logs", "-n", "2", env=env)
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here: logs come from the journal")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "2026-11-23 18:46:00  warning  Run time of job was missed by 0:00:05",
        "2026-11-23 18:47:00  warning  alert  title='80% used'",
    ]
    everything = _baton("service", "logs", "--all", env=env)
    assert 'Added job "launch x"' in everything.stdout


def test_following_the_log_prints_appended_lines_across_rotation(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "baton.log"
    log.write_text(json.dumps(LOG[0]) + "\n")
    got: list[str] = []
    done = threading.Event()
    thread = threading.Thread(
        target=service_logs.follow,
        args=(log, got.append),
        kwargs={"zone": UTC, "poll_s": 0.02, "stop": done.is_set, "start": log.stat().st_size},
    )
    thread.start()
    try:
        with log.open("a") as handle:
            handle.write(json.dumps(LOG[5]) + "\n")
        _wait(lambda: len(got) == 1)
        log.rename(tmp_path / "baton.log.1")  # rotation: a new file takes the name
        log.write_text(json.dumps(LOG[2]) + "\n" + json.dumps(LOG[0]) + "\n")
        _wait(lambda: len(got) == 2)
    finally:
        done.set()
        thread.join(5)
    assert got == [
        "2026-11-23 18:47:00  warning  alert  title='80% used'",
        "2026-11-23 18:43:30  info     caught_up  summary='3 files'  pid=300",
    ]


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
