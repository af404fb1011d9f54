"""The `auto` plan reads which subscription Claude Code is logged in with, and nothing else of its login."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon import quota, quota_data, subscription
from daemon.config import QuotaSettings

SECRET = "sk-ant-oat01-SECRET-never-copied"


def write_credentials(claude_dir: Path, **oauth: object) -> Path:
    path = claude_dir / ".credentials.json"
    body = {"accessToken": SECRET, "refreshToken": SECRET + "-r", "expiresAt": 1, **oauth}
    path.write_text(json.dumps({"claudeAiOauth": body}))
    path.chmod(0o600)
    return path


def test_max_20x_login_gives_the_auto_plan_max_20x_figures(claude_dir: Path) -> None:
    path = write_credentials(claude_dir, subscriptionType="max", rateLimitTier="default_claude_max_20x")
    before = path.read_bytes()
    assert subscription.detect() == "max20"
    with sqlite3.connect(":memory:") as conn:
        limits = quota_data.resolve_limits(conn, QuotaSettings(), quota.to_ms(datetime.now(UTC)))
    assert limits.tokens == 4_000_000 and limits.label == "auto: your Max 20x subscription"
    assert path.read_bytes() == before  # read, never rewritten


def test_only_the_plan_leaves_the_credentials(claude_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_credentials(claude_dir, subscriptionType="pro")
    caplog.set_level(logging.DEBUG)
    plan = subscription.detect()
    assert plan == "pro" and SECRET not in caplog.text


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"claudeAiOauth": "x"}', '{"other": {}}'])
def test_missing_or_malformed_credentials_mean_unknown(claude_dir: Path, content: str) -> None:
    assert subscription.detect() is None  # no file at all
    (claude_dir / ".credentials.json").write_text(content)
    assert subscription.detect() is None
    with sqlite3.connect(":memory:") as conn:
        limits = quota_data.resolve_limits(conn, QuotaSettings(), 0)
    assert limits.tokens == 200_000 and "subscription unknown" in limits.label


def test_a_configured_plan_never_reads_the_credentials(claude_dir: Path) -> None:
    write_credentials(claude_dir, subscriptionType="max", rateLimitTier="default_claude_max_20x")
    with sqlite3.connect(":memory:") as conn:
        limits = quota_data.resolve_limits(conn, QuotaSettings(plan="pro"), 0)
    assert limits.tokens == 200_000 and limits.label == "pro plan, estimated limit"
