"""Learn the person's own estimation figures from tracked sessions (pure: sessions in, a Calibration out).

What is learned, each with the number of sessions behind it:
- tokens per worked hour, by task type: each session gives one figure per type (its phases' tokens, less the
  start-up base and the libraries, over the hours they took);
- pace, by task type: worked hours per planned hour;
- the integration cost of each library, from what the phases that brought it in used beyond the task's
  figures;
- the buffer: how far sessions overran what they were told (80th percentile), between 10 % and 50 %.

Robust by construction: the centre of the sessions' figures is their median, taken on a log scale for rates
and pace; each ratio to the default is clipped to [1/4, 4]; and the result is shrunk toward the default as if
the default were PRIOR_SESSIONS more sessions. One odd session therefore moves a figure little once there are
a few, and even alone it moves a rate by at most 4 ** (1 / (1 + PRIOR_SESSIONS)).

`holdout` measures accuracy honestly: each session is estimated from the model fitted on the sessions before
it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daemon.estimate import (
    DEFAULT_BASELINES,
    DEFAULT_BUFFER,
    DEFAULT_BUFFER_NOTE,
    DEFAULT_LIBRARY_COST,
    MULTIPLIERS,
    Calibration,
    Figure,
    default_calibration,
    fmt_tokens,
    library_cost,
    phase_tokens,
)
from daemon.plan_parse import library_key

PRIOR_SESSIONS = 3.0
CLIP = 4.0
MIN_HOURS = 0.05  # phases shorter than 3 minutes say nothing about a rate
BUFFER_RANGE = (0.10, 0.50)
BUFFER_WINDOW = 10  # the buffer follows the latest sessions: early ones were estimated with default figures


@dataclass(frozen=True)
class TrackedPhase:
    """What a finished phase was planned as and what it used."""

    task_type: str
    planned_hours: float | None
    actual_hours: float
    tokens: int
    multiplier: float = 1.0
    libraries: tuple[str, ...] = ()
    estimated: int | None = None
    factors: tuple[tuple[str, str], ...] = ()  # the complexity levels the plan gave: ("tech_stack", "new")


@dataclass(frozen=True)
class TrackedSession:
    """A tracked session: its finished phases and the total it was estimated at (None if not estimated)."""

    key: str
    started_ms: int
    phases: tuple[TrackedPhase, ...]
    estimated: int | None = None
    title: str = ""

    @property
    def actual(self) -> int:
        """Return the tokens the session's phases used."""
        return sum(p.tokens for p in self.phases)

    @property
    def dominant_type(self) -> str:
        """Return the task type that used the most tokens (the first phase's type when none used any)."""
        totals: dict[str, int] = {}
        for p in self.phases:
            totals[p.task_type] = totals.get(p.task_type, 0) + p.tokens
        return max(totals, key=lambda t: totals[t]) if totals else "implementation"


@dataclass(frozen=True)
class HoldoutPoint:
    """One session estimated from the sessions before it."""

    key: str
    predicted: int
    actual: int
    ape: float  # absolute percentage error


@dataclass(frozen=True)
class Holdout:
    """The held-out check: every point, the MAPE overall, and over the first and the second half."""

    points: tuple[HoldoutPoint, ...]
    mape: float | None
    mape_first_half: float | None
    mape_second_half: float | None


def _shrunk_ratio(ratios: Sequence[float]) -> float:
    """Return the median of `ratios` on a log scale, clipped and shrunk toward 1 by PRIOR_SESSIONS."""
    logs = [math.log(min(CLIP, max(1 / CLIP, r))) for r in ratios]
    weight = len(logs) / (len(logs) + PRIOR_SESSIONS)
    return math.exp(weight * statistics.median(logs))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _note(count: int, center: str) -> str:
    return f"{_plural(count, 'session')}, median {center}"


def _default_mult(p: TrackedPhase) -> float:
    """Return the phase's multiplier at the default figures (the rates are learned in those units)."""
    if not p.factors:
        return p.multiplier
    return math.prod(MULTIPLIERS[f][level] for f, level in p.factors)


def _mult(calibration: Calibration, p: TrackedPhase) -> float:
    """Return the phase's multiplier with the learned figures."""
    if not p.factors:
        return p.multiplier
    return math.prod(calibration.multiplier(f, level) for f, level in p.factors)


def _fit_rates(sessions: Sequence[TrackedSession], base: Calibration) -> dict[str, Figure]:
    """Return tokens per worked hour by task type: one figure per session and type, then a shrunk median."""
    per_type: dict[str, list[float]] = {}
    for s in sessions:
        sums: dict[str, list[float]] = {}
        for p in s.phases:
            if p.actual_hours < MIN_HOURS or p.task_type not in DEFAULT_BASELINES:
                continue
            libs = sum(library_cost(base, library_key(n)).value for n in p.libraries)
            work = (p.tokens - libs) / max(_mult(base, p), 1e-6) - base.bases[p.task_type].value
            acc = sums.setdefault(p.task_type, [0.0, 0.0])
            acc[0] += work
            acc[1] += p.actual_hours
        for task, (work, hours) in sums.items():
            per_type.setdefault(task, []).append(max(work, 0.0) / hours / DEFAULT_BASELINES[task].per_hour)
    rates = dict(base.rates)
    for task, ratios in per_type.items():
        default = DEFAULT_BASELINES[task].per_hour
        center = fmt_tokens(default * statistics.median(ratios)) + "/h"
        rates[task] = Figure(
            default * _shrunk_ratio(ratios), default, len(ratios), _note(len(ratios), center)
        )
    return rates


def _fit_pace(sessions: Sequence[TrackedSession], base: Calibration) -> dict[str, Figure]:
    """Return worked hours per planned hour by task type."""
    per_type: dict[str, list[float]] = {}
    for s in sessions:
        sums: dict[str, list[float]] = {}
        for p in s.phases:
            if p.planned_hours and p.planned_hours > 0 and p.task_type in DEFAULT_BASELINES:
                acc = sums.setdefault(p.task_type, [0.0, 0.0])
                acc[0] += p.actual_hours
                acc[1] += p.planned_hours
        for task, (worked, planned) in sums.items():
            per_type.setdefault(task, []).append(worked / planned)
    pace = dict(base.pace)
    for task, ratios in per_type.items():
        center = f"x{statistics.median(ratios):.2f}"
        pace[task] = Figure(_shrunk_ratio(ratios), 1.0, len(ratios), _note(len(ratios), center))
    return pace


def _fit_libraries(sessions: Sequence[TrackedSession], calib: Calibration) -> dict[str, Figure]:
    """Return each library's integration cost: what its phases used beyond the task figures, shrunk to 5k."""
    residuals: dict[str, list[float]] = {}
    for s in sessions:
        per_session: dict[str, float] = {}
        for p in s.phases:
            if not p.libraries or p.task_type not in DEFAULT_BASELINES:
                continue
            plain = calib.bases[p.task_type].value + calib.rates[p.task_type].value * p.actual_hours
            share = (p.tokens - plain * _mult(calib, p)) / len(p.libraries)
            for name in p.libraries:
                per_session[library_key(name)] = per_session.get(library_key(name), 0.0) + share
        for key, value in per_session.items():
            residuals.setdefault(key, []).append(value)
    out = dict(calib.libraries)
    for key, values in residuals.items():
        n = len(values)
        med = statistics.median(values)
        value = max(0.0, (n * med + PRIOR_SESSIONS * DEFAULT_LIBRARY_COST) / (n + PRIOR_SESSIONS))
        out[key] = Figure(value, DEFAULT_LIBRARY_COST, n, _note(n, fmt_tokens(med)))
    return out


def _fit_multipliers(
    sessions: Sequence[TrackedSession], calib: Calibration, *, shrink: bool = True
) -> dict[str, dict[str, Figure]]:
    """Return the learned multiplier of each non-neutral complexity level the history has.

    A phase's observed multiplier is its tokens (less its libraries) over what its task type's fitted figures
    give for the hours it took; its ratio to the expected product is shared out equally (on a log scale) among
    the phase's non-neutral levels. One figure per session and level, then a clipped median, shrunk toward the
    default unless `shrink` is False (the unshrunk figures are what the rates are fitted against, so that a
    shrunk multiplier does not leak into them).
    """
    per_level: dict[tuple[str, str], list[float]] = {}
    for s in sessions:
        logs: dict[tuple[str, str], list[float]] = {}
        for p in s.phases:
            levels = [(f, lv) for f, lv in p.factors if MULTIPLIERS[f][lv] != 1.0]
            if not levels or p.actual_hours < MIN_HOURS or p.task_type not in DEFAULT_BASELINES:
                continue
            libs = sum(library_cost(calib, library_key(n)).value for n in p.libraries)
            plain = calib.bases[p.task_type].value + calib.rates[p.task_type].value * p.actual_hours
            observed = max(p.tokens - libs, 1.0) / plain
            share = math.log(observed / _default_mult(p)) / len(levels)
            for key in levels:
                logs.setdefault(key, []).append(share)
        for key, values in logs.items():
            per_level.setdefault(key, []).append(math.exp(statistics.fmean(values)))
    out: dict[str, dict[str, Figure]] = {}
    for (factor, level), ratios in per_level.items():
        default = MULTIPLIERS[factor][level]
        center = f"x{default * statistics.median(ratios):.2f}"
        ratio = _shrunk_ratio(ratios) if shrink else min(CLIP, max(1 / CLIP, statistics.median(ratios)))
        figure = Figure(default * ratio, default, len(ratios), _note(len(ratios), center))
        out.setdefault(factor, {})[level] = figure
    return out


def _overruns(sessions: Sequence[TrackedSession]) -> list[float]:
    return [(s.actual - s.estimated) / s.estimated for s in sessions if s.estimated and s.phases]


def _fit_buffer(sessions: Sequence[TrackedSession]) -> Figure:
    """Return the buffer: the 80th percentile of recent overruns, rounded up to 5 %, within BUFFER_RANGE."""
    overruns = _overruns(sessions)[-BUFFER_WINDOW:]
    if len(overruns) < 3:
        return Figure(DEFAULT_BUFFER, DEFAULT_BUFFER, len(overruns), DEFAULT_BUFFER_NOTE)
    ranked = sorted(overruns)
    p80 = ranked[min(len(ranked) - 1, math.ceil(0.8 * len(ranked)) - 1)]
    value = min(BUFFER_RANGE[1], max(BUFFER_RANGE[0], math.ceil(p80 * 20 - 1e-9) / 20))
    note = f"80th percentile of the last {len(ranked)} sessions' overruns: {p80:+.0%}"
    return Figure(value, DEFAULT_BUFFER, len(ranked), note)


def _similar(sessions: Sequence[TrackedSession]) -> dict[str, tuple[int, float | None]]:
    """Return, by dominant task type, how many sessions there are and their mean absolute % error."""
    groups: dict[str, list[TrackedSession]] = {}
    for s in sessions:
        if s.phases:
            groups.setdefault(s.dominant_type, []).append(s)
    out: dict[str, tuple[int, float | None]] = {}
    for task, group in groups.items():
        errors = [abs(s.actual - s.estimated) / s.estimated * 100 for s in group if s.estimated]
        out[task] = (len(group), statistics.fmean(errors) if errors else None)
    return out


def fit(sessions: Iterable[TrackedSession]) -> Calibration:
    """Return the calibration learned from `sessions` (the defaults when there are none)."""
    done = [s for s in sessions if s.phases]
    calib = default_calibration()
    if not done:
        return calib
    pace = _fit_pace(done, calib)
    multipliers: dict[str, dict[str, Figure]] = {}
    for _ in range(3):  # rates against the multipliers as observed, then the multipliers against those rates
        rates = _fit_rates(
            done, Calibration(rates=calib.rates, bases=calib.bases, pace=pace, multipliers=multipliers)
        )
        plain = Calibration(rates=rates, bases=calib.bases, pace=pace)
        multipliers = _fit_multipliers(done, plain, shrink=False)
    multipliers = _fit_multipliers(done, Calibration(rates=rates, bases=calib.bases, pace=pace))
    calib = Calibration(rates=rates, bases=calib.bases, pace=pace, multipliers=multipliers)
    return Calibration(
        rates=rates,
        bases=calib.bases,
        pace=pace,
        multipliers=multipliers,
        libraries=_fit_libraries(done, calib),
        buffer=_fit_buffer(done),
        similar=_similar(done),
        sessions=len(done),
    )


def predict(calibration: Calibration, session: TrackedSession) -> int:
    """Return the tokens `calibration` predicts for `session` from what was planned (hours, types)."""
    total = 0.0
    for p in session.phases:
        if p.planned_hours is None:
            total += p.estimated if p.estimated is not None else p.tokens
            continue
        total += phase_tokens(calibration, p.task_type, p.planned_hours, _mult(calibration, p), p.libraries)
    return round(total)


def holdout(sessions: Sequence[TrackedSession]) -> Holdout:
    """Return the held-out check: each session predicted by the model fitted on the sessions before it."""
    ordered = sorted((s for s in sessions if s.phases and s.actual > 0), key=lambda s: s.started_ms)
    points = []
    for i, s in enumerate(ordered):
        predicted = predict(fit(ordered[:i]), s)
        points.append(HoldoutPoint(s.key, predicted, s.actual, abs(predicted - s.actual) / s.actual * 100))
    half = len(points) // 2

    def mape(chunk: Sequence[HoldoutPoint]) -> float | None:
        return statistics.fmean(p.ape for p in chunk) if chunk else None

    return Holdout(tuple(points), mape(points), mape(points[:half]), mape(points[half:]))


def explain(calibration: Calibration, check: Holdout | None = None) -> list[str]:
    """Return one line per figure saying its value, its default and where it came from."""
    lines = [
        f"Model: fitted on {_plural(calibration.sessions, 'tracked session')}; "
        "each fitted figure is the median of its sessions, shrunk toward the default "
        f"as if the default were {PRIOR_SESSIONS:g} more sessions"
    ]
    for task in DEFAULT_BASELINES:
        rate, pace, base = calibration.rates[task], calibration.pace[task], calibration.bases[task]
        lines.append(
            f"  {task}: {fmt_tokens(base.value)} + {fmt_tokens(rate.value)}/h "
            f"(default {fmt_tokens(rate.default)}/h; {rate.note}); pace x{pace.value:.2f} ({pace.note})"
        )
    for factor, levels in sorted(calibration.multipliers.items()):
        for level, fig in sorted(levels.items()):
            name = f"{factor.replace('_', ' ')} {level}"
            lines.append(f"  {name}: x{fig.value:.2f} (default x{fig.default:g}; {fig.note})")
    for key, fig in sorted(calibration.libraries.items()):
        lines.append(
            f"  library {key}: +{fmt_tokens(fig.value)} (default {fmt_tokens(fig.default)}; {fig.note})"
        )
    lines.append(f"  new libraries not seen before: +{fmt_tokens(DEFAULT_LIBRARY_COST)} each (default)")
    buf = calibration.buffer
    lines.append(f"  buffer: +{buf.value:.0%} ({buf.note})")
    if check is not None and check.mape is not None:
        lines.append(
            f"  held-out accuracy: MAPE {check.mape:.1f}% over {_plural(len(check.points), 'session')} "
            f"(first half {_pct(check.mape_first_half)}, second half {_pct(check.mape_second_half)}; "
            "each session estimated by the model fitted on the ones before it, error as a share of its "
            "actual tokens)"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
