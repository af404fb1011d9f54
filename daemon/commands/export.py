"""`baton export sessions-json|tracker|jsonl`: the session records as files other tools read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from daemon import exports, zones
from daemon import session_reports as sr
from daemon.commands.report_sessions import Period, opened, period
from daemon.errors import BatonError
from daemon.paths import BatonPaths

_period_options = [
    click.option("--since", metavar="DATE", help="First day (YYYY-MM-DD)."),
    click.option("--until", metavar="DATE", help="Last day (YYYY-MM-DD), included."),
    click.option("--timezone", "tz_name", metavar="ZONE", help="IANA zone for days (default: the config's)."),
]


def _load(since: str | None, until: str | None, tz_name: str | None) -> tuple[list[sr.SessionRow], Period]:
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    with opened(paths) as conn:
        return sr.load_sessions(conn, p.since_ms, p.until_ms), p


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:  # write beside it and rename: a reader (a site build, a cron job) never sees half a file
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except OSError as exc:
        raise BatonError(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"Wrote {output}", err=True)


@click.group()
def export() -> None:
    """Export the session records (sessions.json, TRACKER.md, an append-only JSONL log)."""


@export.command("sessions-json")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@_period_options[0]
@_period_options[1]
@_period_options[2]
def sessions_json(output: Path | None, since: str | None, until: str | None, tz_name: str | None) -> None:
    """sessions.json: every session with its durations, tokens and cost, totals per day, and totals."""
    rows, p = _load(since, until, tz_name)
    _write(json.dumps(exports.sessions_json(rows, p.tz), indent=2, ensure_ascii=False) + "\n", output)


@export.command("tracker")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@_period_options[0]
@_period_options[1]
@_period_options[2]
def tracker(output: Path | None, since: str | None, until: str | None, tz_name: str | None) -> None:
    """TRACKER.md: totals, a daily log table and averages, in Markdown."""
    rows, p = _load(since, until, tz_name)
    _write(exports.tracker_markdown(rows, p.tz, zones.now_in(p.tz)), output)


@export.command("jsonl")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_period_options[0]
@_period_options[1]
@_period_options[2]
def jsonl(file: Path, since: str | None, until: str | None, tz_name: str | None) -> None:
    """Append one JSON line per finished session to FILE; sessions already there are never written again."""
    rows, p = _load(since, until, tz_name)
    added = exports.append_jsonl(file, rows, p.tz)
    click.echo(f"Appended {added} session{'s' if added != 1 else ''} to {file}.")
