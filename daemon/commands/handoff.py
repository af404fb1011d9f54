"""`baton handoff new|list|show|edit|cancel`: write what the next session needs, and manage it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any

import click

from daemon import handoff as ho
from daemon.errors import BatonError
from daemon.handoff import CurrentState, Handoff, HandoffError, Objective
from daemon.paths import BatonPaths

JSON_KEYS = {
    "project", "title", "accomplished", "state", "tests", "objectives", "estimate", "blockers", "decisions",
    "files", "commands", "instructions", "agent", "from_session", "session_id", "start",
}  # fmt: skip
_EST = re.compile(
    r"^(?P<text>.*?)\s*(?:\(est\.\s*(?P<a>[\d,_]+k?)\s*(?:tokens)?\)|~\s*(?P<b>[\d,_]+k?))\s*$", re.I
)


def _paths() -> BatonPaths:
    return BatonPaths.from_env().ensure()


@click.group()
def handoff() -> None:
    """Write, list, show, edit and cancel handoffs."""


# ------------------------------------------------------------------------------------------ input shapes


def _tokens(text: str) -> int:
    text = text.replace(",", "").replace("_", "").strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def parse_objective(text: str) -> Objective:
    """Return the objective in `text`: "Do X", "Do X (est. 15,000 tokens)" or "Do X ~15k"."""
    m = _EST.match(text.strip())
    if m:
        return Objective(m.group("text").strip(), _tokens(m.group("a") or m.group("b")))
    return Objective(text.strip())


def git_state(project: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Return (branch, last commit "abc1234 subject", modified files) of the git work tree at `project`."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", project, *args], capture_output=True, text=True, timeout=10,
                                 check=False, stdin=subprocess.DEVNULL)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    branch = (git("rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    commit = (git("log", "-1", "--format=%h %s") or "").strip() or None
    status = git("status", "--porcelain", "--untracked-files=normal") or ""
    files = tuple(line[3:] for line in status.splitlines() if len(line) > 3)
    return branch, commit, files


LIST_KEYS = ("accomplished", "objectives", "decisions", "files", "commands")
TEXT_KEYS = ("project", "title", "tests", "agent", "from_session", "session_id", "start")


def _strings(value: Any, key: str) -> tuple[str, ...]:
    """Return a text or a list of texts as a tuple (an interactive answer, or a JSON text field)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    return _string_list(value, key)


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise HandoffError(f"--from-json: {key!r} must be a list, got {_json_type(value)}")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise HandoffError(f"--from-json: '{key}[{i}]' must be a string, got {_json_type(v)}")
    return tuple(v for v in value if v.strip())


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _objectives(value: Any) -> tuple[Objective, ...]:
    if value is not None and not isinstance(value, list):
        raise HandoffError(f"--from-json: 'objectives' must be a list, got {_json_type(value)}")
    out = []
    for i, item in enumerate(value or ()):
        if isinstance(item, str):
            out.append(parse_objective(item))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            est = item.get("estimate", item.get("estimate_tokens"))
            if est is not None and (not isinstance(est, int) or isinstance(est, bool) or est < 0):
                raise HandoffError(
                    f"--from-json: 'objectives[{i}].estimate' must be a whole number of tokens"
                )
            out.append(Objective(item["text"].strip(), est))
        else:
            raise HandoffError(f'--from-json: \'objectives[{i}]\' must be a string or {{"text", "estimate"}}')
    return tuple(out)


def from_json(data: Any) -> dict[str, Any]:
    """Return handoff fields from the JSON object Claude pipes in. Raise HandoffError naming the bad key."""
    if not isinstance(data, dict):
        raise HandoffError("--from-json: expected a JSON object")
    unknown = sorted(set(data) - JSON_KEYS)
    if unknown:
        raise HandoffError(
            f"--from-json: unknown key(s) {', '.join(unknown)}",
            hint=f"known keys: {', '.join(sorted(JSON_KEYS))}",
        )
    for key in TEXT_KEYS:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise HandoffError(f"--from-json: {key!r} must be a string, got {_json_type(data[key])}")
    state = data.get("state")
    notes, tests = "", data.get("tests")
    if isinstance(state, dict):
        for key in ("notes", "tests"):
            if state.get(key) is not None and not isinstance(state[key], str):
                raise HandoffError(
                    f"--from-json: 'state.{key}' must be a string, got {_json_type(state[key])}"
                )
        notes, tests = str(state.get("notes") or ""), state.get("tests", tests)
    elif state is not None:
        notes = "\n".join(_strings(state, "state"))
    estimate = data.get("estimate")
    if estimate is not None and (not isinstance(estimate, int) or isinstance(estimate, bool) or estimate < 0):
        raise HandoffError(f"--from-json: 'estimate' must be a whole number of tokens, got {estimate!r}")
    get = data.get
    return {
        "project": get("project"), "title": get("title"), "notes": notes, "tests": tests,
        "accomplished": _string_list(get("accomplished"), "accomplished"),
        "objectives": _objectives(get("objectives")),
        "estimate": estimate, "blockers": "\n".join(_strings(get("blockers"), "blockers")),
        "decisions": _string_list(get("decisions"), "decisions"),
        "files": _string_list(get("files"), "files"),
        "commands": _string_list(get("commands"), "commands"),
        "instructions": "\n".join(_strings(get("instructions"), "instructions")),
        "agent": get("agent"), "from_session": get("from_session") or get("session_id"),
        "start": get("start"),
    }  # fmt: skip


def _interactive(fields: dict[str, Any]) -> dict[str, Any]:
    click.echo("Let's prepare the next session. Empty answers are fine.", err=True)
    accomplished = click.prompt(
        "What did you accomplish this session?", default="", show_default=False, err=True
    )
    notes = click.prompt(
        "Current state (tests, anything git does not show)?", default="", show_default=False, err=True
    )
    click.echo("Next objectives, 2 to 4 (an empty line ends; add '~15k' for an estimate):", err=True)
    objectives: list[Objective] = []
    while len(objectives) < 8:
        item = click.prompt(f"  {len(objectives) + 1}>", default="", show_default=False, err=True)
        if not item.strip():
            break
        objectives.append(parse_objective(item))
    estimate = click.prompt("Estimated tokens for the next session", default="", show_default=False, err=True)
    blockers = click.prompt("Blockers or important context?", default="", show_default=False, err=True)
    click.echo(
        "When should the next session start?\n  1. at the reset\n  2. 5 minutes after the reset (default)\n"
        "  3. at a time I give\n  4. manually",
        err=True,
    )
    choice = click.prompt("Choice", type=click.Choice(["1", "2", "3", "4"]), default="2", err=True)
    start = {"1": "at-reset", "2": "after-reset", "4": "manual"}.get(choice)
    if start is None:
        start = click.prompt("Start at (18:05, +2h, 2026-11-23T18:05)", err=True)
    return {**fields, "accomplished": _strings(accomplished, "accomplished"), "notes": notes,
            "objectives": tuple(objectives), "estimate": _tokens(estimate) if estimate.strip() else None,
            "blockers": blockers, "start": start}  # fmt: skip


# ----------------------------------------------------------------------------------------------- new


def build(fields: dict[str, Any], *, now: datetime, paths: BatonPaths) -> Handoff:
    """Return the handoff for `fields`, with the current state filled in from git and the ledger."""
    from daemon import memory

    project = str(Path(fields.get("project") or os.getcwd()).expanduser().resolve())
    if not Path(project).is_dir():
        raise HandoffError(f"the project directory does not exist: {project}")
    branch, commit, files = git_state(project)
    objectives = tuple(fields.get("objectives") or ())
    estimate = fields.get("estimate")
    if estimate is None and objectives and all(o.estimate_tokens is not None for o in objectives):
        estimate = sum(o.estimate_tokens or 0 for o in objectives)
    from_session = fields.get("from_session")
    if not from_session:
        sessions = memory.ledger_sessions(paths.ledger_db, project)
        from_session = max(sessions, key=lambda s: s.end).id if sessions else None
    title = " ".join(str(fields.get("title") or (objectives[0].text if objectives else "")).split())[:80]
    return Handoff(
        id=ho.new_id(now), project=project, created=now, title=title, branch=branch,
        from_session=from_session, agent=fields.get("agent") or None, estimate_tokens=estimate,
        accomplished=tuple(fields.get("accomplished") or ()),
        state=CurrentState(commit, fields.get("tests") or None, files, str(fields.get("notes") or "")),
        objectives=objectives, decisions=tuple(fields.get("decisions") or ()),
        blockers=str(fields.get("blockers") or ""), files=tuple(fields.get("files") or ()),
        commands=tuple(fields.get("commands") or ()), instructions=str(fields.get("instructions") or ""),
    )  # fmt: skip


def _start_kind(start: str) -> ho.Start:
    kinds: dict[str, ho.Start] = {"at-reset": "at-reset", "after-reset": "after-reset", "manual": "manual"}
    return kinds.get(start, "time")


def start_time(paths: BatonPaths, start: str, now: datetime) -> datetime | None:
    """Return the launch time `start` names when it is a time (None for at-reset, after-reset, manual).

    Raise BatonError if it is no time."""
    if start in ("at-reset", "after-reset", "manual"):
        return None
    from daemon import scheduler
    from daemon.config import load_settings
    from daemon.when import parse_when_explained

    when = parse_when_explained(start, now, scheduler.zone(load_settings(paths)))
    if when.note:
        click.echo(f"Note: {when.note}.", err=True)
    return when.at


def schedule_start(paths: BatonPaths, path: Path, start: str, at: datetime | None, *, now: datetime) -> str:
    """Act on the handoff's start choice; return a sentence saying what will happen."""
    from daemon import scheduler
    from daemon.commands.schedule import request_add
    from daemon.config import load_settings
    from daemon.when import display

    if start == "manual":
        return f"Start it when you like: baton launch now {path.stem}"
    settings = load_settings(paths)
    if at is None:
        offset = timedelta(minutes=0 if start == "at-reset" else settings.scheduler.offset_minutes)
        try:
            result = request_add(paths, settings, path, at=None, offset=offset, now=now)
        except scheduler.ResetUnknown:
            return (
                "The reset time is not known yet: baton will schedule the launch when the quota runs out "
                "(auto mode), or schedule it yourself with `baton schedule`."
            )
    else:
        result = request_add(paths, settings, path, at=at, offset=None, now=now)
    launch = next(j for j in result.jobs if j["kind"] == "launch")
    run_at = display(datetime.fromisoformat(launch["run_at"]), scheduler.zone(settings), now)
    where = "" if result.via_daemon else " (baton is not running: it launches when the daemon is started)"
    text = f"Launch scheduled for {run_at} ({launch['run_at']}){where}. "
    text += f"Cancel with: baton schedule cancel {path.stem}"
    return text + ("\n" + result.warning if result.warning else "")


@handoff.command("new")
@click.option("--project", type=click.Path(file_okay=False), help="the project directory (default: here)")
@click.option("--title", help="a short name for the handoff")
@click.option("--accomplished", multiple=True, help="what this session did (repeatable)")
@click.option("--state", help="current state in words (git branch, commit and files are filled in)")
@click.option("--tests", help="test status, e.g. '15/15 passing'")
@click.option("--objective", "objectives", multiple=True, help="a next objective, 'text ~15k' (repeatable)")
@click.option("--estimate", type=str, help="estimated tokens for the next session (45000 or 45k)")
@click.option("--blockers", help="blockers and notes")
@click.option(
    "--decision", "decisions", multiple=True, help="a key decision or piece of context (repeatable)"
)
@click.option("--file", "files", multiple=True, help="a file to read first (repeatable)")
@click.option("--command", "commands", multiple=True, help="a command to run on start (repeatable)")
@click.option("--instructions", help="instructions for the agent")
@click.option("--agent", help="the Claude Code agent to start with")
@click.option("--session", "from_session", help="the session this hands off from (default: the latest seen)")
@click.option("--start", help="at-reset | after-reset (default) | TIME (18:05, +2h, ISO) | manual")
@click.option(
    "--from-json", "json_in", type=click.File("r", encoding="utf-8"), help="read the fields as JSON ('-')"
)
@click.option(
    "--interactive/--no-interactive", default=None, help="ask for each part (default: on a terminal)"
)
def new(json_in: IO[str] | None, interactive: bool | None, estimate: str | None, objectives: tuple[str, ...],
        state: str | None, start: str | None, **flags: Any) -> None:  # fmt: skip
    """Write a handoff for the next session and print its path."""
    paths = _paths()
    now = datetime.now(UTC).replace(microsecond=0)
    fields: dict[str, Any] = {k: v for k, v in flags.items() if v}
    if json_in is not None:
        try:
            data = json.load(json_in)
        except ValueError as exc:
            raise HandoffError(f"--from-json: not valid JSON: {exc}") from exc
        fields = {**{k: v for k, v in from_json(data).items() if v not in (None, "", ())}, **fields}
    if state:
        fields["notes"] = state
    if objectives:
        fields["objectives"] = tuple(parse_objective(o) for o in objectives)
    if estimate:
        fields["estimate"] = _tokens(estimate)
    start = start or fields.pop("start", None)
    content = set(fields) - {"project", "agent", "from_session", "title"}
    if interactive or (interactive is None and not content and json_in is None and sys.stdin.isatty()):
        fields = _interactive(fields)
        start = fields.pop("start", start)
    if not set(fields) - {"project", "agent", "from_session", "title"}:
        raise HandoffError(
            "nothing to hand off: no accomplishments, state or objectives were given",
            hint="pass --accomplished/--objective..., pipe JSON with --from-json -, or run it on a terminal",
        )
    start = start or "after-reset"
    at = start_time(paths, start, now)
    h = replace(build(fields, now=now, paths=paths), start=_start_kind(start))
    path = ho.save(paths, h)
    from daemon import memory

    memory.refresh(paths, h.project, now=now, handoff=h)
    click.echo(str(path))
    note = schedule_start(paths, path, h.start, at, now=now)
    click.echo(note, err=True)


# ------------------------------------------------------------------------------------ list, show, edit


def _when(h: Handoff, tz: tzinfo) -> str:
    """Return the time column of `handoff list`: when it launched, else when it is planned, else how."""
    if h.launched_at is not None:
        return h.launched_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if h.scheduled_for is not None and h.status == "pending":
        return h.scheduled_for.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return h.start


@handoff.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--status", type=click.Choice(ho.STATUSES), help="only handoffs with this status")
@click.option("--project", help="only this project directory")
def list_(as_json: bool, status: str | None, project: str | None) -> None:
    """List handoffs, newest first."""
    paths = _paths()
    want = str(Path(project).expanduser().resolve()) if project else None
    rows = [(p, h) for p, h in ho.list_all(paths) if (not status or h.status == status)
            and (not want or h.project == want)]  # fmt: skip
    if as_json:
        click.echo(json.dumps([{"id": h.id, "status": h.status, "start": h.start, "project": h.project,
                                "scheduled_for": h.scheduled_for.isoformat() if h.scheduled_for else None,
                                "launched_at": h.launched_at.isoformat() if h.launched_at else None,
                                "title": h.title, "path": str(p)} for p, h in rows], indent=2))  # fmt: skip
        return
    if not rows:
        click.echo("No handoffs yet. Write one with `baton handoff new`.", err=True)
        return
    from daemon import scheduler
    from daemon.config import load_settings

    tz = scheduler.zone(load_settings(paths))
    click.echo(f"{'ID':<20}  {'STATUS':<9}  {'LAUNCHED/PLANNED':<16}  {'PROJECT':<20}  TITLE")
    for _p, h in rows:
        click.echo(f"{h.id:<20}  {h.status:<9}  {_when(h, tz):<16}  {h.project_name:<20}  {h.title}")


@handoff.command("show")
@click.argument("ref")
@click.option("--path", "only_path", is_flag=True, help="print only the file's path")
def show(ref: str, only_path: bool) -> None:
    """Print a handoff (by id, a unique start or end of one, or path)."""
    path = ho.resolve(_paths(), ref)
    click.echo(str(path) if only_path else path.read_text(encoding="utf-8"), nl=only_path)


def editor_argv(env: dict[str, str] | os._Environ[str], path: Path) -> list[str]:
    """Return the editor command for `path`: $VISUAL or $EDITOR split like a shell would, never run by one."""
    editor = env.get("VISUAL") or env.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


@handoff.command("edit")
@click.argument("ref")
def edit(ref: str) -> None:
    """Open a handoff in your editor; the result is checked before it replaces the file."""
    path = ho.resolve(_paths(), ref)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".md")
    os.close(fd)
    Path(tmp).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        code = subprocess.run(editor_argv(os.environ, Path(tmp)), check=False).returncode
    except OSError as exc:
        raise BatonError(f"cannot start the editor: {exc}", hint="set $EDITOR") from exc
    text = Path(tmp).read_text(encoding="utf-8")
    if code != 0:
        raise BatonError(f"the editor exited with status {code}; the handoff is unchanged (your edit: {tmp})")
    try:
        h = ho.parse(text, tmp)
    except HandoffError as exc:
        raise HandoffError(f"{exc.message}; the handoff is unchanged, your edit is kept in {tmp}") from exc
    if h.id != path.stem:
        raise HandoffError(
            f"the id changed to {h.id!r}; the handoff is unchanged, your edit is kept in {tmp}"
        )
    ho.write_private(path, text)
    Path(tmp).unlink(missing_ok=True)
    click.echo(str(path))


@handoff.command("cancel")
@click.argument("ref")
def cancel(ref: str) -> None:
    """Cancel a handoff: its scheduled launch is removed and it will not start."""
    from daemon.commands.schedule import request_cancel
    from daemon.scheduler import NothingScheduled

    paths = _paths()
    path = ho.resolve(paths, ref)
    h = ho.load(path)
    if h.status != "pending":
        raise BatonError(f"handoff {h.id} is already {h.status}")
    try:
        removed, _ = request_cancel(paths, h.id)
    except NothingScheduled:
        removed = []
    ho.update(path, status="cancelled", scheduled_for=None)
    what = f" and its scheduled jobs ({', '.join(removed)})" if removed else ""
    click.echo(f"Cancelled handoff {h.id}{what}.")
