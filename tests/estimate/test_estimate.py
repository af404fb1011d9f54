"""The estimate's arithmetic against hand-computed figures, at its boundaries, and the quota check."""

from __future__ import annotations

import pytest

from daemon.estimate import (
    Calibration,
    Figure,
    QuotaLimit,
    default_calibration,
    estimate_plan,
    rating,
    resolve_limit,
    variance_pct,
)
from daemon.estimate_view import render_text
from daemon.plan_parse import parse_plan

PLAN = """\
# Two phases
**Tech stack**: familiar

### Phase 1: Build the server (1-1.5h)
### Phase 2: Write tests (1h)
Type: testing
"""


def test_phase_figures_match_the_hand_computation() -> None:
    est = estimate_plan(parse_plan(PLAN, "p.md"), default_calibration(), None)
    p1, p2 = est.phases
    # implementation, familiar x0.9, medium confidence: spread 15 %
    assert p1.mid == round((25_000 + 45_000 * 1.25) * 0.9) == 73_125
    assert p1.low == round((25_000 + 45_000 * 1.0) * 0.9 * 0.85) == 53_550
    assert p1.high == pytest.approx(92_500 * 0.9 * 1.15, abs=0.5)  # 95,737.5
    # testing, familiar x0.9, high confidence: spread 12 %
    assert p2.mid == round((18_000 + 30_000) * 0.9) == 43_200
    assert (p2.low, p2.high) == (round(43_200 * 0.88), round(43_200 * 1.12))
    assert est.mid == 73_125 + 43_200
    assert est.conservative == p1.low + p2.low and est.aggressive == p1.high + p2.high
    assert est.buffer == 0.20 and est.buffered == round(est.mid * 1.2)
    assert (est.hours_low, est.hours_mid, est.hours_high) == (2.0, 2.25, 2.5)
    assert est.burn_per_minute == round(est.mid / (2.25 * 60))


def test_multipliers_multiply_and_a_phase_overrides_the_plan() -> None:
    plan = parse_plan(
        "# P\nProject size: enterprise\nCode quality: legacy\nTech stack: familiar\n"
        "### Phase 1: Refactor storage (2h)\nTech stack: new\n",
        "p.md",
    )
    (p,) = estimate_plan(plan, default_calibration(), None).phases
    assert p.multiplier == pytest.approx(1.6 * 1.4 * 1.5)
    assert p.mid == round((30_000 + 55_000 * 2) * 1.6 * 1.4 * 1.5)
    assert p.confidence == "low"  # refactoring is medium; a new stack lowers it


def test_each_new_library_is_charged_once_and_widens_the_range() -> None:
    plan = parse_plan(
        "# P\nNew libraries: Recharts, Socket.io\n### Phase 1: Plan it (1h)\n### Phase 2: Build UI (1h)\n"
        "### Phase 3: Charts (1h)\nType: implementation\nNew libraries: Recharts\n",
        "p.md",
    )
    p1, p2, p3 = estimate_plan(plan, default_calibration(), None).phases
    assert p1.libraries == () and p2.libraries == ("Socket.io",) and p3.libraries == ("Recharts",)
    assert p2.mid == 25_000 + 45_000 + 5_000
    # implementation is medium (15 %); one library lowers confidence to low (25 %) and adds 5 %
    assert p2.confidence == "low" and p2.high == round((25_000 + 45_000 + 5_000) * 1.30)


def _limit(tokens: int) -> QuotaLimit:
    return QuotaLimit(tokens, "test")


def test_fits_exactly_at_the_limit_and_not_one_token_over() -> None:
    plan = parse_plan("# P\n### Phase 1: Plan (1h)\nType: planning\n", "p.md")
    mid = 15_000 + 20_000  # 35,000; buffered 42,000
    at = estimate_plan(plan, default_calibration(), _limit(mid))
    assert (at.fits, at.fits_with_buffer) == (True, False)
    below = estimate_plan(plan, default_calibration(), _limit(mid - 1))
    assert (below.fits, below.fits_with_buffer) == (False, False)
    buffered = estimate_plan(plan, default_calibration(), _limit(42_000))
    assert (buffered.fits, buffered.fits_with_buffer) == (True, True)
    assert buffered.fits_aggressive is True  # 35,000 x 1.12 = 39,200


def test_aggressive_end_flag() -> None:
    plan = parse_plan("# P\n### Phase 1: Plan (1h)\nType: planning\n", "p.md")
    est = estimate_plan(plan, default_calibration(), _limit(39_200))
    assert est.aggressive == 39_200 and est.fits_aggressive is True
    assert estimate_plan(plan, default_calibration(), _limit(39_199)).fits_aggressive is False


def test_no_limit_known_means_unknown_not_a_guess() -> None:
    est = estimate_plan(parse_plan(PLAN, "p.md"), default_calibration(), None)
    assert est.fits is None and est.fits_with_buffer is None
    assert "no token limit known" in render_text(est)


def test_limit_sources_in_order() -> None:
    with_figure = parse_plan("# P\nQuota: 150k\n### Phase 1: A (1h)\n", "p.md")
    bare = parse_plan("# P\n### Phase 1: A (1h)\n", "p.md")
    named = parse_plan("# P\nQuota: max5\n### Phase 1: A (1h)\n", "p.md")
    limits = {"max5": 88_000}
    kw = {"settings_tokens": 50_000, "settings_plan": "max5", "plan_limits": limits}
    assert resolve_limit(with_figure, override=70_000, **kw) == QuotaLimit(70_000, "--limit")  # type: ignore[arg-type]
    got = resolve_limit(with_figure, override=None, **kw)  # type: ignore[arg-type]
    assert got is not None and got.tokens == 150_000 and got.source == "the Quota line of p.md"
    got = resolve_limit(named, override=None, **kw)  # type: ignore[arg-type]
    assert got is not None and got.tokens == 88_000 and "max5" in got.source
    got = resolve_limit(bare, override=None, **kw)  # type: ignore[arg-type]
    assert got == QuotaLimit(50_000, "settings quota.token_limit")
    got = resolve_limit(bare, override=None, settings_tokens=None, settings_plan="max5", plan_limits=limits)
    assert got == QuotaLimit(88_000, "settings quota.plan = max5")
    assert (
        resolve_limit(bare, override=None, settings_tokens=None, settings_plan="auto", plan_limits={}) is None
    )


def test_handoff_objectives_use_their_own_figures() -> None:
    plan = parse_plan(
        "# H\n## Next Session Objectives\n1. **Add refresh tokens** (Est: 18k tokens)\n", "h.md"
    )
    (p,) = estimate_plan(plan, default_calibration(), None).phases
    assert p.mid == 18_000 and p.given
    assert p.hours_low == pytest.approx(18_000 / 45_000)


def test_confidence_without_history_is_capped_at_medium_and_says_why() -> None:
    plan = parse_plan("# P\n### Phase 1: Tests (1h)\nType: testing\n", "p.md")
    est = estimate_plan(plan, default_calibration(), None)
    assert est.confidence == "medium" and "no tracked testing sessions" in est.confidence_reason


def test_confidence_follows_similar_sessions() -> None:
    plan = parse_plan("# P\n### Phase 1: Tests (1h)\nType: testing\n", "p.md")
    base = default_calibration()
    good = Calibration(rates=base.rates, bases=base.bases, pace=base.pace, similar={"testing": (4, 6.0)})
    est = estimate_plan(plan, good, None)
    assert (
        est.confidence == "high"
        and "4 similar testing sessions (94% average accuracy)" in est.confidence_reason
    )
    poor = Calibration(rates=base.rates, bases=base.bases, pace=base.pace, similar={"testing": (4, 40.0)})
    assert estimate_plan(plan, poor, None).confidence == "low"


def test_learned_pace_stretches_hours_and_tokens() -> None:
    base = default_calibration()
    pace = dict(base.pace, testing=Figure(1.5, 1.0, 5, "fitted"))
    calib = Calibration(rates=base.rates, bases=base.bases, pace=pace)
    plan = parse_plan("# P\n### Phase 1: Tests (2h)\nType: testing\n", "p.md")
    est = estimate_plan(plan, calib, None)
    assert est.phases[0].mid == 18_000 + 30_000 * 2 * 1.5 and est.hours_mid == 3.0


@pytest.mark.parametrize(
    ("error", "word"),
    [
        (0, "EXCELLENT"),
        (4.99, "EXCELLENT"),
        (5, "VERY GOOD"),
        (-9.9, "VERY GOOD"),
        (12.6, "GOOD"),
        (20, "FAIR"),
        (35, "POOR"),
        (None, "n/a"),
    ],
)
def test_accuracy_rating_boundaries(error: float | None, word: str) -> None:
    assert rating(error).endswith(word)


def test_variance_percent() -> None:
    assert variance_pct(28_500, 32_100) == pytest.approx(12.63, abs=0.01)
    assert variance_pct(0, 10) is None


def test_a_plan_too_big_says_how_many_phases_fit_with_the_buffer() -> None:
    plan = parse_plan(
        "# P\n### Phase 1: Plan (1h)\nType: planning\n### Phase 2: Plan more (1h)\nType: planning\n", "p.md"
    )
    # each phase 35,000; with the 20 % buffer one phase needs 42,000 and two need 84,000
    assert estimate_plan(plan, default_calibration(), _limit(84_000)).phases_that_fit is None
    est = estimate_plan(plan, default_calibration(), _limit(83_999))
    assert (
        est.phases_that_fit == 1
        and "plan phase 1 for this window (35,000 tokens, 42,000 with" in render_text(est)
    )
    assert estimate_plan(plan, default_calibration(), _limit(41_999)).phases_that_fit == 0
    assert estimate_plan(plan, default_calibration(), None).phases_that_fit is None


def test_each_phase_shows_the_formula_that_gives_its_mid_and_its_range() -> None:
    plan = parse_plan(
        "# P\nTech stack: familiar\n### Phase 1: Build UI (1-1.5h)\nNew libraries: pyarrow\n"
        "### Phase 2: Tests (45 min)\nType: testing\n",
        "p.md",
    )
    est = estimate_plan(plan, default_calibration(), None)
    text = render_text(est)
    p1, p2 = est.phases
    assert p1.mid == round((25_000 + 45_000 * 1.25) * 0.9 + 5_000) == 78_125
    assert (
        "  47,600 - 114,725 tokens, mid 78,125; confidence low "
        "(implementation is medium, one step lower for new libraries)" in text
    )
    assert (
        "  mid = (25,000 + 45,000/h x 1.25h) x 0.9 + 5,000; "
        "range: the 1h figure -30% to the 1.5h figure +30%" in text
    )
    assert p1.low == round(((25_000 + 45_000) * 0.9 + 5_000) * 0.7)
    assert "  mid = (18,000 + 30,000/h x 0.75h) x 0.9; range ±12%" in text
    assert p2.mid == round((18_000 + 30_000 * 0.75) * 0.9)
    assert est.confidence == "low" and "phase 1 sets it: implementation is medium, one step lower" in (
        est.confidence_reason
    )
    assert f"Burn rate: about {est.burn_per_minute:,} tokens/min (mid over 2h 00m)" in text
    assert est.burn_per_minute == round(est.mid / 120)


def test_the_auto_plan_says_where_its_figure_comes_from() -> None:
    bare = parse_plan("# P\n### Phase 1: A (1h)\n", "p.md")
    got = resolve_limit(
        bare,
        override=None,
        settings_tokens=None,
        settings_plan="auto",
        plan_limits={"auto": 200_000},
        plan_notes={"auto": "pro's figure until the daemon has worked out your plan"},
    )
    assert got == QuotaLimit(
        200_000, "settings quota.plan = auto: pro's figure until the daemon has worked out your plan"
    )


def test_an_hour_baton_assumed_is_shown_as_assumed() -> None:
    handoff = "# H\n## Next Session Objectives\n1. Write importer tests\n2. Fix CSV edge cases\n"
    plan = parse_plan(handoff, "h.md")
    est = estimate_plan(plan, default_calibration(), None)
    assert all(p.hours_assumed and p.hours_low == 1.0 for p in est.phases)
    assert "Phase 1: Write importer tests (1h assumed: no duration given, testing" in render_text(est)
    timed = parse_plan("# P\n### Phase 1: Tests (2h)\nType: testing\n", "p.md")
    (p,) = estimate_plan(timed, default_calibration(), None).phases
    assert not p.hours_assumed
