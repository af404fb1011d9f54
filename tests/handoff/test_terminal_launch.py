"""macOS Terminal/iTerm launches: the new window's shell (the user's login shell: sh, bash, zsh, fish,
tcsh...) is given one fixed command, `exec /bin/sh <plain path>`, holding nothing from the handoff, the
project path or the configuration; the launcher script behind it hands claude its argv byte for byte and
removes itself.

osascript cannot run here, so the tests stop at its boundary: the AppleScript and the command it is given,
then that exact command run for real by each shell installed, and end to end through `baton launch now` with a
stand-in osascript that does what Terminal does (runs the command in a login shell)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon import handoff as ho
from daemon import launch
from daemon.config import LaunchSettings, load_settings
from daemon.db import open_ledger
from daemon.launch import (
    LAUNCHER_NAME,
    LAUNCHER_PREFIX,
    build_prompt,
    make_launcher_dir,
    plan_launch,
    sweep_launchers,
    write_launcher,
)
from daemon.launch_store import recent
from daemon.paths import BatonPaths
from tests.handoff.conftest import FakeClaude, run_baton, write_handoff
from tests.handoff.test_launcher import NASTY, expected_prompt

SAFE_COMMAND = re.compile(r"exec /bin/sh /[A-Za-z0-9._/-]+")
SHELLS = ("sh", "dash", "bash", "zsh", "fish", "tcsh")


def hostile(marker_dir: Path) -> str:
    """A prompt that runs `touch <marker_dir>/pwned-*` if any shell ever parses it as code."""
    m = marker_dir
    return (
        f"{NASTY}\n"
        f"C:\\'$(touch {m}/pwned-fish)' broke, and D:\\' too\n"  # fish: \' ends nothing inside '...'
        f"`touch {m}/pwned-backtick` ; touch {m}/pwned-semicolon\n"
        f"$(touch {m}/pwned-dollar) !! !$ ~ #(touch {m}/pwned-tmux) #{{pane_pid}} %s \\ \"\\\" ' '\\'' \r\n"
        "ünïcødé ✅ 日本語\n"
    )


def hostile_project(root: Path) -> Path:
    folder = root / "my proj 'q' \"dq\" C:\\'$(touch pwned-dir)' `id` ; ü"
    folder.mkdir()
    return folder


def no_pwned(*dirs: Path) -> None:
    for d in dirs:
        assert not list(d.rglob("pwned*")), list(d.rglob("pwned*"))


def terminal_plan(project: Path, prompt: str, claude: str, app: str = "Terminal") -> launch.LaunchPlan:
    script_path = str(make_launcher_dir() / LAUNCHER_NAME)
    plan = plan_launch(
        LaunchSettings(terminal_app=app, model="sonnet", extra_args=["--verbose"]),
        mode="terminal",
        project=str(project),
        prompt=prompt,
        claude_path=claude,
        name="baton: it's $(id)",
        script_path=script_path,
    )
    write_launcher(plan)
    return plan


@pytest.mark.parametrize("app", ["Terminal", "iTerm"])
def test_the_window_gets_a_fixed_command_that_holds_nothing_from_the_handoff(
    tmp_path: Path, app: str
) -> None:
    project = hostile_project(tmp_path)
    prompt = hostile(tmp_path)
    plan = terminal_plan(project, prompt, "/Users/me/bin/claude 'x'", app)
    other = terminal_plan(tmp_path, "hello", "/usr/local/bin/claude", app)
    try:
        command = plan.argv[-1]
        assert SAFE_COMMAND.fullmatch(command), command
        assert plan.argv[-2] == "--" and plan.argv[0] == "osascript"
        # The AppleScript is the same whatever the prompt, project, claude path and settings: only the script
        # path (baton's own, a fresh folder) differs.
        assert plan.argv[:-1] == other.argv[:-1]
        assert f'tell application "{app}"' in plan.argv
        for item in plan.argv:
            assert str(project) not in item and str(tmp_path) not in item
            assert not any(line in item for line in prompt.splitlines() if line.strip())
        assert command.split()[-1] == plan.script_path
    finally:
        for p in (plan, other):
            assert p.script_path is not None
            launch.discard_launcher(p.script_path)


def test_the_launcher_script_is_private_and_alone_in_a_private_folder(tmp_path: Path) -> None:
    plan = terminal_plan(tmp_path, "hi", "/usr/bin/claude")
    assert plan.script_path is not None
    script, folder = Path(plan.script_path), Path(plan.script_path).parent
    try:
        assert folder.name.startswith(LAUNCHER_PREFIX) and os.listdir(folder) == [LAUNCHER_NAME]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(script.stat().st_mode) == 0o700
        assert folder.stat().st_uid == os.getuid()
        assert script.read_text() == plan.script
    finally:
        launch.discard_launcher(str(script))
    assert not folder.exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_every_shell_runs_the_command_and_claude_gets_its_argv_byte_for_byte(
    tmp_path: Path, fake_claude: FakeClaude, shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")  # optional: not every machine (nor CI) has every shell
    project = hostile_project(tmp_path)
    prompt = hostile(tmp_path)
    plan = terminal_plan(project, prompt, str(fake_claude.path))
    assert plan.script_path is not None
    monkeypatch.setenv("FAKE_CLAUDE_SLEEP", "0")
    home = tmp_path / "home"  # a login shell starts in HOME, as Terminal's does
    home.mkdir()
    out = subprocess.run([exe, "-c", plan.argv[-1]], cwd=home, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    [call] = fake_claude.calls()
    assert call["argv"] == [a.encode() for a in plan.claude_argv[1:]]
    assert call["argv"][-1] == prompt.encode("utf-8")
    assert call["argv"][:2] == [b"--model", b"sonnet"] and b"baton: it's $(id)" in call["argv"]
    assert call["cwd"] == str(project)
    no_pwned(tmp_path, Path.cwd())
    assert not Path(plan.script_path).parent.exists()  # the script removed itself and its folder


def test_the_launcher_folder_is_at_a_plain_path_even_when_tmpdir_is_not(tmp_path: Path) -> None:
    spaced = tmp_path / "Application Support"
    spaced.mkdir()
    made = make_launcher_dir([str(spaced), str(tmp_path / "missing"), "/tmp"])
    try:
        assert made.parent == Path("/tmp") and re.fullmatch(r"/[A-Za-z0-9._/-]+", str(made))
    finally:
        made.rmdir()
    with pytest.raises(Exception, match="plain path"):
        make_launcher_dir([str(spaced), "relative/dir"])


def test_stale_launcher_folders_are_swept_and_others_left_alone(tmp_path: Path) -> None:
    old = tmp_path / f"{LAUNCHER_PREFIX}old"
    old.mkdir(mode=0o700)
    (old / LAUNCHER_NAME).write_text("exit 0\n")
    fresh = tmp_path / f"{LAUNCHER_PREFIX}fresh"
    fresh.mkdir(mode=0o700)
    (fresh / LAUNCHER_NAME).write_text("exit 0\n")
    other = tmp_path / f"{LAUNCHER_PREFIX}not-ours-to-empty"  # something else in it: never removed
    other.mkdir()
    (other / "keep").write_text("x")
    link = tmp_path / f"{LAUNCHER_PREFIX}link"
    link.symlink_to(fresh)
    day_ago = time.time() - 2 * 24 * 3600
    for d in (old, other):
        os.utime(d, (day_ago, day_ago))
    sweep_launchers(tmp_path)
    assert not old.exists()
    assert (fresh / LAUNCHER_NAME).exists() and (other / "keep").exists() and link.is_symlink()


def fake_osascript(bin_dir: Path, shell: str) -> None:
    """An `osascript` that does what Terminal's `do script` does: run argv item 1 in a login shell."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "osascript"
    exe.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import os, subprocess, sys
        args = sys.argv[1:]
        lines = [args[i + 1] for i in range(0, args.index("--"), 2)]
        assert lines[:2] == ["on run argv", 'tell application "Terminal"'], lines
        assert "do script (item 1 of argv)" in lines, lines
        command = args[args.index("--") + 1]
        with open(os.path.join(os.path.dirname(sys.argv[0]), "commands.txt"), "a") as f:
            f.write(command + "\\n")
        subprocess.Popen([{shell!r}, "-c", command], cwd=os.environ["HOME"], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        """)
    )
    exe.chmod(0o755)


@pytest.mark.parametrize("shell", ["sh", "fish"])
def test_baton_launch_now_in_terminal_mode_end_to_end(
    paths: BatonPaths,
    project: Path,
    fake_claude: FakeClaude,
    tmp_path: Path,
    home_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    shell: str,
) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    bin_dir = tmp_path / "osascript-bin"
    fake_osascript(bin_dir, exe)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BATON_LAUNCH__MODE", "terminal")
    monkeypatch.setenv("FAKE_CLAUDE_SLEEP", "0")
    hostile_text = hostile(tmp_path)
    handoff = write_handoff(project, "--blockers", hostile_text, "--instructions", hostile_text)
    want = expected_prompt(paths, handoff)
    out = run_baton("launch", "now", handoff.stem)
    assert "new Terminal window" in out.stdout
    [call] = fake_claude.wait_for(1)
    assert call["argv"][-1] == want.encode("utf-8") and call["cwd"] == str(project)
    [command] = (bin_dir / "commands.txt").read_text().splitlines()
    assert SAFE_COMMAND.fullmatch(command)
    [record] = recent(open_ledger(paths.ledger_db))
    assert (record.mode, record.status, record.argv[-1]) == ("terminal", "started", command)
    deadline = time.monotonic() + 10
    while Path(command.split()[-1]).parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(command.split()[-1]).parent.exists()
    assert ho.load(handoff).status == "launched"
    no_pwned(tmp_path, project, home_dir)


def test_a_terminal_launch_that_fails_leaves_no_script_and_the_handoff_pending(
    paths: BatonPaths, project: Path, fake_claude: FakeClaude, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_LAUNCH__MODE", "terminal")
    bin_dir = tmp_path / "osascript-bin"  # an osascript that fails, as when Terminal may not be automated
    bin_dir.mkdir()
    (bin_dir / "osascript").write_text(
        "#!/bin/sh\necho 'execution error: Not authorized (-1743)' >&2\nexit 1\n"
    )
    (bin_dir / "osascript").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    handoff = write_handoff(project)
    result = launch.launch_handoff(
        paths, load_settings(paths), handoff, now=datetime.now(UTC), engine=open_ledger(paths.ledger_db),
        trigger="manual",
    )  # fmt: skip
    assert not result.result.ok and "Not authorized" in (result.result.error or "")
    script = result.result.plan.script_path
    assert script is not None and not Path(script).exists() and not Path(script).parent.exists()
    assert ho.load(handoff).status == "pending"


def test_the_prompt_mentions_the_memory_summary_only_when_there_is_one() -> None:
    bare = build_prompt("## Next\n- x\n", "", "/p")
    assert "summary" not in bare and "<project-memory>" not in bare
    assert "Below is the handoff it wrote for you." in bare
    full = build_prompt("## Next\n- x\n", "- built the API\n", "/p")
    assert "then a short summary of what baton remembers of the project." in full
    assert "<project-memory>\n- built the API\n</project-memory>" in full
