"""Scheduled launches end to end: a real daemon process (killed with -9), the job store, real tmux, a fake
claude, notifications on a real D-Bus session bus."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon import handoff as ho
from daemon import snapshot
from daemon.db import open_ledger
from daemon.launch_store import recent
from daemon.paths import BatonPaths
from tests.handoff.conftest import Daemons, FakeClaude, run_baton, tmux_sessions, write_handoff

pytestmark = pytest.mark.slow


def jobs() -> list[dict[str, Any]]:
    return list(json.loads(run_baton("schedule", "list", "--json").stdout))


def wait_for_notification(notifications: Any, prefix: str, timeout: float = 15) -> dict[str, Any]:
    """Return the first notification whose title starts with `prefix` (the real daemon also sends alerts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in notifications.received():
            if n["summary"].startswith(prefix):
                return dict(n)
        time.sleep(0.05)
    raise AssertionError(f"no notification {prefix!r}: {[n['summary'] for n in notifications.received()]}")


def test_launch_survives_kill_9_and_runs_once_on_time_in_tmux(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str, daemons: Daemons, notifications: Any
) -> None:
    handoff = write_handoff(project)
    first = daemons.start()
    out = run_baton("schedule", "--at", "+4s", "--handoff", str(handoff))
    assert "launch:" in out.stdout and "not running" not in out.stderr  # the daemon took it
    [job] = [j for j in jobs() if j["kind"] == "launch"]
    run_at = datetime.fromisoformat(job["run_at"])
    daemons.kill9(first)  # no clean shutdown: the job must come back from the store
    time.sleep(0.5)
    daemons.start()
    [call] = fake_claude.wait_for(1, timeout=20)
    time.sleep(2)  # a second launch would show up here
    assert len(fake_claude.calls()) == 1
    assert run_at.timestamp() - 0.5 <= call["t"] < run_at.timestamp() + 5, "launched on time"
    assert call["cwd"] == str(project)
    assert call["argv"][-2] == b"--" and "Integrate auth" in call["argv"][-1].decode()
    assert "baton-my-app" in tmux_sessions(tmux)
    assert ho.load(handoff).status == "launched"
    [record] = recent(open_ledger(paths.ledger_db))
    assert (record.mode, record.tmux_session, record.trigger) == ("tmux", "baton-my-app", "scheduled")
    assert jobs() == []
    got = notifications.wait_for(1)
    assert got[-1]["summary"] == "Claude Code resumed my app ü"
    assert "tmux attach -t baton-my-app" in got[-1]["body"]


def test_baton_run_killed_with_9_and_restarted_launches_once_on_time(
    paths: BatonPaths, project: Path, claude_dir: Path, fake_claude: FakeClaude, tmux: str, daemons: Daemons
) -> None:
    handoff = write_handoff(project)
    first = daemons.start(real=True)
    run_baton("schedule", "--at", "+6s", "--handoff", str(handoff))
    [job] = [j for j in jobs() if j["kind"] == "launch"]
    daemons.kill9(first)
    daemons.start(real=True)  # the lock and the socket left by the killed daemon must not stop it
    [call] = fake_claude.wait_for(1, timeout=20)
    time.sleep(2)
    assert len(fake_claude.calls()) == 1
    assert datetime.fromisoformat(job["run_at"]).timestamp() - 0.5 <= call["t"]
    assert call["cwd"] == str(project) and "baton-my-app" in tmux_sessions(tmux)
    assert ho.load(handoff).status == "launched" and jobs() == []


def test_a_job_stored_while_no_daemon_runs_is_launched_when_it_starts(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str, daemons: Daemons
) -> None:
    handoff = write_handoff(project)
    out = run_baton("schedule", "--at", "+2s", "--handoff", handoff.stem)
    assert "not running" in out.stderr
    assert [j["kind"] for j in jobs()] == ["launch"]
    time.sleep(2.5)
    assert fake_claude.calls() == []  # the paused CLI scheduler never runs a job
    daemons.start()
    fake_claude.wait_for(1)
    wait_until_launched(handoff)


def wait_until_launched(handoff: Path, timeout: float = 15) -> None:
    """Wait for the daemon to mark `handoff` launched: it does so after claude has started (and the fake has
    logged its call), so reading the status as soon as the call is seen races with the daemon."""
    deadline = time.monotonic() + timeout
    while (status := ho.load(handoff).status) != "launched":
        assert time.monotonic() < deadline, f"the handoff is still {status}"
        time.sleep(0.05)


def statusline(project: Path, percent: float, resets_at: datetime) -> None:
    """Feed `baton statusline` what Claude Code sends it, with official 5-hour figures."""
    data = {
        "session_id": "s-1", "cwd": str(project), "version": "2.1.197",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
        "rate_limits": {
            "five_hour": {"used_percentage": percent, "resets_at": int(resets_at.timestamp())},
            "seven_day": {"used_percentage": 40.0, "resets_at": int(resets_at.timestamp()) + 86400},
        },
    }  # fmt: skip
    run_baton("statusline", input=json.dumps(data))


def wait_until_limited(paths: BatonPaths, timeout: float = 15) -> None:
    """Wait for the daemon to have evaluated the limit (its snapshot file says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (snapshot.read(paths) or {}).get("limited"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the daemon did not see the limit: {snapshot.read(paths)}")


def test_a_launch_at_the_reset_is_postponed_while_the_quota_has_not_reset(
    paths: BatonPaths, project: Path, claude_dir: Path, fake_claude: FakeClaude, daemons: Daemons,
    notifications: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BATON_SCHEDULER__RETRY_MINUTES", "30")
    monkeypatch.setenv("BATON_SCHEDULER__MAX_RETRIES", "2")
    monkeypatch.setenv("BATON_SCHEDULER__AUTO_MODE", "false")
    handoff = write_handoff(project)
    daemons.start(real=True)  # the real `baton run`, told by Claude Code's status line that the limit is hit
    statusline(project, percent=100.0, resets_at=datetime.now(UTC) + timedelta(seconds=6))
    wait_until_limited(paths)
    out = run_baton("schedule", "--at-reset", "--offset", "0", "--handoff", str(handoff))
    assert "The launch is at the reset; it checks first that the quota really reset" in out.stderr
    # Before it fires, Claude Code reports the limit again, with a later reset: the quota did not come back.
    statusline(project, percent=100.0, resets_at=datetime.now(UTC) + timedelta(hours=2))
    got = wait_for_notification(notifications, "Launch of my app ü postponed")
    assert "retry 1 of 2" in got["body"] and "limit is still in force" in got["body"]
    [job] = jobs()
    assert job["kind"] == "launch" and job["attempt"] == 1 and job["at_reset"] is True
    moved = datetime.fromisoformat(job["run_at"]) - datetime.now(UTC)
    assert timedelta(minutes=29) < moved <= timedelta(minutes=30)
    assert fake_claude.calls() == []
    assert ho.load(handoff).status == "pending"


def test_a_launch_at_a_time_the_person_gave_starts_then_whatever_the_quota(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, daemons: Daemons, notifications: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BATON_SCHEDULER__RESET_BELOW_PERCENT", "50")
    later = datetime.now(UTC) + timedelta(hours=2)
    snapshot.write(paths, {"percent": 100.0, "limited": True, "active": True, "reset_at": later.isoformat()})
    handoff = write_handoff(project, start="+3s")  # `handoff new --start TIME`: scheduled at once
    out = run_baton("schedule", "--at", "+2s", "--handoff", str(handoff))  # and `schedule --at TIME`
    assert "Note: the quota is used up and resets at" in out.stderr  # the warning, at scheduling time
    [job] = jobs()
    assert job["at_reset"] is False
    daemons.start()
    [call] = fake_claude.wait_for(1, timeout=15)
    assert call["t"] >= datetime.fromisoformat(job["run_at"]).timestamp() - 0.5
    got = wait_for_notification(notifications, "Claude Code resumed my app ü")
    assert "postponed" not in got["summary"]
    assert ho.load(handoff).status == "launched"


def test_after_the_last_retry_the_launch_is_given_up_and_the_handoff_stays_pending(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, daemons: Daemons, notifications: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BATON_SCHEDULER__MAX_RETRIES", "0")
    monkeypatch.setenv("BATON_SCHEDULER__RESET_BELOW_PERCENT", "50")
    later = datetime.now(UTC) + timedelta(hours=2)
    snapshot.write(
        paths, {"percent": 72.0, "limited": False, "reset_at": later.isoformat(), "source": "official"}
    )
    handoff = write_handoff(project, start="after-reset")  # the reset is known: scheduled at once
    [job] = [j for j in jobs() if j["kind"] == "launch"]
    assert abs(datetime.fromisoformat(job["run_at"]) - (later + timedelta(minutes=5))) < timedelta(seconds=1)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    snapshot.write(paths, {"percent": 72.0, "limited": False, "reset_at": soon.isoformat()})
    run_baton("schedule", "--at-reset", "--offset", "0", "--handoff", str(handoff))
    # The window is then reported as still open (reset moved), at 72 %: not reset.
    snapshot.write(paths, {"percent": 72.0, "limited": False, "reset_at": later.isoformat()})
    daemons.start()
    got = notifications.wait_for(1, timeout=15)
    assert got[0]["summary"] == "Launch of my app ü given up"
    assert "72% used" in got[0]["body"] and f"baton launch now {handoff.stem}" in got[0]["body"]
    h = ho.load(handoff)
    assert (h.status, h.start, h.scheduled_for) == ("pending", "manual", None)
    assert jobs() == [] and fake_claude.calls() == []


def test_a_launch_missed_beyond_the_grace_period_is_not_run_and_the_person_is_told(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, daemons: Daemons, notifications: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BATON_SCHEDULER__GRACE_MINUTES", "0")  # one second, the least APScheduler takes
    handoff = write_handoff(project)
    run_baton("schedule", "--at", "+1s", "--handoff", str(handoff))  # no daemon: the machine is "asleep"
    time.sleep(2.2)
    daemons.start()
    got = notifications.wait_for(1, timeout=15)
    assert got[0]["summary"] == "Launch of my app ü missed"
    assert f"baton launch now {handoff.stem}" in got[0]["body"]
    time.sleep(0.5)
    assert fake_claude.calls() == []
    assert ho.load(handoff).status == "pending"
    assert jobs() == []


def test_a_cancelled_launch_never_runs(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, daemons: Daemons
) -> None:
    handoff = write_handoff(project)
    daemons.start()
    # 6 s ahead: the cancel (a second process) must get there first; with 2 s, a loaded machine was too late.
    scheduled = run_baton("schedule", "--at", "+6s", "--handoff", str(handoff))
    [run_at] = [datetime.fromisoformat(line.split()[2]) for line in scheduled.stdout.splitlines()]
    out = run_baton("schedule", "cancel", handoff.stem[:15])
    assert f"launch:{handoff.stem}" in out.stdout
    assert jobs() == []
    time.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()) + 1.5)  # past the time it had
    assert fake_claude.calls() == []
    h = ho.load(handoff)
    assert (h.status, h.start) == ("pending", "manual")
    missing = run_baton("schedule", "cancel", handoff.stem, check=False)
    assert missing.returncode == 1 and "nothing scheduled" in missing.stderr


def test_the_reminder_comes_before_the_launch(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, daemons: Daemons, notifications: Any
) -> None:
    handoff = write_handoff(project)
    daemons.start()
    out = run_baton("schedule", "--at", "+302s", "--handoff", str(handoff))  # reminder 5 min before: in 2 s
    # What the daemon scheduled, as it answered: listing the store afterwards raced the reminder's 2 s on a
    # loaded machine (the fired reminder is no longer stored).
    assert sorted(line.split()[1] for line in out.stdout.splitlines()) == ["launch", "reminder"]
    got = notifications.wait_for(1, timeout=15)
    assert got[0]["summary"].startswith("Claude Code resumes my app ü at ")
    assert f"baton schedule cancel {handoff.stem}" in got[0]["body"]
    assert [j["kind"] for j in jobs()] == ["launch"]  # the reminder ran; the launch is still to come
    run_baton("handoff", "cancel", handoff.stem)
    assert jobs() == [] and ho.load(handoff).status == "cancelled"


def test_auto_mode_schedules_the_pending_handoff_at_the_limit_and_launches_after_the_reset(
    paths: BatonPaths,
    project: Path,
    claude_dir: Path,
    fake_claude: FakeClaude,
    tmux: str,
    daemons: Daemons,
    notifications: Any,
) -> None:
    handoff = write_handoff(project, start="at-reset")
    assert jobs() == []  # no reset time known yet
    daemons.start(real=True)
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=7)
    statusline(project, percent=100.0, resets_at=reset)  # Claude Code says: 100 % of the 5-hour window
    wait_for_notification(notifications, "Next session of my app ü at ")
    [job] = jobs()
    assert datetime.fromisoformat(job["run_at"]) == reset
    [call] = fake_claude.wait_for(1, timeout=20)
    assert call["t"] >= reset.timestamp() - 0.5
    wait_until_launched(handoff)
    time.sleep(1)  # the daemon re-evaluates: the same limit must not schedule it again
    assert jobs() == [] and len(fake_claude.calls()) == 1
    assert (
        "tmux attach -t baton-my-app"
        in wait_for_notification(notifications, "Claude Code resumed my app ü")["body"]
    )


def test_a_launch_interrupted_by_a_crash_is_finished_when_the_daemon_restarts(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str, daemons: Daemons
) -> None:
    # APScheduler removes a date job as it starts it: a daemon killed at that instant leaves a pending
    # handoff with a past schedule and no job. The next start must launch it (within the grace period) ...
    lost = write_handoff(project)
    ho.update(lost, scheduled_for=datetime.now(UTC) - timedelta(seconds=30))
    # ... and must not launch again one whose launch was recorded before the crash.
    done = write_handoff(project)
    ho.update(done, scheduled_for=datetime.now(UTC) - timedelta(seconds=30))
    from daemon.launch_store import record

    engine = open_ledger(paths.ledger_db)
    fields = {"handoff_path": str(done), "project": str(project), "trigger": "scheduled", "mode": "tmux"}
    record(
        engine,
        now=datetime.now(UTC),
        handoff_id=done.stem,
        argv=["tmux"],
        tmux_session="baton-my-app",
        pid=1,
        log_path=None,
        error=None,
        **fields,
    )
    daemons.start()
    [call] = fake_claude.wait_for(1)
    time.sleep(1)
    assert len(fake_claude.calls()) == 1 and call["cwd"] == str(project)
    assert ho.load(lost).status == "launched" and ho.load(done).status == "launched"
    assert [r.handoff_id for r in recent(open_ledger(paths.ledger_db))] == [lost.stem, done.stem]


def test_a_scheduled_launch_that_cannot_start_is_reported_and_not_retried(
    paths: BatonPaths, project: Path, daemons: Daemons, notifications: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_LAUNCH__CLAUDE_PATH", "/nonexistent/claude")
    handoff = write_handoff(project)
    daemons.start()
    run_baton("schedule", "--at", "+1s", "--handoff", str(handoff))
    got = wait_for_notification(notifications, "Could not resume my app ü")
    assert "claude not found: '/nonexistent/claude'" in got["body"]
    assert f"baton launch now {handoff.stem}" in got["body"]
    h = ho.load(handoff)
    assert (h.status, h.start, h.scheduled_for) == ("pending", "manual", None) and jobs() == []
