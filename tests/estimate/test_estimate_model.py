"""Learning from tracked sessions: the figures move toward the truth, one odd session does not swing them, and
the held-out error falls on a synthetic history whose true rates are known."""

from __future__ import annotations

import random

import pytest

from daemon.estimate import default_calibration
from daemon.estimate_model import PRIOR_SESSIONS, TrackedPhase, TrackedSession, explain, fit, holdout, predict

TRUE_RATE = {"implementation": 70_000.0, "testing": 40_000.0}
TRUE_BASE = {"implementation": 25_000.0, "testing": 18_000.0}
TRUE_PACE = 1.25
TRUE_LIBRARY = {"socketio": 12_000.0}


def synthetic_history(n: int, seed: int = 7, noise: float = 0.08) -> list[TrackedSession]:
    """Sessions whose tokens follow the true figures above, with log-normal noise."""
    rng = random.Random(seed)
    sessions = []
    for i in range(n):
        phases = []
        for task, planned, libs in (
            ("implementation", rng.choice([1.0, 1.5, 2.0]), ()),
            ("implementation", rng.choice([1.0, 1.5]), ("Socket.io",) if i % 3 == 0 else ()),
            ("testing", rng.choice([0.5, 1.0]), ()),
        ):
            worked = planned * TRUE_PACE * rng.lognormvariate(0, noise)
            tokens = TRUE_BASE[task] + TRUE_RATE[task] * worked + sum(TRUE_LIBRARY["socketio"] for _ in libs)
            phases.append(
                TrackedPhase(
                    task, planned, worked, round(tokens * rng.lognormvariate(0, noise)), libraries=libs
                )
            )
        sessions.append(TrackedSession(f"s{i}", 1_700_000_000_000 + i * 86_400_000, tuple(phases)))
    return sessions


def test_no_history_gives_the_defaults() -> None:
    assert fit([]) == default_calibration()


def test_rates_and_pace_approach_the_true_figures_with_history() -> None:
    calib = fit(synthetic_history(40))
    assert calib.sessions == 40
    weight = 40 / (40 + PRIOR_SESSIONS)  # shrinkage toward the default is on a log scale
    expected = 45_000 * (70_000 / 45_000) ** weight
    assert calib.rates["implementation"].value == pytest.approx(expected, rel=0.06)
    assert calib.rates["implementation"].sessions == 40
    assert calib.pace["implementation"].value == pytest.approx(TRUE_PACE**weight, rel=0.05)
    assert calib.rates["planning"].sessions == 0 and calib.rates["planning"].value == 20_000


def test_library_cost_is_learned_from_the_phases_that_bring_it_in() -> None:
    calib = fit(synthetic_history(30, noise=0.02))
    lib = calib.libraries["socketio"]
    assert lib.sessions == 10
    assert 5_000 < lib.value < TRUE_LIBRARY["socketio"] * 1.3


def test_a_single_odd_session_does_not_swing_the_rates() -> None:
    normal = synthetic_history(9)
    odd_phases = tuple(
        TrackedPhase(p.task_type, p.planned_hours, p.actual_hours, p.tokens * 10) for p in normal[0].phases
    )
    odd = TrackedSession("odd", normal[-1].started_ms + 1, odd_phases)
    before, after = fit(normal), fit([*normal, odd])
    for task in ("implementation", "testing"):
        assert after.rates[task].value == pytest.approx(before.rates[task].value, rel=0.08)


def test_one_odd_session_alone_moves_a_rate_by_a_bounded_factor() -> None:
    odd = TrackedSession("odd", 0, (TrackedPhase("testing", 1.0, 1.0, 5_000_000),))
    rate = fit([odd]).rates["testing"]
    assert rate.sessions == 1
    assert rate.value <= 30_000 * 4 ** (1 / (1 + PRIOR_SESSIONS)) + 1


def test_buffer_follows_the_overruns() -> None:
    sessions = [
        TrackedSession(f"s{i}", i, (TrackedPhase("testing", 1.0, 1.0, actual),), estimated=100_000)
        for i, actual in enumerate([105_000, 112_000, 118_000, 95_000, 131_000])
    ]
    calib = fit(sessions)
    assert calib.buffer.value == pytest.approx(
        0.20
    )  # 80th percentile of overruns = +18 %, rounded up to 20 %
    assert calib.similar["testing"][0] == 5
    assert calib.similar["testing"][1] == pytest.approx((5 + 12 + 18 + 5 + 31) / 5)
    tiny = fit(sessions[:2])
    assert tiny.buffer.value == 0.20 and "until 3 tracked sessions" in tiny.buffer.note


def test_heldout_error_falls_on_a_history_whose_true_rates_are_known() -> None:
    check = holdout(synthetic_history(16))
    assert len(check.points) == 16
    assert check.mape_first_half is not None and check.mape_second_half is not None
    assert check.points[0].ape > 25  # the defaults are far from this person's figures
    assert check.mape_second_half < check.mape_first_half * 0.7
    assert check.mape_second_half < 15


def test_heldout_never_uses_the_session_it_predicts() -> None:
    history = synthetic_history(5)
    check = holdout(history)
    assert check.points[0].predicted == predict(default_calibration(), history[0])
    assert check.points[3].predicted == predict(fit(history[:3]), history[3])


def test_explain_says_where_each_number_came_from() -> None:
    history = synthetic_history(6)
    text = "\n".join(explain(fit(history), holdout(history)))
    assert "fitted on 6 tracked sessions;" in text
    assert "implementation: 25,000 + " in text and "6 sessions, median" in text
    assert "planning: 15,000 + 20,000/h (default 20,000/h; default)" in text
    assert "library socketio" in text and "held-out accuracy: MAPE" in text


def test_a_complexity_multiplier_is_learned_when_it_is_off() -> None:
    """Legacy code costs this person x2.0, not the default x1.4; clean code costs the default x0.9."""
    rng = random.Random(3)
    sessions = []
    for i in range(12):
        phases = []
        for quality, true_mult in (("legacy", 2.0), ("clean", 0.9), (None, 1.0)):
            hours = rng.choice([1.0, 1.5])
            tokens = (25_000 + 45_000 * hours) * true_mult * rng.lognormvariate(0, 0.03)
            factors = (("code_quality", quality),) if quality else ()
            default_mult = {"legacy": 1.4, "clean": 0.9}.get(quality or "", 1.0)
            phases.append(
                TrackedPhase("implementation", hours, hours, round(tokens), default_mult, factors=factors)
            )
        sessions.append(TrackedSession(f"s{i}", i, tuple(phases)))
    calib = fit(sessions)
    legacy = calib.multipliers["code_quality"]["legacy"]
    weight = 12 / (12 + PRIOR_SESSIONS)
    assert legacy.sessions == 12 and legacy.default == 1.4
    assert legacy.value == pytest.approx(1.4 * (2.0 / 1.4) ** weight, rel=0.05)
    assert calib.multipliers["code_quality"]["clean"].value == pytest.approx(0.9, rel=0.05)
    assert calib.rates["implementation"].value == pytest.approx(45_000, rel=0.05)
    assert "code quality legacy: x1." in "\n".join(explain(calib))
    # and the held-out estimate uses it: later sessions are predicted closer than the first
    check = holdout(sessions)
    assert check.points[-1].ape < check.points[0].ape / 2
