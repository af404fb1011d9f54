"""The OAuth usage endpoint, against a local HTTP server answering like the real one (200, 401, 429, junk)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from daemon import oauth

TOKEN = "sk-ant-oat01-secret-token-value"
REAL = {
    "five_hour": {"utilization": 24.0, "resets_at": "2026-01-02T19:59:59.600956+00:00"},
    "seven_day": {"utilization": 36.0, "resets_at": "2026-01-08T06:59:59.600974+00:00"},
    "seven_day_sonnet": {"utilization": 1.0, "resets_at": "2026-01-08T06:59:59.600974+00:00"},
    "seven_day_opus": None,
    "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None},
}


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        Handler.seen.append({k.lower(): v for k, v in self.headers.items()})
        routes = {
            "/ok": (200, json.dumps(REAL).encode(), {}),
            "/nulls": (200, b'{"five_hour": null, "seven_day": {"utilization": "x"}}', {}),
            "/401": (401, b'{"type":"error","error":{"type":"authentication_error"}}', {}),
            "/403": (403, b"{}", {}),
            "/429": (429, b'{"type":"error"}', {"Retry-After": "120"}),
            "/junk": (200, b"<html>gateway</html>", {}),
            "/list": (200, b"[1, 2]", {}),
            "/moved": (302, b"", {"Location": "/ok"}),
            "/short": (200, b'{"five', {"Content-Length": "500"}),
        }
        code, body, headers = routes.get(self.path, (500, b"", {}))
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(oauth.TEST_LOCAL_ENV, "1")  # the only way http://127.0.0.1 may get the token
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Handler.seen.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_reads_both_windows_with_the_bearer_token_and_beta_header(server: str) -> None:
    figures = oauth.parse_usage(oauth.fetch(f"{server}/ok", TOKEN), 1000)
    assert [(f.window, f.used_percent, f.source) for f in figures] == [
        ("five_hour", 24.0, "oauth"),
        ("seven_day", 36.0, "oauth"),
    ]
    assert figures[0].resets_at_ms == 1767383999600
    assert (
        Handler.seen[0]["authorization"] == f"Bearer {TOKEN}"
        and Handler.seen[0]["anthropic-beta"] == oauth.BETA
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/401", "rejected the Claude login (401)"),
        ("/403", "user:profile"),
        ("/429", "rate limiting (429)"),
        ("/junk", "not JSON"),
        ("/list", "not an object"),
        ("/500", "HTTP 500"),
        ("/moved", "does not follow redirects"),
        ("/short", "cut or malformed"),
    ],
)
def test_failures_are_clear_and_never_contain_the_token(server: str, path: str, message: str) -> None:
    with pytest.raises(oauth.OAuthError) as err:
        oauth.fetch(f"{server}{path}", TOKEN)
    assert (
        message in str(err.value) and TOKEN not in str(err.value) and TOKEN not in repr(err.value.__cause__)
    )


def test_null_and_malformed_windows_are_skipped(server: str) -> None:
    assert oauth.parse_usage(oauth.fetch(f"{server}/nulls", TOKEN), 0) == []


def test_poller_caches_and_backs_off_after_429(server: str, tmp_path: Path) -> None:
    creds = tmp_path / ".credentials.json"
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": TOKEN, "expiresAt": 10**15}}))
    before = creds.read_text()
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path)}
    ok = oauth.Poller(f"{server}/ok", 300, env)
    assert ok.poll(0, 1) is not None and ok.poll(100, 2) is None and ok.poll(301, 3) is not None
    limited = oauth.Poller(f"{server}/429", 300, env)
    assert limited.poll(0, 1) is None and "429" in (limited.last_error or "") and limited.next_at == 120
    assert creds.read_text() == before  # read-only: never refreshed or rewritten
    assert len(Handler.seen) == 3


def test_expired_or_missing_token_is_reported_not_refreshed(tmp_path: Path) -> None:
    creds = tmp_path / ".credentials.json"
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": TOKEN, "expiresAt": 1000}}))
    with pytest.raises(oauth.OAuthError, match="expired"):
        oauth.read_token({"CLAUDE_CONFIG_DIR": str(tmp_path)}, now_ms=2000)
    with pytest.raises(oauth.OAuthError, match="cannot read"):
        oauth.read_token({"CLAUDE_CONFIG_DIR": str(tmp_path / "none")}, now_ms=0)
    creds.write_text("{}")
    with pytest.raises(oauth.OAuthError, match="no Claude login"):
        oauth.read_token({"CLAUDE_CONFIG_DIR": str(tmp_path)}, now_ms=0)


def test_a_redirect_is_refused_and_the_token_goes_nowhere_else(server: str) -> None:
    """Review #1: urllib copies Authorization into a redirected request; baton must not follow one."""
    with pytest.raises(oauth.OAuthError, match="redirect"):
        oauth.fetch(f"{server}/moved", TOKEN)
    assert [h.get("authorization") for h in Handler.seen] == [f"Bearer {TOKEN}"]  # /ok was never asked


@pytest.mark.parametrize(
    "url",
    [
        "http://api.anthropic.com/api/oauth/usage",
        "https://api.anthropic.com.evil.example/api/oauth/usage",
        "https://evil.example/?api.anthropic.com",
        "https://me@api.anthropic.com/api/oauth/usage",
        "https://api.anthropic.com:8443/api/oauth/usage",
        "http://127.0.0.1:9/usage",
        "file:///etc/passwd",
    ],
)
def test_the_token_is_only_sent_to_anthropic(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(oauth.TEST_LOCAL_ENV, raising=False)
    assert oauth.url_problem(url) is not None
    with pytest.raises(oauth.OAuthError, match=r"only sent to https://api\.anthropic\.com/|user name"):
        oauth.fetch(url, TOKEN)
    assert oauth.url_problem("https://api.anthropic.com/api/oauth/usage") is None


def test_config_refuses_another_oauth_url(baton_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.config import load_settings
    from daemon.errors import ConfigError
    from daemon.paths import BatonPaths

    monkeypatch.setenv("BATON_QUOTA__OAUTH_URL", "https://collector.example/usage")
    with pytest.raises(ConfigError, match=r"only sent to https://api\.anthropic\.com/"):
        load_settings(BatonPaths.from_env())


def test_the_poller_survives_the_unforeseen(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review #16: an exception that is not an OAuthError must not end the polling."""
    creds = tmp_path / ".credentials.json"
    creds.write_bytes(b"\xff\xfe not utf-8")
    poller = oauth.Poller(f"{server}/ok", 300, {"CLAUDE_CONFIG_DIR": str(tmp_path)})
    assert poller.poll(0, 1) is None and "not UTF-8" in (poller.last_error or "")

    def boom(*_a: object) -> dict[str, object]:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(oauth, "fetch", boom)
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": TOKEN, "expiresAt": 10**15}}))
    assert poller.poll(400, 2) is None and "RuntimeError" in (poller.last_error or "")


def test_a_reset_time_without_an_offset_is_read_as_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        data = {"five_hour": {"utilization": 24.0, "resets_at": "2026-01-02T19:59:59.600956"}}
        (figure,) = oauth.parse_usage(data, 1000)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert figure.resets_at_ms == 1767383999600
