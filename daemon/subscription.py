"""Which subscription Claude Code is logged in with, for the `auto` plan: pro, max5 or max20.

Claude Code's credentials (claude-data-formats.md §5: `.credentials.json` in the Claude config dir on Linux
and Windows) hold, next to the secret tokens, two plain fields: `subscriptionType` ("pro", "max") and
`rateLimitTier` (e.g. "default_claude_max_20x"). The JSON is parsed so that only those two fields are
kept: every other value (the access and refresh tokens) is dropped while parsing, never logged, copied or
stored, and the file is never written. `[quota] read_login_plan = false` turns the reading off (the `auto`
plan then learns from the history alone). On macOS the same JSON lives in the Keychain; it is read there
(with `security`, argv only) only when `[quota] oauth_usage` is on too, since the person has then agreed to
baton using their Claude login. Any failure means "unknown" (None), never an error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from daemon.plans import plan_from_subscription

PLAIN_FIELDS = frozenset({"claudeAiOauth", "subscriptionType", "rateLimitTier"})


def _plain_only(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Keep only the non-secret fields of a JSON object as it is parsed (the tokens never reach a dict)."""
    return {k: v for k, v in pairs if k in PLAIN_FIELDS}


def plan_from_credentials(blob: str) -> str | None:
    """Return pro, max5 or max20 from Claude Code's credentials JSON text, None if it names none."""
    try:
        data = json.loads(blob, object_pairs_hook=_plain_only)
    except ValueError:
        return None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if not isinstance(oauth, dict):
        return None
    kind, tier = oauth.get("subscriptionType"), oauth.get("rateLimitTier")
    return plan_from_subscription(
        kind if isinstance(kind, str) else None, tier if isinstance(tier, str) else None
    )


def detect(
    env: Mapping[str, str] | None = None, *, keychain: bool = False, enabled: bool = True
) -> str | None:
    """Return the plan of the Claude login on this machine (pro, max5, max20), or None when unknown or when
    not `enabled` (`[quota] read_login_plan`). macOS reads the Keychain only with `keychain` (the OAuth option
    on); elsewhere the credentials file.
    """
    from daemon import oauth

    if not enabled:
        return None
    env = os.environ if env is None else env
    try:
        if sys.platform == "darwin":
            if not keychain:
                return None
            blob = oauth.keychain_credentials(env)
        else:
            blob = oauth.credentials_file(env).read_text(encoding="utf-8")
    except (OSError, oauth.OAuthError, UnicodeDecodeError):
        return None
    return plan_from_credentials(blob)
