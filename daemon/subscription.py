"""Which subscription Claude Code is logged in with, for the `auto` plan: pro, max5 or max20.

Claude Code's credentials (claude-data-formats.md §5: `.credentials.json` in the Claude config dir on Linux
and Windows) hold, next to the secret tokens, two plain fields: `subscriptionType` ("pro", "max") and
`rateLimitTier` (e.g. "default_claude_max_20x"). Only those two are taken from the parsed JSON; the tokens
are never kept, logged or copied, and the file is never written. On macOS the same JSON lives in the
Keychain; it is read there (with `security`, argv only) only when `[quota] oauth_usage` is on, since the
person has then agreed to baton using their Claude login. Any failure means "unknown" (None), never an error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from daemon.plans import plan_from_subscription


def plan_from_credentials(blob: str) -> str | None:
    """Return pro, max5 or max20 from Claude Code's credentials JSON text, None if it names none."""
    try:
        data = json.loads(blob)
    except ValueError:
        return None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if not isinstance(oauth, dict):
        return None
    kind, tier = oauth.get("subscriptionType"), oauth.get("rateLimitTier")
    return plan_from_subscription(
        kind if isinstance(kind, str) else None, tier if isinstance(tier, str) else None
    )


def detect(env: Mapping[str, str] | None = None, *, keychain: bool = False) -> str | None:
    """Return the plan of the Claude login on this machine (pro, max5, max20), or None when unknown.

    macOS reads the Keychain only with `keychain` (the OAuth option on); elsewhere the credentials file.
    """
    from daemon import oauth

    env = os.environ if env is None else env
    try:
        if sys.platform == "darwin":
            if not keychain:
                return None
            blob = oauth._keychain(env)
        else:
            blob = oauth.credentials_file(env).read_text(encoding="utf-8")
    except (OSError, oauth.OAuthError, UnicodeDecodeError):
        return None
    return plan_from_credentials(blob)
