"""The time zone baton shows times in: `general.timezone` when set, else the system's.

One place decides it for every time this area prints or writes for a person (reports, exports, the hook's
note, backup names), so a daemon under systemd (zone from /etc/localtime) and a shell (zone from TZ) show
the same clock when the config names a zone. Light: the standard library and `daemon.timeutil` only (no
pydantic), since the hooks and warm reports use it.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.timeutil import local_zone, resolve_zone

if TYPE_CHECKING:
    from daemon.paths import BatonPaths


def configured_name(paths: BatonPaths) -> str | None:
    """Return `general.timezone` ($BATON_GENERAL__TIMEZONE, else config.toml), or None when unset.

    Reads just this key with tomllib: `baton config validate` checks the whole file.
    """
    name = os.environ.get("BATON_GENERAL__TIMEZONE")
    if name:
        return name
    try:
        data = tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    general = data.get("general")
    zone = general.get("timezone") if isinstance(general, dict) else None
    return zone if isinstance(zone, str) and zone else None


def display_zone(name: str | None) -> tzinfo:
    """Return the IANA zone `name`, or the system's zone when `name` is empty or unknown. Never raises."""
    return resolve_zone(name)


def strict_zone(name: str | None) -> tzinfo:
    """Return the IANA zone `name` (the system's when empty). Raise BatonError when `name` is unknown."""
    if not name:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        from daemon.errors import BatonError

        raise BatonError(f"unknown time zone {name!r}", hint="use an IANA name such as Europe/Paris") from exc


def zone_for(paths: BatonPaths) -> tzinfo:
    """Return the display zone for this BATON_HOME (never raises: a bad name falls back to the system's)."""
    return display_zone(configured_name(paths))


def now_in(zone: tzinfo) -> datetime:
    """Return the current time, aware, in `zone`."""
    return datetime.now(zone)
