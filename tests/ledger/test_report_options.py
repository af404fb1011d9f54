"""Report options do what their help says: blocks --breakdown, block times in the display zone, CSV for
machines, the trends help line, and plain warning lines from one-shot commands."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledger_fixtures import ROOT, run_baton
from tests.support.transcript_writer import BASE_TS, assistant_line

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5-20250929"


def write(claude_dir: Path, name: str, *lines: bytes) -> Path:
    path = claude_dir / "projects" / "-home-me-app" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def two_blocks(claude_dir: Path) -> None:
    """Block 1 at 21:00 UTC (2 sonnet responses, 1 haiku), block 2 at 03:00 UTC next day (1 haiku)."""
    write(
        claude_dir,
        "s.jsonl",
        assistant_line(1),
        assistant_line(2, model=HAIKU, cache_read=777),
        assistant_line(3, input_tokens=3, output_tokens=7),
        assistant_line(4, model=HAIKU, ts=BASE_TS + timedelta(hours=6, minutes=30)),
    )


def report(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_baton("report", *args, env=env)


def csv_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---- 1. blocks --breakdown -----------------------------------------------------------------------


def test_blocks_breakdown_shows_a_row_per_model_in_table_json_and_csv(
    ledger_env: dict[str, str], claude_dir: Path
) -> None:
    two_blocks(claude_dir)
    plain = report(ledger_env, "blocks", "-z", "UTC").stdout
    table = report(ledger_env, "blocks", "--breakdown", "-z", "UTC").stdout.splitlines()
    assert "└─" not in plain and len(table) == len(plain.splitlines()) + 3
    first = next(i for i, line in enumerate(table) if line.startswith("2026-02-10 21:00"))
    subs = table[first + 1 : first + 3]
    assert all(line.startswith("  └─") for line in subs)
    assert "sonnet-4-5-20250929" in subs[0] and "haiku-4-5-20251001" in subs[1]  # most cost first
    assert re.search(r"\s2\s+12,120\s", subs[0]) and re.search(r"\s1\s+1,887\s", subs[1])  # entries, tokens
    assert table[first + 3].startswith("2026-02-11 02:00") and "gap" in table[first + 3]

    blocks = json.loads(report(ledger_env, "blocks", "--json", "--breakdown", "-z", "UTC").stdout)["blocks"]
    for b in blocks:
        parts = b["modelBreakdowns"]
        assert [m["modelName"] for m in parts] == sorted(b["models"], key=lambda m: m != SONNET)
        assert sum(m["entries"] for m in parts) == b["entries"]
        for key, field in (("inputTokens", "inputTokens"), ("cacheReadTokens", "cacheReadInputTokens")):
            assert sum(m[key] for m in parts) == b["tokenCounts"][field]
        assert sum(m["cost"] for m in parts) == pytest.approx(b["costUSD"])
    # Without --breakdown the JSON stays ccusage's, field for field.
    assert all(
        "modelBreakdowns" not in b
        for b in json.loads(report(ledger_env, "blocks", "--json").stdout)["blocks"]
    )

    rows = csv_of(report(ledger_env, "blocks", "--csv", "--breakdown", "-z", "UTC").stdout)
    assert rows[0][:4] == ["Block start", "Status", "Model", "Entries"]
    assert [r[2] for r in rows[1:4]] == ["", SONNET, HAIKU]
    assert rows[1][0] == rows[2][0] == rows[3][0] == "2026-02-10T21:00:00+00:00"
    assert rows[-1][0] == "Total" and int(rows[-1][3]) == 4


# ---- 2. block times in the display zone ------------------------------------------------------------


def test_block_times_are_shown_in_the_display_zone_which_the_header_names(
    ledger_env: dict[str, str], claude_dir: Path
) -> None:
    two_blocks(claude_dir)
    tokyo = report(ledger_env, "blocks", "-z", "Asia/Tokyo").stdout.splitlines()
    assert tokyo[0].startswith("Block start (Asia/Tokyo)")
    assert any(line.startswith("2026-02-11 06:00 ") for line in tokyo)  # 21:00 UTC
    new_york = run_baton("report", "blocks", env={**ledger_env, "TZ": "America/New_York"}).stdout
    assert new_york.startswith("Block start (America/New_York)") and "\n2026-02-10 16:00 " in new_york
    utc = report(ledger_env, "blocks", "-z", "UTC").stdout
    assert utc.startswith("Block start (UTC)") and "\n2026-02-10 21:00 " in utc
    rows = csv_of(report(ledger_env, "blocks", "--csv", "-z", "Asia/Kolkata").stdout)
    assert rows[1][0] == "2026-02-11T02:30:00+05:30"


def test_blocks_json_is_ccusage_utc_whatever_the_display_zone(
    baton_home: Path, real_corpus: Path, golden_dir: Path
) -> None:
    env = {"BATON_HOME": str(baton_home), "CLAUDE_CONFIG_DIR": str(real_corpus)}
    utc = report(env, "blocks", "--json", "-z", "UTC").stdout
    assert report(env, "blocks", "--json", "-z", "Asia/Tokyo").stdout == utc
    assert run_baton("report", "blocks", "--json", env={**env, "TZ": "America/New_York"}).stdout == utc
    golden = json.loads((golden_dir / "blocks.json").read_text())["blocks"]
    ours = json.loads(utc)["blocks"]
    assert [(b["id"], b["startTime"], b["endTime"]) for b in ours] == [
        (b["id"], b["startTime"], b["endTime"]) for b in golden
    ]
    assert all(sorted(a) == sorted(b) for a, b in zip(ours, golden, strict=True))


# ---- 3. CSV for machines -------------------------------------------------------------------------


def test_csv_has_a_model_column_and_full_precision_plain_numbers(
    ledger_env: dict[str, str], claude_dir: Path
) -> None:
    two_blocks(claude_dir)
    data = json.loads(report(ledger_env, "daily", "--json", "-z", "UTC").stdout)
    text = report(ledger_env, "daily", "--csv", "--breakdown", "-z", "UTC").stdout
    assert "└" not in text and "$" not in text
    rows = csv_of(text)
    assert rows[0] == [
        "Date", "Model", "Input", "Output", "Cache Create", "Cache Read", "Total Tokens", "Cost (USD)",
    ]  # fmt: skip
    for r in rows[1:]:
        [int(c) for c in r[2:7]]  # plain integers: no thousands separators
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    for day in data["daily"]:
        own = by_key[(day["period"], "")]
        assert float(own[7]) == day["totalCost"] and int(own[6]) == day["totalTokens"]
        for m in day["modelBreakdowns"]:
            assert float(by_key[(day["period"], m["modelName"])][7]) == m["cost"]  # every digit, not cents
    assert any(len(r[7].split(".")[-1]) > 2 for r in rows[1:])
    assert float(by_key[("Total", "")][7]) == data["totals"]["totalCost"]
    plain = csv_of(report(ledger_env, "daily", "--csv", "-z", "UTC").stdout)
    assert plain[0][1] == "Models" and plain[1][1] == f"{HAIKU}, {SONNET}"


def test_plain_numbers_never_use_exponents() -> None:
    from daemon.usage_reports import plain_number

    assert plain_number(1e-05) == "0.00001"
    assert plain_number(0.007569) == "0.007569"
    assert plain_number(0.1 + 0.2) == "0.30000000000000004"
    assert plain_number(0.0) == "0.0"


# ---- 4. the trends help line ---------------------------------------------------------------------


def test_report_help_says_what_trends_prints(ledger_env: dict[str, str]) -> None:
    text = run_baton("report", "--help", env=ledger_env).stdout
    line = next(line for line in text.splitlines() if line.strip().startswith("trends"))
    assert "7-day rolling average" in line and "Week-by-week" not in text


# ---- 5. plain warning lines from one-shot commands -----------------------------------------------


def _no_timestamp_line() -> bytes:
    entry: dict[str, Any] = json.loads(assistant_line(2))
    del entry["timestamp"]
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def test_ingest_prints_each_skipped_line_as_one_plain_line(
    ledger_env: dict[str, str], claude_dir: Path, baton_home: Path
) -> None:
    path = write(claude_dir, "s.jsonl", assistant_line(1), _no_timestamp_line())
    out = run_baton("ingest", env=ledger_env)
    assert out.stderr.splitlines() == [f"baton: warning: skipped {path}:2: usage without a timestamp"]
    assert out.stdout.startswith("1 files (1 read") and "1 skipped lines" in out.stdout
    logged = [json.loads(line) for p in baton_home.rglob("baton.log") for line in p.read_text().splitlines()]
    assert any(
        r["event"].startswith("skipped ") and r["level"] == "warning" and r["timestamp"] for r in logged
    )
    assert run_baton("ingest", "--json", env=ledger_env).stderr == ""


def test_ingest_warnings_on_a_terminal_are_plain_too(ledger_env: dict[str, str], claude_dir: Path) -> None:
    path = write(claude_dir, "s.jsonl", assistant_line(1), _no_timestamp_line())
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "daemon", "ingest"],
            cwd=ROOT,
            env={**os.environ, **ledger_env},
            stdout=subprocess.PIPE,
            stderr=terminal,
            check=True,
        )
        os.close(terminal)
        terminal = -1
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    seen = b"".join(chunks).decode().replace("\r\n", "\n")
    assert seen == f"baton: warning: skipped {path}:2: usage without a timestamp\n"
    assert "1 skipped lines" in proc.stdout.decode()


def test_local_times_follow_dst_and_zones_are_named() -> None:
    from zoneinfo import ZoneInfo

    from daemon.timeutil import local_iso, local_minute, zone_label

    ms = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp() * 1000)
    paris = ZoneInfo("Europe/Paris")
    assert local_minute(ms, paris) == "2026-03-29 01:30"  # before the spring change
    assert local_iso(ms + 3_600_000, paris) == "2026-03-29T03:30:00+02:00"  # after it
    assert zone_label(paris) == "Europe/Paris" and zone_label(UTC) == "UTC"
