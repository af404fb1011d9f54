"""Anthropic's OAuth usage endpoint (opt-in: `[quota] oauth_usage = true`), read-only.

It is the endpoint Claude Code's `/usage` calls (claude-data-formats.md §5). baton reads the access token
Claude Code already stored (Linux/Windows: `.credentials.json` in the Claude config dir; macOS: the Keychain
item `Claude Code-credentials`), uses it for one GET and forgets it: never refreshed, stored, copied or
logged.
An expired token is reported ("run Claude Code once to refresh it"), not refreshed. Answers are cached for
`oauth_cache_seconds`, and a 429 backs off for its Retry-After (or twice the cache time).

The token goes to one host only: `quota.oauth_url` must be https on api.anthropic.com (`url_problem`), and a
redirect is refused rather than followed (urllib would copy the Authorization header to wherever it points).
Tests point it at a local server with `BATON_OAUTH_TEST_LOCAL=1`: it allows http://127.0.0.1, nothing else.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daemon.quota import OfficialFigure

BETA = "oauth-2025-04-20"
TIMEOUT_S = 10.0
WINDOWS = ("five_hour", "seven_day")
OAUTH_HOST = "api.anthropic.com"
TEST_LOCAL_ENV = "BATON_OAUTH_TEST_LOCAL"  # "1": also allow http://127.0.0.1 (tests' local server)


class OAuthError(Exception):
    """The endpoint could not be read; the message never contains the token."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status  # the HTTP status when the endpoint answered with an error


def url_problem(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """Return why `url` may not receive the Claude login (None when it may): it must be https on
    api.anthropic.com (default port, no user info); http://127.0.0.1 only with BATON_OAUTH_TEST_LOCAL=1."""
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"not a URL: {url!r}"
    if parts.username is not None or parts.password is not None:
        return "a user name or password in the URL is not allowed"
    if parts.scheme == "https" and parts.hostname == OAUTH_HOST and port in (None, 443):
        return None
    if env.get(TEST_LOCAL_ENV) == "1" and parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return None
    return f"the Claude login is only sent to https://{OAUTH_HOST}/ (got {url!r})"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: following one would send the Authorization header to another address."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise OAuthError(
            f"the usage endpoint answered with a redirect ({code}); baton does not follow redirects "
            "with your Claude login"
        )


def credentials_file(env: Mapping[str, str]) -> Path:
    """Return where Claude Code keeps its credentials on Linux and Windows."""
    if env.get("CLAUDE_SECURESTORAGE_CONFIG_DIR"):
        return Path(env["CLAUDE_SECURESTORAGE_CONFIG_DIR"]) / ".credentials.json"
    config = (env.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip()
    base = Path(os.path.expanduser(config)) if config else Path(env.get("HOME") or Path.home()) / ".claude"
    return base / ".credentials.json"


def token_from(blob: str, now_ms: int) -> str:
    """Return the access token in Claude Code's credentials JSON. Raise OAuthError if absent or expired."""
    try:
        oauth = json.loads(blob)["claudeAiOauth"]
        token = oauth["accessToken"]
    except (ValueError, KeyError, TypeError) as exc:
        raise OAuthError("no Claude login found in Claude Code's credentials") from exc
    if not isinstance(token, str) or not token:
        raise OAuthError("no Claude login found in Claude Code's credentials")
    expires = oauth.get("expiresAt")
    if isinstance(expires, int | float) and expires <= now_ms:
        raise OAuthError("the Claude login token has expired; run Claude Code once to refresh it")
    return token


def read_token(env: Mapping[str, str] | None = None, now_ms: int | None = None) -> str:
    """Return Claude Code's access token, read now (never cached on disk). Raise OAuthError."""
    env = os.environ if env is None else env
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if sys.platform == "darwin":
        blob = keychain_credentials(env)
    else:
        try:
            blob = credentials_file(env).read_text(encoding="utf-8")
        except OSError as exc:
            raise OAuthError(f"cannot read Claude Code's credentials ({exc.strerror})") from exc
        except UnicodeDecodeError:
            raise OAuthError("Claude Code's credentials file is not UTF-8 text") from None
    return token_from(blob, now_ms)


KEYCHAIN_SERVICE = "Claude Code-credentials"


def keychain_services(env: Mapping[str, str]) -> list[str]:
    """Return the Keychain item names to try, best first: with CLAUDE_CONFIG_DIR set, Claude Code suffixes
    the name with the first 8 hex digits of the directory's SHA-256 (then the plain name, as a fallback)."""
    config = (env.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip()
    if not config:
        return [KEYCHAIN_SERVICE]
    return [f"{KEYCHAIN_SERVICE}-{hashlib.sha256(config.encode()).hexdigest()[:8]}", KEYCHAIN_SERVICE]


def keychain_credentials(env: Mapping[str, str]) -> str:
    """Return the credentials JSON from the macOS Keychain (`security`, argv only). Raise OAuthError."""
    account = env.get("USER", "")
    for service in keychain_services(env):
        argv = ["security", "find-generic-password", "-a", account, "-w", "-s", service]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OAuthError(f"cannot read the Keychain: {exc}") from exc
        if done.returncode == 0:
            return done.stdout
    raise OAuthError(f"no '{KEYCHAIN_SERVICE}' item in the Keychain")


def fetch(url: str, token: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """GET the usage endpoint; return its JSON object. Raise OAuthError for any failure (a URL other than
    Anthropic's, a redirect, 401, 403, 429, a cut or malformed answer...)."""
    problem = url_problem(url)
    if problem is not None:
        raise OAuthError(problem)
    req = urllib.request.Request(
        url,
        headers={
            "Authorization": f"Bearer {token}",
            "anthropic-beta": BETA,
            "Content-Type": "application/json",
            "User-Agent": "claude-baton",
        },
    )
    try:
        with urllib.request.build_opener(_NoRedirect).open(req, timeout=timeout) as resp:
            body = resp.read(1 << 20)
            if resp.read(1) or getattr(resp, "length", None):  # over 1 MB, or less than Content-Length
                raise http.client.IncompleteRead(body)
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuthError(f"cannot reach the usage endpoint: {reason}") from None
    except http.client.HTTPException as exc:  # IncompleteRead, a malformed status line...
        raise OAuthError(f"the usage endpoint's answer was cut or malformed ({type(exc).__name__})") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise OAuthError("the usage endpoint answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise OAuthError("the usage endpoint answered with JSON that is not an object")
    return data


def _http_error(exc: urllib.error.HTTPError) -> OAuthError:
    if exc.code == 401:
        return OAuthError(
            "the usage endpoint rejected the Claude login (401); run Claude Code to log in again"
        )
    if exc.code == 403:
        return OAuthError("the Claude login lacks the user:profile scope (403)")
    if exc.code == 429:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        seconds = float(retry) if retry and retry.strip().isdigit() else None
        return OAuthError("the usage endpoint is rate limiting (429)", retry_after=seconds, status=429)
    return OAuthError(f"the usage endpoint answered HTTP {exc.code}", status=exc.code)


def parse_usage(data: Mapping[str, Any], now_ms: int) -> list[OfficialFigure]:
    """Return the 5-hour and 7-day figures of an endpoint answer; null or malformed windows are skipped."""
    out = []
    for window in WINDOWS:
        entry = data.get(window)
        if not isinstance(entry, Mapping):
            continue
        util = entry.get("utilization")
        if isinstance(util, bool) or not isinstance(util, int | float):
            continue
        resets_ms = None
        if isinstance(entry.get("resets_at"), str):
            try:
                resets = datetime.fromisoformat(entry["resets_at"])
                if resets.tzinfo is None:  # an API's time without an offset is UTC, not this machine's zone
                    resets = resets.replace(tzinfo=UTC)
                resets_ms = int(resets.timestamp() * 1000)
            except ValueError:
                resets_ms = None
        out.append(OfficialFigure(now_ms, "oauth", window, float(util), resets_ms))
    return out


@dataclass
class Poller:
    """Reads the endpoint at most once per `cache_seconds` (longer after a 429); remembers the last answer."""

    url: str
    cache_seconds: float
    env: Mapping[str, str] | None = None
    next_at: float = 0.0
    last: list[OfficialFigure] | None = None
    last_error: str | None = None

    def poll(self, now: float, now_ms: int) -> list[OfficialFigure] | None:
        """Return fresh figures when a read is due and succeeds; None if cached or failed (see last_error)."""
        if now < self.next_at:
            return None
        self.next_at = now + self.cache_seconds
        try:
            figures = parse_usage(fetch(self.url, read_token(self.env, now_ms)), now_ms)
        except OAuthError as exc:
            self.last_error = str(exc)
            if exc.retry_after is not None or exc.status == 429:
                self.next_at = now + (exc.retry_after or 2 * self.cache_seconds)
            return None
        except Exception as exc:  # anything unforeseen: reported like a failure, the poller lives on
            self.last_error = f"unexpected {type(exc).__name__} reading the usage endpoint"
            return None
        self.last, self.last_error = figures, None
        return figures
