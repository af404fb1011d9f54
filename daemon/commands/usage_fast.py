"""`baton report daily|weekly|monthly|session --json` without click: the scripted, most frequent use of the
usage reports (a status bar, a cron job) answers without click's import, about a sixth of a warm report's
time. Any other arguments (another report, a filter, --help, a typo) go through the click command as before,
which shares `prepare` and `period_json` with this path.
"""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from daemon.usage_reports import ReportOptions

FAST_KINDS = frozenset({"daily", "weekly", "monthly", "session"})
JSON_FLAGS = frozenset({"-j", "--json"})


def main(argv: list[str]) -> int:
    """`baton report ARGS`: the JSON of a whole-history period report here, anything else through click."""
    from daemon.cli import run_click, run_fast

    if len(argv) == 2 and argv[0] in FAST_KINDS and argv[1] in JSON_FLAGS:
        return run_fast(lambda: print(period_json(argv[0])))
    run_click(["report", *argv])
    return 0


def period_json(kind: str) -> str:
    """Return the ccusage-compatible JSON of the whole-history `kind` report, after catching up."""
    from daemon import usage_reports as ur

    db, zone, mode = prepare(None)
    opts = report_options(db, None, None, zone, None, mode)
    with closing(ur.read_only(db)) as conn:
        return ur.dumps(ur.report_json(ur.period_report(conn, kind, opts)))


def report_options(
    db: Path, since: str | None, until: str | None, zone: str, project: str | None, mode: str
) -> ReportOptions:
    """Return the ReportOptions of a usage report (dates checked, a project resolved to its slugs)."""
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
        from daemon.commands.ingest import run_catch_up

        run_catch_up(paths, quiet_log=True, only_if_changed=True)
    if stamp is not None and not validated:
        save_meta(paths.ledger_db, CONFIG_OK, stamp)
    return paths.ledger_db, quick.timezone, mode
