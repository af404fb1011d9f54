"""The OAuth usage endpoint, against a local HTTP server answering like the real one (200, 401, 429, junk)."""

from __future__ import annotations

import json
import threading
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
def server() -> Iterator[str]:
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
