"""`baton doctor`: check that everything baton needs works, and say how to fix what does not.

Each check is a small function of a `Probe` (paths, settings, environment and the few system calls it needs,
injectable for tests) returning a `Check`. Doctor changes nothing on the machine: it does not create the
ledger or run migrations; the one thing it does is send a test notification (unless told not to).
A "fail" is something that stops baton from working; anything that only limits a feature is a "warn".
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from daemon import claude_paths, service
from daemon.config import Settings, load_settings
from daemon.errors import BatonError, ConfigError
from daemon.paths import BatonPaths

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One check's outcome: `fix` says what to do when the status is not ok."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass
class Probe:
    """What the checks look at. Defaults are the real machine; tests replace parts."""

    paths: BatonPaths
    env: Mapping[str, str]
    settings: Settings | None = None
    config_problem: ConfigError | None = None
    which: Callable[[str], str | None] = shutil.which
    platform: service.Platform = field(default_factory=service.current_platform)
    home: Path = field(default_factory=Path.home)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    notify: bool = True
    inotify_limit_file: Path = Path("/proc/sys/fs/inotify/max_user_watches")
    run: Callable[[list[str]], tuple[int, str]] | None = None
    daemon_state: Callable[[BatonPaths], str | None] | None = None

    def command(self, argv: list[str]) -> tuple[int, str]:
        """Return (exit code, stdout+stderr) of a short command; 127 when it cannot be run."""
        if self.run is not None:
            return self.run(argv)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, str(exc)
        return done.returncode, (done.stdout + done.stderr).strip()


def effective_settings(probe: Probe) -> Settings:
    """Return the probe's settings, the defaults when the configuration is invalid (already reported)."""
    if probe.settings is not None:
        return probe.settings
    return Settings.model_construct()


# --- the checks, in the order they are shown ---


def check_config(probe: Probe) -> Check:
    """The configuration file and BATON_* variables are valid."""
    file = probe.paths.config_file
    if probe.config_problem is not None:
        problems = "; ".join(probe.config_problem.problems)
        return Check("config", "fail", problems, f"fix {file}, then run `baton config validate`")
    if file.is_file():
        return Check("config", "ok", f"{file} is valid")
    return Check(
        "config", "ok", f"no {file.name}: every setting at its default (`baton config init` writes one)"
    )


def check_transcripts(probe: Probe) -> Check:
    """Claude Code's transcript folders are found and readable."""
    from daemon.transcripts import find_roots

    try:
        roots = find_roots(probe.settings, probe.env)
    except BatonError as exc:
        return Check("transcripts", "fail", exc.message, exc.hint)
    if not roots:
        return Check(
            "transcripts",
            "warn",
            "no Claude Code history found (~/.claude/projects and ~/.config/claude/projects are missing)",
            "use Claude Code once, or set CLAUDE_CONFIG_DIR; `baton demo` shows baton at work meanwhile",
        )
    unreadable = [str(p) for p in _unreadable(roots)]
    if unreadable:
        return Check(
            "transcripts",
            "fail",
            f"cannot read {len(unreadable)} path(s), e.g. {unreadable[0]}",
            f"give your user read access: chmod -R u+rX {unreadable[0]}",
        )
    projects = sum(1 for r in roots for p in (r / "projects").iterdir() if p.is_dir())
    files = sum(1 for r in roots for _ in (r / "projects").rglob("*.jsonl"))
    where = ", ".join(str(r) for r in roots)
    return Check("transcripts", "ok", f"{where}: {projects} project(s), {files} transcript file(s)")


def _unreadable(roots: Iterable[Path]) -> Iterable[Path]:
    for root in roots:
        projects = root / "projects"
        if not os.access(projects, os.R_OK | os.X_OK):
            yield projects
            continue
        for dirpath, dirnames, filenames in os.walk(projects):
            for d in dirnames:
                if not os.access(Path(dirpath, d), os.R_OK | os.X_OK):
                    yield Path(dirpath, d)
            for f in filenames:
                if f.endswith(".jsonl") and not os.access(Path(dirpath, f), os.R_OK):
                    yield Path(dirpath, f)


def check_ledger(probe: Probe) -> Check:
    """The ledger is writable and its schema is up to date (doctor neither creates nor migrates it)."""
    db = probe.paths.ledger_db
    if not db.exists():
        parent = next((p for p in (db.parent, *db.parent.parents) if p.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            return Check("ledger", "ok", f"{db} will be created on first run ({parent} is writable)")
        return Check("ledger", "fail", f"cannot create {db}: {parent} is not writable", f"chmod u+w {parent}")
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            applied = {(c, v) for c, v in conn.execute("SELECT component, version FROM schema_migrations")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Check("ledger", "fail", f"{db}: {exc}", "check the file's permissions and free disk space")
    pending = _pending_migrations(applied)
    mode = db.stat().st_mode & 0o777
    if pending:
        return Check(
            "ledger",
            "warn",
            f"{db}: {len(pending)} migration(s) pending",
            "they run when baton starts: `baton run`",
        )
    if mode & 0o077:
        return Check("ledger", "warn", f"{db} is readable by others (mode {mode:o})", f"chmod 600 {db}")
    return Check("ledger", "ok", f"{db}: writable, schema up to date")


def check_privacy(probe: Probe) -> Check:
    """baton's data folder (ledger, handoffs, logs) and its runtime folder (the control socket, which can
    schedule launches) are private to the user: theirs, closed to others. Doctor only reports; `baton run`
    creates missing ones private, and `baton service install` makes the data folder private."""
    folders = [
        ("data folder", probe.paths.data_dir, "the ledger, handoffs and logs are kept there"),
        ("runtime folder", probe.paths.runtime_dir(probe.env), "the control socket is there"),
    ]
    problems: list[str] = []
    fixes: list[str] = []
    open_folders: list[str] = []
    present: list[Path] = []
    for what, folder, holds in folders:
        try:
            info = folder.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"cannot check the {what} {folder}: {exc.strerror}")
            continue
        present.append(folder)
        mode = info.st_mode & 0o777
        if info.st_uid != os.getuid():
            problems.append(f"the {what} {folder} belongs to another user (uid {info.st_uid}; {holds})")
            fixes.append(f"sudo chown -R $USER {folder} && chmod 700 {folder}")
        elif mode & 0o077:
            problems.append(f"the {what} {folder} (mode {mode:o}) is open to other users ({holds})")
            open_folders.append(str(folder))
    if open_folders:
        fixes.append("chmod 700 " + " ".join(open_folders))
    if problems:
        return Check("privacy", "warn", "; ".join(problems), "; ".join(fixes) or None)
    if not present:
        return Check("privacy", "ok", f"{probe.paths.data_dir} will be created private to you (mode 700)")
    return Check("privacy", "ok", f"{' and '.join(str(p) for p in present)}: private to you")


def _pending_migrations(applied: set[tuple[str, int]]) -> list[tuple[str, int]]:
    from daemon import db

    return [(m.component, m.version) for m in db._collect() if (m.component, m.version) not in applied]


def check_notification(probe: Probe) -> Check:
    """A test notification reaches the desktop."""
    if not probe.notify:
        return Check("notification", "ok", "skipped (--no-notify)")
    from daemon import notify

    settings = effective_settings(probe)
    delivery = notify.deliver(
        settings, "baton doctor", "Test notification: quota alerts will look like this.", "info"
    )
    if delivery.delivered:
        return Check("notification", "ok", f"test notification delivered ({delivery.backend})")
    reasons = "; ".join(dict.fromkeys(why for _name, why in delivery.failures)) or "no backend available"
    if probe.platform == "macos":
        fix = "allow notifications for Script Editor/osascript in System Settings > Notifications"
    else:
        fix = (
            "run baton inside a desktop session (a notification server on D-Bus); meanwhile alerts are logged"
        )
    return Check("notification", "warn", f"not delivered: {reasons}", fix)


def _install_hint(tool: str, platform: service.Platform) -> str:
    if platform == "macos":
        return f"brew install {tool}" if tool == "tmux" else "npm install -g @anthropic-ai/claude-code"
    return "sudo apt-get install tmux" if tool == "tmux" else "npm install -g @anthropic-ai/claude-code"


def check_tool(probe: Probe, tool: Literal["claude", "tmux"]) -> Check:
    """`claude` / `tmux` (as configured in [launch]) can be found; launches need them."""
    settings = effective_settings(probe)
    configured = settings.launch.claude_path if tool == "claude" else settings.launch.tmux_path
    found = probe.which(configured)
    if found is None:
        what = "launching Claude Code after the reset" if tool == "claude" else "launching sessions in tmux"
        return Check(
            tool,
            "warn",
            f"`{configured}` is not on PATH: {what} will not work",
            f"{_install_hint(tool, probe.platform)}, or set launch.{tool}_path in config.toml",
        )
    code, out = probe.command([found, "-V" if tool == "tmux" else "--version"])
    version = out.splitlines()[0] if code == 0 and out else "version unknown"
    return Check(tool, "ok", f"{found} ({version})")


def check_service(probe: Probe) -> Check:
    """The service is installed and the daemon is running."""
    unit = service.service_file(probe.platform, probe.home)
    state = probe.daemon_state(probe.paths) if probe.daemon_state else None
    installed = unit.is_file()
    if state and installed:
        return Check("service", "ok", f"installed ({unit}); daemon {state}")
    if state:
        return Check(
            "service",
            "warn",
            f"daemon {state}, but no service is installed: it stops when you log out",
            "baton service install",
        )
    if not installed:
        return Check("service", "warn", "not installed, and no daemon is running", "baton service install")
    if not service.manager_running(probe.platform, probe.which):
        manager = "launchd" if probe.platform == "macos" else "systemd"
        return Check(
            "service",
            "warn",
            f"installed ({unit}), but {manager} is not running here and no daemon answers",
            "run baton in the foreground: `baton run`",
        )
    return Check(
        "service",
        "fail",
        f"installed ({unit}) but the daemon does not answer",
        "see `baton service status` and `baton service logs`",
    )


def count_directories(roots: Iterable[Path]) -> int:
    """Return how many directories the transcript watcher needs (one inotify watch each)."""
    return sum(1 for root in roots for _ in os.walk(root / "projects"))


def check_inotify(probe: Probe) -> Check:
    """Linux: the inotify watch limit covers the transcript folders (one watch per directory)."""
    if probe.platform != "linux":
        return Check("inotify", "ok", "not needed (FSEvents has no per-directory limit)")
    try:
        limit = int(probe.inotify_limit_file.read_text().strip())
    except (OSError, ValueError):
        return Check("inotify", "warn", f"cannot read {probe.inotify_limit_file}", None)
    from daemon.transcripts import find_roots

    try:
        needed = count_directories(find_roots(probe.settings, probe.env))
    except BatonError:
        needed = 0
    fix = (
        "echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-baton.conf"
        " && sudo sysctl --system"
    )
    detail = f"{needed} folder(s) to watch, limit {limit} (max_user_watches)"
    if needed >= limit:
        return Check("inotify", "fail", detail + ": new lines would be missed", fix)
    if needed * 2 > limit:  # editors and other watchers share the same per-user limit
        return Check("inotify", "warn", detail + ": over half the limit", fix)
    return Check("inotify", "ok", detail)


def _claude_env(probe: Probe) -> dict[str, str]:
    """Return the environment that locates Claude Code's files, with the probe's home."""
    return {**probe.env, "HOME": str(probe.home)}


def statusline_configured(probe: Probe) -> bool:
    """Return True when Claude Code's status line feeds baton: settings.json runs `baton statusline`, or
    runs a script that has passed figures to it within OFFICIAL_RECENT."""
    return check_statusline(probe).status == "ok"


def check_statusline(probe: Probe) -> Check:
    """Claude Code's status line runs `baton statusline` (it carries the official quota figures)."""
    file = claude_paths.settings_file(_claude_env(probe))
    fix = "baton claude install-hooks"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Check("statusline", "warn", f"{file} does not exist: no official quota figures", fix)
    except (OSError, ValueError) as exc:
        return Check("statusline", "warn", f"cannot read {file}: {exc}", "fix the JSON by hand, then " + fix)
    line = data.get("statusLine") if isinstance(data, dict) else None
    command = str(line.get("command", "")) if isinstance(line, dict) else ""
    if "statusline" in command and ("baton" in command or "-m daemon" in command):
        program = command.split()[0]
        if not os.path.isabs(os.path.expanduser(program)) and probe.which(program) is None:
            return Check(
                "statusline",
                "warn",
                f"{file} runs `{command}`, but `{program}` is not on PATH here: Claude Code may not find it",
                "baton service install (it links `baton` into ~/.local/bin), or write its full path there",
            )
        return Check("statusline", "ok", f"configured in {file}")
    if command:
        latest = _latest_official_figure(probe.paths.ledger_db, "statusline")
        if latest is not None and _recent(probe, latest[0]):  # that script calls `baton statusline`
            return Check(
                "statusline",
                "ok",
                f"{command!r} is configured in {file} and passes Claude Code's figures to baton"
                f" (last {_ago(probe.now - latest[0])} ago)",
            )
        return Check(
            "statusline",
            "warn",
            f"another status line is configured ({command!r}) and has passed no figures to baton in the last"
            f" {_ago(OFFICIAL_RECENT)}: baton relies on its estimates",
            "call `baton statusline` from your status line script (it reads the same JSON on stdin)",
        )
    return Check("statusline", "warn", f"not configured in {file}: baton relies on its estimates", fix)


# Official figures recorded within this long count as flowing now (from baton's status line called by another
# script, the OAuth endpoint or a limit message); older ones say nothing about the windows to come.
OFFICIAL_RECENT = timedelta(hours=24)
_SOURCES = {
    "statusline": "the status line",
    "oauth": "the OAuth usage endpoint",
    "limit_message": "a limit message",
}


def _latest_official_figure(db: Path, source: str | None = None) -> tuple[datetime, str] | None:
    """Return when the ledger's latest official figure (from `source`, or any) was recorded, and its source;
    None if there is none."""
    if not db.is_file():
        return None
    where, args = ("WHERE source = ? ", (source,)) if source else ("", ())
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            row = conn.execute(
                f"SELECT ts_ms, source FROM official_figures {where}ORDER BY ts_ms DESC LIMIT 1", args
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if not row or not isinstance(row[0], int):
        return None
    return datetime.fromtimestamp(row[0] / 1000, UTC), str(row[1])


def _ago(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def _official_source(probe: Probe) -> str | None:
    """Return where baton's official figures come from, when they do: baton's status line configured in
    Claude Code, or figures actually recorded within OFFICIAL_RECENT. None otherwise."""
    if statusline_configured(probe):
        return "Claude Code's status line gives the official figures"
    latest = _latest_official_figure(probe.paths.ledger_db)
    if latest is None:
        return None
    at, source = latest
    if not _recent(probe, at):
        return None
    return f"official figures recorded {_ago(probe.now - at)} ago (from {_SOURCES.get(source, source)})"


def _recent(probe: Probe, at: datetime) -> bool:
    return probe.now - OFFICIAL_RECENT <= at <= probe.now + timedelta(minutes=5)


def check_plan(probe: Probe) -> Check:
    """With `plan = "auto"`, baton knows the real limits: official figures, or the login's subscription."""
    q = effective_settings(probe).quota
    if q.plan != "auto" or q.token_limit:
        return Check("plan", "ok", f"{q.plan} (quota.plan)")
    from daemon import subscription

    official = _official_source(probe)
    try:
        login = subscription.detect(_claude_env(probe), keychain=q.oauth_usage, enabled=q.read_login_plan)
    except Exception:  # an unreadable login must not break doctor; it is "unknown"
        login = None
    if official and login:
        return Check("plan", "ok", f"auto: {official}, and your login's plan is {login}")
    if official:
        return Check("plan", "ok", f"auto: {official}")
    if login:
        return Check("plan", "ok", f"auto: your Claude login's plan is {login}")
    unread = "" if q.read_login_plan else " (quota.read_login_plan is off)"
    return Check(
        "plan",
        "warn",
        "auto, but baton gets no official figures (baton's status line is not configured, none recorded in"
        f" the last {_ago(OFFICIAL_RECENT)}) and does not know your subscription{unread}:"
        " the alerts' percentages are a guess from your history (Pro's limits until a window hits its limit)",
        'baton claude install-hooks (official figures), or set your plan: quota.plan = "max5"'
        " (pro, max5, max20) in config.toml, or BATON_QUOTA__PLAN=max5",
    )


def check_clock(probe: Probe) -> Check:
    """The time zone resolves, and the ledger holds no events from the future (a clock set back)."""
    settings = effective_settings(probe)
    try:
        import tzlocal

        zone = settings.general.timezone or tzlocal.get_localzone_name() or "UTC"
    except Exception as exc:  # tzlocal raises its own errors for a broken /etc/localtime or $TZ
        return Check(
            "clock", "warn", f"system time zone unknown: {exc}", "set general.timezone in config.toml"
        )
    offset = probe.now.astimezone().strftime("%z")
    detail = f"{probe.now.astimezone():%Y-%m-%d %H:%M} (UTC{offset}), zone {zone}"
    latest = _latest_event(probe.paths.ledger_db)
    if latest is not None and latest > probe.now + timedelta(minutes=5):
        return Check(
            "clock",
            "warn",
            f"{detail}; the ledger has usage from {latest:%Y-%m-%d %H:%M} UTC, in the future",
            "set the clock right (enable NTP: timedatectl set-ntp true); quota windows depend on it",
        )
    return Check("clock", "ok", detail)


def _latest_event(db: Path) -> datetime | None:
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            row = conn.execute("SELECT max(ts_ms) FROM usage_events").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return datetime.fromtimestamp(row[0] / 1000, UTC) if row and row[0] else None


# --- running them ---


def prepare(paths: BatonPaths, env: Mapping[str, str] | None = None, **overrides: Any) -> Probe:
    """Return a Probe for this machine with the settings loaded (or the config problem kept to report)."""
    env = os.environ if env is None else env
    probe = Probe(paths=paths, env=env, **overrides)
    if probe.settings is None and probe.config_problem is None:
        try:
            probe.settings = load_settings(paths)
        except ConfigError as exc:
            probe.config_problem = exc
    return probe


def run_checks(probe: Probe) -> list[Check]:
    """Return every check's outcome; a check that crashes becomes a failure naming the error."""
    checks: list[tuple[str, Callable[[Probe], Check]]] = [
        ("config", check_config),
        ("transcripts", check_transcripts),
        ("ledger", check_ledger),
        ("privacy", check_privacy),
        ("notification", check_notification),
        ("tmux", lambda p: check_tool(p, "tmux")),
        ("claude", lambda p: check_tool(p, "claude")),
        ("service", check_service),
        ("inotify", check_inotify),
        ("statusline", check_statusline),
        ("plan", check_plan),
        ("clock", check_clock),
    ]
    results = []
    for name, check in checks:
        try:
            results.append(check(probe))
        except Exception as exc:  # one broken check must not hide the others
            results.append(Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def render(results: list[Check]) -> str:
    """Return the report: one line per check, its fix below it, and a summary line."""
    width = max(len(c.name) for c in results)
    lines = []
    for c in results:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    fails = sum(c.status == "fail" for c in results)
    warns = sum(c.status == "warn" for c in results)
    if fails:
        lines.append(f"\n{fails} problem(s) stop baton from working; {warns} warning(s).")
    elif warns:
        lines.append(f"\nbaton can run; {warns} warning(s) limit what it can do.")
    else:
        lines.append("\nEverything baton needs works.")
    return "\n".join(lines)


def exit_code(results: list[Check]) -> int:
    """Return 1 when any check failed (baton cannot work), else 0."""
    return 1 if any(c.status == "fail" for c in results) else 0
