"""What people read: the report's figures add up as printed, in the zone given; progress and projection."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from daemon.estimate_model import Holdout
from daemon.estimate_progress import NO_USAGE, PhaseRow, PlannedRow, SessionView, Usage, progress
from daemon.estimate_view import phase_message, render_report, session_lines

PARIS = ZoneInfo("Europe/Paris")
T0 = int(datetime(2026, 7, 1, 15, 10, tzinfo=PARIS).timestamp() * 1000)
MIN = 60_000


def _usage(tokens: int) -> Usage:
    return Usage(tokens, tokens, 0, 0, 0, 1)


def _view(actuals: list[int], ended: bool = True) -> SessionView:
    planned = (
        PlannedRow(1, 1, "Design", "planning", 0.5, 0.5, 0.9, (), 22_500),
        PlannedRow(2, 2, "Build", "implementation", 1, 1.5, 0.9, ("pyarrow",), 78_125),
        PlannedRow(3, 3, "Tests", "testing", 0.75, 0.75, 0.9, (), 36_450),
    )
    phases = []
    start = T0
    for i, tokens in enumerate(actuals):
        last = i == len(actuals) - 1
        end = None if last and not ended else start + 40 * MIN
        p = planned[i]
        row = PhaseRow(i + 1, p.name, p.task_type, 1.0, 0.9, p.libraries, p.mid, start, end, None, None,
                       _usage(tokens), p.number, (), p.id)  # fmt: skip
        phases.append(row)
        start += 40 * MIN
    estimate = {"mid": 137_075, "hours_low": 2.25, "hours_high": 2.75, "limit": {"tokens": 200_000}}
    return SessionView(1, "CSV export", "/p", T0, None, 1, estimate, planned, tuple(phases))


def test_report_variances_are_the_difference_of_the_figures_printed_beside_them() -> None:
    view = _view([27_750, 90_000, 20_000])
    report = render_report(view, [view], Holdout((), None, None, None), T0 + 3 * 60 * MIN, PARIS)
    assert "| 1. Design | planning | 22.5k | 27.8k | +5.3k | +23.3% | 40m |" in report
    assert "| 3. Tests | testing | 36.5k | 20.0k | -16.5k | -45.1% | 40m |" in report  # 36.5 - 20.0 = 16.5
    assert "2026-07-01 15:10 CEST to -" in report  # the zone given, whatever the process's zone
    assert "| **1** | 2026-07-01 | CSV export | 137.1k | 137.8k | +0.5% | 99.5% |" in report


def test_the_projection_scales_the_rest_by_half_the_overrun_of_one_finished_phase() -> None:
    view = _view([27_750, 0], ended=False)  # phase 1 ran 23.3 % over; phase 2 running, nothing used yet
    prog = progress(view)
    factor = 1 + (27_750 / 22_500 - 1) / 2
    assert prog.projected == round(27_750 + (78_125 + 36_450) * factor) == 155_692
    assert prog.done_variance_pct is not None and round(prog.done_variance_pct, 1) == 23.3
    lines = session_lines(view, T0 + 50 * MIN)
    assert lines[1] == "  phase 2/3 Build (implementation): 0 of 78,125 estimated (0%), 10 min in"
    assert lines[3].endswith("projection 155,692 vs estimate 137,075 (+13.6%); within the 200,000 limit")
    title, body = phase_message(view, 1)
    assert title == "Phase 1 done: Design"
    assert body.splitlines() == [
        "Estimated 22,500, actual 27,750 tokens: +5,250 (+23.3%) in 40 min.",
        "Projection for the session: 155,692 (estimate 137,075, +13.6%).",
        "Still within the quota (200,000).",
    ]


def test_a_session_without_an_estimate_has_no_projection() -> None:
    view = SessionView(2, "ad hoc", None, T0, None, None, None, (), ())
    assert progress(view).projected is None and progress(view).used == NO_USAGE.tokens
    assert session_lines(view, T0) == [
        "Plan: ad hoc",
        "  no phase running: `baton phase start` marks the next one",
    ]
