"""Install baton as a background service: a systemd user unit on Linux, a LaunchAgent on macOS.

The core is pure: `build_spec` decides what to run and with which environment, `render_*` fills the
bundled templates, `install_plan` / `uninstall_plan` list the files to write or remove and the commands to
run. The edge (`execute`) carries a plan out through a `Runner`, so tests record the commands (systemctl and
launchctl cannot run here) while the files are real. Commands are argv lists, never shell strings.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from xml.sax.saxutils import escape as xml_escape

from daemon.errors import BatonError
from daemon.paths import APP
from daemon.resources import template_dir

Platform = Literal["linux", "macos"]
Action = Literal["start", "stop", "restart"]
UNIT_NAME = "baton.service"
LABEL = "com.baton.agent"
PLIST_NAME = f"{LABEL}.plist"
# Variables the service inherits from the installing shell when set: they decide which files baton uses.
PASSED_ENV = ("BATON_HOME", "CLAUDE_CONFIG_DIR")
_FIELD = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: an absolute argv, its PATH, extra variables, and (launchd) where output goes."""

    program: tuple[str, ...]
    path_env: str
    environment: tuple[tuple[str, str], ...]
    log_dir: Path


@dataclass(frozen=True)
class Command:
    """One system command; `check=False` when failing is harmless (e.g. unloading what is not loaded)."""

    argv: tuple[str, ...]
    check: bool = True

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Plan:
    """Files to write (path, text) or remove, directories to create, then commands to run, in order."""

    platform: Platform
    service_file: Path
    writes: tuple[tuple[Path, str], ...] = ()
    links: tuple[tuple[Path, Path], ...] = ()  # (symlink, what it points to)
    removes: tuple[Path, ...] = ()
    mkdirs: tuple[Path, ...] = ()
    commands: tuple[Command, ...] = ()
    notes: tuple[str, ...] = ()
    # Commands the service manager would need, when it does not run here: listed, never run.
    deferred: tuple[Command, ...] = ()

    @property
    def manager(self) -> str:
        """Return the name of the plan's service manager."""
        return "launchd" if self.platform == "macos" else "systemd"


@dataclass(frozen=True)
class Result:
    """What a command returned."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    """Runs a system command and returns its result; the test double records instead."""

    def run(self, argv: Sequence[str]) -> Result: ...


class SystemRunner:
    """Runs commands for real (argv lists, no shell), capturing their output."""

    def run(self, argv: Sequence[str]) -> Result:
        """Return the command's result; a missing program gives return code 127 rather than raising."""
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
        except FileNotFoundError:
            return Result(127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Result(124, "", f"{shlex.join(argv)}: timed out after 60 s")
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class RecordingRunner:
    """A Runner that records each command and answers from `replies` (argv prefix -> Result), else rc 0."""

    replies: dict[tuple[str, ...], Result] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str]) -> Result:
        """Record `argv` and return the reply for its longest matching prefix."""
        call = tuple(argv)
        self.calls.append(call)
        for n in range(len(call), 0, -1):
            if call[:n] in self.replies:
                return self.replies[call[:n]]
        return Result(0)


# --- pure core ---------------------------------------------------------------------------------------------


def current_platform() -> Platform:
    """Return the platform this process runs on, as the service commands name it."""
    return "macos" if sys.platform == "darwin" else "linux"


def service_file(platform: Platform, home: Path) -> Path:
    """Return where the service file goes for `platform` under the user's `home`."""
    if platform == "macos":
        return home / "Library" / "LaunchAgents" / PLIST_NAME
    return home / ".config" / "systemd" / "user" / UNIT_NAME


def default_log_dir(platform: Platform, env: Mapping[str, str]) -> Path:
    """Return baton's log directory on `platform`: <BATON_HOME>/logs, else the platform's user data dir."""
    if env.get("BATON_HOME"):
        return Path(env["BATON_HOME"]).expanduser().resolve() / "logs"
    if platform == "macos":
        from platformdirs.macos import MacOS

        return Path(MacOS(APP, appauthor=False).user_data_dir) / "logs"
    from platformdirs.unix import Unix

    return Path(Unix(APP, appauthor=False).user_data_dir) / "logs"


def search_path(
    platform: Platform, home: Path, python: str, found: Sequence[str | None], inherited: str = ""
) -> str:
    """Return a PATH for the service: the dirs of `python` and of the tools `found`, the usual user and system
    bins, then `inherited` (the installing shell's PATH), without duplicates."""
    dirs = [str(Path(python).parent), *(str(Path(f).parent) for f in found if f)]
    dirs += [str(home / ".local" / "bin"), str(home / ".claude" / "local")]
    if platform == "macos":
        dirs += ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    else:
        dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
    dirs += [d for d in inherited.split(os.pathsep) if d and os.path.isabs(d)]
    return os.pathsep.join(dict.fromkeys(dirs))


def build_spec(
    platform: Platform,
    env: Mapping[str, str],
    *,
    python: str,
    home: Path,
    which: Callable[[str], str | None] = shutil.which,
    tools: Sequence[str] = ("claude", "tmux"),
) -> ServiceSpec:
    """Return the service's spec: `python -m daemon run` (absolute interpreter), a PATH that finds `tools`,
    and the variables in PASSED_ENV that are set. Raise BatonError if the interpreter path is not absolute."""
    if not os.path.isabs(python):
        raise BatonError(f"the interpreter path is not absolute: {python!r}")
    # The interpreter, not the `baton` script: a script found on PATH may be a shim (pyenv, asdf) that needs
    # the shell's environment, while the interpreter running now certainly has baton installed.
    program = (python, "-m", "daemon", "run")
    environment = tuple(
        (key, str(Path(env[key]).expanduser().resolve())) for key in PASSED_ENV if env.get(key)
    )
    path_env = search_path(platform, home, python, [which(t) for t in tools], env.get("PATH", ""))
    return ServiceSpec(program, path_env, environment, default_log_dir(platform, env))


def fill(template: str, values: Mapping[str, str]) -> str:
    """Return `template` with each {{name}} replaced. Raise BatonError naming a field that has no value."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise BatonError(f"service template field {{{{{name}}}}} has no value")
        return values[name]

    return _FIELD.sub(one, template)


def _systemd_quote(value: str, *, exec_line: bool) -> str:
    """Return `value` double-quoted for a unit file: `%` specifiers escaped, and `$` in command arguments."""
    if "\n" in value or "\r" in value:
        raise BatonError(f"a service path or variable contains a newline: {value!r}")
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if exec_line:
        value = value.replace("$", "$$")
    return f'"{value}"'


def render_systemd(spec: ServiceSpec, template: str) -> str:
    """Return the user unit for `spec` from the template text."""
    extra = "\n".join(
        f"Environment={_systemd_quote(f'{k}={v}', exec_line=False)}" for k, v in spec.environment
    )
    return fill(
        template,
        {
            # systemd expands $VAR in arguments but not in the program path, so only arguments escape `$`.
            "exec_start": " ".join(_systemd_quote(a, exec_line=i > 0) for i, a in enumerate(spec.program)),
            "path_env": _systemd_quote(f"PATH={spec.path_env}", exec_line=False),
            "extra_env": extra or "# (no BATON_HOME or CLAUDE_CONFIG_DIR was set at install time)",
        },
    )


def render_launchd(spec: ServiceSpec, template: str) -> str:
    """Return the LaunchAgent plist for `spec` from the template text."""
    indent = " " * 8
    args = "\n".join(f"{indent}<string>{xml_escape(a)}</string>" for a in spec.program)
    env = [("PATH", spec.path_env), ("PYTHONUNBUFFERED", "1"), *spec.environment]
    environment = "\n".join(
        f"{indent}<key>{xml_escape(k)}</key>\n{indent}<string>{xml_escape(v)}</string>" for k, v in env
    )
    return fill(
        template,
        {
            "program_arguments": args,
            "environment": environment,
            "stdout_path": xml_escape(str(spec.log_dir / "launchd.out.log")),
            "stderr_path": xml_escape(str(spec.log_dir / "launchd.err.log")),
        },
    )


def render(platform: Platform, spec: ServiceSpec) -> str:
    """Return the service file text for `platform` from the bundled template. Raise BatonError if missing."""
    try:
        if platform == "macos":
            return render_launchd(spec, (template_dir("launchd") / PLIST_NAME).read_text(encoding="utf-8"))
        return render_systemd(spec, (template_dir("systemd") / UNIT_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BatonError(f"the bundled service template is missing: {exc}", hint="reinstall baton") from exc


def install_plan(
    platform: Platform,
    spec: ServiceSpec,
    text: str,
    *,
    home: Path,
    uid: int,
    booted: bool,
    previous: str | None,
    link: CommandLink | None = None,
    dry_run: bool = False,
) -> Plan:
    """Return the plan that installs `text` as the service and starts it.

    `booted` says whether the service manager runs here; without it only the file is written, and the
    commands are listed as deferred (what would run where the manager runs), with a note.
    `previous` is the file's current text (None if absent): a changed file restarts a running service.
    `link`, when given, makes the `baton` command reachable (see `command_link`). `dry_run` words the
    notes for a run that changes nothing.
    """
    target = service_file(platform, home)
    # launchd opens the log files itself and needs their folder; systemd logs to the journal.
    mkdirs: tuple[Path, ...] = (target.parent, spec.log_dir) if platform == "macos" else (target.parent,)
    if platform == "macos":
        domain = f"gui/{uid}"
        commands: tuple[Command, ...] = (
            Command(("launchctl", "bootout", f"{domain}/{LABEL}"), check=False),
            Command(("launchctl", "bootstrap", domain, str(target))),
            Command(("launchctl", "enable", f"{domain}/{LABEL}")),
        )
        manager, tool = "launchd", "launchctl"
    else:
        commands = (Command(("systemctl", "--user", "daemon-reload")),)
        if previous is not None and previous != text:
            # A running service keeps the old unit until restarted; try-restart leaves a stopped one alone.
            commands += (Command(("systemctl", "--user", "try-restart", UNIT_NAME)),)
        commands += (Command(("systemctl", "--user", "enable", "--now", UNIT_NAME)),)
        manager, tool = "systemd", "systemctl"
    notes: tuple[str, ...] = ()
    deferred: tuple[Command, ...] = ()
    if not booted and dry_run:
        notes = (
            f"warning: {manager} is not running on this machine, so `baton service install` would write the"
            " service file but could not enable or start it.",
            f"  Where {manager} runs, install also runs the `{tool}` commands listed above.",
            "  Meanwhile, baton can run in the foreground (Ctrl-C stops it):  baton run",
            f"  or, without the `baton` script on PATH:  {shlex.join(spec.program)}",
        )
        commands, deferred = (), commands
    elif not booted:
        notes = (
            f"warning: {manager} is not running on this machine, so the service file is written but was not"
            " enabled or started.",
            f"  Where {manager} runs, run `baton service install` again to start it.",
            "  Meanwhile, run baton in the foreground (Ctrl-C stops it):  baton run",
            f"  or, without the `baton` script on PATH:  {shlex.join(spec.program)}",
        )
        commands, deferred = (), commands
    elif platform == "linux":
        notes = ("To keep baton running while you are logged out: loginctl enable-linger $USER",)
    links: tuple[tuple[Path, Path], ...] = ()
    writes: tuple[tuple[Path, str], ...] = ((target, text),)
    if link is not None:
        links = link.links
        notes = link.notes + notes
        if link.record is not None:
            writes += (link.record,)
            mkdirs += (link.record[0].parent,)
    return Plan(
        platform,
        target,
        writes=writes,
        links=links,
        mkdirs=mkdirs,
        commands=commands,
        notes=notes,
        deferred=deferred,
    )


def control_plan(action: Action, platform: Platform, *, home: Path, uid: int) -> Plan:
    """Return the commands that start, stop or restart the installed service.

    systemd: `systemctl --user <action>`. launchd: `stop` unloads the agent (`bootout`; KeepAlive would
    restart a killed one), `start` loads it if needed and starts it (`kickstart`), `restart` kills and
    starts it (`kickstart -k`). A stopped service starts again at the next login, as an enabled one does.
    """
    target = service_file(platform, home)
    if platform == "linux":
        return Plan(platform, target, commands=(Command(("systemctl", "--user", action, UNIT_NAME)),))
    domain = f"gui/{uid}"
    agent = f"{domain}/{LABEL}"
    if action == "stop":
        commands: tuple[Command, ...] = (Command(("launchctl", "bootout", agent)),)
    else:
        kickstart = (
            ("launchctl", "kickstart", "-k", agent)
            if action == "restart"
            else ("launchctl", "kickstart", agent)
        )
        # bootstrap fails harmlessly when the agent is already loaded.
        commands = (Command(("launchctl", "bootstrap", domain, str(target)), check=False), Command(kickstart))
    return Plan(platform, target, commands=commands)


@dataclass(frozen=True)
class CommandLink:
    """How `baton service install` makes the `baton` command reachable: links to create, and what to say."""

    links: tuple[tuple[Path, Path], ...] = ()
    notes: tuple[str, ...] = ()
    record: tuple[Path, str] | None = None  # remembers the link made, so uninstall removes only that


def link_record_text(link: Path, script: Path) -> str:
    """Return what the record of install's link says (read back by `own_link`)."""
    return f"{link} -> {script}\n"


def link_path(home: Path) -> Path:
    """Return where install links the `baton` command: ~/.local/bin/baton (on PATH in most distributions)."""
    return home / ".local" / "bin" / "baton"


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def command_link(
    home: Path,
    script: Path,
    path_env: str,
    on_path: str | None,
    record: Path | None = None,
    profile: str = "~/.profile",
) -> CommandLink:
    """Return how to make `script` (this install's `baton`) reachable as a command.

    Nothing when a `baton` is already on PATH (`on_path`) or ~/.local/bin/baton is taken by something that
    is not a link to `script` (it is left alone, and said so); else a symlink in ~/.local/bin, with a warning
    when that folder is not on PATH (`path_env`) saying how to add it in `profile` (the login shell's file).
    A new link is written down in `record`.
    """
    link = link_path(home)
    if not script.is_file():
        return CommandLink(
            notes=(f"(no `baton` script next to this Python: use `{script.parent}/python -m daemon`)",)
        )
    if on_path is not None:
        if _same_file(on_path, script):
            return CommandLink()
        return CommandLink(notes=(f"note: `baton` on your PATH is {on_path}; this install's is {script}",))
    if link.is_symlink() and _same_file(link, script):
        links: tuple[tuple[Path, Path], ...] = ()
        said: tuple[str, ...] = (f"`baton` is linked as {link} -> {script}",)
    elif link.exists() or link.is_symlink():
        return CommandLink(
            notes=(
                f"note: {link} exists and is not a link to this install, so it is left alone; run {script}",
            )
        )
    else:
        links, said = ((link, script),), ()  # `execute` prints the link it makes
    remember = (record, link_record_text(link, script)) if record is not None and links else None
    folders = {os.path.normpath(os.path.expanduser(d)) for d in path_env.split(os.pathsep) if d}
    if os.path.normpath(link.parent) in folders:
        return CommandLink(links, said, remember)
    return CommandLink(
        links,
        (
            *said,
            f"warning: {link.parent} is not on your PATH yet, so your shell does not find `baton`.",
            "  Many systems add it at login once it exists (log out and in); otherwise add it yourself:",
            f"  echo 'export PATH=\"$HOME/.local/bin:$PATH\"' >> {profile}",
            f"  Meanwhile, run it by its full path: {script}",
        ),
        remember,
    )


def own_link(home: Path, script: Path, record: Path) -> Path | None:
    """Return ~/.local/bin/baton when install made it (as `record` says) and it still links to `script`;
    uninstall removes only that (a link pipx or the person made stays)."""
    link = link_path(home)
    try:
        made = record.read_text(encoding="utf-8") == link_record_text(link, script)
    except OSError:
        return None
    if made and link.is_symlink() and os.readlink(link) == str(script):
        return link
    return None


def uninstall_plan(
    platform: Platform,
    *,
    home: Path,
    uid: int,
    booted: bool,
    link: Path | None = None,
    record: Path | None = None,
) -> Plan:
    """Return the plan that stops the service and removes its file (and install's `link` to the `baton`
    command and its `record`, when given); the ledger, handoffs and config stay."""
    target = service_file(platform, home)
    if platform == "macos":
        commands: tuple[Command, ...] = (
            Command(("launchctl", "bootout", f"gui/{uid}/{LABEL}"), check=False),
        )
    else:
        commands = (
            Command(("systemctl", "--user", "disable", "--now", UNIT_NAME), check=False),
            Command(("systemctl", "--user", "daemon-reload"), check=False),
        )
    return Plan(
        platform,
        target,
        removes=(target, *(p for p in (link, record) if p is not None)),
        commands=commands if booted else (),
        deferred=() if booted else commands,
        notes=("Your ledger, handoffs and configuration are kept.",),
    )


# --- edges -------------------------------------------------------------------------------------------------


def manager_running(platform: Platform, which: Callable[[str], str | None] = shutil.which) -> bool:
    """Return True if this machine's service manager can take a user service now.

    Linux: systemd is PID 1 (sd_booted: /run/systemd/system exists) and systemctl is on PATH. macOS:
    launchctl is on PATH. Rendering for the other platform returns False.
    """
    if platform != current_platform():
        return False
    if platform == "macos":
        return which("launchctl") is not None
    return Path("/run/systemd/system").is_dir() and which("systemctl") is not None


def execute(plan: Plan, runner: Runner, *, dry_run: bool, echo: Callable[[str], None]) -> list[str]:
    """Carry out `plan` (or, with `dry_run`, only print it) and return the failures, as messages.

    Deferred commands are only printed, marked as what would run where the service manager runs.
    Files are written atomically, private to the user (0600 in 0700 directories the plan creates).
    """
    failures: list[str] = []
    prefix = "would " if dry_run else ""
    for d in plan.mkdirs:
        if not d.is_dir():
            echo(f"{prefix}create {d}/")
            if not dry_run:
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path, text in plan.writes:
        if dry_run:
            echo(f"would write {path}:")
            echo("\n".join(f"    {line}" for line in text.rstrip("\n").splitlines()))
        else:
            _write_private(path, text)
            echo(f"wrote {path}")
    for link, to in plan.links:
        echo(f"{prefix}link {link} -> {to}")
        if not dry_run:
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(to, link)
    for path in plan.removes:
        if path.exists() or path.is_symlink():
            echo(f"{prefix}remove {path}")
            if not dry_run:
                path.unlink()
        else:
            echo(f"not installed: {path} does not exist")
    for command in plan.commands:
        echo(f"{prefix}run: {command}")
        if dry_run:
            continue
        result = runner.run(command.argv)
        if result.returncode != 0 and command.check:
            detail = (result.stderr or result.stdout).strip()
            failures.append(f"`{command}` failed (exit {result.returncode}){': ' + detail if detail else ''}")
    for command in plan.deferred:
        if dry_run:
            echo(f"would run where {plan.manager} runs: {command}")
        else:
            echo(f"not run ({plan.manager} is not running here): {command}")
    for note in plan.notes:
        echo(note)
    return failures


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically with mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def status_commands(platform: Platform, uid: int) -> tuple[Command, ...]:
    """Return the commands that show the service's state."""
    if platform == "macos":
        return (Command(("launchctl", "print", f"gui/{uid}/{LABEL}")),)
    return (Command(("systemctl", "--user", "status", "--no-pager", "--lines=0", UNIT_NAME)),)


def log_command(platform: Platform, lines: int, follow: bool, log_dir: Path) -> Command:
    """Return the command showing the service's recent output (the journal; on macOS, its error log)."""
    if platform == "macos":
        argv = ["tail", "-n", str(lines), str(log_dir / "launchd.err.log")]
        if follow:
            argv.insert(1, "-F")
        return Command(tuple(argv))
    argv = ["journalctl", "--user", "--unit", UNIT_NAME, "--lines", str(lines), "--no-pager"]
    if follow:
        argv.append("--follow")
    return Command(tuple(argv))
