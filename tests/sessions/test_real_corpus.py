"""Session records from the real transcripts agree with ccusage 20.0.24's own session report (golden)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli import cli
from daemon.paths import BatonPaths


def test_sessions_match_ccusage_session_report(
    baton_home: Path, real_corpus: Path, golden_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(real_corpus))
    monkeypatch.setenv("BATON_PRICING__MODE", "calculate")  # as the golden run priced every response
    result = CliRunner().invoke(cli, ["export", "sessions-json", "--timezone", "UTC"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ours = {s["session_id"]: s for s in json.loads(result.output)["sessions"]}
    golden = json.loads((golden_dir / "session.json").read_text())["session"]
    assert set(ours) == {g["period"] for g in golden}
    conn = sqlite3.connect(BatonPaths.from_env().ledger_db)
    sums = conn.execute(
        "SELECT session_id, SUM(total_tokens), SUM(cost_calc) FROM usage_events WHERE source = 'progress' "
        "GROUP BY session_id"
    ).fetchall()
    progress = {sid: tokens for sid, tokens, _ in sums}
    progress_cost = {sid: cost for sid, _, cost in sums}
    conn.close()
    assert progress, "the corpus has agent_progress usage"
    for g in golden:
        s = ours[g["period"]]
        # ccusage's session view skips agent_progress lines (its daily view counts them); baton's records
        # count every deduplicated response, so they differ by exactly those rows.
        assert s["all_tokens"] == g["totalTokens"] + progress.get(g["period"], 0), g["period"]
        assert (s["input_tokens"], s["cache_read_tokens"]) >= (g["inputTokens"], g["cacheReadTokens"])
        assert s["cost_usd"] == pytest.approx(g["totalCost"] + progress_cost.get(g["period"], 0.0), abs=1e-4)
