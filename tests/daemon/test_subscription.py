"""The `auto` plan reads which subscription Claude Code is logged in with, and nothing else of its login."""

from __future__ import annotations

import json
import logging
import os
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


FAKE_SECURITY = """#!/bin/sh
# a stand-in for macOS `security`: records its argv, answers only for the expected item name
printf '%s\\n' "$*" >> "$SECURITY_LOG"
case "$*" in
  *"-s $WANTED"*) printf '%s' "$ANSWER"; exit 0 ;;
esac
exit 44
"""


def test_on_macos_the_keychain_is_read_only_with_the_oauth_option_and_argv_only(
    tmp_path: Path, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`security` cannot run here: a stand-in on PATH checks the item name (suffixed for CLAUDE_CONFIG_DIR,
    as Claude Code names it) and that nothing goes through a shell."""
    import hashlib
    import sys

    from daemon.oauth import keychain_services

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "security"
    fake.write_text(FAKE_SECURITY)
    fake.chmod(0o755)
    suffix = hashlib.sha256(str(claude_dir).encode()).hexdigest()[:8]
    wanted = f"Claude Code-credentials-{suffix}"
    assert keychain_services({"CLAUDE_CONFIG_DIR": str(claude_dir)}) == [wanted, "Claude Code-credentials"]
    log = tmp_path / "security.log"
    answer = json.dumps(
        {
            "claudeAiOauth": {
                "accessToken": SECRET,
                "subscriptionType": "max",
                "rateLimitTier": "default_claude_max_5x",
            }
        }
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("SECURITY_LOG", str(log))
    monkeypatch.setenv("WANTED", wanted)
    monkeypatch.setenv("ANSWER", answer)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert subscription.detect(keychain=False) is None and not log.exists()  # the option is off
    assert subscription.detect(keychain=True) == "max5"
    assert log.read_text().splitlines() == [
        f"find-generic-password -a {os.environ.get('USER', '')} -w -s {wanted}"
    ]


def test_read_login_plan_off_never_opens_the_credentials(
    claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review #21: the reading can be turned off, and then the file is not even opened."""
    path = write_credentials(claude_dir, subscriptionType="max", rateLimitTier="default_claude_max_20x")
    opened: list[str] = []
    real_read_text = Path.read_text

    def spy(self: Path, *args: object, **kwargs: object) -> str:
        opened.append(str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", spy)
    with sqlite3.connect(":memory:") as conn:
        limits = quota_data.resolve_limits(conn, QuotaSettings(read_login_plan=False), 0)
    assert limits.tokens == 200_000 and not limits.known and opened == []
    with sqlite3.connect(":memory:") as conn:
        limits = quota_data.resolve_limits(conn, QuotaSettings(), 0)
    assert limits.tokens == 4_000_000 and limits.known and opened == [str(path)]


def test_the_tokens_never_reach_a_parsed_object() -> None:
    blob = json.dumps(
        {"claudeAiOauth": {"accessToken": SECRET, "refreshToken": SECRET, "subscriptionType": "pro"}}
    )
    parsed = json.loads(blob, object_pairs_hook=subscription._plain_only)
    assert parsed == {"claudeAiOauth": {"subscriptionType": "pro"}}
    assert subscription.plan_from_credentials(blob) == "pro"


def test_the_auto_plan_learns_from_recent_weeks_only() -> None:
    """Review #13: the hourly recomputation reads a bounded history; a limit hit months ago is forgotten."""
    now_ms = quota.to_ms(datetime(2026, 3, 10, 14, 30, tzinfo=UTC))
    old = now_ms - quota_data.AUTO_HISTORY_MS - 30 * quota.HOUR_MS
    with sqlite3.connect(":memory:") as conn:
        conn.execute(
            "CREATE TABLE usage_events (ts_ms INTEGER, input_tokens INTEGER, output_tokens INTEGER, "
            "cache_creation_tokens INTEGER, cost_usd REAL, cost_calc REAL)"
        )
        conn.execute("CREATE TABLE limit_events (ts_ms INTEGER, kind TEXT)")
        conn.execute("INSERT INTO usage_events VALUES (?, 0, 900000, 0, 0, 0)", (old,))
        conn.execute("INSERT INTO limit_events VALUES (?, 'session')", (old + 60_000,))
        settings = QuotaSettings(read_login_plan=False)
        assert quota_data.resolve_limits(conn, settings, now_ms).tokens == 200_000
        assert quota_data.resolve_limits(conn, settings, old + 6 * quota.HOUR_MS).tokens == 900_000
