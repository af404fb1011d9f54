"""The handoff, schedule, memory and claude commands as a person (or Claude) runs them: real subprocesses."""

from __future__ import annotations

import json
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon import claude_commands
from daemon import handoff as ho
from daemon.errors import BatonError
from daemon.paths import BatonPaths
from daemon.scheduler import Readiness, quota_ready, reset_time, status_lines
from daemon.when import parse_duration, parse_when
from tests.handoff.conftest import run_baton, write_handoff

NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def test_handoff_new_from_flags_prints_the_path_and_fills_the_state_from_git(
    paths: BatonPaths, project: Path
) -> None:
    out = run_baton(
        "handoff",
        "new",
        "--project",
        str(project),
        "--accomplished",
        "Built the JWT endpoints",
        "--accomplished",
        "Added 15 tests",
        "--state",
        "login works; refresh half done",
        "--tests",
        "15/15",
        "--objective",
        "Integrate auth ~15k",
        "--objective",
        "Refresh tokens (est. 18,000 tokens)",
        "--blockers",
        "None",
        "--decision",
        "JWT over sessions",
        "--file",
        "src/auth.py",
        "--command",
        "pytest -q",
        "--agent",
        "implementer",
        "--start",
        "manual",
    )
    path = Path(out.stdout.strip())
    assert out.stdout == f"{path}\n" and path.is_relative_to(paths.handoffs_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    h = ho.load(path)
    assert (h.project, h.branch, h.status, h.start, h.agent) == (
        str(project),
        "feature/auth",
        "pending",
        "manual",
        "implementer",
    )
    assert h.state.last_commit is not None and h.state.last_commit.endswith(" Add JWT endpoints")
    assert h.state.files_modified == ("pyproject.toml",)
    assert (h.state.tests, h.state.notes) == ("15/15", "login works; refresh half done")
    assert [o.estimate_tokens for o in h.objectives] == [15_000, 18_000] and h.estimate_tokens == 33_000
    assert "baton launch now" in out.stderr


def test_handoff_new_from_json_on_stdin_as_claude_writes_it(paths: BatonPaths, project: Path) -> None:
    data = {
        "title": "Auth phase 2",
        "accomplished": ["Built endpoints"],
        "state": "all green",
        "tests": "42/42",
        "objectives": [{"text": "Integrate", "estimate": 15000}, "Refresh tokens ~5k"],
        "estimate": 25000,
        "decisions": ["JWT"],
        "blockers": "none",
        "files": ["a.py"],
        "commands": ["make test"],
        "instructions": "Be brief.",
        "start": "manual",
        "project": str(project),
        "session_id": "abc-123",
    }
    out = run_baton("handoff", "new", "--from-json", "-", input=json.dumps(data))
    h = ho.load(Path(out.stdout.strip()))
    assert (h.title, h.from_session, h.estimate_tokens, h.commands) == (
        "Auth phase 2",
        "abc-123",
        25000,
        ("make test",),
    )
    assert [(o.text, o.estimate_tokens) for o in h.objectives] == [
        ("Integrate", 15000),
        ("Refresh tokens", 5000),
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"objective": ["x"]}), "unknown key(s) objective"),
        (json.dumps({"objectives": [{"text": "x", "estimate": "lots"}]}), "'objectives[0].estimate'"),
        (json.dumps({"accomplished": 3}), "'accomplished' must be a list, got a number"),
        (json.dumps({"title": 5}), "'title' must be a string, got a number"),
        (json.dumps({"objectives": "x"}), "'objectives' must be a list, got a string"),
        (json.dumps({"files": ["a.py", None]}), "'files[1]' must be a string, got null"),
        (json.dumps({"estimate": True}), "'estimate' must be a whole number of tokens"),
        (json.dumps({"state": {"tests": 42}}), "'state.tests' must be a string, got a number"),
    ],
)
def test_bad_json_input_is_a_clean_error_naming_the_key(
    paths: BatonPaths, project: Path, payload: str, message: str
) -> None:
    out = run_baton(
        "handoff", "new", "--project", str(project), "--from-json", "-", input=payload, check=False
    )
    assert out.returncode == 1 and message in out.stderr and "Traceback" not in out.stderr
    assert list(ho.iter_paths(paths)) == []


def test_handoff_new_asks_for_each_part_interactively(paths: BatonPaths, project: Path) -> None:
    answers = "Built it\nall green\nFirst ~10k\nSecond\n\n20k\nnone\n4\n"
    out = run_baton("handoff", "new", "--project", str(project), "--interactive", input=answers)
    h = ho.load(Path(out.stdout.strip().splitlines()[-1]))
    assert h.accomplished == ("Built it",) and h.state.notes == "all green"
    assert [(o.text, o.estimate_tokens) for o in h.objectives] == [("First", 10_000), ("Second", None)]
    assert (h.estimate_tokens, h.blockers, h.start) == (20_000, "none", "manual")


def test_list_show_and_cancel(paths: BatonPaths, project: Path) -> None:
    first = write_handoff(project)
    second = write_handoff(project, "--title", "Second one")
    listing = json.loads(run_baton("handoff", "list", "--json").stdout)
    assert [h["id"] for h in listing] == [second.stem, first.stem]
    assert run_baton("handoff", "show", first.stem).stdout == first.read_text()
    assert run_baton("handoff", "show", "--path", second.stem).stdout.strip() == str(second)
    run_baton("handoff", "cancel", first.stem)
    assert ho.load(first).status == "cancelled"
    again = run_baton("handoff", "cancel", first.stem, check=False)
    assert again.returncode == 1 and "already cancelled" in again.stderr
    pending = json.loads(run_baton("handoff", "list", "--json", "--status", "pending").stdout)
    assert [h["id"] for h in pending] == [second.stem]
    missing = run_baton("handoff", "show", "nope", check=False)
    assert missing.returncode == 1 and "no handoff matches 'nope'" in missing.stderr


def test_edit_runs_the_editor_without_a_shell_and_checks_the_result(
    paths: BatonPaths, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handoff = write_handoff(project)
    tools = tmp_path / "my tools $(x)"
    tools.mkdir()
    editor = tools / "ed it"
    editor.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\np = pathlib.Path(sys.argv[-1])\n"
        "p.write_text(p.read_text().replace('Integrate auth', sys.argv[1]))\n"
    )
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", f"'{editor}' 'Wire up auth; `x`'")
    run_baton("handoff", "edit", handoff.stem)
    assert ho.load(handoff).objectives[0].text == "Wire up auth; `x`"
    editor.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\npathlib.Path(sys.argv[-1]).write_text('junk')\n"
    )
    before = handoff.read_text()
    out = run_baton("handoff", "edit", handoff.stem, check=False)
    assert out.returncode == 1 and "the handoff is unchanged" in out.stderr
    assert handoff.read_text() == before


def test_a_plain_markdown_file_is_adopted_when_scheduled(
    paths: BatonPaths, project: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "next.md"
    notes.write_text("# Next\n\nFinish the parser; run `make test` first.\n")
    out = run_baton("schedule", "--at", "+1h", "--handoff", str(notes), "--project", str(project))
    assert "not running" in out.stderr
    [stored] = list(ho.iter_paths(paths))
    h = ho.load(stored)
    assert (h.project, h.status, h.title) == (str(project), "pending", "next")
    assert ho.body_of(stored.read_text()) == notes.read_text()
    jobs = json.loads(run_baton("schedule", "list", "--json").stdout)
    assert {j["kind"] for j in jobs} == {"launch", "reminder"}
    assert all(set(j) >= {"id", "kind", "run_at", "handoff", "project"} for j in jobs)
    assert any(line.startswith("Next launch   my app ü at ") for line in status_lines(paths))


def test_schedule_needs_a_known_reset_time_without_a_daemon(paths: BatonPaths, project: Path) -> None:
    handoff = write_handoff(project)
    out = run_baton("schedule", "--at-reset", "--handoff", handoff.stem, check=False)
    assert out.returncode == 1 and "reset time is not known" in out.stderr
    bad = run_baton("schedule", "--at", "tomorrowish", "--handoff", handoff.stem, check=False)
    assert bad.returncode == 1 and "not a time: 'tomorrowish'" in bad.stderr


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("+90s", NOW + timedelta(seconds=90)),
        ("in 5m", NOW + timedelta(minutes=5)),
        ("in 1h 30m", NOW + timedelta(minutes=90)),
        ("+2 hours", NOW + timedelta(hours=2)),
        ("19:05", datetime(2026, 11, 23, 18, 5, tzinfo=UTC)),  # Paris is UTC+1 in November
        ("18:15", datetime(2026, 11, 23, 17, 15, tzinfo=UTC) + timedelta(days=1)),  # passed today: tomorrow
        ("6:05pm", datetime(2026, 11, 24, 17, 5, tzinfo=UTC)),
        ("2026-11-23T20:00", datetime(2026, 11, 23, 19, tzinfo=UTC)),
        ("2026-11-23T20:00:00+00:00", datetime(2026, 11, 23, 20, tzinfo=UTC)),
    ],
)
def test_times_are_read_as_relative_local_clock_or_iso(text: str, want: datetime) -> None:
    assert parse_when(text, NOW, PARIS) == want


@pytest.mark.parametrize("text", ["soon", "+5", "25:00", "13:00pm", "2026-11-23T10:00", "in 5 parsecs", "+"])
def test_bad_times_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(BatonError, match=r"not a|past"):
        parse_when(text, NOW, PARIS)


def test_durations() -> None:
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("0") == timedelta(0)
    with pytest.raises(BatonError, match="not a duration"):
        parse_duration("5 lightyears")


def test_quota_readiness() -> None:
    later = (NOW + timedelta(hours=1)).isoformat()
    assert quota_ready(None, NOW, 50).ready
    assert quota_ready({"reset_at": (NOW - timedelta(seconds=1)).isoformat(), "limited": True}, NOW, 50).ready
    assert not quota_ready({"reset_at": later, "limited": True, "percent": 3}, NOW, 50).ready
    assert not quota_ready({"reset_at": later, "limited": False, "percent": 50}, NOW, 50).ready
    assert quota_ready({"reset_at": later, "limited": False, "percent": 49.9}, NOW, 50).ready
    week = {"limited": True, "reset_at": (NOW + timedelta(days=2)).isoformat()}
    weekly_hit = {"reset_at": (NOW - timedelta(seconds=1)).isoformat(), "percent": 0, "weekly": week}
    assert quota_ready(weekly_hit, NOW, 50) == Readiness(False, "the weekly limit is in force")


def test_the_quota_is_back_at_the_weekly_reset_when_the_week_is_used_up(paths: BatonPaths) -> None:
    five = NOW + timedelta(hours=1)
    week = NOW + timedelta(days=2)
    snap = {"reset_at": five.isoformat(), "active": True, "limited": True, "weekly": {"limited": False}}
    assert reset_time(snap) == five
    snap["weekly"] = {"limited": True, "reset_at": week.isoformat()}
    assert reset_time(snap) == week
    assert reset_time({"reset_at": five.isoformat(), "active": False}) is None


def test_install_commands_merges_and_never_overwrites_a_persons_file(
    paths: BatonPaths, claude_dir: Path, home_dir: Path
) -> None:
    folder = claude_dir / "commands"
    folder.mkdir()
    (folder / "session-status.md").write_text("my own status command\n")
    out = run_baton("claude", "install-commands")
    assert "/plan-next-session: installed" in out.stdout and "/session-status: left alone" in out.stdout
    assert (folder / "session-status.md").read_text() == "my own status command\n"
    plan = (folder / "plan-next-session.md").read_text()
    assert (
        plan.startswith("---\ndescription: ") and 'baton handoff new --project "$PWD" --from-json -' in plan
    )
    assert (
        "installed by baton" in plan
        and "already up to date" in run_baton("claude", "install-commands").stdout
    )
    # an older baton's file, untouched since: updated; the same file edited by the person: kept
    old = claude_commands.with_marker("---\ndescription: old\n---\nold text\n")
    (folder / "plan-next-session.md").write_text(old)
    assert "/plan-next-session: updated" in run_baton("claude", "install-commands").stdout
    edited = (folder / "plan-next-session.md").read_text() + "my addition\n"
    (folder / "plan-next-session.md").write_text(edited)
    assert "you edited it" in run_baton("claude", "install-commands").stdout
    assert (folder / "plan-next-session.md").read_text() == edited


def test_memory_gathers_sessions_from_the_ledger_and_handoffs(
    paths: BatonPaths, project: Path, claude_dir: Path
) -> None:
    slug = "-" + str(project).strip("/").replace("/", "-").replace(" ", "-")
    folder = claude_dir / "projects" / slug
    folder.mkdir()
    lines = []
    for i, (sid, minute) in enumerate([("s-1", 0), ("s-1", 30), ("s-2", 90)]):
        ts = (NOW + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(
            {
                "type": "assistant",
                "sessionId": sid,
                "cwd": str(project),
                "timestamp": ts,
                "requestId": f"r{i}",
                "message": {
                    "id": f"m{i}",
                    "model": "claude-sonnet-4-5",
                    "usage": {
                        "input_tokens": 1000,
                        "output_tokens": 500,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            }
        )
    for sid in ("s-1", "s-2"):  # a transcript file is one session
        mine = [line for line in lines if line["sessionId"] == sid]
        (folder / f"{sid}.jsonl").write_text(
            "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in mine)
        )
    run_baton("ingest")
    write_handoff(project, "--decision", "Keep the API stateless")
    data = json.loads(run_baton("memory", "show", str(project), "--json").stdout)
    assert [(s["id"], s["tokens"]) for s in data["sessions"]] == [("s-1", 3000), ("s-2", 1500)]
    assert data["accomplishments"] == ["Built the JWT endpoints"]
    assert data["decisions"] == ["Keep the API stateless"] and data["next_objectives"] == ["Integrate auth"]
    assert data["tech_stack"] == ["Python"]
    text = run_baton("memory", "show", str(project)).stdout
    assert "Sessions seen: 2 (4.5k tokens in all)" in text and "Integrate auth" in text


def test_an_empty_handoff_is_refused(paths: BatonPaths, project: Path) -> None:
    out = run_baton("handoff", "new", "--project", str(project), input="", check=False)
    assert out.returncode == 1 and "nothing to hand off" in out.stderr
    assert list(ho.iter_paths(paths)) == []
