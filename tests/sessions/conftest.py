"""Fixtures for the session tests: a real ledger file under a private BATON_HOME, with category rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.paths import BatonPaths
from tests.sessions.fixture_ledger import add, fixture_events, make_ledger

CONFIG = """
[general]
timezone = "UTC"

[sessions]
default_category = "general"
categories = [
  { pattern = "*/terraform-*", category = "terraform" },
  { pattern = "/home/u/*", category = "personal" },
]
"""


@pytest.fixture
def ledger(baton_home: Path) -> Path:
    """An empty migrated ledger under BATON_HOME (with a config that names two category rules)."""
    (baton_home / "config.toml").write_text(CONFIG, encoding="utf-8")
    return make_ledger(BatonPaths.from_env().ledger_db)


@pytest.fixture
def filled(ledger: Path) -> Path:
    """The ledger holding the hand-computed fixture sessions A-E (see fixture_ledger.py)."""
    add(ledger, fixture_events())
    return ledger
