"""Reports equal ccusage's token for token and cost to the cent; the one known difference is explained."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledger_fixtures import run_baton
from tests.support.real import require_real
from tests.support.transcript_writer import assistant_line, progress_line

# ccusage 20 counts `agent_progress` usage in daily only; baton counts it in every report. In the golden
# corpus that usage is exactly these tokens, all in subagent.jsonl on 2026-02-10 (its five response rows).
PROGRESS = {
    "input": 24,
    "output": 7,
    "cache_creation": 14285,
    "cache_read": 95343,
    "total": 109659,
    "entries": 5,
}
PROGRESS_COST = 0.0381633  # haiku-4-5 prices, --mode calculate
TOKEN_KEYS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")


def baton_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_baton("report", *args, "--json", env=env).stdout)


@pytest.fixture
def corpus_env(baton_home: Path, real_corpus: Path) -> dict[str, str]:
    return {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(real_corpus)}


def assert_same_rows(ours: dict[str, Any], theirs: dict[str, Any], *, skip_period: str | None = None) -> None:
    assert [r["period"] for r in ours] == [r["period"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        if a["period"] == skip_period:
            continue
        assert {k: a[k] for k in TOKEN_KEYS} == {k: b[k] for k in TOKEN_KEYS}, a["period"]
        assert a["totalCost"] == pytest.approx(b["totalCost"], abs=0.005)
        assert a["modelsUsed"] == b["modelsUsed"]
        assert a["agent"] == b["agent"] and a["metadata"] == b["metadata"]
        assert [m["modelName"] for m in a["modelBreakdowns"]] == [
            m["modelName"] for m in b["modelBreakdowns"]
        ]
        for ma, mb in zip(a["modelBreakdowns"], b["modelBreakdowns"], strict=True):
            assert ma["cost"] == pytest.approx(mb["cost"], abs=0.005)
            assert {k: ma[k] for k in TOKEN_KEYS[:4]} == {k: mb[k] for k in TOKEN_KEYS[:4]}
        assert sorted(a) == sorted(b)


def test_daily_equals_ccusage_golden(corpus_env: dict[str, str], golden_dir: Path) -> None:
    ours = baton_json(corpus_env, "daily", "--timezone", "UTC", "--mode", "calculate")
    golden = json.loads((golden_dir / "daily.json").read_text())
    assert sorted(ours) == sorted(golden)
    assert_same_rows(ours["daily"], golden["daily"])
    assert {k: ours["totals"][k] for k in TOKEN_KEYS} == {k: golden["totals"][k] for k in TOKEN_KEYS}
    assert ours["totals"]["totalCost"] == pytest.approx(golden["totals"]["totalCost"], abs=0.005)


@pytest.mark.parametrize(("mode", "total"), [("auto", 3.1604946), ("display", 1.09)])
def test_cost_modes_match_ccusage_totals(corpus_env: dict[str, str], mode: str, total: float) -> None:
    ours = baton_json(corpus_env, "daily", "--timezone", "UTC", "--mode", mode)
    assert ours["totals"]["totalCost"] == pytest.approx(total, abs=0.005)


def test_session_equals_ccusage_except_progress_usage(corpus_env: dict[str, str], golden_dir: Path) -> None:
    ours = baton_json(corpus_env, "session", "--timezone", "UTC", "--mode", "calculate")
    golden = json.loads((golden_dir / "session.json").read_text())
    assert_same_rows(ours["session"], golden["session"], skip_period="subagent")
    a = next(r for r in ours["session"] if r["period"] == "subagent")
    b = next(r for r in golden["session"] if r["period"] == "subagent")
    assert a["inputTokens"] - b["inputTokens"] == PROGRESS["input"]
    assert a["outputTokens"] - b["outputTokens"] == PROGRESS["output"]
    assert a["cacheCreationTokens"] - b["cacheCreationTokens"] == PROGRESS["cache_creation"]
    assert a["cacheReadTokens"] - b["cacheReadTokens"] == PROGRESS["cache_read"]
    assert a["totalCost"] - b["totalCost"] == pytest.approx(PROGRESS_COST, abs=1e-9)
    assert a["modelsUsed"] == [*b["modelsUsed"], "claude-haiku-4-5-20251001"]
    assert ours["totals"]["totalTokens"] - golden["totals"]["totalTokens"] == PROGRESS["total"]


def test_blocks_equal_ccusage_except_progress_usage(corpus_env: dict[str, str], golden_dir: Path) -> None:
    ours = baton_json(corpus_env, "blocks", "--mode", "calculate")["blocks"]
    golden = json.loads((golden_dir / "blocks.json").read_text())["blocks"]
    assert [b["id"] for b in ours] == [b["id"] for b in golden]
    for a, b in zip(ours, golden, strict=True):
        assert sorted(a) == sorted(b)
        if a["id"] == "2026-02-10T21:00:00.000Z":
            assert a["totalTokens"] - b["totalTokens"] == PROGRESS["total"]
            assert a["entries"] - b["entries"] == PROGRESS["entries"]
            assert a["costUSD"] - b["costUSD"] == pytest.approx(PROGRESS_COST, abs=1e-9)
            continue
        assert {
            k: a[k] for k in ("startTime", "endTime", "actualEndTime", "isGap", "isActive", "entries")
        } == {k: b[k] for k in ("startTime", "endTime", "actualEndTime", "isGap", "isActive", "entries")}
        assert a["tokenCounts"] == b["tokenCounts"] and a["models"] == b["models"]
        assert a["costUSD"] == pytest.approx(b["costUSD"], abs=0.005)


@pytest.mark.slow
@pytest.mark.parametrize("report", ["daily", "weekly", "monthly", "session"])
def test_live_against_pinned_ccusage(corpus_env: dict[str, str], real_corpus: Path, report: str) -> None:
    ccusage = require_real("ccusage")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(real_corpus), "TZ": "UTC"}
    theirs = json.loads(
        subprocess.run(
            [ccusage, report, "--json", "--offline", "--timezone", "UTC", "--mode", "calculate"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    ours = baton_json(corpus_env, report, "--timezone", "UTC", "--mode", "calculate")
    skip = "subagent" if report == "session" else None
    assert_same_rows(ours[report], theirs[report], skip_period=skip)


@pytest.mark.slow
def test_live_blocks_against_pinned_ccusage(corpus_env: dict[str, str], real_corpus: Path) -> None:
    ccusage = require_real("ccusage")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(real_corpus)}
    out = subprocess.run(
        [ccusage, "blocks", "--json", "--offline", "--mode", "calculate"],
        env=env,
        capture_output=True,
        text=True,
    )
    theirs = json.loads(out.stdout)["blocks"]
    ours = baton_json(corpus_env, "blocks", "--mode", "calculate")["blocks"]
    assert [b["id"] for b in ours] == [b["id"] for b in theirs]
    diff = sum(a["totalTokens"] for a in ours) - sum(b["totalTokens"] for b in theirs)
    assert diff == PROGRESS["total"]


# ---- local days, filters, formats ---------------------------------------------------------------


def write_lines(claude_dir: Path, project: str, name: str, *lines: bytes) -> None:
    path = claude_dir / "projects" / project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))


def ts(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_local_days_follow_dst(ledger_env: dict[str, str], claude_dir: Path) -> None:
    # Paris: UTC+1 until 2026-03-29 01:00Z, then UTC+2: 22:30Z is 23:30 local before, 00:30 next day after.
    write_lines(
        claude_dir,
        "p",
        "s.jsonl",
        assistant_line(1, ts=ts("2026-03-28T22:30:00+00:00")),
        assistant_line(2, ts=ts("2026-03-29T22:30:00+00:00")),
    )
    days = [r["period"] for r in baton_json(ledger_env, "daily", "--timezone", "Europe/Paris")["daily"]]
    assert days == ["2026-03-28", "2026-03-30"]
    days = [r["period"] for r in baton_json(ledger_env, "daily", "--timezone", "UTC")["daily"]]
    assert days == ["2026-03-28", "2026-03-29"]


def test_weeks_start_on_monday_and_months_group(ledger_env: dict[str, str], claude_dir: Path) -> None:
    write_lines(
        claude_dir,
        "p",
        "s.jsonl",
        assistant_line(1, ts=ts("2026-02-08T12:00:00+00:00")),  # Sunday
        assistant_line(2, ts=ts("2026-02-09T12:00:00+00:00")),  # Monday
        assistant_line(3, ts=ts("2026-03-01T12:00:00+00:00")),
    )
    weeks = [r["period"] for r in baton_json(ledger_env, "weekly", "-z", "UTC")["weekly"]]
    assert weeks == ["2026-02-02", "2026-02-09", "2026-02-23"]
    months = baton_json(ledger_env, "monthly", "-z", "UTC")["monthly"]
    assert [(m["period"], m["totalTokens"]) for m in months] == [("2026-02", 2 * 6110), ("2026-03", 6110)]


def test_since_until_and_project_filters(ledger_env: dict[str, str], claude_dir: Path) -> None:
    write_lines(
        claude_dir,
        "alpha",
        "a.jsonl",
        *(assistant_line(i, ts=ts(f"2026-02-1{i}T12:00:00+00:00")) for i in range(5)),
    )
    write_lines(
        claude_dir, "beta", "b.jsonl", assistant_line(9, session="b", ts=ts("2026-02-12T12:00:00+00:00"))
    )
    days = baton_json(ledger_env, "daily", "-z", "UTC", "--since", "2026-02-11", "--until", "20260213")[
        "daily"
    ]
    assert [d["period"] for d in days] == ["2026-02-11", "2026-02-12", "2026-02-13"]
    assert days[1]["totalTokens"] == 2 * 6110
    only = baton_json(ledger_env, "daily", "-z", "UTC", "--project", "beta")["daily"]
    assert [(d["period"], d["totalTokens"]) for d in only] == [("2026-02-12", 6110)]
    bad = run_baton("report", "daily", "--since", "last week", env=ledger_env, check=False)
    assert bad.returncode == 1 and "not a date: 'last week'" in bad.stderr


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("daily", "--since", "2026-13-01"),
        ("weekly", "--since", "2026-02-30"),
        ("session", "--until", "20261399"),
        ("blocks", "--since", "2026-13-01"),
        ("monthly", "--until", "2026-00-10"),
    ],
)
def test_impossible_dates_are_a_clean_error(
    ledger_env: dict[str, str], command: str, flag: str, value: str
) -> None:
    out = run_baton("report", command, flag, value, env=ledger_env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"not a date: '{value}'" in out.stderr and "YYYY-MM-DD or YYYYMMDD" in out.stderr


def test_project_by_directory_name_path_or_slug(
    ledger_env: dict[str, str], claude_dir: Path, tmp_path: Path
) -> None:
    spotter = tmp_path / "code" / "spotter"
    slug = str(spotter).replace("/", "-").replace("_", "-")
    write_lines(claude_dir, slug, "s.jsonl", assistant_line(1, ts=ts("2026-02-12T12:00:00+00:00")))
    write_lines(claude_dir, "-home-x-other", "o.jsonl", assistant_line(2, ts=ts("2026-02-12T12:00:00+00:00")))
    for name in ("spotter", str(spotter), slug):
        days = baton_json(ledger_env, "daily", "-z", "UTC", "--project", name)["daily"]
        assert [(d["period"], d["totalTokens"]) for d in days] == [("2026-02-12", 6110)], name
    blocks = baton_json(ledger_env, "blocks", "--project", "spotter")["blocks"]
    assert sum(b["totalTokens"] for b in blocks) == 6110
    none = run_baton("report", "daily", "--project", "nothere", env=ledger_env, check=False)
    assert none.returncode == 1 and "no project matches 'nothere'" in none.stderr
    assert "-home-x-other" in none.stderr


def test_an_invalid_config_fails_reports_as_every_command(
    ledger_env: dict[str, str], claude_dir: Path, baton_home: Path
) -> None:
    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1))
    config = baton_home / "config.toml"
    config.write_text('[pricing]\nmode = "calculate"\n')
    assert baton_json(ledger_env, "daily", "-z", "UTC")["totals"]["totalTokens"] == 6110
    assert baton_json(ledger_env, "daily", "-z", "UTC")["totals"]["totalTokens"] == 6110  # the warm path
    for text in ('[pricing]\nmode = "calc"\n', '[general]\ntimezone = "Mars/Olympus"\n', "[nosuch]\nx = 1\n"):
        config.write_text(text)
        out = run_baton("report", "daily", "--json", env=ledger_env, check=False)
        assert out.returncode == 78 and "invalid configuration" in out.stderr, text
        assert "Traceback" not in out.stderr


def test_tables_csv_chart_and_unpriced_models(ledger_env: dict[str, str], claude_dir: Path) -> None:
    write_lines(
        claude_dir,
        "p",
        "s.jsonl",
        assistant_line(1),
        assistant_line(2, model="gpt-imaginary"),
        progress_line(3),
    )
    table = run_baton("report", "daily", "--breakdown", "-z", "UTC", env=ledger_env)
    assert "2026-02-10" in table.stdout and "Total" in table.stdout and "sonnet-4-5-20250929" in table.stdout
    assert "Unpriced models (cost not counted): gpt-imaginary" in table.stderr
    csv_text = run_baton("report", "daily", "--csv", "-z", "UTC", env=ledger_env).stdout
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0][:4] == ["Date", "Models", "Input", "Output"]
    assert rows[1][6] == str(2 * 6110 + 1110)
    chart = run_baton("report", "daily", "--chart", "-z", "UTC", env=ledger_env).stdout
    assert "█" in chart and "13,330" in chart
    for kind in ("weekly", "monthly", "session", "blocks"):
        assert run_baton("report", kind, env=ledger_env).returncode == 0


def test_reports_catch_up_incrementally(ledger_env: dict[str, str], claude_dir: Path) -> None:
    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 6110
    with open(claude_dir / "projects" / "p" / "s.jsonl", "ab") as f:
        f.write(assistant_line(2))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 2 * 6110
    summary = json.loads(run_baton("ingest", "--json", env=ledger_env).stdout)
    assert (summary["files"], summary["files_read"], summary["new_events"]) == (1, 0, 0)


def test_reports_see_new_transcripts_in_known_and_new_folders(
    ledger_env: dict[str, str], claude_dir: Path
) -> None:
    # Reports skip the listing while no folder changed: every kind of new file must still be seen.
    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 6110
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 6110
    write_lines(claude_dir, "p", "t.jsonl", assistant_line(2, session="t"))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 2 * 6110
    write_lines(claude_dir, "p", "t/subagents/agent-a1.jsonl", assistant_line(3, session="t", sidechain=True))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 3 * 6110
    write_lines(claude_dir, "p", "t/subagents/agent-a2.jsonl", assistant_line(4, session="t", sidechain=True))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 4 * 6110
    write_lines(claude_dir, "q", "u.jsonl", assistant_line(5, session="u"))
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 5 * 6110


def test_a_file_the_daemon_read_refreshes_the_remembered_folders(
    ledger_env: dict[str, str], claude_dir: Path, baton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from daemon.config import load_settings
    from daemon.ingest import Ingestor
    from daemon.paths import BatonPaths

    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1))
    run_baton("ingest", env=ledger_env)
    for key, value in ledger_env.items():
        monkeypatch.setenv(key, value)
    paths = BatonPaths.from_env()
    ingestor = Ingestor(paths, load_settings(paths))
    write_lines(claude_dir, "r", "v.jsonl", assistant_line(2, session="v"))
    assert ingestor.ingest_file(claude_dir / "projects" / "r" / "v.jsonl").new_events == 1
    ingestor.close()

    def tree() -> dict[str, Any]:
        with sqlite3.connect(baton_home / "baton.db") as conn:
            row = conn.execute("SELECT value FROM ledger_meta WHERE key = 'tree'").fetchone()
        return dict(json.loads(row[0])["dirs"])

    assert str(claude_dir / "projects" / "r") not in tree()
    assert baton_json(ledger_env, "daily")["totals"]["totalTokens"] == 2 * 6110
    assert str(claude_dir / "projects" / "r") in tree()  # the report listed the folders again, and kept them


def test_warm_report_imports_nothing_heavy(ledger_env: dict[str, str], claude_dir: Path) -> None:
    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1))
    run_baton("ingest", env=ledger_env)
    probe = (
        "import sys, io, contextlib\n"
        "from daemon.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['report', 'daily', '--json'])\n"
        "    except SystemExit: pass\n"
        "names = ('sqlalchemy', 'pydantic', 'pydantic_settings', 'structlog', 'msgspec')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **ledger_env},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "none"


def test_bad_claude_config_dir_is_a_clear_error(baton_home: Path, tmp_path: Path) -> None:
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": f"{tmp_path}/nope, {tmp_path}/also-nope"}
    out = run_baton("report", "daily", env=env, check=False)
    assert out.returncode == 1 and "names no directory with a projects/ folder" in out.stderr


def test_a_price_file_change_recomputes_stored_costs(
    ledger_env: dict[str, str], claude_dir: Path, baton_home: Path, tmp_path: Path
) -> None:
    write_lines(claude_dir, "p", "s.jsonl", assistant_line(1, model="claude-sonnet-4-5-20250929"))
    before = baton_json(ledger_env, "daily", "--mode", "calculate")["totals"]["totalCost"]
    assert before == pytest.approx((10 * 3 + 100 * 15 + 1000 * 6 + 5000 * 0.3) / 1e6)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"claude-sonnet-4-5-20250929": {"input": 1, "output": 1}}}))
    (baton_home / "config.toml").write_text(f'[pricing]\nfile = "{prices}"\n')
    after = baton_json(ledger_env, "daily", "--mode", "calculate")["totals"]["totalCost"]
    # input 1, output 1, 1h write = 2 x input, read defaults to 0.1 x input (USD per million)
    assert after == pytest.approx((10 + 100 + 1000 * 2 + 5000 * 0.1) / 1e6)


@pytest.mark.slow
def test_live_active_block_burn_rate_and_projection_match_ccusage(
    ledger_env: dict[str, str], claude_dir: Path
) -> None:
    ccusage = require_real("ccusage")
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    write_lines(
        claude_dir,
        "p",
        "s.jsonl",
        assistant_line(1, ts=now - timedelta(minutes=50)),
        assistant_line(2, ts=now - timedelta(minutes=10)),
    )
    out = subprocess.run(
        [ccusage, "blocks", "--json", "--offline", "--mode", "calculate"],
        env={**os.environ, **ledger_env},
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(out.stdout)["blocks"][-1]
    ours = baton_json(ledger_env, "blocks", "--mode", "calculate")["blocks"][-1]
    assert ours["isActive"] and theirs["isActive"]
    assert ours["burnRate"] == pytest.approx(theirs["burnRate"])
    assert sorted(ours) == sorted(theirs)
    assert abs(ours["projection"]["remainingMinutes"] - theirs["projection"]["remainingMinutes"]) <= 1
    assert ours["projection"]["totalTokens"] == pytest.approx(theirs["projection"]["totalTokens"], rel=0.01)
