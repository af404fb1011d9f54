"""The launcher: prompts reach claude byte for byte, long prompts go through a file, every flag is one the
real claude accepts, and every launch is recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon import handoff as ho
from daemon import memory
from daemon.config import LaunchSettings
from daemon.db import open_ledger
from daemon.errors import BatonError
from daemon.launch import PROMPT_INLINE_MAX, build_prompt, claude_args, execute, plan_launch
from daemon.launch_store import recent
from daemon.paths import BatonPaths
from tests.handoff.conftest import Daemons, FakeClaude, run_baton, tmux_sessions, write_handoff
from tests.support.real import require_real

NASTY = (
    'it\'s "quoted" $(touch PWNED) `id` ; rm -rf ~ && echo $HOME * \\n\nnew line\ttab ünïcødé ✅ 日本語 \\'
)


def expected_prompt(paths: BatonPaths, handoff: Path) -> str:
    text = handoff.read_text()
    h = ho.parse(text)
    summary = memory.summary(memory.load(paths, h.project), skip=(*h.accomplished, *h.decisions))
    return build_prompt(ho.body_of(text), summary, h.project)


@pytest.mark.slow
def test_a_prompt_full_of_shell_syntax_arrives_byte_identical_in_tmux(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str
) -> None:
    handoff = write_handoff(project, "--blockers", NASTY, "--decision", NASTY, "--instructions", NASTY)
    want = expected_prompt(paths, handoff)
    out = run_baton("launch", "now", handoff.stem)
    assert "tmux attach -t baton-my-app" in out.stdout
    [call] = fake_claude.wait_for(1)
    assert call["argv"][-1] == want.encode("utf-8")
    assert NASTY in call["argv"][-1].decode()
    assert call["cwd"] == str(project)
    assert not (project / "PWNED").exists() and not Path("PWNED").exists()
    assert call["baton_home"] == str(paths.home)  # passed with tmux -e
    assert ho.load(handoff).status == "launched"


@pytest.mark.slow
def test_a_100_kb_handoff_launches_through_a_prompt_file(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str
) -> None:
    big = "\n".join(f"line {i}: {NASTY}" for i in range(1200))
    assert len(big.encode()) > 100_000
    data = {
        "project": str(project),
        "objectives": ["Integrate auth ~15k"],
        "blockers": big,
        "start": "manual",
    }
    handoff = Path(run_baton("handoff", "new", "--from-json", "-", input=json.dumps(data)).stdout.strip())
    want = expected_prompt(paths, handoff)
    run_baton("launch", "now", str(handoff))
    [call] = fake_claude.wait_for(1)
    argv = [a.decode() for a in call["argv"]]
    prompt_file = handoff.with_name(f"{handoff.stem}.prompt.md")
    assert argv[argv.index("--add-dir") + 1] == str(prompt_file.parent)
    assert str(prompt_file) in argv[-1] and len(argv[-1].encode()) < PROMPT_INLINE_MAX
    assert prompt_file.read_bytes() == want.encode()
    assert oct(prompt_file.stat().st_mode & 0o777) == "0o600"
    assert "baton-my-app" in tmux_sessions(tmux)


@pytest.mark.slow
def test_headless_launch_logs_output_and_records_the_exit_status(
    paths: BatonPaths,
    project: Path,
    fake_claude: FakeClaude,
    daemons: Daemons,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATON_LAUNCH__MODE", "headless")
    monkeypatch.setenv("FAKE_CLAUDE_SLEEP", "0.2")
    monkeypatch.setenv("FAKE_CLAUDE_EXIT", "3")
    handoff = write_handoff(project)
    daemons.start()
    reply = json.loads(run_baton("launch", "now", handoff.stem, "--json").stdout)
    assert reply["mode"] == "headless" and reply["pid"] > 0
    [call] = fake_claude.wait_for(1)
    assert call["argv"][:3] == [b"-p", b"--output-format", b"text"]
    engine = open_ledger(paths.ledger_db)
    deadline = time.monotonic() + 10
    while (record := recent(engine)[0]).exit_code is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (record.status, record.exit_code, record.trigger) == ("exited", 3, "manual")
    assert Path(reply["log_path"]).read_text() == "fake claude started\n"
    [listed] = json.loads(run_baton("launch", "list", "--json").stdout)
    assert (listed["handoff_id"], listed["mode"], listed["exit_code"]) == (handoff.stem, "headless", 3)
    assert "exit 3" in run_baton("launch", "list").stdout


@pytest.mark.slow
def test_a_failed_start_is_recorded_and_the_handoff_stays_pending(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmux: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handoff = write_handoff(project)
    # a second session of the same name would make tmux fail; baton picks a free name instead
    subprocess.run([tmux, "new-session", "-d", "-s", "baton-my-app", "sleep", "30"], check=True)
    run_baton("launch", "now", handoff.stem)
    assert "baton-my-app-2" in tmux_sessions(tmux)
    other = write_handoff(project)
    monkeypatch.setenv("BATON_LAUNCH__TMUX_PATH", "/bin/false")
    out = run_baton("launch", "now", other.stem, check=False)
    assert out.returncode == 1 and "Launch failed" in out.stdout
    assert ho.load(other).status == "pending"
    assert recent(open_ledger(paths.ledger_db))[0].status == "failed"


@pytest.mark.slow
def test_a_project_path_with_tmux_format_syntax_is_taken_literally(
    tmp_path: Path, fake_claude: FakeClaude, tmux: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tmux expands formats in `new-session -c`: unescaped, `#(cmd)` in a directory name runs cmd in a shell.
    folder = tmp_path / "app #(touch pwned-tmux) #{pane_pid} ## $(touch pwned-sh) 'q'"
    folder.mkdir()
    monkeypatch.setenv("FAKE_CLAUDE_SLEEP", "0")
    prompt = f"{NASTY} #(touch {tmp_path}/pwned-prompt) #{{session_name}}"
    plan = plan_launch(
        LaunchSettings(), mode="tmux", project=str(folder), prompt=prompt, claude_path=str(fake_claude.path),
        tmux_path=tmux, env={"PATH": os.environ["PATH"], "BATON_HOME": "#(touch pwned-env)"},
    )  # fmt: skip
    result, _ = execute(plan)
    assert result.ok, result.error
    [call] = fake_claude.wait_for(1)
    assert call["cwd"] == str(folder) and call["argv"][-1] == prompt.encode()
    assert call["baton_home"] == "#(touch pwned-env)"
    time.sleep(0.5)  # a format job would have run by now
    places = (tmp_path, folder, Path.home(), Path.cwd(), Path("/tmp"))
    assert not [p for d in places for p in d.glob("pwned-*")]


def test_permissions_are_bypassed_only_when_configured() -> None:
    assert "--permission-mode" not in claude_args(LaunchSettings(), "p", headless=False)
    assert not any("dangerously" in a for a in claude_args(LaunchSettings(), "p", headless=True))
    configured = claude_args(LaunchSettings(permission_mode="bypassPermissions"), "p", headless=False)
    assert configured[:2] == ["--permission-mode", "bypassPermissions"]
    # nor through a handoff's agent header that looks like a flag
    with pytest.raises(BatonError, match="not an agent name"):
        claude_args(LaunchSettings(), "p", headless=False, agent="--dangerously-skip-permissions")


@pytest.mark.slow
def test_every_flag_the_launcher_passes_is_accepted_by_the_real_claude(tmp_path: Path) -> None:
    claude = require_real("claude")
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}  # empty HOME: offline, not logged in
    help_text = subprocess.run([claude, "--help"], capture_output=True, text=True, env=env, check=True).stdout
    settings = LaunchSettings(agent="reviewer", model="sonnet", permission_mode="acceptEdits")
    for headless in (False, True):
        args = claude_args(
            settings, "hi", headless=headless, agent="planner", add_dirs=["/tmp"], name="baton: x"
        )
        for flag in (a for a in args if a.startswith("-") and a != "--"):
            assert re.search(rf"(^|[\s,]){re.escape(flag)}[\s,=]", help_text), f"{flag} not in claude --help"
    modes = typing.get_args(typing.get_args(LaunchSettings.model_fields["permission_mode"].annotation)[0])
    assert modes and all(mode in help_text for mode in modes)
    # The parser itself: the whole headless command line is accepted, and claude gets as far as the login.
    settings = LaunchSettings(agent="general-purpose", model="sonnet", permission_mode="acceptEdits")
    args = claude_args(settings, "hi -- --not-a-flag", headless=True, add_dirs=["/tmp"], name="baton: x")
    out = subprocess.run([claude, *args], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert "Not logged in" in out.stdout + out.stderr, out.stdout + out.stderr


def test_launch_records_are_kept_per_handoff(paths: BatonPaths) -> None:
    from daemon.launch_store import record

    engine = open_ledger(paths.ledger_db)
    now = datetime(2026, 11, 23, 18, tzinfo=UTC)
    record(
        engine,
        now=now,
        handoff_id="a",
        handoff_path="/h/a.md",
        project="/p",
        trigger="scheduled",
        mode="tmux",
        argv=["tmux", "new-session"],
        tmux_session="baton-p",
        pid=42,
        log_path=None,
        error=None,
    )
    record(
        engine,
        now=now,
        handoff_id="b",
        handoff_path="/h/b.md",
        project="/p",
        trigger="manual",
        mode="headless",
        argv=["claude", "-p"],
        tmux_session=None,
        pid=None,
        log_path="/l",
        error="cannot start",
    )
    [a] = recent(engine, handoff_id="a")
    assert (a.pid, a.status, a.argv, a.ts) == (42, "started", ("tmux", "new-session"), now)
    assert recent(engine)[0].status == "failed"
