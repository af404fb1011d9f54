"""`baton doctor`: each check on real files, a real D-Bus notification, and the report's exit code."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon import doctor
from daemon.doctor import Check, Probe
from daemon.paths import BatonPaths

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def _probe(home: Path, **kw: Any) -> Probe:
    defaults: dict[str, Any] = {
        "which": lambda t: f"/usr/bin/{t}",
        "home": home,
        "now": NOW,
        "platform": "linux",
        "run": lambda argv: (0, f"{Path(argv[0]).name} 1.0"),
        "notify": False,
    }
    defaults.update(kw)
    return doctor.prepare(BatonPaths.from_env(), env=dict(os.environ), **defaults)


def _by_name(results: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in results}


def _claude_settings(claude_dir: Path, data: dict[str, Any]) -> None:
    (claude_dir / "settings.json").write_text(json.dumps(data))


@pytest.fixture
def healthy(home_dir: Path, baton_home: Path, claude_dir: Path) -> Path:
    """A machine where everything is set up: history, a migrated ledger, status line, an installed service."""
    from daemon.db import open_ledger

    (claude_dir / "projects" / "-home-u-repo").mkdir()
    (claude_dir / "projects" / "-home-u-repo" / "s.jsonl").write_text("{}\n")
    open_ledger(BatonPaths.from_env().ledger_db).dispose()
    _claude_settings(claude_dir, {"statusLine": {"type": "command", "command": "baton statusline"}})
    unit = home_dir / ".config/systemd/user/baton.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    return home_dir


@pytest.mark.slow
def test_a_healthy_machine_passes_every_check_and_the_notification_arrives(
    healthy: Path, notifications: Any
) -> None:
    probe = _probe(healthy, notify=True, daemon_state=lambda p: "running (pid 42)")
    results = doctor.run_checks(probe)

    assert [(c.name, c.status) for c in results if c.status != "ok"] == []
    assert doctor.exit_code(results) == 0
    got = notifications.wait_for(1)
    assert got[0]["summary"] == "baton doctor"
    checks = _by_name(results)
    assert "1 project(s), 1 transcript file(s)" in checks["transcripts"].detail
    assert "schema up to date" in checks["ledger"].detail
    assert checks["service"].detail.endswith("daemon running (pid 42)")
    assert "Everything baton needs works." in doctor.render(results)


def test_no_notification_server_is_a_warning_with_a_fix(healthy: Path, dbus_session: str) -> None:
    check = doctor.check_notification(_probe(healthy, notify=True))
    assert check.status == "warn"
    assert "org.freedesktop.Notifications" in check.detail and check.fix


def test_an_invalid_config_fails_and_names_the_key(healthy: Path, baton_home: Path) -> None:
    (baton_home / "config.toml").write_text("[alerts]\nthresholds = [120]\n")
    results = doctor.run_checks(_probe(healthy))
    config = _by_name(results)["config"]
    assert config.status == "fail" and "alerts.thresholds" in config.detail
    assert doctor.exit_code(results) == 1
    assert "1 problem(s) stop baton from working" in doctor.render(results)


def test_a_claude_config_dir_without_projects_fails_transcripts(
    healthy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "nowhere"))
    check = doctor.check_transcripts(_probe(healthy))
    assert check.status == "fail" and "CLAUDE_CONFIG_DIR" in check.detail and check.fix


def test_no_history_at_all_is_only_a_warning_pointing_to_the_demo(
    home_dir: Path, baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    check = doctor.check_transcripts(_probe(home_dir))
    assert check.status == "warn" and "baton demo" in (check.fix or "")


def _as_user_without_root(action: Callable[[], Check], uid: int, gid: int) -> Check:
    """Return what `action` gives when run in a forked child that has dropped root for `uid`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: give up root for good, run the check, report it through the pipe
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.write(write, json.dumps(asdict(action())).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return Check(**json.loads(data))


def test_an_unreadable_project_folder_fails(
    healthy: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        folder = claude_dir / "projects" / "-home-u-repo"
        folder.chmod(0)
        try:
            check = doctor.check_transcripts(_probe(healthy))
        finally:
            folder.chmod(0o700)
        assert check.status == "fail" and str(folder) in check.detail
        return
    # Root reads everything: run the check as `nobody` on a Claude dir that user owns, one folder closed.
    import pwd

    import daemon.transcripts  # noqa: F401  (imported before dropping root)

    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="baton-doctor-"))
    try:
        folder = base / "projects" / "-home-u-repo"
        (base / "projects" / "-home-u-other").mkdir(parents=True)
        folder.mkdir()
        (folder / "s.jsonl").write_text("{}\n")
        for path in (base, *base.rglob("*")):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(base))
        probe = _probe(healthy)
        assert doctor.check_transcripts(probe).status == "ok"  # as root
        folder.chmod(0)
        check = _as_user_without_root(lambda: doctor.check_transcripts(probe), nobody.pw_uid, nobody.pw_gid)
    finally:
        shutil.rmtree(base)
    assert check.status == "fail" and str(folder) in check.detail
    assert check.fix == f"give your user read access: chmod -R u+rX {folder}"


def test_ledger_missing_pending_or_readable_by_others(home_dir: Path, baton_home: Path) -> None:
    probe = _probe(home_dir)
    assert doctor.check_ledger(probe).status == "ok"  # created on first run
    from daemon.db import open_ledger

    db = BatonPaths.from_env().ledger_db
    open_ledger(db).dispose()
    assert doctor.check_ledger(probe).status == "ok"
    with sqlite3.connect(db) as conn:  # as if baton was upgraded and has a migration to run
        last = conn.execute("SELECT * FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()
        conn.execute("DELETE FROM schema_migrations WHERE rowid = (SELECT max(rowid) FROM schema_migrations)")
    check = doctor.check_ledger(probe)
    assert check.status == "warn" and "1 migration(s) pending" in check.detail
    with sqlite3.connect(db) as conn:
        conn.execute(f"INSERT INTO schema_migrations VALUES ({', '.join('?' * len(last))})", last)
    db.chmod(0o644)
    check = doctor.check_ledger(probe)
    assert check.status == "warn" and check.fix == f"chmod 600 {db}"


def test_missing_tmux_and_claude_are_warnings_with_install_hints(healthy: Path) -> None:
    probe = _probe(healthy, which=lambda t: None)
    tmux, claude = doctor.check_tool(probe, "tmux"), doctor.check_tool(probe, "claude")
    assert (tmux.status, claude.status) == ("warn", "warn")
    assert "apt-get install tmux" in (tmux.fix or "")
    assert "@anthropic-ai/claude-code" in (claude.fix or "")


def test_real_tmux_reports_its_version(healthy: Path) -> None:
    from tests.support.real import require_real

    require_real("tmux")
    probe = doctor.prepare(BatonPaths.from_env(), env=dict(os.environ), home=healthy, notify=False)
    check = doctor.check_tool(probe, "tmux")
    assert check.status == "ok" and "tmux" in check.detail


def test_service_states(home_dir: Path, baton_home: Path) -> None:
    probe = _probe(home_dir)
    check = doctor.check_service(probe)
    assert check.status == "warn" and check.fix == "baton service install"
    probe = _probe(home_dir, daemon_state=lambda p: "running")
    assert "stops when you log out" in doctor.check_service(probe).detail
    unit = home_dir / ".config/systemd/user/baton.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("")
    check = doctor.check_service(_probe(home_dir, which=lambda t: None))
    assert check.status == "warn" and "baton run" in (check.fix or "")


def test_inotify_limit_against_the_number_of_folders(healthy: Path, claude_dir: Path, tmp_path: Path) -> None:
    for i in range(4):
        (claude_dir / "projects" / f"p{i}").mkdir()
    limit = tmp_path / "max_user_watches"  # projects/ + 5 project folders = 6 watches
    for value, status in (("6", "fail"), ("10", "warn"), ("100", "ok")):
        limit.write_text(value + "\n")
        check = doctor.check_inotify(_probe(healthy, inotify_limit_file=limit))
        assert check.status == status, (value, check)
        assert check.detail.startswith(f"6 folder(s) to watch, limit {value}")
    assert doctor.check_inotify(_probe(healthy, platform="macos")).status == "ok"


def test_statusline_missing_foreign_or_configured(healthy: Path, claude_dir: Path) -> None:
    probe = _probe(healthy)
    assert doctor.check_statusline(probe).status == "ok"
    _claude_settings(claude_dir, {"statusLine": {"type": "command", "command": "~/bin/my-line.sh"}})
    check = doctor.check_statusline(probe)
    assert check.status == "warn" and "my-line.sh" in check.detail
    _claude_settings(claude_dir, {"theme": "dark"})
    check = doctor.check_statusline(probe)
    assert check.status == "warn" and check.fix == "baton claude install-hooks"
    (claude_dir / "settings.json").unlink()
    assert "does not exist" in doctor.check_statusline(probe).detail


def test_a_statusline_whose_baton_is_not_on_path_is_a_warning(healthy: Path, claude_dir: Path) -> None:
    check = doctor.check_statusline(_probe(healthy, which=lambda t: None))
    assert check.status == "warn" and "`baton` is not on PATH" in check.detail
    assert check.fix and "baton service install" in check.fix
    _claude_settings(
        claude_dir, {"statusLine": {"type": "command", "command": "/opt/v/bin/baton statusline"}}
    )
    assert doctor.check_statusline(_probe(healthy, which=lambda t: None)).status == "ok"


def test_the_statusline_is_looked_up_in_the_first_claude_config_dir(
    healthy: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{tmp_path / 'other'}, {claude_dir}")
    check = doctor.check_statusline(_probe(healthy))
    assert check.status == "warn" and str(tmp_path / "other" / "settings.json") in check.detail
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f" {claude_dir} ,{tmp_path / 'other'}")
    assert doctor.check_statusline(_probe(healthy)).detail == f"configured in {claude_dir / 'settings.json'}"


def test_an_auto_plan_without_official_figures_or_a_known_subscription_is_a_warning(
    home_dir: Path, baton_home: Path, claude_dir: Path
) -> None:
    check = doctor.check_plan(_probe(home_dir))
    assert check.status == "warn" and "guess" in check.detail
    assert check.fix and "baton claude install-hooks" in check.fix and "quota.plan" in check.fix

    # The login says Max 20x (only the plan fields are read; the tokens are never kept).
    credentials = {
        "claudeAiOauth": {
            "accessToken": "secret",
            "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_20x",
        }
    }
    (claude_dir / ".credentials.json").write_text(json.dumps(credentials))
    check = doctor.check_plan(_probe(home_dir))
    assert check == Check("plan", "ok", "auto: your Claude login's plan is max20")
    (baton_home / "config.toml").write_text("[quota]\nread_login_plan = false\n")  # the person said no
    check = doctor.check_plan(_probe(home_dir))
    assert check.status == "warn" and "(quota.read_login_plan is off)" in check.detail
    (baton_home / "config.toml").unlink()
    (claude_dir / ".credentials.json").unlink()

    # Official figures: the status line is set up, or the ledger has recorded some in the last 24 h.
    _claude_settings(claude_dir, {"statusLine": {"type": "command", "command": "baton statusline"}})
    assert doctor.check_plan(_probe(home_dir)).status == "ok"
    (claude_dir / "settings.json").unlink()
    _official_figure(NOW - timedelta(hours=2), "oauth")
    check = doctor.check_plan(_probe(home_dir))
    assert check == Check(
        "plan", "ok", "auto: official figures recorded 2 h ago (from the OAuth usage endpoint)"
    )
    assert doctor.check_plan(_probe(home_dir, now=NOW + timedelta(days=2))).status == "warn"  # long ago
    BatonPaths.from_env().ledger_db.unlink()

    (baton_home / "config.toml").write_text("[quota]\nplan = 'max5'\n")
    assert doctor.check_plan(_probe(home_dir)) == Check("plan", "ok", "max5 (quota.plan)")


def _official_figure(at: datetime, source: str = "statusline") -> None:
    """Record one official figure in the ledger, as the daemon would."""
    from daemon.db import open_ledger

    db = BatonPaths.from_env().ledger_db
    if not db.exists():
        open_ledger(db).dispose()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO official_figures (ts_ms, source, window, used_percent)"
            " VALUES (?, ?, 'five_hour', 40)",
            (int(at.timestamp() * 1000), source),
        )


def test_plan_and_statusline_agree_when_another_status_line_is_configured(
    healthy: Path, claude_dir: Path
) -> None:
    _claude_settings(claude_dir, {"statusLine": {"type": "command", "command": "~/bin/my-line.sh"}})
    _official_figure(NOW - timedelta(days=3))  # from when baton's status line was configured
    checks = _by_name(doctor.run_checks(_probe(healthy)))
    assert checks["statusline"].status == "warn" and "my-line.sh" in checks["statusline"].detail
    assert checks["plan"].status == "warn" and "gets no official figures" in checks["plan"].detail
    assert "gives the official figures" not in checks["plan"].detail

    # That script calls `baton statusline`: figures arrive, and both checks say so.
    _official_figure(NOW - timedelta(minutes=20))
    checks = _by_name(doctor.run_checks(_probe(healthy)))
    assert checks["statusline"].status == "ok"
    assert "passes Claude Code's figures to baton (last 20 min ago)" in checks["statusline"].detail
    assert checks["plan"] == Check("plan", "ok", "auto: Claude Code's status line gives the official figures")

    # Figures from the OAuth endpoint are official too, while the status line still passes none.
    checks = _by_name(doctor.run_checks(_probe(healthy, now=NOW + timedelta(days=2))))
    assert checks["statusline"].status == "warn" and checks["plan"].status == "warn"
    _official_figure(NOW + timedelta(days=2) - timedelta(hours=5), "oauth")
    checks = _by_name(doctor.run_checks(_probe(healthy, now=NOW + timedelta(days=2))))
    assert checks["statusline"].status == "warn" and "passed no figures" in checks["statusline"].detail
    assert checks["plan"].detail == "auto: official figures recorded 5 h ago (from the OAuth usage endpoint)"


def test_a_data_or_runtime_folder_open_to_others_is_a_warning_with_its_chmod(
    home_dir: Path, baton_home: Path
) -> None:
    probe = _probe(home_dir)
    paths = BatonPaths.from_env()
    runtime = paths.runtime_dir(probe.env)
    assert not runtime.exists()
    assert doctor.check_privacy(probe) == Check("privacy", "ok", f"{baton_home}: private to you")

    baton_home.chmod(0o755)  # e.g. a virtualenv made inside it, or a umask of 022
    check = doctor.check_privacy(probe)
    assert check.status == "warn"
    assert f"the data folder {baton_home} (mode 755) is open to other users" in check.detail
    assert check.fix == f"chmod 700 {baton_home}"

    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)
    check = doctor.check_privacy(probe)
    assert (
        f"the runtime folder {runtime} (mode 755) is open to other users (the control socket" in check.detail
    )
    assert check.fix == f"chmod 700 {baton_home} {runtime}"

    baton_home.chmod(0o700)
    runtime.chmod(0o700)
    assert doctor.check_privacy(probe) == Check(
        "privacy", "ok", f"{baton_home} and {runtime}: private to you"
    )


def test_privacy_is_reported_with_the_ledger_in_the_full_run(home_dir: Path, baton_home: Path) -> None:
    baton_home.chmod(0o750)
    results = doctor.run_checks(_probe(home_dir))
    assert [c.name for c in results][2:4] == ["ledger", "privacy"]
    assert _by_name(results)["privacy"].status == "warn"
    assert f"fix: chmod 700 {baton_home}" in doctor.render(results)


def test_usage_from_the_future_means_the_clock_is_wrong(home_dir: Path, baton_home: Path) -> None:
    db = BatonPaths.from_env().ledger_db
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE usage_events (ts_ms INTEGER)")
        conn.execute(
            "INSERT INTO usage_events VALUES (?)", (int((NOW + timedelta(hours=2)).timestamp() * 1000),)
        )
    check = doctor.check_clock(_probe(home_dir))
    assert check.status == "warn" and "in the future" in check.detail
    check = doctor.check_clock(_probe(home_dir, now=NOW + timedelta(hours=3)))
    assert check.status == "ok" and "zone" in check.detail


def test_a_crashing_check_is_reported_and_the_others_still_run(
    healthy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(probe: Probe) -> Check:
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "check_ledger", broken)
    results = doctor.run_checks(_probe(healthy))
    assert _by_name(results)["ledger"] == Check(
        "ledger", "fail", "the check itself failed: RuntimeError: boom"
    )
    assert len(results) == 12
