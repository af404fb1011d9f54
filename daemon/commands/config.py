"""`baton config init|show|validate|path`: write, inspect and check the configuration.

The file `config init` writes is generated from the Settings model (names, defaults, descriptions, allowed
values, ranges), so it cannot drift from what baton reads.
"""

from __future__ import annotations

import json
import os
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from daemon import __version__
from daemon.config import Settings, env_variable, load_settings
from daemon.errors import BatonError
from daemon.paths import BatonPaths

# --- pure core: the commented file, and where each value came from ---


def toml_value(value: Any) -> str:
    """Return `value` (str, Path, bool, number, list, model) as a TOML value. Raise TypeError for None."""
    if value is None:
        raise TypeError("TOML has no null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return _toml_string(str(value))
    if isinstance(value, BaseModel):
        items = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.model_dump().items() if v is not None)
        return f"{{ {items} }}"
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None
        )
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_string(text: str) -> str:
    """Return `text` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _args(annotation: Any) -> list[Any]:
    """Return the members of a union (X | None), or [annotation] when it is not one."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def describe(field: FieldInfo) -> str:
    """Return the comment for one setting: its description, allowed values or type, and range."""
    parts = [field.description] if field.description else []
    kinds = _args(field.annotation)
    literals = [a for k in kinds if typing.get_origin(k) is Literal for a in typing.get_args(k)]
    if literals:
        parts.append("one of: " + ", ".join(str(v) for v in literals))
    signs = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
    limits = [
        f"{sign} {getattr(m, attr)}" for m in field.metadata for attr, sign in signs if hasattr(m, attr)
    ]
    if limits:
        parts.append("range " + ", ".join(limits))
    return "; ".join(parts)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", Path: "a path", bool: "true or false"}


def render_default_config(model: type[Settings] = Settings) -> str:
    """Return a commented TOML file with every setting of `model` at its default (unset ones commented)."""
    lines = [
        "# baton configuration: every setting, at its default.",
        f"# Written by `baton config init` (baton {__version__}). Delete a line to follow future defaults.",
        "# Any setting can also come from the environment, which wins over this file:",
        "#   BATON_<SECTION>__<KEY>, e.g. BATON_QUOTA__PLAN=max5 or BATON_ALERTS__THRESHOLDS='[80, 90]'.",
        "# Check it with `baton config validate`; see where each value comes from with `baton config show`.",
    ]
    defaults = model.model_construct()
    for section, section_field in model.model_fields.items():
        section_model = section_field.annotation
        assert isinstance(section_model, type) and issubclass(section_model, BaseModel)
        lines += ["", f"[{section}]"]
        if section_model.__doc__ and section_model.__doc__ != BaseModel.__doc__:
            lines.append(f"# {section_model.__doc__.strip().splitlines()[0]}")
        current = getattr(defaults, section)
        for name, field in section_model.model_fields.items():
            comment = describe(field)
            if comment:
                lines.append(f"# {comment}")
            value = getattr(current, name)
            if value is None:
                kind = next((_TYPE_NAMES[k] for k in _args(field.annotation) if k in _TYPE_NAMES), "a string")
                lines.append(f"# {name} =   (unset by default; {kind})")
            else:
                lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def flatten(settings: BaseModel) -> Iterator[tuple[str, str, Any]]:
    """Yield (section, key, value) for every setting."""
    for section in type(settings).model_fields:
        group = getattr(settings, section)
        for key in type(group).model_fields:
            yield section, key, getattr(group, key)


def source_of(section: str, key: str, file_data: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """Return where the effective value of section.key comes from: "env $NAME", "file" or "default"."""
    variable = env_variable([section, key], env)
    if variable:
        return f"env ${variable}"
    table = file_data.get(section)
    if isinstance(table, Mapping) and key in table:
        return "file"
    return "default"


def _shown(value: Any) -> str:
    return "(unset)" if value is None else toml_value(value)


# --- commands ---


@click.group()
def config() -> None:
    """Write, show and validate the configuration (config.toml under BATON_HOME, plus BATON_* variables)."""


@config.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the file instead of writing it.")
def init(force: bool, to_stdout: bool) -> None:
    """Write config.toml with every setting, its default and what it does."""
    text = render_default_config()
    if to_stdout:
        click.echo(text, nl=False)
        return
    file = BatonPaths.from_env().config_file
    if file.exists() and not force:
        raise BatonError(f"{file} already exists", hint="use --force to replace it, or --stdout to compare")
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote {file}")


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {section: {key: {value, source}}}.")
def show(as_json: bool) -> None:
    """Print every effective setting and where it came from (default, file or environment)."""
    paths = BatonPaths.from_env()
    settings = load_settings(paths)
    file = paths.config_file
    file_data = tomllib.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    rows = [(s, k, v, source_of(s, k, file_data, os.environ)) for s, k, v in flatten(settings)]
    if as_json:
        dumped = settings.model_dump(mode="json")
        out: dict[str, dict[str, Any]] = {}
        for section, key, _value, source in rows:
            out.setdefault(section, {})[key] = {"value": dumped[section][key], "source": source}
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"# file: {file} ({'found' if file.is_file() else 'not found: every value is a default'})")
    section_now = ""
    width = max(len(k) for _, k, _, _ in rows)
    for section, key, value, source in rows:
        if section != section_now:
            click.echo(f"\n[{section}]")
            section_now = section
        click.echo(f"{key.ljust(width)} = {_shown(value)}   # {source}")


@config.command()
def validate() -> None:
    """Check the file and BATON_* variables; list every problem with its location (exit 78 if any)."""
    paths = BatonPaths.from_env()
    load_settings(paths)  # raises ConfigError listing every problem; the CLI prints it and exits 78
    file = paths.config_file
    if file.is_file():
        click.echo(f"{file}: valid")
    else:
        click.echo(f"no file at {file}: every setting is at its default (valid)")


@config.command()
def path() -> None:
    """Print where the configuration file is (or would be)."""
    click.echo(str(BatonPaths.from_env().config_file))
