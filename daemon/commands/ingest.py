"""`baton ingest`: catch up on new transcript lines once, then exit with a one-line summary.

It runs without click (a fast path of `daemon.cli`: click's import is about 25 ms of a first ingest's
start-up, while the second core idles); only other arguments than `-j`/`--json` (`--help`, a typo) go
through the click command, built when asked for.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from daemon.paths import BatonPaths, setting_variables

HELP = "Catch up on new transcript lines once, then exit."
PROGRESS_MIN_BYTES = 20 << 20


def main(argv: list[str]) -> int:
    """`baton ingest [-j|--json]`; any other arguments are handed to click (help, usage errors)."""
    if argv not in ([], ["-j"], ["--json"]):
        from daemon.cli import run_click

        run_click(["ingest", *argv])
        return 0
    from daemon.cli import run_fast

    return run_fast(lambda: run(as_json=bool(argv)))  # Ctrl-C: the build is removed on the way out


def run(as_json: bool) -> None:
    """Catch up on every transcript and print the summary (JSON with `as_json`)."""
    from daemon.ingest import exit_on_sigterm

    exit_on_sigterm()  # a stop cleans up as an error does: no half-built ledger left behind
    summary = run_catch_up(BatonPaths.from_env(), quiet_log=as_json)
    print(json.dumps(asdict(summary), indent=2) if as_json else summary.line())


def __getattr__(name: str) -> Any:
    """`ingest`: the click command (for `baton ingest --help` and the command list), made on first use."""
    if name != "ingest":
        raise AttributeError(name)
    import click

    @click.command("ingest", help=HELP)
    @click.option("-j", "--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    def ingest(as_json: bool) -> None:
        run(as_json)

    globals()["ingest"] = ingest
    return ingest


# ---- catching up (also before a report) -------------------------------------------------------


class _Bar:
    """A progress bar on stderr, shown only on a terminal and only when there is much to read."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
                return
            import click

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
    catch-up runs on the defaults without importing pydantic (about 0.2 s of a first ingest's start-up, also
    when a first report builds the ledger)."""
    from daemon.ingest import cannot_write, catch_up, ensure_current
    from daemon.logs import configure_on_first_record

    settings = None
    if not nothing_to_validate(paths, os.environ):
        from daemon.config import load_settings

        settings = load_settings(paths)
    level = DEFAULT_LOG_LEVEL if settings is None else settings.general.log_level
    try:
        paths.ensure()
        configure_on_first_record(paths.log_file, level=level, console=not quiet_log)
    except OSError as exc:  # a read-only or full data folder
        raise cannot_write(Path(exc.filename or paths.ledger_db.parent), exc) from exc
    bar = _Bar()
    try:
        if only_if_changed:
            return ensure_current(paths, settings, progress=bar, defaults=settings is None)
        return catch_up(paths, settings, progress=bar)
    finally:
        bar.close()


DEFAULT_LOG_LEVEL = "info"  # GeneralSettings.log_level's default (a test checks they agree)


def nothing_to_validate(paths: BatonPaths, env: Mapping[str, str]) -> bool:
    """True when the settings can only be the defaults: no config.toml, no BATON_* setting variable."""
    return not setting_variables(env) and not os.path.lexists(paths.config_file)
