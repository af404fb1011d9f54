"""Read a session plan in Markdown into phases, task types and complexity factors (pure: text in, data out).

A plan has phases as headings, `### Phase 1: WebSocket server (1-1.5h)`, each with an optional `Type: testing`
line (else the type is inferred from the phase's words) and optional factor lines. Factor lines before the
first phase apply to the whole plan; inside a phase they override it for that phase:

    **Project size**: large          (small | medium | large | enterprise)
    **Tech stack**: learning         (familiar | learning | new)
    **Code quality**: legacy         (clean | mixed | legacy)
    **New libraries**: Socket.io, Recharts
    **Quota**: 200,000 tokens        (or a plan name: pro, max5, max20)

A handoff works too: the numbered items under its "Next Session Objectives" heading become phases, and an
`(Est: 15k tokens)` in an item is taken as that phase's own figure. Odd lines never stop the parse: each one
becomes a warning naming the file and line; only a plan with no phase at all is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from daemon.errors import BatonError

TASK_TYPES: tuple[str, ...] = ("planning", "implementation", "refactoring", "testing", "debugging", "polish")
PROJECT_SIZES: tuple[str, ...] = ("small", "medium", "large", "enterprise")
TECH_STACKS: tuple[str, ...] = ("familiar", "learning", "new")
CODE_QUALITIES: tuple[str, ...] = ("clean", "mixed", "legacy")

# Words that point to a task type; a phase's name counts twice as much as its body.
_TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "planning": (
        "plan",
        "planning",
        "design",
        "architecture",
        "research",
        "spec",
        "specification",
        "outline",
        "explore",
        "exploration",
        "investigate",
        "scope",
        "requirements",
        "proposal",
        "rfc",
    ),
    "implementation": (
        "implement",
        "implementation",
        "build",
        "create",
        "add",
        "feature",
        "server",
        "api",
        "endpoint",
        "endpoints",
        "component",
        "components",
        "setup",
        "dashboard",
        "ui",
        "page",
        "schema",
        "model",
        "visualization",
        "support",
    ),
    "refactoring": (
        "refactor",
        "refactoring",
        "restructure",
        "migrate",
        "migration",
        "rename",
        "extract",
        "reorganize",
        "reorganise",
        "modernize",
        "modernise",
        "port",
        "rewrite",
        "decouple",
        "split",
    ),
    "testing": (
        "test",
        "tests",
        "testing",
        "coverage",
        "e2e",
        "qa",
        "verify",
        "verification",
        "pytest",
        "jest",
        "spec",
        "fixtures",
        "benchmark",
    ),
    "debugging": (
        "debug",
        "debugging",
        "fix",
        "fixes",
        "bug",
        "bugs",
        "crash",
        "error",
        "errors",
        "regression",
        "broken",
        "failure",
        "failing",
        "flaky",
        "leak",
        "troubleshoot",
    ),
    "polish": (
        "polish",
        "docs",
        "documentation",
        "readme",
        "style",
        "styling",
        "cleanup",
        "lint",
        "format",
        "formatting",
        "tidy",
        "copy",
        "wording",
        "changelog",
        "release",
    ),
}
_WORD = re.compile(r"[a-z0-9]+")

_PHASE_HEADING = re.compile(
    r"^(?P<hashes>#{1,6})\s*phase\b\s*(?P<num>\d+(?:\.\d+)?)?\s*[:.)\-–—]?\s*(?P<rest>.*?)\s*#*\s*$",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*?)\s*#*\s*$")
_KEY_VALUE = re.compile(
    r"^\s*(?:[-*+]\s+)?\**\s*(?P<key>[A-Za-z][A-Za-z /_-]{1,40}?)\s*\**\s*:\s*\**\s*(?P<value>.*?)\s*$"
)
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_UNIT = r"(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)\b"
_RANGE = re.compile(rf"{_NUMBER}\s*(?:{_UNIT})?\s*(?:-|–|—|to)\s*{_NUMBER}\s*{_UNIT}", re.IGNORECASE)
_HOURS_MINUTES = re.compile(
    r"(\d+)\s*h(?:ours?|rs?)?\s*(\d{1,2})\s*(?:m(?:in(?:utes?|s)?)?)?(?![\d.])", re.IGNORECASE
)
_SINGLE = re.compile(rf"{_NUMBER}\s*{_UNIT}", re.IGNORECASE)
_TOKENS = re.compile(r"(?:est\w*[:\s]*)?~?\s*(\d+(?:[.,]\d+)*)\s*(k|m)?\s*tokens?\b", re.IGNORECASE)
_OBJECTIVE_ITEM = re.compile(r"^(?:\d+[.)]|[-*+])\s+(?P<text>.+)$")


@dataclass(frozen=True)
class Factors:
    """Complexity factors; None means the plan does not say (the estimate then uses a neutral 1.0)."""

    project_size: str | None = None
    tech_stack: str | None = None
    code_quality: str | None = None

    def merged(self, override: Factors) -> Factors:
        """Return these factors with every one that `override` states replaced by its value."""
        return Factors(
            project_size=override.project_size or self.project_size,
            tech_stack=override.tech_stack or self.tech_stack,
            code_quality=override.code_quality or self.code_quality,
        )


@dataclass(frozen=True)
class PlannedPhase:
    """One phase of a plan: hours planned (low..high), the task type and where it came from, its factors."""

    number: int
    name: str
    hours_low: float | None
    hours_high: float | None
    task_type: str
    type_source: str  # "given" | "inferred" | "default"
    factors: Factors
    libraries: tuple[str, ...]
    given_tokens: int | None
    line: int
    stated: tuple[int, int] | None = None  # the plan's own token range for a phase that also has hours
    hours_assumed: bool = False  # the plan gave no duration: baton counted 1 hour

    @property
    def hours_mid(self) -> float | None:
        """Return the middle of the planned hours, or None when the phase states no duration."""
        if self.hours_low is None or self.hours_high is None:
            return None
        return (self.hours_low + self.hours_high) / 2


@dataclass(frozen=True)
class Plan:
    """A parsed plan: title, plan-wide factors and libraries, phases, the quota it names, and warnings."""

    source: str
    title: str
    factors: Factors
    libraries: tuple[str, ...]
    phases: tuple[PlannedPhase, ...]
    quota_tokens: int | None = None
    quota_plan: str | None = None
    kind: str = "plan"  # "plan" | "handoff"
    warnings: tuple[str, ...] = field(default_factory=tuple)


def library_key(name: str) -> str:
    """Return the key a library is learned under: lower-case letters and digits (Socket.io: socketio)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parse_duration(text: str) -> tuple[float, float] | None:
    """Return (low, high) hours for "1-1.5h", "90 min", "1h30", "30-45 min", "2 hours"; None if none."""
    if m := _RANGE.search(text):
        lo, lo_unit, hi, hi_unit = m.group(1), m.group(2), m.group(3), m.group(4)
        low = _to_hours(float(lo.replace(",", ".")), lo_unit or hi_unit)
        high = _to_hours(float(hi.replace(",", ".")), hi_unit)
        return (min(low, high), max(low, high))
    if m := _HOURS_MINUTES.search(text):
        hours = int(m.group(1)) + int(m.group(2)) / 60
        return (hours, hours)
    if m := _SINGLE.search(text):
        hours = _to_hours(float(m.group(1).replace(",", ".")), m.group(2))
        return (hours, hours)
    return None


def _to_hours(value: float, unit: str) -> float:
    return value / 60 if unit.lower().startswith("m") else value


def parse_tokens(text: str) -> int | None:
    """Return the token figure in "Est: 15k tokens", "200,000 tokens", "1.2M tokens"; None if none."""
    m = _TOKENS.search(text)
    if not m:
        return None
    digits, suffix = m.group(1), (m.group(2) or "").lower()
    if suffix:
        value = float(digits.replace(",", "."))
        return round(value * (1000 if suffix == "k" else 1_000_000))
    return int(digits.replace(",", "").replace(".", ""))


_TOKEN_FIGURE = re.compile(r"(\d+(?:[.,]\d+)*)\s*(k|m)?\b", re.IGNORECASE)


def parse_token_range(text: str) -> tuple[int, int] | None:
    """Return (low, high) tokens for "25,000 - 32,000", "25k-32k tokens" or "15k"; None if none."""
    figures = []
    for digits, suffix in _TOKEN_FIGURE.findall(text):
        if suffix:
            scale = 1000 if suffix.lower() == "k" else 1_000_000
            figures.append(round(float(digits.replace(",", ".")) * scale))
        else:
            figures.append(int(digits.replace(",", "").replace(".", "")))
    if not figures:
        return None
    return (min(figures[0], figures[-1]), max(figures[0], figures[-1]))


def infer_task_type(name: str, body: str) -> tuple[str, str]:
    """Return (task type, "inferred") from a phase's words, or ("implementation", "default") if none match."""
    scores = dict.fromkeys(TASK_TYPES, 0)
    for weight, text in ((2, name), (1, body)):
        for word in _WORD.findall(text.lower()):
            for task, words in _TYPE_WORDS.items():
                if word in words:  # generic build words count half as much as the specific ones
                    scores[task] += weight * (1 if task == "implementation" else 2)
    best = max(TASK_TYPES, key=lambda t: scores[t])  # ties go to the earlier type
    return (best, "inferred") if scores[best] else ("implementation", "default")


def _pick(value: str, allowed: tuple[str, ...], aliases: dict[str, str] | None = None) -> str | None:
    """Return the first word of `value` (or its alias) that is one of `allowed`, else None."""
    table = aliases or {}
    for word in _WORD.findall(value.lower()):
        word = table.get(word, word)
        if word in allowed:
            return str(word)
    return None


_TYPE_ALIASES = {
    "impl": "implementation",
    "implement": "implementation",
    "feature": "implementation",
    "refactor": "refactoring",
    "test": "testing",
    "tests": "testing",
    "debug": "debugging",
    "fix": "debugging",
    "bugfix": "debugging",
    "plan": "planning",
    "design": "planning",
    "docs": "polish",
    "documentation": "polish",
    "cleanup": "polish",
}
_STACK_ALIASES = {"known": "familiar", "unfamiliar": "new", "first": "new"}


@dataclass
class _Section:
    """Mutable state while reading one phase (or the preamble)."""

    line: int
    number: int
    name: str
    duration: tuple[float, float] | None = None
    task_type: str | None = None
    factors: Factors = field(default_factory=Factors)
    libraries: list[str] = field(default_factory=list)
    tokens: int | None = None
    stated: tuple[int, int] | None = None
    body: list[str] = field(default_factory=list)


def _apply_key_value(sec: _Section, key: str, value: str, where: str, warnings: list[str]) -> bool:
    """Apply one `Key: value` line to `sec`; return True if the key is one of the plan's keys."""
    key = " ".join(key.lower().replace("_", " ").replace("-", " ").split())
    if key in ("type", "task type", "task"):
        task = _pick(value, TASK_TYPES, _TYPE_ALIASES)
        if task is None:
            warnings.append(
                f"{where}: unknown task type {value!r} (use one of {', '.join(TASK_TYPES)}); inferred"
            )
        sec.task_type = task or sec.task_type
    elif key in ("project size", "size"):
        sec.factors = _factor(sec.factors, "project_size", value, PROJECT_SIZES, None, where, warnings)
    elif key in ("tech stack", "stack", "technology", "tech"):
        sec.factors = _factor(sec.factors, "tech_stack", value, TECH_STACKS, _STACK_ALIASES, where, warnings)
    elif key in ("code quality", "quality", "codebase"):
        sec.factors = _factor(sec.factors, "code_quality", value, CODE_QUALITIES, None, where, warnings)
    elif key in ("new libraries", "new library", "libraries", "new libs", "libs"):
        names = [n.strip(" *`_.") for n in re.split(r"[,;]| and ", value)]
        sec.libraries.extend(n for n in names if n and n.lower() not in ("none", "n/a", "-"))
    elif key in ("complexity", "complexity factor", "multiplier"):
        warnings.append(
            f"{where}: {key} {value!r} is not used: name the factor, e.g. `Tech stack: familiar` "
            "(or `Code quality:`, `Project size:`)"
        )
    elif key in ("estimated tokens", "tokens", "token estimate", "estimate"):
        if (stated := parse_token_range(value)) is None:
            warnings.append(f"{where}: cannot read a token figure in {value!r} (write e.g. 25,000 - 32,000)")
        sec.stated = sec.stated or stated
    elif key in ("duration", "estimated time", "time", "hours", "estimated duration"):
        if (d := parse_duration(value)) is None:
            warnings.append(f"{where}: cannot read a duration in {value!r} (write e.g. 1-1.5h or 45 min)")
        sec.duration = sec.duration or d  # the heading's figure wins over a detail line
    else:
        return False
    return True


def _factor(
    factors: Factors,
    attr: str,
    value: str,
    allowed: tuple[str, ...],
    aliases: dict[str, str] | None,
    where: str,
    warnings: list[str],
) -> Factors:
    picked = _pick(value, allowed, aliases)
    if picked is None:
        warnings.append(
            f"{where}: unknown {attr.replace('_', ' ')} {value!r} (use one of {', '.join(allowed)})"
        )
        return factors
    return Factors(**{**factors.__dict__, attr: picked})


def _read_quota(value: str) -> tuple[int | None, str | None]:
    """Return (tokens, plan name) from a Quota line's value: "200,000 tokens", "200k", "pro", "Max 20x"."""
    lowered = value.lower()
    if re.search(r"\bmax\s*-?\s*20", lowered):
        return None, "max20"
    if re.search(r"\bmax", lowered):
        return None, "max5"
    if re.search(r"\bpro\b", lowered):
        return None, "pro"
    return parse_tokens(value if "token" in lowered else value + " tokens"), None


@dataclass
class _Reading:
    """Mutable state while reading a plan's lines: the preamble, the phases so far, the quota it names."""

    source: str
    warnings: list[str]
    preamble: _Section = field(default_factory=lambda: _Section(line=0, number=0, name=""))
    sections: list[_Section] = field(default_factory=list)
    quota_tokens: int | None = None
    quota_plan: str | None = None
    in_code: bool = False
    phase_level: int = 0

    def read(self, lineno: int, raw: str) -> None:
        """Take one line of the plan into the phase it belongs to (or the preamble)."""
        if raw.lstrip().startswith(("```", "~~~")):
            self.in_code = not self.in_code
            return
        if self.in_code:
            return
        if (m := _PHASE_HEADING.match(raw)) and m.group("hashes") != "#":
            self.sections.append(_new_phase(m, lineno, len(self.sections) + 1))
            self.phase_level = len(m.group("hashes"))
            return
        if (h := _HEADING.match(raw)) and self.sections and len(h.group("hashes")) <= self.phase_level:
            self.sections[-1].body.append("")  # a sibling heading closes the phase: later lines are plan-wide
            self.sections.append(_Section(line=lineno, number=-1, name=""))
            return
        current = self.sections[-1] if self.sections else self.preamble
        kv = _KEY_VALUE.match(raw.replace("**", "") if "**" in raw else raw)
        where = f"{self.source}:{lineno}"
        if kv and kv.group("key").strip().lower() in ("quota", "token limit", "quota limit", "limit"):
            self.quota_tokens, self.quota_plan = _read_quota(kv.group("value"))
            if self.quota_tokens is None and self.quota_plan is None:
                self.warnings.append(
                    f"{where}: cannot read the quota {kv.group('value')!r} (write e.g. 200,000 tokens)"
                )
            return
        target = current if current.number != -1 else self.preamble
        if kv and _apply_key_value(target, kv.group("key"), kv.group("value"), where, self.warnings):
            return
        current.body.append(raw)


def parse_plan(text: str, source: str) -> Plan:
    """Return the plan in `text` (read from `source`, used in messages).

    Raise BatonError naming `source` when it holds no phase (and no handoff objectives).
    """
    lines = text.splitlines()
    reading = _Reading(source, [])
    for lineno, raw in enumerate(lines, start=1):
        reading.read(lineno, raw)
    pre = reading.preamble
    phases = tuple(_finish(s, pre, source, reading.warnings) for s in reading.sections if s.number > 0)
    kind = "plan"
    if not phases:
        phases = _objectives(lines)
        kind = "handoff"
    if not phases:
        raise BatonError(
            f"{source}: no phases found",
            hint="write each phase as a heading such as `### Phase 1: WebSocket server (1-1.5h)`, "
            "or give a handoff with a numbered `## Next Session Objectives` list",
        )
    title = next(
        (m.group("text") for ln in lines if (m := _HEADING.match(ln)) and len(m.group("hashes")) == 1), ""
    )
    return Plan(
        source=source,
        title=title or (phases[0].name if kind == "handoff" else source),
        factors=pre.factors,
        libraries=tuple(dict.fromkeys(pre.libraries)),
        phases=phases,
        quota_tokens=reading.quota_tokens,
        quota_plan=reading.quota_plan,
        kind=kind,
        warnings=tuple(reading.warnings),
    )


def _new_phase(m: re.Match[str], lineno: int, index: int) -> _Section:
    rest = m.group("rest")
    duration = None
    tokens = None
    for paren in re.findall(r"\(([^)]*)\)", rest):
        duration = duration or parse_duration(paren)
        tokens = tokens or parse_tokens(paren)
    name = re.sub(r"\s*\([^)]*\)\s*", " ", rest).strip(" :-–—*`") or f"Phase {m.group('num') or index}"
    number = index
    if m.group("num") and "." not in m.group("num"):
        number = int(m.group("num"))
    return _Section(line=lineno, number=number, name=name, duration=duration, tokens=tokens)


def _finish(sec: _Section, preamble: _Section, source: str, warnings: list[str]) -> PlannedPhase:
    body = "\n".join(sec.body)
    if sec.task_type:
        task, how = sec.task_type, "given"
    else:
        task, how = infer_task_type(sec.name, body)
    duration = sec.duration
    if duration is None:
        for ln in sec.body:
            if re.search(r"\b(duration|time|hours?)\b", ln, re.IGNORECASE) and (
                duration := parse_duration(ln)
            ):
                break
    tokens = sec.tokens
    if tokens is None and duration is None and sec.stated is not None:
        tokens = round(sum(sec.stated) / 2)  # no hours: the plan's own figure is the estimate
    assumed = duration is None and tokens is None
    if assumed:
        warnings.append(f"{source}:{sec.line}: phase {sec.name!r} states no duration; counted as 1 hour")
        duration = (1.0, 1.0)
    if duration is not None and duration[1] <= 0:
        warnings.append(f"{source}:{sec.line}: phase {sec.name!r} has a zero duration; counted as 1 hour")
        duration = (1.0, 1.0)
    return PlannedPhase(
        number=sec.number,
        name=sec.name,
        hours_low=duration[0] if duration else None,
        hours_high=duration[1] if duration else None,
        task_type=task,
        type_source=how,
        factors=preamble.factors.merged(sec.factors),
        libraries=tuple(dict.fromkeys(sec.libraries)),
        given_tokens=tokens,
        line=sec.line,
        stated=sec.stated if duration is not None else None,
        hours_assumed=assumed,
    )


def _objectives(lines: list[str]) -> tuple[PlannedPhase, ...]:
    """Return phases from the numbered items under a handoff's objectives heading (empty if there is none)."""
    phases: list[PlannedPhase] = []
    inside = False
    for lineno, raw in enumerate(lines, start=1):
        if h := _HEADING.match(raw):
            inside = "objective" in h.group("text").lower()
            continue
        if not inside or raw[:1].isspace():
            continue
        if not (m := _OBJECTIVE_ITEM.match(raw.strip())):
            continue
        text = m.group("text")
        name = re.sub(r"\s*\([^)]*\)\s*", " ", text).replace("**", "").strip(" :-*`")
        if not name or name.lower().startswith("total"):
            continue
        duration = parse_duration(" ".join(re.findall(r"\(([^)]*)\)", text)))
        task, how = infer_task_type(name, "")
        phases.append(
            PlannedPhase(
                number=len(phases) + 1,
                name=name,
                hours_low=duration[0] if duration else None,
                hours_high=duration[1] if duration else None,
                task_type=task,
                type_source=how,
                factors=Factors(),
                libraries=(),
                given_tokens=parse_tokens(text),
                line=lineno,
            )
        )
    if phases and all(p.hours_low is None and p.given_tokens is None for p in phases):
        phases = [
            PlannedPhase(**{**p.__dict__, "hours_low": 1.0, "hours_high": 1.0, "hours_assumed": True})
            for p in phases
        ]
    return tuple(phases)
