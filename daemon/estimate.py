"""How many tokens a planned session will use, and whether it fits the quota (pure: plan and figures in).

A phase of task type T planned for h hours, with complexity multiplier m and new libraries L, is estimated as

    tokens(h) = (base[T] + rate[T] * h * pace[T]) * m + sum(cost[l] for l in L)

where base and rate start from the defaults below and `pace` (worked hours per planned hour) starts at 1.0;
all three are replaced by the person's own figures as `daemon.estimate_model` learns them from tracked
sessions. The phase's range runs from tokens(low hours) to tokens(high hours), widened by a spread that
depends on how predictable the task type is (and on the new libraries in it). The session's total is the sum
of the phases: the middle figure, the conservative one (every phase at its low end) and the aggressive one
(every phase at its high end).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from daemon.plan_parse import Plan, PlannedPhase, library_key


@dataclass(frozen=True)
class Baseline:
    """A task type's starting figures: tokens to get going, tokens per hour, and how predictable it is."""

    base: float
    per_hour: float
    confidence: str  # "high" | "medium" | "low"


DEFAULT_BASELINES: Mapping[str, Baseline] = {
    "planning": Baseline(15_000, 20_000, "high"),
    "implementation": Baseline(25_000, 45_000, "medium"),
    "refactoring": Baseline(30_000, 55_000, "medium"),
    "testing": Baseline(18_000, 30_000, "high"),
    "debugging": Baseline(20_000, 35_000, "low"),
    "polish": Baseline(12_000, 20_000, "high"),
}
MULTIPLIERS: Mapping[str, Mapping[str, float]] = {
    "project_size": {"small": 0.8, "medium": 1.0, "large": 1.3, "enterprise": 1.6},
    "tech_stack": {"familiar": 0.9, "learning": 1.2, "new": 1.5},
    "code_quality": {"clean": 0.9, "mixed": 1.0, "legacy": 1.4},
}
SPREAD: Mapping[str, float] = {"high": 0.12, "medium": 0.15, "low": 0.25}
LIBRARY_SPREAD = 0.05  # each new library widens a phase's range by this much on each side
DEFAULT_LIBRARY_COST = 5_000.0  # tokens to integrate a library nobody has measured yet
DEFAULT_BUFFER = 0.20
DEFAULT_BUFFER_NOTE = "the default until 3 tracked sessions with an estimate show your own overruns"
LEVELS: tuple[str, ...] = ("low", "medium", "high")


@dataclass(frozen=True)
class Figure:
    """A number the estimate uses, its default, how many tracked sessions back it, and where it came from."""

    value: float
    default: float
    sessions: int = 0
    note: str = "default"


@dataclass(frozen=True)
class Calibration:
    """The figures an estimate is computed from: defaults, or learned by `daemon.estimate_model.fit`.

    rates: tokens per worked hour by task type; bases: start-up tokens by task type;
    pace: worked hours per planned hour by task type; libraries: tokens per integration by library key;
    buffer: fraction to add on top; multipliers: factor -> level -> multiplier (learned ones only; the
    others are the defaults in MULTIPLIERS);
    similar: dominant task type -> (tracked sessions, their mean absolute percentage error or None).
    """

    rates: Mapping[str, Figure]
    bases: Mapping[str, Figure]
    pace: Mapping[str, Figure]
    libraries: Mapping[str, Figure] = field(default_factory=dict)
    buffer: Figure = Figure(DEFAULT_BUFFER, DEFAULT_BUFFER, note=DEFAULT_BUFFER_NOTE)
    similar: Mapping[str, tuple[int, float | None]] = field(default_factory=dict)
    sessions: int = 0
    multipliers: Mapping[str, Mapping[str, Figure]] = field(default_factory=dict)

    def multiplier(self, factor: str, level: str) -> float:
        """Return the multiplier of `factor` at `level`: the learned one, else the default."""
        learned = self.multipliers.get(factor, {}).get(level)
        return learned.value if learned is not None else MULTIPLIERS[factor][level]


def default_calibration() -> Calibration:
    """Return the calibration made of the default figures only."""
    return Calibration(
        rates={t: Figure(b.per_hour, b.per_hour) for t, b in DEFAULT_BASELINES.items()},
        bases={t: Figure(b.base, b.base) for t, b in DEFAULT_BASELINES.items()},
        pace={t: Figure(1.0, 1.0) for t in DEFAULT_BASELINES},
    )


def library_cost(calibration: Calibration, key: str) -> Figure:
    """Return the learned cost of integrating library `key`, or the default one."""
    return calibration.libraries.get(key) or Figure(DEFAULT_LIBRARY_COST, DEFAULT_LIBRARY_COST)


@dataclass(frozen=True)
class QuotaLimit:
    """The token limit a plan is checked against, and where that figure came from."""

    tokens: int
    source: str


@dataclass(frozen=True)
class PhaseEstimate:
    """One phase's estimate: planned hours, multiplier, range (low, mid, high) and confidence."""

    number: int
    name: str
    task_type: str
    type_source: str
    hours_low: float
    hours_high: float
    multiplier: float
    factors: tuple[str, ...]  # for people: "tech stack familiar x0.9"
    levels: tuple[tuple[str, str], ...]  # for the model: ("tech_stack", "familiar")
    libraries: tuple[str, ...]
    library_tokens: int
    low: int
    mid: int
    high: int
    confidence: str
    given: bool = False
    base: float = 0.0  # the figures behind mid: (base + rate x hours x pace) x multiplier + library tokens
    rate: float = 0.0
    pace: float = 1.0
    spread: float = 0.0  # the range runs this fraction below the low hours' figure and above the high one's
    confidence_reason: str = ""
    stated: tuple[int, int] | None = None  # the plan's own figure, shown beside the estimate
    hours_assumed: bool = False  # no duration in the plan: 1 hour counted


@dataclass(frozen=True)
class Estimate:
    """A whole plan's estimate; `to_dict` is what `--json` prints and what `--save` stores."""

    title: str
    source: str
    phases: tuple[PhaseEstimate, ...]
    mid: int
    conservative: int  # every phase at its low end
    aggressive: int  # every phase at its high end
    buffer: float
    buffered: int
    hours_low: float
    hours_mid: float
    hours_high: float
    burn_per_minute: int
    limit: QuotaLimit | None
    fits: bool | None
    fits_with_buffer: bool | None
    fits_aggressive: bool | None
    confidence: str
    confidence_reason: str
    warnings: tuple[str, ...] = ()
    phases_that_fit: int | None = None  # when the plan does not fit with the buffer: how many phases do
    buffer_reason: str = ""  # where the buffer comes from: the default, or the overruns of past sessions

    def to_dict(self) -> dict[str, Any]:
        """Return the estimate as plain JSON-ready data."""
        return asdict(self)


def multiplier_of(
    factors: Mapping[str, str | None], calibration: Calibration | None = None
) -> tuple[float, tuple[str, ...]]:
    """Return the product of the complexity multipliers of `factors` (learned ones from `calibration`, else
    the defaults), and a "name level xM" text for each that is not neutral."""
    product = 1.0
    texts: list[str] = []
    for name, level in factors.items():
        if level is None:
            continue
        value = round(calibration.multiplier(name, level), 3) if calibration else MULTIPLIERS[name][level]
        product *= value
        if value != 1.0:  # a neutral level changes nothing and would only clutter the output
            texts.append(f"{name.replace('_', ' ')} {level} x{value:g}")
    return product, tuple(texts)


def phase_tokens(
    calibration: Calibration, task_type: str, hours: float, multiplier: float, libraries: tuple[str, ...] = ()
) -> float:
    """Return the tokens a phase of `task_type` planned for `hours` uses (unrounded)."""
    base = calibration.bases[task_type].value
    rate = calibration.rates[task_type].value
    pace = calibration.pace[task_type].value
    extra = sum(library_cost(calibration, library_key(name)).value for name in libraries)
    return (base + rate * hours * pace) * multiplier + extra


def _step(level: str, by: int) -> str:
    return LEVELS[max(0, min(len(LEVELS) - 1, LEVELS.index(level) + by))]


def estimate_phase(
    calibration: Calibration, phase: PlannedPhase, libraries: tuple[str, ...]
) -> PhaseEstimate:
    """Return the estimate of one phase, charging it the integration cost of `libraries`."""
    mult, texts = multiplier_of(asdict(phase.factors), calibration)
    confidence, why = _phase_confidence(phase, libraries)
    spread = SPREAD[confidence] + LIBRARY_SPREAD * len(libraries)
    lib_tokens = round(sum(library_cost(calibration, library_key(n)).value for n in libraries))
    if phase.given_tokens is not None and phase.hours_low is None:
        rate = calibration.rates[phase.task_type].value * calibration.pace[phase.task_type].value
        hours = phase.given_tokens / rate if rate > 0 else 1.0
        mid = float(phase.given_tokens)
        low, high, lo_h, hi_h = mid * (1 - spread), mid * (1 + spread), hours, hours
    else:
        lo_h = phase.hours_low if phase.hours_low is not None else 1.0
        hi_h = phase.hours_high if phase.hours_high is not None else lo_h
        mid = phase_tokens(calibration, phase.task_type, (lo_h + hi_h) / 2, mult, libraries)
        low = phase_tokens(calibration, phase.task_type, lo_h, mult, libraries) * (1 - spread)
        high = phase_tokens(calibration, phase.task_type, hi_h, mult, libraries) * (1 + spread)
    return PhaseEstimate(
        number=phase.number,
        name=phase.name,
        task_type=phase.task_type,
        type_source=phase.type_source,
        hours_low=lo_h,
        hours_high=hi_h,
        multiplier=round(mult, 4),
        factors=texts,
        levels=tuple((k, v) for k, v in asdict(phase.factors).items() if v is not None),
        libraries=libraries,
        library_tokens=lib_tokens,
        low=round(low),
        mid=round(mid),
        high=round(high),
        confidence=confidence,
        given=phase.given_tokens is not None and phase.hours_low is None,
        base=calibration.bases[phase.task_type].value,
        rate=calibration.rates[phase.task_type].value,
        pace=calibration.pace[phase.task_type].value,
        spread=round(spread, 4),
        confidence_reason=why,
        stated=phase.stated,
        hours_assumed=phase.hours_assumed,
    )


def _phase_confidence(phase: PlannedPhase, libraries: tuple[str, ...]) -> tuple[str, str]:
    """Return (level, reason): the task type's level, a step lower for new libraries and for a new stack."""
    start = DEFAULT_BASELINES[phase.task_type].confidence
    reasons = [f"{phase.task_type} is {start}"]
    if libraries:
        reasons.append("one step lower for new libraries")
    if phase.factors.tech_stack == "new":
        reasons.append("one step lower for a new tech stack")
    return _step(start, 1 - len(reasons)), ", ".join(reasons)


def _libraries_by_phase(plan: Plan) -> list[tuple[str, ...]]:
    """Return each phase's new libraries: each charged once, plan-wide ones in the first build phase."""
    named = [tuple(p.libraries) for p in plan.phases]
    seen = {library_key(n) for libs in named for n in libs}
    pending = [n for n in plan.libraries if library_key(n) not in seen]
    if pending:
        target = next((i for i, p in enumerate(plan.phases) if p.task_type == "implementation"), 0)
        named[target] = named[target] + tuple(pending)
    return named


def confidence_of(calibration: Calibration, phases: tuple[PhaseEstimate, ...]) -> tuple[str, str]:
    """Return (level, reason): from tracked sessions like this one when there are any, else the task types."""
    weights: dict[str, int] = {}
    for p in phases:
        weights[p.task_type] = weights.get(p.task_type, 0) + p.mid
    dominant = max(weights, key=lambda t: weights[t])
    count, error = calibration.similar.get(dominant, (0, None))
    if count == 0 or error is None:
        weakest = min(phases, key=lambda p: LEVELS.index(p.confidence))
        head = f"no tracked {dominant} sessions yet, so default figures"
        if weakest.confidence == "high":
            return "medium", f"{head}: at most medium until your own sessions back them"
        return weakest.confidence, (f"{head}; phase {weakest.number} sets it: {weakest.confidence_reason}")
    accuracy = max(0.0, 100.0 - error)
    if count >= 3 and error <= 10:
        level = "high"
    elif error <= 25:
        level = "medium"
    else:
        level = "low"
    plural = "s" if count != 1 else ""
    return level, f"based on {count} similar {dominant} session{plural} ({accuracy:.0f}% average accuracy)"


def estimate_plan(plan: Plan, calibration: Calibration, limit: QuotaLimit | None) -> Estimate:
    """Return the estimate of `plan` with `calibration`, checked against `limit` (None: no limit known)."""
    phases = tuple(
        estimate_phase(calibration, phase, libs)
        for phase, libs in zip(plan.phases, _libraries_by_phase(plan), strict=True)
    )
    mid = sum(p.mid for p in phases)
    buffer = calibration.buffer.value
    buffered = round(mid * (1 + buffer))
    hours = [(p.hours_low * _pace(calibration, p), p.hours_high * _pace(calibration, p)) for p in phases]
    hours_low, hours_high = sum(h[0] for h in hours), sum(h[1] for h in hours)
    hours_mid = (hours_low + hours_high) / 2
    aggressive = sum(p.high for p in phases)
    level, reason = confidence_of(calibration, phases)
    return Estimate(
        title=plan.title,
        source=plan.source,
        phases=phases,
        mid=mid,
        conservative=sum(p.low for p in phases),
        aggressive=aggressive,
        buffer=buffer,
        buffered=buffered,
        hours_low=round(hours_low, 2),
        hours_mid=round(hours_mid, 2),
        hours_high=round(hours_high, 2),
        burn_per_minute=round(mid / (hours_mid * 60)) if hours_mid > 0 else 0,
        limit=limit,
        fits=None if limit is None else mid <= limit.tokens,
        fits_with_buffer=None if limit is None else buffered <= limit.tokens,
        fits_aggressive=None if limit is None else aggressive <= limit.tokens,
        confidence=level,
        confidence_reason=reason,
        warnings=plan.warnings,
        phases_that_fit=_phases_that_fit(phases, buffer, limit),
        buffer_reason=calibration.buffer.note,
    )


def _phases_that_fit(
    phases: tuple[PhaseEstimate, ...], buffer: float, limit: QuotaLimit | None
) -> int | None:
    """Return how many leading phases fit in `limit` with the buffer, or None when the whole plan does."""
    if limit is None:
        return None
    total = 0.0
    for i, p in enumerate(phases):
        total += p.mid
        if total * (1 + buffer) > limit.tokens:
            return i
    return None


def _pace(calibration: Calibration, phase: PhaseEstimate) -> float:
    return 1.0 if phase.given else calibration.pace[phase.task_type].value


def resolve_limit(
    plan: Plan,
    *,
    override: int | None,
    settings_tokens: int | None,
    settings_plan: str,
    plan_limits: Mapping[str, int],
    plan_notes: Mapping[str, str] | None = None,
) -> QuotaLimit | None:
    """Return the limit to check against and its source: --limit, the plan's own figure, then settings.quota.

    `plan_limits` maps plan names (pro, max5, max20, auto) to tokens per window, `plan_notes` says where a
    plan's figure comes from when that needs saying (auto); None when no figure is known.
    """
    if override is not None:
        return QuotaLimit(override, "--limit")
    if plan.quota_tokens is not None:
        return QuotaLimit(plan.quota_tokens, f"the Quota line of {plan.source}")
    if plan.quota_plan is not None and plan.quota_plan in plan_limits:
        return QuotaLimit(plan_limits[plan.quota_plan], f"the Quota line of {plan.source}: {plan.quota_plan}")
    if settings_tokens is not None:
        return QuotaLimit(settings_tokens, "settings quota.token_limit")
    if settings_plan in plan_limits:
        note = (plan_notes or {}).get(settings_plan)
        source = f"settings quota.plan = {settings_plan}" + (f": {note}" if note else "")
        return QuotaLimit(plan_limits[settings_plan], source)
    return None


def fmt_tokens(value: float) -> str:
    """Return a token count for people: 102,500."""
    return f"{round(value):,}"


def fmt_hours(hours: float) -> str:
    """Return hours as "1h 45m" (or "40m")."""
    minutes = round(hours * 60)
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m"


def variance_pct(estimated: float, actual: float) -> float | None:
    """Return (actual - estimated) / estimated in percent, or None when nothing was estimated."""
    return None if estimated <= 0 else (actual - estimated) / estimated * 100


def rating(error_pct: float | None) -> str:
    """Return the rating of a percentage error: EXCELLENT under 5 %, ... POOR from 35 %."""
    if error_pct is None or math.isnan(error_pct):
        return "n/a"
    e = abs(error_pct)
    for limit, stars, word in ((5, 5, "EXCELLENT"), (10, 4, "VERY GOOD"), (20, 3, "GOOD"), (35, 2, "FAIR")):
        if e < limit:
            return f"{'★' * stars}{'☆' * (5 - stars)} {word}"
    return "★☆☆☆☆ POOR"
