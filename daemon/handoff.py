"""Handoffs: what one Claude Code session leaves for the next, as a Markdown file with a small header.

A handoff file is front matter (`---` lines holding `key: value`, the machine-readable part: project,
branch, from-session, agent, estimated tokens, start, scheduled time, status) followed by Markdown sections
rendered from a template (the bundled `handoffs/handoff.md`, or `handoff.md` in the user's templates dir).
Parsing reads the
sections back by their headings, so `parse(render(h)) == h`.

Rendering and parsing are pure; `save`, `load`, `set_status` and the lookups are the thin file edge.
Files live under `paths.handoffs_dir/<project-slug>/<id>.md`, private to the user, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import string
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from daemon.errors import BatonError
from daemon.paths import BatonPaths

Status = Literal["pending", "launched", "done", "cancelled"]
Start = Literal["at-reset", "after-reset", "time", "manual"]
STATUSES: tuple[str, ...] = ("pending", "launched", "done", "cancelled")
STARTS: tuple[str, ...] = ("at-reset", "after-reset", "time", "manual")
FORMAT_VERSION = 1
NONE_TEXT = "_None._"
# What `new_id` makes: the creation time, then a short random token. Checked on every parse, since the id
# names the file: a hand-written `id: ../../x` must never reach a path.
ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[A-Za-z0-9_]{1,32}$")


class HandoffError(BatonError):
    """A handoff file or a handoff's input is malformed; the message names the file and line when known."""


@dataclass(frozen=True)
class Objective:
    text: str
    estimate_tokens: int | None = None


@dataclass(frozen=True)
class CurrentState:
    last_commit: str | None = None
    tests: str | None = None
    files_modified: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Handoff:
    """One handoff. Times are aware datetimes; `project` is an absolute directory path."""

    id: str
    project: str
    created: datetime
    title: str = ""
    status: Status = "pending"
    start: Start = "after-reset"
    scheduled_for: datetime | None = None
    launched_at: datetime | None = None
    branch: str | None = None
    from_session: str | None = None
    agent: str | None = None
    estimate_tokens: int | None = None
    accomplished: tuple[str, ...] = ()
    state: CurrentState = field(default_factory=CurrentState)
    objectives: tuple[Objective, ...] = ()
    decisions: tuple[str, ...] = ()
    blockers: str = ""
    files: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    instructions: str = ""

    @property
    def project_name(self) -> str:
        return Path(self.project).name or self.project


# ---------------------------------------------------------------------------------------------------- render


def new_id(now: datetime, token: str | None = None) -> str:
    """Return a sortable handoff id for `now`: `YYYYmmdd-HHMMSS-xxxx` (xxxx random unless `token` given)."""
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{token or secrets.token_hex(2)}"


def _header_value(value: str) -> str:
    if value != value.strip() or "\n" in value or value.startswith('"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def render_header(h: Handoff) -> str:
    """Return the front matter block (with its `---` lines and a final newline)."""
    fields: list[tuple[str, str | None]] = [
        ("baton-handoff", str(FORMAT_VERSION)),
        ("id", h.id),
        ("title", h.title),
        ("project", h.project),
        ("branch", h.branch),
        ("from-session", h.from_session),
        ("agent", h.agent),
        ("estimated-tokens", None if h.estimate_tokens is None else str(h.estimate_tokens)),
        ("start", h.start),
        ("scheduled-for", h.scheduled_for.isoformat() if h.scheduled_for else None),
        ("status", h.status),
        ("launched-at", h.launched_at.isoformat() if h.launched_at else None),
        ("created", h.created.isoformat()),
    ]
    lines = [f"{key}: {_header_value(value or '')}".rstrip() for key, value in fields]
    return "---\n" + "\n".join(lines) + "\n---\n"


def _escape(text: str) -> str:
    """Keep free text from being read back as a heading: lines starting with `#` or `\\` get a `\\`."""
    return "\n".join(
        "\\" + line if line.startswith(("#", "\\")) else line for line in text.strip().split("\n")
    )


def _bullets(items: Iterable[str], numbered: bool = False) -> str:
    out = []
    for i, item in enumerate(items, 1):
        marker = f"{i}. " if numbered else "- "
        first, *rest = item.strip().split("\n")
        out.append(marker + first + "".join("\n  " + line if line else "\n" for line in rest))
    return "\n".join(out) or NONE_TEXT


def _tokens(n: int) -> str:
    return f"{n:,}"


def _render_state(h: Handoff) -> str:
    s = h.state
    lines = [
        f"- **Branch**: {h.branch or 'unknown'}",
        f"- **Last commit**: {s.last_commit or 'unknown'}",
        f"- **Tests**: {s.tests or 'not recorded'}",
        "- **Files modified**:" + ("" if s.files_modified else " none"),
    ]
    lines += [f"  - {f}" for f in s.files_modified]
    text = "\n".join(lines)
    return text + ("\n\n" + _escape(s.notes) if s.notes.strip() else "")


def _render_objectives(h: Handoff) -> str:
    items = [
        o.text.strip() + ("" if o.estimate_tokens is None else f" (est. {_tokens(o.estimate_tokens)} tokens)")
        for o in h.objectives
    ]
    text = _bullets(items, numbered=True)
    if h.estimate_tokens is not None:
        text += f"\n\n**Total estimate**: {_tokens(h.estimate_tokens)} tokens"
    return text


def _render_commands(commands: tuple[str, ...]) -> str:
    if not commands:
        return NONE_TEXT
    longest = max((len(run) for c in commands for run in re.findall(r"`+", c)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}bash\n" + "\n".join(commands) + f"\n{fence}"


def section_texts(h: Handoff) -> dict[str, str]:
    """Return the template's placeholders for `h`, each already rendered as Markdown."""
    return {
        "title": h.title or h.project_name,
        "project": h.project,
        "accomplished": _bullets(h.accomplished),
        "state": _render_state(h),
        "objectives": _render_objectives(h),
        "decisions": _bullets(h.decisions),
        "blockers": _escape(h.blockers) or NONE_TEXT,
        "files": _bullets(h.files, numbered=True),
        "commands": _render_commands(h.commands),
        "instructions": _escape(h.instructions) or NONE_TEXT,
    }


def render(h: Handoff, template: str) -> str:
    """Return the whole handoff file: header, then `template` with `$placeholders` filled in."""
    body = string.Template(template).safe_substitute(section_texts(h))
    return render_header(h) + body.rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------------- parse

HEADINGS: dict[str, str] = {
    "what was accomplished": "accomplished",
    "current state": "state",
    "next session objectives": "objectives",
    "key decisions and context": "decisions",
    "key decisions & context": "decisions",
    "blockers and notes": "blockers",
    "blockers & notes": "blockers",
    "files to read first": "files",
    "commands to run on start": "commands",
    "agent instructions": "instructions",
}
_OBJECTIVE = re.compile(r"^(?P<text>.*?)(?:\s+\(est\.\s*(?P<n>[\d,_]+)\s*tokens\))?$", re.S)
_STATE_LINE = re.compile(r"^- \*\*(?P<key>[^*]+)\*\*:\s?(?P<value>.*)$")


def _unescape(text: str) -> str:
    return "\n".join(line[1:] if line.startswith("\\") else line for line in text.split("\n")).strip()


def _free(text: str) -> str:
    text = text.strip()
    return "" if text == NONE_TEXT else _unescape(text)


def _items(text: str) -> tuple[str, ...]:
    """Read a `- ` or `1. ` list back into its items (continuation lines are indented two spaces)."""
    items: list[list[str]] = []
    for line in text.strip().split("\n"):
        m = re.match(r"^(?:- |\d+\. )(.*)$", line)
        if m:
            items.append([m.group(1)])
        elif items and (line.startswith("  ") or not line):
            items[-1].append(line[2:])
        elif items:
            break  # a paragraph after the list (a user template's own text) is not an item
        elif line.strip() and line.strip() != NONE_TEXT:
            items.append([line.strip()])
    return tuple("\n".join(parts).strip() for parts in items)


def _parse_state(text: str) -> tuple[CurrentState, str | None]:
    values: dict[str, str] = {}
    files: list[str] = []
    notes: list[str] = []
    lines = text.strip().split("\n")
    i = 0
    while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  - ")):
        line = lines[i]
        m = _STATE_LINE.match(line)
        if m:
            values[m.group("key").strip().lower()] = m.group("value").strip()
        elif line.startswith("  - "):
            files.append(line[4:])
        i += 1
    notes = lines[i:]

    def value(key: str, unknown: str) -> str | None:
        v = values.get(key)
        return None if v in (None, "", unknown) else v

    state = CurrentState(
        last_commit=value("last commit", "unknown"),
        tests=value("tests", "not recorded"),
        files_modified=tuple(files),
        notes=_unescape("\n".join(notes)),
    )
    return state, value("branch", "unknown")


def _parse_objectives(text: str) -> tuple[Objective, ...]:
    text = re.split(r"\n\s*\*\*Total estimate\*\*", "\n" + text.strip(), maxsplit=1)[0]
    out = []
    for item in _items(text):
        m = _OBJECTIVE.match(item)
        assert m is not None  # the pattern matches any text
        n = m.group("n")
        out.append(
            Objective(m.group("text").strip(), int(n.replace(",", "").replace("_", "")) if n else None)
        )
    return tuple(out)


def _parse_commands(text: str) -> tuple[str, ...]:
    text = text.strip()
    m = re.match(r"^(`{3,})[^\n]*\n(.*?)\n?\1\s*$", text, re.S)
    if m:
        return tuple(line for line in m.group(2).split("\n") if line.strip())
    return () if text in ("", NONE_TEXT) else tuple(line for line in text.split("\n") if line.strip())


def split_front_matter(text: str, source: str = "<handoff>") -> tuple[dict[str, str], str, int]:
    """Return (header fields, body, line number where the body starts). Raise HandoffError if malformed."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise HandoffError(f"{source}:1: a handoff starts with a '---' header line")
    header: dict[str, str] = {}
    for n, line in enumerate(lines[1:], 2):
        if line.strip() == "---":
            return header, "\n".join(lines[n:]), n + 1
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise HandoffError(f"{source}:{n}: expected 'key: value' in the header, got {line[:60]!r}")
        value = value.strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise HandoffError(f"{source}:{n}: bad quoted value for {key.strip()!r}: {exc}") from exc
        header[key.strip().lower()] = value
    raise HandoffError(f"{source}: the header has no closing '---' line")


def _sections(body: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    for line in body.split("\n"):
        if line.startswith("## "):
            if current is not None:
                found[current] = "\n".join(buf)
            current = HEADINGS.get(line[3:].strip().lower().rstrip(":"))
            buf = []
        elif current is not None:
            buf.append(line)
    if current is not None:
        found[current] = "\n".join(buf)
    return found


def _datetime(value: str, key: str, source: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HandoffError(f"{source}: header {key!r} is not an ISO 8601 time: {value!r}") from exc
    if dt.tzinfo is None:
        raise HandoffError(f"{source}: header {key!r} has no UTC offset: {value!r}")
    return dt


def _choice(value: str, allowed: tuple[str, ...], key: str, source: str) -> str:
    if value not in allowed:
        raise HandoffError(f"{source}: header {key!r} is {value!r}; expected one of {', '.join(allowed)}")
    return value


def parse(text: str, source: str = "<handoff>") -> Handoff:
    """Return the handoff in `text`. Raise HandoffError naming `source` (and the line) if it is malformed."""
    header, body, _ = split_front_matter(text, source)
    for key in ("id", "project", "created"):
        if not header.get(key):
            raise HandoffError(f"{source}: the header has no {key!r}")
    if not ID_PATTERN.match(header["id"]):
        raise HandoffError(
            f"{source}: header 'id' is {header['id']!r}; expected an id like 20261123-184307-9693"
        )
    sections = _sections(body)
    state, _branch = _parse_state(sections.get("state", ""))
    estimate = header.get("estimated-tokens") or ""
    if estimate and not estimate.isdigit():
        raise HandoffError(f"{source}: header 'estimated-tokens' is not a number: {estimate!r}")
    created = _datetime(header["created"], "created", source)
    assert created is not None
    return Handoff(
        id=header["id"],
        project=header["project"],
        created=created,
        title=header.get("title", ""),
        status=_choice(header.get("status") or "pending", STATUSES, "status", source),  # type: ignore[arg-type]
        start=_choice(header.get("start") or "after-reset", STARTS, "start", source),  # type: ignore[arg-type]
        scheduled_for=_datetime(header.get("scheduled-for", ""), "scheduled-for", source),
        launched_at=_datetime(header.get("launched-at", ""), "launched-at", source),
        branch=header.get("branch") or None,
        from_session=header.get("from-session") or None,
        agent=header.get("agent") or None,
        estimate_tokens=int(estimate) if estimate else None,
        accomplished=_items(sections.get("accomplished", "")),
        state=state,
        objectives=_parse_objectives(sections.get("objectives", "")),
        decisions=_items(sections.get("decisions", "")),
        blockers=_free(sections.get("blockers", "")),
        files=_items(sections.get("files", "")),
        commands=_parse_commands(sections.get("commands", "")),
        instructions=_free(sections.get("instructions", "")),
    )


def with_header(text: str, h: Handoff, source: str = "<handoff>") -> str:
    """Return `text` with its header replaced by `h`'s, keeping the body byte for byte (it may be edited)."""
    _, body, _ = split_front_matter(text, source)
    return render_header(h) + body


def body_of(text: str, source: str = "<handoff>") -> str:
    """Return the Markdown after the header: what goes into the launch prompt."""
    return split_front_matter(text, source)[1].strip("\n") + "\n"


# ---------------------------------------------------------------------------------------------- file edge


def load_template(paths: BatonPaths) -> str:
    """Return the user's `handoff.md` template if there is one, else the bundled one."""
    user = paths.templates_dir / "handoff.md"
    if user.is_file():
        return user.read_text(encoding="utf-8")
    from daemon.resources import template_dir

    return (template_dir("handoffs") / "handoff.md").read_text(encoding="utf-8")


def project_slug(project: str) -> str:
    """Return a directory name for `project`: its safe base name and a short hash of the path."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(project).name).strip(".-") or "project"
    return f"{name[:40]}-{hashlib.sha256(project.encode()).hexdigest()[:8]}"


def path_for(paths: BatonPaths, h: Handoff) -> Path:
    """Return where `h` is stored. Raise HandoffError if its id is not a handoff id (it names the file)."""
    if not ID_PATTERN.match(h.id):
        raise HandoffError(f"not a handoff id: {h.id!r}")
    folder = paths.handoffs_dir / project_slug(h.project)
    path = folder / f"{h.id}.md"
    if path.parent != folder:  # pragma: no cover - the pattern already rules this out
        raise HandoffError(f"not a handoff id: {h.id!r}")
    return path


def private_dir(path: Path) -> None:
    """Create `path` and any missing parents, each mode 0700 (mkdir's mode applies to the last one only)."""
    missing = []
    d = path
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # the umask may have taken bits away: never added any


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temp file + rename), mode 0600, new parents 0700."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(paths: BatonPaths, h: Handoff, template: str | None = None) -> Path:
    """Render `h` with the effective template, write it and return its path."""
    path = path_for(paths, h)
    write_private(path, render(h, template if template is not None else load_template(paths)))
    os.chmod(paths.handoffs_dir, 0o700)  # older versions left it 0755, showing project names to others
    return path


def load(path: Path) -> Handoff:
    """Return the handoff stored at `path`. Raise HandoffError if it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise HandoffError(f"no handoff at {path}", hint="see `baton handoff list`") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise HandoffError(f"cannot read {path}: {exc}") from exc
    return parse(text, str(path))


def update(path: Path, **changes: object) -> Handoff:
    """Change header fields of the handoff at `path` (status, scheduled_for...); return the new record."""
    text = path.read_text(encoding="utf-8")
    h = replace(parse(text, str(path)), **changes)  # type: ignore[arg-type]
    write_private(path, with_header(text, h, str(path)))
    return h


def set_status(path: Path, status: Status) -> Handoff:
    """Set the handoff's status and return the new record."""
    return update(path, status=status)


def iter_paths(paths: BatonPaths) -> Iterator[Path]:
    """Yield every stored handoff file, newest id first."""
    root = paths.handoffs_dir
    if not root.is_dir():
        return
    files = [
        p for p in root.glob("*/*.md") if not p.name.startswith(".") and not p.name.endswith(".prompt.md")
    ]
    yield from sorted(files, key=lambda p: (p.stem[:15], p.stat().st_mtime_ns), reverse=True)


def list_all(paths: BatonPaths) -> list[tuple[Path, Handoff]]:
    """Return every readable handoff with its path, newest first (malformed files are skipped)."""
    out = []
    for p in iter_paths(paths):
        try:
            out.append((p, load(p)))
        except HandoffError:
            continue
    return out


def resolve(paths: BatonPaths, ref: str) -> Path:
    """Return the file for `ref`: a path to a handoff file, a handoff id, or a unique prefix or suffix of one
    (`20261123-1843` or `9693`).

    Raise HandoffError if nothing (or more than one handoff) matches.
    """
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    known = list(iter_paths(paths)) if ref else []
    matches = [p for p in known if p.stem == ref] or [
        p for p in known if p.stem.startswith(ref) or p.stem.endswith(ref)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise HandoffError(f"no handoff matches {ref!r}", hint="see `baton handoff list`")
    raise HandoffError(
        f"{ref!r} matches {len(matches)} handoffs; give more of the id",
        hint=", ".join(p.stem for p in matches[:5]),
    )


def latest_pending(paths: BatonPaths, project: str | None = None) -> tuple[Path, Handoff] | None:
    """Return the newest pending handoff (for `project` when given), or None."""
    for p, h in list_all(paths):
        if h.status == "pending" and (project is None or h.project == project):
            return p, h
    return None
