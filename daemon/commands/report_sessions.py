"""`baton report summary|by-repo|by-category|by-model|recent|trends|value|compare|html` (session reports).

Each command brings the session records up to date from the ledger (only when it has new events), loads the
sessions of the period and prints one report as a table, JSON (--json) or CSV (--csv).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

import click

from daemon import session_reports as sr
from daemon import zones
from daemon.errors import BatonError
from daemon.paths import BatonPaths

F = TypeVar("F", bound=Callable[..., Any])


def _zone(name: str | None, paths: BatonPaths) -> tzinfo:
    """Return the zone named by --timezone, else the configured `general.timezone`, else the system's.
    Raise BatonError on an unknown name."""
    return zones.strict_zone(name or zones.configured_name(paths))


@dataclass(frozen=True)
class Period:
    tz: tzinfo
    since_ms: int | None
    until_ms: int | None
    first: date | None
    last: date | None


def refresh_sessions(paths: BatonPaths) -> None:
    """Bring the session records up to date when the ledger has events they have not seen (loads the settings
    only then). Raise BatonError when there is no ledger yet."""
    db = paths.ledger_db
    try:
        _catch_up()
    except BatonError as exc:
        if not db.exists():
            raise
        # The ledger still answers for what it holds: say why it may be behind, then report.
        click.echo(f"{exc.render()}\nbaton: reporting from the ledger as it is.", err=True)
    if not db.exists():
        raise BatonError(
            f"no ledger at {db} yet", hint="run `baton ingest` (or start the daemon with `baton run`)"
        )
    from daemon import sessions

    sessions.ensure_schema(db)
    with sessions.connect(db) as conn:
        if not _has(conn, "usage_events"):
            return
        if not sessions.needs_refresh(conn, _pricing_mode(paths)):
            return
    from daemon.config import load_settings

    settings = load_settings(paths)
    sessions.refresh_db(db, settings.sessions, pricing_mode=settings.pricing.mode)


def _catch_up() -> None:
    """Read new transcript lines into the ledger first (the usage reports' own catch-up), so that session
    reports are current even when the daemon is not running."""
    try:
        from daemon.commands.usage_fast import prepare
    except ImportError:
        return
    prepare(None)


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
        is not None
    )


@contextmanager
def opened(paths: BatonPaths) -> Iterator[sqlite3.Connection]:
    """Yield a read-only connection on the refreshed ledger."""
    refresh_sessions(paths)
    conn = sqlite3.connect(f"file:{paths.ledger_db}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def period(paths: BatonPaths, since: str | None, until: str | None, tz_name: str | None) -> Period:
    """Return the period the options name, in the chosen zone."""
    tz = _zone(tz_name, paths)
    since_ms = sr.parse_day(since, tz) if since else None
    until_ms = sr.parse_day(until, tz, end=True) if until else None
    if since_ms is not None and until_ms is not None and since_ms > until_ms:
        raise BatonError(f"--since {since} is after --until {until}")
    first = sr.local(since_ms, tz).date() if since_ms is not None else None
    last = sr.local(until_ms, tz).date() if until_ms is not None else None
    return Period(tz, since_ms, until_ms, first, last)


def report_options(func: F) -> F:
    """Add --since/--until/--timezone and --json/--csv to a report command."""
    options = [
        click.option("--since", metavar="DATE", help="First day (YYYY-MM-DD), in the report's time zone."),
        click.option("--until", metavar="DATE", help="Last day (YYYY-MM-DD), included."),
        click.option(
            "--timezone", "tz_name", metavar="ZONE", help="IANA zone for days (default: the config's)."
        ),
        click.option("--json", "fmt", flag_value="json", help="Print JSON."),
        click.option("--csv", "fmt", flag_value="csv", help="Print CSV."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _emit(report: sr.Report, fmt: str | None) -> None:
    click.echo(sr.render(report, fmt or "table").rstrip("\n"))


def _simple(build: Callable[[list[sr.SessionRow], Period], sr.Report]) -> Callable[..., None]:
    @functools.wraps(build)
    def run(since: str | None, until: str | None, tz_name: str | None, fmt: str | None) -> None:
        paths = BatonPaths.from_env()
        p = period(paths, since, until, tz_name)
        with opened(paths) as conn:
            rows = sr.load_sessions(conn, p.since_ms, p.until_ms)
        _emit(build(rows, p), fmt)

    return run


@click.command("summary")
@report_options
def summary(**kw: Any) -> None:
    """Totals for the period: sessions, tokens by kind, cost, active time, averages, top repo and model."""
    paths = BatonPaths.from_env()
    p = period(paths, kw["since"], kw["until"], kw["tz_name"])
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, p.since_ms, p.until_ms)
        models = sr.load_models(conn, p.since_ms, p.until_ms, _pricing_mode(paths))
    _emit(sr.summary(rows, p.tz, models), kw["fmt"])


@click.command("by-repo")
@report_options
def by_repo(**kw: Any) -> None:
    """Sessions, tokens, cost and active time per git repository."""
    _simple(lambda rows, p: sr.by_repo(rows))(**kw)


@click.command("by-category")
@report_options
def by_category(**kw: Any) -> None:
    """Sessions, tokens, cost and active time per category (rules in `sessions.categories`)."""
    _simple(lambda rows, p: sr.by_category(rows))(**kw)


@click.command("by-model")
@report_options
def by_model(since: str | None, until: str | None, tz_name: str | None, fmt: str | None) -> None:
    """Tokens and cost per model, from every API response in the period."""
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    with opened(paths) as conn:
        models = sr.load_models(conn, p.since_ms, p.until_ms, _pricing_mode(paths))
    _emit(sr.by_model(models), fmt)


def _pricing_mode(paths: BatonPaths) -> str:
    mode = os.environ.get("BATON_PRICING__MODE")
    if mode:
        return mode
    try:
        data = tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return "auto"
    section = data.get("pricing")
    return str(section.get("mode", "auto")) if isinstance(section, dict) else "auto"


@click.command("recent")
@report_options
@click.option("-n", "--limit", default=10, show_default=True, type=click.IntRange(1, 10_000))
def recent(since: str | None, until: str | None, tz_name: str | None, fmt: str | None, limit: int) -> None:
    """The latest sessions: start, active time, messages, tokens, cost, repo, category, value and tags.

    Ids show as their shortest unambiguous prefix (at least 8 characters), which `--session` accepts."""
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, p.since_ms, p.until_ms)
        known = sr.load_session_ids(conn)
    _emit(sr.recent(rows, p.tz, limit, known), fmt)


def _span(p: Period, default_days: int) -> tuple[date, date]:
    today = zones.now_in(p.tz).date()
    last = p.last or today
    first = p.first or (last - timedelta(days=default_days - 1))
    return first, last


@click.command("trends")
@report_options
def trends(since: str | None, until: str | None, tz_name: str | None, fmt: str | None) -> None:
    """Daily tokens and cost with their 7-day rolling average (default: the last 30 days)."""
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    first, last = _span(p, 30)
    start = sr.parse_day((first - timedelta(days=6)).isoformat(), p.tz)
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, start, sr.parse_day(last.isoformat(), p.tz, end=True))
    _emit(sr.trends(rows, p.tz, first, last), fmt)


@click.command("value")
@report_options
def value(since: str | None, until: str | None, tz_name: str | None, fmt: str | None) -> None:
    """What sessions delivered: cost per value class, zero-value share, and the patterns worth acting on."""
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, p.since_ms, p.until_ms)
        loose = sr.load_unattached(conn, p.since_ms, p.until_ms)
        known = sr.load_session_ids(conn)
    _emit(sr.value(rows, loose, known), fmt)


@click.command("compare")
@report_options
@click.option(
    "--before-after", "split", metavar="DATE", help="Compare sessions before DATE with those from it on."
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag to compare (give two or more).")
def compare(
    since: str | None,
    until: str | None,
    tz_name: str | None,
    fmt: str | None,
    split: str | None,
    tags: tuple[str, ...],
) -> None:
    """Compare a strategy: sessions, average and total tokens and cost, before/after a date or by tag."""
    if bool(split) == bool(tags):
        raise BatonError(
            "give either --before-after DATE or two or more --tag", hint="e.g. --before-after 2026-03-01"
        )
    if tags and len(tags) < 2:
        raise BatonError("--tag needs at least two tags to compare")
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, p.since_ms, p.until_ms)
    if split:
        cut = sr.parse_day(split, p.tz)
        groups = [
            (f"before {split}", [s for s in rows if s.started_ms < cut]),
            (f"from {split}", [s for s in rows if s.started_ms >= cut]),
        ]
    else:
        groups = [(f"tag {t}", [s for s in rows if t in s.tags]) for t in tags]
    _emit(sr.compare(groups), fmt)


@click.command("html")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", metavar="DATE", help="First day (default: 30 days ago).")
@click.option("--until", metavar="DATE", help="Last day (default: today).")
@click.option("--timezone", "tz_name", metavar="ZONE", help="IANA zone for days (default: the config's).")
def html(file: Path, since: str | None, until: str | None, tz_name: str | None) -> None:
    """Write one self-contained HTML page with the daily, by-model and by-repo charts."""
    paths = BatonPaths.from_env()
    p = period(paths, since, until, tz_name)
    first, last = _span(p, 30)
    since_ms, until_ms = sr.parse_day(first.isoformat(), p.tz), sr.parse_day(last.isoformat(), p.tz, end=True)
    with opened(paths) as conn:
        rows = sr.load_sessions(conn, since_ms, until_ms)
        models = sr.load_models(conn, since_ms, until_ms, _pricing_mode(paths))
    page = sr.html_page(rows, models, p.tz, first, last, zones.now_in(p.tz))
    try:
        file.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise BatonError(f"cannot write {file}: {exc.strerror}") from exc
    click.echo(f"Wrote {file} ({len(rows)} sessions, {first} to {last}).")
