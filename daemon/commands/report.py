"""`baton report`: one group. Usage reports (daily weekly monthly session blocks) live here; session
reports (engineer E) and estimates (engineer F) are imported only when their sub-command is called.

The usage reports first catch up on new transcript bytes, and only then import the heavy parts
(SQLAlchemy, pydantic-settings): with nothing new, `report daily --json` stats the files, compares them
with the ledger over stdlib sqlite3 and answers from one SQL query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from typing import Any, TypeVar

import click

from daemon.cli import LazyGroup
from daemon.commands.usage_fast import prepare, report_options
from daemon.errors import BatonError

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


@click.group(cls=LazyGroup, lazy=LAZY)
def report() -> None:
    """Usage reports (ccusage-compatible) and session reports."""


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
    opts = report_options(db, kw["since"], kw["until"], kw["zone"] or zone, kw["project"], mode)
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
    opts = report_options(db, kw["since"], kw["until"], kw["zone"] or zone, kw["project"], mode)
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
