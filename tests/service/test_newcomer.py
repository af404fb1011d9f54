"""The issue's "Must show": from a clean checkout, the README's install command, then `baton service install
--dry-run` and `baton doctor`, give a newcomer a correct picture of this Linux machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install .` into a fresh venv (dependencies from this interpreter's packages); return its bin/."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            ".",
        ],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return venv / "bin"


def _run(bin_dir: Path, args: list[str], home: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(tmp / "runtime"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # Run from a directory without the checkout, so the installed package (and its bundled templates) is used.
    return subprocess.run(
        [str(bin_dir / "baton"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_install_then_dry_run_then_doctor_on_a_fresh_account(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "runtime").mkdir(mode=0o700)

    dry = _run(installed, ["service", "install", "--dry-run"], home, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "Traceback" not in dry.stderr
    unit = home / ".config" / "systemd" / "user" / "baton.service"
    assert f"would write {unit}:" in dry.stdout
    assert f'ExecStart="{installed}/python" "-m" "daemon" "run"' in dry.stdout
    if not Path("/run/systemd/system").is_dir():
        assert "warning: systemd is not running on this machine" in dry.stdout
        assert "baton run" in dry.stdout
    assert not unit.exists()  # a dry run changes nothing

    doc = _run(installed, ["doctor", "--no-notify"], home, tmp_path)
    assert "Traceback" not in doc.stderr, doc.stderr
    assert doc.returncode == 0, doc.stdout + doc.stderr  # only warnings on a fresh account
    lines = {
        line.split()[1]: line for line in doc.stdout.splitlines() if line[:4] in ("ok  ", "warn", "fail")
    }
    assert set(lines) == {
        "config", "transcripts", "ledger", "notification", "tmux", "claude",
        "service", "inotify", "statusline", "clock",
    }  # fmt: skip
    assert lines["transcripts"].startswith("warn") and "no Claude Code history" in lines["transcripts"]
    assert lines["service"].startswith("warn") and "not installed" in lines["service"]
    assert "fix: baton service install" in doc.stdout
    assert lines["config"].startswith("ok") and lines["ledger"].startswith("ok")
    assert "baton can run;" in doc.stdout
    assert not (home / ".local" / "share" / "baton" / "baton.db").exists()  # doctor creates nothing


@pytest.mark.slow
def test_the_installed_wheel_carries_the_service_templates(installed: Path) -> None:
    done = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "from daemon.resources import template_dir as t; print(t('systemd'))",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert "site-packages/daemon/_templates/systemd" in done.stdout
    assert (Path(done.stdout.strip()) / "baton.service").is_file()
