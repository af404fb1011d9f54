"""Where a tracked session stands against its estimate (pure: the session's records in, figures out).

The records are what `daemon.estimate_store` reads from the ledger: a tracked session, its planned phases
(from the saved estimate) and the phases as they were worked, each with the ledger's usage between its start
and its end. `progress` turns one session into the figures that `baton status`, the phase-end notification
and `baton report estimate` show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.estimate import variance_pct


@dataclass(frozen=True)
class Usage:
    """Tokens used in a span of the ledger: the quota-counted total, its parts, and how many responses."""

    tokens: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    events: int


NO_USAGE = Usage(0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class PhaseRow:
    """A tracked phase as stored, with its usage as the ledger has it now."""

    id: int
    name: str
    task_type: str
    planned_hours: float | None
    multiplier: float
    libraries: tuple[str, ...]
    estimated: int | None
    started_ms: int
    ended_ms: int | None
    tokens_at_end: int | None
    note: str | None
    usage: Usage
    number: int | None = None
    factors: tuple[tuple[str, str], ...] = ()
    planned_id: int | None = None  # the estimate's phase this one works on (None: an ad-hoc phase)


@dataclass(frozen=True)
class PlannedRow:
    """A planned phase of a saved estimate."""

    id: int
    number: int
    name: str
    task_type: str
    hours_low: float
    hours_high: float
    multiplier: float
    libraries: tuple[str, ...]
    mid: int
    factors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SessionView:
    """A tracked session with its estimate (if any), planned phases and tracked phases."""

    id: int
    title: str
    project_dir: str | None
    started_ms: int
    ended_ms: int | None
    estimate_id: int | None
    estimate: dict[str, Any] | None
    planned: tuple[PlannedRow, ...]
    phases: tuple[PhaseRow, ...]

    @property
    def open_phase(self) -> PhaseRow | None:
        """Return the phase being worked now, or None."""
        return next((p for p in self.phases if p.ended_ms is None), None)

    def next_planned(self) -> PlannedRow | None:
        """Return the first planned phase not tracked yet, or None when every one was."""
        return next((p for p in self.planned if p.id not in self.tracked_ids), None)

    @property
    def tracked_ids(self) -> set[int]:
        """Return the ids of the planned phases that were started."""
        return {p.planned_id for p in self.phases if p.planned_id is not None}

    @property
    def limit_tokens(self) -> int | None:
        """Return the token limit the saved estimate was checked against, or None."""
        limit = (self.estimate or {}).get("limit")
        return int(limit["tokens"]) if limit else None


@dataclass(frozen=True)
class Progress:
    """Where a tracked session stands: estimate, used so far, the phases done against theirs, projection."""

    original: int | None
    used: int
    done_estimated: int
    done_actual: int
    projected: int | None

    @property
    def done_variance_pct(self) -> float | None:
        """Return the variance of the finished phases against their estimates, in percent."""
        return variance_pct(self.done_estimated, self.done_actual)

    @property
    def projected_variance_pct(self) -> float | None:
        """Return the variance of the projection against the session's estimate, in percent."""
        if self.original is None or self.projected is None:
            return None
        return variance_pct(self.original, self.projected)


def progress(view: SessionView) -> Progress:
    """Return the session's progress: finished phases count as used, the rest is projected.

    The phases still to come are scaled by how far the finished ones ran over or under their estimates, shrunk
    toward no change by one phase's weight (one phase that ran 20 % over moves the rest by 10 %). The running
    phase counts as the larger of what it used so far and its scaled estimate.
    """
    original = view.estimate.get("mid") if view.estimate else None
    counted = [p for p in view.phases if p.ended_ms is not None and p.estimated]
    est_done = sum(p.estimated or 0 for p in counted)
    act_done = sum(p.usage.tokens for p in counted)
    used = sum(p.usage.tokens for p in view.phases)
    if original is None:
        return Progress(None, used, est_done, act_done, None)
    ratio = act_done / est_done if est_done else 1.0
    factor = 1 + (ratio - 1) * len(counted) / (len(counted) + 1)
    projected = float(sum(p.usage.tokens for p in view.phases if p.ended_ms is not None))
    current = view.open_phase
    if current is not None:
        projected += max(current.usage.tokens, (current.estimated or 0) * factor)
    projected += sum(p.mid * factor for p in view.planned if p.id not in view.tracked_ids)
    return Progress(int(original), used, est_done, act_done, round(projected))
