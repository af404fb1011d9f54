"""`baton report`: one group. Usage reports (daily weekly monthly session blocks) live here; session
reports (engineer E) and estimates (engineer F) are imported only when their sub-command is called.

The usage reports first catch up on new transcript bytes, and only then import the heavy parts
(SQLAlchemy, pydantic-settings): with nothing new, `report daily --json` stats the files, compares them
with the ledger over stdlib sqlite3 and answers from one SQL query.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import click

from daemon.cli import LazyGroup
from daemon.errors import BatonError
from daemon.paths import BatonPaths

F = TypeVar("F", bound=Callable[..., Any])

_SESSIONS = "daemon.commands.report_sessions"
LAZY: dict[str, tuple[str, str]] = {
    "daily": ("daemon.commands.report:daily", "Usage by day (ccusage-compatible)."),
    "weekly": ("daemon.commands.report:weekly", "Usage by week, Monday to Sunday (ccusage-compatible)."),
    "monthly": ("daemon.commands.report:monthly", "Usage by month (ccusage-compatible)."),
    "session": ("daemon.commands.report:session", "Usage by Claude Code session (ccusage-compatible)."),
    "blocks": ("daemon.commands.report:blocks", "Usage by 5-hour billing block (ccusage-compatible)."),
    "summary": (f"{_SESSIONS}:summary", "Sessions of a period: count, time, cost, value."),
    "by-repo": (f"{_SESSIONS}:by_repo", "Sessions grouped by repository."),
    "by-category": (f"{_SESSIONS}:by_category", "Sessions grouped by category."),
    "by-model": (f"{_SESSIONS}:by_model", "Sessions grouped by model."),
    "recent": (f"{_SESSIONS}:recent", "The most recent sessions."),
    "trends": (f"{_SESSIONS}:trends", "Daily tokens and cost with a 7-day rolling average."),
    "value": (f"{_SESSIONS}:value", "What sessions delivered for what they cost."),
    "compare": (f"{_SESSIONS}:compare", "Compare two periods or strategies."),
    "html": (f"{_SESSIONS}:html", "Write an HTML report."),
    "estimate": ("daemon.commands.report_estimate:estimate", "How estimates compared with actual usage."),
}

PROGRESS_MIN_BYTES = 20 << 20


@click.group(cls=LazyGroup, lazy=LAZY)
def report() -> None:
    """Usage reports (ccusage-compatible) and session reports."""


# ---- catching up before a report -----------------------------------------------------------------


class _Bar:
    """A progress bar on stderr, shown only on a terminal and only when there is much to read."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=total, label="Reading transcripts", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def run_catch_up(paths: BatonPaths, *, quiet_log: bool, only_if_changed: bool = False) -> Any:
    """Catch up on every transcript (heavy imports happen here) and return the IngestSummary; with
    `only_if_changed`, through `daemon.ingest.ensure_current` (None when nothing changed).

    With no config.toml and no BATON_* setting in the environment there is nothing to validate: the
    catch-up runs on the defaults without importing pydantic (about 0.2 s of a first ingest's start-up)."""
    from daemon.ingest import cannot_write, catch_up, ensure_current

    settings = None
    if only_if_changed or not nothing_to_validate(paths, os.environ):
        from daemon.config import load_settings

        settings = load_settings(paths)
    level = DEFAULT_LOG_LEVEL if settings is None else settings.general.log_level
    try:
        paths.ensure()
        configure_logs_when_used(paths.log_file, level=level, console=not quiet_log)
    except OSError as exc:  # a read-only or full data folder
        raise cannot_write(Path(exc.filename or paths.ledger_db.parent), exc) from exc
    bar = _Bar()
    try:
        if only_if_changed:
            return ensure_current(paths, settings, progress=bar)
        return catch_up(paths, settings, progress=bar)
    finally:
        bar.close()


DEFAULT_LOG_LEVEL = "info"  # GeneralSettings.log_level's default (a test checks they agree)
_NOT_SETTINGS = frozenset({"BATON_HOME", "BATON_REQUIRE_REAL"})  # BATON_* variables that set nothing


def nothing_to_validate(paths: BatonPaths, env: Mapping[str, str]) -> bool:
    """True when the settings can only be the defaults: no config.toml, no BATON_* setting variable."""
    if any(k.upper().startswith("BATON_") and k.upper() not in _NOT_SETTINGS for k in env):
        return False
    return not os.path.lexists(paths.config_file)


def configure_logs_when_used(log_file: Path, *, level: str, console: bool) -> None:
    """`daemon.logs.configure(log_file, level=level, console=console, plain=True)`, done when the first
    record is logged rather than now: structlog's import and set-up (about 50 ms) are paid only by a run that
    logs something. The log file is created now, as `configure` would (private; an unwritable data folder
    fails here, not at the first record)."""
    import logging

    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    os.chmod(log_file, 0o600)
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))  # the same records are made as after it

    class _ConfigureOnFirstRecord(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            from daemon import logs

            root.handlers = []  # a new list: the loop that called this one ends here
            logs.configure(log_file, level=level, console=console, plain=True)
            for handler in root.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            return True

        def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does the work
            self.handle(record)

    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ConfigureOnFirstRecord())


def prepare(mode: str | None) -> tuple[Path, str, str]:
    """Bring the ledger up to date if anything changed; return (ledger path, configured zone, cost mode)."""
    from daemon.transcripts import roots_from
    from daemon.usage_reports import (
        CONFIG_OK,
        QuickSettings,
        config_stamp,
        needs_ingest,
        quick_settings,
        save_meta,
        stored_meta,
    )

    paths = BatonPaths.from_env()
    quick = quick_settings(paths.config_file, os.environ)
    # config.toml is read without pydantic only once it has passed full validation (the stamp of that file
    # is kept in the ledger): an invalid file fails here exactly as in every other command.
    stamp = config_stamp(paths.config_file) if quick.exact else None
    validated = stamp is None or stored_meta(paths.ledger_db, CONFIG_OK) == stamp
    if not quick.exact or not validated:
        from daemon.config import load_settings

        s = load_settings(paths)
        quick = QuickSettings(
            s.general.timezone, tuple(s.transcripts.roots), s.pricing.mode, s.pricing.file, exact=True
        )
    mode = mode or quick.pricing_mode
    roots = roots_from(list(quick.roots), os.environ)
    digest = None
    if mode != "display" or quick.pricing_file is not None:
        from daemon.prices_file import prices_digest

        digest = prices_digest(quick.pricing_file)
    if needs_ingest(paths.ledger_db, roots, digest):  # the stat-only check, without importing daemon.ingest
        run_catch_up(paths, quiet_log=True, only_if_changed=True)
    if stamp is not None and not validated:
        save_meta(paths.ledger_db, CONFIG_OK, stamp)
    return paths.ledger_db, quick.timezone, mode


# ---- the usage report commands -------------------------------------------------------------------


def usage_options(func: F) -> F:
    """Add the options every usage report shares."""
    options = [
        click.option("-s", "--since", help="First local day to include (YYYY-MM-DD or YYYYMMDD)."),
        click.option("-u", "--until", help="Last local day to include (inclusive)."),
        click.option(
            "-z",
            "--timezone",
            "zone",
            help="IANA zone for local days and times (default: config, else system).",
        ),
        click.option(
            "-p",
            "--project",
            help="Only this project: its directory name, its path, or its folder name under projects/.",
        ),
        click.option("-b", "--breakdown", is_flag=True, help="Show a row per model under each period."),
        click.option("-j", "--json", "as_json", is_flag=True, help="ccusage-compatible JSON."),
        click.option(
            "--csv", "as_csv", is_flag=True, help="CSV with plain numbers (with --breakdown: a Model column)."
        ),
        click.option(
            "-m",
            "--mode",
            type=click.Choice(["auto", "calculate", "display"]),
            help="Cost: costUSD when present else computed (auto), always computed, or costUSD only.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(
    db: Path, since: str | None, until: str | None, zone: str, project: str | None, mode: str
) -> Any:
    from daemon.usage_reports import ReportOptions, normalise_date, read_only, resolve_project

    slugs = None
    if project:
        with closing(read_only(db)) as conn:
            slugs = resolve_project(conn, project)
    return ReportOptions(
        since=normalise_date(since, "--since"),
        until=normalise_date(until, "--until"),
        zone=zone,
        project=slugs,
        mode=mode,
    )


def _check_dates(since: str | None, until: str | None) -> None:
    from daemon.usage_reports import normalise_date

    normalise_date(since, "--since")
    normalise_date(until, "--until")


def _check_zone(zone: str | None) -> None:
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BatonError(
                f"unknown time zone {zone!r}", hint="use an IANA name such as Europe/Paris"
            ) from exc


def _period_command(kind: str, **kw: Any) -> None:
    from daemon import usage_reports as ur

    _check_zone(kw["zone"])
    _check_dates(kw["since"], kw["until"])
    db, zone, mode = prepare(kw["mode"])
    opts = _options(db, kw["since"], kw["until"], kw["zone"] or zone, kw["project"], mode)
    with closing(ur.read_only(db)) as conn:
        rep = ur.period_report(conn, kind, opts)
    if kw["as_json"]:
        click.echo(ur.dumps(ur.report_json(rep)))
        return
    if kw["as_csv"]:
        click.echo(ur.render_csv(*ur.csv_rows(rep, kw["breakdown"])), nl=False)
        return
    header, rows = ur.table_rows(rep, kw["breakdown"])
    if kw.get("chart"):
        click.echo(ur.render_chart(rep))
    else:
        click.echo(ur.render_table(header, rows))
    if rep.unpriced:
        click.echo(f"Unpriced models (cost not counted): {', '.join(rep.unpriced)}", err=True)


@click.command("daily")
@usage_options
@click.option("--chart", is_flag=True, help="Bars of total tokens per day instead of the table.")
def daily(**kw: Any) -> None:
    """Usage by local day (ccusage-compatible)."""
    _period_command("daily", **kw)


@click.command("weekly")
@usage_options
def weekly(**kw: Any) -> None:
    """Usage by week starting Monday (ccusage-compatible)."""
    _period_command("weekly", **kw)


@click.command("monthly")
@usage_options
def monthly(**kw: Any) -> None:
    """Usage by month (ccusage-compatible)."""
    _period_command("monthly", **kw)


@click.command("session")
@usage_options
def session(**kw: Any) -> None:
    """Usage by Claude Code session; sub-agent files count in their parent session (ccusage-compatible)."""
    _period_command("session", **kw)


@click.command("blocks")
@usage_options
@click.option("--active", is_flag=True, help="Only the active block.")
@click.option("--recent", is_flag=True, help="Blocks of the last 3 days and the active one.")
def blocks(**kw: Any) -> None:
    """Usage by 5-hour block, with the active block's burn rate and projection (ccusage-compatible).

    Blocks start on a UTC hour (as Claude's limits do); the table shows their times in the display zone
    (--timezone, else general.timezone, else the system's) and names it. --json keeps ccusage's UTC times.
    """
    from daemon import usage_reports as ur
    from daemon.timeutil import resolve_zone

    _check_zone(kw["zone"])
    _check_dates(kw["since"], kw["until"])
    db, zone, mode = prepare(kw["mode"])
    opts = _options(db, kw["since"], kw["until"], kw["zone"] or zone, kw["project"], mode)
    now_ms = int(time.time() * 1000)
    with closing(ur.read_only(db)) as conn:
        found, unpriced = ur.blocks_report(conn, opts, now_ms, by_model=kw["breakdown"])
    if kw["active"]:
        found = [b for b in found if b.is_active]
    if kw["recent"]:
        found = [b for b in found if b.is_active or b.start_ms >= now_ms - 3 * 86_400_000]
    if kw["as_json"]:
        click.echo(ur.dumps(ur.blocks_json(found, kw["breakdown"])))
        return
    display = resolve_zone(opts.zone)
    if kw["as_csv"]:
        click.echo(ur.render_csv(*ur.blocks_csv_rows(found, display, kw["breakdown"])), nl=False)
    else:
        click.echo(ur.render_table(*ur.blocks_table(found, display, kw["breakdown"]), left=3))
    if unpriced:
        click.echo(f"Unpriced models (cost not counted): {', '.join(unpriced)}", err=True)
