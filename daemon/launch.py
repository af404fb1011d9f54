"""Launching a primed Claude Code session from a handoff.

The prompt and the command line are built by pure functions (`build_prompt`, `claude_args`, `plan_launch`);
`execute` runs the plan and `launch_handoff` ties a handoff file to a recorded launch. Nothing from a handoff,
a project path or the configuration is ever parsed by the user's shell: `claude` gets an argument list, in a
detached tmux session (default on Linux), or headless with `claude -p` and its output in a log file.

On macOS (Terminal or iTerm) the new window's shell is the user's login shell, which may be fish, tcsh or
anything else, so no quoting can be trusted there. That shell is given one fixed command,
`exec /bin/sh <script>`, where the script's path is made by baton of characters that are literal in every
shell (`SAFE_PATH`). The script (0700, alone in a fresh 0700 folder) is run by /bin/sh, for which
`shlex.quote` is exact: it removes itself, changes to the project directory and execs claude with the argv.

Prompts too long for tmux (it refuses commands past ~16 KB) go into a private file that the short prompt
points to, with `--add-dir` so that Claude may read it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from daemon.config import LaunchSettings, Settings
from daemon.errors import BatonError
from daemon.logs import get_logger
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from daemon.handoff import Handoff

log = get_logger("baton.launch")
TMUX_TIMEOUT = 10  # seconds: a hung tmux server must not hold a scheduler job forever


class ProgramNotFound(BatonError):
    """A program the launch needs (claude, tmux) is not where the configuration says, nor on PATH."""

    def __init__(self, name: str, what: str, message: str | None = None, hint: str | None = None) -> None:
        super().__init__(
            message or f"{what} not found: {name!r}",
            hint=hint or f"install it, or set launch.{what}_path in the configuration",
        )
        self.name = name
        self.what = what


class NotPending(BatonError):
    """The handoff was launched, finished or cancelled already: launching it again needs --force."""


class LaunchInProgress(BatonError):
    """Another process or thread is launching this handoff right now."""


Mode = Literal["tmux", "terminal", "headless"]
PROMPT_INLINE_MAX = 12_000  # bytes; tmux refuses a command past 16,304 bytes and the flags need room too
# Passed into a tmux session with -e (its server keeps the environment of whoever started it). Never TERM,
# which tmux sets for the pane itself, and never credentials.
ENV_PASSED = ("PATH", "CLAUDE_CONFIG_DIR", "BATON_HOME", "LANG", "LC_ALL", "XDG_RUNTIME_DIR")
# A path every common shell (sh, bash, zsh, fish, tcsh, ...) reads literally, unquoted: absolute, and made
# only of letters, digits and `/._-` (no space, quote, `$`, `~`, `#`, `!`, glob or brace character).
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
LAUNCHER_PREFIX = "baton-launch-"  # the private folder of one Terminal/iTerm launcher script, in a temp dir
LAUNCHER_NAME = "launch.sh"
LAUNCHER_MAX_AGE = 24 * 3600  # seconds: a script never run by its window (closed, failed) is swept after this


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to start one session; `argv` is what runs (tmux, osascript or claude itself)."""

    mode: Mode
    argv: tuple[str, ...]
    claude_argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...] = ()
    tmux_session: str | None = None
    log_path: str | None = None
    prompt_file: str | None = None
    attach_command: str | None = None
    script_path: str | None = None  # terminal mode: the launcher script that /bin/sh runs in the new window
    script: str | None = None  # its text


@dataclass(frozen=True)
class LaunchResult:
    plan: LaunchPlan
    pid: int | None = None
    exit_code: int | None = None
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def build_prompt(handoff_body: str, memory_summary: str, project: str) -> str:
    """Return the opening prompt of the resumed session: context, handoff, memory, what to do first."""
    memory = memory_summary.strip("\n") if memory_summary.strip() else ""
    then = ", then a short summary of what baton remembers of the project" if memory else ""
    parts = [
        "# Resuming earlier work",
        "",
        f"This session resumes work on the project in {project}, started by an earlier Claude Code session "
        f"that stopped when its usage quota ran out. Below is the handoff it wrote for you{then}.",
        "",
        "<handoff>",
        handoff_body.strip("\n"),
        "</handoff>",
    ]
    if memory:
        parts += ["", "<project-memory>", memory, "</project-memory>"]
    parts += [
        "",
        "Please:",
        "1. Acknowledge in one or two sentences that you have read the handoff.",
        "2. Run the commands listed under 'Commands to run on start' and report anything unexpected.",
        "3. Read the files listed under 'Files to read first'.",
        "4. Begin the first of the next session objectives, and work through them in order.",
    ]
    return "\n".join(parts) + "\n"


def pointer_prompt(prompt_file: str, project: str) -> str:
    """Return the short prompt used when the full prompt lives in `prompt_file`."""
    return (
        f"This session resumes earlier work on the project in {project}. The previous session's handoff and "
        f"your instructions are in the file {prompt_file}. Read that whole file first, then do exactly what "
        "it asks: acknowledge the handoff, run its start commands and begin its objectives.\n"
    )


def claude_args(
    settings: LaunchSettings,
    prompt: str,
    *,
    headless: bool,
    agent: str | None = None,
    add_dirs: Sequence[str] = (),
    name: str | None = None,
) -> list[str]:
    """Return claude's arguments (without the program): flags from `settings`, then `--` and the prompt.

    The prompt comes after `--` so that neither a variadic flag (`--add-dir`) nor a leading `-` can eat it.
    Permissions are bypassed only when `settings.permission_mode` says so. Raise BatonError for an agent
    name that looks like a flag.
    """
    args: list[str] = []
    if headless:
        args += ["-p", "--output-format", "text"]
    if agent or settings.agent:
        chosen = str(agent or settings.agent)
        if chosen.startswith("-"):  # a handoff's header must not smuggle a flag in (no agent name starts so)
            raise BatonError(f"not an agent name: {chosen!r}", hint="fix the handoff's agent: header")
        args += ["--agent", chosen]
    if settings.model:
        args += ["--model", settings.model]
    if settings.permission_mode:
        args += ["--permission-mode", settings.permission_mode]
    if name:
        args += ["--name", name]
    for d in add_dirs:
        args += ["--add-dir", d]
    args += list(settings.extra_args)
    return [*args, "--", prompt]


def tmux_session_name(project: str, taken: Sequence[str] = ()) -> str:
    """Return a tmux session name for `project` (tmux forbids `.` and `:`), unique among `taken`."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(project).name).strip("-")[:40] or "project"
    base = f"baton-{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def resolve_mode(settings: LaunchSettings, platform: str, tmux_found: bool) -> Mode:
    """Return the launch mode: the configured one, else Terminal on macOS, tmux on Linux when installed."""
    if settings.mode != "auto":
        return settings.mode
    if platform == "darwin":
        return "terminal"
    return "tmux" if tmux_found else "headless"


_APPLESCRIPT = {
    # Each app runs the command (argv item 1 of the script's run handler) in a new window's shell; nothing
    # is spliced into the AppleScript itself, and the command is `terminal_command`'s fixed text.
    "Terminal": ('tell application "Terminal"', "activate", "do script (item 1 of argv)", "end tell"),
    "iTerm": (
        'tell application "iTerm"', "activate", "set w to (create window with default profile)",
        "tell current session of w to write text (item 1 of argv)", "end tell",
    ),
}  # fmt: skip


def osascript_argv(command: str, app: str = "Terminal") -> tuple[str, ...]:
    """Return the osascript command that runs `command` (shell text) in a new window of `app`."""
    lines = ("on run argv", *_APPLESCRIPT[app], "end run")
    return ("osascript", *(part for line in lines for part in ("-e", line)), "--", command)


def terminal_command(script_path: str) -> str:
    """Return the text the new window's shell runs: `exec /bin/sh <script_path>`, the same in every shell.

    Raise ValueError if `script_path` is not a `SAFE_PATH` (it would need quoting, and quoting differs
    between shells: fish reads `\\'` inside single quotes as an escaped quote, tcsh expands `!`).
    """
    if not SAFE_PATH.fullmatch(script_path):
        raise ValueError(f"launcher script path is not plain enough for every shell: {script_path!r}")
    return f"exec /bin/sh {script_path}"


def launcher_script(script_path: str, project: str, claude_argv: Sequence[str]) -> str:
    """Return the /bin/sh script that starts claude in a Terminal/iTerm window.

    It is read by /bin/sh only (POSIX), where `shlex.quote` is exact. It removes itself and its folder first
    (sh keeps the open file), so that nothing is left once the window has started; claude gets its argv.
    """
    q = shlex.quote
    return "\n".join([
        "# Written by baton: starts one Claude Code session, then is gone. Run by /bin/sh only.",
        f"rm -f -- {q(script_path)}",
        f"rmdir -- {q(str(Path(script_path).parent))} 2>/dev/null",
        "unset CDPATH",
        f"cd -- {q(project)} || exit 1",
        f"exec {shlex.join(claude_argv)}",
        "",
    ])  # fmt: skip


def tmux_format_literal(text: str) -> str:
    """Return `text` escaped for a tmux option that tmux expands as a format (`-c`): `#` doubled.

    Without it, a project directory named `x#(cmd)` would make tmux run `cmd` through a shell.
    """
    return text.replace("#", "##")


def plan_launch(
    settings: LaunchSettings,
    *,
    mode: Mode,
    project: str,
    prompt: str,
    claude_path: str,
    tmux_path: str = "tmux",
    agent: str | None = None,
    prompt_file: str | None = None,
    log_path: str | None = None,
    taken_sessions: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    script_path: str | None = None,
) -> LaunchPlan:
    """Return the plan for starting claude in `project` with `prompt` (pure: no file is written here).

    With `prompt_file` set, the caller has written `prompt` there and claude gets a short pointer to it.
    Terminal mode needs `script_path`, a `SAFE_PATH` in a private folder (see `make_launcher_dir`): the plan's
    `script` is to be written there (`write_launcher`) before its `argv` runs. Raise ValueError if that path
    is missing or not safe, BatonError if an argument holds a NUL byte (no argv item can).
    """
    add_dirs: list[str] = []
    text = prompt
    if prompt_file is not None:
        text = pointer_prompt(prompt_file, project)
        add_dirs.append(str(Path(prompt_file).parent))
    cargv = (
        claude_path,
        *claude_args(settings, text, headless=mode == "headless", agent=agent, add_dirs=add_dirs, name=name),
    )
    if any("\0" in a for a in (*cargv, project)):
        raise BatonError("the prompt or the project path holds a NUL byte, which no command argument can")
    env_items = tuple(sorted((k, v) for k, v in (env or {}).items() if k in ENV_PASSED))
    if mode == "tmux":
        session = tmux_session_name(project, taken_sessions)
        argv: tuple[str, ...] = (
            tmux_path,
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            session,
            "-c",
            tmux_format_literal(project),
        )
        for k, v in env_items:
            argv += ("-e", f"{k}={v}")
        argv += ("--", *cargv)
        shown = "tmux" if Path(tmux_path).name == "tmux" else tmux_path
        attach = shlex.join([shown, "attach", "-t", session])
        return LaunchPlan(mode, argv, cargv, project, env_items, session, None, prompt_file, attach)
    if mode == "terminal":
        if script_path is None:
            raise ValueError("terminal mode needs a launcher script path")
        argv = osascript_argv(terminal_command(script_path), settings.terminal_app)
        script = launcher_script(script_path, project, cargv)
        return LaunchPlan(
            mode, argv, cargv, project, env_items, prompt_file=prompt_file, script_path=script_path,
            script=script,
        )  # fmt: skip
    return LaunchPlan(mode, cargv, cargv, project, env_items, log_path=log_path, prompt_file=prompt_file)


def needs_prompt_file(prompt: str) -> bool:
    """Return True when `prompt` is too long to pass on the command line (tmux's limit)."""
    return len(prompt.encode("utf-8")) > PROMPT_INLINE_MAX


# ------------------------------------------------------------------------------------------------- the edge


def _temp_roots() -> list[str]:
    return [tempfile.gettempdir(), "/tmp"]


def make_launcher_dir(roots: Sequence[str] | None = None, *, now: float | None = None) -> Path:
    """Create and return a fresh private folder (0700) for one launcher script, at a `SAFE_PATH`.

    It goes in the first temp dir (`$TMPDIR`, else /tmp) whose path is safe; stale folders of earlier
    launches there (older than a day, owned by this user) are swept first. Raise BatonError if none is.
    """
    for root in _temp_roots() if roots is None else roots:
        if not SAFE_PATH.fullmatch(root) or not os.path.isdir(root):
            continue
        sweep_launchers(Path(root), now=now)
        made = tempfile.mkdtemp(prefix=LAUNCHER_PREFIX, dir=root)  # 0700, a name no one can guess
        if SAFE_PATH.fullmatch(made):
            return Path(made)
        os.rmdir(made)
    raise BatonError(
        "no temporary folder with a plain path for the launcher script",
        hint="set TMPDIR to a folder whose path has only letters, digits and / . _ -",
    )


def sweep_launchers(root: Path, *, now: float | None = None) -> None:
    """Remove this user's launcher folders in `root` left by windows that never ran them (over a day old)."""
    now = time.time() if now is None else now
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if not entry.name.startswith(LAUNCHER_PREFIX):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                    continue
                if now - info.st_mtime > LAUNCHER_MAX_AGE:
                    discard_launcher(str(Path(entry.path) / LAUNCHER_NAME))


def write_launcher(plan: LaunchPlan) -> None:
    """Write the plan's launcher script, mode 0700, as a new file (never through a link) in its folder."""
    assert plan.script_path is not None and plan.script is not None
    fd = os.open(plan.script_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
    try:
        os.fchmod(fd, 0o700)
        os.write(fd, plan.script.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def discard_launcher(script_path: str) -> None:
    """Remove a launcher script and its folder (when empty); what is already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(script_path)
    with contextlib.suppress(OSError):
        os.rmdir(Path(script_path).parent)


def find_program(name: str, what: str, fallback: str | None = None) -> str:
    """Return the absolute path of `name` (a path or a command on PATH), else of `fallback` (an absolute path
    found by another process, e.g. the CLI that asked the daemon). Raise ProgramNotFound if neither works."""
    found = shutil.which(name)
    if found is None and fallback and os.path.isabs(fallback):
        found = shutil.which(fallback)
    if found is None:
        raise ProgramNotFound(name, what)
    return os.path.abspath(found)


def tmux_sessions(tmux_path: str) -> list[str]:
    """Return the names of the tmux sessions on the user's server (none if no server runs or it hangs)."""
    try:
        out = subprocess.run(
            [tmux_path, "list-sessions", "-F", "#{session_name}"],
            capture_output=True, text=True, check=False, timeout=TMUX_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("tmux did not list its sessions", error=str(exc))
        return []
    return out.stdout.split() if out.returncode == 0 else []


def execute(plan: LaunchPlan, *, wait: bool = False) -> tuple[LaunchResult, subprocess.Popen[bytes] | None]:
    """Start `plan`. Return the result and, in headless mode, the running process (waited for when `wait`)."""
    if plan.mode == "headless":
        assert plan.log_path is not None
        log_path = Path(plan.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(
                list(plan.argv),
                cwd=plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return LaunchResult(plan, error=f"cannot start claude: {exc}"), None
        finally:
            os.close(fd)
        code = proc.wait() if wait else None
        return LaunchResult(plan, pid=proc.pid, exit_code=code), proc
    try:
        out = subprocess.run(
            list(plan.argv), cwd=plan.cwd, capture_output=True, text=True, check=False, timeout=30,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        if plan.script_path is not None:
            discard_launcher(plan.script_path)
        return LaunchResult(plan, error=f"cannot run {plan.argv[0]}: {exc}"), None
    if out.returncode != 0:
        if plan.script_path is not None:  # no window will run it
            discard_launcher(plan.script_path)
        detail = (out.stderr or out.stdout).strip()[:500]
        return LaunchResult(plan, exit_code=out.returncode, error=f"{plan.argv[0]} failed: {detail}"), None
    pid = int(out.stdout.strip()) if plan.mode == "tmux" and out.stdout.strip().isdigit() else None
    return LaunchResult(plan, pid=pid), None


def prepare(
    paths: BatonPaths,
    settings: Settings,
    handoff_path: Path,
    *,
    now: datetime,
    env: Mapping[str, str] | None = None,
    claude_fallback: str | None = None,
) -> LaunchPlan:
    """Build the launch plan for the handoff at `handoff_path`, writing the prompt file when one is needed.

    `claude_fallback` is an absolute path to claude used when `launch.claude_path` cannot be found here.
    Raise BatonError if the handoff is unreadable or its project directory is gone, ProgramNotFound if
    claude/tmux is missing.
    """
    from daemon import handoff as handoffs
    from daemon import memory

    text = handoff_path.read_text(encoding="utf-8")
    h = handoffs.parse(text, str(handoff_path))
    if not Path(h.project).is_dir():
        raise BatonError(f"the project directory of handoff {h.id} does not exist: {h.project}")
    summary = memory.summary_for(paths, h.project, now=now, skip=(*h.accomplished, *h.decisions))
    prompt = build_prompt(handoffs.body_of(text, str(handoff_path)), summary, h.project)
    ls = settings.launch
    claude = find_program(ls.claude_path, "claude", claude_fallback)
    tmux = shutil.which(ls.tmux_path)
    mode = resolve_mode(ls, sys.platform, tmux is not None)
    prompt_file = None
    if needs_prompt_file(prompt):
        prompt_path = handoff_path.with_name(f"{h.id}.prompt.md")
        handoffs.write_private(prompt_path, prompt)
        prompt_file = str(prompt_path)
    tmux_path = find_program(ls.tmux_path, "tmux") if mode == "tmux" else ls.tmux_path
    stamp = now.strftime("%Y%m%d-%H%M%S")
    script_path = str(make_launcher_dir() / LAUNCHER_NAME) if mode == "terminal" else None
    try:
        plan = plan_launch(
            ls, mode=mode, project=h.project, prompt=prompt, claude_path=claude, tmux_path=tmux_path,
            agent=h.agent, prompt_file=prompt_file,
            log_path=str(paths.log_dir / "launches" / f"{h.id}-{stamp}.log"),
            taken_sessions=tmux_sessions(tmux_path) if mode == "tmux" else (),
            env=os.environ if env is None else env, name=f"baton: {h.title or h.project_name}",
            script_path=script_path,
        )  # fmt: skip
        if plan.script is not None:
            write_launcher(plan)
    except BaseException:
        if script_path is not None:
            discard_launcher(script_path)
        raise
    return plan


@dataclass(frozen=True)
class Launched:
    """A launch done and recorded: its row id in `launches`, the result, and the handoff it came from."""

    launch_id: int
    result: LaunchResult
    handoff_id: str
    project: str

    def describe(self) -> str:
        """Return one line for a notification or the terminal: where the session runs and how to reach it."""
        plan = self.result.plan
        if not self.result.ok:
            return f"Launch failed: {self.result.error}"
        if plan.mode == "tmux":
            return f"Claude Code runs in tmux session {plan.tmux_session}; attach with: {plan.attach_command}"
        if plan.mode == "terminal":
            app = "iTerm" if 'tell application "iTerm"' in plan.argv else "Terminal"
            return f"Claude Code opened in a new {app} window."
        return f"Claude Code runs headless (pid {self.result.pid}); output: {plan.log_path}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form `baton launch now` prints (and the daemon's `launch.now` reply)."""
        plan = self.result.plan
        return {
            "launch_id": self.launch_id, "handoff_id": self.handoff_id, "project": self.project,
            "mode": plan.mode, "tmux_session": plan.tmux_session, "attach": plan.attach_command,
            "pid": self.result.pid, "log_path": plan.log_path, "error": self.result.error,
            "message": self.describe(),
        }  # fmt: skip


@contextlib.contextmanager
def claim(handoff_path: Path, *, force: bool = False) -> Iterator[Handoff]:
    """Hold the handoff for one launch; yield it as read under the claim.

    An exclusive lock on a file beside the handoff (flock: it holds across processes and between threads,
    and dies with its holder) is taken before anything starts, so two launches of one handoff (`launch now`
    racing the scheduled job, two `launch now`) cannot both start a session. Raise LaunchInProgress if
    another launch holds it, NotPending if the handoff is no longer pending (unless `force`).
    """
    from daemon import handoff as handoffs

    lock_path = handoff_path.with_name(f".{handoff_path.stem}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LaunchInProgress(
                f"handoff {handoff_path.stem} is being launched right now", hint="see `baton launch list`"
            ) from None
        h = handoffs.load(handoff_path)
        if h.status != "pending" and not force:
            raise NotPending(
                f"handoff {h.id} is {h.status}, not pending: it is not launched again",
                hint=f"to start another session from it anyway: baton launch now --force {h.id}",
            )
        yield h
    finally:
        os.close(fd)


def launch_handoff(
    paths: BatonPaths,
    settings: Settings,
    handoff_path: Path,
    *,
    now: datetime,
    engine: Engine,
    trigger: str,
    wait: bool = False,
    watch: bool = False,
    force: bool = False,
    claude_fallback: str | None = None,
) -> Launched:
    """Launch the session of the handoff at `handoff_path`, record it, and mark the handoff launched.

    The handoff is claimed first (see `claim`): only a pending one is launched, unless `force`. Headless
    sessions are waited for when `wait`, or watched from a thread that records their exit when `watch`. A
    failed start is recorded too, and the handoff stays pending. Raise LaunchInProgress or NotPending when
    the claim is refused, ProgramNotFound or BatonError if no plan can be made.
    """
    from daemon import handoff as handoffs
    from daemon import launch_store, memory

    with claim(handoff_path, force=force) as h:
        plan = prepare(paths, settings, handoff_path, now=now, claude_fallback=claude_fallback)
        result, proc = execute(plan, wait=wait)
        launch_id = launch_store.record(
            engine, now=now, handoff_id=h.id, handoff_path=str(handoff_path), project=h.project,
            trigger=trigger, mode=plan.mode, argv=list(plan.argv), tmux_session=plan.tmux_session,
            pid=result.pid, log_path=plan.log_path, error=result.error, exit_code=result.exit_code,
        )  # fmt: skip
        if result.ok:
            handoffs.update(handoff_path, status="launched", launched_at=now)
    if result.ok:
        memory.refresh(paths, h.project, now=now, handoff=h)
        if proc is not None and watch and result.exit_code is None:
            _watch(engine, launch_id, proc)
    return Launched(launch_id, result, h.id, h.project)


def wait_and_record(engine: Engine, launch_id: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait for a headless session and record its exit; log (never raise) when that fails."""
    from daemon import launch_store

    try:
        code = proc.wait()
        launch_store.finish(engine, launch_id, exit_code=code, now=datetime.now(UTC))
    except Exception:  # a thread's exception would vanish: say it in the log
        log.exception("could not record the end of a headless launch", launch_id=launch_id)


def _watch(engine: Engine, launch_id: int, proc: subprocess.Popen[bytes]) -> None:
    import threading

    threading.Thread(
        target=wait_and_record, args=(engine, launch_id, proc), name=f"baton-launch-{launch_id}", daemon=True
    ).start()
