"""Reading session plans: the seeds' SESSION_3_PLAN shape, handoff objectives, and odd input."""

from __future__ import annotations

import pytest

from daemon.errors import BatonError
from daemon.estimate import QuotaLimit, default_calibration, estimate_plan
from daemon.plan_parse import (
    Factors,
    infer_task_type,
    library_key,
    parse_duration,
    parse_plan,
    parse_token_range,
    parse_tokens,
)

SESSION_3_PLAN = """\
# Session 3: Real-Time Dashboard Implementation

**Status**: PLANNED
**Estimated Time**: 4-6 hours
**Project size**: medium (5-20k LOC)
**Tech stack**: familiar
**New libraries**: Socket.io, Recharts
**Quota**: 200,000 tokens

## Token Estimation Breakdown

### Phase 1: WebSocket Server (1-1.5h)
**Estimated Tokens**: 25,000 - 32,000

**Calculation**:
- Duration: 1.25 hours
- Rate: 45,000 tokens/hour (implementation type)

### Phase 2: Dashboard Foundation (1.5-2h)
- **Tech stack**: learning

### Phase 3: Visualization (90 min)
Type: testing
- Charts integration
- **New libraries**: Recharts

### Phase 4: Historical Sessions (1h)
- SQL schema and list component

## Total Estimate
**Mid-Range**: 102,500 tokens

## Risk Factors
1. Chart library learning curve
"""


def test_session_3_plan_phases_hours_types_and_factors() -> None:
    plan = parse_plan(SESSION_3_PLAN, "SESSION_3_PLAN.md")
    assert plan.title == "Session 3: Real-Time Dashboard Implementation"
    assert [p.name for p in plan.phases] == [
        "WebSocket Server",
        "Dashboard Foundation",
        "Visualization",
        "Historical Sessions",
    ]
    assert [(p.hours_low, p.hours_high) for p in plan.phases] == [(1, 1.5), (1.5, 2), (1.5, 1.5), (1, 1)]
    assert [p.number for p in plan.phases] == [1, 2, 3, 4]
    assert plan.phases[0].task_type == "implementation" and plan.phases[0].type_source == "inferred"
    assert plan.phases[2].task_type == "testing" and plan.phases[2].type_source == "given"
    assert plan.factors == Factors(project_size="medium", tech_stack="familiar")
    assert plan.phases[1].factors == Factors(project_size="medium", tech_stack="learning")
    assert plan.phases[0].factors.tech_stack == "familiar"
    assert plan.libraries == ("Socket.io", "Recharts")
    assert plan.phases[2].libraries == ("Recharts",)
    assert plan.quota_tokens == 200_000
    assert plan.warnings == ()


def test_the_heading_duration_wins_over_a_detail_line() -> None:
    plan = parse_plan(SESSION_3_PLAN, "p.md")
    assert plan.phases[0].hours_mid == 1.25


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("1-1.5h", (1.0, 1.5)),
        ("1.5–2 h", (1.5, 2.0)),
        ("90 min", (1.5, 1.5)),
        ("30-45 min", (0.5, 0.75)),
        ("2 hours", (2.0, 2.0)),
        ("1h30", (1.5, 1.5)),
        ("1h 30m", (1.5, 1.5)),
        ("1 to 2 hours", (1.0, 2.0)),
        ("45m", (0.75, 0.75)),
        ("2-1h", (1.0, 2.0)),
        ("soon", None),
    ],
)
def test_durations_in_hours_minutes_ranges_and_single_values(
    text: str, hours: tuple[float, float] | None
) -> None:
    assert parse_duration(text) == hours


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("(Est: 15k tokens)", 15_000), ("200,000 tokens", 200_000), ("1.2M tokens", 1_200_000), ("no", None)],
)
def test_token_figures(text: str, tokens: int | None) -> None:
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Write integration tests for the API", "testing"),
        ("Fix the crash on login", "debugging"),
        ("Refactor the storage layer", "refactoring"),
        ("Architecture and design", "planning"),
        ("README and docs polish", "polish"),
        ("Build the WebSocket server", "implementation"),
    ],
)
def test_task_type_is_inferred_from_the_words(name: str, expected: str) -> None:
    assert infer_task_type(name, "") == (expected, "inferred")


def test_a_phase_with_no_clue_defaults_to_implementation() -> None:
    assert infer_task_type("Phase three", "") == ("implementation", "default")


def test_a_plan_without_phases_is_an_error_naming_the_file() -> None:
    with pytest.raises(BatonError) as err:
        parse_plan("# Just notes\n\nNothing planned here.\n", "notes/PLAN.md")
    assert "notes/PLAN.md" in err.value.message and "no phases" in err.value.message
    assert err.value.hint and "### Phase 1" in err.value.hint


def test_odd_lines_become_warnings_with_file_and_line_and_the_rest_goes_on() -> None:
    text = (
        "# Odd\n**Project size**: gigantic\n\n## Phase 1: Setup\nType: napping\n\n"
        "## Phase 2 - Tests (20-40 minutes)\n## Phase: Cleanup (0h)\n"
    )
    plan = parse_plan(text, "odd.md")
    assert [p.name for p in plan.phases] == ["Setup", "Tests", "Cleanup"]
    assert plan.phases[0].hours_low == 1.0  # no duration: one hour, with a warning
    assert plan.phases[1].hours_low == pytest.approx(1 / 3) and plan.phases[1].task_type == "testing"
    joined = "\n".join(plan.warnings)
    assert "odd.md:2: unknown project size 'gigantic'" in joined
    assert "odd.md:5: unknown task type 'napping'" in joined
    assert "odd.md:4: phase 'Setup' states no duration" in joined
    assert "odd.md:8: phase 'Cleanup' has a zero duration" in joined
    assert plan.factors.project_size is None


def test_phase_headings_inside_code_blocks_are_ignored() -> None:
    text = "# P\n```\n### Phase 9: Not real (5h)\n```\n### Phase 1: Real (1h)\n"
    assert [p.name for p in parse_plan(text, "p.md").phases] == ["Real"]


def test_a_heading_named_phases_is_not_a_phase() -> None:
    text = "# P\n## Phases\n### Phase 1: Only (2h)\n"
    assert [p.name for p in parse_plan(text, "p.md").phases] == ["Only"]


def test_handoff_objectives_become_phases_with_their_own_figures() -> None:
    handoff = """\
# Session Handoff: Implementation Phase 2
**Project**: /path/to/project

## Next Session Objectives
1. **Integrate auth with existing user endpoints** (Est: 15k tokens)
   - Add auth guards to user routes
2. **Add refresh token logic** (Est: 18k tokens)
3. **Error handling improvements** (Est: 12k tokens)

**Total Estimate**: 45k tokens (23% of quota)

## Key Decisions & Context
- Using JWT
"""
    plan = parse_plan(handoff, "handoff.md")
    assert plan.kind == "handoff"
    assert [p.name for p in plan.phases] == [
        "Integrate auth with existing user endpoints",
        "Add refresh token logic",
        "Error handling improvements",
    ]
    assert [p.given_tokens for p in plan.phases] == [15_000, 18_000, 12_000]
    assert plan.phases[2].task_type == "debugging"


def test_quota_line_may_name_a_plan() -> None:
    plan = parse_plan("# P\n**Quota**: Max 20x\n### Phase 1: A (1h)\n", "p.md")
    assert plan.quota_tokens is None and plan.quota_plan == "max20"
    plan = parse_plan("# P\nQuota: pro\n### Phase 1: A (1h)\n", "p.md")
    assert plan.quota_plan == "pro"


def test_library_keys() -> None:
    assert library_key("Socket.io") == "socketio" and library_key(" Next.js ") == "nextjs"


def test_arbitrary_markdownish_text_parses_or_fails_with_a_baton_error() -> None:
    import random

    pieces = [
        "### Phase 1: A (1-1.5h)",
        "## Phase",
        "# T",
        "Type: ???",
        "Quota: lots",
        "**Tech stack**:",
        "```",
        "- New libraries: ,,",
        "Duration: 5-",
        "### Phase 99.5: (0 min)",
        "1. **Obj** (Est: k tokens)",
        "## Next Session Objectives",
        "(2h)",
        "\t",
        "Project size: large",
        "Phase 2: not a heading",
        "",
        "### Phase x: y (1h30m)",
        "Code quality: legacy legacy",
        "### phase 3 — em dash (45m)",
        "ü ✓ 🚀",
        "### Phase 4: Z (0-1h)",
        "### Phase 5: big (400h)",
    ]
    rng = random.Random(11)
    for _ in range(400):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            plan = parse_plan(text, "fuzz.md")
        except BatonError as exc:
            assert "fuzz.md" in exc.message
            continue
        assert plan.phases
        for phase in plan.phases:
            assert phase.task_type in (
                "planning",
                "implementation",
                "refactoring",
                "testing",
                "debugging",
                "polish",
            )
            assert phase.hours_low is None or 0 <= phase.hours_low <= (phase.hours_high or 0)
        est = estimate_plan(plan, default_calibration(), QuotaLimit(200_000, "test"))
        assert est.conservative <= est.mid <= est.aggressive


def test_the_seeds_own_plan_keeps_its_token_figures_beside_ours_and_flags_bare_complexity_numbers() -> None:
    text = (
        "# Session 3\n### Phase 1: WebSocket Server (1-1.5h)\n**Estimated Tokens**: 25,000 - 32,000\n"
        "- **Complexity**: 0.9 (familiar stack)\n"
        "### Phase 2: Polish the docs\n**Estimated Tokens**: 10k-14k\n"
    )
    plan = parse_plan(text, "S3.md")
    first, second = plan.phases
    assert first.stated == (25_000, 32_000) and first.given_tokens is None and first.hours_mid == 1.25
    # without hours the plan's own figure is the estimate (its middle)
    assert second.stated is None and second.given_tokens == 12_000 and second.hours_low is None
    assert plan.warnings == (
        "S3.md:4: complexity '0.9 (familiar stack)' is not used: name the factor, "
        "e.g. `Tech stack: familiar` (or `Code quality:`, `Project size:`)",
    )
    est = estimate_plan(plan, default_calibration(), None)
    assert est.phases[0].stated == (25_000, 32_000) and est.phases[1].mid == 12_000


@pytest.mark.parametrize(
    ("text", "figures"),
    [("25,000 - 32,000", (25_000, 32_000)), ("10k-14k tokens", (10_000, 14_000)), ("15k", (15_000, 15_000)),
     ("1.2M", (1_200_000, 1_200_000)), ("about a lot", None)],
)  # fmt: skip
def test_token_ranges(text: str, figures: tuple[int, int] | None) -> None:
    assert parse_token_range(text) == figures
