"""`baton status`: where the quota stands now."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from daemon.config import Settings
    from daemon.paths import BatonPaths


@click.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (top-level: percent, level, source, reset_at, ...)."
)
@click.option("--watch", is_flag=True, help="Refresh in place every few seconds until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes with --watch.")
@click.option("--no-ingest", is_flag=True, help="Do not read new transcript lines first when no daemon runs.")
def status(as_json: bool, watch: bool, interval: float, no_ingest: bool) -> None:
    """Where the quota stands: bar, level, used and left, burn rate, runway, reset, alerts, daemon."""
    from daemon import status_view
    from daemon.config import load_settings
    from daemon.instance import holder_pid
    from daemon.paths import BatonPaths
    from daemon.runner import zone_of

    paths = BatonPaths.from_env()
    settings = load_settings(paths)
    tz = zone_of(settings)

    def render() -> str:
        if not no_ingest and holder_pid(paths) is None:
            _catch_up(paths, settings)
        st = status_view.gather(paths, settings, datetime.now(UTC), tz)
        return json.dumps(status_view.to_json(st), indent=2) if as_json else status_view.render_text(st)

    if not watch:
        click.echo(render())
        return
    try:  # Ctrl-C is how --watch ends, whether it comes during the sleep or a redraw
        while True:
            out = render()
            if sys.stdout.isatty():
                click.echo("\x1b[H\x1b[2J", nl=False)  # home and clear: redraw in place
            click.echo(out + ("\n" if as_json else "\n\n(refreshing; Ctrl-C to stop)"))
            time.sleep(max(0.5, interval))
    except KeyboardInterrupt:
        return


def _catch_up(paths: BatonPaths, settings: Settings) -> None:
    """Read new transcript lines into the ledger when no daemon does it; problems become a note on stderr."""
    from daemon.errors import BatonError
    from daemon.ingest import catch_up

    try:
        catch_up(paths, settings)
    except BatonError as exc:
        click.echo(f"note: transcripts not read: {exc.message}", err=True)
