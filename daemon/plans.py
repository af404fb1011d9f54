"""Subscription plans: how many tokens (and dollars, and messages) a 5-hour window and a week allow.

Pure: no I/O. Anthropic does not publish token limits, so the figures here are estimates, and every figure
carries a label that says where it came from; an official percentage (statusline, limit message, OAuth) always
wins over them.

Which tokens count against a limit: input + output + cache creation. Cache *reads* are left out. They are
usually 90 % or more of a Claude Code transcript's total (the whole conversation is re-read from cache on
every turn), they are billed at a tenth of the input price, and counting them makes the total grow with the
length of the conversation rather than with the work asked for, so a token limit that includes them would
say nothing about how close the person is to the quota. The ledger keeps every kind, so this choice can be
revisited without re-reading the transcripts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Tokens per 5-hour window, counted as above. Pro is the figure the user's own notes budget with (200k);
# the Max plans are sold as 5x and 20x Pro.
PLAN_TOKENS: dict[str, int] = {"pro": 200_000, "max5": 1_000_000, "max20": 4_000_000}
# List-price dollars per 5-hour window and messages per 5-hour window, for the custom-like views.
PLAN_COST_USD: dict[str, float] = {"pro": 18.0, "max5": 35.0, "max20": 140.0}
PLAN_MESSAGES: dict[str, int] = {"pro": 250, "max5": 1_000, "max20": 2_000}
# A week holds up to 33.6 five-hour windows; the weekly cap is reached after about ten full ones.
WEEKLY_WINDOWS = 10
# `auto` without any window that ended at a limit, and no subscription known: start from Pro's figure.
AUTO_FALLBACK_PLAN = "pro"
PLAN_NAMES: dict[str, str] = {"pro": "Pro", "max5": "Max 5x", "max20": "Max 20x"}


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one window; None means that dimension is not limited."""

    tokens: int | None
    cost_usd: float | None
    messages: int | None
    weekly_tokens: int | None
    label: str  # where the figures come from, shown in `baton status`
    known: bool = True  # False: `tokens` is a guess (auto, no window hit a limit, subscription unknown)
    weekly_known: bool = True  # the same for `weekly_tokens`

    @property
    def guess_name(self) -> str:
        """Return how a guessed limit is named in texts ("Pro's figure")."""
        return f"{PLAN_NAMES[AUTO_FALLBACK_PLAN]}'s figure"


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) of `values` by linear interpolation. Raise ValueError if empty."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def plan_from_subscription(subscription_type: str | None, rate_limit_tier: str | None) -> str | None:
    """Return pro, max5 or max20 for Claude Code's `subscriptionType` and `rateLimitTier` (e.g. "max" and
    "default_claude_max_20x"), or None when they name no subscription plan (an API key, team, unknown)."""
    tier = (rate_limit_tier or "").lower()
    kind = (subscription_type or "").lower()
    if "max_20x" in tier:
        return "max20"
    if "max_5x" in tier:
        return "max5"
    if kind == "max":  # Max without a tier that says which: the smaller one, so alerts come early not late
        return "max5"
    if kind == "pro" or tier.endswith("_pro"):
        return "pro"
    return None


def auto_token_limit(
    limited_window_totals: Sequence[int],
    completed_window_totals: Sequence[int],
    subscription: str | None = None,
) -> tuple[int, str]:
    """Return (tokens, label) for the `auto` plan (`auto_limit_known` says whether it is more than a guess).

    With windows that ended at a limit: the 90th percentile of their totals. Without: the figure of the
    `subscription` plan Claude Code's login names (pro, max5, max20), else Pro's; raised to the largest
    completed window when that was bigger (a window that did not hit the limit shows the limit is higher).
    """
    if limited_window_totals:
        value = round(percentile([float(t) for t in limited_window_totals], 90))
        n = len(limited_window_totals)
        return max(value, 1), f"auto: P90 of {n} window{'s' if n != 1 else ''} that hit the limit"
    if subscription in PLAN_TOKENS:
        floor, basis = PLAN_TOKENS[subscription], f"your {PLAN_NAMES[subscription]} subscription"
    else:
        floor, basis = PLAN_TOKENS[AUTO_FALLBACK_PLAN], "Pro's figure, subscription unknown"
    largest = max(completed_window_totals, default=0)
    if largest > floor:
        return largest, f"auto: your largest past window (above {basis})"
    return floor, f"auto: {basis}"


def auto_limit_known(limited_window_totals: Sequence[int], subscription: str | None) -> bool:
    """Return True when the `auto` limit is learned (windows that hit the limit) or the subscription's;
    False when it is Pro's figure for want of anything better: then only percentages are facts."""
    return bool(limited_window_totals) or subscription in PLAN_TOKENS


def resolve(
    plan: str,
    *,
    token_limit: int | None = None,
    cost_limit: float | None = None,
    message_limit: int | None = None,
    weekly_token_limit: int | None = None,
    limited_window_totals: Sequence[int] = (),
    completed_window_totals: Sequence[int] = (),
    subscription: str | None = None,
) -> Limits:
    """Return the limits for `plan` (pro, max5, max20, custom, auto); explicit limits override the plan's.
    `subscription` (pro, max5, max20 or None) is what Claude Code's login says; only `auto` uses it.

    Raise ValueError for an unknown plan, or for 'custom' without any limit.
    """
    known = True
    if plan in PLAN_TOKENS:
        tokens: int | None = token_limit or PLAN_TOKENS[plan]
        label = (
            f"{plan} plan, estimated limit"
            if token_limit is None
            else f"{plan} plan, token_limit from config"
        )
        cost = cost_limit
        messages = message_limit
    elif plan == "custom":
        if not (token_limit or cost_limit or message_limit):
            raise ValueError("plan 'custom' needs token_limit, cost_limit or message_limit")
        tokens, cost, messages, label = token_limit, cost_limit, message_limit, "custom limits from config"
    elif plan == "auto":
        if token_limit:
            tokens, label = token_limit, "auto plan, token_limit from config"
        else:
            tokens, label = auto_token_limit(limited_window_totals, completed_window_totals, subscription)
            known = auto_limit_known(limited_window_totals, subscription)
        cost, messages = cost_limit, message_limit
    else:
        raise ValueError(f"unknown plan {plan!r} (use pro, max5, max20, custom or auto)")
    weekly = weekly_token_limit or (tokens * WEEKLY_WINDOWS if tokens else None)
    return Limits(
        tokens=tokens,
        cost_usd=cost,
        messages=messages,
        weekly_tokens=weekly,
        label=label,
        known=known,
        weekly_known=known or weekly_token_limit is not None,
    )
