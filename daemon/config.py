"""baton's settings: defaults, then `config.toml` under BATON_HOME, then `BATON_*` environment variables.

Nested keys use `__` in the environment: `BATON_QUOTA__PLAN=custom`, `BATON_ALERTS__THRESHOLDS=[80,90,95]`.
Every setting has a default that serves a newcomer with no file at all. Unknown keys are errors, so a typo is
reported instead of silently ignored. Read once at the edge (CLI or daemon start) and passed in.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon.errors import ConfigError
from daemon.paths import BatonPaths


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _expand(value: Path | None) -> Path | None:
    return None if value is None else Path(os.path.expanduser(str(value)))


class GeneralSettings(Section):
    timezone: str = Field(
        default="", description="IANA zone for display and daily grouping; empty = the system's zone"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_max_bytes: int = Field(default=5_000_000, ge=10_000, description="rotate the log file past this size")
    log_backups: int = Field(default=3, ge=0, le=50)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
                ) from exc
        return value


class TranscriptSettings(Section):
    roots: list[Path] = Field(
        default_factory=list,
        description="Claude dirs to follow; empty = CLAUDE_CONFIG_DIR, else ~/.config/claude and ~/.claude",
    )

    @field_validator("roots")
    @classmethod
    def _expand_roots(cls, value: list[Path]) -> list[Path]:
        return [Path(os.path.expanduser(str(p))) for p in value]


class PricingSettings(Section):
    mode: Literal["auto", "calculate", "display"] = "auto"
    file: Path | None = Field(
        default=None, description="a JSON file of prices that adds to or overrides the bundled table"
    )

    _expand = field_validator("file")(classmethod(lambda cls, v: _expand(v)))

    @field_validator("file")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"price file not found: {value}")
        return value


class QuotaSettings(Section):
    plan: Literal["pro", "max5", "max20", "custom", "auto"] = "auto"
    token_limit: int | None = Field(default=None, gt=0, description="tokens per 5-hour window (custom plan)")
    cost_limit: float | None = Field(default=None, gt=0, description="USD per 5-hour window (custom plan)")
    message_limit: int | None = Field(
        default=None, gt=0, description="messages per 5-hour window (custom plan)"
    )
    weekly_token_limit: int | None = Field(
        default=None, gt=0, description="tokens per 7 days; empty = from the plan"
    )
    window_hours: float = Field(default=5.0, gt=0, le=24)
    oauth_usage: bool = Field(
        default=False, description="read Anthropic's OAuth usage endpoint with your Claude login"
    )
    oauth_url: str = "https://api.anthropic.com/api/oauth/usage"
    oauth_cache_seconds: int = Field(default=300, ge=30)

    @model_validator(mode="after")
    def _custom_needs_a_limit(self) -> QuotaSettings:
        if self.plan == "custom" and not (self.token_limit or self.cost_limit or self.message_limit):
            raise ValueError("plan 'custom' needs token_limit, cost_limit or message_limit")
        return self


def _thresholds(value: list[int]) -> list[int]:
    for i, t in enumerate(value):
        if not 1 <= t <= 100:
            raise ValueError(f"thresholds[{i}] = {t}: must be between 1 and 100")
    return sorted(set(value))


class AlertSettings(Section):
    thresholds: list[int] = Field(default_factory=lambda: [80, 90, 95])
    weekly_thresholds: list[int] = Field(default_factory=lambda: [80, 90, 95])
    reset_notice: bool = Field(default=True, description="say when a window resets and the quota is back")
    daily_budget_usd: float | None = Field(default=None, gt=0, description="API plans: alert on daily spend")
    weekly_budget_usd: float | None = Field(default=None, gt=0)
    monthly_budget_usd: float | None = Field(default=None, gt=0)

    _check = field_validator("thresholds", "weekly_thresholds")(classmethod(lambda cls, v: _thresholds(v)))


class NotifySettings(Section):
    backend: Literal["auto", "dbus", "plyer", "osascript", "log"] = "auto"
    app_name: str = "baton"
    sound: bool = True


class SchedulerSettings(Section):
    offset_minutes: int = Field(default=5, ge=0, le=24 * 60, description="launch this long after the reset")
    reminder_minutes: int = Field(default=5, ge=0, le=120, description="notify this long before a launch")
    grace_minutes: int = Field(
        default=60, ge=0, description="launch on wake if the time was missed by less than this"
    )
    retry_minutes: int = Field(
        default=30, ge=1, description="when the quota has not reset yet, try again after this"
    )
    max_retries: int = Field(default=4, ge=0, le=100)
    reset_below_percent: float = Field(
        default=50.0, ge=0, le=100, description="official figure below this = reset"
    )
    auto_mode: bool = Field(
        default=True, description="at the limit, schedule the pending handoff's launch by itself"
    )


class LaunchSettings(Section):
    mode: Literal["auto", "tmux", "terminal", "headless"] = "auto"
    claude_path: str = "claude"
    tmux_path: str = "tmux"
    model: str | None = None
    agent: str | None = None
    permission_mode: (
        Literal["default", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions"] | None
    ) = None
    extra_args: list[str] = Field(default_factory=list)


class CategoryRule(Section):
    pattern: str
    category: str


class SessionSettings(Section):
    idle_minutes: int = Field(
        default=30, ge=1, description="close a session record after this long without activity"
    )
    active_gap_minutes: int = Field(
        default=5, ge=1, description="gaps shorter than this count as active time"
    )
    default_category: str = "general"
    categories: list[CategoryRule] = Field(default_factory=list)


class Settings(BaseSettings):
    """Every setting baton has, grouped by the part of baton that uses it."""

    model_config = SettingsConfigDict(env_prefix="BATON_", env_nested_delimiter="__", extra="forbid")

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    transcripts: TranscriptSettings = Field(default_factory=TranscriptSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    launch: LaunchSettings = Field(default_factory=LaunchSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


_TOML_FILE: dict[str, Path | None] = {"path": None}


def format_error(error: Mapping[str, Any]) -> str:
    """Return one pydantic error as "At 'section.key[i]': message"."""
    loc = ""
    for part in error.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown setting"
    return f"At '{loc or '(top level)'}': {message}"


def load_settings(paths: BatonPaths | None = None, **overrides: Any) -> Settings:
    """Return the effective settings. Raise ConfigError naming every problem (syntax, types, ranges, keys)."""
    paths = paths or BatonPaths.from_env()
    file = paths.config_file
    if file.exists():
        try:
            tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"TOML syntax: {exc}"], str(file)) from exc
        except OSError as exc:
            raise ConfigError([f"cannot read: {exc.strerror}"], str(file)) from exc
    _TOML_FILE["path"] = file if file.exists() else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        source = f"{file} and BATON_* variables" if file.exists() else "BATON_* environment variables"
        raise ConfigError([format_error(e) for e in exc.errors()], source) from exc
    finally:
        _TOML_FILE["path"] = None
