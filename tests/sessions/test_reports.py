"""Every session report against figures worked out by hand on the fixture ledger (fixture_ledger.py).

Fixture, all UTC: A 2026-03-02 10:00-10:32 terraform-aws opus, 55,550 tokens, $2.50, active 6 min;
B 2026-03-02 23:50 - 03-03 00:06 (crosses midnight) webapp sonnet, 11,100 tokens, $0.50, active 16 min;
C 2026-03-05 12:00 webapp haiku+opus(+synthetic), 1,265 tokens, $0.21, active 1.5 min;
D 2026-03-08 23:30-23:40 (= 03-09 00:30 in Paris) notes opus, 22 tokens, $0.10, active 0 (one 10-min gap);
E 2026-03-29 00:30-01:30 (across the Paris DST change) terraform-gcp opus, 4,400 tokens, $4.00, active 6 min.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from daemon.cli import cli
from tests.sessions.fixture_ledger import A, B, C, D, E, Ev, add

F = "ffff6666-0000-4000-8000-000000000006"
G = "99997777-0000-4000-8000-000000000007"


@pytest.fixture
def run(filled: Path, claude_dir: Path) -> Any:
    def invoke(*args: str) -> str:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def _json(run: Any, *args: str) -> dict[str, Any]:
    return json.loads(run("report", *args, "--json"))


def test_summary_totals(run: Any) -> None:
    s = _json(run, "summary")
    assert s["sessions"] == 5
    assert s["all_tokens"] == 55_550 + 11_100 + 1_265 + 22 + 4_400 == 72_337
    assert s["cost_usd"] == pytest.approx(7.31)
    assert s["input_tokens"] == 50 + 100 + 15 + 2 + 400
    assert s["active_min"] == pytest.approx(6 + 16 + 1.5 + 0 + 6)  # D's one 10-minute gap is not active
    assert s["wall_min"] == pytest.approx(32 + 16 + 1.5 + 10 + 60)
    assert s["messages"] == 5 + 5 + 2 + 2 + 4
    assert s["avg_cost_per_session"] == pytest.approx(7.31 / 5)
    assert (s["first_day"], s["last_day"]) == ("2026-03-02", "2026-03-29")
    assert (s["top_repo"], s["top_category"], s["top_model"]) == (
        "terraform-gcp",
        "terraform",
        "claude-opus-4-6",
    )


def test_summary_names_the_first_row_of_each_breakdown(run: Any, filled: Path) -> None:
    # F: $8.00 on haiku with no working directory recorded (so no repository), the most of any group.
    # G ($6.50, in "app"): most of its tokens on sonnet, most of its cost on opus.
    add(
        filled,
        [
            Ev(F, "2026-03-30T10:00:00Z", model="claude-haiku-4-5", inp=10, cost=8.0, cwd="", project="-tmp"),
            Ev(G, "2026-03-30T11:00:00Z", model="claude-sonnet-4-5", cr=100_000, cost=0.5),
            Ev(G, "2026-03-30T11:01:00Z", inp=5, out=5, cost=6.0),
        ],
    )
    s = _json(run, "summary")
    repos = _json(run, "by-repo")["rows"]
    assert [r["repo"] for r in repos[:3]] == ["(no repository)", "app", "terraform-gcp"]
    assert s["top_repo"] == repos[0]["repo"] == "(no repository)"
    # Counting each session's whole cost under its main model would make haiku the top (8.0, against sonnet
    # 0.5 + 6.5 and opus 6.81); by-model, which counts each response under its own model, ranks opus first
    # (6.8 + 6.0 = 12.8), and so does the summary.
    assert s["top_model"] == _json(run, "by-model")["rows"][0]["model"] == "claude-opus-4-6"
    assert s["top_category"] == _json(run, "by-category")["rows"][0]["category"] == "general"
    table = run("report", "summary")
    assert "top repository (cost)    (no repository) ($8.00, 36.7%)" in table  # of $21.81
    assert "top model (cost)         claude-opus-4-6 ($12.80, 58.7%)" in table
    assert "(no repository)  " in run("report", "by-repo")


def test_since_until_select_by_start_day_and_a_midnight_session_stays_on_its_first_day(run: Any) -> None:
    s = _json(run, "summary", "--since", "2026-03-03", "--until", "2026-03-08")
    assert s["sessions"] == 2  # C and D; B started on 03-02 so it is not in
    assert s["all_tokens"] == 1_265 + 22
    s = _json(run, "summary", "--since", "20260302", "--until", "20260302")
    assert s["sessions"] == 2 and s["all_tokens"] == 66_650  # A and B (B runs into 03-03)


def test_time_zone_moves_sessions_to_their_local_day(run: Any) -> None:
    # In Paris (UTC+1 in early March) B starts at 00:50 on 03-03 and D at 00:30 on 03-09.
    s = _json(run, "summary", "--since", "2026-03-03", "--until", "2026-03-03", "--timezone", "Europe/Paris")
    assert s["sessions"] == 1 and s["all_tokens"] == 11_100
    s = _json(run, "summary", "--since", "2026-03-09", "--until", "2026-03-09", "--timezone", "Europe/Paris")
    assert s["sessions"] == 1 and s["all_tokens"] == 22
    s = _json(run, "summary", "--since", "2026-03-08", "--until", "2026-03-08", "--timezone", "Europe/Paris")
    assert s["sessions"] == 0
    # Across the DST change E lasts 60 real minutes though Paris clocks moved from 01:30 to 03:30.
    recent = _json(run, "recent", "--timezone", "Europe/Paris", "-n", "1")["rows"][0]
    assert recent["session_id"] == E
    assert recent["started"] == "2026-03-29T01:30:00+01:00"
    sj = json.loads(run("export", "sessions-json", "--timezone", "Europe/Paris"))
    e = next(x for x in sj["sessions"] if x["session_id"] == E)
    assert (e["ended"], e["duration_wall_min"], e["day"]) == ("2026-03-29T03:30:00+02:00", 60.0, "2026-03-29")


def test_by_repo(run: Any) -> None:
    rows = {r["repo"]: r for r in _json(run, "by-repo")["rows"]}
    assert list(rows) == ["terraform-gcp", "terraform-aws", "webapp", "notes"]  # most costly first
    assert rows["webapp"]["sessions"] == 2
    assert rows["webapp"]["tokens"] == 12_365
    assert rows["webapp"]["cost_usd"] == pytest.approx(0.71)
    assert rows["webapp"]["active_min"] == pytest.approx(17.5)
    assert rows["terraform-gcp"]["share"] == pytest.approx(round(100 * 4.0 / 7.31, 2))


def test_by_category_uses_the_first_matching_rule(run: Any) -> None:
    report = _json(run, "by-category")
    rows = {r["category"]: r for r in report["rows"]}
    assert set(rows) == {"terraform", "general", "personal"}
    assert (rows["terraform"]["sessions"], rows["terraform"]["tokens"]) == (2, 59_950)
    assert rows["terraform"]["cost_usd"] == pytest.approx(6.5)
    assert (rows["general"]["tokens"], rows["personal"]["tokens"]) == (12_365, 22)
    assert report["totals"]["cost_usd"] == pytest.approx(7.31)


def test_by_model_counts_each_response_under_its_own_model(run: Any) -> None:
    rows = {r["model"]: r for r in _json(run, "by-model")["rows"]}
    assert "<synthetic>" not in rows
    opus = rows["claude-opus-4-6"]
    assert (opus["sessions"], opus["messages"], opus["tokens"]) == (4, 12, 55_550 + 1_210 + 22 + 4_400)
    assert opus["cost_usd"] == pytest.approx(2.5 + 0.2 + 0.1 + 4.0)
    assert (rows["claude-sonnet-4-5"]["tokens"], rows["claude-haiku-4-5"]["tokens"]) == (11_100, 55)
    assert rows["claude-haiku-4-5"]["cost_usd"] == pytest.approx(0.01)


def test_recent_newest_first(run: Any) -> None:
    rows = _json(run, "recent", "-n", "3")["rows"]
    assert [r["session_id"] for r in rows] == [E, D, C]
    assert rows[2]["messages"] == 2 and rows[2]["active_min"] == 1.5


def test_trends_seven_day_rolling_average(run: Any) -> None:
    rows = {
        r["date"]: r for r in _json(run, "trends", "--since", "2026-03-01", "--until", "2026-03-08")["rows"]
    }
    assert list(rows) == [f"2026-03-0{d}" for d in range(1, 9)]
    assert rows["2026-03-02"]["tokens"] == 66_650 and rows["2026-03-03"]["tokens"] == 0
    assert rows["2026-03-02"]["avg_tokens_7d"] == pytest.approx(round(66_650 / 7, 2))
    assert rows["2026-03-08"]["avg_tokens_7d"] == pytest.approx(round((66_650 + 1_265 + 22) / 7, 2))
    assert rows["2026-03-08"]["avg_cost_7d"] == pytest.approx((3.0 + 0.21 + 0.10) / 7)


def test_value_report_and_patterns(run: Any) -> None:
    for sid, value in ((A, "low"), (B, "zero"), (C, "high"), (E, "debt"), (D, "refactor")):
        run("log", "quick", f"work of {sid[:4]}", value, "--session", sid[:8])
    report = _json(run, "value")
    rows = {r["value"]: r for r in report["rows"]}
    assert rows["low"]["cost_usd"] == pytest.approx(2.5) and rows["high"]["cost_usd"] == pytest.approx(0.21)
    assert rows["debt"]["cost_usd"] == pytest.approx(4.0)
    assert report["zero_value_share"] == 20.0
    assert report["median_cost_usd"] == pytest.approx(0.5)
    assert report["high_cost_low_value"] == [A, B]
    assert report["low_cost_high_value"] == [C]
    assert report["debt"] == {"sessions": 1, "cost_usd": 4.0} and report["debt_to_refactor"] == 1.0
    table = run("report", "value")
    assert "Low cost + high value: cccc3333" in table


def test_value_report_with_nothing_rated_says_so_and_how_to_rate(run: Any) -> None:
    table = run("report", "value")
    assert "unrated" in table and "$7.31" in table  # what there is: five unrated sessions
    assert "No session in this period is rated yet, so there is no zero-value share" in table
    assert 'baton log quick "what it delivered" high' in table
    for misleading in ("%", "median", "busywork", "none"):
        assert misleading not in table.split("Avg cost")[1], misleading
    report = _json(run, "value")
    assert report["rated_sessions"] == 0
    assert report["zero_value_share"] is None and report["median_cost_usd"] is None
    assert report["high_cost_low_value"] == report["low_cost_high_value"] == []
    # Rated sessions outside the period do not count for it.
    run("log", "quick", "early work", "zero", "--session", A[:8])
    assert "is rated yet" in run("report", "value", "--since", "2026-03-03")
    assert "zero value: 100.0%" in run("report", "value", "--until", "2026-03-02")


def test_compare_before_and_after_a_date(run: Any) -> None:
    rows = _json(run, "compare", "--before-after", "2026-03-06")["rows"]
    before, after = rows
    assert (before["sessions"], before["total_tokens"]) == (3, 67_915)
    assert before["avg_tokens"] == pytest.approx(round(67_915 / 3, 2))
    assert before["total_cost_usd"] == pytest.approx(3.21) and before["avg_cost_usd"] == pytest.approx(1.07)
    assert (after["sessions"], after["total_tokens"], after["avg_tokens"]) == (2, 4_422, 2_211)
    assert after["total_cost_usd"] == pytest.approx(4.10)


def test_compare_between_tags(run: Any) -> None:
    run("tag", A[:8], "strategy-x")
    run("tag", B[:8], "strategy-x")
    run("tag", C[:8], "baseline")
    run("tag", D[:8], "baseline")
    rows = _json(run, "compare", "--tag", "baseline", "--tag", "strategy-x")["rows"]
    base, strat = rows
    assert (base["sessions"], base["total_tokens"], base["avg_tokens"]) == (2, 1_287, 643.5)
    assert base["avg_cost_usd"] == pytest.approx(0.155)
    assert (strat["sessions"], strat["total_tokens"], strat["avg_tokens"]) == (2, 66_650, 33_325)
    assert strat["avg_tokens_change"] == pytest.approx(round(100 * (33_325 - 643.5) / 643.5, 2))


def test_compare_with_a_group_without_sessions_shows_no_average_and_says_so(run: Any) -> None:
    run("tag", A[:8], "strategy-x")
    report = _json(run, "compare", "--tag", "strategy-x", "--tag", "typo")
    x, typo = report["rows"]
    assert (x["sessions"], x["avg_tokens"]) == (1, 55_550)
    assert (typo["sessions"], typo["total_tokens"], typo["total_cost_usd"]) == (0, 0, 0.0)
    assert typo["avg_tokens"] is None and typo["avg_cost_usd"] is None and typo["avg_tokens_change"] is None
    table = run("report", "compare", "--tag", "typo", "--tag", "strategy-x")
    assert "-100" not in table and "%" not in table
    assert "No sessions for tag typo in this period: nothing to compare." in table


def test_csv_and_table_outputs(run: Any) -> None:
    rows = list(csv.DictReader(io.StringIO(run("report", "by-repo", "--csv"))))
    assert [r["repo"] for r in rows] == ["terraform-gcp", "terraform-aws", "webapp", "notes"]
    assert rows[2]["tokens"] == "12365"
    table = run("report", "by-repo")
    assert "terraform-aws" in table and "$2.50" in table and "Total" in table and "$7.31" in table


def test_bad_options_are_clean_errors(run: Any, filled: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "summary", "--since", "March"])
    assert result.exit_code != 0
    result = CliRunner().invoke(cli, ["report", "compare"])
    assert result.exit_code != 0


def test_reports_still_answer_from_the_ledger_when_transcripts_are_unreachable(
    filled: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "gone"))
    result = CliRunner().invoke(cli, ["report", "summary", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sessions"] == 5
    assert "reporting from the ledger as it is" in result.stderr
