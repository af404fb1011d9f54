"""The store's reads and the CLI's edges: status lines, late ledger lines, phase matching, times, files."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from daemon.commands.estimate import _catch_up, _match, parse_at, read_plan
from daemon.errors import BatonError
from daemon.estimate_progress import PlannedRow
from daemon.estimate_store import attach, status_lines
from daemon.paths import BatonPaths
from tests.estimate.test_tracking import PLAN, add_usage, iso, usage
from tests.support.ledger_fixtures import run_baton
from tests.support.transcript_writer import assistant_line

HOUR = 3_600_000


def save_plan(tmp_path: Path, env: dict[str, str]) -> int:
    """Write PLAN to tmp_path, save its estimate with the real CLI, and return a time an hour ago in ms."""
    plan = tmp_path / "PLAN.md"
    plan.write_text(PLAN, encoding="utf-8")
    run_baton("estimate", str(plan), "--save", env=env)
    return int(time.time() * 1000) - HOUR


def test_status_lines_are_empty_without_a_ledger(baton_home: Path) -> None:
    assert status_lines(BatonPaths.from_env()) == []


def test_status_lines_show_a_saved_estimate_not_started_yet(
    ledger_env: dict[str, str], tmp_path: Path
) -> None:
    save_plan(tmp_path, ledger_env)
    lines = status_lines(BatonPaths.from_env())
    assert lines == [
        "Plan: Session 7: Export pipeline estimated 92,700 tokens (111,240 with the buffer); "
        "`baton phase start` tracks it"
    ]


def test_a_line_ingested_after_the_phase_ended_is_counted_once_in_its_phase(
    ledger_env: dict[str, str], baton_home: Path, tmp_path: Path
) -> None:
    t0 = save_plan(tmp_path, ledger_env)
    db = baton_home / "baton.db"
    add_usage(db, [usage(t0 + 1000, str(tmp_path), 10_000, 10_000)])
    run_baton("phase", "start", "--project", str(tmp_path), "--at", iso(t0), env=ledger_env)
    ended = run_baton("phase", "end", "--no-ingest", "--at", iso(t0 + HOUR // 2), env=ledger_env)
    assert "actual 20,000 tokens" in ended.stdout
    # a response written during the phase but read into the ledger only now
    add_usage(db, [usage(t0 + 60_000, str(tmp_path / "pkg"), 3_000, 2_000)])
    report = run_baton("report", "estimate", env=ledger_env).stdout
    assert "| 1. Build the exporter | implementation | 63.0k | 25.0k |" in report
    so_far = "**Tokens used so far**: 25,000, 27% of the 92,700 estimated (the session is still running)"
    assert so_far in report


def test_attach_registers_the_status_op(baton_home: Path) -> None:
    ctx = SimpleNamespace(paths=BatonPaths.from_env(), handlers={})
    attach(ctx)  # type: ignore[arg-type]
    assert ctx.handlers["estimate.status"]({"op": "estimate.status"}) == {"ok": True, "lines": []}


def _planned() -> tuple[PlannedRow, ...]:
    return (
        PlannedRow(1, 1, "Build the exporter", "implementation", 1, 1, 1.0, (), 63_000),
        PlannedRow(2, 2, "Write tests", "testing", 0.5, 0.5, 1.0, (), 29_700),
        PlannedRow(3, 3, "Write docs", "polish", 0.5, 0.5, 1.0, (), 10_000),
    )


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("2", 2),
        ("Phase 3", 3),
        ("phase 1", 1),
        ("write TESTS", 2),
        ("exporter", 1),
        ("write", None),
        ("zzz", None),
    ],
)
def test_a_phase_is_found_by_number_name_or_a_unique_part(name: str, number: int | None) -> None:
    found = _match(_planned(), name)
    assert (found.number if found else None) == number


def test_at_accepts_clock_times_and_iso_and_refuses_the_future() -> None:
    zone = ZoneInfo("Europe/Paris")
    now = int(datetime(2026, 1, 6, 15, 0, tzinfo=zone).timestamp() * 1000)
    assert parse_at(None, now, zone) == now
    assert parse_at("14:05", now, zone) == now - 55 * 60_000
    assert parse_at("2026-01-06T14:30", now, zone) == now - 30 * 60_000
    assert parse_at("2026-01-06T13:30+00:00", now, zone) == now - 30 * 60_000
    with pytest.raises(BatonError, match="in the future"):
        parse_at("16:00", now, zone)
    with pytest.raises(BatonError, match="not a time"):
        parse_at("teatime", now, zone)


def test_clock_times_are_read_in_the_zone_given_not_the_process_zone() -> None:
    now = int(datetime(2026, 1, 6, 12, 0, tzinfo=UTC).timestamp() * 1000)  # 21:00 in Tokyo
    assert parse_at("20:00", now, ZoneInfo("Asia/Tokyo")) == now - HOUR
    assert parse_at("11:00", now, UTC) == now - HOUR


def test_a_plan_that_is_not_text_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "PLAN.md"
    bad.write_bytes(b"\xff\xfe\x00### Phase 1")
    with pytest.raises(BatonError, match=r"PLAN\.md: cannot read the plan"):
        read_plan(bad)
    with pytest.raises(BatonError, match="no such plan file"):
        read_plan(tmp_path / "missing.md")


def test_starting_a_phase_ends_the_running_one_and_the_last_planned_phase_ends_the_session(
    ledger_env: dict[str, str], baton_home: Path, tmp_path: Path
) -> None:
    t0 = save_plan(tmp_path, ledger_env)
    add_usage(baton_home / "baton.db", [usage(t0 + 1000, str(tmp_path), 1_000, 1_000)])
    run_baton("phase", "start", "--project", str(tmp_path), "--at", iso(t0), env=ledger_env)
    second = run_baton("phase", "start", "--at", iso(t0 + 600_000), env=ledger_env).stdout
    assert "Phase 1 done: Build the exporter" in second and "actual 2,000 tokens" in second
    assert "Started phase 2/2: Write tests" in second
    assert f"Counting usage in {tmp_path}." in second  # the session's directory, not this command's
    extra = run_baton("phase", "start", "docs", "--at", iso(t0 + 1_200_000), env=ledger_env).stdout
    assert "Phase 2 done: Write tests" in extra
    assert "Started phase docs (polish; not in the plan, so no estimate) in docs" in extra
    report = run_baton("report", "estimate", "1", env=ledger_env).stdout
    assert "(finished)" in report and "**Tokens used**: 2,000 (estimated 92,700" in report
    assert "1 (in progress)" not in report
    assert status_lines(BatonPaths.from_env())[0] == "Plan: docs"


def test_two_planned_phases_with_one_name_are_taken_in_order() -> None:
    planned = (
        PlannedRow(1, 1, "Tests", "testing", 1, 1, 1.0, (), 30_000),
        PlannedRow(2, 2, "Build", "implementation", 1, 1, 1.0, (), 70_000),
        PlannedRow(3, 3, "Tests", "testing", 1, 1, 1.0, (), 30_000),
    )
    assert _match(planned, "tests", set()) is planned[0]
    assert _match(planned, "Tests", {1}) is planned[2]


def test_a_tracked_planned_phase_cannot_be_started_again(ledger_env: dict[str, str], tmp_path: Path) -> None:
    t0 = save_plan(tmp_path, ledger_env)
    run_baton("phase", "start", "1", "--all-projects", "--at", iso(t0), env=ledger_env)
    again = run_baton("phase", "start", "1", "--at", iso(t0 + 60_000), env=ledger_env, check=False)
    assert again.returncode == 1 and "was already tracked" in again.stderr and "continued" in again.stderr


def test_report_and_messages_show_times_in_the_configured_zone_not_the_process_zone(
    ledger_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**ledger_env, "TZ": "UTC", "BATON_GENERAL__TIMEZONE": "Asia/Tokyo"}
    t0 = save_plan(tmp_path, env)
    run_baton("phase", "start", "--all-projects", "--at", iso(t0), env=env)
    run_baton("phase", "end", "--no-ingest", "--at", iso(t0 + 600_000), env=env)
    tokyo = datetime.fromtimestamp(t0 / 1000, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    report = run_baton("report", "estimate", env=env).stdout
    assert f"{tokyo} JST to -" in report
    overlap = run_baton("phase", "start", "--at", iso(t0), env=env, check=False)
    ended = datetime.fromtimestamp((t0 + 600_000) / 1000, ZoneInfo("Asia/Tokyo")).strftime("%H:%M:%S JST")
    assert f"the previous phase ended at {ended}" in overlap.stderr


def test_a_daemon_that_does_not_answer_is_an_error_that_says_how_to_go_on(baton_home: Path) -> None:
    paths = BatonPaths.from_env()
    paths.ensure()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(paths.socket_path))
        listener.listen(1)  # connects, never answers
        with pytest.raises(BatonError, match="cannot ask the daemon") as caught:
            _catch_up(paths)
    assert "--no-ingest" in (caught.value.hint or "")


ENDED = "Phase 1 done: Build the exporter\nEstimated 63,000, actual 2,000 tokens"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("end",), ENDED),
        (("start", "next"), ENDED),
        (("finish",), ENDED),
        (("status",), "Build the exporter (implementation): 2,000 of 63,000 estimated (3%)"),
    ],
)
def test_without_a_daemon_the_new_transcript_lines_are_read_before_usage_is_shown(
    ledger_env: dict[str, str], claude_dir: Path, tmp_path: Path, command: tuple[str, ...], expected: str
) -> None:
    t0 = save_plan(tmp_path, ledger_env)
    run_baton("phase", "start", "--all-projects", "--at", iso(t0), env=ledger_env)
    line = assistant_line(
        1,
        ts=datetime.fromtimestamp(t0 / 1000 + 60, UTC),
        input_tokens=1_200,
        output_tokens=800,
        cache_1h=0,
        cwd=str(tmp_path),
    )
    transcript = claude_dir / "projects" / "-tmp-proj" / "s-1.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(line)
    ended = run_baton("phase", *command, env=ledger_env).stdout
    assert expected in ended
