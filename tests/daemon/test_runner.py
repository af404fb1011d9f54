"""`baton run` as a process: one instance, clean stop on signals, SIGHUP reload, bad config, late roots."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.control import request
from daemon.paths import BatonPaths
from tests.support.desktop import NotificationServer
from tests.support.processes import ROOT, DaemonProcess, alert_on_record, append, assistant_line, limit_line


def transcript(claude: Path, name: str = "s1") -> Path:
    return claude / "projects" / "-home-me-app" / f"{name}.jsonl"


@pytest.mark.slow
def test_second_instance_is_refused_and_sigterm_stops_cleanly(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    first = start_daemon()
    second = subprocess.run(
        [sys.executable, "-m", "daemon", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 75
    assert f"already running (pid {first.pid}" in second.stderr
    named = re.findall(r"`baton ([a-z -]+)`", second.stderr)
    assert "service stop" in named
    for command in named:  # every command the hint names exists (newcomer #8)
        shown = subprocess.run(
            [sys.executable, "-m", "daemon", *command.split(), "--help"],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert shown.returncode == 0, f"`baton {command}` does not exist"
    assert request(BatonPaths.from_env(), {"op": "ping"})["pid"] == first.pid
    assert first.stop(signal.SIGTERM, timeout=5) == 0
    assert "stopped" in first.output()


@pytest.mark.slow
def test_sigint_stops_and_a_new_instance_can_start(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    assert start_daemon().stop(signal.SIGINT, timeout=5) == 0
    assert start_daemon().stop(timeout=5) == 0


def test_invalid_config_refuses_to_start_with_exit_78(baton_home: Path, claude_dir: Path) -> None:
    (baton_home / "config.toml").write_text("[alerts]\nthresholds = [80, 190]\n")
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 78
    assert "At 'alerts.thresholds" in done.stderr and "between 1 and 100" in done.stderr


@pytest.mark.slow
def test_sighup_reloads_the_config(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    config = baton_home / "config.toml"
    config.write_text('[quota]\nplan = "custom"\ntoken_limit = 1000\n')
    daemon = start_daemon()
    assert daemon.snapshot()["tokens_limit"] == 1000  # type: ignore[index]
    config.write_text('[quota]\nplan = "custom"\ntoken_limit = 2000\n')
    os.kill(daemon.pid, signal.SIGHUP)
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), output_tokens=500)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_limit") == 2000, what="the new limit")
    config.write_text("[quota]\nplan = 'nope'\n")  # invalid: logged, the old settings stay
    os.kill(daemon.pid, signal.SIGHUP)
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), output_tokens=500)])
    daemon.wait_until(lambda: "reload_refused" in daemon.output(), what="the refusal")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


@pytest.mark.slow
def test_transcript_root_created_after_start_is_followed(
    baton_home: Path,
    home_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("BATON_QUOTA__PLAN", "custom")
    monkeypatch.setenv("BATON_QUOTA__TOKEN_LIMIT", "10000")
    daemon = start_daemon()
    assert daemon.snapshot()["tokens_used"] == 0  # type: ignore[index]
    late = home_dir / ".claude" / "projects" / "-home-me-new" / "s2.jsonl"
    append(late, [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=2500)])
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("tokens_used") == 2500, what="the late root's line"
    )
    deeper = late.parent.parent / "-home-me-other" / "s3" / "subagents" / "agent-a1.jsonl"
    append(deeper, [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=500)])
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("tokens_used") == 3000, what="a new sub-folder's line"
    )


@pytest.mark.slow
def test_partial_lines_and_bad_lines_are_handled_and_limit_messages_are_official(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    path = transcript(claude_dir)
    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "100000"})
    whole = assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=1000)
    path.parent.mkdir(parents=True)
    with path.open("a") as f:  # half a line: nothing to count until its end arrives
        f.write(whole[:50])
        f.flush()
    time.sleep(0.3)
    append(path, [whole[50:]])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 1000, what="the completed line")
    broken = '{"type":"assistant","message":{"usage":{"input_tokens":"many"'
    append(path, [broken, assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=500)])
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("tokens_used") == 1500, what="the good line after"
    )
    daemon.wait_until(lambda: f"{path}:2" in daemon.output(), what="the bad line named by file and line")
    reset = datetime.now().astimezone().replace(second=0, microsecond=0)
    text = (
        f"You've hit your session limit · resets {(reset.hour % 12) or 12}{'am' if reset.hour < 12 else 'pm'}"
    )
    append(path, [limit_line(datetime.now(UTC), text)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("limited") is True, what="the limit message")
    snap = daemon.snapshot() or {}
    assert (
        snap["source"] == "official" and snap["source_detail"] == "limit_message" and snap["percent"] == 100
    )
    assert json.loads(json.dumps(snap))["reset_at"]


@pytest.mark.slow
def test_statusline_figure_wakes_the_daemon_and_an_alert_fires_once_across_sources(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "10000"})
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=8100)])
    notifications.wait_for(1)  # the estimate crossed 80 % first
    resets = int(time.time()) + 3600
    payload = {
        "session_id": "s",
        "rate_limits": {"five_hour": {"used_percentage": 86.0, "resets_at": resets}},
    }
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        cwd=ROOT,
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    daemon.wait_until(
        lambda: (daemon.snapshot() or {}).get("source") == "official", what="the official figure"
    )
    snap = daemon.snapshot() or {}
    assert snap["percent"] == 86.0 and snap["source_detail"] == "statusline"
    time.sleep(0.3)
    assert [n["summary"] for n in notifications.received()] == ["80% of the 5-hour window used"]


def zone_at_midday(now: datetime) -> str:
    """Return a fixed-offset IANA zone in which `now` falls between 12:00 and 13:00 (midnight 11 h away)."""
    hours = 12 - now.hour  # -11 .. 12; Etc/GMT signs are inverted (Etc/GMT-12 is UTC+12)
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"


def test_zone_at_midday_is_midday() -> None:
    from zoneinfo import ZoneInfo

    for hour in range(24):
        now = datetime(2026, 12, 6, hour, 59, 59, tzinfo=UTC)
        assert now.astimezone(ZoneInfo(zone_at_midday(now))).hour == 12


@pytest.mark.slow
def test_daily_budget_alert_for_api_users(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    # The day is the configured zone's: one where it is midday now, so the line and the daemon's evaluation
    # (a fraction of a second apart) fall on the same day. In the machine's zone, a line written just before
    # midnight and evaluated just after was yesterday's spend, and no alert came.
    daemon = start_daemon(
        {
            "BATON_ALERTS__DAILY_BUDGET_USD": "0.02",
            "BATON_ALERTS__THRESHOLDS": "[80]",
            "BATON_GENERAL__TIMEZONE": zone_at_midday(datetime.now(UTC)),
        }
    )
    # claude-sonnet-4-5: $15 per million output tokens -> 1,100 tokens = $0.0165 = 82.5 % of $0.02
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=1100)])
    (got,) = notifications.wait_for(1)
    assert got["summary"] == "80% of the daily budget spent" and "$0.0165 of $0.0200" in got["body"]
    assert daemon.stop() == 0


@pytest.mark.slow
def test_an_alert_recorded_but_not_sent_before_a_crash_is_sent_on_start(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    from daemon.db import open_ledger

    engine = open_ledger(baton_home / "baton.db")
    now_ms = int(time.time() * 1000)
    with engine.begin() as conn:  # what a kill -9 between "record" and "send" leaves behind
        conn.exec_driver_sql(
            "INSERT INTO alerts_fired (kind, threshold, window_start_ms, window_end_ms, source, sent, title, "
            "body, fired_ms, delivered) VALUES ('five_hour', 90, ?, ?, 'estimate', 1, "
            "'90% of the 5-hour window used', 'Wrap up the current task and commit.', ?, NULL)",
            (now_ms - 3600_000, now_ms + 3600_000, now_ms),
        )
    engine.dispose()
    daemon = start_daemon()
    (got,) = notifications.wait_for(1)
    assert got["summary"] == "90% of the 5-hour window used"
    # Sent again; a kill -9 before this delivery is recorded would (by design) send it once more.
    daemon.wait_until(lambda: alert_on_record(baton_home, 90), what="the resent alert on record")
    daemon.kill9()
    start_daemon()
    time.sleep(0.3)
    assert len(notifications.received()) == 1


@pytest.mark.slow
def test_systemd_notify_ready_watchdog_and_stopping(
    baton_home: Path, claude_dir: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    daemon = start_daemon({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
    got = [sock.recv(256).decode() for _ in range(3)]
    assert got[0].splitlines()[0] == "READY=1" and got[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
    daemon.stop()
    rest: list[str] = []
    while not any(m.startswith("STOPPING=1") for m in rest):
        rest.append(sock.recv(256).decode())
    sock.close()


def test_the_watchdog_is_pinged_at_the_interval_sdnotify_returns(
    baton_home: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watchdog_interval()` is already half of WATCHDOG_USEC: the daemon must not halve it again."""
    from daemon import sdnotify
    from daemon.config import load_settings
    from daemon.runner import TICK_S, Daemon

    paths = BatonPaths.from_env()
    daemon = Daemon(paths, load_settings(paths))
    daemon._sdnotify = sdnotify
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "6000000")  # WatchdogSec=6
    assert sdnotify.watchdog_interval() == 3.0
    assert daemon._watchdog_every() == 3.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert daemon._watchdog_every() == TICK_S


def statusline(payload: dict[str, object]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "statusline"],
        cwd=ROOT,
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    return done.stdout


@pytest.mark.slow
def test_a_statusline_figure_wakes_a_running_daemon_when_the_stamp_already_exists(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """Newcomer #2: an earlier statusline call left the stamp; the next figure must still wake the daemon
    (a touch of an existing file is only an attribute change), which re-evaluates and alerts at once."""
    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "100000"})
    resets = int(time.time()) + 3600
    statusline({"rate_limits": {"five_hour": {"used_percentage": 40.0, "resets_at": resets}}})
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 40.0, what="the first figure")
    assert (baton_home / "official.stamp").exists()
    statusline({"rate_limits": {"five_hour": {"used_percentage": 85.0, "resets_at": resets}}})
    (got,) = notifications.wait_for(1, timeout=5)  # the tick is a minute away: only a wake-up gets here
    assert got["summary"] == "80% of the 5-hour window used"
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 85.0, timeout=2, what="85 %")


@pytest.mark.slow
def test_a_line_appended_while_the_ledger_is_locked_arrives_after_the_lock_without_another_write(
    baton_home: Path, claude_dir: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Review #2: the ingest fails on a locked ledger (busy for longer than its 10 s timeout); the path is
    kept and read again once the lock is gone, though the transcript never changes again."""
    import sqlite3

    daemon = start_daemon({"BATON_QUOTA__PLAN": "custom", "BATON_QUOTA__TOKEN_LIMIT": "100000"})
    holder = sqlite3.connect(baton_home / "baton.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the ledger (a VACUUM, a long prune)
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=700)])
    daemon.wait_until(lambda: "ingest_failed" in daemon.output(), timeout=20, what="the failed ingest")
    holder.execute("COMMIT")
    holder.close()
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 700, what="the retried line")
    with sqlite3.connect(baton_home / "baton.db") as conn:
        assert conn.execute("SELECT count(*), sum(output_tokens) FROM usage_events").fetchone() == (1, 700)
    assert daemon.proc.poll() is None


@pytest.mark.slow
def test_with_an_unknown_plan_alerts_and_the_prompt_hook_state_no_made_up_tokens(
    baton_home: Path,
    claude_dir: Path,
    notifications: NotificationServer,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """Newcomer #3, end to end: the default `auto` plan with no history and no login to read; the official
    85 % is a fact, Pro's 200,000 tokens are not."""
    daemon = start_daemon()
    append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=80_000)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 80_000, what="the usage")
    resets = int(time.time()) + 3600
    statusline({"rate_limits": {"five_hour": {"used_percentage": 85.0, "resets_at": resets}}})
    (got,) = notifications.wait_for(1)
    assert got["summary"] == "80% of the 5-hour window used" and "tokens left" not in got["body"]
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("percent") == 85.0, what="the snapshot")
    snap = daemon.snapshot() or {}
    assert snap["limit_known"] is False and snap["estimated_limit"] == 200_000
    assert snap["tokens_remaining"] is None and snap["tokens_limit"] is None and snap["percent"] == 85.0
    hook = subprocess.run(
        [sys.executable, "-m", "daemon", "hook", "user-prompt-submit"],
        cwd=ROOT,
        input=json.dumps({"hook_event_name": "UserPromptSubmit", "prompt": "go on"}),
        text=True,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert "85%" in hook.stdout and "tokens left" not in hook.stdout


@pytest.mark.slow
def test_sighup_moves_the_watch_to_new_transcript_roots_and_names_what_needs_a_restart(
    baton_home: Path, claude_dir: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Review #17: a reloaded `transcripts.roots` reaches the ingestor and the watch."""
    config = baton_home / "config.toml"
    config.write_text('[quota]\nplan = "custom"\ntoken_limit = 100000\n')
    daemon = start_daemon()
    other = tmp_path / "other-claude"
    config.write_text(
        f'[quota]\nplan = "custom"\ntoken_limit = 100000\noauth_cache_seconds = 600\n'
        f'[transcripts]\nroots = ["{other}"]\n'
    )
    os.kill(daemon.pid, signal.SIGHUP)
    daemon.wait_until(lambda: "config_reloaded" in daemon.output(), what="the reload")
    assert "reload_needs_restart" in daemon.output() and "quota.oauth_cache_seconds" in daemon.output()
    append(transcript(other), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=900)])
    daemon.wait_until(lambda: (daemon.snapshot() or {}).get("tokens_used") == 900, what="the new root's line")


def test_the_periodic_tick_reads_lines_whose_file_events_were_lost(
    baton_home: Path, claude_dir: Path
) -> None:
    """Review #2: no watch runs here, as if inotify had dropped the events; the tick's stat-only catch-up
    finds the line anyway."""
    import sqlite3

    from daemon.config import load_settings
    from daemon.db import open_ledger
    from daemon.ingest import Ingestor
    from daemon.runner import Daemon

    paths = BatonPaths.from_env()
    daemon = Daemon(paths, load_settings(paths))
    daemon.engine = open_ledger(paths.ledger_db)
    daemon.ingestor = Ingestor(paths, daemon.settings)
    daemon.ctx = daemon._context(daemon.engine)
    try:
        append(transcript(claude_dir), [assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=321)])
        later = time.monotonic() + 3600
        assert daemon._pass(set(), later, later) == later  # no event and nothing due: nothing read
        with sqlite3.connect(paths.ledger_db) as conn:
            assert conn.execute("SELECT count(*) FROM usage_events").fetchone() == (0,)
        now = time.monotonic()
        assert daemon._pass(set(), now, now) > now  # the tick: catch-up, then the next tick is set
        with sqlite3.connect(paths.ledger_db) as conn:
            assert conn.execute("SELECT sum(output_tokens) FROM usage_events").fetchone() == (321,)
        assert daemon.latest is not None and daemon.latest.tokens_used == 321
    finally:
        daemon.ingestor.close()
        daemon.engine.dispose()
