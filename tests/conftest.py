"""Fixtures shared by every test: a private BATON_HOME, a Claude config dir, the real corpus, real peers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # makes `tests.support` importable

# Area fixtures live in their own modules so that each part's tests keep their helpers together.
pytest_plugins = [
    "tests.support.ledger_fixtures",
    "tests.support.desktop",
    "tests.support.processes",
]


@pytest.fixture
def baton_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private BATON_HOME for the test; every file baton writes lands under it."""
    home = tmp_path / "baton-home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("BATON_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("BATON_") and key not in ("BATON_HOME", "BATON_REQUIRE_REAL"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def claude_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Claude config dir (with `projects/`) that CLAUDE_CONFIG_DIR points to."""
    root = tmp_path / "claude"
    (root / "projects").mkdir(parents=True)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real transcripts laid out as a Claude config dir, exactly as ccusage's golden output was made."""
    from tests.support.corpus import lay_out_real

    return lay_out_real(tmp_path_factory.mktemp("real") / "claude")


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    from tests.support.corpus import GOLDEN

    return GOLDEN


@pytest.fixture
def home_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake HOME, for code that writes under ~ (Claude settings, service files)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    yield home
