"""baton's settings: defaults, then `config.toml` under BATON_HOME, then `BATON_*` environment variables.

Nested keys use `__` in the environment: `BATON_QUOTA__PLAN=custom`, `BATON_ALERTS__THRESHOLDS=[80,90,95]`.
Every setting has a default that serves a newcomer with no file at all. Unknown keys are errors, so a typo is
reported instead of silently ignored. Read once at the edge (CLI or daemon start) and passed in.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from daemon.errors import ConfigError
from daemon.paths import BatonPaths, setting_variables


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
    read_login_plan: bool = Field(
        default=True,
        description="auto plan: read the subscription of Claude Code's login (plain fields, never a token)",
    )
    oauth_url: str = "https://api.anthropic.com/api/oauth/usage"
    oauth_cache_seconds: int = Field(default=300, ge=30)

    @field_validator("oauth_url")
    @classmethod
    def _oauth_url_is_anthropic(cls, value: str) -> str:
        from daemon.oauth import url_problem  # the login token must never go anywhere else

        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _custom_needs_a_limit(self) -> QuotaSettings:
        if self.plan == "custom" and not (self.token_limit or self.cost_limit or self.message_limit):
            raise ValueError("plan 'custom' needs token_limit, cost_limit or message_limit")
        return self


def _percent(value: int) -> int:
    if not 1 <= value <= 100:
        raise ValueError(f"{value} is out of range: must be between 1 and 100")
    return value


# Each item is checked on its own, so every bad item is reported (at its index), not only the first.
Percents = Annotated[list[Annotated[int, AfterValidator(_percent)]], AfterValidator(lambda v: sorted(set(v)))]


class AlertSettings(Section):
    thresholds: Percents = Field(
        default_factory=lambda: [80, 90, 95],
        description="notify as the 5-hour window passes each percentage (1-100)",
    )
    weekly_thresholds: Percents = Field(
        default_factory=lambda: [80, 90, 95],
        description="notify as the weekly limit passes each percentage (1-100)",
    )
    reset_notice: bool = Field(default=True, description="say when a window resets and the quota is back")
    daily_budget_usd: float | None = Field(default=None, gt=0, description="API plans: alert on daily spend")
    weekly_budget_usd: float | None = Field(default=None, gt=0)
    monthly_budget_usd: float | None = Field(default=None, gt=0)


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
    terminal_app: Literal["Terminal", "iTerm"] = Field(default="Terminal", description="macOS app to use")
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
        sources: list[PydanticBaseSettingsSource] = [init_settings, _EnvSource(settings_cls)]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


_TOML_FILE: dict[str, Path | None] = {"path": None}
# (dotted key, variable, JSON error) for each BATON_* value that is not the JSON its setting needs, noted by
# _EnvSource during one load_settings call.
_ENV_JSON_PROBLEMS: list[tuple[str, str, str]] = []


class _EnvSource(EnvSettingsSource):
    """The BATON_* source, noting each variable whose value is not valid JSON (for a list or table setting)
    and leaving it out, instead of failing the whole source at the first one: every problem gets named."""

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except json.JSONDecodeError as exc:  # the whole section as JSON (BATON_ALERTS='{...}') did not decode
            _ENV_JSON_PROBLEMS.append((field_name, f"{self.env_prefix}{field_name}", str(exc)))
            return self.explode_env_vars(field_name, field, self.env_vars) or None

    def explode_env_vars(
        self, field_name: str, field: FieldInfo, env_vars: Mapping[str, str | None]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        prefix = self.env_prefix if self.case_sensitive else self.env_prefix.lower()
        for name, value in env_vars.items():
            if not name.startswith(prefix):
                continue
            try:
                one = super().explode_env_vars(field_name, field, {name: value})
            except json.JSONDecodeError as exc:
                key = name[len(self.env_prefix) :].replace(str(self.env_nested_delimiter), ".")
                _ENV_JSON_PROBLEMS.append((key, name, str(exc)))
                continue
            _merge(result, one)
        return result


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Merge nested dict `new` into `into`, key by key."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def format_error(error: Mapping[str, Any], where: str | None = None) -> str:
    """Return one pydantic error as "At 'section.key[i]' (where): message"; `where` is a line or variable."""
    loc = ""
    for part in error.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown setting"
    return f"At '{loc or '(top level)'}'{f' ({where})' if where else ''}: {message}"


_HEADER = re.compile(r"^\s*\[\[?\s*([\w.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([\w.\-\"' ]+?)\s*=")


def _unquote_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def toml_line(text: str, keys: Sequence[str]) -> int | None:
    """Return the 1-based line of `text` where the setting `keys` (e.g. ["alerts", "thresholds"]) is written,
    or where its table starts when the key itself is not found; None when neither is in the file."""
    table: list[str] = []
    table_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _unquote_key(header.group(1))
            if table == list(keys[:1]) and table_line is None:
                table_line = number
            continue
        key = _KEY.match(line)
        if key and [*table, *_unquote_key(key.group(1))] == list(keys[:2]):
            return number
    return table_line


def env_variable(keys: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Return the BATON_* variable that sets the setting `keys` (or its whole section), if one is set."""
    upper = {k.upper(): k for k in env}
    for candidate in ("__".join(keys[:2]), keys[0] if keys else ""):
        name = f"BATON_{candidate}".upper()
        if candidate and name in upper:
            return upper[name]
    return None


def _where(error: Mapping[str, Any], file: Path, text: str, env: Mapping[str, str]) -> str | None:
    keys = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
    if not keys:
        return None
    variable = env_variable(keys, env)
    if variable:
        return f"from ${variable}"
    line = toml_line(text, keys) if text else None
    return f"{file.name} line {line}" if line else None


def _env_json_problem(key: str, variable: str, error: str, env: Mapping[str, str]) -> str:
    """Return a BATON_* value that is not valid JSON as a problem naming the setting and the variable."""
    name = next((k for k in env if k.upper() == variable.upper()), variable.upper())
    return (
        f"At '{key.lower()}' (from ${name}): not valid JSON ({error}); lists and tables are JSON"
        " in the environment, e.g. BATON_ALERTS__THRESHOLDS='[80, 90, 95]'"
    )


def _settings_error_problem(message: str, env: Mapping[str, str]) -> str:
    """Return any other failure of a settings source (unexpected) as a problem naming the section."""
    match = re.search(r'field "(\w+)"', message)
    section = match.group(1) if match else ""
    names = sorted(k for k in env if section and k.upper().startswith(f"BATON_{section.upper()}"))
    where = ", ".join(f"${n}" for n in names) or "a BATON_* variable"
    return f"At '{section or '(top level)'}' (from {where}): {message}"


def load_settings(paths: BatonPaths | None = None, **overrides: Any) -> Settings:
    """Return the effective settings. Raise ConfigError naming every problem (syntax, types, ranges, keys)."""
    paths = paths or BatonPaths.from_env()
    file = paths.config_file
    text = ""
    if file.exists():
        try:
            text = file.read_text(encoding="utf-8")
            tomllib.loads(text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"TOML syntax: {exc}"], str(file)) from exc
        except OSError as exc:
            raise ConfigError([f"cannot read: {exc.strerror}"], str(file)) from exc
    _TOML_FILE["path"] = file if file.exists() else None
    env_set = bool(setting_variables(os.environ))
    if file.exists():
        source = f"{file} and BATON_* variables" if env_set else str(file)
    else:
        source = "BATON_* environment variables"
    _ENV_JSON_PROBLEMS.clear()
    env: Mapping[str, str] = os.environ
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = [_env_json_problem(*p, env) for p in _ENV_JSON_PROBLEMS]
        # A variable left out as not JSON did not set anything: the value checked came from the file.
        left_out = {variable.upper() for _, variable, _ in _ENV_JSON_PROBLEMS}
        env = {k: v for k, v in env.items() if k.upper() not in left_out}
        problems += [format_error(e, _where(e, file, text, env)) for e in exc.errors()]
        raise ConfigError(problems, source) from exc
    except SettingsError as exc:
        raise ConfigError([_settings_error_problem(str(exc), env)], source) from exc
    finally:
        _TOML_FILE["path"] = None
    if _ENV_JSON_PROBLEMS:  # BATON_* values left out as not JSON: the rest was valid
        problems = [_env_json_problem(*p, env) for p in _ENV_JSON_PROBLEMS]
        _ENV_JSON_PROBLEMS.clear()
        raise ConfigError(problems, source)
    return settings
