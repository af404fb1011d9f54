"""`baton demo`: baton at work on a synthetic session, in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--keep", is_flag=True, help="Keep the demo folder (ledger, logs, handoff) to look at afterwards."
)
@click.option(
    "--dir", "root", type=click.Path(file_okay=False, path_type=Path), help="Use this folder (new)."
)
def demo(keep: bool, root: Path | None) -> None:
    """Watch baton work on a synthetic session (touches none of your data; under a minute)."""
    from daemon.demo import TURNS, run_demo

    if root is not None and root.exists() and any(root.iterdir()):
        raise click.UsageError(f"--dir {root} is not empty")
    run_demo(click.echo, keep=keep, root=root)
    click.echo(
        f"\nThat was baton: {len(TURNS)} turns counted exactly once, alerts at 80/90/95 %, a handoff, and a "
        "session launched after the reset.\nFor real: `baton service install`, then `baton doctor`."
    )
