"""The issue's "Must show": from a clean checkout, exactly the README's install command, then
`baton service install --dry-run` and `baton doctor`, give a newcomer a correct picture of this Linux machine.

The command runs as a newcomer would run it: in a fresh HOME, with the system's `python3` (on Debian 12 it is
"externally managed", PEP 668: a plain `pip install` is refused), so it downloads baton's dependencies from
PyPI into its own virtualenv (pip's cache is shared with this user's to keep it quick).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or os.path.expanduser("~/.cache/pip")  # HOME is faked later
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        Path("/run/systemd/system").is_dir(), reason="systemd runs here: the install would start the service"
    ),
]


def readme_install_command() -> str:
    """Return the one install-and-start command of the README's Quick start."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)\n```", quick, re.DOTALL)
    assert block, "no bash block in the Quick start"
    (command,) = [line for line in block.group(1).splitlines() if "service install" in line]
    return command


def _env(home: Path, tmp: Path, path: str) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": path,
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(tmp / "runtime"),
        "PIP_CACHE_DIR": PIP_CACHE,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """Run the README's install command in a fresh HOME; return (tmp, home, its result)."""
    tmp = tmp_path_factory.mktemp("newcomer")
    home = tmp / "home"
    home.mkdir()
    (tmp / "runtime").mkdir(mode=0o700)
    done = subprocess.run(
        ["bash", "-c", readme_install_command()],  # the README's text as a person pastes it
        capture_output=True,
        text=True,
        env=_env(home, tmp, SYSTEM_PATH),
        cwd=ROOT,
        check=False,
        timeout=600,
    )
    return tmp, home, done


def _baton(args: list[str], home: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    # The next shell: ~/.local/bin on PATH (Debian's ~/.profile adds it once it exists), no virtualenv active,
    # and a folder outside the checkout, so the installed package (and its bundled templates) is what runs.
    return subprocess.run(
        ["baton", *args],
        capture_output=True,
        text=True,
        env=_env(home, tmp, f"{home}/.local/bin:{SYSTEM_PATH}"),
        cwd=tmp,
        check=False,
        timeout=120,
    )


def test_the_readme_command_installs_into_a_private_venv_and_links_baton(
    newcomer: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    _tmp, home, done = newcomer
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "externally-managed-environment" not in done.stderr
    venv_bin = home / ".local/share/baton/venv/bin"
    link = home / ".local/bin/baton"
    assert link.is_symlink() and os.readlink(link) == str(venv_bin / "baton")
    assert f"link {link} -> {venv_bin / 'baton'}" in done.stdout
    assert f"warning: {home}/.local/bin is not on your PATH yet" in done.stdout
    assert "warning: systemd is not running on this machine" in done.stdout and "baton run" in done.stdout
    unit = home / ".config/systemd/user/baton.service"
    assert f'ExecStart="{venv_bin}/python3" "-m" "daemon" "run"' in unit.read_text()
    assert (home / ".local/share/baton").stat().st_mode & 0o777 == 0o700  # the data folder stays private


def test_then_dry_run_and_doctor_give_a_correct_picture(
    newcomer: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, home, done = newcomer
    assert done.returncode == 0, done.stdout + done.stderr
    unit = home / ".config/systemd/user/baton.service"
    before = unit.read_text()

    dry = _baton(["service", "install", "--dry-run"], home, tmp)
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr
    assert f"would write {unit}:" in dry.stdout
    assert "warning: systemd is not running on this machine" in dry.stdout
    assert "would run where systemd runs: systemctl --user enable --now baton.service" in dry.stdout
    assert "is written" not in dry.stdout
    assert unit.read_text() == before  # a dry run changes nothing

    doc = _baton(["doctor", "--no-notify"], home, tmp)
    assert "Traceback" not in doc.stderr, doc.stderr
    assert doc.returncode == 0, doc.stdout + doc.stderr  # only warnings on a fresh account
    lines = {
        line.split()[1]: line for line in doc.stdout.splitlines() if line[:4] in ("ok  ", "warn", "fail")
    }
    assert set(lines) == {
        "config", "transcripts", "ledger", "privacy", "notification", "tmux", "claude",
        "service", "inotify", "statusline", "plan", "clock",
    }  # fmt: skip
    assert lines["transcripts"].startswith("warn") and "no Claude Code history" in lines["transcripts"]
    assert lines["service"].startswith("warn") and "systemd is not running here" in lines["service"]
    assert lines["plan"].startswith("warn") and "guess" in lines["plan"]
    assert "fix: run baton in the foreground: `baton run`" in doc.stdout
    assert lines["config"].startswith("ok") and lines["ledger"].startswith("ok")
    assert lines["privacy"].startswith("ok")  # install made the data folder private
    assert "baton can run;" in doc.stdout
    assert not (home / ".local/share/baton/baton.db").exists()  # doctor creates nothing


def test_uninstall_removes_the_unit_and_the_link_and_keeps_the_venv(
    newcomer: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, home, done = newcomer
    assert done.returncode == 0, done.stdout + done.stderr
    venv_baton = home / ".local/share/baton/venv/bin/baton"
    gone = subprocess.run(
        [str(venv_baton), "service", "uninstall"],
        capture_output=True,
        text=True,
        env=_env(home, tmp, SYSTEM_PATH),
        cwd=tmp,
        check=False,
        timeout=120,
    )
    assert gone.returncode == 0, gone.stderr
    assert not (home / ".local/bin/baton").is_symlink()
    assert not (home / ".config/systemd/user/baton.service").exists()
    assert venv_baton.is_file()
    # The templates came with the installed wheel, not from the checkout.
    where = subprocess.run(
        [
            str(venv_baton.parent / "python"),
            "-c",
            "from daemon.resources import template_dir as t; print(t('systemd'))",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert "site-packages/daemon/_templates/systemd" in where.stdout
