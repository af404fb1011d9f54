"""Guards around a launch: one handoff starts one session, `--force` for another; claude found by the CLI
when the daemon's PATH lacks it; the reset known without a daemon; times shown in the configured zone."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon import handoff as ho
from daemon import launch, memory
from daemon.db import open_ledger
from daemon.launch_store import recent
from daemon.paths import BatonPaths
from daemon.scheduler import status_lines
from daemon.when import parse_when_explained
from tests.handoff.conftest import Daemons, FakeClaude, run_baton, tmux_sessions, write_handoff

ROOT = Path(__file__).resolve().parents[2]


def launch_now_processes(n: int, ref: str) -> list[subprocess.CompletedProcess[str]]:
    """Run `baton launch now REF` in `n` processes started together; return them all."""
    argv = [sys.executable, "-m", "daemon", "launch", "now", ref]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(n)]  # fmt: skip
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        out.append(subprocess.CompletedProcess(argv, p.returncode, stdout, stderr))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("with_daemon", [True, False], ids=["through-the-daemon", "no-daemon"])
def test_concurrent_launches_of_one_handoff_start_exactly_one_session(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str, daemons: Daemons, with_daemon: bool
) -> None:
    handoff = write_handoff(project)
    if with_daemon:
        daemons.start()
        run_baton("schedule", "--at", "+1s", "--handoff", handoff.stem)  # the scheduled job races too
        time.sleep(0.6)
    results = launch_now_processes(3, handoff.stem)
    time.sleep(1.5)
    assert len(fake_claude.calls()) == 1
    assert [s for s in tmux_sessions(tmux) if s.startswith("baton-")] == ["baton-my-app"]
    assert len(recent(open_ledger(paths.ledger_db))) == 1
    refused = [r for r in results if r.returncode != 0]
    assert len(refused) >= 2
    for r in refused:
        assert "Traceback" not in r.stderr
        assert "being launched right now" in r.stderr or "is launched, not pending" in r.stderr


@pytest.mark.slow
def test_a_launched_handoff_is_not_launched_again_unless_forced(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str
) -> None:
    handoff = write_handoff(project)
    run_baton("schedule", "--at", "+2h", "--handoff", handoff.stem)  # planned for later, launched now
    run_baton("launch", "now", handoff.stem)
    again = run_baton("launch", "now", handoff.stem, check=False)
    assert again.returncode == 1 and f"handoff {handoff.stem} is launched, not pending" in again.stderr
    assert f"baton launch now --force {handoff.stem}" in again.stderr
    assert len(fake_claude.calls()) == 1
    run_baton("launch", "now", "--force", handoff.stem)
    fake_claude.wait_for(2)
    assert sorted(tmux_sessions(tmux)) == ["baton-my-app", "baton-my-app-2"]
    h = ho.load(handoff)
    assert h.status == "launched" and h.launched_at is not None
    # `handoff list` shows when it launched, not the time it had been planned for (2 h from now).
    [line] = [x for x in run_baton("handoff", "list").stdout.splitlines() if x.startswith(handoff.stem)]
    assert h.launched_at.astimezone().strftime("%Y-%m-%d %H:%M") in line
    listed = json.loads(run_baton("handoff", "list", "--json").stdout)[0]
    assert listed["launched_at"] == h.launched_at.isoformat()


@pytest.mark.slow
def test_the_daemon_uses_the_claude_the_cli_found_when_its_own_path_lacks_it(
    paths: BatonPaths,
    project: Path,
    fake_claude: FakeClaude,
    tmux: str,
    daemons: Daemons,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATON_LAUNCH__CLAUDE_PATH", "claude")  # the default: found on PATH
    no_claude = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "claude").exists()
    )
    with_claude = f"{fake_claude.path.parent}{os.pathsep}{no_claude}"
    monkeypatch.setenv("PATH", no_claude)  # the daemon's PATH: no claude there (not even CI's real one)
    daemon = daemons.start()
    monkeypatch.setenv("PATH", with_claude)  # the person's shell finds it
    handoff = write_handoff(project)
    out = run_baton("launch", "now", handoff.stem)
    assert "tmux attach -t baton-my-app" in out.stdout
    [call] = fake_claude.wait_for(1)
    assert call["cwd"] == str(project)
    # With claude nowhere, the daemon says that its own PATH lacks it, and how to fix that.
    monkeypatch.setenv("PATH", no_claude)
    other = write_handoff(project)
    out = run_baton("launch", "now", other.stem, check=False)
    assert out.returncode == 1
    assert f"the daemon (pid {daemon.pid}) cannot find `claude` on its PATH" in out.stderr
    assert "launch.claude_path" in out.stderr and "baton service install" in out.stderr


def test_schedule_at_reset_without_a_daemon_uses_the_reset_that_status_shows(
    paths: BatonPaths, project: Path, claude_dir: Path
) -> None:
    handoff = write_handoff(project)
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    data = {
        "session_id": "s-1", "cwd": str(project), "version": "2.1.197",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
        "rate_limits": {"five_hour": {"used_percentage": 55.0, "resets_at": int(reset.timestamp())}},
    }  # fmt: skip
    run_baton("statusline", input=json.dumps(data))  # official figures, and no daemon runs
    status = json.loads(run_baton("status", "--json").stdout)
    assert datetime.fromisoformat(status["reset_at"]) == reset
    out = run_baton("schedule", "--at-reset", "--handoff", handoff.stem)
    assert "The launch is 5 min after the reset (scheduler.offset_minutes" in out.stderr
    [job] = [j for j in json.loads(run_baton("schedule", "list", "--json").stdout) if j["kind"] == "launch"]
    assert datetime.fromisoformat(job["run_at"]) == reset + timedelta(minutes=5)
    assert job["at_reset"] is True


def test_status_lines_show_the_day_and_the_configured_zone_aligned_with_the_other_labels(
    paths: BatonPaths, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_GENERAL__TIMEZONE", "Asia/Tokyo")
    handoff = write_handoff(project)
    run_baton("schedule", "--at", "+24h", "--handoff", handoff.stem)
    waiting = write_handoff(project, start="at-reset")
    now = datetime.now(UTC)
    at = ho.load(handoff).scheduled_for
    assert at is not None
    lines = status_lines(paths, now)
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert lines[0].startswith(f"Next launch   my app ü at tomorrow {tokyo:%H:%M} (in 23 h 59 min)")
    assert lines[1] == (
        f"Waiting       my app ü (handoff {waiting.stem}) starts after the reset once the quota runs out"
    )
    status = run_baton("status").stdout
    assert lines[0] in status and "Daemon        " in status  # the same 14-column labels
    monkeypatch.setenv("BATON_SCHEDULER__AUTO_MODE", "false")
    assert status_lines(paths, now)[1].endswith(
        f"auto mode is off: baton schedule --at-reset --handoff {waiting.stem}"
    )


def test_install_commands_writes_to_the_first_of_several_config_dirs(
    paths: BatonPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "claude", tmp_path / "b" / "claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{first}, {second}")
    out = run_baton("claude", "install-commands")
    assert f"({first / 'commands' / 'plan-next-session.md'})" in out.stdout
    assert sorted(p.name for p in (first / "commands").iterdir()) == [
        "plan-next-session.md",
        "session-status.md",
    ]
    assert not second.exists() and not list(tmp_path.glob("a/claude, *"))


def test_a_clock_time_in_the_spring_forward_gap_moves_to_the_first_real_minute(
    paths: BatonPaths, project: Path
) -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 3, 28, 12, tzinfo=UTC)
    when = parse_when_explained("02:30", now, paris)  # tomorrow 02:30 does not exist in Paris
    assert when.at.astimezone(paris) == datetime(2026, 3, 29, 3, 0, tzinfo=paris)
    assert when.note is not None and "02:30 does not exist in Europe/Paris" in when.note
    iso = parse_when_explained("2026-03-29T02:45", now, paris)
    assert iso.at == when.at and iso.note is not None
    autumn = parse_when_explained("2026-10-25T02:30", now, paris)  # happens twice: the first one
    assert autumn.note is None and autumn.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_hung_tmux_does_not_hold_the_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hung = tmp_path / "tmux"
    hung.write_text("#!/bin/sh\nsleep 30\n")
    hung.chmod(0o755)
    monkeypatch.setattr(launch, "TMUX_TIMEOUT", 0.3)
    started = time.monotonic()
    assert launch.tmux_sessions(str(hung)) == []
    assert time.monotonic() - started < 10


def test_the_watcher_of_a_headless_launch_logs_a_failure_instead_of_dying_silently(paths: BatonPaths) -> None:
    engine = open_ledger(paths.ledger_db)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    with sqlite3.connect(paths.ledger_db) as conn:
        conn.execute("DROP TABLE launches")  # recording the exit fails
    launch.wait_and_record(engine, 1, proc)  # returns; does not raise
    assert proc.returncode == 0


def test_memory_reads_the_sessions_table(paths: BatonPaths, project: Path) -> None:
    from daemon.sessions import ensure_schema

    open_ledger(paths.ledger_db).dispose()
    ensure_schema(paths.ledger_db)
    t0 = int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000)
    with sqlite3.connect(paths.ledger_db) as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, cwd, started_ms, ended_ms, input_tokens, output_tokens, "
            "cache_creation_tokens, cache_read_tokens) VALUES (?, ?, ?, ?, 1000, 500, 0, 2000)",
            ("s-table", str(project / "sub"), t0, t0 + 3_600_000),
        )
        conn.execute(
            "INSERT INTO sessions (session_id, cwd, started_ms, ended_ms) VALUES (?, ?, ?, ?)",
            ("s-elsewhere", "/elsewhere", t0, t0 + 1000),
        )
    [entry] = memory.ledger_sessions(paths.ledger_db, str(project))
    assert (entry.id, entry.tokens) == ("s-table", 3500)
    assert entry.start == datetime.fromtimestamp(t0 / 1000, UTC).isoformat()


def test_the_memory_folder_is_private_even_if_an_older_version_left_it_open(
    paths: BatonPaths, project: Path
) -> None:
    import stat

    paths.memory_dir.mkdir(mode=0o755)
    paths.memory_dir.chmod(0o755)
    memory.refresh(paths, str(project), now=datetime.now(UTC))
    assert stat.S_IMODE(paths.memory_dir.stat().st_mode) == 0o700
