"""`baton report html FILE`: one self-contained page, opened in real headless Chromium and screenshotted."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli import cli
from tests.support.real import require_real

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _page(tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    args = ["report", "html", str(out), "--since", "2026-03-01", "--until", "2026-03-31", "--timezone", "UTC"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sessions, 2026-03-01 to 2026-03-31" in result.output
    return out


def test_page_is_self_contained_with_three_charts(filled: Path, claude_dir: Path, tmp_path: Path) -> None:
    html = _page(tmp_path).read_text(encoding="utf-8")
    assert ">5</b><span>Sessions" in html
    assert html.count("<svg") == 4  # cost per day, tokens per day, by model, by repo
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external assets
    assert "<script" not in html
    assert "claude-opus-4-6" in html and "terraform-gcp" in html and "$7.31" in html
    assert "Cost per day" in html and "Cost by model" in html and "Cost by repository" in html


def test_a_cwd_with_markup_is_escaped(filled: Path, claude_dir: Path, tmp_path: Path) -> None:
    from tests.sessions.fixture_ledger import Ev, add

    add(
        filled,
        [Ev("zzzz-evil", "2026-03-10T10:00:00Z", inp=1, cost=9.0, cwd="/x/<img src=x onerror=alert(1)>")],
    )
    html = _page(tmp_path).read_text(encoding="utf-8")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.slow
def test_headless_chromium_renders_the_page(filled: Path, claude_dir: Path, tmp_path: Path) -> None:
    chromium = require_real("chromium")
    page = _page(tmp_path)
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,1300",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 1300)
    assert len(data) > 20_000  # a blank page compresses to a few kB; charts and text do not
